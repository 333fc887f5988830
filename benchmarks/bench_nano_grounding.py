"""Grounding and text-located referring segmentation of a profile, end to end through the graph,
with the planner taken out: a scripted planner makes each sample's ground-truth call (``ground``
with the expression, or ``segment_image`` with it and no region), so the numbers are the
backends' (Grounding DINO, and SAM behind it), measured by ``vitron eval``'s own harness and
scoring on the shapes world's ``test`` split.

    python benchmarks/bench_nano_grounding.py [--profile nano] [--count 100] [--seed 0]

A benchmark, not a test: it prints the eval table rows (JSON) and asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="nano")
    parser.add_argument("--count", type=int, default=100, help="samples per task")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from vitron.evals.gold_planner import gold_planner
    from vitron.evals.runner import EvalSettings, evaluate
    from vitron.evals.shapes.dataset import generate

    tasks = ["grounding", "referring_segmentation"]
    samples = list(generate("test", 2 * args.count, seed=args.seed, tasks=tasks))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as workspace:
        settings = EvalSettings(profile=args.profile, workspace=workspace, device="cpu",
                                seed=args.seed, progress=False)  # fmt: skip
        report = evaluate(settings, samples, planner=gold_planner)
    rows = report["runs"][0]["tasks"]
    keep = ("n", "execution", "module", "arguments", "Acc@0.5", "cIoU", "gIoU", "latency")
    print(json.dumps({
        "profile": args.profile, "split": "test", "seed": args.seed,
        "planner": "gold calls (scripted)", "seconds": round(time.perf_counter() - started, 1),
        "tasks": {t: {k: row.get(k) for k in keep if k in row} for t, row in rows.items()},
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
