"""A backend defined outside the package: one module plus one profile entry (see test_extensibility)."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from vitron.tools.backend import CallContext, ToolOutput, backend
from vitron.tools.profiles import ComponentSpec
from vitron.tools.registry import LoadContext
from vitron.tools.schemas import ImageHandle, ToolArgs


class MeanColourArgs(ToolArgs):
    image: ImageHandle
    digits: int = Field(default=1, ge=0, le=4)


class ColourNamer:
    """The 'model' of this backend: names the nearest of a few colours."""

    nbytes = 0

    def __init__(self, palette: dict[str, list[int]]) -> None:
        self.palette = palette

    def name(self, rgb: np.ndarray) -> str:
        return min(
            self.palette, key=lambda n: float(np.linalg.norm(rgb - np.array(self.palette[n])))
        )


def load_colour_namer(spec: ComponentSpec, context: LoadContext) -> ColourNamer:
    return ColourNamer(spec.options["palette"])


@backend("mean_colour", MeanColourArgs, components=("colour_namer",))
def mean_colour(args: MeanColourArgs, call: CallContext) -> ToolOutput:
    """Average colour of an image, and its nearest named colour."""
    pixels = np.asarray(call.workspace.get_image(args.image), dtype=np.float64).reshape(-1, 3)
    mean = pixels.mean(axis=0)
    name = call.models.get("colour_namer", call.progress).name(mean)
    rgb = [round(float(v), args.digits) for v in mean]
    return ToolOutput(
        content=f"{args.image} is {name} on average: RGB {rgb}", data={"rgb": rgb, "name": name}
    )
