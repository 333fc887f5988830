"""Pictures a person can check at a glance: masks tinted over the image, boxes outlined."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

PALETTE = [
    (230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128),
]  # fmt: skip


def color(index: int) -> tuple[int, int, int]:
    return PALETTE[index % len(PALETTE)]


def mask_overlay(image: Image.Image, masks: list[np.ndarray], alpha: float = 0.5) -> np.ndarray:
    """The image with each H x W bool mask tinted in its own colour; H x W x 3 uint8."""
    out = np.asarray(image.convert("RGB")).astype(np.float32)
    for i, mask in enumerate(masks):
        out[mask] = out[mask] * (1 - alpha) + np.array(color(i), dtype=np.float32) * alpha
    return out.clip(0, 255).astype(np.uint8)


def box_overlay(image: Image.Image, boxes: list[list[float]], labels: list[str]) -> np.ndarray:
    """The image with normalised ``[x1, y1, x2, y2]`` boxes outlined and labelled."""
    canvas = image.convert("RGB").copy()
    draw = ImageDraw.Draw(canvas)
    width, height = canvas.size
    line = max(1, round(min(width, height) / 200))
    for i, (box, label) in enumerate(zip(boxes, labels, strict=True)):
        x1, y1, x2, y2 = box[0] * width, box[1] * height, box[2] * width, box[3] * height
        draw.rectangle([x1, y1, x2, y2], outline=color(i), width=line)
        draw.text((x1 + line + 1, y1 + line), label, fill=color(i))
    return np.asarray(canvas)
