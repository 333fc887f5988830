"""The region-sketch encoder: a free-form mask over an image -> one region token.

A region is a mask (a user's sketch, a box drawn as a mask, or an earlier ``mask_`` handle), not
only a box: the mask is area-resampled onto the patch grid, so each patch is weighted by the
fraction of it the mask covers, and the patch features are averaged with those weights. A
location encoding of the mask's bounding box is added. Two masks with the same box but different
shapes therefore give different region tokens (the reference code reduces sketches to boxes).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MLP(nn.Module):
    """``depth`` linear layers with ReLU between them (names ``layers.{i}`` as in the reference)."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, depth: int) -> None:
        super().__init__()
        dims = [in_dim] + [hidden_dim] * (depth - 1) + [out_dim]
        self.layers = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


def mask_patch_weights(masks: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """(R, H, W) masks in [0, 1] -> (R, rows * cols) pooling weights, each row summing to 1.

    A patch's weight is the fraction of its area the mask covers (area resampling), so a thin
    diagonal stroke and a filled rectangle with the same corners weight patches differently.
    Raises ``ValueError`` for an empty mask.
    """
    coverage = F.adaptive_avg_pool2d(masks[:, None].float(), grid).flatten(1)  # (R, rows*cols)
    total = coverage.sum(dim=1, keepdim=True)
    empty = (total[:, 0] <= 0).nonzero().flatten().tolist()
    if empty:
        raise ValueError(f"region mask(s) {empty} are empty: a region needs at least one pixel")
    return coverage / total


def mask_box_batch(masks: torch.Tensor) -> torch.Tensor:
    """(R, H, W) masks -> (R, 4) boxes ``[x1, y1, x2, y2]`` normalised to [0, 1]: the batched
    torch twin of :func:`vitron.tools.geometry.mask_box`.

    Pixel-edge convention: a mask covering pixel columns a..b (inclusive) has
    ``x1 = a / W`` and ``x2 = (b + 1) / W``; rows likewise with H.
    """
    on = masks > 0
    height, width = on.shape[-2:]
    rows = on.any(dim=2)  # (R, H)
    cols = on.any(dim=1)  # (R, W)
    first_row = rows.float().argmax(dim=1)
    last_row = height - 1 - rows.flip(1).float().argmax(dim=1)
    first_col = cols.float().argmax(dim=1)
    last_col = width - 1 - cols.flip(1).float().argmax(dim=1)
    boxes = torch.stack(
        [first_col / width, first_row / height, (last_col + 1) / width, (last_row + 1) / height],
        dim=1,
    )
    return boxes.float()


def _check_sources(masks: torch.Tensor, source_index: torch.Tensor, images: int) -> None:
    """``ValueError`` unless ``masks`` is (R, H, W) and ``source_index`` (R,) points into
    ``images`` images."""
    if masks.ndim != 3:
        raise ValueError(f"region masks must be (R, H, W), got {tuple(masks.shape)}")
    if source_index.shape != (masks.shape[0],):
        raise ValueError(
            f"source_index must be ({masks.shape[0]},) for {masks.shape[0]} masks, "
            f"got {tuple(source_index.shape)}"
        )
    if masks.shape[0] and (source_index.min() < 0 or source_index.max() >= images):
        raise ValueError(
            f"region source_index {source_index.tolist()} must point into the "
            f"{images} image(s) given"
        )


class RegionEncoder(nn.Module):
    """Mask-pooled patch features + box location encoding -> region tokens in the LLM space.

    ``feature_mlp`` maps pooled vision features (vision_dim) to the LLM width; ``location_mlp``
    maps the normalised box (4,) to the LLM width; the region token is their sum.
    """

    def __init__(self, vision_dim: int, text_dim: int, depth: int = 3, marks: int = 0) -> None:
        super().__init__()
        self.feature_mlp = MLP(vision_dim, text_dim, text_dim, depth)
        self.location_mlp = nn.Sequential(
            nn.Linear(4, text_dim // 2), nn.ReLU(), nn.Linear(text_dim // 2, text_dim)
        )
        # zero: a model gains marks without changing what it computes until they are trained
        self.marks = nn.Parameter(torch.zeros(marks, text_dim)) if marks else None

    def mark_images(
        self,
        image_tokens: torch.Tensor,
        grid: tuple[int, int],
        masks: torch.Tensor,
        source_index: torch.Tensor,
        num_prefix: int = 0,
    ) -> torch.Tensor:
        """(N, num_prefix + rows * cols, D) image tokens with each region's mark added to the
        patches it covers (prefix tokens such as CLS are left as they are).

        ``masks`` (R, H, W) in [0, 1] and ``source_index`` (R,) as in :meth:`forward`. Region
        ``k`` of an image (in the order given) adds mark ``min(k, marks - 1)`` times the share of
        each patch the mask covers (area resampling). Without marks, the tokens come back as
        they are."""
        if self.marks is None or not masks.shape[0]:
            return image_tokens
        _check_sources(masks, source_index, image_tokens.shape[0])
        coverage = F.adaptive_avg_pool2d(masks[:, None].float(), grid).flatten(1)  # (R, P)
        coverage = F.pad(coverage, (num_prefix, 0))  # (R, num_prefix + P)
        order = torch.zeros_like(source_index)
        for r in range(1, len(source_index)):
            order[r] = int((source_index[:r] == source_index[r]).sum())
        marks = self.marks[order.clamp(max=len(self.marks) - 1)]  # (R, D)
        added = torch.zeros_like(image_tokens)
        added = added.index_add(
            0, source_index.long(), coverage.to(image_tokens.dtype)[:, :, None] * marks[:, None, :]
        )
        return image_tokens + added

    def forward(
        self,
        patch_features: torch.Tensor,
        grid: tuple[int, int],
        masks: torch.Tensor,
        source_index: torch.Tensor,
    ) -> torch.Tensor:
        """Encode R regions.

        Args:
            patch_features: (N, rows * cols, C) patch features of N images (row-major patches).
            grid: (rows, cols) of the patch grid.
            masks: (R, H, W) masks in [0, 1] over the full extent of their image (any H, W).
            source_index: (R,) which of the N images each mask is drawn on.

        Returns:
            (R, text_dim) region tokens.
        """
        _check_sources(masks, source_index, patch_features.shape[0])
        weights = mask_patch_weights(masks, grid).to(patch_features.dtype)
        pooled = torch.einsum("rp,rpc->rc", weights, patch_features[source_index.long()])
        boxes = mask_box_batch(masks).to(device=pooled.device, dtype=pooled.dtype)
        return self.feature_mlp(pooled) + self.location_mlp(boxes)
