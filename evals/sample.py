"""One evaluation (or training) example, whatever its source: the shapes world or a benchmark.

A :class:`Sample` holds the media in memory, the user's instruction, the ground-truth tool calls
(the invocation a perfect planner makes) and the answer, and ``gold``: what the metrics compare the
graph's final outputs with. Tool-call arguments refer to media and earlier results by placeholder,
since handles exist only once the harness stores the media:

- ``"<media:0>"``: the handle of the sample's first medium;
- ``"<result:0:masks.0>"``: ``artifact["masks"][0]`` of the first tool call's result;
- ``"<region:0>"``: the ``mask_`` handle of the first region's sketch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

MEDIA_REF = re.compile(r"^<media:(\d+)>$")
RESULT_REF = re.compile(r"^<result:(\d+):([\w.]+)>$")
REGION_REF = re.compile(r"^<region:(\d+)>$")


@dataclass
class Media:
    """An image (H x W x 3 uint8) or a video (T x H x W x 3 uint8) with its frame rate."""

    kind: Literal["image", "video"]
    pixels: np.ndarray
    fps: float = 4.0
    label: str = ""


@dataclass
class RegionInput:
    """A region the user draws on ``media`` (an index into :attr:`Sample.media`): a normalised
    box and, for a free-form sketch, an H x W bool mask."""

    media: int
    box: list[float]
    mask: np.ndarray | None = None


@dataclass
class TargetCall:
    """A ground-truth tool call; ``args`` may hold ``<media:i>`` / ``<result:k:key>`` placeholders."""

    name: str
    args: dict[str, Any]
    match: tuple[str, ...] | None = None
    """The arguments invocation accuracy compares (default: all of ``args``). Arguments the
    invocation grammar cannot carry (a mask handle from the user or an earlier result) are
    left out, so a planner is not marked wrong for what it cannot write."""

    def matched_args(self) -> dict[str, Any]:
        return {k: v for k, v in self.args.items() if self.match is None or k in self.match}


@dataclass
class Sample:
    id: str
    task: str
    instruction: str
    media: list[Media] = field(default_factory=list)
    regions: list[RegionInput] = field(default_factory=list)
    calls: list[TargetCall] = field(default_factory=list)
    answer: str = ""
    gold: dict[str, Any] = field(default_factory=dict)
    split: str = "test"
    source: str = "shapes"
    meta: dict[str, Any] = field(default_factory=dict)
    """Facts about how the sample was made (e.g. the colour–shape combinations it shows)."""


def resolve(
    value: Any, media: list[str], results: list[dict[str, Any]], regions: list[str | None] = ()
) -> Any:
    """Replace placeholders in ``value`` (recursively) with handles and earlier results.

    Raises ``LookupError`` when a placeholder names a result that does not exist (the earlier call
    failed or was never made)."""
    if isinstance(value, str):
        if match := MEDIA_REF.match(value):
            return media[int(match.group(1))]
        if match := REGION_REF.match(value):
            return list(regions)[int(match.group(1))]
        if match := RESULT_REF.match(value):
            index, path = int(match.group(1)), match.group(2)
            if index >= len(results):
                raise LookupError(f"result {index} does not exist")
            current: Any = results[index]
            for part in path.split("."):
                current = current[int(part)] if isinstance(current, list) else current[part]
            return current
        return value
    if isinstance(value, list):
        return [resolve(v, media, results, regions) for v in value]
    if isinstance(value, dict):
        return {k: resolve(v, media, results, regions) for k, v in value.items()}
    return value
