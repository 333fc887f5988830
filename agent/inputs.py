"""What a conversation is made of before tokenising: turns of text, images, videos
(:class:`VideoInput`) and region sketches (:class:`RegionInput`), the chat template, and the frames
sampled from a video with the timestamp line that annotates them.

Coordinates: images are resized (squashed, not cropped or padded) to the tower's square input,
so a normalised region ``[x1, y1, x2, y2]`` means the same part of the image before and after.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from PIL import Image

ImageInput = Image.Image | np.ndarray | torch.Tensor
"""A PIL image, an (H, W, 3) uint8 array, or a (3, H, W) float tensor in [0, 1]."""


# --------------------------------------------------------------------------------------------
# media inputs and conversation turns


@dataclass
class VideoInput:
    """A video as frames: an (T, H, W, 3) uint8 array or a list of images.

    Frame times come from ``timestamps`` (seconds, one per frame) or from ``fps``; without
    either, prompts name frames by index only.
    """

    frames: np.ndarray | Sequence[ImageInput]
    fps: float | None = None
    timestamps: Sequence[float] | None = None

    def __post_init__(self) -> None:
        count = len(self.frames)
        if count == 0:
            raise ValueError("a video needs at least one frame")
        if self.timestamps is not None and len(self.timestamps) != count:
            raise ValueError(f"{count} frames but {len(self.timestamps)} timestamps")
        if self.fps is not None and not self.fps > 0:
            raise ValueError(f"fps must be positive, got {self.fps}")


@dataclass
class RegionInput:
    """A region sketch: an (H, W) mask (bool, 0/1 or soft values) over the full extent of an
    image. ``image`` is the index of that image among the conversation's images (0-based, in
    order of appearance); ``None`` means the last image before the region's placeholder.
    """

    mask: np.ndarray | torch.Tensor | Image.Image
    image: int | None = None


Part = str | Image.Image | np.ndarray | torch.Tensor | VideoInput | RegionInput


@dataclass
class Turn:
    """One message of a conversation. ``content`` is text or a list of parts in reading order:
    text, images, :class:`VideoInput` and :class:`RegionInput` (rendered as ``<region>``)."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str | Sequence[Part]


@dataclass(frozen=True)
class ChatTemplate:
    """A Vicuna-v1-style template: ``SYSTEM USER: … ASSISTANT: …</s>USER: … ASSISTANT:``."""

    system: str = (
        "A chat between a curious user and an artificial intelligence assistant. The assistant "
        "gives helpful, detailed, and polite answers to the user's questions."
    )
    roles: dict[str, str] = field(
        default_factory=lambda: {"user": "USER", "assistant": "ASSISTANT", "tool": "TOOL"}
    )
    separator: str = " "
    planner_prompt: str | None = None
    """The checkpoint's own planner instructions. A system turn that begins with the graph's
    generic planner prompt (``vitron.prompts`` ``system``) gets this text in its place, the media
    listing after it kept: a small planner trained with a short prompt (``nano``) then reads what
    it was trained on instead of ~200 tokens written for general chat models. ``None`` keeps
    every system turn as it is."""

    def render(
        self, turns: Sequence[tuple[str, str]], eos_token: str, add_generation_prompt: bool = True
    ) -> str:
        """(role, text) pairs -> prompt text; a ``system`` turn replaces the default system text."""
        system = self.system
        body = ""
        for role, text in turns:
            if role == "system":
                system = self.own_instructions(text)
                continue
            if role not in self.roles:
                raise ValueError(f"unknown role {role!r}; roles: system, {', '.join(self.roles)}")
            body += f"{self.roles[role]}: {text}"
            body += eos_token if role == "assistant" else self.separator
        if add_generation_prompt:
            body += f"{self.roles['assistant']}:"
        return f"{system}{self.separator}{body}"

    def own_instructions(self, system: str) -> str:
        """``system`` with the graph's generic planner prompt swapped for :attr:`planner_prompt`."""
        if self.planner_prompt is None:
            return system
        from vitron.prompts import load_prompt

        generic = load_prompt("system").strip()
        if not system.startswith(generic):
            return system
        return self.planner_prompt + system[len(generic) :]


@dataclass
class RenderedPrompt:
    """A prompt with unexpanded placeholders and the media they stand for, in order."""

    text: str
    images: list[ImageInput] = field(default_factory=list)
    videos: list[VideoInput] = field(default_factory=list)
    regions: list[RegionInput] = field(default_factory=list)


@dataclass(frozen=True)
class SampledVideo:
    """Frames chosen from a video: ``pixels`` (T, 3, S, S), source ``indices`` and ``timestamps``."""

    pixels: torch.Tensor
    indices: list[int]
    timestamps: list[float] | None

    def describe(self) -> str:
        """The timestamp line that follows the video's tokens in the prompt, kept far cheaper than
        the pooled visual tokens it annotates: evenly spread frames (segment-centre sampling: the
        steps differ by at most one source frame) as a span ("8 frames evenly spaced from 0.5s to
        7.5s"), others as one number per frame ("Frame times (s): 0.0 0.2 1.5.")."""
        count, times = len(self.indices), self.timestamps
        if times is None:
            return f"{count} video frames."
        steps = [b - a for a, b in zip(times, times[1:], strict=False)]
        if count > 2 and min(steps) > 0 and max(steps) - min(steps) <= min(steps) + 1e-6:
            return f"{count} frames evenly spaced from {times[0]:.1f}s to {times[-1]:.1f}s."
        return f"Frame times (s): {' '.join(f'{t:.1f}' for t in times)}."


__all__ = [
    "ChatTemplate",
    "ImageInput",
    "Part",
    "RegionInput",
    "RenderedPrompt",
    "SampledVideo",
    "Turn",
    "VideoInput",
]
