"""Scenes of the shapes world: what objects there are, where, and how they render.

A :class:`Scene` is pure data (attributes and centres as fractions of the image side); rendering it
at any square size gives the image, each object's *visible* mask (occluders removed) and its box.
Coordinates: origin top-left, x right, y down; a pixel ``(row, col)`` is sampled at its centre
``((col + 0.5) / size, (row + 0.5) / size)``. Boxes are ``[x1, y1, x2, y2]`` normalised, the
right/bottom edges exclusive (as :func:`vitron.tools.geometry.mask_box`).

Nothing here draws random numbers except :func:`sample_scene`, and only from the generator it is
given, so a seed fixes every byte.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from vitron.evals.shapes.vocab import (
    BACKGROUND_STYLES,
    BACKGROUNDS,
    COLOURS,
    SHAPES,
    SIZES,
    TEXTURES,
    is_held_out,
)

DEFAULT_SIZE = 64
"""Render size the perception models of the ``nano`` profile are sized for (generation uses 32)."""
MIN_VISIBLE = 0.55
"""Every object keeps at least this fraction of its own pixels visible, so it can be referred to."""


@dataclass(frozen=True)
class Obj:
    """One shape: its attributes and its centre ``(x, y)`` as fractions of the image side."""

    shape: str
    colour: str
    size: str
    texture: str
    x: float
    y: float

    @property
    def name(self) -> str:
        """Full description, e.g. ``small striped red circle`` (``plain`` is not spoken)."""
        texture = "" if self.texture == "plain" else self.texture + " "
        return f"{self.size} {texture}{self.colour} {self.shape}"

    def attributes(self) -> tuple[str, str, str, str]:
        return (self.size, self.texture, self.colour, self.shape)


@dataclass(frozen=True)
class Scene:
    """Objects back to front (later ones are drawn over earlier ones) on a background."""

    objects: tuple[Obj, ...]
    background: str = "grey"
    style: str = "plain"
    noise_seed: int = 0

    def with_objects(self, objects: tuple[Obj, ...]) -> Scene:
        return replace(self, objects=objects)


@dataclass
class Rendered:
    """A rendered scene: ``image`` (S x S x 3 uint8), visible ``masks`` (S x S bool, one per object,
    in scene order), and ``boxes`` (normalised, ``None`` for an object with no visible pixel)."""

    image: np.ndarray
    masks: list[np.ndarray] = field(default_factory=list)
    boxes: list[list[float] | None] = field(default_factory=list)


_seen: contextvars.ContextVar[set[tuple[str, str]] | None] = contextvars.ContextVar(
    "shapes_seen", default=None
)


class record_combinations:
    """Collects every (colour, shape) drawn or sampled inside the ``with`` block, so a dataset can
    prove which combinations a sample shows or names (see ``Sample.meta``)."""

    def __enter__(self) -> set[tuple[str, str]]:
        self.seen: set[tuple[str, str]] = set()
        self._token = _seen.set(self.seen)
        return self.seen

    def __exit__(self, *exc: object) -> None:
        _seen.reset(self._token)


def _note(objects: tuple[Obj, ...] | list[Obj]) -> None:
    seen = _seen.get()
    if seen is not None:
        seen.update((o.colour, o.shape) for o in objects)


# ------------------------------------------------------------------------------- geometry


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    centres = (np.arange(size, dtype=np.float64) + 0.5) / size
    return np.meshgrid(centres, centres)  # xs, ys (S x S)


def _circle(u: np.ndarray, v: np.ndarray, r: float) -> np.ndarray:
    return u**2 + v**2 <= r**2


def _square(u: np.ndarray, v: np.ndarray, r: float) -> np.ndarray:
    return np.maximum(np.abs(u), np.abs(v)) <= 0.85 * r


def _triangle(u: np.ndarray, v: np.ndarray, r: float) -> np.ndarray:
    # apex (0, -r), base from (-0.95 r, 0.8 r) to (0.95 r, 0.8 r)
    return (v <= 0.8 * r) & (np.abs(u) <= 0.95 * r * (v + r) / (1.8 * r))


def _diamond(u: np.ndarray, v: np.ndarray, r: float) -> np.ndarray:
    return np.abs(u) + np.abs(v) <= r


def _star(u: np.ndarray, v: np.ndarray, r: float) -> np.ndarray:
    theta = np.arctan2(u, -v)  # 0 points up
    return np.hypot(u, v) <= r * (0.72 + 0.28 * np.cos(5 * theta))


SHAPE_FUNCTIONS: dict[str, Callable[[np.ndarray, np.ndarray, float], np.ndarray]] = {
    "circle": _circle,
    "square": _square,
    "triangle": _triangle,
    "diamond": _diamond,
    "star": _star,
}


def object_mask(obj: Obj, size: int) -> np.ndarray:
    """The full (unoccluded) S x S bool mask of ``obj``; parts outside the image are cut off."""
    xs, ys = _grid(size)
    return SHAPE_FUNCTIONS[obj.shape](xs - obj.x, ys - obj.y, SIZES[obj.size])


def _texture(texture: str, size: int) -> np.ndarray:
    """Where a texture darkens the fill (S x S bool); empty for ``plain``."""
    period = max(2, round(size / 16))
    rows, cols = np.mgrid[0:size, 0:size]
    if texture == "striped":
        return ((rows + cols) // period) % 2 == 1
    if texture == "dotted":
        return ((rows // period) % 2 == 0) & ((cols // period) % 2 == 0)
    return np.zeros((size, size), dtype=bool)


def render_background(scene: Scene, size: int) -> np.ndarray:
    """The background alone, S x S x 3 uint8."""
    tone = np.array(BACKGROUNDS[scene.background], dtype=np.float64)
    xs, ys = _grid(size)
    canvas = np.broadcast_to(tone, (size, size, 3)).copy()
    if scene.style == "gradient":
        canvas *= (0.75 + 0.5 * xs)[..., None]
    elif scene.style == "noise":
        noise = np.random.default_rng(scene.noise_seed).normal(0.0, 12.0, (size, size, 1))
        canvas += noise
    elif scene.style == "checker":
        cell = max(1, size // 8)
        rows, cols = np.mgrid[0:size, 0:size]
        canvas += np.where(((rows // cell + cols // cell) % 2)[..., None] == 1, 18.0, -18.0)
    return np.clip(np.rint(canvas), 0, 255).astype(np.uint8)


def render(scene: Scene, size: int = DEFAULT_SIZE) -> Rendered:
    """Draw ``scene`` at ``size`` x ``size``: image, visible masks and boxes of every object."""
    from vitron.tools.geometry import mask_box

    _note(scene.objects)
    image = render_background(scene, size)
    full = [object_mask(o, size) for o in scene.objects]
    for obj, mask in zip(scene.objects, full, strict=True):
        colour = np.array(COLOURS[obj.colour], dtype=np.float64)
        fill = np.broadcast_to(colour, (size, size, 3)).copy()
        dark = _texture(obj.texture, size)
        fill[dark] *= 0.55
        image[mask] = np.rint(fill[mask]).astype(np.uint8)
    visible = []
    for i, mask in enumerate(full):
        above = np.zeros_like(mask)
        for later in full[i + 1 :]:
            above |= later
        visible.append(mask & ~above)
    return Rendered(image=image, masks=visible, boxes=[mask_box(m) for m in visible])


def visible_fractions(scene: Scene, size: int = DEFAULT_SIZE) -> list[float]:
    """Each object's visible pixels over its own in-image pixels (0 for an object off the image)."""
    rendered = render(scene, size)
    fractions = []
    for obj, mask in zip(scene.objects, rendered.masks, strict=True):
        own = object_mask(obj, size).sum()
        fractions.append(float(mask.sum() / own) if own else 0.0)
    return fractions


# ------------------------------------------------------------------------------- sampling


def random_object(
    rng: np.random.Generator, allow: Callable[[str, str], bool], margin: float = 0.12
) -> Obj:
    """An object with attributes ``allow(colour, shape)`` accepts, fully inside the image."""
    while True:
        shape = SHAPES[rng.integers(len(SHAPES))]
        colour = list(COLOURS)[rng.integers(len(COLOURS))]
        if allow(colour, shape):
            break
    size = list(SIZES)[rng.integers(len(SIZES))]
    texture = TEXTURES[rng.integers(len(TEXTURES))]
    half = SIZES[size] + 0.01
    low, high = max(margin, half), 1.0 - max(margin, half)
    x, y = (round(float(v), 3) for v in rng.uniform(low, high, size=2))
    obj = Obj(shape, colour, size, texture, x, y)
    _note([obj])
    return obj


def training_combination(colour: str, shape: str) -> bool:
    return not is_held_out(colour, shape)


def layout_scene(
    rng: np.random.Generator,
    objects: tuple[int, int] = (1, 2),
    allow: Callable[[str, str], bool] = training_combination,
    size: int = 32,
) -> Scene:
    """A plain-background scene of ``objects[0]..objects[1]`` objects placed anywhere, each at
    least :data:`MIN_VISIBLE` visible at ``size`` px (what layout-to-image is trained and
    measured on, at the generation task's 32 px)."""
    count = int(rng.integers(objects[0], objects[1] + 1))
    background = list(BACKGROUNDS)[int(rng.integers(len(BACKGROUNDS)))]
    while True:
        scene = Scene(tuple(random_object(rng, allow) for _ in range(count)), background)
        if min(visible_fractions(scene, size)) >= MIN_VISIBLE:
            return scene


def sample_scene(
    rng: np.random.Generator,
    *,
    compositional: bool = False,
    objects: tuple[int, int] = (1, 4),
    duplicate: float = 0.3,
    size: int = DEFAULT_SIZE,
) -> Scene:
    """A random scene of ``objects[0]..objects[1]`` shapes, each at least :data:`MIN_VISIBLE`
    visible. Outside the compositional split no held-out colour–shape pair appears; inside it,
    the first object always is one (and the others may be anything). With probability
    ``duplicate`` one object repeats another's attributes, so references need relations."""
    count = int(rng.integers(objects[0], objects[1] + 1))
    background = list(BACKGROUNDS)[rng.integers(len(BACKGROUNDS))]
    style = BACKGROUND_STYLES[rng.integers(len(BACKGROUND_STYLES))]
    noise_seed = int(rng.integers(2**31))
    allow_other = (lambda c, s: True) if compositional else training_combination
    for _ in range(200):
        chosen: list[Obj] = []
        for i in range(count):
            allow = is_held_out if compositional and i == 0 else allow_other
            obj = random_object(rng, allow)
            if i > 0 and rng.random() < duplicate:
                twin = chosen[int(rng.integers(len(chosen)))]
                obj = replace(twin, x=obj.x, y=obj.y)
            chosen.append(obj)
        order = rng.permutation(count)  # the held-out object is not always at the back
        scene = Scene(tuple(chosen[i] for i in order), background, style, noise_seed)
        if min(visible_fractions(scene, size)) >= MIN_VISIBLE:
            return scene
    raise RuntimeError("could not place the objects without hiding one; use fewer objects")
