"""DAVIS 2017, semi-supervised, from a local folder in the release layout::

    root/ImageSets/2017/<subset>.txt         sequence names
    root/JPEGImages/480p/<seq>/00000.jpg …
    root/Annotations/480p/<seq>/00000.png …  palette PNGs of object ids (255 = void)

One sample per object of each sequence: the video and the object's first-frame mask (a region
sketch) → ``track_video``; scored by J&F under the protocol of ``davis2017-evaluation`` (first and
last frames left out; void pixels count as background, as its semi-supervised path does).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from vitron.evals.benchmarks.masks import read_index_png
from vitron.evals.sample import Media, RegionInput, Sample, TargetCall
from vitron.tools.geometry import mask_box

VOID = 255


def read_sequence(root: Path, seq: str, resolution: str = "480p") -> tuple[np.ndarray, np.ndarray]:
    """Frames (T x H x W x 3 uint8) and object ids (T x H x W uint8, void set to 0)."""
    frame_paths = sorted((root / "JPEGImages" / resolution / seq).glob("*.jpg"))
    mask_paths = sorted((root / "Annotations" / resolution / seq).glob("*.png"))
    if not frame_paths:
        raise FileNotFoundError(f"no frames for sequence {seq} under {root / 'JPEGImages'}")
    frames = []
    for path in frame_paths:
        with Image.open(path) as image:
            frames.append(np.asarray(image.convert("RGB")))
    ids = np.stack([read_index_png(p) for p in mask_paths])
    ids[ids == VOID] = 0
    if len(ids) != len(frames):
        raise ValueError(f"{seq}: {len(frames)} frames but {len(ids)} annotations")
    return np.stack(frames), ids


def read_result_masks(folder: str | Path, seq: str, frames: int, objects: int) -> np.ndarray:
    """A results folder in the DAVIS submission layout (``<seq>/00000.png`` … of object ids) ->
    objects x T x H x W bool (objects absent from the results are empty)."""
    paths = sorted((Path(folder) / seq).glob("*.png"))
    if len(paths) != frames:
        raise ValueError(f"{seq}: {len(paths)} result masks for {frames} frames")
    ids = np.stack([read_index_png(p) for p in paths])
    return np.stack([ids == k for k in range(1, objects + 1)])


def load_davis(
    root: str | Path, *, subset: str = "val", limit: int | None = None,
    resolution: str = "480p", fps: float = 24.0,
) -> Iterator[Sample]:  # fmt: skip
    root = Path(root)
    listing = root / "ImageSets" / "2017" / f"{subset}.txt"
    if not listing.exists():
        raise FileNotFoundError(f"{listing} is missing (DAVIS 2017 image sets)")
    count = 0
    for seq in [s.strip() for s in listing.read_text().splitlines() if s.strip()]:
        frames, ids = read_sequence(root, seq, resolution)
        for k in range(1, int(ids[0].max()) + 1):
            if limit is not None and count >= limit:
                return
            first = ids[0] == k
            box = mask_box(first)
            if box is None:
                continue
            count += 1
            yield Sample(
                id=f"davis-{subset}-{seq}-{k}", task="tracking",
                instruction="Track the object I marked on the first frame through the video.",
                media=[Media("video", frames, fps=fps, label=seq)],
                regions=[RegionInput(0, box, first)],
                calls=[TargetCall("track_video", {"video": "<media:0>", "mask": "<region:0>"},
                                  match=("video",))],
                gold={"masks": ids == k, "drop_ends": True, "object": f"{seq}_{k}"},
                split=subset, source="davis",
            )  # fmt: skip
