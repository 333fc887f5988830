"""``segment_image``: referring, interactive, instance, semantic, panoptic and "everything" masks.

Modes (``mode``), chosen by name from :data:`MODES`:

- ``referring`` (default): one target. Prompts, in order of precedence: ``regions`` (one mask per
  box), ``points``, an earlier ``mask`` to refine; with none of these the ``instruction`` is located
  by Grounding DINO and its best box prompts SAM ("the background" is not boxed: it is what the
  objects of SAM's automatic generator leave).
- ``instance``: every object of each class in ``vocabulary`` (default: the phrases of
  ``instruction``): Grounding DINO boxes for all class names from one caption (``a . b .``, split
  back by phrase), one SAM mask per box.
- ``semantic``: the instance masks merged into one mask per class.
- ``panoptic``: the instance masks made disjoint ("things", labelled with their class), plus SAM's
  automatic masks over the pixels left, labelled ``stuff 1``, ``stuff 2``… (regions of no
  vocabulary class).
- ``everything``: SAM's automatic mask generator, no labels.

Regions are normalised ``[x1, y1, x2, y2]`` fractions of the image (origin top-left); in the
vocabulary modes they keep only detections centred inside one of them. A ``signal`` embedding is
projected by the ``sam_signal`` component to extra SAM sparse prompt tokens; without one, masks are
exactly those of the text-only path. The image embedding is computed once per image handle.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from PIL import Image
from pydantic import Field, field_validator, model_validator

from vitron.tools.backend import CallContext, ToolOutput, backend
from vitron.tools.geometry import (
    box_iou,
    coverage,
    fmt_box,
    mask_box,
    region_to_pixels,
)
from vitron.tools.overlay import box_overlay, color, mask_overlay
from vitron.tools.schemas import ImageHandle, MaskHandle, Point, ToolArgs, check_point_labels
from vitron.tools.signals import project_signal
from vitron.tools.steps.detection import detect_classes, phrases
from vitron.tools.steps.masks import SIGNAL_COMPONENT, find_masks
from vitron.tools.workspace import DERIVED

if TYPE_CHECKING:
    from vitron.tools.models.grounding_dino import Detection

logger = logging.getLogger(__name__)

Mode = Literal["referring", "instance", "semantic", "panoptic", "everything"]
VOCABULARY_MODES = ("instance", "semantic", "panoptic")
SAME_OBJECT_IOU = 0.7
"""Detections of one class whose boxes overlap more than this are one object (the best is kept)."""
MIN_STUFF_FRACTION = 0.002
"""Panoptic "stuff" segments smaller than this fraction of the image are dropped."""
MAX_BOXES_PER_CLASS = 100
"""Grounding DINO boxes read per class name (``ground``'s own cap)."""
MAX_LISTED = 12
"""Segments listed one by one in the text for the planner; the rest are counted."""


class SegmentImageArgs(ToolArgs):
    image: ImageHandle
    mode: Mode = Field(
        default="referring",
        description="referring (one target, the default), instance (every object of each "
        "vocabulary class), semantic (one mask per class), panoptic (classes plus the remaining "
        "regions), everything (every region SAM finds, unlabelled)",
    )
    vocabulary: list[str] | None = Field(
        default=None,
        max_length=100,
        description="class names for instance, semantic and panoptic modes, e.g. ['person', "
        "'dog']; default: the phrases of the instruction",
    )
    points: list[Point] | None = Field(default=None, max_length=64, description="click points")
    point_labels: list[int] | None = Field(
        default=None, description="one per point: 1 = on the target, 0 = background (default 1)"
    )
    mask: MaskHandle | None = Field(default=None, description="an earlier mask to refine")
    box_threshold: float = Field(
        default=0.3, ge=0.0, le=1.0, description="minimum Grounding DINO score for a text target"
    )
    max_segments: int = Field(
        default=50, ge=1, le=256, description="at most this many masks (best or largest first)"
    )

    @field_validator("vocabulary")
    @classmethod
    def _clean_vocabulary(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        cleaned = []
        for name in value:
            name = " ".join(name.replace(".", " ").replace(";", " ").split())
            if len(name) > 100:
                raise ValueError(f"class name {name[:40]!r}… is longer than 100 characters")
            if name and name.lower() not in (c.lower() for c in cleaned):
                cleaned.append(name)
        if not cleaned:
            raise ValueError("vocabulary has no class names; give e.g. ['person', 'dog']")
        return cleaned

    @model_validator(mode="after")
    def _needs_a_target(self) -> SegmentImageArgs:
        if self.mode == "referring":
            if not (self.instruction.strip() or self.regions or self.points or self.mask):
                raise ValueError(
                    "say what to segment: an instruction, regions, points or an earlier mask"
                )
            if self.vocabulary:
                raise ValueError(
                    "a vocabulary is for modes instance, semantic and panoptic; set `mode`"
                )
        else:
            if self.points or self.mask:
                raise ValueError(
                    f"points and mask prompts are for mode 'referring', not {self.mode!r}"
                )
            if self.mode == "everything" and self.vocabulary:
                raise ValueError(
                    "mode 'everything' finds unlabelled regions; it takes no vocabulary"
                )
            if self.mode == "everything" and self.regions:
                raise ValueError("mode 'everything' segments the whole image; it takes no regions")
            if self.mode in VOCABULARY_MODES and not (self.vocabulary or phrases(self.instruction)):
                raise ValueError(
                    f"mode {self.mode!r} needs class names: a vocabulary such as ['person', "
                    "'dog'], or phrases in the instruction ('person. dog.')"
                )
        check_point_labels(self.points, self.point_labels)
        return self

    def classes(self) -> list[str]:
        """The vocabulary, or the instruction's phrases when none is given."""
        return self.vocabulary or phrases(self.instruction)


@dataclass
class Segment:
    """One output mask (H x W bool, the image's size) with its label and score."""

    mask: np.ndarray
    label: str
    score: float
    box: list[float] | None = None
    """The detection box that prompted SAM, normalised ``[x1, y1, x2, y2]``, if any."""
    extra: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- helpers


def _distinct(found: list[Detection]) -> list[Detection]:
    """Best-first detections without near-duplicate boxes (greedy non-maximum suppression)."""
    kept: list[Detection] = []
    for detection in sorted(found, key=lambda d: d.score, reverse=True):
        if all(box_iou(detection.box, k.box) <= SAME_OBJECT_IOU for k in kept):
            kept.append(detection)
    return kept


def _detections(args: SegmentImageArgs, call: CallContext) -> list[Detection]:
    """Grounding DINO boxes for every class name, each labelled with its name: one pass over a
    caption of all the names (split back by phrase), near-duplicates of one class merged."""
    per_class = detect_classes(call, args.image, args.classes(), regions=args.regions,
                               box_threshold=args.box_threshold,
                               max_per_class=min(args.max_segments, MAX_BOXES_PER_CLASS))  # fmt: skip
    return [d for found in per_class.values() for d in _distinct(found)]


# --------------------------------------------------------------------------- modes


def _referring(args: SegmentImageArgs, call: CallContext) -> tuple[list[Segment], str]:
    results, located = find_masks(args, call)
    label = args.instruction.strip() or "target"
    return [Segment(r.mask, label, r.score) for r in results], located


def _instance(args: SegmentImageArgs, call: CallContext) -> tuple[list[Segment], str]:
    image = call.workspace.get_image(args.image)
    width, height = image.size
    sam = call.models.get("sam", call.progress)
    tokens = project_signal(args.signal, SIGNAL_COMPONENT, call, width=sam.prompt_dim,
                            consumer="SAM")  # fmt: skip
    found = sorted(_detections(args, call), key=lambda d: d.score, reverse=True)
    found = found[: args.max_segments]
    if not found:
        return [], ""
    boxes = np.stack([region_to_pixels(d.box, width, height) for d in found])
    results = sam.segment_boxes(args.image, image, boxes, extra_tokens=tokens)
    return [
        Segment(r.mask, d.label, d.score, d.box, {"sam_score": round(r.score, 4)})
        for d, r in zip(found, results, strict=True)
    ], ""


def _semantic(args: SegmentImageArgs, call: CallContext) -> tuple[list[Segment], str]:
    instances, note = _instance(args.model_copy(update={"max_segments": 256}), call)
    merged: dict[str, Segment] = {}
    for item in instances:
        if item.label not in merged:
            merged[item.label] = Segment(item.mask.copy(), item.label, item.score,
                                         extra={"instances": 0})  # fmt: skip
        target = merged[item.label]
        target.mask |= item.mask
        target.score = max(target.score, item.score)
        target.extra["instances"] += 1
    for item in merged.values():
        item.box = mask_box(item.mask)
    return list(merged.values())[: args.max_segments], note


def _panoptic(args: SegmentImageArgs, call: CallContext) -> tuple[list[Segment], str]:
    things, _ = _instance(args.model_copy(update={"max_segments": 256}), call)
    image = call.workspace.get_image(args.image)
    claimed = np.zeros((image.height, image.width), dtype=bool)
    segments = []
    for item in things:  # best first: a better detection keeps the pixels two masks share
        own = item.mask & ~claimed
        if own.any():
            claimed |= own
            segments.append(Segment(own, item.label, item.score, item.box,
                                    {**item.extra, "kind": "thing"}))  # fmt: skip
    sam = call.models.get("sam", call.progress)
    stuff = 0
    for region in sam.automatic(image, key=args.image):
        own = region.mask & ~claimed
        if own.mean() < MIN_STUFF_FRACTION:
            continue
        claimed |= own
        stuff += 1
        segments.append(Segment(own, f"stuff {stuff}", region.score, extra={"kind": "stuff"}))
    unlabelled = float((~claimed).mean())
    note = f"; {unlabelled:.1%} of the image is in no segment" if unlabelled > 0 else ""
    return segments[: args.max_segments], note


def _everything(args: SegmentImageArgs, call: CallContext) -> tuple[list[Segment], str]:
    image = call.workspace.get_image(args.image)
    sam = call.models.get("sam", call.progress)
    regions = sam.automatic(image, key=args.image)[: args.max_segments]
    note = " (the signal embedding is not used in mode 'everything')" if args.signal else ""
    return [Segment(r.mask, "segment", r.score) for r in regions], note


MODES: dict[str, Callable[[SegmentImageArgs, CallContext], tuple[list[Segment], str]]] = {
    "referring": _referring,
    "instance": _instance,
    "semantic": _semantic,
    "panoptic": _panoptic,
    "everything": _everything,
}


# --------------------------------------------------------------------------- the tool


@backend("segment_image", SegmentImageArgs, components=("sam", "grounding_dino"))
def segment_image(args: SegmentImageArgs, call: CallContext) -> ToolOutput:
    """Segment a target, every object of some classes, or every region of an image."""
    segments, note = MODES[args.mode](args, call)
    image = call.workspace.get_image(args.image)
    if not segments:
        return ToolOutput(content=_nothing_found(args), data={"masks": [], "segments": [],
                                                              "mode": args.mode})  # fmt: skip
    inputs = [args.image] + ([args.mask] if args.mask else [])
    created, described, lines, kept = [], [], [], []
    for segment in segments:
        extra = {"score": round(segment.score, 4)}
        if args.mode != "referring":
            extra |= {"mode": args.mode, **segment.extra}
        stored = call.workspace.put_mask(
            segment.mask, source="segment_image", inputs=inputs, label=segment.label, extra=extra
        )
        if args.mode != "referring" and any(m.handle == stored.handle for m in created):
            continue  # the same pixels under a second label: the better-scored one stands
        index = len(created)
        created.append(stored)
        kept.append(segment)
        box = mask_box(segment.mask)
        described.append(
            {"mask": stored.handle, "label": segment.label, "score": extra["score"], "box": box,
             "colour": "#{:02x}{:02x}{:02x}".format(*color(index)), **segment.extra}
            | ({"detection": segment.box} if segment.box else {})
        )  # fmt: skip
        if index < MAX_LISTED:
            lines.append(_describe(args, stored.handle, segment, box))
    if len(kept) > MAX_LISTED:
        lines.append(f"and {len(kept) - MAX_LISTED} more (see the artifact)")
    if len(kept) < len(segments):
        note += f"; {len(segments) - len(kept)} duplicate mask(s) left out"
    logger.debug("segment_image %s on %s: %d segment(s)", args.mode, args.image, len(kept))
    overlay = call.workspace.put_image(
        _overlay(args, image, kept),
        source="segment_image", inputs=[args.image, *(m.handle for m in created)],
        label=f"{args.mode} overlay" if args.mode != "referring" else "mask overlay",
        extra={DERIVED: True},
    )  # fmt: skip
    head = "" if args.mode == "referring" else f"{args.mode} segmentation, {len(kept)} segment(s): "
    return ToolOutput(
        content=head + "; ".join(lines) + note + f". Overlay: {overlay.handle}",
        created=[*created, overlay],
        data={"masks": [m.handle for m in created], "overlay": overlay.handle,
              "segments": described, "mode": args.mode},
    )  # fmt: skip


def _nothing_found(args: SegmentImageArgs) -> str:
    if args.mode == "everything":
        return f"SAM's automatic mask generator found no regions in {args.image}"
    return (
        f"no {', '.join(repr(c) for c in args.classes())} found in {args.image} above "
        f"box_threshold {args.box_threshold} (mode {args.mode!r}); try a lower threshold or "
        "other words"
    )


def _describe(
    args: SegmentImageArgs, handle: str, segment: Segment, box: list[float] | None
) -> str:
    where = f"box {fmt_box(box)}" if box else "empty"
    score = "SAM score" if args.mode in ("referring", "everything") else "score"
    return (
        f"{handle}: {segment.label!r} covers {coverage(segment.mask):.1%} of {args.image}, "
        f"{where}, {score} {segment.score:.2f}"
    )


def _overlay(args: SegmentImageArgs, image: Image.Image, segments: list[Segment]) -> np.ndarray:
    """Each mask tinted in its own colour; labelled boxes too where labels mean something."""
    tinted = mask_overlay(image, [s.mask for s in segments])
    if args.mode in ("referring", "everything"):
        return tinted
    boxes = [s.box or mask_box(s.mask) or [0.0, 0.0, 0.0, 0.0] for s in segments]
    return box_overlay(Image.fromarray(tinted), boxes, [s.label for s in segments])
