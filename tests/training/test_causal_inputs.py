"""Training batches are padded on the right, so the LLM may attend causally without a padding
mask (``causal_inputs``): faster, and the losses stay what the mask gives."""

from __future__ import annotations

import pytest
import torch

from tests.training.conftest import tiny_config
from vitron.agent.training import objective
from vitron.agent.training.objective import causal_inputs
from vitron.agent.training.trainer import Trainer


def test_only_right_padding_drops_the_mask():
    right = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    left = torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1]])
    holed = torch.tensor([[1, 0, 1, 1]])
    ids = torch.zeros(2, 4, dtype=torch.long)
    assert causal_inputs({"input_ids": ids, "attention_mask": right})["attention_mask"] is None
    assert (
        causal_inputs({"input_ids": ids, "attention_mask": torch.ones(2, 4)})["attention_mask"]
        is None
    )
    assert causal_inputs({"attention_mask": left})["attention_mask"] is left
    assert causal_inputs({"attention_mask": holed})["attention_mask"] is holed
    assert causal_inputs({"input_ids": ids}) == {"input_ids": ids}


def test_the_losses_are_the_masked_ones(squares, tmp_path, monkeypatch):
    trainer = Trainer(tiny_config(squares, tmp_path / "run", "base", batch_size=4))
    batch = next(
        b for b in map(trainer.make_batch, trainer.epoch_order(0))
        if b is not None and bool((b.inputs["attention_mask"] == 0).any())
    )  # fmt: skip
    seen = []
    model = trainer.module.model
    forward = model.forward
    monkeypatch.setattr(model, "forward", lambda **kw: seen.append(kw) or forward(**kw))
    with torch.no_grad():
        causal = trainer.module(batch, synergy=False).parts
        monkeypatch.setattr(objective, "causal_inputs", lambda inputs: inputs)
        masked = trainer.module(batch, synergy=False).parts
    assert seen[0]["attention_mask"] is None and seen[1]["attention_mask"] is not None
    assert set(causal) == set(masked)
    for name in masked:
        assert causal[name].item() == pytest.approx(masked[name].item(), rel=1e-5, abs=1e-6)
