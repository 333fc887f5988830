"""One training step's forward: the model, its signal projectors and every loss term.

:class:`TrainModule` holds what a stage optimises — the (LoRA-wrapped) Vitron LLM and, in stage
2, one signal projector per backend — so a single ``accelerator.prepare`` covers them all. Its
``forward(batch)`` returns the unweighted loss parts (each from a pure function of
:mod:`~vitron.agent.training.losses`) and diagnostics (``synergy_disc_acc``) for the log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from vitron.agent.modeling.synergy import pool_invocation_states
from vitron.agent.training.collate import Batch
from vitron.agent.training.decoders import (
    Sam2Alignment,
    SamAlignment,
    caption_targets,
    denoising_pair,
)
from vitron.agent.training.losses import (
    denoising_loss,
    language_loss,
    mask_loss,
    regression_loss,
)
from vitron.tools.geometry import jittered_box


@dataclass
class SignalAlignment:
    """Frozen decoders for stage 2: ``routes`` module (or signal token) -> (decoder name,
    projector name);
    ``mask_decoders`` decoder name -> :class:`SamAlignment` / :class:`Sam2Alignment` for mask
    targets, ``text_encoders`` decoder name -> (tokenizer, text encoder) for captions."""

    routes: dict[str, tuple[str, str]]
    mask_decoders: dict[str, SamAlignment | Sam2Alignment] = field(default_factory=dict)
    text_encoders: dict[str, tuple[Any, nn.Module]] = field(default_factory=dict)
    denoisers: dict[str, tuple[Any, int]] = field(default_factory=dict)
    """Decoder name -> (text-to-image pipeline, working size) for the denoising loss."""
    _captions: dict[tuple[str, str, int], torch.Tensor] = field(default_factory=dict)

    def caption_target(self, decoder: str, caption: str, tokens: int) -> torch.Tensor:
        key = (decoder, caption, tokens)
        if key not in self._captions:
            tokenizer, encoder = self.text_encoders[decoder]
            self._captions[key] = caption_targets(tokenizer, encoder, caption, tokens)
        return self._captions[key]


DETECTOR_JITTER = 0.1
"""How far (a fraction of the box's side) each edge of :func:`detector_box` may move."""


def detector_box(mask: np.ndarray) -> tuple[float, float, float, float]:
    """The normalised box a backend prompts SAM / SAM 2 with when an invocation names its target
    in words and no region: Grounding DINO's box, stood in for by the target mask's box with each
    edge moved by up to :data:`DETECTOR_JITTER` of its side. Without it a signal is aligned for
    a prompt the backends never send: the nano planner's ``[SEG]``, aligned box-free, lowered
    referring cIoU beside the detector's box from 0.734 to 0.663 (60 test samples). The noise
    comes from torch's seeded generator, so a run is repeatable."""
    rng = np.random.default_rng(int(torch.randint(2**31 - 1, ())))
    height, width = mask.shape
    x1, y1, x2, y2 = jittered_box(np.asarray(mask) > 0.5, rng, DETECTOR_JITTER)
    return (x1 / width, y1 / height, x2 / width, y2 / height)


def causal_inputs(inputs: dict[str, Any]) -> dict[str, Any]:
    """``inputs`` without the attention mask when every row is padded on the right only.

    Under a causal mask no real token can attend to a pad that comes after it, so the padding
    mask changes nothing the losses read (pad positions are unlabelled and unpooled); without it
    the attention runs as plain causal attention, which torch's CPU kernel does about twice as
    fast as with a mask. The nano planner's `base` step ran 30 % faster on its first 12 micro
    batches with the same losses to five places. Left-padded rows (generation) keep the mask.
    """
    mask = inputs.get("attention_mask")
    if mask is None or not bool((mask[:, :-1] >= mask[:, 1:]).all()):
        return inputs
    return inputs | {"attention_mask": None}


@dataclass
class StepOutput:
    """Unweighted loss ``parts`` (scalar tensors with gradients) and float ``metrics``."""

    parts: dict[str, torch.Tensor]
    metrics: dict[str, float]


class TrainModule(nn.Module):
    """The LLM (``model``, maybe a ``PeftModel``) plus trainable signal ``projectors``."""

    def __init__(
        self,
        model: nn.Module,
        vitron: nn.Module,
        projectors: dict[str, nn.Module] | None = None,
        alignment: SignalAlignment | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.projectors = nn.ModuleDict(projectors or {})
        self._vitron = [vitron]  # not a submodule: it already sits inside ``model``
        self.alignment = alignment

    @property
    def vitron(self) -> nn.Module:
        return self._vitron[0]

    def forward(self, batch: Batch, *, synergy: bool = True) -> StepOutput:  # type: ignore[override]
        output = self.model(**causal_inputs(batch.inputs))
        hidden = output.last_hidden_state
        parts = language_loss(output.logits, batch.labels)
        metrics: dict[str, float] = {}
        if self.alignment is not None and batch.signal_positions:
            parts |= self._signal_terms(batch, hidden)
        if synergy and self.vitron.synergy.enabled:
            terms, accuracy = self._synergy_terms(batch, hidden)
            parts |= terms
            if accuracy is not None:
                metrics["synergy_disc_acc"] = accuracy
        return StepOutput(parts, metrics)

    # ---- embedding-oriented decoder alignment ----

    def _signal_terms(self, batch: Batch, hidden: torch.Tensor) -> dict[str, torch.Tensor]:
        assert self.alignment is not None
        per_row = [0] * batch.size
        for row, _, _ in batch.signal_positions:
            per_row[row] += 1
        embeddings = self.vitron.signal_embeddings(
            hidden, batch.inputs["input_ids"], expected=per_row
        )
        masks: dict[str, list[torch.Tensor]] = {}
        captions: dict[str, list[torch.Tensor]] = {}
        for signal, supervision in zip(embeddings, batch.signals, strict=True):
            routes = self.alignment.routes
            route = routes.get(supervision.module or "") or routes.get(supervision.token)
            if route is None:
                continue
            decoder, projector_name = route
            projector = self.projectors[projector_name]
            masker = self.alignment.mask_decoders.get(decoder)
            if supervision.mask is not None and masker is not None:
                tokens = projector(signal.embedding[None])[0]  # (k, prompt_dim)
                box = supervision.box or detector_box(supervision.mask)
                logits = masker.mask_logits(supervision.image, tokens, box)
                target = torch.as_tensor(supervision.mask, device=logits.device)
                candidates = [
                    mask_loss(logits[c : c + 1], target[None]) for c in range(len(logits))
                ]
                best = min(
                    candidates, key=lambda t: float((t["mask_bce"] + t["mask_dice"]).detach())
                )
                for name, value in best.items():
                    masks.setdefault(name, []).append(value)
            elif supervision.caption and decoder in self.alignment.text_encoders:
                tokens = projector(signal.embedding[None])[0]  # (k, D)
                target = self.alignment.caption_target(
                    decoder, supervision.caption, tokens.shape[0]
                )
                for name, value in regression_loss(tokens[None], target[None].to(tokens)).items():
                    captions.setdefault(name, []).append(value)
                if supervision.target_image is not None and decoder in self.alignment.denoisers:
                    pipe, size = self.alignment.denoisers[decoder]
                    pair = denoising_pair(
                        pipe, supervision.target_image, supervision.caption, tokens, size
                    )
                    for name, value in denoising_loss(*pair).items():
                        captions.setdefault(name, []).append(value.to(tokens.device))
        terms = {}
        for group in (masks, captions):
            terms |= {name: torch.stack(values).mean() for name, values in group.items()}
        return terms

    # ---- cross-task synergy ----

    def _synergy_terms(
        self, batch: Batch, hidden: torch.Tensor
    ) -> tuple[dict[str, torch.Tensor], float | None]:
        rows = (batch.task_ids >= 0) & batch.invocation_mask.any(dim=1)
        if int(rows.sum()) < 2:
            return {}, None
        pooled = pool_invocation_states(hidden[rows], batch.invocation_mask[rows])
        tasks = batch.task_ids[rows]
        out = self.vitron.synergy(pooled, tasks)
        with torch.no_grad():
            guess = self.vitron.synergy.discriminator(out.invariant).argmax(dim=-1)
            accuracy = float((guess == tasks).float().mean())
        return dict(out.losses), accuracy
