"""``edit_video``: remove / replace / recolor / restyle an object through a whole video, or restyle
the whole video, on any upload (no per-video atlas or preprocessing).

Local edits follow the target with SAM 2 (:func:`vitron.tools.steps.tracking.track_masks`; the target is a
region, points or a mask on one ``frame``, or words located on that frame) or take a mask video
(e.g. ``track_video``'s), then repaint every frame with Stable Diffusion inpainting from the same
seed, so all frames start from the same noise and the new content stays put over time
(:func:`~vitron.tools.generation.inpaint_frames`). Only the tracked mask grown by ``grow`` pixels
may change; every other pixel of every frame is the input's, bit for bit, as it goes to the MP4
encoder. Lossy H.264 (the default) then alters it a little, most near the edit's edge;
``lossless`` keeps it to colour-conversion rounding (a level or two). Restyling the whole video
runs video-to-video (SDEdit over a 3-D UNet) on chunks of frames; a background change ("make the
background white") keeps each frame's objects, only what SAM's objects leave taking its pixels.

Everything streams: the tracking pass stores the masks (a lossless mask video) as SAM 2 makes
them; the editing pass reads input frames and masks one at a time and encodes each edited frame
as it comes. Frames are ``H x W x 3`` uint8, masks ``H x W`` bool; the output has the input's
size, frame count and fps.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
from pydantic import Field, ValidationError, field_validator, model_validator

from vitron.tools.backend import CallContext, ToolOutput, backend, format_validation_error
from vitron.tools.compositing import blend_weights, composite
from vitron.tools.editing import (
    BACKGROUND,
    infer_operation,
    read_instruction,
    repaint,
    required_content,
)
from vitron.tools.errors import VitronToolError
from vitron.tools.generation import (
    DiffusionArgs,
    Sampling,
    get_engine,
    inpaint_frames,
    make_prompt,
    sampling,
    stage_progress,
)
from vitron.tools.handles import parse_handle
from vitron.tools.schemas import MaskHandle, Point, VideoHandle, check_point_labels
from vitron.tools.signals import signal_phrase, used_signal
from vitron.tools.steps.masks import background_mask
from vitron.tools.steps.tracking import TrackTarget, track_masks
from vitron.tools.workspace import DERIVED, MediaInfo

logger = logging.getLogger(__name__)

VideoOperation = Literal["remove", "replace", "recolor", "restyle"]


def _image_only(operation: Any) -> Any:
    """``operation``, unless it is one only ``edit_image`` does (add, move): then a clear error."""
    if operation in ("add", "move"):
        raise ValueError(
            f"edit_video cannot {operation} objects; it can remove, replace, recolor or restyle "
            "(to add or move something on one frame, use edit_image on vid_…#<frame>)"
        )
    return operation


class EditVideoArgs(DiffusionArgs):
    video: VideoHandle
    operation: VideoOperation | None = Field(
        default=None,
        description="remove, replace or recolor the target; restyle the whole video, or only the "
        "target when one is given (`target`, `regions`, `points`, `mask` or `mask_video`); "
        "default: read from the instruction's wording (restyle when it names none of the others)",
    )
    target: str | None = Field(
        default=None,
        max_length=300,
        description="what to edit, in words ('the red car'), found on `frame` with Grounding DINO "
        "and tracked with SAM 2; default: read from the instruction",
    )
    prompt: str | None = Field(
        default=None,
        max_length=2000,
        description="what the edited area should show ('a tabby cat', 'bright red', 'in the "
        "style of Van Gogh'); default: read from the instruction",
    )
    frame: int = Field(
        default=0, ge=0, description="the frame `regions`, `points` or `mask` refer to (0 = first)"
    )
    points: list[Point] | None = Field(
        default=None, max_length=64, description="click points on the target on `frame`"
    )
    point_labels: list[int] | None = Field(
        default=None, description="one per point: 1 = on the target, 0 = background (default 1)"
    )
    mask: MaskHandle | None = Field(
        default=None, description="a mask of the target on `frame` (the video's size)"
    )
    mask_video: VideoHandle | None = Field(
        default=None,
        description="a mask video of the target (white = edit), e.g. from track_video, with one "
        "frame per frame of `video`; used as it is instead of tracking",
    )
    grow: int = Field(
        default=8,
        ge=0,
        le=256,
        description="pixels the edit area is grown by so seams blend; nothing outside changes",
    )
    strength: float | None = Field(
        default=None,
        gt=0.0,
        le=1.0,
        description="how much is redrawn: 1 replaces the area, lower keeps its shapes (default 1; "
        "0.8 recolor; 0.7 restyle of the target; the profile's for a whole-video restyle)",
    )
    box_threshold: float = Field(
        default=0.3, ge=0.0, le=1.0, description="minimum Grounding DINO score for a text target"
    )
    lossless: bool = Field(
        default=False,
        description="store the result losslessly, so untouched pixels survive the encoding to "
        "within colour-conversion rounding (a larger file)",
    )
    chunk: int | None = Field(
        default=None,
        ge=1,
        le=256,
        description="whole-video restyle: frames restyled together (default: the model's clip "
        "length); longer videos go in chunks of this many, all with the same seed",
    )

    @field_validator("operation", mode="before")
    @classmethod
    def _video_operation(cls, value: Any) -> Any:
        _image_only(value)
        return value

    @model_validator(mode="after")
    def _check(self) -> EditVideoArgs:
        parsed = parse_handle(self.video)
        if parsed.frame is not None:  # vid_…#n names the frame the target is given on
            if self.frame not in (0, parsed.frame):
                raise ValueError(
                    f"{self.video} names frame {parsed.frame} but `frame` says {self.frame}"
                )
            self.frame, self.video = parsed.frame, parsed.base
        said = any(s and s.strip() for s in (self.instruction, self.prompt))
        if self.operation is None:
            if not self.instruction.strip():
                raise ValueError("say what to do: an `operation` or an `instruction`")
            # 'move the car left' reads as a move: say so rather than restyle the whole video
            self.operation = _image_only(infer_operation(self.instruction))
        if self.operation == "restyle" and not said:
            raise ValueError("say what to restyle in `instruction` or `prompt`")
        if not (said or self.target or self.area_given):
            raise ValueError(
                f"say what to {self.operation}: in `instruction` or `target`, or as `regions`, "
                "`points`, a `mask` or a `mask_video`"
            )
        if self.regions and len(self.regions) > 1:
            raise ValueError("edit_video follows one target; give one region")
        if self.mask and (self.regions or self.points):
            raise ValueError("a mask prompt cannot be combined with a region or points")
        if self.mask_video and (self.regions or self.points or self.mask):
            raise ValueError("a mask_video already says where to edit; drop regions, points, mask")
        check_point_labels(self.points, self.point_labels)
        return self

    @property
    def area_given(self) -> bool:
        """Whether the call says where to edit other than in words."""
        return bool(self.regions or self.points or self.mask or self.mask_video)


@dataclass
class VideoJob:
    """One call's inputs, resolved: the video's registry entry and what the instruction names."""

    args: EditVideoArgs
    call: CallContext
    video: MediaInfo
    target: str | None
    content: str | None

    @property
    def total(self) -> int:
        return self.video.frames or 0

    @property
    def local(self) -> bool:
        """Edit the target only (every operation but a restyle with nothing to restyle in)."""
        return self.args.operation != "restyle" or bool(self.args.target or self.args.area_given)


@dataclass
class EditedVideo:
    frames: Iterator[np.ndarray]
    """The edited frames, ``H x W x 3`` uint8, produced as they are read."""
    masks: MediaInfo | None
    """The mask video the edit used (``None`` for a whole-video restyle)."""
    summary: str
    settings: Sampling
    note: str = ""
    """What the planner should know besides the summary (where the target was seen)."""


# --------------------------------------------------------------------------- the target


@dataclass(frozen=True)
class TargetMasks:
    masks: MediaInfo
    """A mask video (grey 0/255, lossless), one frame per frame of the input."""
    how: str
    """How the target was found, for the summary."""
    seen: int
    """Frames in which the target is visible."""


def target_masks(job: VideoJob) -> TargetMasks:
    """The target's mask in every frame: the given ``mask_video``, or SAM 2's tracking stored as
    a lossless mask video (streamed: one mask held at a time). Raises when the target is seen in
    no frame, before any frame is repainted."""
    args = job.args
    found = _given_masks(job) if args.mask_video else _tracked_masks(job)
    if found.seen == 0:
        raise VitronToolError(
            f"{found.how} is not visible in any frame of {job.video.handle} (mask video "
            f"{found.masks.handle} is empty), so there is nothing to {args.operation}; give a "
            "region, points or a mask of the target on a frame where it is visible"
        )
    logger.debug("edit_video: target in %d of %d frames", found.seen, job.total)
    return found


def _given_masks(job: VideoJob) -> TargetMasks:
    args, call, video = job.args, job.call, job.video
    masks = call.workspace.describe(args.mask_video or "", kinds=("vid",))
    if (masks.frames, masks.width, masks.height) != (video.frames, video.width, video.height):
        raise VitronToolError(
            f"{masks.handle} is {masks.width}x{masks.height} with {masks.frames} frames but "
            f"{video.handle} is {video.width}x{video.height} with {video.frames}; a mask video "
            "needs one mask of the video's size per frame (track_video with stride 1 makes one)"
        )
    seen = sum(bool(mask.any()) for mask in _read_masks(call, masks.handle))
    return TargetMasks(masks, f"the area of {masks.handle}", seen)


def _tracked_masks(job: VideoJob) -> TargetMasks:
    args, call, video = job.args, job.call, job.video
    engine = call.models.get("sam2_video", call.progress)
    if job.total > engine.max_frames:
        raise VitronToolError(
            f"{video.handle} has {job.total} frames; edit_video tracks at most "
            f"{engine.max_frames} per call (profile option max_frames of sam2_video); trim the "
            "video or edit it in parts"
        )
    words = None if args.regions or args.points or args.mask else job.target
    if not (words or args.regions or args.points or args.mask):
        raise VitronToolError(
            f"say what to {args.operation}: name it in the instruction or `target`, or give "
            "`regions`, `points`, a `mask` or a `mask_video`"
        )
    try:
        query = TrackTarget(
            video=video.handle, frame=args.frame, instruction=words or "", regions=args.regions,
            points=args.points, point_labels=args.point_labels, mask=args.mask,
            box_threshold=args.box_threshold,
        )  # fmt: skip
    except ValidationError as exc:
        raise VitronToolError(format_validation_error(exc)) from exc
    tracking_call = replace(call, progress=stage_progress(call, "track"))  # same notes
    tracking = track_masks(query, tracking_call)
    seen = 0

    def grey() -> Iterator[np.ndarray]:
        nonlocal seen
        for mask in tracking.masks:
            seen += bool(mask.any())
            yield mask.astype(np.uint8) * 255

    named = repr(job.target) if job.target else "the target"
    what = repr(words) if words else f"{named} given on frame {args.frame}"
    masks = call.workspace.put_video(
        grey(), tracking.fps, lossless=True, source="edit_video",
        inputs=[video.handle, *([args.mask] if args.mask else [])], label=f"tracked {what}"[:200],
        extra={"prompt_frame": args.frame, DERIVED: True},
    )  # fmt: skip
    return TargetMasks(masks, f"{what}{tracking.located}", seen)


def _read_masks(call: CallContext, handle: str) -> Iterator[np.ndarray]:
    """A stored mask video's frames as ``H x W`` bool masks, streamed."""
    for frame in call.workspace.iter_frames(handle):
        yield frame[..., 0] > 127


# --------------------------------------------------------------------------- the two edits


def local_edit(job: VideoJob) -> EditedVideo:
    """Track the target, then inpaint it in every frame from one seed (shared noise)."""
    from vitron.tools.models.diffusion_engines import InpaintEngine

    args, call = job.args, job.call
    plan = repaint(
        args.operation, target=job.target, content=job.content, prompt=args.prompt,
        negative=args.negative_prompt, strength=args.strength,
    )  # fmt: skip
    found = target_masks(job)
    engine = get_engine(call, "inpaint", InpaintEngine)
    settings = sampling(args, engine)
    frames = inpaint_frames(
        engine, make_prompt(plan.text, args, engine, call, plan.negative,
                            with_signal=plan.paints_the_request),
        call.workspace.iter_frames(job.video.handle), _read_masks(call, found.masks.handle),
        seed=settings.seed, steps=settings.steps, guidance=settings.guidance,
        progress=stage_progress(call, "inpaint"), strength=plan.strength, margin=args.grow,
    )  # fmt: skip
    note = (
        f"only the area of {found.masks.handle} (the target, seen in {found.seen} of {job.total} "
        f"frames) grown by {args.grow} px changed"
    )
    return EditedVideo(frames, found.masks, plan.summary(found.how), settings, note)


def global_restyle(job: VideoJob) -> EditedVideo:
    """Restyle every frame with video-to-video, a chunk of frames at a time, all from one seed.
    A background change ("make the background beige") keeps each frame's objects: only what SAM's
    objects leave on that frame takes the restyled pixels, as ``edit_image`` does."""
    from vitron.tools.models.diffusion_engines import VideoToVideoEngine

    args, call = job.args, job.call
    text = required_content(job.content, "the style ('make it look like a watercolour')")
    engine = get_engine(call, "video_to_video", VideoToVideoEngine)
    settings = sampling(args, engine)
    prompt = make_prompt(text, args, engine, call)
    size = args.chunk or engine.defaults.frames
    background = bool(job.target and BACKGROUND.match(job.target.strip()))

    progress = stage_progress(call, "restyle")

    def restyled() -> Iterator[np.ndarray]:
        source = call.workspace.iter_frames(job.video.handle)
        for index, block in enumerate(chunks(source, size)):

            def report(event: dict, index: int = index) -> None:
                progress({**event, "chunk": index})

            frames = engine.transform(
                prompt, np.stack(block), seed=settings.seed, steps=settings.steps,
                guidance=settings.guidance, progress=report, strength=args.strength,
            )  # fmt: skip
            if not background:
                yield from frames
                continue
            for offset, (before, after) in enumerate(zip(block, frames, strict=True)):
                key = f"{job.video.handle}#{index * size + offset}"
                yield background_only(call, key, before, after, args.grow)

    count = -(-job.total // size)
    note = f"the whole video changed ({count} chunk(s) of up to {size} frames)"
    if background:
        note = (f"only the background changed (outside every object SAM finds on each frame; "
                f"{count} chunk(s) of up to {size} frames)")  # fmt: skip
        return EditedVideo(restyled(), None, f"restyled the background: {text!r}", settings, note)
    return EditedVideo(restyled(), None, f"restyled the whole video: {text!r}", settings, note)


def background_only(
    call: CallContext, key: str, before: np.ndarray, after: np.ndarray, grow: int
) -> np.ndarray:
    """``after`` (H x W x 3 uint8) where SAM's objects in ``before`` leave the background, blended
    over ``grow`` px; ``before`` on the objects, bit for bit."""
    from PIL import Image

    area = background_mask(call, key, Image.fromarray(before), clear=grow)
    return composite(before, after, blend_weights(area, grow))


def chunks(frames: Iterable[np.ndarray], size: int) -> Iterator[list[np.ndarray]]:
    """Consecutive lists of ``size`` frames (the last may be shorter), read lazily."""
    block: list[np.ndarray] = []
    for frame in frames:
        block.append(frame)
        if len(block) == size:
            yield block
            block = []
    if block:
        yield block


def counted(frames: Iterable[np.ndarray], total: int, call: CallContext) -> Iterator[np.ndarray]:
    """``frames`` passed through, reporting ``frames_done`` of ``total`` after each one."""
    for done, frame in enumerate(frames, start=1):
        call.progress({"event": "frames", "frames_done": done, "frames": total, "stage": "edit"})
        yield frame


# --------------------------------------------------------------------------- the tool


@backend(
    "edit_video",
    EditVideoArgs,
    components=("inpaint", "video_to_video", "sam2_video", "grounding_dino"),
)
def edit_video(args: EditVideoArgs, call: CallContext) -> ToolOutput:
    """Edit an object through a whole video (or restyle the video) and keep the rest as it was."""
    video = call.workspace.describe(args.video, kinds=("vid",))
    total = video.frames or 0
    if total <= 0:
        raise VitronToolError(f"{video.handle} has no frames to edit")
    if args.frame >= total:
        raise VitronToolError(
            f"{video.handle} has {total} frames (0–{total - 1}); frame {args.frame} does not exist"
        )
    reading = read_instruction(args.operation, args.instruction)
    job = VideoJob(
        args=args, call=call, video=video, target=args.target or reading.target,
        content=args.prompt or reading.content,
    )  # fmt: skip
    edited = local_edit(job) if job.local else global_restyle(job)
    used = [h for h in (args.mask, args.mask_video) if h] + used_signal(args.signal, call)
    if edited.masks is not None and edited.masks.handle not in used:
        used.insert(0, edited.masks.handle)
    stored = call.workspace.put_video(
        counted(edited.frames, total, call), video.fps or 24.0, lossless=args.lossless,
        source="edit_video", inputs=[video.handle, *used], label=edited.summary[:200],
        extra={"operation": args.operation, "seed": edited.settings.seed},
    )  # fmt: skip
    if stored.frames != total:
        logger.warning(
            "edit_video wrote %s frames of %d for %s", stored.frames, total, video.handle
        )
    created = [stored]
    if edited.masks is not None and not args.mask_video:
        created.append(edited.masks)
    masks = edited.masks.handle if edited.masks is not None else None
    signal = signal_phrase(args.signal, call)
    return ToolOutput(
        content=f"{stored.handle}: {edited.summary} in {video.handle} ({stored.frames} frames, "
        f"{stored.width}x{stored.height} at {stored.fps:g} fps); {edited.note} "
        f"({edited.settings.describe()}{signal})",
        created=created,
        data={"video": stored.handle, "masks": masks, "seed": edited.settings.seed},
    )
