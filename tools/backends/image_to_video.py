"""``image_to_video``: animate an image with I2VGen-XL (the image conditions the clip); MP4 out."""

from __future__ import annotations

from pydantic import Field, model_validator

from vitron.tools.backend import CallContext, ToolOutput, backend
from vitron.tools.generation import DiffusionArgs, get_engine, make_prompt, sampling
from vitron.tools.schemas import ImageHandle
from vitron.tools.signals import signal_phrase, used_signal


class ImageToVideoArgs(DiffusionArgs):
    image: ImageHandle
    frames: int | None = Field(
        default=None, ge=2, le=64, description="number of frames (default: the model's)"
    )
    width: int | None = Field(
        default=None, ge=16, le=1280, description="pixels (default: the image's aspect at the "
        "model's size); the image is centre-cropped to width:height",
    )  # fmt: skip
    height: int | None = Field(default=None, ge=16, le=1280, description="pixels, see width")
    fps: float | None = Field(
        default=None, gt=0.0, le=60.0,
        description="frames per second: conditions the motion and sets the MP4 rate",
    )  # fmt: skip

    @model_validator(mode="after")
    def _check(self) -> ImageToVideoArgs:
        if self.regions:
            raise ValueError("image_to_video takes no regions; it animates the whole image")
        if (self.width is None) != (self.height is None):
            raise ValueError("give both width and height, or neither to keep the image's aspect")
        return self


@backend("image_to_video", ImageToVideoArgs, components=("image_to_video",))
def image_to_video(args: ImageToVideoArgs, call: CallContext) -> ToolOutput:
    """Animate an image."""
    from vitron.tools.models.diffusion_common import fit_size, snap
    from vitron.tools.models.diffusion_engines import ImageToVideoEngine

    image = call.workspace.get_image(args.image)
    engine = get_engine(call, "image_to_video", ImageToVideoEngine)
    settings = sampling(args, engine)
    if args.width and args.height:
        width, height = snap(args.width), snap(args.height)
    else:
        width, height = fit_size(*image.size, engine.defaults.long_side)
    frames = args.frames or engine.defaults.frames
    fps = args.fps or engine.defaults.fps
    video = engine.animate(
        make_prompt(args.instruction, args, engine, call), image, frames=frames, width=width,
        height=height, fps=fps, seed=settings.seed, steps=settings.steps,
        guidance=settings.guidance, progress=call.progress,
    )  # fmt: skip
    inputs = [args.image, *used_signal(args.signal, call)]
    stored = call.workspace.put_video(
        video, fps, source="image_to_video", inputs=inputs,
        label=(args.instruction or "animated image")[:200],
        extra={"seed": settings.seed, "steps": settings.steps, "guidance": settings.guidance},
    )  # fmt: skip
    said = f" as {args.instruction!r}" if args.instruction.strip() else ""
    signal = signal_phrase(args.signal, call)
    return ToolOutput(
        content=f"{stored.handle}: {args.image} animated{said}, {width}x{height}, "
        f"{stored.frames} frames at {fps:g} fps ({settings.describe()}{signal})",
        created=[stored],
        data={"video": stored.handle, "seed": settings.seed},
    )
