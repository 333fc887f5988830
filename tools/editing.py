"""What image and video editing share: reading an instruction, and how a local edit repaints.

``edit_image`` and ``edit_video`` speak one vocabulary (remove / replace / recolor / restyle, plus
add and move for images). Both read the target and the new content from the instruction the same
way (:func:`read_instruction`) and repaint a located area with the same text, negative text and
strength (:func:`repaint`); only how the area is found (SAM on an image, SAM 2 through a video)
differs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from vitron.tools.errors import VitronToolError

REMOVE_PROMPT = "empty background, nothing there"
"""What an erased area is repainted as."""

RECOLOR_STRENGTH = 0.8
"""Recolouring redraws most of the area but keeps its shapes."""
LOCAL_RESTYLE_STRENGTH = 0.7
"""Restyling inside an area keeps more of its shapes than recolouring."""

_VERBS = {
    "remove": r"(?:remove|delete|erase|get rid of|take out|take away|clear)",
    "replace": r"(?:replace|swap|change|turn|transform|make)",
    "recolor": r"(?:recolou?r|colou?r|paint|dye|make|turn|change)",
    "add": r"(?:add|put|place|insert|draw|include)",
    "move": r"(?:move|shift|drag|relocate|put)",
}
_PATTERNS: dict[str, list[re.Pattern[str]]] = {
    "remove": [re.compile(rf"^{_VERBS['remove']}\s+(?P<target>.+?)(?:\s+from\s+(?:the|this)\s+\w+)?$")],
    "replace": [
        re.compile(rf"^{_VERBS['replace']}\s+(?P<target>.+?)\s+(?:with|for|into|to|by)\s+(?P<content>.+)$")
    ],
    "recolor": [
        re.compile(rf"^{_VERBS['recolor']}\s+(?P<target>.+?)\s+(?:to|into|in)\s+(?P<content>.+)$"),
        re.compile(rf"^{_VERBS['recolor']}\s+(?P<target>.+)\s+(?P<content>\S+)$"),
    ],
    "add": [re.compile(rf"^{_VERBS['add']}\s+(?P<content>.+?)(?:\s+(?:to|on|in|into|at|onto)\s+.+)?$")],
    "move": [re.compile(rf"^{_VERBS['move']}\s+(?P<target>.+?)(?:\s+(?:to|towards|into|onto)\s+.+)?$")],
}  # fmt: skip


@dataclass(frozen=True)
class Reading:
    """What an instruction names: the thing to edit and what it should become."""

    target: str | None
    content: str | None


def read_instruction(operation: str, instruction: str) -> Reading:
    """The target and content of an instruction such as 'replace the dog with a cat'.

    Unrecognised phrasing falls back to the whole instruction (as the target for remove and
    move, as the content for add, replace, recolor and restyle).
    """
    text = instruction.strip().rstrip(".!").strip()
    if not text:
        return Reading(None, None)
    for pattern in _PATTERNS.get(operation, []):
        match = pattern.match(text.lower())
        if match:
            groups = match.groupdict()
            return Reading(groups.get("target"), groups.get("content"))
    if operation in ("remove", "move"):
        return Reading(text, None)
    return Reading(None, text)


_COLOUR_VERBS = re.compile(r"^(?:recolou?r|colou?r|paint|dye)\b")
_COLOUR_WORDS = frozenset(
    [
        "red",
        "orange",
        "yellow",
        "green",
        "blue",
        "purple",
        "violet",
        "pink",
        "brown",
        "black",
        "white",
        "grey",
        "gray",
        "gold",
        "golden",
        "silver",
        "beige",
        "cyan",
        "magenta",
        "turquoise",
        "teal",
        "navy",
        "maroon",
        "crimson",
        "dark",
        "light",
        "bright",
        "pale",
        "deep",
        "and",
    ]
)


def infer_operation(instruction: str) -> str:
    """The operation an instruction's phrasing names, for planners that send only words.

    'remove the dog' → remove; 'replace the dog with a cat' → replace; 'make the car dark blue'
    or 'paint the car in red' → recolor (the new content is colour words, or the verb is a
    colouring one); anything else → restyle.
    """
    text = instruction.strip().rstrip(".!").strip().lower()
    if _PATTERNS["remove"][0].match(text):
        return "remove"
    replacing = _PATTERNS["replace"][0].match(text)
    if replacing and not _is_colour(replacing["content"]):
        return "replace"
    for pattern in _PATTERNS["recolor"]:
        match = pattern.match(text)
        if match and (_COLOUR_VERBS.match(text) or _is_colour(match["content"])):
            return "recolor"
    return "restyle"


def _is_colour(words: str) -> bool:
    return set(words.split()) <= _COLOUR_WORDS


def required_content(content: str | None, what: str) -> str:
    """``content``, or an error asking for ``what`` ("what to put there ('…')")."""
    if not content:
        raise VitronToolError(f"say {what}: in the instruction or in `prompt`")
    return content


@dataclass(frozen=True)
class Repaint:
    """How a local edit repaints its area with inpainting."""

    text: str
    negative: str | None
    """``None``: the call's own ``negative_prompt``."""
    strength: float
    """How much of the area is redrawn (1: all of it)."""
    verb: str
    detail: str = ""

    def summary(self, how: str) -> str:
        """'replaced <how the area was found> with 'a cat''."""
        return f"{self.verb} {how}{self.detail}"


@dataclass(frozen=True)
class _Request:
    target: str | None
    content: str | None
    prompt: str | None
    negative: str
    strength: float | None


def _remove(r: _Request) -> Repaint:
    return Repaint(r.prompt or REMOVE_PROMPT, r.negative or r.target or "", r.strength or 1.0,
                   "removed")  # fmt: skip


def _replace(r: _Request) -> Repaint:
    content = required_content(r.content, "what to put there ('replace the dog with a cat')")
    return Repaint(content, None, r.strength or 1.0, "replaced", f" with {content!r}")


def _recolor(r: _Request) -> Repaint:
    content = required_content(r.content, "the new colour ('make the car red')")
    text = r.prompt or f"{r.target or 'it'} in {content}"
    return Repaint(text, None, r.strength or RECOLOR_STRENGTH, "recoloured", f" to {content!r}")


def _restyle(r: _Request) -> Repaint:
    content = required_content(r.content, "the style ('make it look like a watercolour')")
    text = r.prompt or (f"{r.target}, {content}" if r.target else content)
    return Repaint(text, None, r.strength or LOCAL_RESTYLE_STRENGTH, "restyled", f": {text!r}")


_REPAINTS: dict[str, Callable[[_Request], Repaint]] = {
    "remove": _remove,
    "replace": _replace,
    "recolor": _recolor,
    "restyle": _restyle,
}
REPAINT_OPERATIONS = tuple(_REPAINTS)
"""The operations :func:`repaint` knows: those that inpaint an area in place."""


def repaint(
    operation: str,
    *,
    target: str | None,
    content: str | None,
    prompt: str | None,
    negative: str,
    strength: float | None,
) -> Repaint:
    """The inpainting text, negative text and strength of a local ``operation``.

    ``target`` and ``content`` are what the instruction names (or the call's ``target`` and
    ``prompt``); ``prompt`` overrides the text; ``strength`` ``None`` takes the operation's default
    (1 to remove or replace, 0.8 to recolour, 0.7 to restyle an area). Raises when the operation
    needs content the call does not give.
    """
    if operation not in _REPAINTS:
        raise VitronToolError(
            f"{operation!r} does not repaint an area in place; one of {', '.join(_REPAINTS)} does"
        )
    return _REPAINTS[operation](_Request(target, content, prompt, negative, strength))
