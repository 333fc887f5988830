"""Token-by-token decoding with a KV cache: the one generation loop behind ``invoke`` and
``stream``.

``model.generate`` returns only when it is done; a planner that streams needs each token as it is
sampled, together with the hidden state that predicted it (a signal token's embedding is read from
that state, see :mod:`vitron.agent.modeling.signal_heads`). The loop prefills the prompt with its
media once, then feeds one token at a time through the cache; logits processors (placeholder
suppression, constrained invocation decoding, forced tokens) run before temperature and top-p.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch
from transformers import (
    LogitsProcessor,
    LogitsProcessorList,
    TemperatureLogitsWarper,
    TopPLogitsWarper,
)

from vitron.agent.modeling.cache_compat import cache_of


@dataclass(frozen=True)
class SamplingSettings:
    """How tokens are picked. ``temperature == 0`` is greedy; ``seed`` makes sampling repeatable."""

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")


@dataclass(frozen=True)
class TokenStep:
    """One generated token and the (H,) last-layer state that predicted it."""

    token_id: int
    hidden: torch.Tensor


class ForcedTokens(LogitsProcessor):
    """Forces the first generated tokens to ``token_ids`` (e.g. ``<Module>`` for a required tool
    call). One instance per generation: it counts from the first call's sequence length."""

    def __init__(self, token_ids: Sequence[int]) -> None:
        self.token_ids = [int(t) for t in token_ids]
        self._start: int | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self._start is None:
            self._start = input_ids.shape[1]
        step = input_ids.shape[1] - self._start
        if step >= len(self.token_ids):
            return scores
        forced = torch.full_like(scores, float("-inf"))
        forced[:, self.token_ids[step]] = 0.0
        return forced


def generate_tokens(
    model: torch.nn.Module,
    inputs: Mapping[str, torch.Tensor | list[torch.Tensor]],
    settings: SamplingSettings,
    processors: Sequence[LogitsProcessor] = (),
    eos_token_ids: Sequence[int] = (),
) -> Iterator[TokenStep]:
    """Yield generated tokens one at a time (batch of one), ending after an EOS token or
    ``settings.max_new_tokens`` tokens. ``inputs`` is a processor batch (ids, mask, media).

    Closing the iterator early (a stop sequence) simply stops decoding.
    """
    device = next(model.parameters()).device
    batch = {key: _to_device(value, device) for key, value in inputs.items()}
    if batch["input_ids"].shape[0] != 1:
        raise ValueError(f"generate_tokens decodes one sequence, got {batch['input_ids'].shape[0]}")
    chain = LogitsProcessorList(processors)
    if settings.temperature > 0:
        chain.append(TemperatureLogitsWarper(settings.temperature))
        if settings.top_p < 1:
            chain.append(TopPLogitsWarper(settings.top_p))
    generator = None
    if settings.seed is not None:
        generator = torch.Generator(device=device).manual_seed(int(settings.seed))
    eos = {int(t) for t in eos_token_ids}

    sequence = batch["input_ids"]
    attention = batch["attention_mask"]
    with torch.inference_mode():
        output = model(**batch, use_cache=True, logits_to_keep=1)
    for _ in range(settings.max_new_tokens):
        hidden = output.last_hidden_state[0, -1]
        with torch.inference_mode():
            scores = chain(sequence, output.logits[:, -1, :].float())
            token = _pick(scores, settings.temperature > 0, generator)
        yield TokenStep(token, hidden)
        if token in eos:
            return
        step = torch.tensor([[token]], dtype=sequence.dtype, device=device)
        sequence = torch.cat([sequence, step], dim=1)
        attention = torch.cat([attention, torch.ones_like(step, dtype=attention.dtype)], dim=1)
        with torch.inference_mode():
            output = model(
                input_ids=step,
                attention_mask=attention,
                past_key_values=cache_of(output),
                use_cache=True,
                logits_to_keep=1,
            )


def hold_back(scores: torch.Tensor, hold: torch.Tensor) -> torch.Tensor:
    """``scores`` (B, V) with the tokens ``hold`` (B, V, bool) marks set to -inf, except in a row
    where that would leave no token: such a row keeps the scores it came with (never a dead end,
    so a later processor yields to the earlier ones instead of stopping generation)."""
    masked = scores.masked_fill(hold.to(scores.device), float("-inf"))
    usable = torch.isfinite(masked).any(dim=-1, keepdim=True)
    return torch.where(usable, masked, scores)


def _pick(scores: torch.Tensor, sample: bool, generator: torch.Generator | None) -> int:
    if not bool(torch.isfinite(scores).any()):
        raise RuntimeError("every token was masked out; check stop tokens and logits processors")
    if not sample:
        return int(scores[0].argmax())
    probs = torch.softmax(scores[0], dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator))


def _to_device(
    value: torch.Tensor | list[torch.Tensor], device: torch.device
) -> torch.Tensor | list[torch.Tensor]:
    if isinstance(value, list):
        return [v.to(device) for v in value]
    return value.to(device)


__all__ = ["ForcedTokens", "SamplingSettings", "TokenStep", "generate_tokens"]
