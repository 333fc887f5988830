"""What every diffusion backend shares: sampling arguments, seeds, signal conditioning, and
per-frame inpainting for video edits (:func:`inpaint_frames`).

Signal conditioning (Vitron's hybrid invocation for ``[GEN]``/``[VID]``/``[EDIT]``): the planner's
signal embedding (an ``emb_`` handle, shape ``(in_dim,)`` or ``(n, in_dim)``) goes through the
projector component the pipeline names (``signal_projector`` in its profile entry, by default
``diffusion_signal``) and becomes ``n * tokens`` extra text-encoder tokens appended to the prompt's
states. Without a signal the prompt is the text alone, so output equals the text-only path.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from PIL import Image
from pydantic import Field

from vitron.tools.backend import CallContext
from vitron.tools.compositing import blend_weights, composite, grow
from vitron.tools.defaults import MAX_SEED
from vitron.tools.errors import VitronToolError
from vitron.tools.registry import ProgressCallback
from vitron.tools.schemas import ToolArgs
from vitron.tools.signals import project_signal

if TYPE_CHECKING:
    from vitron.tools.models.diffusion_common import DiffusionEngine, Prompt
    from vitron.tools.models.diffusion_engines import InpaintEngine

E = TypeVar("E", bound="DiffusionEngine")


class DiffusionArgs(ToolArgs):
    """Sampling options of every diffusion backend; ``None`` takes the profile's default."""

    negative_prompt: str = Field(
        default="", max_length=2000, description="what the result should not show"
    )
    seed: int | None = Field(
        default=None,
        ge=0,
        le=MAX_SEED,
        description="random seed; the same seed and arguments give the same pixels "
        "(default: a fresh seed, reported in the result)",
    )
    steps: int | None = Field(
        default=None, ge=1, le=150, description="denoising steps (default: the model's)"
    )
    guidance: float | None = Field(
        default=None,
        ge=0.0,
        le=30.0,
        description="classifier-free guidance scale: higher follows the text more closely",
    )


@dataclass(frozen=True)
class Sampling:
    """Resolved sampling settings of one call."""

    seed: int
    steps: int
    guidance: float

    def describe(self) -> str:
        return f"seed {self.seed}, {self.steps} steps, guidance {self.guidance:g}"


def get_engine(call: CallContext, component: str, engine_class: type[E]) -> E:
    """The loaded ``component``, checked to be the kind of pipeline the backend drives."""
    engine = call.models.get(component, call.progress)
    if not isinstance(engine, engine_class):
        raise VitronToolError(
            f"profile component {component!r} is a {type(engine).__name__}, but this tool needs "
            f"a {engine_class.__name__}; set its `pipeline` in the profile"
        )
    return engine


def sampling(args: DiffusionArgs, engine: DiffusionEngine) -> Sampling:
    """The call's seed, steps and guidance, with the engine's profile defaults filled in."""
    seed = args.seed if args.seed is not None else secrets.randbelow(MAX_SEED + 1)
    steps = args.steps if args.steps is not None else engine.defaults.steps
    guidance = args.guidance if args.guidance is not None else engine.defaults.guidance
    return Sampling(seed=seed, steps=steps, guidance=guidance)


def output_size(width: int | None, height: int | None, engine: DiffusionEngine) -> tuple[int, int]:
    """``(width, height)`` asked for, or the engine's defaults, snapped to multiples of 8."""
    from vitron.tools.models.diffusion_common import snap

    return snap(width or engine.defaults.width), snap(height or engine.defaults.height)


def make_prompt(
    text: str,
    args: DiffusionArgs,
    engine: DiffusionEngine,
    call: CallContext,
    negative: str | None = None,
    *,
    with_signal: bool = True,
) -> Prompt:
    """The text (and negative text) plus the call's signal tokens, for ``engine``: ``k x D``
    with ``D`` the engine's text width, from the projector component the engine names.
    ``with_signal=False`` for a pass that paints something other than what the request asks for
    (the background left by a removal): the text alone conditions it."""
    from vitron.tools.models.diffusion_common import Prompt

    negative = args.negative_prompt if negative is None else negative
    if not with_signal:
        return Prompt(text=text, negative=negative)
    tokens = project_signal(args.signal, engine.signal_projector, call, width=engine.text_width,
                            consumer=f"the {engine.kind} text encoder")  # fmt: skip
    return Prompt(text=text, negative=negative, extra_tokens=tokens)


def stage_progress(call: CallContext, stage: str) -> ProgressCallback:
    """``call.progress`` with a ``stage`` key, for backends that run several passes."""

    def report(event: dict) -> None:
        call.progress({**event, "stage": stage})

    return report


def inpaint_frames(
    engine: InpaintEngine,
    prompt: Prompt,
    frames: Iterable[np.ndarray],
    masks: Iterable[np.ndarray],
    *,
    seed: int,
    steps: int,
    guidance: float,
    progress: ProgressCallback,
    strength: float = 1.0,
    margin: int = 8,
) -> Iterator[np.ndarray]:
    """Inpaint a video frame by frame, streamed, for local video edits.

    ``frames`` are H x W x 3 uint8, ``masks`` H x W bool (e.g. tracked by SAM 2), one per frame.
    Every frame is inpainted with the same ``seed``, so all start from the same noise and the
    repainted content stays consistent over time; each result is composited so that pixels
    outside its mask grown by ``margin`` are the input's exactly. Frames whose mask is empty pass
    through untouched. Progress events carry the frame index.
    """
    for index, (frame, mask) in enumerate(zip(frames, masks, strict=True)):
        if not mask.any():
            yield frame
            continue

        def report(event: dict, index: int = index) -> None:
            progress({**event, "frame": index})

        out = engine.inpaint(
            prompt, Image.fromarray(frame), grow(mask, margin), seed=seed, steps=steps,
            guidance=guidance, strength=strength, progress=report,
        )  # fmt: skip
        yield composite(frame, out, blend_weights(mask, margin))
