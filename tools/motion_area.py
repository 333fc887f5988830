"""What an animation request lets move, as an area of the picture; the rest is held still.

"The red circle moves left" names one object and a direction. An image-to-video model asked for
that redraws the whole scene (the nano I2VGen-XL loses about half of the other objects on the
later frames), though the request moves one thing. So ``image_to_video`` can let only the named
object and its path change (the "motion brush" of image animation): the object is boxed by
Grounding DINO, as ``segment_image`` and ``edit_image`` locate a worded target, and the box,
grown by :data:`MARGIN`, is swept in the direction to the picture's edge, since a clip may carry
it that far. Regions given to the tool (a sketch or boxes) are taken as they are instead.

A generated clip has no picture to hold, so only its way is read (:func:`moving_direction`), for
``generate_video`` to start from noise that drifts that way (:func:`drift_per_frame`).

Coordinates: boxes are normalised ``[x1, y1, x2, y2]`` fractions of the picture, origin top-left,
y down; areas are H x W bool, True where the clip may differ from the picture.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vitron.tools.geometry import box_mask
from vitron.tools.placement import Direction, read_direction

MARGIN = 0.06
"""How far the area reaches past the object's box on each side, as a fraction of the picture's
width (x) or height (y): the box is a detector's, and a moving shape is drawn a little blurred."""
BOX_THRESHOLD = 0.3
"""The detector score the named object's box must reach (``segment_image``'s default)."""
STILL_MARGIN = 0.5
"""When no direction is read ('the flag waves'), how far past its box the object may change, as a
fraction of the box's own width and height."""

SPEED = 0.06
"""How far a carried object moves a frame, as a fraction of the picture's width (left, right) or
height (up, down): the shapes world's objects move 0.04–0.08 of the side a frame."""
TRAVEL = 0.5
"""The farthest a generated clip's starting noise drifts over the whole clip, as a fraction of the
side (:func:`drift_per_frame`): a long clip drifts slower rather than wrapping round."""

_MOVING = (
    r"(?:moves?|moving|goes|going|slides?|sliding|drifts?|drifting|travels?|travell?ing|"
    r"rolls?|rolling|glides?|gliding)"
)
_MOTION = re.compile(
    rf"^(?P<subject>.+?)(?:\s+(?:is|are))?\s+{_MOVING}(?:\s+(?P<where>.+?))?[\s.!]*$",
    re.IGNORECASE,
)
_MOVING_WAY = re.compile(
    rf"\b{_MOVING}\s+(?P<where>(?:to(?:wards?)?\s+the\s+)?(?:up|down|left|right)(?:wards?)?)\b",
    re.IGNORECASE,
)
_MOVE_IT = re.compile(
    r"^(?:move|slide|shift)\s+(?P<subject>.+?)\s+(?P<where>(?:to(?:wards?)?\s+the\s+)?"
    r"(?:up|down|left|right|upwards?|downwards?|leftwards?|rightwards?)(?:\s+.*)?)[\s.!]*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Motion:
    """A request read as the object that moves (its words) and the way (``None``: in place)."""

    subject: str
    direction: Direction | None


def read_motion(instruction: str) -> Motion | None:
    """'the small red circle moves left' → ``Motion('the small red circle', left)``; 'move the
    star up' too; 'the flag waves' and anything else without a moving verb → ``None``."""
    text = instruction.strip()
    match = _MOTION.match(text) or _MOVE_IT.match(text)
    if match is None:
        return None
    where = (match["where"] or "").strip()
    return Motion(match["subject"].strip(), read_direction(where) if where else None)


def moving_direction(description: str) -> Direction | None:
    """The way a described object moves: 'a red star moving right on a grey background' → right;
    ``None`` when no moving verb is followed by a direction."""
    match = _MOVING_WAY.search(description)
    return read_direction(match["where"]) if match else None


def drift_per_frame(direction: Direction, frames: int) -> tuple[float, float]:
    """(dx, dy) a frame, fractions of the side (y down): :data:`SPEED` along ``direction``, slower
    when the clip is long enough to travel past :data:`TRAVEL`."""
    speed = min(SPEED, TRAVEL / max(frames - 1, 1))
    return speed * _sign(direction.dx), speed * _sign(direction.dy)


def _sign(value: float) -> int:
    return (value > 0) - (value < 0)


def swept_area(
    box: Sequence[float], direction: Direction | None, width: int, height: int
) -> np.ndarray:
    """H x W bool: ``box`` grown by :data:`MARGIN` and stretched to the picture's edge along
    ``direction`` (both edges of an axis the direction does not name stay where they were);
    with no direction, grown by :data:`STILL_MARGIN` of its own size instead."""
    x1, y1, x2, y2 = (float(v) for v in box)
    if direction is None:
        grow_x, grow_y = STILL_MARGIN * (x2 - x1), STILL_MARGIN * (y2 - y1)
    else:
        grow_x, grow_y = MARGIN, MARGIN
    x1, y1, x2, y2 = x1 - grow_x, y1 - grow_y, x2 + grow_x, y2 + grow_y
    if direction is not None:
        x1 = 0.0 if direction.dx < 0 else x1
        x2 = 1.0 if direction.dx > 0 else x2
        y1 = 0.0 if direction.dy < 0 else y1
        y2 = 1.0 if direction.dy > 0 else y2
    clipped = [min(max(v, 0.0), 1.0) for v in (x1, y1, x2, y2)]
    return box_mask(clipped, width, height)


def regions_area(
    regions: Sequence[Sequence[float]], direction: Direction | None, width: int, height: int
) -> np.ndarray:
    """H x W bool: the union of the given regions, each swept along ``direction`` when the words
    name one (a person who boxes the car and writes 'drives left' means the road too)."""
    area = np.zeros((height, width), dtype=bool)
    for region in regions:
        if direction is None:
            area |= box_mask([float(v) for v in region], width, height)
        else:
            area |= swept_area(region, direction, width, height)
    return area


def path_step(box: Sequence[float], direction: Direction, frames: int) -> tuple[float, float]:
    """(dx, dy) a frame, fractions of the picture (y down): :data:`SPEED` along ``direction``,
    slower where the box would otherwise leave the picture before the clip's last frame (and 0
    on an axis it already touches the edge of)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    moves = max(frames - 1, 1)

    def along(sign: int, before: float, after: float) -> float:
        room = before if sign < 0 else after
        return sign * min(SPEED, max(room, 0.0) / moves)

    return along(_sign(direction.dx), x1, 1.0 - x2), along(_sign(direction.dy), y1, 1.0 - y2)
