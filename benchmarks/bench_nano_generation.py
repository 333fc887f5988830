"""Text-to-image and image editing of a profile's diffusion pipelines on the shapes world's ``test``
split, end to end through the graph, scored by ``vitron eval``'s harness and attribute classifier,
two ways:

1. gold calls: a scripted planner makes each sample's ground-truth call (``generate_image`` with
   the description, ``edit_image`` with the edit's words), so the diffusion backends (and, for edits,
   the Grounding DINO + SAM that find the area) are measured without the planner's mistakes;
2. the profile's own planner (what ``vitron eval`` runs).

    python benchmarks/bench_nano_generation.py [--profile nano] [--count 48] [--seed 0]
        [--tasks generation,editing] [--skip-planner]

``count`` samples of each task. Editing rows are also split by the edit's operation (remove,
recolor, move, add, restyle): ``edit_image`` reads remove and recolour instructions (the world's
background restyles, "make the background white", among them) as inpainting edits, and "add … at
the left" / "move … up" as GLIGEN draws into the boxes the words give. Attribute accuracy is judged only where the sample names an expected
attribute (recolour, move, add). Also the time per generated image. A benchmark: it prints JSON
and asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import defaultdict

import torch

KEEP = (
    "n",
    "execution",
    "module",
    "arguments",
    "attribute_accuracy",
    "psnr_outside",
    "l1",
    "latency",
)


def _rows(report: dict, samples: list) -> dict:
    """Per task, and per editing operation, the harness's aggregate numbers."""
    from vitron.evals import scoring

    run = report["runs"][0]
    rows = {task: {k: row.get(k) for k in KEEP if k in row} for task, row in run["tasks"].items()}
    by_op: dict[str, list] = defaultdict(list)
    operations = {s.id: s.gold.get("operation") for s in samples if s.task == "editing"}
    for record in report["records"]:
        if record.get("task") == "editing":
            by_op[operations.get(record.get("id"), "?")].append(record)
    for op, records in sorted(by_op.items()):
        row = scoring.aggregate("editing", records)
        rows[f"editing/{op}"] = {k: row.get(k) for k in KEEP if k in row}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="nano")
    parser.add_argument("--count", type=int, default=48, help="samples per task")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-planner", action="store_true", help="gold calls only")
    parser.add_argument("--tasks", default="generation,editing", help="comma-separated")
    args = parser.parse_args()
    torch.set_num_threads(1)

    from vitron.evals.classifier import load_classifier
    from vitron.evals.gold_planner import gold_planner
    from vitron.evals.runner import EvalSettings, evaluate
    from vitron.evals.shapes.dataset import generate

    tasks = [t for t in args.tasks.split(",") if t]
    samples = list(generate("test", len(tasks) * args.count, seed=args.seed, tasks=tasks))
    judge = load_classifier()
    out: dict = {"profile": args.profile, "split": "test", "seed": args.seed,
                 "per_task": args.count}  # fmt: skip
    planners = [("gold_calls", gold_planner)] + ([] if args.skip_planner else [("planner", None)])
    for name, planner in planners:
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as workspace:
            settings = EvalSettings(profile=args.profile, workspace=workspace, device="cpu",
                                    seed=args.seed, progress=False)  # fmt: skip
            report = evaluate(settings, samples, planner=planner, classifier=judge)
        out[name] = {**_rows(report, samples), "seconds": round(time.perf_counter() - started, 1)}
        out["classifier_accuracy"] = report.get("classifier_accuracy")
    print(json.dumps(out, indent=2, default=float))


if __name__ == "__main__":
    main()
