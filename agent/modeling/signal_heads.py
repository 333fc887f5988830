"""Signal heads: the LLM's hidden state at each signal token -> its decoder's conditioning space.

Convention (as in LISA): the embedding for a signal token at position ``p`` is read from the
last-layer hidden state at ``p - 1``, the state that *predicts* the signal token. During
generation this state exists as soon as the token is sampled, so a streaming loop can embed it
at once; in training it is the same state the LM loss on that token flows through.

:func:`extract_signal_embeddings` is the one extraction used by training and inference.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class SignalEmbedding:
    """One signal token's embedding: ``embedding`` is (dim,) in the space ``space``.

    ``batch_index`` and ``position`` locate the signal token in ``input_ids`` (B, L).
    """

    batch_index: int
    position: int
    token: str
    token_id: int
    space: str
    embedding: torch.Tensor


class SignalHead(nn.Module):
    """(..., hidden) -> (..., out_dim): Linear, GELU, Linear."""

    def __init__(self, hidden_size: int, out_dim: int, inner_size: int | None = None) -> None:
        super().__init__()
        inner = inner_size or hidden_size
        self.layers = nn.Sequential(
            nn.Linear(hidden_size, inner), nn.GELU(), nn.Linear(inner, out_dim)
        )
        self.out_dim = out_dim

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.layers(hidden)


class SignalHeads(nn.Module):
    """One :class:`SignalHead` per decoder space, keyed by space name (``sam``, ``diffusion``…)."""

    def __init__(
        self, hidden_size: int, spaces: Mapping[str, int], inner_size: int | None = None
    ) -> None:
        super().__init__()
        self.heads = nn.ModuleDict(
            {name: SignalHead(hidden_size, int(dim), inner_size) for name, dim in spaces.items()}
        )

    @property
    def dims(self) -> dict[str, int]:
        """Space name -> output dimension."""
        return {name: head.out_dim for name, head in self.heads.items()}

    def forward(self, hidden: torch.Tensor, space: str) -> torch.Tensor:
        """(..., hidden) states -> (..., dim) in ``space``."""
        if space not in self.heads:
            raise KeyError(f"no signal head for space {space!r}; heads: {sorted(self.heads)}")
        return self.heads[space](hidden)


def find_signal_positions(
    input_ids: torch.Tensor, token_spaces: Mapping[int, tuple[str, str]], *, start: int = 0
) -> list[tuple[int, int, int]]:
    """(batch_index, position, token_id) of every signal token at ``position >= start``.

    Ordered by batch row, then position: the order the tokens appear in each decoded text.
    """
    if input_ids.ndim != 2:
        raise ValueError(f"input_ids must be (B, L), got {tuple(input_ids.shape)}")
    if not token_spaces:
        return []
    ids = torch.tensor(sorted(token_spaces), device=input_ids.device)
    hits = torch.isin(input_ids, ids)
    hits[:, :start] = False
    rows, cols = hits.nonzero(as_tuple=True)
    return [
        (int(b), int(p), int(input_ids[b, p]))
        for b, p in zip(rows.tolist(), cols.tolist(), strict=True)
    ]


def extract_signal_embeddings(
    hidden_states: torch.Tensor,
    input_ids: torch.Tensor,
    heads: SignalHeads,
    token_spaces: Mapping[int, tuple[str, str]],
    *,
    start: int = 0,
    expected: int | Sequence[int] | None = None,
) -> list[SignalEmbedding]:
    """Embed every signal token of ``input_ids`` through its space's head.

    Args:
        hidden_states: (B, L', H) last-layer states aligned with ``input_ids`` positions;
            ``L' = L`` (a forward over the sequence) or ``L - 1`` (generation, where the last
            token's own state is never computed). The state at ``p - 1`` embeds the token at ``p``.
        input_ids: (B, L) token ids.
        heads: the signal heads.
        token_spaces: signal token id -> (token, space), e.g. ``config.signal_token_id_map``.
        start: only signal tokens at positions ``>= start`` (e.g. the prompt length).
        expected: the number of signal tokens expected in total, or per batch row; a different
            count raises ``ValueError`` showing both.

    Returns:
        One :class:`SignalEmbedding` per signal token, in (row, position) order. Gradients flow
        (training); wrap in ``torch.no_grad()`` at inference.
    """
    batch, length = input_ids.shape
    if (
        hidden_states.ndim != 3
        or hidden_states.shape[0] != batch
        or hidden_states.shape[1] not in (length, length - 1)
    ):
        raise ValueError(
            f"hidden_states {tuple(hidden_states.shape)} do not line up with input_ids "
            f"{tuple(input_ids.shape)}: expected (B, L, H) or (B, L - 1, H)"
        )
    found = find_signal_positions(input_ids, token_spaces, start=start)
    if expected is not None:
        if isinstance(expected, int):
            if len(found) != expected:
                raise ValueError(
                    f"expected {expected} signal token(s), found {len(found)} in input_ids"
                )
        else:
            per_row = [sum(1 for b, _, _ in found if b == row) for row in range(batch)]
            if list(expected) != per_row:
                raise ValueError(
                    f"expected signal tokens per row {list(expected)}, found {per_row}"
                )
    early = [(b, p) for b, p, _ in found if p == 0]
    if early:
        raise ValueError(f"signal token(s) at position 0 {early} have no preceding state to read")

    results: list[SignalEmbedding | None] = [None] * len(found)
    by_space: dict[str, list[int]] = {}
    for k, (_, _, token_id) in enumerate(found):
        by_space.setdefault(token_spaces[token_id][1], []).append(k)
    for space, members in by_space.items():
        rows = torch.tensor([found[k][0] for k in members], device=hidden_states.device)
        cols = torch.tensor([found[k][1] - 1 for k in members], device=hidden_states.device)
        embedded = heads(hidden_states[rows, cols], space)  # (n, dim)
        for j, k in enumerate(members):
            b, p, token_id = found[k]
            results[k] = SignalEmbedding(
                b, p, token_spaces[token_id][0], token_id, space, embedded[j]
            )
    return [r for r in results if r is not None]


def group_by_space(signals: Sequence[SignalEmbedding]) -> dict[str, torch.Tensor]:
    """Stack embeddings per space: space -> (n, dim), in the order given (for batched losses)."""
    grouped: dict[str, list[torch.Tensor]] = {}
    for signal in signals:
        grouped.setdefault(signal.space, []).append(signal.embedding)
    return {space: torch.stack(items) for space, items in grouped.items()}
