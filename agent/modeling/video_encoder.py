"""The video encoder: per-frame patch features -> pooled, time-ordered video tokens.

Frames go through the same tower as images (the model runs :class:`ImageEncoder` on them); this
module adds what is specific to video: spatial pooling of each frame to ``tokens_per_frame``
tokens and a temporal position embedding, so an 8-frame video costs ``8 * tokens_per_frame``
tokens instead of ``8 * 256`` in the reference Video-LLaVA design.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class VideoTokenCount:
    """How many LLM tokens a video costs, and what it would cost unpooled."""

    frames: int
    tokens_per_frame: int
    patches_per_frame: int

    @property
    def total(self) -> int:
        return self.frames * self.tokens_per_frame

    @property
    def unpooled(self) -> int:
        return self.frames * self.patches_per_frame

    def __str__(self) -> str:
        return (
            f"{self.frames} frames x {self.tokens_per_frame} tokens = {self.total} tokens "
            f"(unpooled: {self.frames} x {self.patches_per_frame} = {self.unpooled})"
        )


def sinusoidal_positions(count: int, dim: int) -> torch.Tensor:
    """(count, dim) fixed sine/cosine position codes (Transformer style)."""
    position = torch.arange(count, dtype=torch.float32)[:, None]
    half = dim // 2
    frequency = torch.exp(
        -math.log(10000.0) * torch.arange(half, dtype=torch.float32) / max(half, 1)
    )
    codes = torch.zeros(count, dim)
    codes[:, 0 : 2 * half : 2] = torch.sin(position * frequency)
    codes[:, 1 : 2 * half : 2] = torch.cos(position * frequency)
    return codes


class VideoEncoder(nn.Module):
    """Pools frame patch features and adds frame-order information.

    Input: (V, T, rows * cols, C) patch features of T frames (row-major patches). Output:
    (V, T * tokens_per_frame, C), frame-major (all tokens of frame 0, then frame 1, …), still in
    the vision space; the shared projector maps them to the LLM.
    """

    def __init__(
        self,
        hidden_size: int,
        tokens_per_frame: int,
        temporal_embedding: str = "learned",
        max_frames: int = 64,
    ) -> None:
        super().__init__()
        side = math.isqrt(tokens_per_frame)
        if side * side != tokens_per_frame:
            raise ValueError(f"tokens_per_frame={tokens_per_frame} must be a square number")
        self.pooled_side = side
        self.tokens_per_frame = tokens_per_frame
        self.max_frames = max_frames
        self.temporal_embedding = temporal_embedding
        if temporal_embedding not in ("learned", "sinusoidal", "none"):
            raise ValueError(
                f"temporal_embedding={temporal_embedding!r}; use learned, sinusoidal or none"
            )
        self.frame_embedding: nn.Embedding | None = None
        if temporal_embedding == "learned":
            self.frame_embedding = nn.Embedding(max_frames, hidden_size)
        if temporal_embedding == "sinusoidal":
            codes = sinusoidal_positions(max_frames, hidden_size)
            self.register_buffer("frame_codes", codes, persistent=False)

    def token_count(self, frames: int, grid: tuple[int, int]) -> VideoTokenCount:
        """The token cost of a ``frames``-frame video on a tower with this patch ``grid``."""
        return VideoTokenCount(frames, self.tokens_per_frame, grid[0] * grid[1])

    def forward(self, frame_features: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """(V, T, rows * cols, C) -> (V, T * tokens_per_frame, C)."""
        videos, frames, patches, channels = frame_features.shape
        rows, cols = grid
        if patches != rows * cols:
            raise ValueError(
                f"frame features have {patches} patches, the grid {rows}x{cols} needs {rows * cols}"
            )
        if frames > self.max_frames:
            raise ValueError(
                f"a video has {frames} frames; the temporal embedding covers {self.max_frames}"
            )
        if self.pooled_side > min(rows, cols):
            raise ValueError(
                f"cannot pool a {rows}x{cols} patch grid up to {self.pooled_side}x{self.pooled_side}"
            )
        maps = frame_features.reshape(videos * frames, rows, cols, channels).permute(0, 3, 1, 2)
        pooled = F.adaptive_avg_pool2d(maps, self.pooled_side)  # (V*T, C, s, s)
        tokens = (
            pooled.flatten(2)
            .transpose(1, 2)
            .reshape(videos, frames, self.tokens_per_frame, channels)
        )
        if self.temporal_embedding == "learned":
            assert self.frame_embedding is not None
            index = torch.arange(frames, device=tokens.device)
            tokens = tokens + self.frame_embedding(index).to(tokens.dtype)[None, :, None, :]
        elif self.temporal_embedding == "sinusoidal":
            tokens = tokens + self.frame_codes[:frames].to(tokens.dtype)[None, :, None, :]
        return tokens.reshape(videos, frames * self.tokens_per_frame, channels)
