"""Grounding DINO detections for words: the one way every text target reaches the model.

``ground``, ``segment_image``, ``track_video`` and the edit tools all locate words through
:func:`detect`, so the text is limited here to what the model reads (with a note to the call when
something was left out). Boxes are normalised ``[x1, y1, x2, y2]`` fractions of the image, origin
top-left.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from vitron.tools.backend import CallContext
from vitron.tools.errors import VitronToolError
from vitron.tools.geometry import box_gap, box_iou, mask_box

if TYPE_CHECKING:
    from vitron.tools.models.grounding_dino import Detection


def phrases(instruction: str) -> list[str]:
    """Phrases separated by periods, semicolons or new lines."""
    return [p.strip() for p in re.split(r"[.;\n]+", instruction) if p.strip()]


def detect(
    call: CallContext,
    image: str,
    instruction: str,
    *,
    regions: Sequence[Sequence[float]] | None = None,
    near: str | None = None,
    box_threshold: float = 0.35,
    text_threshold: float = 0.25,
    max_boxes: int = 10,
) -> list[Detection]:
    """Boxes for the phrases of ``instruction`` in the image (or ``vid_…#n`` frame) ``image``,
    best first, at most ``max_boxes``.

    ``regions`` keeps only detections centred inside one of them; ``near`` (a mask handle) ranks
    detections by closeness to that mask, leaving out the masked object itself.
    """
    from vitron.tools.models.grounding_dino import limit_phrases

    picture = call.workspace.get_image(image)
    engine = call.models.get("grounding_dino", call.progress)
    kept, note = limit_phrases(engine, phrases(instruction))
    if note and note not in call.notes:
        call.notes.append(note)  # the tool wrapper adds it to the result
    found = engine.detect(
        picture,
        kept,
        box_threshold=box_threshold,
        text_threshold=text_threshold,
        max_boxes=100 if near else max_boxes,
    )
    if regions:
        found = [d for d in found if any(_centre_in(d.box, r) for r in regions)]
    if near:
        anchor = mask_box(call.workspace.get_mask(near))
        if anchor is None:
            raise VitronToolError(f"{near} is empty, so nothing can be next to it")
        found = [d for d in found if box_iou(d.box, anchor) < 0.5]
        found.sort(key=lambda d: (box_gap(d.box, anchor), -d.score))
    return found[:max_boxes]


def detect_classes(
    call: CallContext,
    image: str,
    names: Sequence[str],
    *,
    regions: Sequence[Sequence[float]] | None = None,
    box_threshold: float = 0.35,
    max_per_class: int = 100,
) -> dict[str, list[Detection]]:
    """Boxes for each class name, best first, from as few Grounding DINO passes as fit: the
    names go into one caption (``a . b . c .``) and every box is labelled with the phrase it was
    read from (one pass instead of one per class); names beyond the model's text length go into
    further passes."""
    from vitron.tools.models.grounding_dino import limit_phrases

    by_class: dict[str, list[Detection]] = {name: [] for name in names}
    engine = call.models.get("grounding_dino", call.progress)
    left = list(names)
    while left:
        batch = limit_phrases(engine, left)[0] or left[:1]
        found = detect(call, image, ". ".join(batch), regions=regions,
                       box_threshold=box_threshold, max_boxes=max_per_class * len(batch))  # fmt: skip
        for detection in found:
            if detection.label in by_class and detection.label in batch:
                by_class[detection.label].append(detection)
        left = left[len(batch) :]
    return {name: found[:max_per_class] for name, found in by_class.items()}


def _centre_in(box: Sequence[float], region: Sequence[float]) -> bool:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return region[0] <= cx <= region[2] and region[1] <= cy <= region[3]
