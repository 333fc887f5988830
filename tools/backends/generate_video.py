"""``generate_video``: text-to-video with a ModelScope/ZeroScope-class 3-D UNet; MP4 out.

With the profile's ``drift_noise``, a description whose object moves one way starts from noise
that drifts that way (:meth:`~vitron.tools.models.diffusion_engines.TextToVideoEngine.generate`).
"""

from __future__ import annotations

from pydantic import Field, model_validator

from vitron.tools.backend import CallContext, ToolOutput, backend
from vitron.tools.generation import DiffusionArgs, get_engine, make_prompt, output_size, sampling
from vitron.tools.motion_area import drift_per_frame, moving_direction
from vitron.tools.signals import signal_phrase, used_signal


class GenerateVideoArgs(DiffusionArgs):
    frames: int | None = Field(
        default=None, ge=1, le=64, description="number of frames (default: the model's)"
    )
    width: int | None = Field(
        default=None, ge=16, le=1024, description="pixels, a multiple of 8 (default: the model's)"
    )
    height: int | None = Field(
        default=None, ge=16, le=1024, description="pixels, a multiple of 8 (default: the model's)"
    )
    fps: float | None = Field(
        default=None, gt=0.0, le=60.0, description="frames per second of the MP4 (default 8)"
    )

    @model_validator(mode="after")
    def _check(self) -> GenerateVideoArgs:
        if not self.instruction.strip():
            raise ValueError("describe the video to generate in `instruction`")
        if self.regions:
            raise ValueError("generate_video takes no regions; describe the layout in words")
        return self


@backend("generate_video", GenerateVideoArgs, components=("text_to_video",))
def generate_video(args: GenerateVideoArgs, call: CallContext) -> ToolOutput:
    """Text-to-video."""
    from vitron.tools.models.diffusion_engines import TextToVideoEngine

    engine = get_engine(call, "text_to_video", TextToVideoEngine)
    settings = sampling(args, engine)
    width, height = output_size(args.width, args.height, engine)
    frames = args.frames or engine.defaults.frames
    fps = args.fps or engine.defaults.fps
    way = moving_direction(args.instruction) if engine.defaults.drift_noise else None
    drift = drift_per_frame(way, frames) if way else None
    video = engine.generate(
        make_prompt(args.instruction, args, engine, call), frames=frames, width=width,
        height=height, seed=settings.seed, steps=settings.steps, guidance=settings.guidance,
        progress=call.progress, drift=drift,
    )  # fmt: skip
    extra = {"seed": settings.seed, "steps": settings.steps, "guidance": settings.guidance}
    if way:
        extra["noise_drift"] = way.name
    stored = call.workspace.put_video(
        video, fps, source="generate_video", inputs=used_signal(args.signal, call),
        label=args.instruction[:200], extra=extra,
    )  # fmt: skip
    signal = signal_phrase(args.signal, call)
    return ToolOutput(
        content=f"{stored.handle}: {width}x{height} video of {args.instruction!r}, "
        f"{stored.frames} frames at {fps:g} fps ({settings.describe()}{signal})",
        created=[stored],
        data={"video": stored.handle, "seed": settings.seed, "noise_drift": way and way.name},
    )
