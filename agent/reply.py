"""The reply as it is generated: its text, stop sequences, what may be shown while streaming, and
where its signal tokens are.

Streaming shows the reply's free text token by token; invocation markup is held back from the
first grammar tag on, because it becomes ``tool_calls``, not text (a malformed invocation is text
after all, and is released at the end). Streamed text is always a prefix of the final
``content`` — the free text :func:`~vitron.agent.parsing.parse_reply` finds — so the chunks of a
stream add up to exactly the message ``invoke`` returns.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from vitron.agent.invocation import GRAMMAR_TAGS, SIGNAL_TOKENS

logger = logging.getLogger(__name__)

_GRAMMAR_RE = re.compile(
    "|".join([*(re.escape(t) for t in GRAMMAR_TAGS), *(re.escape(t) for t in SIGNAL_TOKENS)]),
    re.IGNORECASE,
)
_SIGNAL_RE = re.compile("|".join(re.escape(t) for t in SIGNAL_TOKENS))
_HOLD_PREFIXES = sorted({*GRAMMAR_TAGS, *SIGNAL_TOKENS})
"""Grammar tags match in any case (the released data writes them in lower case)."""
LOOP_REPEATS = 4
LOOP_PERIOD = 8
LOOP_SPAN = 8
"""A reply ending in a run of at most ``LOOP_PERIOD`` tokens written ``LOOP_REPEATS`` times in a
row (and over at least ``LOOP_SPAN`` tokens, so "1111" is not one) is stopped there
(:meth:`ReplyText.looping`)."""


@dataclass
class FinishedText:
    """The final reply text (cut at a stop sequence) and its signal tokens.

    ``signal_steps[k]`` is the generation step that produced the k-th signal token of ``text``
    (text order), or ``None`` when that token was spelled out of ordinary tokens and so has no
    hidden state of its own.
    """

    text: str
    signal_steps: list[int | None]
    stop_sequence: str | None = None


@dataclass
class ReplyText:
    """Incremental decoding of one reply.

    Args:
        decode: token ids -> text (placeholders and EOS dropped, grammar tags kept).
        stop: stop sequences; the reply ends before the first one.
        signal_ids: token id -> signal token, for the tokens whose hidden states are embedded.
        hold: show nothing until the end (the whole content comes with the last chunk).
    """

    decode: Callable[[Sequence[int]], str]
    stop: Sequence[str] = ()
    signal_ids: Mapping[int, str] = field(default_factory=dict)
    hold: bool = False
    """Show nothing while generating: the final content may not be the generated text."""
    ids: list[int] = field(default_factory=list)
    text: str = ""
    shown: str = ""
    stop_sequence: str | None = None
    _signal_starts: dict[int, int] = field(default_factory=dict)

    @property
    def stopped(self) -> bool:
        return self.stop_sequence is not None

    def looping(self, repeats: int = LOOP_REPEATS, longest: int = LOOP_PERIOD) -> bool:
        """Whether the reply ends in one run of at most ``longest`` tokens written ``repeats``
        times in a row: a small model out of its depth ("…ofsegment_imagesegment_image…", to
        the token limit) never leaves such a loop, so generation stops there."""
        ids = self.ids
        for period in range(1, longest + 1):
            span = max(period * repeats, LOOP_SPAN)
            if len(ids) >= span and all(
                ids[-k] == ids[-k - period] for k in range(1, span - period + 1)
            ):
                return True
        return False

    def add(self, token_id: int) -> str:
        """Take one generated token; returns the new text that may be shown now ("" if none)."""
        before = len(self.text)
        self.ids.append(int(token_id))
        self.text = self.decode(self.ids)
        token = self.signal_ids.get(int(token_id))
        if token is not None:
            start = self.text.rfind(token, max(0, before - len(token)))
            if start >= 0:
                self._signal_starts[start] = len(self.ids) - 1
        cut = self._first_stop()
        if cut is not None:
            self.text = self.text[:cut]
        return self._show(self._visible())

    def finish(self) -> FinishedText:
        """The final text and which generation step made each of its signal tokens."""
        steps = [self._signal_starts.get(m.start()) for m in _SIGNAL_RE.finditer(self.text)]
        return FinishedText(self.text, steps, self.stop_sequence)

    def rest(self, content: str) -> str:
        """What is left to show of the final ``content`` after what was streamed."""
        if content.startswith(self.shown):
            return content[len(self.shown) :]
        # Only a decoder whose earlier text changes with later tokens gets here.
        common = len(os.path.commonprefix([self.shown, content]))
        logger.warning("streamed text %r is not a prefix of the reply", self.shown[common:])
        return content[common:]

    # ---- internals ----

    def _first_stop(self) -> int | None:
        cuts = [(self.text.find(s), s) for s in self.stop if s and s in self.text]
        if not cuts:
            return None
        cut, sequence = min(cuts)
        self.stop_sequence = sequence
        return cut

    def _visible(self) -> str:
        """The free text before any grammar, minus what might still turn into grammar, a stop
        sequence or a multi-byte character; stripped as the final content is."""
        text = self.text
        match = _GRAMMAR_RE.search(text)
        if match is not None:
            text = text[: match.start()]
        if not self.stopped:
            held = max(
                _held_suffix(text, _HOLD_PREFIXES, ignore_case=True),
                _held_suffix(text, self.stop),
            )
            text = text[: len(text) - held]
        return text.rstrip("\ufffd").strip()

    def _show(self, visible: str) -> str:
        if self.hold or not visible.startswith(self.shown):
            return ""
        delta = visible[len(self.shown) :]
        self.shown = visible
        return delta


def _held_suffix(text: str, sequences: Sequence[str], *, ignore_case: bool = False) -> int:
    """Length of the longest end of ``text`` that starts one of ``sequences``."""
    if ignore_case:
        text, sequences = text.lower(), [s.lower() for s in sequences]
    longest = 0
    for sequence in sequences:
        for size in range(min(len(sequence) - 1, len(text)), longest, -1):
            if text.endswith(sequence[:size]):
                longest = size
                break
    return longest


__all__ = ["FinishedText", "ReplyText"]
