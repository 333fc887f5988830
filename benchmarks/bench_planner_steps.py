"""Wall time of the planner's ``base`` steps, side by side: with the padding mask (as before
2026-12-06), without it (``causal_inputs``: right-padded batches attend causally), and without it
on two threads. The micro run's data and untrained model (``MICRO``), the same seed and batches in
every variant, one after the other in one process.

    python benchmarks/bench_planner_steps.py [--steps 60] [--rounds 1]

A benchmark: it prints JSON (seconds and the last logged loss of each variant, and the ratios to
the first) and asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

VARIANTS = (("padding mask, 1 thread", True, 1), ("causal, 1 thread", False, 1),
            ("causal, 2 threads", False, 2))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=1, help="the variants, this many times over")
    args = parser.parse_args()

    import torch

    from vitron.agent.training import objective
    from vitron.agent.training.config import TrainConfig
    from vitron.agent.training.nano import MICRO, stage_configs, train_nano
    from vitron.agent.training.trainer import Trainer

    causal = objective.causal_inputs
    results: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in VARIANTS}
    with tempfile.TemporaryDirectory() as scratch:
        run = Path(scratch) / "run"
        sizes = {k: MICRO[k] for k in ("records", "reading_records", "corpus_samples")}
        train_nano(run, seed=0, profile="nano", steps=dict.fromkeys(MICRO["steps"], 0), **sizes)
        config = stage_configs(run, seed=0, profile="nano", steps=MICRO["steps"],
                               overrides=MICRO["overrides"],
                               stage_overrides=MICRO["stage_overrides"])["base"]  # fmt: skip
        for _ in range(args.rounds):
            for name, masked, threads in VARIANTS:
                objective.causal_inputs = (lambda inputs: inputs) if masked else causal
                torch.set_num_threads(threads)
                output = Path(scratch) / "base"
                shutil.rmtree(output, ignore_errors=True)
                data = config | {"output_dir": str(output), "max_steps": args.steps}
                trainer = Trainer(TrainConfig.from_dict(data, source="base"))
                start = time.monotonic()
                trainer.run()
                seconds = time.monotonic() - start
                loss = next(h["loss"] for h in reversed(trainer.history) if "loss" in h)
                results[name].append({"seconds": round(seconds, 2), "loss": round(loss, 5)})
        objective.causal_inputs = causal
    first = min(r["seconds"] for r in results[VARIANTS[0][0]])
    summary = {name: {"runs": runs, "best_s": min(r["seconds"] for r in runs),
                      "speed_vs_mask": round(first / min(r["seconds"] for r in runs), 2)}
               for name, runs in results.items()}  # fmt: skip
    print(json.dumps({"steps": args.steps, "rounds": args.rounds, "variants": summary}, indent=2))


if __name__ == "__main__":
    main()
