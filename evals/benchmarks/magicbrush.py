"""MagicBrush from a local folder in the release layout::

    root/edit_sessions.json   {"<img_id>": [{"input": "…-input.png", "mask": "…-mask1.png",
                                              "output": "…-output1.png", "instruction": "…"}, …]}
    root/images/<img_id>/<file>

One sample per edit turn: the turn's input image and instruction → ``edit_image``; scored against
the turn's ground-truth output by L1 and L2 distance (the benchmark's pixel metrics, on [0, 1]) and
by PSNR outside the edited area. MagicBrush masks are DALL·E-2-style: the area to edit is where the
mask is transparent (or, for a mask without alpha, white). CLIP-I, DINO and CLIP-T need models this
project does not ship and are not computed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from vitron.evals.sample import Media, Sample, TargetCall


def read_edit_area(path: Path, size: tuple[int, int]) -> np.ndarray:
    """The edited area of a MagicBrush mask, resized to ``size`` (W, H): H x W bool."""
    with Image.open(path) as mask:
        mask = mask.resize(size, Image.Resampling.NEAREST)
        array = np.asarray(mask.convert("RGBA"))
    alpha = array[..., 3]
    if (alpha < 255).any():
        return alpha < 128
    return array[..., :3].mean(axis=2) > 127


def load_magicbrush(
    root: str | Path, *, sessions: str = "edit_sessions.json", image_dir: str = "images",
    limit: int | None = None,
) -> Iterator[Sample]:  # fmt: skip
    root = Path(root)
    path = root / sessions
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing (MagicBrush edit sessions)")
    count = 0
    for image_id, turns in json.loads(path.read_text(encoding="utf-8")).items():
        for k, turn in enumerate(turns):
            if limit is not None and count >= limit:
                return
            folder = root / image_dir / str(image_id)
            with Image.open(folder / turn["input"]) as source:
                before = np.asarray(source.convert("RGB"))
            with Image.open(folder / turn["output"]) as target:
                after = np.asarray(target.convert("RGB").resize(before.shape[1::-1]))
            area = (
                read_edit_area(folder / turn["mask"], before.shape[1::-1])
                if turn.get("mask")
                else None
            )
            instruction = str(turn["instruction"]).strip()
            count += 1
            yield Sample(
                id=f"magicbrush-{image_id}-{k}", task="editing", instruction=instruction,
                media=[Media("image", before, label=str(turn["input"]))],
                calls=[TargetCall("edit_image", {"image": "<media:0>", "instruction": instruction})],
                gold={"after": after, "region": area, "expected": None, "box": None},
                split="test", source="magicbrush",
            )  # fmt: skip
