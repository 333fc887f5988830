"""Putting an edit back into its image so that only the edited area changes.

Masks are H x W bool arrays (true = edit here); images H x W x 3 uint8. An edit is allowed to touch
the mask grown by a margin (so seams blend); everything outside that grown mask is copied from the
original exactly. Shared by ``edit_image`` and, per frame, by video editing.
"""

from __future__ import annotations

import numpy as np


def grow(mask: np.ndarray, pixels: int) -> np.ndarray:
    """``mask`` dilated by a disc of radius ``pixels`` (unchanged for 0)."""
    from scipy import ndimage

    if pixels <= 0 or not mask.any():
        return mask.copy()
    distance = ndimage.distance_transform_edt(~mask)
    return distance <= pixels


def blend_weights(mask: np.ndarray, pixels: int) -> np.ndarray:
    """H x W float weights of the edit: 1 on ``mask``, falling linearly to 0 across the grown
    margin, exactly 0 outside ``grow(mask, pixels)``."""
    from scipy import ndimage

    if pixels <= 0 or not mask.any():
        return mask.astype(np.float32)
    distance = ndimage.distance_transform_edt(~mask)
    weights = 1.0 - distance / (pixels + 1.0)
    weights[distance > pixels] = 0.0
    return np.clip(weights, 0.0, 1.0).astype(np.float32)


def composite(original: np.ndarray, edited: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``edited`` where ``weights`` is 1, ``original`` where it is 0 (bit-exact), blended between.

    ``original`` and ``edited`` are H x W x 3 uint8 of one size; ``weights`` H x W in [0, 1].
    """
    if original.shape != edited.shape:
        raise ValueError(f"cannot composite {edited.shape} onto {original.shape}")
    alpha = weights[..., None]
    blended = alpha * edited.astype(np.float32) + (1.0 - alpha) * original.astype(np.float32)
    blended = np.clip(np.round(blended), 0, 255).astype(np.uint8)
    return np.where(alpha > 0, blended, original)


def paste(
    base: np.ndarray, source: np.ndarray, mask: np.ndarray, destination: list[float]
) -> tuple[np.ndarray, np.ndarray]:
    """``base`` with the pixels of ``source`` under ``mask`` (an object) put into the normalised
    box ``destination``: the object's own box is scaled to it (moved unscaled when the sizes
    match, as a move by words keeps them). Returns the new image and the pasted pixels' mask.
    ``base`` and ``source`` are H x W x 3 uint8 of one size, ``mask`` H x W bool."""
    from PIL import Image

    from vitron.tools.geometry import box_mask

    height, width = mask.shape
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return base.copy(), np.zeros_like(mask)
    top, left, bottom, right = ys.min(), xs.min(), ys.max() + 1, xs.max() + 1
    target = np.argwhere(box_mask(destination, width, height))
    (to_top, to_left), (to_bottom, to_right) = target.min(axis=0), target.max(axis=0) + 1
    crop, shape = source[top:bottom, left:right], mask[top:bottom, left:right]
    size = (int(to_right - to_left), int(to_bottom - to_top))  # PIL's (width, height)
    if size != shape.shape[::-1]:
        crop = np.asarray(Image.fromarray(crop).resize(size, Image.BICUBIC))
        shape = np.asarray(Image.fromarray(shape).resize(size, Image.NEAREST))
    pasted = np.zeros_like(mask)
    pasted[to_top:to_bottom, to_left:to_right] = shape
    out = base.copy()
    out[to_top:to_bottom, to_left:to_right][shape] = crop[shape]
    return out, pasted
