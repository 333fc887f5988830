"""A tiny generated data set in the record format: coloured squares, their masks, captions,
segment / generate / edit invocations and boxes as text — enough to see every loss fall."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
from PIL import Image

from vitron.agent.invocation import format_invocation, format_region
from vitron.agent.training.records import Record, write_jsonl

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (40, 60, 220)}


def make_dataset(root: Path, count: int = 12, *, seed: int = 0, name: str = "train.jsonl") -> Path:
    """Write ``count`` records (cycling through four kinds) and their media under ``root``."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    records = []
    for k in range(count):
        colour = rng.choice(list(COLOURS))
        size = 32
        x1, y1 = rng.randint(2, 12), rng.randint(2, 12)
        x2, y2 = x1 + rng.randint(10, 18), y1 + rng.randint(10, 18)
        pixels = np.full((size, size, 3), 245, np.uint8)
        pixels[y1:y2, x1:x2] = COLOURS[colour]
        mask = np.zeros((size, size), np.uint8)
        mask[y1:y2, x1:x2] = 255
        image, mask_path = f"images/{seed}-{k}.png", f"masks/{seed}-{k}.png"
        (root / "images").mkdir(exist_ok=True)
        (root / "masks").mkdir(exist_ok=True)
        Image.fromarray(pixels).save(root / image)
        Image.fromarray(mask).save(root / mask_path)
        box = [x1 / size, y1 / size, x2 / size, y2 / size]
        media = [{"kind": "image", "path": image}]
        kind = k % 4
        if kind == 0:
            data = {
                "task": "segment_image",
                "media": media,
                "messages": [
                    {"role": "user", "text": f"<image>\nSegment the {colour} square."},
                    {"role": "assistant", "text": format_invocation(
                        "segment_image", f"the {colour} square", [box])},
                ],
                "signals": [{"token": "[SEG]", "media": 0, "mask": mask_path}],
            }  # fmt: skip
        elif kind == 1:
            data = {
                "task": "generate_image",
                "messages": [
                    {"role": "user", "text": f"Draw a {colour} square."},
                    {"role": "assistant", "text": format_invocation(
                        "generate_image", f"a {colour} square")},
                ],
                "signals": [{"token": "[GEN]", "caption": f"a {colour} square"}],
            }  # fmt: skip
        elif kind == 2:
            data = {
                "media": media,
                "regions": [{"media": 0, "box": box}],
                "messages": [
                    {"role": "user", "text": "<image>\nWhat colour is <region>?"},
                    {"role": "assistant", "text": f"It is {colour}."},
                ],
            }
        else:
            data = {
                "media": media,
                "messages": [
                    {"role": "user", "text": f"<image>\nWhere is the {colour} square?"},
                    {"role": "assistant", "text": f"<Region>{format_region(box)}</Region>"},
                ],
            }
        records.append(Record.from_json({"id": f"{seed}-{k}", "source": "squares", **data}))
    write_jsonl(root / name, records)
    return root / name
