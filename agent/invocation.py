"""The invocation grammar (DESIGN §4): raw LLM text <-> LangChain ``ToolCall`` dicts.

One invocation reads::

    <Module>segment_image</Module><Instruction>the zebra farthest away</Instruction><Region>(102, 211, 498, 903)</Region>[SEG]

- ``<Module>`` names a tool (a key of :data:`MODULES`);
- ``<Instruction>`` is the text instruction for the backend;
- zero or more ``<Region>`` boxes ``(x1, y1, x2, y2)``, integers 0–999 where ``q`` stands for
  ``q / 999`` of the width (x) or height (y) of the referenced media; in tool arguments a region is
  ``[x1, y1, x2, y2]`` normalised to [0, 1] (see :func:`quantize_coordinate`);
- an optional signal token (``[SEG]``, ``[TRK]``, ``[GEN]``, ``[VID]``, ``[EDIT]``): the model's
  hidden state there becomes the signal embedding handed to the backend (hybrid invocation).

The released Vitron data format is accepted too: ``<module>B</module> <instruction>segmentation:
zebra</instruction>`` with the letters of :data:`RELEASED_LETTERS` (from the public Vitron code:
A image generation, B image segmentation, C image editing, D video generation, E video tracking,
F video editing, G image-to-video).

Parsing (:mod:`vitron.agent.parsing`) never raises: ``parse_reply`` returns the calls, the free text around them (the message
content) and human-readable errors the model can correct. A malformed invocation stays in the
content as written, so nothing the model said is lost.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

logger = logging.getLogger(__name__)

MediaKind = Literal["image", "video"]
Box = tuple[float, float, float, float]

MODULE_OPEN, MODULE_CLOSE = "<Module>", "</Module>"
INSTRUCTION_OPEN, INSTRUCTION_CLOSE = "<Instruction>", "</Instruction>"
REGION_OPEN, REGION_CLOSE = "<Region>", "</Region>"
GRAMMAR_TAGS: tuple[str, ...] = (
    MODULE_OPEN,
    MODULE_CLOSE,
    INSTRUCTION_OPEN,
    INSTRUCTION_CLOSE,
    REGION_OPEN,
    REGION_CLOSE,
)
"""The tags of the grammar, in the order they appear in an invocation."""

SIGNAL_TOKENS: tuple[str, ...] = ("[SEG]", "[TRK]", "[GEN]", "[VID]", "[EDIT]")

REGION_SCALE = 999
"""Region integers run from 0 to ``REGION_SCALE``; ``q`` stands for ``q / REGION_SCALE``."""


@dataclass(frozen=True)
class ModuleSpec:
    """What the grammar knows about one module (tool).

    ``media`` names the argument that receives the conversation's current image or video handle
    (``None``: the tool takes no media input); ``signal_token`` is the token whose hidden state
    conditions the backend (``None``: text-only tool).
    """

    name: str
    media: MediaKind | None
    signal_token: str | None
    released_letter: str | None = None


MODULES: dict[str, ModuleSpec] = {
    spec.name: spec
    for spec in (
        ModuleSpec("segment_image", "image", "[SEG]", "B"),
        ModuleSpec("ground", "image", None),
        ModuleSpec("retrieve", None, None),
        ModuleSpec("track_video", "video", "[TRK]", "E"),
        ModuleSpec("generate_image", None, "[GEN]", "A"),
        ModuleSpec("generate_video", None, "[VID]", "D"),
        ModuleSpec("image_to_video", "image", "[VID]", "G"),
        ModuleSpec("edit_image", "image", "[EDIT]", "C"),
        ModuleSpec("edit_video", "video", "[EDIT]", "F"),
    )
}
"""Every module the grammar can name, by tool name."""

RELEASED_LETTERS: dict[str, str] = {
    spec.released_letter: name for name, spec in MODULES.items() if spec.released_letter
}
"""Letter of the released Vitron format -> tool name."""
RELEASED_OPEN = "<module>"
RELEASED_AFTER_NAME = "</module> <instruction>"
RELEASED_CLOSE = "</instruction>"
"""The released format's markup as the released data writes it (lower case, one space); the
parser reads any case and spacing, constrained decoding writes exactly this."""

# Tags match in any case (the released data writes them in lower case); signal tokens are
# tokens, so they match exactly, as the model's tokenizer does.
LEX_RE = re.compile(
    r"(?i:<(/?)(module|instruction|region)>)|" + "|".join(re.escape(t) for t in SIGNAL_TOKENS)
)
_NUMBER = r"[-+]?\d+(?:\.\d*)?"
_REGION_RE = re.compile(
    rf"^\s*[(\[]?\s*({_NUMBER})\s*,\s*({_NUMBER})\s*,\s*({_NUMBER})\s*,\s*({_NUMBER})\s*[)\]]?\s*$"
)
_SNIPPET = 60


# --------------------------------------------------------------------------------------------
# regions


def quantize_coordinate(value: float) -> int:
    """A normalised coordinate in [0, 1] -> the grammar's integer 0–999 (clamped, rounded)."""
    clamped = min(1.0, max(0.0, float(value)))
    return round(clamped * REGION_SCALE)


def dequantize_coordinate(q: int) -> float:
    """The grammar's integer -> a normalised coordinate, rounded to 4 decimals.

    Four decimals keep ``quantize_coordinate(dequantize_coordinate(q)) == q`` for every q in
    0–999 (the rounding error is below 0.5 / 999), so format -> parse -> format is stable.
    """
    return round(q / REGION_SCALE, 4)


def format_region(box: Sequence[float]) -> str:
    """``[x1, y1, x2, y2]`` normalised -> ``(x1, y1, x2, y2)`` integers 0–999, corners sorted."""
    if len(box) != 4:
        raise ValueError(f"a region needs 4 numbers [x1, y1, x2, y2], got {len(box)}: {box!r}")
    x1, y1, x2, y2 = (quantize_coordinate(v) for v in box)
    x1, x2 = sorted((x1, x2))
    y1, y2 = sorted((y1, y2))
    return f"({x1}, {y1}, {x2}, {y2})"


def parse_region(text: str) -> tuple[Box | None, str | None]:
    """Region text -> (normalised box, None) or (None, error).

    Integers are 0–999 grammar units; numbers written with a decimal point and all within [0, 1]
    are taken as already normalised (the released data). Swapped corners are put in order: a box
    is unambiguous either way.
    """
    match = _REGION_RE.match(text)
    if match is None:
        return None, f"region {snippet(text)!r} is not four numbers like (102, 211, 498, 903)"
    raw = match.groups()
    values = [float(v) for v in raw]
    if any("." in v for v in raw) and all(0.0 <= v <= 1.0 for v in values):
        normalised = values
    else:
        bad = [v for v in raw if "." in v or not 0 <= int(v) <= REGION_SCALE]
        if bad:
            return None, (
                f"region ({', '.join(raw)}): {', '.join(bad)} "
                f"{'is not an integer' if len(bad) == 1 else 'are not integers'} in 0-{REGION_SCALE}"
            )
        normalised = [dequantize_coordinate(int(v)) for v in raw]
    x1, y1, x2, y2 = normalised
    x1, x2 = sorted((x1, x2))
    y1, y2 = sorted((y1, y2))
    return (x1, y1, x2, y2), None


# --------------------------------------------------------------------------------------------
# formatting


def sanitize_text(text: str) -> str:
    """Remove grammar tags (any case) and signal tokens and strip: text the grammar can carry.

    Removal repeats until nothing changes, so a tag cannot be rebuilt from the pieces around a
    removed one (``<Mod<Module>ule>``).
    """
    previous = None
    while previous != text:
        previous = text
        text = LEX_RE.sub("", text)
    return text.strip()


def format_invocation(
    module: str,
    instruction: str,
    regions: Sequence[Sequence[float]] = (),
    *,
    signal: bool = True,
    signal_tokens: Mapping[str, str | None] | None = None,
) -> str:
    """One invocation in the grammar; the module's signal token is appended when ``signal``.

    ``instruction`` goes through :func:`sanitize_text`; ``regions`` are normalised boxes.
    ``signal_tokens`` overrides the module -> signal token map of :data:`MODULES`.
    """
    if module not in MODULES:
        raise ValueError(f"unknown module {module!r}; known modules: {', '.join(MODULES)}")
    parts = [
        f"{MODULE_OPEN}{module}{MODULE_CLOSE}",
        f"{INSTRUCTION_OPEN}{sanitize_text(instruction)}{INSTRUCTION_CLOSE}",
    ]
    parts += [f"{REGION_OPEN}{format_region(box)}{REGION_CLOSE}" for box in regions]
    token = signal_token_for(module, signal_tokens)
    if signal and token is not None:
        parts.append(token)
    return "".join(parts)


def format_tool_call(
    call: Mapping[str, Any],
    *,
    signal: bool = True,
    signal_tokens: Mapping[str, str | None] | None = None,
) -> str:
    """A ``ToolCall`` (name + args with ``instruction`` and optional ``regions``) in the grammar.

    Media handles and the ``signal`` handle are not written: the model sees media through
    placeholders and produces signals through its signal tokens.
    """
    args = call.get("args") or {}
    return format_invocation(
        str(call["name"]),
        str(args.get("instruction") or ""),
        args.get("regions") or (),
        signal=signal,
        signal_tokens=signal_tokens,
    )


def format_reply(
    content: str,
    calls: Sequence[Mapping[str, Any]] = (),
    *,
    signal: bool = True,
    signal_tokens: Mapping[str, str | None] | None = None,
) -> str:
    """An assistant reply: free text (sanitised) followed by its invocations."""
    pieces = [sanitize_text(content)]
    pieces += [format_tool_call(c, signal=signal, signal_tokens=signal_tokens) for c in calls]
    return " ".join(p for p in pieces if p)


def snippet(text: str) -> str:
    """``text`` on one line, cut to a readable length for an error message."""
    text = " ".join(text.split())
    return text if len(text) <= _SNIPPET else text[: _SNIPPET - 3] + "..."


def signal_token_for(module: str, signal_tokens: Mapping[str, str | None] | None) -> str | None:
    """The module's signal token: from ``signal_tokens`` when it names the module, else MODULES."""
    if signal_tokens is not None and module in signal_tokens:
        return signal_tokens[module]
    return MODULES[module].signal_token
