"""Words about a scene: captions, unique referring expressions, questions and their answers.

Attribute words are spoken in a fixed order (size, texture, colour, shape; ``plain`` is never
said). A referring expression is *unique*: exactly one object of the scene fits it, by attributes
alone or with a spatial relation to another uniquely named object ("the small red circle left of
the blue square"), or as the extreme one along an axis ("the leftmost red circle").
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np

from vitron.evals.shapes.scene import Obj, Scene
from vitron.evals.shapes.vocab import NUMBER_WORDS

ATTRIBUTE_ORDER = ("size", "texture", "colour", "shape")
RELATION_MARGIN = 0.08
"""Centres must differ by more than this (fraction of the side) for a relation to hold."""

RELATIONS: dict[str, tuple[str, int]] = {
    "left of": ("x", -1),
    "right of": ("x", 1),
    "above": ("y", -1),
    "below": ("y", 1),
}
EXTREMES: dict[str, tuple[str, int]] = {
    "leftmost": ("x", -1),
    "rightmost": ("x", 1),
    "topmost": ("y", -1),
    "bottommost": ("y", 1),
}


def phrase(obj: Obj, keys: Sequence[str]) -> str:
    """``obj`` described by the attributes ``keys`` (in canonical order), e.g. ``small red circle``;
    without ``shape`` the head noun is ``shape`` ("the red shape")."""
    values = {"size": obj.size, "texture": obj.texture, "colour": obj.colour, "shape": obj.shape}
    words = [values[k] for k in ATTRIBUTE_ORDER if k in keys and values[k] != "plain"]
    if "shape" not in keys:
        words.append("shape")
    return " ".join(words)


def fits(obj: Obj, target: Obj, keys: Sequence[str]) -> bool:
    """Whether ``obj`` fits a description of ``target`` by ``keys`` (a plain texture is unsaid,
    so it constrains nothing)."""
    for key in keys:
        if key == "texture" and target.texture == "plain":
            continue
        if getattr(obj, key) != getattr(target, key):
            return False
    return True


def _subsets() -> list[tuple[str, ...]]:
    keys = ("size", "texture", "colour")
    found = [("shape",)]
    for n in (1, 2, 3):
        found += [(*c, "shape") for c in combinations(keys, n)]
    return found


SUBSETS = _subsets()
"""Attribute sets a description may use, shortest first; each includes the shape."""


def attribute_descriptions(scene: Scene, index: int) -> list[str]:
    """Every attribute-only description that picks out object ``index`` alone, shortest first."""
    target = scene.objects[index]
    unique = []
    for keys in SUBSETS:
        if "texture" in keys and target.texture == "plain":
            continue
        matching = [o for o in scene.objects if fits(o, target, keys)]
        if len(matching) == 1:
            unique.append(phrase(target, keys))
    return list(dict.fromkeys(unique))


def holds(a: Obj, b: Obj, relation: str) -> bool:
    axis, sign = RELATIONS[relation]
    return sign * (getattr(a, axis) - getattr(b, axis)) > RELATION_MARGIN


def refer(scene: Scene, index: int, rng: np.random.Generator) -> str | None:
    """A unique referring expression for object ``index`` ("the …"), or ``None`` if the scene
    allows none. Attribute-only when possible (a random one of the two shortest), else a relation
    to another uniquely named object, else an extreme along an axis."""
    options = attribute_descriptions(scene, index)
    if options:
        pick = options[int(rng.integers(min(2, len(options))))]
        return f"the {pick}"
    target = scene.objects[index]
    full = phrase(target, ATTRIBUTE_ORDER)
    twins = [
        j for j, o in enumerate(scene.objects) if j != index and fits(o, target, ATTRIBUTE_ORDER)
    ]
    relational = []
    for j, anchor in enumerate(scene.objects):
        if j == index or j in twins:
            continue
        anchor_names = attribute_descriptions(scene, j)
        if not anchor_names:
            continue
        for relation in RELATIONS:
            if holds(target, anchor, relation) and not any(
                holds(scene.objects[t], anchor, relation) for t in twins
            ):
                relational.append(f"the {full} {relation} the {anchor_names[0]}")
    if relational:
        return relational[int(rng.integers(len(relational)))]
    for word, (axis, sign) in EXTREMES.items():
        mine = sign * getattr(target, axis)
        if all(mine - sign * getattr(scene.objects[t], axis) > RELATION_MARGIN for t in twins):
            return f"the {word} {full}"
    return None


def caption(scene: Scene) -> str:
    """A one-sentence caption naming every object, back to front."""
    names = [f"a {o.name}" for o in scene.objects]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    style = "" if scene.style == "plain" else f" {scene.style}"
    return f"{listed} on a {scene.background}{style} background"


def number(n: int) -> str:
    return NUMBER_WORDS[n] if 0 <= n < len(NUMBER_WORDS) else str(n)


def horizontal_position(x: float) -> str:
    """``left``, ``centre`` or ``right`` third of the image."""
    return "left" if x < 1 / 3 else ("right" if x > 2 / 3 else "centre")


def layout_caption(phrases: list[str], background: str) -> str:
    """A picture's description from its objects' phrases: ``"a small red circle and a large blue
    square on a white background"``."""
    return f"{' and '.join(phrases)} on a {background} background"


def moving_caption(obj_name: str, direction: str, background: str) -> str:
    """A text-to-video request's clip: ``"a small red circle moving left on a grey background"``."""
    return f"a {obj_name} moving {direction} on a {background} background"
