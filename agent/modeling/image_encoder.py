"""The image encoder: a CLIP-type vision tower read at a chosen layer, patch tokens only."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from transformers import AutoModel, CLIPVisionModel, PreTrainedModel


@dataclass(frozen=True)
class PatchFeatures:
    """Patch features of a batch of images.

    ``features`` is (N, rows * cols, C) in row-major patch order (row 0 left to right first);
    ``grid`` is (rows, cols). With ``select="cls_patch"`` the prefix tokens come first and
    ``num_prefix`` says how many.
    """

    features: torch.Tensor
    grid: tuple[int, int]
    num_prefix: int = 0

    @property
    def patches(self) -> torch.Tensor:
        """(N, rows * cols, C): the patch tokens without any prefix (CLS) tokens."""
        return self.features[:, self.num_prefix :]


class ImageEncoder(nn.Module):
    """Wraps a vision tower (``CLIPVisionModel`` or any model returning ``hidden_states``).

    The grid comes from the tower's config (``image_size // patch_size``); the number of prefix
    tokens to drop is whatever the hidden state has beyond the grid, so towers with and without a
    CLS token both work without a hard-coded offset.
    """

    def __init__(self, tower: nn.Module, feature_layer: int = -2, select: str = "patch") -> None:
        super().__init__()
        if select not in ("patch", "cls_patch"):
            raise ValueError(f"select={select!r}; use 'patch' or 'cls_patch'")
        self.tower = tower
        self.feature_layer = feature_layer
        self.select = select
        config = tower.config
        side = config.image_size // config.patch_size
        self.grid = (side, side)
        self.image_size = int(config.image_size)
        self.hidden_size = int(config.hidden_size)

    @property
    def tokens_per_image(self) -> int:
        return self.grid[0] * self.grid[1]

    def forward(self, pixel_values: torch.Tensor) -> PatchFeatures:
        """(N, 3, S, S) normalised pixels, S = the tower's image_size -> :class:`PatchFeatures`."""
        if pixel_values.ndim != 4 or tuple(pixel_values.shape[-2:]) != (self.image_size,) * 2:
            raise ValueError(
                f"pixel_values must be (N, 3, {self.image_size}, {self.image_size}), "
                f"got {tuple(pixel_values.shape)}"
            )
        dtype = next(self.tower.parameters()).dtype
        outputs = self.tower(pixel_values.to(dtype), output_hidden_states=True, return_dict=True)
        hidden = outputs.hidden_states[self.feature_layer]
        num_prefix = hidden.shape[1] - self.tokens_per_image
        if num_prefix < 0:
            raise ValueError(
                f"the tower returned {hidden.shape[1]} tokens, fewer than its "
                f"{self.grid[0]}x{self.grid[1]} patch grid"
            )
        if self.select == "patch":
            return PatchFeatures(hidden[:, num_prefix:], self.grid, 0)
        return PatchFeatures(hidden, self.grid, num_prefix)


def load_vision_tower(source: str | Path, dtype: torch.dtype | None = None) -> PreTrainedModel:
    """A pretrained CLIP-type vision tower from a hub id or directory.

    A full CLIP checkpoint (text + vision) is reduced to its vision model.
    """
    model = AutoModel.from_pretrained(source, dtype=dtype)
    if hasattr(model, "vision_model") and not model.__class__.__name__.endswith("VisionModel"):
        tower = CLIPVisionModel(model.config.vision_config)
        # transformers 5's CLIPVisionModel holds the transformer itself (no .vision_model).
        getattr(tower, "vision_model", tower).load_state_dict(model.vision_model.state_dict())
        return tower.to(dtype) if dtype is not None else tower
    return model
