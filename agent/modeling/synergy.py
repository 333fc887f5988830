"""Cross-task synergy learning (DESIGN §5, Vitron paper §4.3).

The pooled hidden state of an invocation is split into a task-specific part and a task-invariant
part. A classifier predicts the task (module) from the specific part; a discriminator predicts
it from the invariant part *through a gradient-reversal layer*, so while the discriminator
learns to find the task, the shared representation learns to hide it: the invariant part
becomes task-agnostic and can carry what tasks share. An orthogonality term keeps the two parts
apart. The module only produces losses: it never changes the LM's outputs, so it is inert at
inference, and ``enabled=False`` (the ablation) makes it return no losses at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, strength: float) -> torch.Tensor:  # type: ignore[override]
        ctx.strength = strength
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return -ctx.strength * grad, None


def reverse_gradient(x: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
    """Identity forward; multiplies the gradient by ``-strength`` backward."""
    return _ReverseGradient.apply(x, strength)


class GradientReversal(nn.Module):
    """Module form of :func:`reverse_gradient`; ``strength`` (lambda) can be scheduled."""

    def __init__(self, strength: float = 1.0) -> None:
        super().__init__()
        self.strength = strength

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return reverse_gradient(x, self.strength)


def pool_invocation_states(hidden_states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Masked mean over positions: (B, L, H) states, (B, L) bool mask -> (B, H).

    The mask marks each row's invocation span (see :func:`invocation_mask`); an empty row
    raises ``ValueError`` naming it.
    """
    if mask.shape != hidden_states.shape[:2]:
        raise ValueError(
            f"mask {tuple(mask.shape)} does not match states {tuple(hidden_states.shape[:2])}"
        )
    counts = mask.sum(dim=1)
    empty = (counts == 0).nonzero().flatten().tolist()
    if empty:
        raise ValueError(f"rows {empty} have no invocation positions to pool")
    weights = mask.to(hidden_states.dtype) / counts[:, None].to(hidden_states.dtype)
    return torch.einsum("bl,blh->bh", weights, hidden_states)


def invocation_mask(
    input_ids: torch.Tensor, open_id: int, end_ids: set[int] | list[int]
) -> torch.Tensor:
    """(B, L) ids -> (B, L) bool: positions from each ``<Module>`` token to the next end token.

    ``end_ids`` are the tokens that close an invocation (the signal tokens and
    ``</Instruction>``/``</Region>`` for text-only modules). An unclosed span runs to the end.
    """
    mask = torch.zeros_like(input_ids, dtype=torch.bool)
    ends = set(int(i) for i in end_ids)
    for row, ids in enumerate(input_ids.tolist()):
        inside = False
        for col, token in enumerate(ids):
            if token == open_id:
                inside = True
            if inside:
                mask[row, col] = True
                if token in ends:
                    inside = False
    return mask


@dataclass
class SynergyOutput:
    """``specific`` (B, specific_dim) and ``invariant`` (B, invariant_dim) parts; ``losses``
    maps term names to scalar tensors (empty when the module is off or no task labels are given).
    """

    specific: torch.Tensor | None
    invariant: torch.Tensor | None
    losses: dict[str, torch.Tensor] = field(default_factory=dict)


class SynergyModule(nn.Module):
    """Task-specific / task-invariant split with an adversarial task discriminator."""

    def __init__(
        self,
        hidden_size: int,
        specific_dim: int,
        invariant_dim: int,
        num_tasks: int,
        *,
        discriminator_hidden_size: int = 256,
        grl_lambda: float = 1.0,
        enabled: bool = True,
    ) -> None:
        super().__init__()
        if num_tasks < 2:
            raise ValueError(f"synergy learning needs at least 2 tasks, got {num_tasks}")
        self.enabled = enabled
        self.num_tasks = num_tasks
        self.specific_proj = nn.Linear(hidden_size, specific_dim)
        self.invariant_proj = nn.Linear(hidden_size, invariant_dim)
        self.task_classifier = nn.Linear(specific_dim, num_tasks)
        self.reversal = GradientReversal(grl_lambda)
        self.discriminator = nn.Sequential(
            nn.Linear(invariant_dim, discriminator_hidden_size),
            nn.GELU(),
            nn.Linear(discriminator_hidden_size, num_tasks),
        )

    def forward(self, pooled: torch.Tensor, task_ids: torch.Tensor | None = None) -> SynergyOutput:
        """(B, H) pooled invocation states, (B,) task indices in [0, num_tasks) -> parts and losses.

        Loss terms: ``synergy_task`` (CE of the task from the specific part),
        ``synergy_adversarial`` (CE of the discriminator on the reversed invariant part; its
        gradient trains the discriminator and pushes the encoder the other way) and
        ``synergy_orthogonality`` (mean squared cosine between the two parts' batch columns).
        """
        if not self.enabled:
            return SynergyOutput(None, None, {})
        specific = self.specific_proj(pooled)
        invariant = self.invariant_proj(pooled)
        if task_ids is None:
            return SynergyOutput(specific, invariant, {})
        if task_ids.shape != pooled.shape[:1]:
            raise ValueError(f"task_ids {tuple(task_ids.shape)} must be ({pooled.shape[0]},)")
        if task_ids.min() < 0 or task_ids.max() >= self.num_tasks:
            raise ValueError(f"task_ids {task_ids.tolist()} must be in [0, {self.num_tasks})")
        task_ids = task_ids.long()
        losses = {
            "synergy_task": F.cross_entropy(self.task_classifier(specific), task_ids),
            "synergy_adversarial": F.cross_entropy(
                self.discriminator(self.reversal(invariant)), task_ids
            ),
            "synergy_orthogonality": orthogonality_loss(specific, invariant),
        }
        return SynergyOutput(specific, invariant, losses)


def orthogonality_loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean squared cosine between the columns of (B, da) and (B, db) after centring over B."""
    a = F.normalize(a - a.mean(dim=0, keepdim=True), dim=0)
    b = F.normalize(b - b.mean(dim=0, keepdim=True), dim=0)
    return (a.transpose(0, 1) @ b).pow(2).mean()
