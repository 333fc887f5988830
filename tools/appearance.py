"""A colour-histogram check on a tracked target's masks: training-free, against a tracker that
follows a neighbour once its target has left or is hidden.

nano's SAM 2 does that (its object score stays above zero on a neighbour), and an edit along such
masks repaints the wrong object. Trackers have long compared a target's colours with the ones it
started with (mean shift, CAMShift); SAMURAI adds appearance and motion to SAM 2 for the same
failure. Here the prompt frame's mask gives the reference: the share of the target's pixels in each
of ``bins ** 3`` RGB cells. Each connected part of a later mask (8-connected) is judged on its own:
a part whose histogram overlaps the reference (histogram intersection, 0 to 1) by less than
``threshold`` is taken to be another object and removed. Judged part by part, a mask that stays on
its target and also spills onto a neighbour it touched loses the neighbour only; judged whole, the
target's pixels outvote the neighbour's and the spill stays (as in ``make demo``'s video edit).

Frames are ``H x W x 3`` uint8 RGB, masks ``H x W`` bool of the same size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def colour_histogram(frame: np.ndarray, mask: np.ndarray, bins: int = 4) -> np.ndarray | None:
    """The ``bins ** 3`` shares (summing to 1) of ``mask``'s pixels in ``frame`` per RGB cell;
    ``None`` for an empty mask."""
    pixels = frame[mask].astype(np.int64) * bins // 256  # (N, 3) cell index per channel
    if not len(pixels):
        return None
    cells = (pixels[:, 0] * bins + pixels[:, 1]) * bins + pixels[:, 2]
    counts = np.bincount(cells, minlength=bins**3).astype(np.float64)
    return counts / counts.sum()


def histogram_overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Histogram intersection of two normalised histograms: 1 for the same colours, 0 for none
    shared."""
    return float(np.minimum(a, b).sum())


@dataclass
class AppearanceCheck:
    """Keeps the parts of masks whose colours match the reference's; :meth:`check` removes the
    others.

    ``threshold``: the least overlap a kept part has with the reference (0 keeps every mask).
    ``dropped`` counts the masks emptied so far, ``trimmed`` the parts removed from masks that
    kept others."""

    threshold: float
    bins: int = 4
    reference: np.ndarray | None = field(default=None, repr=False)
    dropped: int = 0
    trimmed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"appearance threshold {self.threshold} is not between 0 and 1")
        if self.bins < 1:
            raise ValueError(f"appearance bins must be 1 or more, not {self.bins}")

    def set_reference(self, frame: np.ndarray, mask: np.ndarray) -> None:
        """The target's colours: ``mask`` on ``frame`` (the prompt frame); an empty mask leaves
        no reference, and then every mask is kept."""
        self.reference = colour_histogram(frame, mask, self.bins)

    def check(self, frame: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """``mask`` without its connected parts whose colours on ``frame`` do not match the
        reference (empty when none does)."""
        from scipy import ndimage

        if self.reference is None or self.threshold <= 0 or not mask.any():
            return mask
        labels, count = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
        kept, removed = np.zeros_like(mask), 0
        for label in range(1, count + 1):
            part = labels == label
            histogram = colour_histogram(frame, part, self.bins)
            if histogram_overlap(histogram, self.reference) >= self.threshold:
                kept |= part
            else:
                removed += 1
        if removed == count:
            self.dropped += 1
        else:
            self.trimmed += removed
        return kept
