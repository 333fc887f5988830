"""Constrained decoding: once ``<Module>`` is emitted, generation follows the invocation grammar.

A token-level state machine over the tokenizer's vocabulary:

``<Module>`` name (one of the bound modules, spelled with any tokens) ``</Module><Instruction>``
text (at least one visible character; no grammar tag or signal token spelled out)
``</Instruction>`` then up to ``max_regions`` ``<Region>(x1, y1, x2, y2)</Region>`` with integers
0–999, then optionally the module's signal token (the paper's invocation is text first, the signal
an addition: a backend without a trained signal projector runs on the text alone).

``style="released"`` follows the released Vitron weights' own format instead, spelled with ordinary
tokens: ``<module>B</module> <instruction>text</instruction>`` with lower-case tags and the letters
of :data:`~vitron.agent.invocation.RELEASED_LETTERS` (only bound modules that have a letter), then
optionally the module's signal token. The new ``<Module>``… tag tokens are never used there: the
released model never learned them. :func:`~vitron.agent.parsing.parse_reply` reads both.

Outside invocations the processor only keeps grammar tags, signal tokens and placeholders from
appearing (as tokens or spelled out in text), so free text cannot form a stray tag. It is
budget-aware: given ``max_new_tokens`` it never starts or extends an invocation it could not
finish in the tokens left, so even a random model's output always parses.

:class:`InvocationGrammar` holds the precomputed token tables for one tokenizer and module set
(build it once); :meth:`InvocationGrammar.logits_processor` makes the cheap per-generation
``LogitsProcessor``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Literal

import torch
from transformers import LogitsProcessor, PreTrainedTokenizerBase

from vitron.agent.invocation import (
    GRAMMAR_TAGS,
    INSTRUCTION_CLOSE,
    INSTRUCTION_OPEN,
    MODULE_CLOSE,
    MODULE_OPEN,
    MODULES,
    REGION_CLOSE,
    REGION_OPEN,
    RELEASED_AFTER_NAME,
    RELEASED_CLOSE,
    RELEASED_LETTERS,
    RELEASED_OPEN,
    SIGNAL_TOKENS,
)
from vitron.agent.tokens import PLACEHOLDER_TOKENS

logger = logging.getLogger(__name__)

Style = Literal["vitron", "released"]

FREE, NAME, NAME_DONE, INSTRUCTION, POST, REGION = range(6)
_INF = math.inf

# Region text "(" N ", " N ", " N ", " N ")" with N = 0 | [1-9][0-9]{0,2}, as a small DFA.
# A state is (field, part) with field 0-3 and part 0 (nothing yet), 1 (after a lone "0"),
# 2-4 (1-3 digits after a non-zero lead) or 5 (after ","); (-1, 0) is before "(", (4, 0) after ")".
_DFA_START = (-1, 0)
_DFA_ACCEPT = (4, 0)
_REGION_CHARS = set("(), 0123456789")


def _dfa_step(state: tuple[int, int], char: str) -> tuple[int, int] | None:
    field, part = state
    if state == _DFA_START:
        return (0, 0) if char == "(" else None
    if state == _DFA_ACCEPT:
        return None
    if part == 5:
        return (field + 1, 0) if char == " " else None
    if part == 0:
        if char == "0":
            return (field, 1)
        return (field, 2) if char in "123456789" else None
    complete = part in (1, 2, 3, 4)
    if part in (2, 3) and char.isdigit():
        return (field, part + 1)
    if complete and char == ",":
        return (field, 5) if field < 3 else None
    if complete and char == ")":
        return _DFA_ACCEPT if field == 3 else None
    return None


def _dfa_run(state: tuple[int, int], text: str) -> tuple[int, int] | None:
    for char in text:
        next_state = _dfa_step(state, char)
        if next_state is None:
            return None
        state = next_state
    return state


@dataclass(frozen=True)
class _State:
    phase: int = FREE
    tail: str = ""  # FREE / INSTRUCTION: longest suffix that starts a forbidden string
    name: str = ""  # NAME: prefix so far; later phases: the module
    count: int = 0  # INSTRUCTION: tokens so far
    content: bool = False  # INSTRUCTION: a visible character was written
    regions: int = 0
    dfa: tuple[int, int] = _DFA_START


class InvocationGrammar:
    """Token tables for constrained invocation decoding with one tokenizer and module set.

    Args:
        tokenizer: with the Vitron tokens added (grammar tags, signal tokens, placeholders).
        modules: the bound modules (tool names); default all of :data:`MODULES`.
        module_signal_tokens: module -> signal token (default from :data:`MODULES`).
        max_regions: most ``<Region>`` boxes per invocation (``vitron`` style).
        max_instruction_tokens: an instruction is closed after this many tokens.
        style: ``vitron`` (this project's tag tokens) or ``released`` (the released weights'
            lower-case tags spelled in text, modules by letter; bound modules without a letter
            cannot be invoked in that style).
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        modules: Iterable[str] | None = None,
        *,
        module_signal_tokens: Mapping[str, str | None] | None = None,
        max_regions: int = 4,
        max_instruction_tokens: int = 48,
        style: Style = "vitron",
    ) -> None:
        if style not in ("vitron", "released"):
            raise ValueError(f"unknown grammar style {style!r}; use 'vitron' or 'released'")
        self.style: Style = style
        signal_map = {name: spec.signal_token for name, spec in MODULES.items()}
        signal_map.update(module_signal_tokens or {})
        self.modules = sorted(set(modules) if modules is not None else set(MODULES))
        unknown = [m for m in self.modules if m not in signal_map]
        if unknown or not self.modules:
            raise ValueError(
                f"cannot constrain to modules {unknown or self.modules}; known: {sorted(signal_map)}"
            )
        if style == "released":
            self.modules = released_modules(self.modules)
            if not self.modules:
                raise ValueError(
                    f"none of the modules {sorted(set(modules or ()))} has a letter in the released "
                    f"format ({', '.join(f'{k}={v}' for k, v in sorted(RELEASED_LETTERS.items()))})"
                )
        self.max_regions = max_regions
        self.max_instruction_tokens = max_instruction_tokens
        self.vocab_size = len(tokenizer)

        def single_id(token: str) -> int:
            ids = tokenizer.encode(token, add_special_tokens=False)
            if len(ids) != 1:
                raise ValueError(
                    f"{token!r} is not one token ({ids}): add the Vitron tokens to the tokenizer"
                )
            return int(ids[0])

        self.tag = {tag: single_id(tag) for tag in GRAMMAR_TAGS}
        self.signal_ids = {token: single_id(token) for token in SIGNAL_TOKENS}
        odd = {
            m: signal_map[m] for m in self.modules if signal_map[m] not in (None, *SIGNAL_TOKENS)
        }
        if odd:
            raise ValueError(f"unknown signal tokens {odd}; signal tokens: {SIGNAL_TOKENS}")
        self.module_signal = {
            m: self.signal_ids[signal_map[m]] if signal_map[m] else None for m in self.modules
        }
        reserved = set(self.tag.values()) | set(self.signal_ids.values())
        reserved |= {single_id(t) for t in PLACEHOLDER_TOKENS}
        special = set(tokenizer.all_special_ids)
        eos = tokenizer.eos_token_id
        self.eos_ids = [eos] if eos is not None else []

        self.strings = _token_strings(tokenizer)
        self.plain = [i for i in range(self.vocab_size) if i not in reserved and i not in special]
        self.forbidden = sorted(
            {s.lower() for s in (*GRAMMAR_TAGS, *SIGNAL_TOKENS, *PLACEHOLDER_TOKENS)}
        )
        self._prefixes = {f[:k] for f in self.forbidden for k in range(1, len(f))}
        self._plain_set = set(self.plain)
        self._blank = {i for i in self.plain if not self.strings[i].strip()}
        self._lower = [text.lower() for text in self.strings]
        self._mask_cache: dict[tuple[_State, int | None], torch.Tensor] = {}
        self._free_cache: dict[tuple[str, bool], list[int]] = {}
        if style == "released":
            self._init_released()
            return

        self._name_cost = {m: self._spell_costs(m) for m in self.modules}
        self._region_tokens = [
            i for i in self.plain if self.strings[i] and set(self.strings[i]) <= _REGION_CHARS
        ]
        self._dfa_moves: dict[tuple[int, int], dict[tuple[int, int], list[int]]] = {}
        self._dfa_cost = self._region_costs()
        self.open_cost = min(self._after_name_cost(m) + self._name_cost[m][0] for m in self.modules)
        worst = [self.open_cost, self._dfa_cost[_DFA_START] + 2]
        worst += [c[0] + 5 for c in self._name_cost.values()]
        self.budget_horizon = 2 + int(max(c for c in worst if c < _INF))
        """Above this many tokens left, the budget cannot bind: masks ignore it."""
        unreachable = [m for m in self.modules if self._name_cost[m][0] == _INF]
        if unreachable:
            logger.warning("modules %s cannot be spelled with this vocabulary", unreachable)

    def _init_released(self) -> None:
        """Tables for the released style: every piece of markup is spelled with plain tokens."""
        letters = {spec.name: spec.released_letter for spec in MODULES.values()}
        self._targets = {f"{letters[m]}{RELEASED_AFTER_NAME}": m for m in self.modules}
        """What follows ``<module>`` up to the instruction text, per module."""
        self._target_cost = {t: self._spell_costs(t) for t in self._targets}
        self._close_cost = self._spell_costs(RELEASED_CLOSE)
        self._options_cache: dict[tuple, list[tuple[list[int], float]]] = {}
        self.open_cost = min(
            (c[0] + 1 + self._close_cost[0] for c in self._target_cost.values()), default=_INF
        )
        if self.open_cost == _INF:
            raise ValueError(
                "the released invocation markup cannot be spelled with this vocabulary"
            )
        self.budget_horizon = 2 + int(self.open_cost)

    # ---- precomputation ----

    def _spell_costs(self, name: str) -> list[float]:
        """cost[i]: fewest plain tokens that spell ``name[i:]``."""
        by_string: dict[str, int] = {}
        for i in self.plain:
            s = self.strings[i]
            if s and s in name:
                by_string.setdefault(s, i)
        cost = [_INF] * (len(name) + 1)
        cost[len(name)] = 0
        for i in range(len(name) - 1, -1, -1):
            for s in by_string:
                if name.startswith(s, i):
                    cost[i] = min(cost[i], 1 + cost[i + len(s)])
        return cost

    def _region_costs(self) -> dict[tuple[int, int], float]:
        states = {_DFA_START, _DFA_ACCEPT}
        frontier = [_DFA_START]
        while frontier:
            state = frontier.pop()
            moves: dict[tuple[int, int], list[int]] = {}
            for i in self._region_tokens:
                target = _dfa_run(state, self.strings[i])
                if target is not None:
                    moves.setdefault(target, []).append(i)
                    if target not in states:
                        states.add(target)
                        frontier.append(target)
            self._dfa_moves[state] = moves
        cost = {s: _INF for s in states}
        cost[_DFA_ACCEPT] = 0
        for _ in range(len(states)):
            for state, moves in self._dfa_moves.items():
                for target in moves:
                    cost[state] = min(cost[state], 1 + cost[target])
        if cost[_DFA_START] == _INF:
            logger.warning("region text cannot be spelled with this vocabulary: regions disabled")
        return cost

    def _after_name_cost(self, module: str) -> float:
        # </Module> <Instruction> one visible token </Instruction> (the signal is optional)
        return 4

    def _free_ids(self, tail: str, instruction: bool) -> list[int]:
        """Plain tokens that, written after ``tail``, spell no forbidden string (+EOS outside)."""
        key = (tail, instruction)
        if key not in self._free_cache:
            ok = [
                i for i in self.plain if not self._spells_forbidden(tail + self.strings[i].lower())
            ]
            self._free_cache[key] = ok if instruction else ok + self.eos_ids
        return self._free_cache[key]

    def _spells_forbidden(self, text: str) -> bool:
        return any(f in text for f in self.forbidden)

    def _new_tail(self, tail: str, text: str) -> str:
        joined = (tail + text.lower())[-max(len(f) for f in self.forbidden) :]
        for start in range(len(joined)):
            if joined[start:] in self._prefixes:
                return joined[start:]
        return ""

    # ---- the state machine ----

    def cost(self, state: _State) -> float:
        """Fewest tokens from ``state`` back to free text (end of the invocation)."""
        if self.style == "released":
            return self._released_cost(state)
        if state.phase == FREE:
            return 0
        if state.phase == NAME:
            options = [
                self._name_cost[m][len(state.name)] + self._after_name_cost(m)
                for m in self.modules
                if m.startswith(state.name)
            ]
            return min(options, default=_INF)
        if state.phase == NAME_DONE:
            return 3
        if state.phase == INSTRUCTION:
            return 1 if state.content else 2
        if state.phase == POST:
            return 0
        return self._dfa_cost.get(state.dfa, _INF) + 1  # REGION

    def advance(self, state: _State, token: int) -> _State:
        """The state after ``token``; anything off-grammar falls back to free text."""
        if self.style == "released":
            return self._released_step(state, token) or _State()
        text = self.strings[token] if 0 <= token < len(self.strings) else ""
        tag = self.tag
        if state.phase == FREE:
            if token == tag[MODULE_OPEN]:
                return _State(NAME)
            return _State(
                FREE, tail=self._new_tail(state.tail, text) if token in self._plain_set else ""
            )
        if state.phase == NAME:
            if token == tag[MODULE_CLOSE] and state.name in self.modules:
                return _State(NAME_DONE, name=state.name)
            if token in self._plain_set and any(
                m.startswith(state.name + text) for m in self.modules
            ):
                return replace(state, name=state.name + text)
            return _State()
        if state.phase == NAME_DONE:
            return (
                _State(INSTRUCTION, name=state.name) if token == tag[INSTRUCTION_OPEN] else _State()
            )
        if state.phase == INSTRUCTION:
            if token == tag[INSTRUCTION_CLOSE]:
                return _State(POST, name=state.name)
            if token in self._plain_set:
                return replace(
                    state,
                    count=state.count + 1,
                    content=state.content or bool(text.strip()),
                    tail=self._new_tail(state.tail, text),
                )
            return _State()
        if state.phase == POST:
            if token == tag[REGION_OPEN]:
                return _State(REGION, name=state.name, regions=state.regions, dfa=_DFA_START)
            if token == self.module_signal.get(state.name):
                return _State()
            return self.advance(_State(), token)  # the signal is optional
        # REGION
        if token == tag[REGION_CLOSE] and state.dfa == _DFA_ACCEPT:
            return _State(POST, name=state.name, regions=state.regions + 1)
        target = _dfa_run(state.dfa, text) if token in self._plain_set else None
        return replace(state, dfa=target) if target is not None else _State()

    def _options(self, state: _State) -> list[tuple[list[int], float]]:
        """(token ids, cost after emitting one of them) groups allowed in ``state``."""
        if self.style == "released":
            return self._released_options(state)
        tag = self.tag
        if state.phase == FREE:
            return [(self._free_ids(state.tail, False), 0), ([tag[MODULE_OPEN]], self.open_cost)]
        if state.phase == NAME:
            groups: list[tuple[list[int], float]] = []
            if state.name in self.modules:
                groups.append(([tag[MODULE_CLOSE]], 3))
            for i in self.plain:
                prefix = state.name + self.strings[i]
                if self.strings[i] and any(m.startswith(prefix) for m in self.modules):
                    groups.append(([i], self.cost(_State(NAME, name=prefix))))
            return groups
        signal = 0  # the signal token is optional: finishing never needs it
        if state.phase == NAME_DONE:
            return [([tag[INSTRUCTION_OPEN]], 2)]
        if state.phase == INSTRUCTION:
            close = [([tag[INSTRUCTION_CLOSE]], signal)] if state.content else []
            if state.count >= self.max_instruction_tokens and state.content:
                return close
            ids = self._free_ids(state.tail, True)
            visible = [i for i in ids if i not in self._blank]
            groups = [(visible, 1 + signal)]
            if state.count < self.max_instruction_tokens:
                groups.append(
                    ([i for i in ids if i in self._blank], (1 if state.content else 2) + signal)
                )
            return groups + close
        if state.phase == POST:
            groups = []
            if state.regions < self.max_regions and self._dfa_cost[_DFA_START] < _INF:
                groups.append(([tag[REGION_OPEN]], self._dfa_cost[_DFA_START] + 1 + signal))
            signal_id = self.module_signal.get(state.name)
            if signal_id is not None:
                groups.append(([signal_id], 0))
            return groups + self._options(_State())
        if state.dfa == _DFA_ACCEPT:
            return [([tag[REGION_CLOSE]], signal)]
        return [
            (ids, self._dfa_cost[target] + 1 + signal)
            for target, ids in self._dfa_moves[state.dfa].items()
        ]

    # ---- the released style ----

    def _close_progress(self, tail: str) -> int:
        """Characters of ``</instruction>`` already written at the end of ``tail``."""
        for start in range(len(tail)):
            if RELEASED_CLOSE.startswith(tail[start:]):
                return len(tail) - start
        return 0

    def _opens(self, joined: str) -> bool:
        return joined.endswith(RELEASED_OPEN) and not self._spells_forbidden(joined[:-1])

    def _released_cost(self, state: _State) -> float:
        if state.phase == NAME:
            return min(
                (
                    cost[len(state.name)] + 1 + self._close_cost[0]
                    for target, cost in self._target_cost.items()
                    if target.startswith(state.name)
                ),
                default=_INF,
            )
        if state.phase == INSTRUCTION:
            if not state.content:
                return 1 + self._close_cost[0]
            return min(self._close_cost[self._close_progress(state.tail)], self._close_cost[0])
        return 0  # FREE, POST

    def _released_step(self, state: _State, token: int) -> _State | None:
        """The state after ``token`` in the released style, ``None`` when it is off-grammar."""
        plain = token in self._plain_set
        text = self._lower[token] if plain else ""
        if state.phase == POST:
            if token == self.module_signal.get(state.name):
                return _State()
            return self._released_step(_State(), token)
        if state.phase == FREE:
            if not plain:
                return _State() if token in self.eos_ids else None
            joined = state.tail + text
            if self._opens(joined):
                return _State(NAME)
            if self._spells_forbidden(joined):
                return None
            return _State(FREE, tail=self._new_tail(state.tail, text))
        if not plain:
            return None
        if state.phase == NAME:
            prefix = state.name + self.strings[token]
            if prefix in self._targets:
                return _State(INSTRUCTION, name=self._targets[prefix])
            if self.strings[token] and any(t.startswith(prefix) for t in self._targets):
                return _State(NAME, name=prefix)
            return None
        # INSTRUCTION: text, then </instruction> spelled out; a visible character must come first
        joined = state.tail + text
        if joined.endswith(RELEASED_CLOSE) and not self._spells_forbidden(joined[:-1]):
            if state.content or joined[: -len(RELEASED_CLOSE)].strip():
                return _State(POST, name=state.name)
            return None
        if self._spells_forbidden(joined):
            return None
        tail = self._new_tail(state.tail, text)
        written = joined[: len(joined) - len(tail)]
        return replace(
            state, count=state.count + 1, content=state.content or bool(written.strip()), tail=tail
        )

    def _released_options(self, state: _State) -> list[tuple[list[int], float]]:
        """Every token's next state and its cost, grouped by cost (cached per kind of state)."""
        closing = state.phase == INSTRUCTION and state.count >= self.max_instruction_tokens
        key = (state.phase, state.name, state.tail, state.content, closing)
        if key not in self._options_cache:
            now = self._released_cost(state)
            candidates = [*self.plain, *self.signal_ids.values(), *self.eos_ids]
            by_cost: dict[float, list[int]] = {}
            for token in candidates:
                after = self._released_step(state, token)
                if after is None:
                    continue
                cost = self._released_cost(after)
                if closing and after.phase != POST and cost >= now:
                    continue  # past the instruction's length: only tokens that close it
                by_cost.setdefault(cost, []).append(token)
            if len(self._options_cache) > 20000:
                self._options_cache.clear()
            self._options_cache[key] = sorted(by_cost.items(), key=lambda item: item[0])
            self._options_cache[key] = [(ids, cost) for cost, ids in self._options_cache[key]]
        return self._options_cache[key]

    def allowed(self, state: _State, remaining: int | None = None) -> torch.Tensor:
        """(vocab,) bool mask of tokens allowed in ``state`` with ``remaining`` tokens left
        (including the one being chosen; ``None``: no budget)."""
        if remaining is not None and remaining > self.budget_horizon:
            remaining = None
        key = (state, remaining)
        mask = self._mask_cache.get(key)
        if mask is None:
            mask = torch.zeros(self.vocab_size, dtype=torch.bool)
            for ids, cost in self._options(state):
                if ids and (remaining is None or cost <= remaining - 1):
                    mask[ids] = True
            if not mask.any():  # only reachable when the budget was already too small
                mask[self.eos_ids or [self.plain[0]]] = True
            if len(self._mask_cache) > 20000:
                self._mask_cache.clear()
            self._mask_cache[key] = mask
        return mask

    def logits_processor(self, max_new_tokens: int | None = None) -> InvocationLogitsProcessor:
        """A fresh processor for one ``generate`` call (it remembers where generation started)."""
        return InvocationLogitsProcessor(self, max_new_tokens)

    def state_of(self, tokens: Iterable[int]) -> _State:
        """Run the machine over generated tokens (starting in free text)."""
        state = _State()
        for token in tokens:
            state = self.advance(state, int(token))
        return state


class InvocationLogitsProcessor(LogitsProcessor):
    """Masks every token the invocation grammar does not allow next.

    Use one instance per ``generate`` call: the first call records the prompt length, and only
    tokens generated after it drive the state machine. Beam search is fine (states are looked
    up by each row's generated tokens). ``max_new_tokens`` enables the budget rule.
    """

    def __init__(self, grammar: InvocationGrammar, max_new_tokens: int | None = None) -> None:
        self.grammar = grammar
        self.max_new_tokens = max_new_tokens
        self._start: int | None = None
        self._states: dict[tuple[int, ...], _State] = {(): _State()}

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self._start is None:
            self._start = input_ids.shape[1]
        generated = input_ids[:, self._start :].tolist()
        remaining = None if self.max_new_tokens is None else self.max_new_tokens - len(generated[0])
        states: dict[tuple[int, ...], _State] = {}
        masks = []
        for row in generated:
            key = tuple(row)
            state = states.get(key) or self._states.get(key)
            if state is None:
                parent = self._states.get(key[:-1]) if key else _State()
                state = (
                    self.grammar.advance(parent, key[-1])
                    if parent is not None
                    else self.grammar.state_of(key)
                )
            states[key] = state
            masks.append(self.grammar.allowed(state, remaining))
        self._states = states
        allowed = torch.stack(masks).to(scores.device)
        vocab = scores.shape[-1]
        if vocab > allowed.shape[1]:
            allowed = torch.nn.functional.pad(allowed, (0, vocab - allowed.shape[1]), value=False)
        return scores.masked_fill(~allowed[:, :vocab], float("-inf"))


def released_modules(modules: Iterable[str]) -> list[str]:
    """The modules, of ``modules``, the released format can invoke (those with a letter)."""
    lettered = set(RELEASED_LETTERS.values())
    return sorted(m for m in modules if m in lettered)


def _token_strings(tokenizer: PreTrainedTokenizerBase) -> list[str]:
    """The text each token adds when decoded after other text (leading spaces kept).

    Decodes ``[anchor, token]`` and strips the anchor's text, which keeps the word-initial space
    that SentencePiece tokenizers drop when a token is decoded alone.
    """
    anchor_ids = tokenizer.encode("a", add_special_tokens=False)
    anchor = anchor_ids[-1:] if anchor_ids else []
    prefix = tokenizer.decode(anchor) if anchor else ""
    pairs = tokenizer.batch_decode(
        [anchor + [i] for i in range(len(tokenizer))], skip_special_tokens=False
    )
    return [text[len(prefix) :] if text.startswith(prefix) else text for text in pairs]
