"""``track_video``: follow one target through a video with SAM 2 (transformers ``Sam2VideoModel``).

The target is given on one frame (``frame``, default 0) by a region (normalised ``[x1, y1, x2, y2]``
fractions of the frame, origin top-left), points (``[x, y]`` fractions), an earlier mask of the
frame's size, or words (located on that frame by Grounding DINO first). It is segmented there and
tracked forwards to the end and backwards to frame 0. Results: a mask video (``vid_``, grey 0/255
frames, stored losslessly), per-frame boxes (normalised, ``None`` where the target is not seen),
and an overlay video.

Long videos: frames are streamed from the workspace and SAM 2 runs in streaming mode, so only the
frames up to the prompt frame are held; the profile's ``max_frames`` caps one call, and ``stride``
tracks every n-th frame (those at ``frame ± k·stride``) when a video is longer. A ``signal``
embedding is projected by the ``sam2_signal`` component to extra prompt tokens of the prompt frame.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
from PIL import Image

from vitron.tools.backend import CallContext, ToolOutput, backend
from vitron.tools.geometry import coverage, fmt_box, mask_box
from vitron.tools.overlay import mask_overlay
from vitron.tools.signals import used_signal
from vitron.tools.steps.tracking import TrackTarget, track_masks
from vitron.tools.workspace import DERIVED, Workspace

logger = logging.getLogger(__name__)


class TrackVideoArgs(TrackTarget):
    # track_video's arguments are exactly one target (see TrackTarget); no docstring, so the
    # tool's argument schema carries no description of its own, as before.
    pass


@backend("track_video", TrackVideoArgs, components=("sam2_video", "grounding_dino"))
def track_video(args: TrackVideoArgs, call: CallContext) -> ToolOutput:
    """Segment a target on one frame and follow it through the whole video."""
    tracking = track_masks(args, call)
    boxes: list[list[float] | None] = []
    areas: list[float] = []

    def grey() -> Iterator[np.ndarray]:
        for mask in tracking.masks:
            boxes.append(mask_box(mask))
            areas.append(coverage(mask))
            yield mask.astype(np.uint8) * 255

    inputs = [args.video] + ([args.mask] if args.mask else []) + used_signal(args.signal, call)
    label = args.instruction.strip() or "target"
    masks = call.workspace.put_video(
        grey(), tracking.fps, lossless=True, source="track_video", inputs=inputs, label=label,
        extra={"first_frame": tracking.frames.start, "stride": args.stride,
               "prompt_frame": args.frame, DERIVED: True},
    )  # fmt: skip
    overlay = call.workspace.put_video(
        _overlay_frames(call.workspace, args.video, masks.handle, tracking.frames),
        tracking.fps, source="track_video", inputs=[args.video, masks.handle],
        label="tracking overlay", extra={DERIVED: True},
    )  # fmt: skip
    seen = [i for i, box in enumerate(boxes) if box is not None]
    logger.debug("track_video %s: %d frame(s) tracked, target seen in %d", args.video, len(boxes),
                 len(seen))  # fmt: skip
    first = boxes[tracking.frames.index(args.frame)]
    where = f"box {fmt_box(first)}" if first else "not visible"
    span = (
        f"visible in {len(seen)} of {len(boxes)} frames (mean coverage {float(np.mean(areas)):.1%})"
        if seen
        else "not visible in any frame"
    )
    sampled = (
        f", one in {args.stride} from frame {tracking.frames.start}" if args.stride > 1 else ""
    )
    return ToolOutput(
        content=f"{masks.handle}: mask video of {label!r} in {args.video} ({len(boxes)} frames"
        f"{sampled}), {span}; on prompt frame {args.frame} {where}{tracking.located}. "
        f"Overlay: {overlay.handle}",
        created=[masks, overlay],
        data={"masks": masks.handle, "overlay": overlay.handle, "boxes": boxes,
              "frames": {"start": tracking.frames.start, "stride": args.stride,
                         "count": len(boxes)}},
    )  # fmt: skip


def _overlay_frames(
    workspace: Workspace, video: str, masks: str, frames: range
) -> Iterator[np.ndarray]:
    """The tracked frames with the mask tinted in, streamed from both stored videos."""
    wanted = set(frames)
    source = (f for i, f in enumerate(workspace.iter_frames(video)) if i in wanted)
    for frame, grey in zip(source, workspace.iter_frames(masks), strict=False):
        yield mask_overlay(Image.fromarray(frame), [grey[..., 0] > 127])
