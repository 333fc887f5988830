"""RefCOCO, RefCOCO+ and RefCOCOg in the ``refer`` layout (lichengunc/refer), from a local folder::

    root/refs(unc).p  (or refs(umd).p, refs(google).p; a .json twin is read first if present)
    root/instances.json           COCO images, annotations (polygons or RLE), categories
    root/images/<file_name>       COCO train2014 images (``image_dir``)

``refs(…).p`` is a pickle: it is read with a data-only unpickler that refuses every class and
function (:func:`vitron.agent.training.readers.load_data_pickle`), so the file can build lists,
dicts and strings but never run code. One sample per referring sentence of ``split``; its
``referring_segmentation`` task scores the final mask (cIoU, gIoU) and the mask's box (Acc@0.5).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from vitron.evals.benchmarks.masks import segmentation_to_mask
from vitron.evals.sample import Media, Sample, TargetCall

SPLIT_BY = {"refcoco": "unc", "refcoco+": "unc", "refcocog": "umd"}


def read_refs(root: Path, split_by: str) -> list[dict]:
    json_path = root / f"refs({split_by}).json"
    if json_path.exists():
        return json.loads(json_path.read_text(encoding="utf-8"))
    pickle_path = root / f"refs({split_by}).p"
    if not pickle_path.exists():
        raise FileNotFoundError(f"no refs({split_by}).json or refs({split_by}).p in {root}")
    from vitron.agent.training.readers import load_data_pickle

    return load_data_pickle(pickle_path)


def load_refcoco(
    root: str | Path, *, split: str = "val", split_by: str = "unc", image_dir: str = "images",
    limit: int | None = None, name: str = "refcoco",
) -> Iterator[Sample]:  # fmt: skip
    """Samples of ``split`` (``val``, ``testA``, ``testB``, ``test``…), one per sentence."""
    root = Path(root)
    refs = read_refs(root, split_by)
    instances_path = root / "instances.json"
    if not instances_path.exists():
        raise FileNotFoundError(f"{instances_path} is missing (COCO instances of the refer layout)")
    instances = json.loads(instances_path.read_text(encoding="utf-8"))
    images = {img["id"]: img for img in instances.get("images", [])}
    annotations = {ann["id"]: ann for ann in instances.get("annotations", [])}
    count = 0
    for ref in refs:
        if ref.get("split") != split:
            continue
        image_info, annotation = images.get(ref.get("image_id")), annotations.get(ref.get("ann_id"))
        if image_info is None or annotation is None:
            raise ValueError(f"ref {ref.get('ref_id')}: image or annotation not in instances.json")
        with Image.open(root / image_dir / image_info["file_name"]) as image:
            pixels = np.asarray(image.convert("RGB"))
        height, width = pixels.shape[:2]
        mask = segmentation_to_mask(annotation["segmentation"], height, width)
        x, y, w, h = (float(v) for v in annotation["bbox"])
        box = [x / width, y / height, min(1.0, (x + w) / width), min(1.0, (y + h) / height)]
        for k, sentence in enumerate(ref.get("sentences") or []):
            if limit is not None and count >= limit:
                return
            text = str(sentence.get("sent") or sentence.get("raw") or "").strip()
            count += 1
            yield Sample(
                id=f"{name}-{split}-{ref.get('ref_id')}-{k}", task="referring_segmentation",
                instruction=f"Please segment {text}.",
                media=[Media("image", pixels, label=image_info["file_name"])],
                calls=[TargetCall("segment_image", {"image": "<media:0>", "instruction": text})],
                gold={"mask": mask, "box": box, "expression": text}, split=split, source=name,
            )  # fmt: skip
