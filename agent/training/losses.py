"""Loss terms, each a pure function of tensors that returns its named parts.

Every function returns ``dict[str, Tensor]`` of scalar terms (unweighted), so the trainer can log
each term separately and weigh them from the config; :func:`weighted_total` adds them up.

Shapes: ``logits`` (B, L, V), ``labels`` (B, L) with ``-100`` ignored; mask ``logits`` and
``target`` (N, H, W) (target in {0, 1}); regression ``prediction`` and ``target`` (N, T, D).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100


def language_loss(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """``lm``: next-token cross entropy over labelled positions (token t predicts t + 1)."""
    shifted = logits[:, :-1].reshape(-1, logits.shape[-1]).float()
    targets = labels[:, 1:].reshape(-1)
    if not bool((targets != IGNORE_INDEX).any()):
        return {"lm": logits.sum() * 0.0}
    return {"lm": F.cross_entropy(shifted, targets, ignore_index=IGNORE_INDEX)}


def dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """1 - soft Dice of sigmoid(logits) against ``target``, averaged over the N masks."""
    prob = logits.sigmoid().flatten(1)
    truth = target.flatten(1).to(prob.dtype)
    overlap = (prob * truth).sum(1)
    return (1.0 - (2.0 * overlap + eps) / (prob.sum(1) + truth.sum(1) + eps)).mean()


def mask_loss(logits: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """``mask_bce`` (per-pixel binary cross entropy) and ``mask_dice`` of (N, H, W) mask logits
    from a frozen SAM decoder against the target masks."""
    if logits.shape != target.shape:
        raise ValueError(f"mask logits {tuple(logits.shape)} vs target {tuple(target.shape)}")
    truth = target.to(logits.dtype)
    return {
        "mask_bce": F.binary_cross_entropy_with_logits(logits, truth),
        "mask_dice": dice_loss(logits, truth),
    }


def regression_loss(prediction: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """``caption_mse`` and ``caption_cos`` (1 - cosine) between projected signal tokens and the
    frozen text encoder's states they should reproduce, (N, T, D) each."""
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {tuple(prediction.shape)} vs target {tuple(target.shape)}")
    target = target.to(prediction.dtype)
    return {
        "caption_mse": F.mse_loss(prediction, target),
        "caption_cos": (1.0 - F.cosine_similarity(prediction, target, dim=-1)).mean(),
    }


def denoising_loss(prediction: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """``denoise_mse``: the frozen UNet's prediction (noise or velocity, (N, C, h, w)) against
    its target, with the signal's tokens among the UNet's text conditioning."""
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {tuple(prediction.shape)} vs target {tuple(target.shape)}")
    return {"denoise_mse": F.mse_loss(prediction.float(), target.float())}


def synergy_weight(step: int, total: int, weight: float, schedule: str, warmup: int = 0) -> float:
    """The synergy terms' weight at ``step`` of ``total``.

    ``constant``: ``weight``; ``linear``: ramps from 0 to ``weight`` over ``warmup`` steps;
    ``dann``: ``weight * (2 / (1 + exp(-10 p)) - 1)`` with ``p = step / total`` (Ganin and
    Lempitsky's schedule for the adversarial term, which keeps early noisy gradients small).
    """
    if schedule == "constant":
        return weight
    if schedule == "linear":
        return weight * min(1.0, step / warmup) if warmup > 0 else weight
    if schedule == "dann":
        progress = min(1.0, step / max(1, total))
        return weight * (2.0 / (1.0 + math.exp(-10.0 * progress)) - 1.0)
    raise ValueError(f"unknown synergy schedule {schedule!r}; use constant, linear or dann")


def weighted_total(parts: Mapping[str, torch.Tensor], weights: Mapping[str, float]) -> torch.Tensor:
    """Sum of ``weights[name] * part`` (a missing weight counts 1); raises on no parts."""
    if not parts:
        raise ValueError("no loss terms to add up")
    return sum(float(weights.get(name, 1.0)) * value for name, value in parts.items())  # type: ignore[return-value]
