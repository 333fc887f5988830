"""``generate_image``: Stable Diffusion text-to-image; a box layout when regions come with phrases.

Regions are normalised ``[x1, y1, x2, y2]`` boxes of the image to be made (top-left origin), one
phrase each: the ``gligen`` component draws each phrase inside its box while the instruction
describes the whole, by GLIGEN (``pipeline = "gligen"``) or as a collage of text-to-image drawings
(``pipeline = "collage"``, :mod:`vitron.tools.collage`, for a profile whose GLIGEN does not place).
A profile whose text-to-image entry sets ``layout_from_words`` also sends that component a
description that puts its one object at a named place ('a red circle on the left on a white
background'), with the box those words name (:func:`vitron.tools.placement.placed_object`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field, model_validator

from vitron.tools.backend import CallContext, ToolOutput, backend
from vitron.tools.generation import (
    DiffusionArgs,
    Sampling,
    get_engine,
    make_prompt,
    output_size,
    sampling,
)
from vitron.tools.geometry import fmt_box
from vitron.tools.placement import PlacedObject, placed_object
from vitron.tools.signals import signal_phrase, used_signal

if TYPE_CHECKING:
    from vitron.tools.models.diffusion_common import DiffusionEngine


class GenerateImageArgs(DiffusionArgs):
    phrases: list[str] | None = Field(
        default=None,
        max_length=30,
        description="one short phrase per region, what to draw inside it (box-grounded layout)",
    )
    width: int | None = Field(
        default=None, ge=16, le=1024, description="pixels, a multiple of 8 (default: the model's)"
    )
    height: int | None = Field(
        default=None, ge=16, le=1024, description="pixels, a multiple of 8 (default: the model's)"
    )
    grounding: float = Field(
        default=0.3,
        ge=0.0,
        le=1.0,
        description="fraction of the steps that follow the boxes (GLIGEN); more holds them tighter",
    )

    @model_validator(mode="after")
    def _check(self) -> GenerateImageArgs:
        if not self.instruction.strip():
            raise ValueError("describe the image to generate in `instruction`")
        if bool(self.regions) != bool(self.phrases):
            raise ValueError(
                "regions and phrases go together: one phrase per region says what goes in it"
            )
        if self.regions and self.phrases and len(self.regions) != len(self.phrases):
            raise ValueError(
                f"got {len(self.regions)} regions but {len(self.phrases)} phrases; give one "
                "phrase per region"
            )
        if self.phrases and any(not p.strip() for p in self.phrases):
            raise ValueError("every phrase needs some words")
        return self


@backend("generate_image", GenerateImageArgs, components=("text_to_image", "gligen"))
def generate_image(args: GenerateImageArgs, call: CallContext) -> ToolOutput:
    """Text-to-image, optionally with a box layout."""
    from vitron.tools.models.diffusion_engines import LayoutEngine, TextToImageEngine

    phrases, regions, worded = args.phrases, args.regions, ""
    engine = None
    if not (regions and phrases):
        engine = get_engine(call, "text_to_image", TextToImageEngine)
        placed = _placed_by_words(args, engine)
        if placed is not None:
            phrases, regions = [placed.phrase], [placed.box]
            worded = f" (from {placed.words!r})"
    if regions and phrases:
        layouts = get_engine(call, "gligen", LayoutEngine)
        settings, width, height = _settings(args, layouts)
        result = layouts.generate(
            make_prompt(args.instruction, args, layouts, call, with_signal=layouts.reads_signal),
            phrases, regions, width=width, height=height, seed=settings.seed,
            steps=settings.steps, guidance=settings.guidance, progress=call.progress,
            grounding=args.grounding,
        )  # fmt: skip
        method = layouts.method
        layout = (
            "; layout: "
            + ", ".join(f"{p!r} in {fmt_box(r)}" for p, r in zip(phrases, regions, strict=True))
            + worded
        )
    else:
        engine = engine or get_engine(call, "text_to_image", TextToImageEngine)
        settings, width, height = _settings(args, engine)
        result = engine.generate(
            make_prompt(args.instruction, args, engine, call), width=width, height=height,
            seed=settings.seed, steps=settings.steps, guidance=settings.guidance,
            progress=call.progress,
        )  # fmt: skip
        method, layout = "Stable Diffusion", ""
    stored = call.workspace.put_image(
        result.pixels, source="generate_image", inputs=used_signal(args.signal, call),
        label=args.instruction[:200],
        extra={"seed": settings.seed, "steps": settings.steps, "guidance": settings.guidance},
    )  # fmt: skip
    signal = signal_phrase(args.signal, call)
    note = "".join(f" {n}" for n in result.notes)
    if result.flagged:
        note += " The safety checker blanked it; try another prompt."
    return ToolOutput(
        content=f"{stored.handle}: {width}x{height} image of {args.instruction!r} ({method}, "
        f"{settings.describe()}{signal}){layout}.{note}",
        created=[stored],
        data={"image": stored.handle, "seed": settings.seed},
    )


def _placed_by_words(args: GenerateImageArgs, engine: DiffusionEngine) -> PlacedObject | None:
    """The object the description places by words, when the profile asks for that."""
    if not engine.defaults.layout_from_words:
        return None
    width, height = output_size(args.width, args.height, engine)
    return placed_object(args.instruction, aspect=width / height)


def _settings(args: GenerateImageArgs, engine: DiffusionEngine) -> tuple[Sampling, int, int]:
    return sampling(args, engine), *output_size(args.width, args.height, engine)
