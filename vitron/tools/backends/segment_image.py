"""``segment_image``: referring and interactive segmentation with SAM (Grounded-SAM for text).

Prompts, in order of precedence: ``regions`` (one mask per box), ``points``, an earlier ``mask`` to
refine; with none of these the ``instruction`` is located by Grounding DINO and its best box prompts
SAM. The image embedding is computed once per image handle and reused by later prompts.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field, model_validator

from vitron.tools.backend import CallContext, ToolOutput, backend
from vitron.tools.backends.ground import GroundArgs, detect
from vitron.tools.errors import VitronToolError
from vitron.tools.geometry import coverage, fmt_box, mask_box, points_to_pixels, region_to_pixels
from vitron.tools.models.sam import SamMask
from vitron.tools.overlay import mask_overlay
from vitron.tools.schemas import ImageHandle, MaskHandle, Point, ToolArgs


class SegmentImageArgs(ToolArgs):
    image: ImageHandle
    points: list[Point] | None = Field(default=None, max_length=64, description="click points")
    point_labels: list[int] | None = Field(
        default=None, description="one per point: 1 = on the target, 0 = background (default 1)"
    )
    mask: MaskHandle | None = Field(default=None, description="an earlier mask to refine")
    box_threshold: float = Field(
        default=0.3, ge=0.0, le=1.0, description="minimum Grounding DINO score for a text target"
    )

    @model_validator(mode="after")
    def _needs_a_target(self) -> SegmentImageArgs:
        if not (self.instruction.strip() or self.regions or self.points or self.mask):
            raise ValueError(
                "say what to segment: an instruction, regions, points or an earlier mask"
            )
        if self.point_labels is not None:
            if self.points is None or len(self.point_labels) != len(self.points):
                raise ValueError("point_labels needs exactly one label per point")
            if any(label not in (0, 1) for label in self.point_labels):
                raise ValueError("point_labels are 1 (on the target) or 0 (background)")
        return self


def find_masks(args: SegmentImageArgs, call: CallContext) -> tuple[list[SamMask], str]:
    """SAM masks for the target ``args`` names (shared by the editing backends), and a note on
    how a text target was located (empty for box, point and mask prompts)."""
    image = call.workspace.get_image(args.image)
    width, height = image.size
    sam = call.models.get("sam", call.progress)
    prior = call.workspace.get_mask(args.mask) if args.mask else None
    if prior is not None and prior.shape != (height, width):
        raise VitronToolError(
            f"{args.mask} is {prior.shape[1]}x{prior.shape[0]} but {args.image} is {width}x{height}"
        )

    located = ""
    prompts: list[dict[str, np.ndarray | None]] = []
    if args.regions:
        prompts = [{"box": region_to_pixels(r, width, height)} for r in args.regions]
    elif args.points:
        labels = args.point_labels or [1] * len(args.points)
        prompts = [
            {
                "points": points_to_pixels(args.points, width, height),
                "point_labels": np.array(labels),
            }
        ]
    elif prior is not None:
        box = mask_box(prior)
        prompts = [{"box": region_to_pixels(box, width, height) if box else None, "mask": prior}]
    else:
        query = GroundArgs(image=args.image, instruction=args.instruction,
                           box_threshold=args.box_threshold, max_boxes=1)  # fmt: skip
        found = detect(query, call)
        if not found:
            raise VitronToolError(
                f"could not find {args.instruction!r} in {args.image} (no Grounding DINO box "
                f"above {args.box_threshold}); give a region or points, or lower box_threshold"
            )
        best = found[0]
        located = f" (located by Grounding DINO as {best.label!r}, score {best.score:.2f})"
        prompts = [{"box": region_to_pixels(best.box, width, height)}]
    return [sam.segment(args.image, image, **prompt) for prompt in prompts], located


@backend("segment_image", SegmentImageArgs, components=("sam", "grounding_dino"))
def segment_image(args: SegmentImageArgs, call: CallContext) -> ToolOutput:
    """Segment a target given by words, boxes, points or an earlier mask."""
    results, located = find_masks(args, call)
    image = call.workspace.get_image(args.image)
    label = args.instruction.strip() or "target"
    inputs = [args.image] + ([args.mask] if args.mask else [])
    created, lines = [], []
    for result in results:
        stored = call.workspace.put_mask(
            result.mask, source="segment_image", inputs=inputs, label=label,
            extra={"score": round(result.score, 4)},
        )  # fmt: skip
        created.append(stored)
        box = mask_box(result.mask)
        where = f"box {fmt_box(box)}" if box else "empty"
        lines.append(
            f"{stored.handle}: {label!r} covers {coverage(result.mask):.1%} of {args.image}, "
            f"{where}, SAM score {result.score:.2f}"
        )
    overlay = call.workspace.put_image(
        mask_overlay(image, [r.mask for r in results]),
        source="segment_image", inputs=[args.image, *(m.handle for m in created)],
        label="mask overlay",
    )  # fmt: skip
    return ToolOutput(
        content="; ".join(lines) + located + f". Overlay: {overlay.handle}",
        created=[*created, overlay],
        data={"masks": [m.handle for m in created], "overlay": overlay.handle},
    )
