"""Video object tracking of a profile's SAM 2 on the shapes world's ``test`` split, two ways:

1. the backend alone: ``Sam2VideoEngine`` (the ``sam2_video`` component as the profile loads it)
   prompted with the target's gold box on frame 0;
2. end to end through the graph with the planner taken out: a scripted planner makes each sample's
   ground-truth call (``track_video`` with the referring expression, which Grounding DINO locates
   on frame 0 before SAM 2 tracks it), scored by ``vitron eval``'s own harness.

    python benchmarks/bench_nano_tracking.py [--profile nano] [--count 50] [--seed 0]

J&F leaves out the first and last frames, as ``vitron eval`` does; ``empty_jf`` is an empty mask's
score (chance). A benchmark, not a test: it prints JSON and asserts nothing.
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
    parser.add_argument("--count", type=int, default=50, help="test clips")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from vitron.evals.gold_planner import gold_planner
    from vitron.evals.runner import EvalSettings, evaluate
    from vitron.evals.shapes.dataset import generate
    from vitron.tools.pretraining.sam2_video import evaluate_engine
    from vitron.tools.profiles import load_profile
    from vitron.tools.registry import ModelRegistry

    started = time.perf_counter()
    engine = ModelRegistry(load_profile(args.profile), device="cpu").get("sam2_video")
    with torch.no_grad():
        alone = evaluate_engine(engine, args.count, seed=args.seed)
    alone_seconds = time.perf_counter() - started

    samples = list(generate("test", args.count, seed=args.seed, tasks=["tracking"]))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as workspace:
        settings = EvalSettings(profile=args.profile, workspace=workspace, device="cpu",
                                seed=args.seed, progress=False)  # fmt: skip
        report = evaluate(settings, samples, planner=gold_planner)
    row = report["runs"][0]["tasks"]["tracking"]
    keep = ("n", "execution", "module", "arguments", "J&F", "J", "F", "latency")
    print(json.dumps({
        "profile": args.profile, "split": "test", "seed": args.seed, "clips": args.count,
        "gold_box_through_engine": {**{k: round(v, 4) for k, v in alone.items()},
                                    "seconds": round(alone_seconds, 1)},
        "gold_calls_through_graph": {**{k: row.get(k) for k in keep if k in row},
                                     "seconds": round(time.perf_counter() - started, 1)},
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
