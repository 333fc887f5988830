"""Names a user's files might have, for the media of a shapes-world sample.

The world labels its media by their part in the task ('scene', 'clip', 'candidate 3', 'before'),
and the planner's prompt lists each medium with its label. A planner trained on those labels can
read the task from them ('before' only ever came with an edit) where a user's files say nothing
of the kind ('IMG_0412', 'holiday photo'). :func:`relabel_media` gives each medium a name drawn
independently of the task, so training can teach the planner to ignore labels
(``--media-labels names``) and an eval can measure how much it relies on them
(``vitron eval --media-labels names``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: `vitron eval`'s parser reads MEDIA_LABELS without numpy
    import numpy as np

    from vitron.evals.sample import Sample

MEDIA_LABELS = ("world", "names")
"""How a sample's media are labelled: as the world labels them, or with file-like names."""

WORLD_LABELS = ("scene", "clip", "before", "candidate {n}")
"""The world's own labels, kept in the pool so they carry no task either."""
FILE_NAMES = (
    "IMG_{d4}", "DSC0{d4}", "photo", "photo {n}", "picture", "image", "my picture", "holiday photo",
    "screenshot {n}", "untitled", "test", "video", "movie", "cat", "shapes", "drawing", "frame {n}",
    "download ({n})", "scan_{d4}", "PXL_2026120{n}_{d4}",
)  # fmt: skip
"""File-name stems of the kind users attach ({d4}: four digits, {n}: a number up to 12)."""
EXTENSIONS = {"image": ("", ".png", ".jpg", ".jpeg"), "video": ("", ".mp4", ".gif", ".avi")}
"""What may follow a stem: ``vitron chat`` labels an attached file with its whole name."""


def check_media_labels(form: str) -> str:
    """``form`` if it is one of :data:`MEDIA_LABELS`, else a ValueError naming them."""
    if form not in MEDIA_LABELS:
        raise ValueError(f"unknown media labels {form!r}; known: {', '.join(MEDIA_LABELS)}")
    return form


def file_like_label(rng: np.random.Generator, kind: str = "image") -> str:
    """One label from the world's and :data:`FILE_NAMES`' pool, its digits filled in, perhaps
    with an extension of ``kind``'s files."""
    pool = WORLD_LABELS + FILE_NAMES
    template = pool[int(rng.integers(len(pool)))]
    stem = template.format(d4=f"{int(rng.integers(10_000)):04d}", n=int(rng.integers(1, 13)))
    extensions = EXTENSIONS.get(kind, ("",))
    return stem + extensions[int(rng.integers(len(extensions)))]


def relabel_media(sample: Sample, rng: np.random.Generator, form: str = "names") -> Sample:
    """``sample`` with each medium labelled the ``form`` way (:data:`MEDIA_LABELS`)."""
    if check_media_labels(form) == "world" or not sample.media:
        return sample
    return replace(
        sample, media=[replace(m, label=file_like_label(rng, m.kind)) for m in sample.media]
    )
