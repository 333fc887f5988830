"""SAM masks for one target: the referring step of ``segment_image``, shared with ``edit_image``.

A target is given by normalised ``[x1, y1, x2, y2]`` regions (one mask per box), ``[x, y]`` points
(fractions of the image, origin top-left) with labels, an earlier mask to refine, or words located
by Grounding DINO (its best box prompts SAM). A signal embedding (SAM space) adds its projected
prompt tokens to every prompt. Words that name the background (:data:`BACKGROUND`) are not a
detector's job: the background is what the objects SAM's automatic generator finds leave.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from vitron.tools.backend import CallContext
from vitron.tools.compositing import grow
from vitron.tools.editing import BACKGROUND
from vitron.tools.errors import VitronToolError
from vitron.tools.geometry import mask_box, points_to_pixels, region_to_pixels
from vitron.tools.signals import project_signal
from vitron.tools.steps.detection import detect

if TYPE_CHECKING:
    from PIL import Image

    from vitron.tools.models.sam import SamMask

SIGNAL_COMPONENT = "sam_signal"
BACKGROUND_NOTE = " (the background: outside every object SAM finds)"


class MaskRequest(Protocol):
    """What :func:`find_masks` reads (``segment_image``'s arguments have it all)."""

    image: str
    instruction: str
    regions: Sequence[Sequence[float]] | None
    points: Sequence[Sequence[float]] | None
    point_labels: Sequence[int] | None
    mask: str | None
    box_threshold: float
    signal: str | None


@dataclass
class MaskTarget:
    """A :class:`MaskRequest` built by a backend for its own target."""

    image: str
    instruction: str = ""
    regions: Sequence[Sequence[float]] | None = None
    points: Sequence[Sequence[float]] | None = None
    point_labels: Sequence[int] | None = None
    mask: str | None = None
    box_threshold: float = 0.3
    signal: str | None = None


def find_masks(target: MaskRequest, call: CallContext) -> tuple[list[SamMask], str]:
    """SAM masks for ``target`` and a note on how a text target was located (empty for box,
    point and mask prompts). Precedence: regions, points, mask, words."""
    image = call.workspace.get_image(target.image)
    width, height = image.size
    sam = call.models.get("sam", call.progress)
    prior = call.workspace.get_mask(target.mask) if target.mask else None
    if prior is not None and prior.shape != (height, width):
        raise VitronToolError(
            f"{target.mask} is {prior.shape[1]}x{prior.shape[0]} but {target.image} is "
            f"{width}x{height}"
        )
    tokens = project_signal(target.signal, SIGNAL_COMPONENT, call, width=sam.prompt_dim,
                            consumer="SAM")  # fmt: skip

    located = ""
    prompts: list[dict[str, np.ndarray | None]] = []
    if target.regions:
        prompts = [{"box": region_to_pixels(r, width, height)} for r in target.regions]
    elif target.points:
        labels = target.point_labels or [1] * len(target.points)
        prompts = [
            {
                "points": points_to_pixels(target.points, width, height),
                "point_labels": np.array(labels),
            }
        ]
    elif prior is not None:
        box = mask_box(prior)
        prompts = [{"box": region_to_pixels(box, width, height) if box else None, "mask": prior}]
    elif BACKGROUND.match(target.instruction.strip()):
        from vitron.tools.models.sam import SamMask

        return [SamMask(background_mask(call, target.image, image), 1.0)], BACKGROUND_NOTE
    else:
        found = detect(call, target.image, target.instruction,
                       box_threshold=target.box_threshold, max_boxes=1)  # fmt: skip
        if not found:
            raise VitronToolError(
                f"could not find {target.instruction!r} in {target.image} (no Grounding DINO box "
                f"above {target.box_threshold}); give a region or points, or lower box_threshold"
            )
        best = found[0]
        located = f" (located by Grounding DINO as {best.label!r}, score {best.score:.2f})"
        prompts = [{"box": region_to_pixels(best.box, width, height)}]
    return [
        sam.segment(target.image, image, extra_tokens=tokens, **prompt) for prompt in prompts
    ], located


def background_mask(
    call: CallContext, handle: str, image: Image.Image, clear: int = 0
) -> np.ndarray:
    """H x W bool: the pixels outside every object mask of SAM's automatic generator for the
    image ``handle`` (a mask covering half the image or more is background itself, not an
    object), kept ``clear`` px away from the objects (an edit that grows its area by that much
    would otherwise swallow small objects)."""
    sam = call.models.get("sam", call.progress)
    objects = [m.mask for m in sam.automatic(image, key=handle) if m.mask.mean() < 0.5]
    width, height = image.size
    found = np.logical_or.reduce(objects) if objects else np.zeros((height, width), dtype=bool)
    area = ~grow(found, clear) if clear else ~found
    if not area.any():
        raise VitronToolError(f"SAM's objects cover the whole of {handle}: it has no background")
    return area
