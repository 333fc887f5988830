"""SAM 2 tracking of one target through a video: ``track_video``'s step, shared with ``edit_video``.

The target is given on one frame (``frame``) by a region (normalised ``[x1, y1, x2, y2]``), points
(``[x, y]`` fractions), a mask of the frame's size, or words (located on that frame by Grounding
DINO first). Frames stream from the workspace; ``stride`` tracks every n-th frame; the engine's
``max_frames`` caps one call. A ``signal`` (SAM space) is projected by ``sam2_signal`` to extra
prompt tokens of the prompt frame.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from pydantic import Field, model_validator

from vitron.tools.backend import CallContext
from vitron.tools.errors import VitronToolError
from vitron.tools.handles import parse_handle
from vitron.tools.schemas import MaskHandle, Point, ToolArgs, VideoHandle, check_point_labels
from vitron.tools.signals import project_signal
from vitron.tools.steps.detection import detect
from vitron.tools.workspace import MediaInfo

if TYPE_CHECKING:
    from vitron.tools.models.sam2_video import Sam2VideoEngine, VideoPrompt

SIGNAL_COMPONENT = "sam2_signal"


class TrackTarget(ToolArgs):
    """One target on one frame of a video, to track (``track_video``'s arguments)."""

    video: VideoHandle
    frame: int = Field(default=0, ge=0, description="the frame the target is given on (0 = first)")
    points: list[Point] | None = Field(
        default=None, max_length=64, description="click points on that frame"
    )
    point_labels: list[int] | None = Field(
        default=None, description="one per point: 1 = on the target, 0 = background (default 1)"
    )
    mask: MaskHandle | None = Field(
        default=None, description="a mask of the target on that frame (the video's size)"
    )
    box_threshold: float = Field(
        default=0.3, ge=0.0, le=1.0, description="minimum Grounding DINO score for a text target"
    )
    stride: int = Field(
        default=1, ge=1, le=64, description="track every n-th frame only (for long videos)"
    )

    @model_validator(mode="after")
    def _one_target(self) -> TrackTarget:
        parsed = parse_handle(self.video)
        if parsed.frame is not None:  # vid_…#n names the prompt frame
            if self.frame not in (0, parsed.frame):
                raise ValueError(
                    f"{self.video} names frame {parsed.frame} but `frame` says {self.frame}"
                )
            self.frame, self.video = parsed.frame, parsed.base
        if not (self.instruction.strip() or self.regions or self.points or self.mask):
            raise ValueError(
                "say what to track: an instruction, a region, points or a mask on `frame`"
            )
        if self.regions and len(self.regions) > 1:
            raise ValueError("track_video follows one target; give one region")
        if self.mask and (self.regions or self.points):
            raise ValueError("a mask prompt cannot be combined with a region or points")
        check_point_labels(self.points, self.point_labels)
        return self


@dataclass
class Tracking:
    """A planned tracking run; ``masks`` is lazy and yields one ``H x W`` bool mask per tracked
    frame, in order, as SAM 2 produces them."""

    video: MediaInfo
    frames: range
    """Source frame indices tracked (every ``stride``-th, through the prompt frame)."""
    fps: float
    masks: Iterator[np.ndarray]
    located: str
    """How a text target was found (empty for region, point and mask prompts)."""


def track_masks(args: TrackTarget, call: CallContext) -> Tracking:
    """Check the request against the video, build the prompt, and set up tracking (shared with
    the video editing backend). Errors a person can fix are raised here, before any frame is
    tracked; the masks are computed as ``Tracking.masks`` is read."""
    meta = call.workspace.describe(args.video, kinds=("vid",))
    total = meta.frames or 0
    if total <= 0:
        raise VitronToolError(f"{args.video} has no frames to track")
    if args.frame >= total:
        raise VitronToolError(
            f"{args.video} has {total} frames (0–{total - 1}); frame {args.frame} does not exist"
        )
    frames = range(args.frame % args.stride, total, args.stride)
    engine: Sam2VideoEngine = call.models.get("sam2_video", call.progress)
    if len(frames) > engine.max_frames:
        needed = -(-total // engine.max_frames)
        raise VitronToolError(
            f"{args.video} has {total} frames; track_video follows at most {engine.max_frames} "
            f"per call (profile option max_frames). Pass stride={needed} (or more) to track one "
            f"frame in {needed}"
        )
    width, height = meta.width or 0, meta.height or 0
    prompt, located = _prompt(args, call, width, height)
    tokens = project_signal(args.signal, SIGNAL_COMPONENT, call, width=engine.prompt_dim,
                            consumer="SAM 2")  # fmt: skip
    wanted = set(frames)
    source = (f for i, f in enumerate(call.workspace.iter_frames(args.video)) if i in wanted)

    def report(done: int) -> None:
        call.progress({"event": "track", "frames_done": done, "frames": len(frames)})

    masks = engine.track(
        source, frames.index(args.frame), prompt, extra_tokens=tokens, progress=report
    )
    return Tracking(meta, frames, (meta.fps or 24.0) / args.stride, masks, located)


def _prompt(
    args: TrackTarget, call: CallContext, width: int, height: int
) -> tuple[VideoPrompt, str]:
    """The target as pixels of the prompt frame (text is grounded on that frame first)."""
    from vitron.tools.models.sam2_video import VideoPrompt

    if args.mask:
        mask = call.workspace.get_mask(args.mask)
        if mask.shape != (height, width):
            raise VitronToolError(
                f"{args.mask} is {mask.shape[1]}x{mask.shape[0]} but {args.video} frames are "
                f"{width}x{height}"
            )
        return VideoPrompt(mask=mask), ""
    scale = np.array([width, height, width, height], dtype=np.float64)
    if args.regions or args.points:
        box = (np.array(args.regions[0]) * scale).tolist() if args.regions else None
        points = [[x * width, y * height] for x, y in args.points] if args.points else None
        return VideoPrompt(box=box, points=points, point_labels=args.point_labels), ""
    frame = f"{args.video}#{args.frame}"
    found = detect(call, frame, args.instruction, box_threshold=args.box_threshold, max_boxes=1)
    if not found:
        raise VitronToolError(
            f"could not find {args.instruction!r} on frame {args.frame} of {args.video} (no "
            f"Grounding DINO box above {args.box_threshold}); give a region or points, pick "
            "another frame, or lower box_threshold"
        )
    best = found[0]
    located = f" (located on frame {args.frame} by Grounding DINO as {best.label!r}, score {best.score:.2f})"
    return VideoPrompt(box=(np.array(best.box) * scale).tolist()), located
