"""Grounded answers: once a tool has run, the planner names only the things the turn has seen.

A small planner writes its closing sentence from habit as much as from the tool's result: the nano
planner said "Done: I made the small star purple" after recolouring it yellow, and "I tracked the
circle" after tracking the square (tools/profiles/nano/README.md). A profile may list the words
such a sentence must not make up (``grounded_words``: for ``nano`` the shapes world's colours,
shapes, sizes, textures, backgrounds and columns). After a tool result in the current turn, a listed word
may be written only if the request or one of the turn's tool results has it; other words are
untouched, and so is every step before a tool has run (a question about a picture is answered
from the picture: "what colour is the star?" must be free to say "red").

Words are checked as they are spelled, over token boundaries: a token is held back when it would
complete a held word (the word so far, lower-cased, equal to it). One instance per ``generate``
call; the rows of a batch are tracked apart.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import torch
from transformers import LogitsProcessor

_WORD = re.compile(r"[^\W_]+")


def words_of(text: str) -> frozenset[str]:
    """The words of ``text``, lower-cased (letters and digits; punctuation splits them)."""
    return frozenset(_WORD.findall(text.lower()))


def ungrounded(grounded_words: Iterable[str], evidence: str) -> frozenset[str]:
    """The listed words ``evidence`` (the request and the turn's tool results) does not have."""
    return frozenset(w.lower() for w in grounded_words) - words_of(evidence)


class UngroundedWordsProcessor(LogitsProcessor):
    """Holds back every token that would complete a word of ``held``.

    ``strings``: each token's text as it adds to earlier text (leading spaces kept; see
    :func:`vitron.agent.constrained._token_strings`); ``special`` tokens (tags, end of sequence)
    end the current word and are never held."""

    def __init__(self, strings: Sequence[str], held: frozenset[str], special: Iterable[int] = ()):
        self.strings = strings
        self.held = held
        self.special = frozenset(special)
        self._start: int | None = None
        self._masks: dict[str, torch.Tensor] = {}

    def _written(self, partial: str, token: int) -> tuple[list[str], str]:
        """The words ``token`` touches after ``partial`` (the current word so far) and the
        current word after it."""
        if token in self.special or token >= len(self.strings):
            return [], ""
        text = (partial + self.strings[token]).lower()
        pieces = _WORD.findall(text)
        open_word = bool(pieces) and text.endswith(pieces[-1])
        return pieces, pieces[-1] if open_word else ""

    def _mask(self, partial: str) -> torch.Tensor:
        """``True`` where a token is held back after ``partial``."""
        mask = self._masks.get(partial)
        if mask is None:
            held = [i for i in range(len(self.strings))
                    if any(w in self.held for w in self._written(partial, i)[0])]  # fmt: skip
            mask = torch.zeros(len(self.strings), dtype=torch.bool)
            mask[held] = True
            self._masks[partial] = mask
        return mask

    def _partial(self, generated: list[int]) -> str:
        """The word the row is in the middle of (empty after a space or punctuation)."""
        partial = ""
        for token in generated:
            partial = self._written(partial, token)[1]
        return partial

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self._start is None:
            self._start = input_ids.shape[1]
        if not self.held:
            return scores
        vocab = scores.shape[-1]
        rows = []
        for generated in input_ids[:, self._start :].tolist():
            held = self._mask(self._partial(generated))
            row = torch.zeros(vocab, dtype=torch.bool)
            row[: min(vocab, held.shape[0])] = held[:vocab]
            rows.append(row)
        hold = torch.stack(rows).to(scores.device)
        masked = scores.masked_fill(hold, float("-inf"))
        # a row with nothing left keeps its scores (never a dead end)
        usable = torch.isfinite(masked).any(dim=-1, keepdim=True)
        return torch.where(usable, masked, scores)


__all__ = ["UngroundedWordsProcessor", "ungrounded", "words_of"]
