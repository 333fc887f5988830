"""Parsing the invocation grammar (:mod:`vitron.agent.invocation`): raw LLM text -> LangChain
``ToolCall`` dicts, the free text around them, and errors the model can correct.

Both formats are read: this project's ``<Module>segment_image</Module><Instruction>…`` and the
released Vitron data's ``<module>B</module> <instruction>segmentation: zebra</instruction>`` (tags
in any case, modules by letter). Parsing never raises: a malformed invocation stays in the content
as written, so nothing the model said is lost.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.messages import ToolCall

from vitron.agent.invocation import (
    LEX_RE,
    MODULES,
    RELEASED_LETTERS,
    Box,
    MediaKind,
    parse_region,
    signal_token_for,
    snippet,
)

logger = logging.getLogger(__name__)

_RELEASED_PREFIX_RE = re.compile(r"^\s*[A-Za-z][A-Za-z _-]{0,30}:\s*")


@dataclass(frozen=True)
class Invocation:
    """One parsed invocation, before handles are attached.

    ``signal_index`` is the position of its signal token among all signal tokens of the text
    (text order, which is also token order), so signal embeddings read from the model's hidden
    states line up with invocations; ``span`` is the [start, end) character range in the text.
    """

    module: str
    instruction: str
    regions: tuple[Box, ...] = ()
    signal_token: str | None = None
    signal_index: int | None = None
    span: tuple[int, int] = (0, 0)
    style: Literal["vitron", "released"] = "vitron"

    @property
    def media(self) -> MediaKind | None:
        """The media argument this module takes (``image``, ``video`` or none)."""
        return MODULES[self.module].media

    def args(
        self, media: Mapping[str, str] | None = None, signal: str | None = None
    ) -> dict[str, Any]:
        """Tool arguments: instruction, regions if any, the media handle of its kind, signal."""
        args: dict[str, Any] = {"instruction": self.instruction}
        if self.regions:
            args["regions"] = [list(box) for box in self.regions]
        if self.media is not None and media and media.get(self.media):
            args[self.media] = media[self.media]
        if signal is not None:
            args["signal"] = signal
        return args

    def to_tool_call(
        self,
        call_id: str,
        *,
        media: Mapping[str, str] | None = None,
        signal: str | None = None,
    ) -> ToolCall:
        """A LangChain ``ToolCall`` dict for this invocation."""
        return ToolCall(
            name=self.module, args=self.args(media, signal), id=call_id, type="tool_call"
        )


@dataclass(frozen=True)
class ParsedReply:
    """What :func:`parse_reply` found: ``calls``, ``content``, ``errors`` and the details.

    ``calls[i]`` belongs to ``invocations[i]``; ``signal_count`` counts every signal token in the
    text, attached or not (the model yields one embedding per signal token).
    """

    calls: list[ToolCall]
    content: str
    errors: list[str]
    invocations: list[Invocation] = field(default_factory=list)
    signal_count: int = 0

    def with_signals(self, handles: Sequence[str]) -> list[ToolCall]:
        """The calls with ``args["signal"]`` set from one handle per signal token (text order).

        Raises ``ValueError`` when the number of handles differs from :attr:`signal_count`.
        """
        if len(handles) != self.signal_count:
            raise ValueError(
                f"got {len(handles)} signal handle(s) but the reply has {self.signal_count} "
                "signal token(s); pass one handle per signal token, in text order"
            )
        calls = []
        for call, invocation in zip(self.calls, self.invocations, strict=True):
            args = dict(call["args"])
            if invocation.signal_index is not None:
                args["signal"] = handles[invocation.signal_index]
            calls.append(ToolCall(name=call["name"], args=args, id=call["id"], type="tool_call"))
        return calls


@dataclass(frozen=True)
class _Item:
    kind: Literal["open", "close", "signal", "text"]
    value: str  # lower-case tag name, signal token, or the text
    start: int
    end: int

    @property
    def blank(self) -> bool:
        return self.kind == "text" and not self.value.strip()


def _lex(text: str) -> list[_Item]:
    items: list[_Item] = []
    position = 0
    for match in LEX_RE.finditer(text):
        if match.start() > position:
            items.append(_Item("text", text[position : match.start()], position, match.start()))
        if match.group(2) is not None:
            kind: Literal["open", "close"] = "close" if match.group(1) else "open"
            items.append(_Item(kind, match.group(2).lower(), match.start(), match.end()))
        else:
            items.append(_Item("signal", match.group(0), match.start(), match.end()))
        position = match.end()
    if position < len(text):
        items.append(_Item("text", text[position:], position, len(text)))
    return items


class _Cursor:
    """Walks the lexed items; whitespace between grammar parts is skipped."""

    def __init__(self, items: list[_Item], index: int) -> None:
        self.items = items
        self.index = index

    def peek(self) -> _Item | None:
        """The next item after blank text, without consuming anything."""
        i = self.index
        while i < len(self.items) and self.items[i].blank:
            i += 1
        return self.items[i] if i < len(self.items) else None

    def take(self) -> _Item:
        while self.items[self.index].blank:
            self.index += 1
        item = self.items[self.index]
        self.index += 1
        return item

    def at(self, kind: str, value: str | None = None) -> bool:
        item = self.peek()
        return item is not None and item.kind == kind and (value is None or item.value == value)

    def enclosed(self, tag: str) -> str | None:
        """After an opening ``tag``: its text (maybe empty) if the closing tag follows, else None."""
        body = ""
        if self.index < len(self.items) and self.items[self.index].kind == "text":
            body = self.items[self.index].value
            if not self.at_raw(self.index + 1, "close", tag):
                return None
            self.index += 2
            return body
        if self.at_raw(self.index, "close", tag):
            self.index += 1
            return body
        return None

    def at_raw(self, index: int, kind: str, value: str) -> bool:
        return (
            index < len(self.items)
            and self.items[index].kind == kind
            and self.items[index].value == value
        )


def _parse_invocation(
    text: str,
    items: list[_Item],
    start: int,
    signal_base: int,
    allowed: Collection[str] | None,
    signal_tokens: Mapping[str, str | None] | None,
) -> tuple[Invocation | None, list[str], int]:
    """Parse one invocation from the ``<Module>`` at ``items[start]``.

    Returns (invocation or None, problems, index of the first unconsumed item). On problems the
    cursor still moves past everything that belongs to the invocation, so it is reported once.
    """
    cursor = _Cursor(items, start + 1)
    problems: list[str] = []
    opened = items[start]

    raw_name = cursor.enclosed("module")
    if raw_name is None:
        problem = (
            f"<Module> at character {opened.start} is not followed by a module name and </Module>"
        )
        return None, [problem], start + 1
    name = raw_name.strip()
    style: Literal["vitron", "released"] = "vitron"
    if name in MODULES:
        module: str | None = name
    elif name.upper() in RELEASED_LETTERS:
        module, style = RELEASED_LETTERS[name.upper()], "released"
    else:
        module = None
        letters = ", ".join(f"{k}={v}" for k, v in sorted(RELEASED_LETTERS.items()))
        problems.append(
            f"unknown module {snippet(name)!r}; known modules: {', '.join(MODULES)} "
            f"(or the released letters {letters})"
        )
    if module is not None and allowed is not None and module not in allowed:
        problems.append(
            f"module {module!r} is not available here; available: {', '.join(sorted(allowed))}"
        )

    instructions: list[str] = []
    while cursor.at("open", "instruction"):
        cursor.take()
        body = cursor.enclosed("instruction")
        if body is None:
            problems.append("<Instruction> is not closed by </Instruction>")
            break
        body = body.strip()
        if style == "released":
            body = _RELEASED_PREFIX_RE.sub("", body, count=1).strip()
        instructions.append(body)
    if not instructions and not problems:
        problems.append("missing <Instruction>...</Instruction> after </Module>")

    regions: list[Box] = []
    while not problems and cursor.at("open", "region"):
        cursor.take()
        body = cursor.enclosed("region")
        if body is None:
            problems.append("<Region> is not closed by </Region>")
            break
        box, error = parse_region(body)
        if error is not None:
            problems.append(error)
        elif box is not None:
            regions.append(box)

    signal_token = signal_index = None
    if cursor.at("signal"):
        item = cursor.take()
        signal_token = item.value
        signal_index = signal_base  # a signal token inside the invocation would have broken it
        expected = signal_token_for(module, signal_tokens) if module is not None else None
        if module is not None and expected is None:
            problems.append(f"module {module!r} takes no signal token, got {signal_token}")
        elif module is not None and signal_token != expected:
            problems.append(
                f"module {module!r} takes the signal token {expected}, got {signal_token}"
            )

    end = cursor.index
    if problems:
        # Move past the whole malformed invocation (up to the next <Module> or plain text).
        while (
            end < len(items)
            and items[end].kind != "text"
            and not (items[end].kind == "open" and items[end].value == "module")
        ):
            end += 1
        where = f"invocation at character {opened.start} ({snippet(text[opened.start : items[end - 1].end])!r})"
        return None, [f"{where}: {p}" for p in problems], end
    assert module is not None
    invocation = Invocation(
        module=module,
        instruction="; ".join(instructions),
        regions=tuple(regions),
        signal_token=signal_token,
        signal_index=signal_index,
        span=(opened.start, items[end - 1].end),
        style=style,
    )
    return invocation, [], end


def parse_reply(
    text: str,
    *,
    modules: Collection[str] | None = None,
    media: Mapping[str, str] | None = None,
    signal_tokens: Mapping[str, str | None] | None = None,
    make_id: Callable[[int], str] | None = None,
) -> ParsedReply:
    """Parse raw model text into tool calls, free text and errors; never raises.

    Args:
        text: the model's reply.
        modules: the bound tools; an invocation of any other module is an error.
        media: default media handles by kind (``{"image": "img_…", "video": "vid_…"}``); each
            call gets the one its module takes (``Invocation.media``).
        signal_tokens: overrides the module -> signal token map of :data:`MODULES`.
        make_id: call index -> tool-call id (default: ``call_`` + random hex).
    """
    try:
        return _parse_reply(text, modules, media, signal_tokens, make_id)
    except Exception as exc:  # the parser must never take a turn down
        logger.exception("invocation parser failed")
        return ParsedReply(
            [], text if isinstance(text, str) else str(text), [f"parser failure: {exc!r}"]
        )


def _parse_reply(
    text: str,
    modules: Collection[str] | None,
    media: Mapping[str, str] | None,
    signal_tokens: Mapping[str, str | None] | None,
    make_id: Callable[[int], str] | None,
) -> ParsedReply:
    if not isinstance(text, str):
        return ParsedReply([], "", [f"expected text, got {type(text).__name__}"])
    make_id = make_id or (lambda _i: f"call_{uuid.uuid4().hex[:24]}")
    allowed = set(modules) if modules is not None else None
    items = _lex(text)
    invocations: list[Invocation] = []
    errors: list[str] = []
    removed: list[tuple[int, int]] = []
    signals_seen = 0
    i = 0
    while i < len(items):
        item = items[i]
        if item.kind == "open" and item.value == "module":
            invocation, problems, end = _parse_invocation(
                text, items, i, signals_seen, allowed, signal_tokens
            )
            signals_seen += sum(1 for it in items[i:end] if it.kind == "signal")
            errors += problems
            if invocation is not None:
                invocations.append(invocation)
                removed.append(invocation.span)
            i = max(end, i + 1)
            continue
        if item.kind == "signal":
            errors.append(
                f"signal token {item.value} at character {item.start} does not end an invocation"
            )
            signals_seen += 1
        elif item.kind in ("open", "close"):
            tag = f"<{'/' if item.kind == 'close' else ''}{item.value.capitalize()}>"
            errors.append(f"stray {tag} at character {item.start} outside an invocation")
        i += 1

    content = " ".join(piece.strip() for piece in _outside(text, removed) if piece.strip())
    calls = [inv.to_tool_call(make_id(k), media=media) for k, inv in enumerate(invocations)]
    return ParsedReply(calls, content, errors, invocations, signals_seen)


def _outside(text: str, spans: list[tuple[int, int]]) -> Iterator[str]:
    position = 0
    for start, end in spans:
        yield text[position:start]
        position = end
    yield text[position:]
