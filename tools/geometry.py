"""Conversions between normalised regions (fractions of width/height, top-left origin) and pixels."""

from __future__ import annotations

import numpy as np


def region_to_pixels(region: list[float], width: int, height: int) -> np.ndarray:
    """``[x1, y1, x2, y2]`` fractions to a float pixel box of the same layout."""
    x1, y1, x2, y2 = region
    return np.array([x1 * width, y1 * height, x2 * width, y2 * height], dtype=np.float32)


def points_to_pixels(points: list[list[float]], width: int, height: int) -> np.ndarray:
    """``[[x, y], …]`` fractions to an N x 2 float pixel array."""
    return np.array([[x * width, y * height] for x, y in points], dtype=np.float32)


def mask_box(mask: np.ndarray) -> list[float] | None:
    """The normalised bounding box of a bool H x W mask, or ``None`` when it is empty (the
    inverse direction is :func:`box_mask`; the batched torch version is
    ``vitron.agent.modeling.region_encoder.mask_box_batch``)."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    height, width = mask.shape
    box = [xs.min() / width, ys.min() / height, (xs.max() + 1) / width, (ys.max() + 1) / height]
    return [round(float(v), 4) for v in box]


def jittered_box(mask: np.ndarray, rng: np.random.Generator, jitter: float) -> np.ndarray:
    """The float pixel box ``[x1, y1, x2, y2]`` of a bool H x W ``mask`` as a detector would give
    it: each edge moved by up to ``jitter`` of the box's side (a detector's box is rarely exact),
    clipped to the image. An empty mask gives the whole image."""
    box = region_to_pixels(mask_box(mask) or [0, 0, 1, 1], mask.shape[1], mask.shape[0])
    w, h = box[2] - box[0], box[3] - box[1]
    noise = rng.uniform(-jitter, jitter, size=4) * np.array([w, h, w, h])
    out = box + noise.astype(np.float32)
    out[[0, 2]] = np.clip(out[[0, 2]], 0, mask.shape[1])
    out[[1, 3]] = np.clip(out[[1, 3]], 0, mask.shape[0])
    return out


def box_mask(region: list[float], width: int, height: int) -> np.ndarray:
    """The H x W bool mask of a normalised ``[x1, y1, x2, y2]`` box (at least one pixel)."""
    x1, y1, x2, y2 = region_to_pixels(region, width, height)
    mask = np.zeros((height, width), dtype=bool)
    left, top = min(int(np.floor(x1)), width - 1), min(int(np.floor(y1)), height - 1)
    right, bottom = max(int(np.ceil(x2)), left + 1), max(int(np.ceil(y2)), top + 1)
    mask[top:bottom, left:right] = True
    return mask


def coverage(mask: np.ndarray) -> float:
    """Fraction of the image the mask covers."""
    return float(mask.mean()) if mask.size else 0.0


def box_iou(a: list[float], b: list[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def box_gap(a: list[float], b: list[float]) -> float:
    """Distance between two boxes' edges (0 when they touch or overlap)."""
    dx = max(0.0, max(a[0], b[0]) - min(a[2], b[2]))
    dy = max(0.0, max(a[1], b[1]) - min(a[3], b[3]))
    return float(np.hypot(dx, dy))


def fmt_box(box: list[float]) -> str:
    return "[" + ", ".join(f"{v:.3f}" for v in box) + "]"
