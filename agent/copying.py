"""Copied instructions: an invocation's ``<Instruction>`` text written only with the request's words.

A small planner can pick the right tool and still garble the words it passes on: the nano planner,
retrained on the tools' own result wording, wrote ``segment_image("the circle")`` for "segment the
square" (tools/profiles/nano/README.md). The instruction a tool needs is nearly always a phrase of
the user's request ("the square", "a large green star", "make the small star yellow"), so a profile
may ask (``copy_instructions = true``) that an instruction be the request's words *in the request's
order* (case-insensitive; punctuation marks count as words; words may be left out), besides the few
verbs an edit instruction is phrased with (:data:`INSTRUCTION_VERBS`: "Find the mask of the red
star and recolour it yellow" is passed on as "make the red star yellow"). Order matters: with
words alone, the nano planner wrote "… right of the triangle" for "… triangle right of the small
diamond", reaching back to a word it had already copied. Every instruction of the shapes world's
tasks is such an in-order selection. The model still chooses which words and how many; outside an
instruction nothing changes. It runs after the invocation
grammar (:mod:`vitron.agent.constrained`), whose state machine it follows, and keeps
``</Instruction>`` allowed between words; when the token budget forces the grammar to close an
instruction mid-word, the grammar wins (the last word is then cut short).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from transformers import LogitsProcessor

from vitron.agent.constrained import INSTRUCTION, InvocationGrammar, _State
from vitron.agent.invocation import INSTRUCTION_CLOSE

_WORD = re.compile(r"[^\W_]+|[^\w\s]")

INSTRUCTION_VERBS = frozenset({"make", "remove", "move", "add"})
"""Words every instruction may use: editing tools take InstructPix2Pix-style commands ("make the
star yellow", "remove the circle"), which a request need not contain ("… and recolour it yellow")."""


def request_words(request: str) -> frozenset[str]:
    """The words (and punctuation marks) of ``request``, lower-cased."""
    return frozenset(request_sequence(request))


def request_sequence(request: str) -> tuple[str, ...]:
    """The words (and punctuation marks) of ``request`` in order, lower-cased."""
    return tuple(_WORD.findall(request.lower()))


@dataclass(frozen=True)
class _Row:
    state: _State
    position: int = -1
    """Index in the request of the instruction's last whole word (-1: none yet; an edit verb
    leaves it where it was)."""
    partial: str = ""
    """The instruction's current word so far (lower-cased; empty between words)."""


class CopiedInstructionProcessor(LogitsProcessor):
    """Inside an ``<Instruction>``, allows only tokens that continue or start a word found in
    ``request`` after the instruction's previous word (or an edit verb; whitespace always;
    ``</Instruction>`` between words). One instance per ``generate`` call, after the grammar's
    processor."""

    def __init__(self, grammar: InvocationGrammar, request: str) -> None:
        self.grammar = grammar
        self.sequence = request_sequence(request)
        self.close = grammar.tag[INSTRUCTION_CLOSE]
        self._start: int | None = None
        self._rows: dict[tuple[int, ...], _Row] = {(): _Row(_State())}
        self._prefixes: dict[int, frozenset[str]] = {}
        self._allowed: dict[tuple[int, str], torch.Tensor] = {}

    def _after(self, position: int, word: str) -> int | None:
        """Where ``word`` leaves the copy: the first place after ``position`` the request has it
        (the earliest keeps the most words open), ``position`` for an edit verb, ``None`` if
        the request has it nowhere later."""
        if word in INSTRUCTION_VERBS:
            return position
        for index in range(position + 1, len(self.sequence)):
            if self.sequence[index] == word:
                return index
        return None

    def _prefixes_after(self, position: int) -> frozenset[str]:
        prefixes = self._prefixes.get(position)
        if prefixes is None:
            words = set(self.sequence[position + 1 :]) | INSTRUCTION_VERBS
            prefixes = frozenset(w[:k] for w in words for k in range(1, len(w) + 1))
            self._prefixes[position] = prefixes
        return prefixes

    def _next(self, position: int, partial: str, text: str) -> tuple[int, str] | None:
        """``(position, partial)`` after ``text`` is written (``None``: it leaves the copy). A
        token may end one word and start others ("star." -> "star", "."): each piece is checked."""
        lowered = text.lower()
        if not lowered.strip():
            if not partial:
                return position, ""
            after = self._after(position, partial)
            return None if after is None else (after, "")
        pieces = _pieces(lowered)
        if "".join(piece for _, piece in pieces) != "".join(lowered.split()):
            return None  # a character no word is made of ("_", a control character)
        current = partial
        for start, piece in pieces:
            if start and current:  # a word boundary before this piece: the word so far is whole
                after = self._after(position, current)
                if after is None:
                    return None
                position, current = after, ""
            current += piece
            if current not in self._prefixes_after(position):
                return None
        if lowered[-1].isspace():  # a trailing space ends the word
            after = self._after(position, current)
            return None if after is None else (after, "")
        return position, current

    def _mask(self, position: int, partial: str) -> torch.Tensor:
        mask = self._allowed.get((position, partial))
        if mask is None:
            mask = torch.zeros(self.grammar.vocab_size, dtype=torch.bool)
            ok = [i for i in self.grammar.plain
                  if self._next(position, partial, self.grammar.strings[i]) is not None]  # fmt: skip
            mask[ok] = True
            if not partial or self._after(position, partial) is not None:
                mask[self.close] = True
            self._allowed[(position, partial)] = mask
        return mask

    def _advance(self, row: _Row, token: int) -> _Row:
        state = self.grammar.advance(row.state, token)
        if state.phase != INSTRUCTION:
            return _Row(state)
        if row.state.phase != INSTRUCTION:  # just opened
            return _Row(state)
        step = self._next(row.position, row.partial, self.grammar.strings[token])
        return _Row(state, *step) if step is not None else _Row(state, row.position)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self._start is None:
            self._start = input_ids.shape[1]
        rows: dict[tuple[int, ...], _Row] = {}
        masks = []
        vocab = scores.shape[-1]
        for generated in input_ids[:, self._start :].tolist():
            key = tuple(generated)
            row = self._rows.get(key)
            if row is None:  # one step on from the last call's row, else replayed from the start
                parent = self._rows.get(key[:-1]) if key else None
                if parent is not None:
                    row = self._advance(parent, key[-1])
                else:
                    row = _Row(_State())
                    for token in key:
                        row = self._advance(row, token)
            rows[key] = row
            mask = torch.ones(vocab, dtype=torch.bool)
            if row.state.phase == INSTRUCTION:
                allowed = self._mask(row.position, row.partial)
                mask[: min(vocab, allowed.shape[0])] = allowed[:vocab]
                mask[allowed.shape[0] :] = False
            masks.append(mask)
        self._rows = rows
        keep = torch.stack(masks).to(scores.device)
        masked = scores.masked_fill(~keep, float("-inf"))
        # a row the copy leaves nothing to write keeps the grammar's choice (never a dead end)
        usable = torch.isfinite(masked).any(dim=-1, keepdim=True)
        return torch.where(usable, masked, scores)


def _pieces(text: str) -> list[tuple[bool, str]]:
    """``text`` split into word pieces, each with whether a boundary comes before it (leading
    whitespace, or a change between word characters and a punctuation mark)."""
    out: list[tuple[bool, str]] = []
    for match in re.finditer(r"\s*([^\W_]+|[^\w\s])", text):
        spaced = match.start(1) > match.start()
        punct = not match.group(1)[0].isalnum()
        previous_punct = bool(out) and not out[-1][1][-1].isalnum()
        out.append((spaced or punct or previous_punct, match.group(1)))
    return out


__all__ = ["INSTRUCTION_VERBS", "CopiedInstructionProcessor", "request_sequence", "request_words"]
