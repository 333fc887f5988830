"""Grounded answers: once a tool has run, the planner names only the things the turn has seen.

A small planner writes its closing sentence from habit as much as from the tool's result: the nano
planner said "Done: I made the small star purple" after recolouring it yellow, and "I tracked the
circle" after tracking the square (tools/profiles/nano/README.md). A profile may list the words
such a sentence must not make up (``grounded_words``: for ``nano`` the shapes world's colours,
shapes, sizes, textures, backgrounds and columns). After a tool result in the current turn, a listed word
may be written only if the request or one of the turn's tool results has it; other words are
untouched, and so is every step before a tool has run (a question about a picture is answered
from the picture: "what colour is the star?" must be free to say "red").

Each word being seen is not enough: the nano planner, asked to box "the large dotted purple
triangle right of the small diamond", closed with "The large dotted purple diamond right of the
small dotted diamond right of the triangle purple diamond …", every word of it in the request. So
listed words written one after another, up to a noun the profile names (``grounded_nouns``), must
also be bound as the turn bound them: such a phrase must be a phrase of listed words in the
evidence (:func:`phrases`) with words left out, but no noun or relation after its first word
(:func:`binds`). "The small star" may come from "the small yellow star",
"the purple diamond" not from "the purple triangle right of the small diamond"; a phrase ends at
its noun, so "make the large star blue" stays free after "segment the large star, then make it
blue". Unless a relation the profile names (``grounded_relations``) follows the noun: then the
phrase runs on through it (and "of", "the", "a" after it) to what it relates, so that is bound
too. Boxing "the large dotted purple triangle right of the small diamond", the planner closed with
"… triangle right of the small diamond right of the triangle is in the box shown": with the
relations, the second "right" is held, as nothing in the request is right of the diamond.

Words are checked as they are spelled, over token boundaries: a token is held back when it would
complete a held word (the word so far, lower-cased, equal to it), or a listed word that would
leave its phrase unbound. One instance per ``generate`` call; the rows of a batch are tracked apart.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import torch
from transformers import LogitsProcessor

from vitron.agent.decoding import hold_back

_WORD = re.compile(r"[^\W_]+")
_ITEM = re.compile(r"[^\W_]+|[^\w\s]|_")
"""Words and punctuation marks: a run of listed words is broken by a mark as by an unlisted word."""


def words_of(text: str) -> frozenset[str]:
    """The words of ``text``, lower-cased (letters and digits; punctuation splits them)."""
    return frozenset(_WORD.findall(text.lower()))


def ungrounded(grounded_words: Iterable[str], evidence: str) -> frozenset[str]:
    """The listed words ``evidence`` (the request and the turn's tool results) does not have."""
    return frozenset(w.lower() for w in grounded_words) - words_of(evidence)


LINKS = frozenset({"of", "the", "a", "an"})
"""Unlisted words a phrase runs on through right after a relation ("right of the small circle")."""


def advance(
    run: tuple[str, ...],
    word: str,
    listed: frozenset[str],
    nouns: frozenset[str],
    relations: frozenset[str] = frozenset(),
) -> tuple[str, ...]:
    """The phrase of listed words once ``word`` (a lower-cased word or mark) follows ``run``.

    A listed word lengthens it, except after a noun, where it starts a new one unless it is a
    relation; after a relation, the :data:`LINKS` keep it; any other word or mark ends it."""
    if word in listed:
        if run and run[-1] in nouns and word not in relations:
            return (word,)
        return (*run, word)
    if run and run[-1] in relations and word in LINKS:
        return run
    return ()


def phrases(
    grounded_words: Iterable[str],
    evidence: str,
    nouns: Iterable[str] = (),
    relations: Iterable[str] = (),
) -> frozenset[tuple[str, ...]]:
    """The phrases of listed words in ``evidence``: its longest stretches of consecutive words
    that are all in ``grounded_words``, each ended by a word of ``nouns`` too, unless a word of
    ``relations`` follows it (:func:`advance`). "box the small yellow star left of the circle",
    with colours, shapes, sizes and columns listed and the shapes as nouns: ``("small", "yellow",
    "star")``, ``("left",)`` and ``("circle",)``; with "left" a relation too, ``("small",
    "yellow", "star", "left", "circle")``."""
    listed = frozenset(w.lower() for w in grounded_words)
    ends = frozenset(w.lower() for w in nouns)
    joins = frozenset(w.lower() for w in relations)
    found: list[tuple[str, ...]] = []
    run: tuple[str, ...] = ()
    for word in [*_ITEM.findall(evidence.lower()), ""]:  # "" ends the last phrase
        after = advance(run, word, listed, ends, joins)
        if run and after[: len(run)] != run:  # the phrase did not go on
            found.append(run)
        run = after
    return frozenset(found)


def binds(run: tuple[str, ...], phrase: tuple[str, ...], anchors: frozenset[str]) -> bool:
    """Whether ``run`` is ``phrase`` with words left out, none of them one of ``anchors`` (nouns,
    relations) once ``run`` has begun: "the small diamond" is bound by "the triangle right of the
    small diamond", "the orange diamond" not by "the orange triangle left of the diamond"."""
    return any(
        _follows(run[1:], phrase[start + 1 :], anchors)
        for start, word in enumerate(phrase)
        if run and word == run[0]
    )


def _follows(words: tuple[str, ...], rest: tuple[str, ...], anchors: frozenset[str]) -> bool:
    remaining = iter(rest)
    for word in words:
        for seen in remaining:
            if seen == word:
                break
            if seen in anchors:
                return False
        else:
            return False
    return True


class UngroundedWordsProcessor(LogitsProcessor):
    """Holds back every token that would complete a word of ``held``, and, given ``phrases``
    (:func:`phrases` of the evidence), every token that would complete a word of ``listed``
    whose phrase so far (the listed words just before it, back to the last word of ``nouns`` not
    followed by one of ``relations``: :func:`advance`) none of them binds (:func:`binds`).

    ``strings``: each token's text as it adds to earlier text (leading spaces kept; see
    :func:`vitron.agent.constrained._token_strings`); ``special`` tokens (tags, end of sequence)
    end the current word and are never held."""

    def __init__(
        self,
        strings: Sequence[str],
        held: frozenset[str],
        special: Iterable[int] = (),
        *,
        listed: Iterable[str] = (),
        nouns: Iterable[str] = (),
        relations: Iterable[str] = (),
        phrases: frozenset[tuple[str, ...]] | None = None,
    ) -> None:
        self.strings = strings
        self.held = held
        self.special = frozenset(special)
        self.listed = frozenset(w.lower() for w in listed) | held
        self.nouns = frozenset(w.lower() for w in nouns)
        self.relations = frozenset(w.lower() for w in relations)
        self.phrases = phrases
        self._start: int | None = None
        self._masks: dict[tuple[tuple[str, ...], str], torch.Tensor] = {}
        self._bound: dict[tuple[str, ...], bool] = {}

    def _written(self, partial: str, token: int) -> tuple[list[str], str]:
        """The words and punctuation marks ``token`` touches after ``partial`` (the current word
        so far), and the current word after it."""
        if token in self.special or token >= len(self.strings):
            return [], ""
        text = (partial + self.strings[token]).lower()
        pieces = _ITEM.findall(text)
        last = pieces[-1] if pieces else ""
        open_word = bool(_WORD.fullmatch(last)) and text.endswith(last)
        return pieces, last if open_word else ""

    def _is_bound(self, run: tuple[str, ...]) -> bool:
        """Whether a run of listed words is one the evidence has (in order, words other than
        nouns and relations may be left out: :func:`binds`)."""
        if self.phrases is None:
            return True
        bound = self._bound.get(run)
        if bound is None:
            anchors = self.nouns | self.relations
            bound = any(binds(run, seen, anchors) for seen in self.phrases)
            self._bound[run] = bound
        return bound

    def _after(self, run: tuple[str, ...], word: str) -> tuple[str, ...]:
        """The phrase once ``word`` follows ``run`` (:func:`advance`); a relation right after a
        noun that the evidence has on its own, and not after that noun, starts a new phrase
        instead: "the star moves right" allows "I moved the star right" (a direction)."""
        after = advance(run, word, self.listed, self.nouns, self.relations)
        if (
            word in self.relations
            and self.phrases is not None
            and len(after) > 1
            and (word,) in self.phrases
            and not self._is_bound(after)
        ):
            return (word,)
        return after

    def _holds(self, run: tuple[str, ...], words: list[str]) -> bool:
        """Whether writing ``words`` after the phrase ``run`` breaks a rule."""
        for word in words:
            if word in self.held:
                return True
            run = self._after(run, word)
            if word in self.listed and not self._is_bound(run):
                return True
        return False

    def _mask(self, run: tuple[str, ...], partial: str) -> torch.Tensor:
        """``True`` where a token is held back after ``partial``, the listed words ``run``
        written just before it."""
        mask = self._masks.get((run, partial))
        if mask is None:
            held = [i for i in range(len(self.strings))
                    if self._holds(run, self._written(partial, i)[0])]  # fmt: skip
            mask = torch.zeros(len(self.strings), dtype=torch.bool)
            mask[held] = True
            self._masks[(run, partial)] = mask
        return mask

    def _state(self, generated: list[int]) -> tuple[tuple[str, ...], str]:
        """The phrase the row is in (:func:`advance` over its complete words) and the word it is
        in the middle of (empty after a space or punctuation)."""
        run: tuple[str, ...] = ()
        partial = ""
        for token in generated:
            words, partial = self._written(partial, token)
            if token in self.special:
                run = ()
            for word in words[:-1] if partial else words:  # the complete ones
                run = self._after(run, word)
        return run, partial

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self._start is None:
            self._start = input_ids.shape[1]
        if not self.held and self.phrases is None:
            return scores
        vocab = scores.shape[-1]
        rows = []
        for generated in input_ids[:, self._start :].tolist():
            held = self._mask(*self._state(generated))
            row = torch.zeros(vocab, dtype=torch.bool)
            row[: min(vocab, held.shape[0])] = held[:vocab]
            rows.append(row)
        return hold_back(scores, torch.stack(rows))


__all__ = ["UngroundedWordsProcessor", "advance", "binds", "phrases", "ungrounded", "words_of"]
