"""The shapes world's vocabulary: shapes, colours, sizes, textures, backgrounds, and which
colour–shape combinations only the compositional split may use.

Everything here is data; names are the words the language generator writes, so a metric can
match an answer against them.
"""

from __future__ import annotations

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "diamond", "star")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (235, 205, 40),
    "purple": (140, 60, 190),
    "orange": (240, 130, 30),
}
SIZES: dict[str, float] = {"small": 0.10, "large": 0.17}
"""Size word -> half-extent of the shape as a fraction of the image side."""
TEXTURES: tuple[str, ...] = ("plain", "striped", "dotted")
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "grey": (128, 128, 128),
    "white": (235, 235, 230),
    "black": (25, 25, 30),
    "beige": (200, 185, 150),
}
"""Background tone name -> RGB; none is close to an object colour."""
BACKGROUND_STYLES: tuple[str, ...] = ("plain", "gradient", "noise", "checker")

HELD_OUT: frozenset[tuple[str, str]] = frozenset(
    (list(COLOURS)[(i + 1) % len(COLOURS)], shape) for i, shape in enumerate(SHAPES)
)
"""(colour, shape) pairs drawn only in the compositional split, one colour per shape: green circle,
blue square, yellow triangle, purple diamond, orange star. Every colour and every shape still
appears in training, only these combinations do not."""

NUMBER_WORDS: tuple[str, ...] = ("zero", "one", "two", "three", "four", "five", "six")


def is_held_out(colour: str, shape: str) -> bool:
    """True when ``colour shape`` belongs to the compositional split only."""
    return (colour, shape) in HELD_OUT


def plural(shape: str) -> str:
    return shape + "es" if shape.endswith("s") else shape + "s"
