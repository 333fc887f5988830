"""What image and video editing share: reading an instruction, and how a local edit repaints.

``edit_image`` and ``edit_video`` speak one vocabulary (remove / replace / recolor / restyle, plus
add and move for images). Both read the target and the new content from the instruction the same
way (:func:`read_instruction`) and repaint a located area with the same text, negative text and
strength (:func:`repaint`); only how the area is found (SAM on an image, SAM 2 through a video)
differs. An add or a move worded with a place or direction ("add a cat at the top left", "move the
cat up") also yields those words, which :mod:`vitron.tools.placement` turns into a box.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from vitron.tools.errors import VitronToolError
from vitron.tools.placement import names_place

BACKGROUND = re.compile(r"(?i)^(the\s+)?(image'?s\s+|picture'?s\s+)?background$")
"""Words that name the background: no detector is trained to box it (nano's Grounding DINO finds
no box for it; a released one boxes the whole picture), so it is found as what the objects leave."""
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


_PLACED: dict[str, re.Pattern[str]] = {
    "add": re.compile(rf"^{_VERBS['add']}\s+(?P<content>.+)$"),
    "move": re.compile(rf"^{_VERBS['move']}\s+(?P<target>.+)$"),
}
"""add / move with the place words split off: all that is left is the content / target."""


@dataclass(frozen=True)
class Reading:
    """What an instruction names: the thing to edit, what it should become, and (add and move
    only) the words that say where it goes ('at the centre', 'to the left', 'up')."""

    target: str | None
    content: str | None
    where: str | None = None


def split_place(operation: str, text: str) -> tuple[str, str] | None:
    """``(instruction before, place words)`` when ``text`` (lower case) is an ``operation`` ('add'
    or 'move') ending in words that name a place ('add a star in the top left corner') or, for a
    move, a direction ('move the star up'); else ``None``. The longest such ending wins, so
    'move the left square to the right' keeps 'the left square' as its target."""
    pattern = _PLACED.get(operation)
    if pattern is None:
        return None
    words = text.split()
    for start in range(2, len(words)):  # the verb and at least one word of what is placed
        rest, where = " ".join(words[:start]), " ".join(words[start:])
        if names_place(where, move=operation == "move") and pattern.match(rest):
            return rest, where
    return None


def read_instruction(operation: str, instruction: str) -> Reading:
    """The target and content of an instruction such as 'replace the dog with a cat', and for
    add and move the place words ('add a hat at the top left' -> content 'a hat', where 'at the
    top left').

    Unrecognised phrasing falls back to the whole instruction (as the target for remove and
    move, as the content for add, replace, recolor and restyle).
    """
    text = instruction.strip().rstrip(".!").strip()
    if not text:
        return Reading(None, None)
    if operation == "restyle" and (background := _background_change(text.lower())):
        return background
    placed = split_place(operation, text.lower())
    if placed is not None:
        rest, where = placed
        groups = _PLACED[operation].match(rest).groupdict()  # type: ignore[union-attr]
        return Reading(groups.get("target"), groups.get("content"), where)
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


_ADD_VERBS = re.compile(r"^(?:add|put|place|insert|draw)\b")
_MOVE_VERBS = re.compile(r"^(?:move|shift|drag|relocate)\b")


def infer_operation(instruction: str) -> str:
    """The operation an instruction's phrasing names, for planners that send only words.

    'remove the dog' → remove; 'replace the dog with a cat' → replace; 'make the car dark blue'
    or 'paint the car in red' → recolor (the new content is colour words, or the verb is a
    colouring one); 'add a cat at the top left' (add / put / place / insert / draw, ending in a
    place) → add; 'move the cat up' or '… to the left' (move / shift / drag, ending in a
    direction or a place) → move; 'make the background beige' or 'replace the background with a
    beach' → restyle (of the background: :func:`read_instruction` gives it as the target);
    anything else → restyle, including an add or move whose words name no place in the image
    ('add snow', 'add a hat on the dog': InstructPix2Pix's own kind of instruction), so only a box
    can be drawn into where the words give one.
    """
    text = instruction.strip().rstrip(".!").strip().lower()
    if _PATTERNS["remove"][0].match(text):
        return "remove"
    if _background_change(text):
        return "restyle"
    replacing = _PATTERNS["replace"][0].match(text)
    if replacing and not _is_colour(replacing["content"]):
        return "replace"
    for pattern in _PATTERNS["recolor"]:
        match = pattern.match(text)
        if match and (_COLOUR_VERBS.match(text) or _is_colour(match["content"])):
            return "recolor"
    if _ADD_VERBS.match(text) and split_place("add", text):
        return "add"
    if _MOVE_VERBS.match(text) and split_place("move", text):
        return "move"
    return "restyle"


def _background_change(text: str) -> Reading | None:
    """'make the background beige', 'change the background to a beach' (lower case): the
    background (its target) and what it becomes ('beige background'), else ``None``.
    InstructPix2Pix's kind of edit, restyled inside what the objects leave, not a recolour or
    replacement of a thing to find."""
    for pattern in (*_PATTERNS["recolor"], *_PATTERNS["replace"]):
        match = pattern.match(text)
        if match and BACKGROUND.match(match["target"]):
            return Reading(match["target"], f"{match['content']} background")
    return None


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
    paints_the_request: bool = True
    """Whether the pass paints what the request describes, so the planner's signal (which stands
    for that: the target's new look, the added object) conditions it too. A removal paints only
    background: the signal appended to "empty background, nothing there" drew part of the object
    back (nano/README.md)."""

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
                   "removed", paints_the_request=False)  # fmt: skip


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
