"""Masks in the formats benchmarks store them: COCO polygons and RLE, palette PNGs of object ids.

COCO RLE counts run over the image in column-major order, starting with background; compressed RLE
strings use COCO's 6-bit variable-length code (``maskApi.c``'s ``rleFrString``), decoded here
exactly. Polygons are rasterised with scikit-image (a pixel is inside when its centre is), which can
differ from COCO's own rasteriser by boundary pixels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


def rle_counts_from_string(text: str | bytes) -> list[int]:
    """Decode a compressed COCO RLE string into its run lengths."""
    data = text.encode() if isinstance(text, str) else text
    counts: list[int] = []
    p = 0
    while p < len(data):
        x, k, more = 0, 0, True
        while more:
            c = data[p] - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def rle_decode(rle: Mapping[str, Any]) -> np.ndarray:
    """``{"size": [h, w], "counts": list | str}`` -> H x W bool mask."""
    height, width = (int(v) for v in rle["size"])
    counts = rle["counts"]
    runs = rle_counts_from_string(counts) if isinstance(counts, str | bytes) else list(counts)
    if sum(runs) != height * width:
        raise ValueError(f"RLE runs cover {sum(runs)} pixels, the mask has {height * width}")
    flat = np.zeros(height * width, dtype=bool)
    position, value = 0, False
    for run in runs:
        flat[position : position + run] = value
        position += run
        value = not value
    return flat.reshape(width, height).T


def polygons_to_mask(polygons: Sequence[Sequence[float]], height: int, width: int) -> np.ndarray:
    """COCO polygons (flat ``[x1, y1, x2, y2, …]`` in pixels) -> H x W bool mask (their union)."""
    from skimage.draw import polygon as fill

    mask = np.zeros((height, width), dtype=bool)
    for poly in polygons:
        xs = np.asarray(poly[0::2], dtype=np.float64) - 0.5  # pixel centres at integer + 0.5
        ys = np.asarray(poly[1::2], dtype=np.float64) - 0.5
        rows, cols = fill(ys, xs, shape=(height, width))
        mask[rows, cols] = True
    return mask


def segmentation_to_mask(segmentation: Any, height: int, width: int) -> np.ndarray:
    """A COCO annotation's ``segmentation`` (polygons or RLE) -> H x W bool mask."""
    if isinstance(segmentation, list):
        return polygons_to_mask(segmentation, height, width)
    if isinstance(segmentation, Mapping):
        return rle_decode(segmentation)
    raise ValueError(f"unknown COCO segmentation of type {type(segmentation).__name__}")


def read_index_png(path: str | Path) -> np.ndarray:
    """A palette (or grey) PNG of object ids -> H x W uint8 array of ids (DAVIS, YouTube-VOS)."""
    with Image.open(path) as image:
        if image.mode not in ("P", "L"):
            image = image.convert("L")
        return np.array(image, dtype=np.uint8)
