"""Argument types shared by every backend and every planner (Vitron or any tool-calling model).

Media are named by handle, regions are ``[x1, y1, x2, y2]`` normalised to [0, 1] of the referenced
media (origin top-left, x to the right, y down), points are ``[x, y]`` in the same frame. Validation
happens here, before a backend runs, and its messages name the bad value.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from vitron.tools.handles import parse_handle


def _handle_of(*kinds: str):
    def check(value: str) -> str:
        return str(parse_handle(value, kinds=kinds))

    return AfterValidator(check)


def check_region(region: list[float]) -> list[float]:
    if len(region) != 4:
        raise ValueError(f"a region is [x1, y1, x2, y2], got {len(region)} numbers: {region}")
    if any(not 0.0 <= v <= 1.0 for v in region):
        raise ValueError(
            f"region {region} is outside the media: coordinates are fractions of width and "
            "height, each between 0 and 1"
        )
    x1, y1, x2, y2 = region
    if x1 >= x2 or y1 >= y2:
        raise ValueError(f"region {region} is inverted or empty: it needs x1 < x2 and y1 < y2")
    return [float(v) for v in region]


def check_point(point: list[float]) -> list[float]:
    if len(point) != 2 or any(not 0.0 <= v <= 1.0 for v in point):
        raise ValueError(f"a point is [x, y] with each between 0 and 1, got {point}")
    return [float(v) for v in point]


def check_point_labels(points: list[list[float]] | None, labels: list[int] | None) -> None:
    """Point labels, when given, are one per point and each 1 (on the target) or 0 (background)."""
    if labels is None:
        return
    if points is None or len(labels) != len(points):
        raise ValueError("point_labels needs exactly one label per point")
    if any(label not in (0, 1) for label in labels):
        raise ValueError("point_labels are 1 (on the target) or 0 (background)")


ImageHandle = Annotated[
    str,
    _handle_of("img", "vid"),
    Field(description="an image handle (img_…) or a video frame (vid_…#<frame>)"),
]
VideoHandle = Annotated[str, _handle_of("vid"), Field(description="a video handle (vid_…)")]
MediaHandle = Annotated[
    str, _handle_of("img", "vid"), Field(description="an image or video handle (img_… or vid_…)")
]
MaskHandle = Annotated[str, _handle_of("mask"), Field(description="a mask handle (mask_…)")]
SignalHandle = Annotated[
    str,
    _handle_of("emb"),
    Field(description="a signal embedding handle (emb_…) produced by the Vitron planner"),
]
Region = Annotated[
    list[float],
    AfterValidator(check_region),
    Field(description="[x1, y1, x2, y2] as fractions (0–1) of width and height, top-left origin"),
]
Point = Annotated[
    list[float], AfterValidator(check_point), Field(description="[x, y] as fractions (0–1)")
]


class ToolArgs(BaseModel):
    """Fields every backend accepts: a text instruction, optional regions and a signal embedding."""

    model_config = ConfigDict(extra="forbid")

    instruction: str = Field(
        default="",
        max_length=2000,
        description="what to do, in words (e.g. 'the zebra farthest away')",
    )
    regions: list[Region] | None = Field(
        default=None, max_length=64, description="optional regions of the media to act on"
    )
    signal: SignalHandle | None = Field(
        default=None,
        description="optional signal embedding from the planner (hybrid invocation); "
        "the tool works without it",
    )
