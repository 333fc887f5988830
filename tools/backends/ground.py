"""``ground``: phrase grounding with Grounding DINO — boxes, labels and scores for phrases."""

from __future__ import annotations

from pydantic import Field, model_validator

from vitron.tools.backend import NOTHING_FOUND, CallContext, ToolOutput, backend
from vitron.tools.geometry import fmt_box
from vitron.tools.overlay import box_overlay
from vitron.tools.schemas import ImageHandle, MaskHandle, ToolArgs
from vitron.tools.steps.detection import detect, phrases
from vitron.tools.workspace import DERIVED


class GroundArgs(ToolArgs):
    image: ImageHandle
    near: MaskHandle | None = Field(
        default=None,
        description="rank detections by closeness to this mask (e.g. 'the object next to it'), "
        "leaving out the masked object itself",
    )
    box_threshold: float = Field(default=0.35, ge=0.0, le=1.0, description="minimum box score")
    text_threshold: float = Field(default=0.25, ge=0.0, le=1.0, description="minimum phrase score")
    max_boxes: int = Field(default=10, ge=1, le=100)

    @model_validator(mode="after")
    def _needs_phrases(self) -> GroundArgs:
        if not phrases(self.instruction):
            raise ValueError("ground needs at least one phrase in `instruction`, e.g. 'a dog.'")
        return self


@backend("ground", GroundArgs, components=("grounding_dino",))
def ground(args: GroundArgs, call: CallContext) -> ToolOutput:
    """Phrase grounding: boxes with labels and scores."""
    found = detect(call, args.image, args.instruction, regions=args.regions, near=args.near,
                   box_threshold=args.box_threshold, text_threshold=args.text_threshold,
                   max_boxes=args.max_boxes)  # fmt: skip
    if not found:
        return ToolOutput(
            content=f"no boxes for {args.instruction!r} in {args.image} above box_threshold "
            f"{args.box_threshold}; try a lower threshold or other words",
            data={"boxes": [], "labels": [], "scores": [], NOTHING_FOUND: True},
        )
    boxes = [d.box for d in found]
    labels = [d.label or args.instruction for d in found]
    scores = [round(d.score, 4) for d in found]
    inputs = [args.image] + ([args.near] if args.near else [])
    detections = call.workspace.put_boxes(
        boxes, labels, scores, source="ground", inputs=inputs, label=args.instruction
    )
    image = call.workspace.get_image(args.image)
    overlay = call.workspace.put_image(
        box_overlay(image, boxes, labels),
        source="ground",
        inputs=[*inputs, detections.handle],
        label="detections overlay",
        extra={DERIVED: True},
    )
    order = "nearest to " + args.near + " first" if args.near else "best first"
    listed = "; ".join(
        f"{label} {fmt_box(box)} score {score:.2f}"
        for label, box, score in zip(labels, boxes, scores, strict=True)
    )
    return ToolOutput(
        content=f"{detections.handle}: {len(found)} box(es) in {args.image}, {order}: {listed}. "
        f"Overlay: {overlay.handle}",
        created=[detections, overlay],
        data={"boxes": boxes, "labels": labels, "scores": scores},
    )
