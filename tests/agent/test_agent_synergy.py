"""Cross-task synergy module: gradient reversal, loss terms, the off switch, pooling helpers."""

from __future__ import annotations

import pytest
import torch

from vitron.agent.build import build_tiny_vitron
from vitron.agent.modeling import (
    GradientReversal,
    SynergyModule,
    invocation_mask,
    pool_invocation_states,
    reverse_gradient,
)


def test_gradient_reversal_flips_and_scales_the_gradient():
    x = torch.randn(3, 5, requires_grad=True)
    y = reverse_gradient(x, 0.5)
    assert torch.equal(y, x)
    (y * torch.arange(5.0)).sum().backward()
    assert torch.allclose(x.grad, -0.5 * torch.arange(5.0).expand(3, 5))
    layer = GradientReversal(2.0)
    z = torch.ones(2, requires_grad=True)
    layer(z).sum().backward()
    assert torch.equal(z.grad, torch.full((2,), -2.0))


def test_synergy_losses_and_the_reversed_adversarial_gradient():
    torch.manual_seed(0)
    module = SynergyModule(16, 8, 8, num_tasks=4, discriminator_hidden_size=12, grl_lambda=1.0)
    pooled = torch.randn(6, 16)
    tasks = torch.tensor([0, 1, 2, 3, 0, 1])
    out = module(pooled, tasks)
    assert set(out.losses) == {"synergy_task", "synergy_adversarial", "synergy_orthogonality"}
    assert all(torch.isfinite(v) and v.ndim == 0 for v in out.losses.values())
    assert out.specific.shape == (6, 8) and out.invariant.shape == (6, 8)

    # The discriminator learns to find the task; the invariant projection gets the opposite push.
    out.losses["synergy_adversarial"].backward()
    reversed_grad = module.invariant_proj.weight.grad.clone()
    discriminator_grad = module.discriminator[0].weight.grad.clone()
    module.zero_grad()
    module.reversal.strength = 0.0  # no reversal reaching the encoder side
    module(pooled, tasks).losses["synergy_adversarial"].backward()
    assert torch.count_nonzero(module.invariant_proj.weight.grad) == 0
    module.zero_grad()
    module.reversal.strength = -1.0  # plain (non-reversed) gradient for comparison
    module(pooled, tasks).losses["synergy_adversarial"].backward()
    assert torch.allclose(module.invariant_proj.weight.grad, -reversed_grad, atol=1e-6)
    assert torch.allclose(module.discriminator[0].weight.grad, discriminator_grad, atol=1e-6)


def test_switched_off_synergy_gives_no_losses_and_the_model_output_is_unchanged():
    model, processor = build_tiny_vitron(seed=0)
    inputs = processor("<Module>segment_image</Module><Instruction>cat</Instruction>[SEG]")
    ids = inputs["input_ids"]
    tags = processor.token_ids.tags
    mask = invocation_mask(ids, tags["<Module>"], set(processor.token_ids.signals.values()))
    assert mask.sum() == ids.shape[1] - 1  # everything after BOS
    with torch.no_grad():
        out = model(**inputs)
    task = torch.tensor([model.task_index("segment_image")])
    losses = model.synergy_losses(out.last_hidden_state, mask, task)
    assert set(losses) == {"synergy_task", "synergy_adversarial", "synergy_orthogonality"}
    model.synergy.enabled = False
    assert model.synergy_losses(out.last_hidden_state, mask, task) == {}
    with torch.no_grad():
        assert torch.equal(model(**inputs).logits, out.logits)  # inert at inference either way
    off, _ = build_tiny_vitron(seed=0, synergy_enabled=False)
    assert off.synergy(torch.randn(2, 64), torch.tensor([0, 1])).losses == {}


def test_pooling_needs_an_invocation_in_every_row():
    states = torch.arange(12.0).reshape(1, 4, 3)
    mask = torch.tensor([[False, True, True, False]])
    assert torch.equal(pool_invocation_states(states, mask), states[0, 1:3].mean(0, keepdim=True))
    with pytest.raises(ValueError, match="rows \\[0\\]"):
        pool_invocation_states(states, torch.zeros(1, 4, dtype=torch.bool))
