"""Held-out metrics of the ``nano`` profile's pre-trained backends, loaded as the tools load them:
SAM box- and point-prompt cIoU (and mean IoU) on the shapes world's ``test`` referring-segmentation
samples; CLIP R@1 of 10 on ``test`` and ``compositional`` retrieval sets; Grounding DINO Acc@0.5 of
its best box on ``test`` grounding samples (``ground``'s thresholds), and text-located referring
segmentation (its best box for the expression -> SAM's box prompt, as ``segment_image`` does
without a region) cIoU on ``test`` referring-segmentation samples.

    python benchmarks/bench_nano_backends.py [--profile nano] [--count 200] [--seed 0]

A benchmark, not a test: it prints numbers (JSON) and asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from PIL import Image


def sam_metrics(engine, count: int, seed: int) -> dict[str, float]:  # noqa: ANN001
    from vitron.evals.shapes.dataset import make_sample
    from vitron.tools.geometry import region_to_pixels
    from vitron.tools.pretraining.sam import interior_point

    sums: dict[str, list[float]] = {}
    for i in range(count):
        sample = make_sample("test", i, seed=seed, tasks=["referring_segmentation"])
        image = Image.fromarray(sample.media[0].pixels)
        gold = np.asarray(sample.gold["mask"], dtype=bool)
        w, h = image.size
        x, y = interior_point(gold)
        masks = {
            "box": engine.segment(f"b{i}", image, box=region_to_pixels(sample.gold["box"], w, h)),
            "point": engine.segment(f"b{i}", image, points=np.array([[x * w, y * h]], np.float32)),
        }
        for kind, found in masks.items():
            inter, union = int((found.mask & gold).sum()), int((found.mask | gold).sum())
            sums.setdefault(kind, [0, 0, 0.0, 0])
            sums[kind][0] += inter
            sums[kind][1] += union
            sums[kind][2] += inter / max(union, 1)
            sums[kind][3] += 1
    out = {}
    for key, (inter, union, total, n) in sorted(sums.items()):
        out[f"{key}_ciou"] = round(inter / max(union, 1), 4)
        out[f"{key}_miou"] = round(total / n, 4)
    return out


def clip_metrics(engine, count: int, seed: int) -> dict[str, float]:  # noqa: ANN001
    from vitron.evals.shapes.dataset import make_sample

    out = {}
    for split in ("test", "compositional"):
        hits = 0
        for i in range(count):
            sample = make_sample(split, i, seed=seed, tasks=["retrieval"])
            images = [Image.fromarray(m.pixels) for m in sample.media]
            scores = engine.image_features(images) @ engine.text_features(sample.gold["query"])
            hits += int(int(torch.argmax(scores)) == sample.gold["target"])
        out[f"{split}_r_at_1_of_10"] = round(hits / count, 4)
    return out


def grounding_metrics(engine, count: int, seed: int) -> dict[str, float]:  # noqa: ANN001
    from vitron.tools.pretraining.grounding_dino import evaluate_engine

    return {k: round(v, 4) for k, v in evaluate_engine(engine, count, seed).items()}


def text_located_segmentation(grounding, sam, count: int, seed: int) -> dict[str, float]:  # noqa: ANN001
    """cIoU / mIoU of SAM masks prompted with Grounding DINO's best box for the expression (an
    empty mask where it finds none above the default thresholds)."""
    from vitron.evals.shapes.dataset import make_sample
    from vitron.tools.geometry import region_to_pixels

    inter = union = 0
    total = 0.0
    for i in range(count):
        sample = make_sample("test", i, seed=seed, tasks=["referring_segmentation"])
        image = Image.fromarray(sample.media[0].pixels)
        gold = np.asarray(sample.gold["mask"], dtype=bool)
        found = grounding.detect(image, [sample.gold["expression"]], max_boxes=1)
        mask = np.zeros_like(gold)
        if found:
            w, h = image.size
            box = region_to_pixels(found[0].box, w, h)
            mask = sam.segment(f"t{i}", image, box=box).mask
        i_, u_ = int((mask & gold).sum()), int((mask | gold).sum())
        inter, union, total = inter + i_, union + u_, total + i_ / max(u_, 1)
    return {
        "text_box_ciou": round(inter / max(union, 1), 4),
        "text_box_miou": round(total / count, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="nano")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from vitron.tools.profiles import load_profile
    from vitron.tools.registry import ModelRegistry

    models = ModelRegistry(load_profile(args.profile), device="cpu")
    report = {"profile": args.profile, "count": args.count, "seed": args.seed}
    for name, measure in (("sam", sam_metrics), ("clip", clip_metrics)):
        started = time.perf_counter()
        report[name] = measure(models.get(name), args.count, args.seed)
        report[name]["seconds"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    grounding = models.get("grounding_dino")
    report["grounding_dino"] = grounding_metrics(grounding, args.count, args.seed)
    report["grounding_dino"].update(
        text_located_segmentation(grounding, models.get("sam"), args.count, args.seed)
    )
    report["grounding_dino"]["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
