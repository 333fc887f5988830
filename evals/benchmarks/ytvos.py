"""Ref-YouTube-VOS from a local folder in the release layout::

    root/meta_expressions/<split>/meta_expressions.json
        {"videos": {"<vid>": {"expressions": {"0": {"exp": "a person …", "obj_id": "1"}},
                              "frames": ["00000", "00005", …]}}}
    root/<split>/JPEGImages/<vid>/<frame>.jpg
    root/<split>/Annotations/<vid>/<frame>.png     palette PNGs of object ids

One sample per expression: the video and the expression → ``track_video``; scored by J&F over
every annotated frame (referring VOS gives no first-frame mask, so none is left out). The public
``valid`` split has no annotations; point ``split`` at a split that has them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from vitron.evals.benchmarks.masks import read_index_png
from vitron.evals.sample import Media, Sample, TargetCall


def load_ref_youtube_vos(
    root: str | Path, *, split: str = "train", limit: int | None = None, fps: float = 6.0,
) -> Iterator[Sample]:  # fmt: skip
    root = Path(root)
    meta_path = root / "meta_expressions" / split / "meta_expressions.json"
    if not meta_path.exists():
        raise FileNotFoundError(f"{meta_path} is missing (Ref-YouTube-VOS expressions)")
    videos = json.loads(meta_path.read_text(encoding="utf-8"))["videos"]
    count = 0
    for vid, info in videos.items():
        frames_dir = root / split / "JPEGImages" / vid
        masks_dir = root / split / "Annotations" / vid
        names = list(info["frames"])
        frames = []
        for name in names:
            with Image.open(frames_dir / f"{name}.jpg") as image:
                frames.append(np.asarray(image.convert("RGB")))
        ids = np.stack([read_index_png(masks_dir / f"{name}.png") for name in names])
        for key, expression in info["expressions"].items():
            if limit is not None and count >= limit:
                return
            text = str(expression["exp"]).strip()
            count += 1
            yield Sample(
                id=f"ref-youtube-vos-{split}-{vid}-{key}", task="tracking",
                instruction=f"Track {text} through the video.",
                media=[Media("video", np.stack(frames), fps=fps, label=vid)],
                calls=[TargetCall("track_video", {"video": "<media:0>", "instruction": text})],
                gold={"masks": ids == int(expression["obj_id"]), "drop_ends": False,
                      "expression": text},
                split=split, source="ref-youtube-vos",
            )  # fmt: skip
