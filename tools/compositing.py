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
