"""Best-match places: once ``retrieve`` has ranked the conversation's media, a closing answer that
names a picture (or video) by number names the one the ranking put first.

``retrieve`` lists its ranking best first, each medium by its place among the candidates (the
media the call named, else the conversation's: "1. img_… (picture 7) score 0.62; 2. …"), so
that an answer can say which picture won without looking a handle up. The nano planner does not
learn to copy that number: trained on answers that say it ("The best match is picture 7: …"), it
gave the right one a probability of 0.10 among ten pictures, and the committed planner says
"Picture 1 shows …" whatever won (tools/profiles/nano/README.md). A profile may therefore ask
(``best_match_places = true``) that, after a retrieve result in the turn, digits written right
after "picture" or "video" spell the place of that result's best match; everything else is left
to the planner, which decides whether to name a number at all. Without a ranked picture in the
turn, the closing writes no "picture" at all: there is no best match to name, and the nano
planner, which learnt "Picture N shows …" as retrieval's answer, opened 3 of 16 closings of one
generation request (the same request and picture, other handles and seeds in the tool's result)
with "Picture 7 shows …" (in the demo among them); held back, it wrote "Here is …" in all 16, as
trained.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import torch
from transformers import LogitsProcessor

from vitron.agent.decoding import hold_back

_BEST = re.compile(r"\b1\. (?:img|vid)_[0-9a-f]{16}(?:#\d+)? \((picture|video) (\d+)\)")
"""The first entry of retrieve's best-first listing, with its place."""
_CUE = re.compile(r"(picture|video)(\s?)(\d*)$")
"""A place word at the end of the text so far, then at most one space and the digits after it;
no word boundary before it, so a place word glued to the word before ("madePicture 1", written
by the nano planner) is held to the place too."""


def best_places(evidence: str) -> dict[str, str]:
    """``{"picture": "7"}`` (or ``"video"``) for each retrieve result in ``evidence`` (the
    request and the turn's tool results): the place of its best match; the latest result wins."""
    return {kind: number for kind, number in _BEST.findall(evidence)}


class BestMatchPlaceProcessor(LogitsProcessor):
    """Holds back every token that would write, right after "picture" or "video" (any case, at
    most one space between), digits other than the best match's place in ``places``
    (:func:`best_places`), or more digits after it; with no picture in ``places``, every token
    that would complete the word "picture" (any case). ``strings``: each token's text as it
    adds to earlier text; ``special`` tokens reset the text (tags, end of sequence)."""

    def __init__(
        self, strings: Sequence[str], places: dict[str, str], special: Iterable[int] = ()
    ) -> None:
        self.strings = strings
        self.places = dict(places)
        self.special = frozenset(special)
        self._start: int | None = None
        self._digit_tokens = [i for i, s in enumerate(strings) if re.match(r"\s?\d", s)]
        # no best match to name: the tokens that can end the word "picture" ("Picture" in nano's
        # vocabulary, "ure" after "Pict" in a byte-level one)
        self._word_ends = [] if "picture" in self.places else [
            i for i, s in enumerate(strings) if s.strip() and "picture".endswith(s.lstrip().lower())
        ]  # fmt: skip
        self._masks: dict[tuple[str, str, str], torch.Tensor] = {}

    def _mask(self, kind: str, space: str, digits: str) -> torch.Tensor:
        """``True`` where a token is held back after "<kind><space><digits>": a digit that does
        not continue the place; while the place is half written ("picture 1" of "picture 10"),
        every token but its next digits."""
        key = (kind, space, digits)
        mask = self._masks.get(key)
        if mask is None:
            number = self.places[kind]
            pending = bool(digits) and digits != number and number.startswith(digits)
            mask = torch.full((len(self.strings),), pending, dtype=torch.bool)
            if not digits or number.startswith(digits):
                rest = number[len(digits) :]
                # where one token spells the rest of the place, no shorter piece of it may start
                # it ("picture 1" then "0" reads as nothing the planner was trained on)
                spelt = any(self.strings[t].strip() == rest for t in self._digit_tokens)
                for token in self._digit_tokens:
                    text = self.strings[token]
                    if (space or digits) and text[:1].isspace():  # a new word, not more digits
                        continue
                    written = re.match(r"\s?(\d*)", text).group(1)
                    whole = text.lstrip() == written  # the token is digits and nothing else
                    after = digits + written
                    prefix = whole and not spelt and number.startswith(after)
                    mask[token] = not (prefix or after == number)
            self._masks[key] = mask
        return mask

    def _tail(self, generated: list[int]) -> str:
        """The row's text since its last special token."""
        text = ""
        for token in generated:
            if token in self.special or token >= len(self.strings):
                text = ""
            else:
                text += self.strings[token]
        return text

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self._start is None:
            self._start = input_ids.shape[1]
        vocab = scores.shape[-1]
        rows = []
        for generated in input_ids[:, self._start :].tolist():
            row = torch.zeros(vocab, dtype=torch.bool)
            tail = self._tail(generated)[-40:].lower()
            for token in self._word_ends:
                if token < vocab:
                    row[token] = (tail + self.strings[token].lower()).endswith("picture")
            cue = _CUE.search(tail)
            if cue and cue.group(1) in self.places:
                held = self._mask(*cue.groups())
                row[: min(vocab, held.shape[0])] |= held[:vocab]
            rows.append(row)
        return hold_back(scores, torch.stack(rows))


__all__ = ["BestMatchPlaceProcessor", "best_places"]
