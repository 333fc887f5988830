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
tasks is such an in-order selection. With the profile's ``grounded_words`` (the words that tell one
object from another: :mod:`vitron.agent.grounded`), words may be left out only where none of them
is, and an instruction does not end right before one: it wrote "… right of the diamond" for "…
right of the small diamond", and "make the circle red" for "make the purple circle red", naming
another object. Only an instruction an edit verb opened may gather words from two clauses
(:data:`CLAUSE_BREAKS`): "make the star red" for "First segment the star, then make it red", but
not "a … background circle in it" for "Generate a … background, then segment the circle in it".
The model still chooses which words and how many; outside an instruction nothing changes. It runs after the invocation
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
from vitron.agent.decoding import hold_back
from vitron.agent.invocation import INSTRUCTION_CLOSE, MODULES

_WORD = re.compile(r"[^\W_]+|[^\w\s]")

INSTRUCTION_VERBS = frozenset({"make", "remove", "move", "add"})
"""Words an editing module's instruction may open with, once: editing tools take
InstructPix2Pix-style commands ("make the star yellow", "remove the circle"), which a request need
not contain ("… and recolour it yellow"). A request that has some of them may open only with
those: the nano planner wrote "move the small star yellow" for "make the small star yellow",
another edit. Anywhere else they are words like any other (given everywhere, the nano planner wrote
"make the add add add …" rather than a word it did not want)."""
EDITING_MODULES = frozenset(name for name, spec in MODULES.items() if spec.signal_token == "[EDIT]")
"""The modules whose instructions are edit commands (those an ``[EDIT]`` signal conditions:
``edit_image``, ``edit_video``), the only ones an edit verb may open: asked to
"segment the astronaut" in a photo (a word the shapes world lacks), the nano planner called
``retrieve("make the Astronaut")``."""


def opening_verbs(sequence: tuple[str, ...]) -> frozenset[str]:
    """The edit verbs an instruction for a request of these words may open with: the request's
    own, or any of :data:`INSTRUCTION_VERBS` when it has none."""
    return INSTRUCTION_VERBS.intersection(sequence) or INSTRUCTION_VERBS


def request_words(request: str) -> frozenset[str]:
    """The words (and punctuation marks) of ``request``, lower-cased."""
    return frozenset(request_sequence(request))


def request_sequence(request: str) -> tuple[str, ...]:
    """The words (and punctuation marks) of ``request`` in order, lower-cased."""
    return tuple(_WORD.findall(request.lower()))


_ODD_SPACE = re.compile(r"\s\s|[^\S ]")
SPACE = " "
"""The current word right after a space: none, and no second space may follow."""
START: frozenset[int] = frozenset({-1})
"""No word written yet: an edit verb may open the instruction."""
UNOPENED: frozenset[int] = frozenset({-4})
"""No word written yet in the instruction of a module outside :data:`EDITING_MODULES`: any of the
request's words may start it, no edit verb."""
OPENED: frozenset[int] = frozenset({-2})
"""Only an edit verb written: copying starts anywhere in the request, as at the start."""
VERB = -3
"""Kept among the places of an instruction an edit verb opened: such an instruction may gather its
words from two clauses ("First segment the star, then make it red" -> "make the star red")."""
CLAUSE_BREAKS = frozenset({",", ";", ".", "then"})
"""Words that end a clause. An instruction no edit verb opened may not leave one out between two
words it copies: the nano planner segmented "a small orange circle on a beige background circle
in it" for "Generate a small orange circle on a beige background, then segment the circle in it"
(no such instruction of the shapes world's tasks crosses a clause)."""

DANGLING = frozenset({"a", "an", "the", "of", "and", "or", "to", "at", "in", "on", "with", "from"})
"""Words an instruction may not end on: an article, preposition or conjunction leaves its phrase
open. The nano planner closed "make the" for "Please make the purple triangle blue in the video":
the rule against ending before a grounded word let it pass, because "the" could also be the one
before "video". No instruction of the shapes world's tasks ends on one."""


@dataclass(frozen=True)
class _Row:
    state: _State
    places: frozenset[int] = START
    """Where in the request the instruction's last whole word can be (:data:`START`,
    :data:`OPENED`: none yet). A word the request has twice can be either."""
    partial: str = ""
    """The instruction's current word so far (lower-cased; empty between words, :data:`SPACE`
    right after a space)."""


class CopiedInstructionProcessor(LogitsProcessor):
    """Inside an ``<Instruction>``, allows only tokens that continue or start a word found in
    ``request`` after the instruction's previous word, and not past a word of ``keep`` (or an
    edit verb of :func:`opening_verbs`; whitespace always; ``</Instruction>`` between words).
    One instance per ``generate`` call, after the grammar's processor."""

    def __init__(
        self, grammar: InvocationGrammar, request: str, keep: frozenset[str] = frozenset()
    ) -> None:
        self.grammar = grammar
        self.sequence = request_sequence(request)
        self.verbs = opening_verbs(self.sequence)
        self.keep = keep
        self.cased = not any(w[1:] != w[1:].lower() for w in _WORD.findall(request))
        """Whether capitals may only open a word (they may anywhere when the request has a word
        like "iPhone"): the nano planner wrote "pURPle", spelling the word case-blind."""
        """Words an instruction may not leave out between two words it copies."""
        self.close = grammar.tag[INSTRUCTION_CLOSE]
        self._start: int | None = None
        self._rows: dict[tuple[int, ...], _Row] = {(): _Row(_State())}
        self._prefixes: dict[frozenset[int], frozenset[str]] = {}
        self._allowed: dict[tuple[frozenset[int], str], torch.Tensor] = {}

    def _next_places(self, place: int, across: bool = False) -> range | list[int]:
        """Where the word after one at ``place`` can be: anywhere later, but not past a word of
        :attr:`keep`, nor past a clause break unless ``across`` (an edit verb opened the
        instruction); the first word can be anywhere."""
        if place == VERB:
            return []
        if place < 0:
            return range(len(self.sequence))
        if not self.keep and across:
            return range(place + 1, len(self.sequence))
        out = []
        for index in range(place + 1, len(self.sequence)):
            out.append(index)
            word = self.sequence[index]
            if word in self.keep or (not across and word in CLAUSE_BREAKS):
                break
        return out

    def _after(self, places: frozenset[int], word: str) -> frozenset[int] | None:
        """Where ``word`` can be once written after ``places`` (:data:`OPENED` for an opening edit
        verb; ``None``: nowhere). An instruction an edit verb opened keeps :data:`VERB`."""
        if places == START and word in self.verbs:
            return OPENED
        across = _across(places)
        found = frozenset(
            i for p in places for i in self._next_places(p, across) if self.sequence[i] == word
        )
        if not found:
            return None
        return found | {VERB} if across else found

    def _may_close(self, places: frozenset[int]) -> bool:
        """Whether the instruction may end here: not on a :data:`DANGLING` word, and not right
        before a word of :attr:`keep` (it wrote "make the" for "make the purple circle red" when
        "circle" could not follow)."""
        if any(p >= 0 and self.sequence[p] in DANGLING for p in places):
            return False  # every place holds the same word: the one just written
        return not self.keep or any(
            p < 0 or p + 1 >= len(self.sequence) or self.sequence[p + 1] not in self.keep
            for p in places
            if p != VERB
        )

    def _prefixes_after(self, places: frozenset[int]) -> frozenset[str]:
        prefixes = self._prefixes.get(places)
        if prefixes is None:
            across = _across(places)
            words = {self.sequence[i] for p in places for i in self._next_places(p, across)}
            if places == START:
                words |= self.verbs
            prefixes = frozenset(w[:k] for w in words for k in range(1, len(w) + 1))
            self._prefixes[places] = prefixes
        return prefixes

    def _next(
        self, places: frozenset[int], partial: str, text: str
    ) -> tuple[frozenset[int], str] | None:
        """``(places, partial)`` after ``text`` is written (``None``: it leaves the copy). A
        token may end one word and start others ("star." -> "star", "."): each piece is checked.
        Words are parted by one plain space: ``partial`` is :data:`SPACE` right after one."""
        lowered = text.lower()
        if _ODD_SPACE.search(lowered) or (partial == SPACE and lowered[:1].isspace()):
            return None  # "make the  purple circle": two spaces, or a newline
        partial = partial.strip()
        if not lowered.strip():
            if not partial:
                return places, SPACE
            after = self._after(places, partial)
            return None if after is None else (after, SPACE)
        pieces = _pieces(text)
        if "".join(piece for _, piece in pieces) != "".join(text.split()):
            return None  # a character no word is made of ("_", a control character)
        current = partial
        for start, spelled in pieces:
            opens = start or not current
            if self.cased and spelled[int(opens) :] != spelled[int(opens) :].lower():
                return None
            piece = spelled.lower()
            if start and current:  # a word boundary before this piece: the word so far is whole
                after = self._after(places, current)
                if after is None:
                    return None
                places, current = after, ""
            current += piece
            if current not in self._prefixes_after(places):
                return None
        if lowered[-1].isspace():  # a trailing space ends the word
            after = self._after(places, current)
            return None if after is None else (after, SPACE)
        return places, current

    def _mask(self, places: frozenset[int], partial: str) -> torch.Tensor:
        mask = self._allowed.get((places, partial))
        if mask is None:
            mask = torch.zeros(self.grammar.vocab_size, dtype=torch.bool)
            ok = [i for i in self.grammar.plain
                  if self._next(places, partial, self.grammar.strings[i]) is not None]  # fmt: skip
            mask[ok] = True
            word = partial.strip()
            ended = self._after(places, word) if word else places
            if ended is not None and self._may_close(ended):
                mask[self.close] = True
            self._allowed[(places, partial)] = mask
        return mask

    def _advance(self, row: _Row, token: int) -> _Row:
        state = self.grammar.advance(row.state, token)
        if state.phase != INSTRUCTION:
            return _Row(state)
        if row.state.phase != INSTRUCTION:  # just opened
            return _Row(state, START if state.name in EDITING_MODULES else UNOPENED)
        step = self._next(row.places, row.partial, self.grammar.strings[token])
        return _Row(state, *step) if step is not None else _Row(state, row.places)

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
                allowed = self._mask(row.places, row.partial)
                mask[: min(vocab, allowed.shape[0])] = allowed[:vocab]
                mask[allowed.shape[0] :] = False
            masks.append(mask)
        self._rows = rows
        # a row the copy leaves nothing to write keeps the grammar's choice
        return hold_back(scores, ~torch.stack(masks))


def _across(places: frozenset[int]) -> bool:
    """Whether an edit verb opened the instruction (its words may come from two clauses)."""
    return places == OPENED or VERB in places


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


__all__ = [
    "INSTRUCTION_VERBS",
    "EDITING_MODULES",
    "CopiedInstructionProcessor",
    "opening_verbs",
    "request_sequence",
    "request_words",
]
