"""Latency of a warm ``nano`` "segment the …" turn through the graph (issue 13's goal: ≤ 1 s on
2 cores): the nano planner (ChatVitron) writes the call, ``segment_image`` runs Grounding DINO and
SAM, the planner answers; SQLite checkpoints every step, as ``vitron chat`` does.

    python benchmarks/bench_nano_turn.py [--profile nano] [--repeats 5] [--threads 2]

The first turn loads every model and is reported apart ("cold"); the later ones are the warm
turns, each on a fresh shapes-world scene in the same thread. A benchmark: it prints JSON and
asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="nano")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch
    from PIL import Image

    from vitron.agent.chat_model import ChatVitron
    from vitron.apps.session import Session
    from vitron.evals.shapes.dataset import make_sample
    from vitron.graphs import Context

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as scratch:
        context = Context(profile=args.profile, workspace=str(Path(scratch) / "ws"))
        session = Session(ChatVitron(max_new_tokens=64, seed=0), context)
        times, calls = [], []
        for i in range(args.repeats + 1):
            sample = make_sample("test", i, tasks=["referring_segmentation"])
            path = Path(scratch) / f"scene{i}.png"
            Image.fromarray(sample.media[0].pixels).save(path)
            session.attach(path)
            start = time.perf_counter()
            turn = session.send(sample.instruction)
            times.append(time.perf_counter() - start)
            calls.append([c["name"] for m in turn.messages for c in getattr(m, "tool_calls", [])])
    warm = times[1:]
    print(json.dumps({
        "profile": args.profile, "threads": args.threads, "cold_s": round(times[0], 3),
        "warm_median_s": round(statistics.median(warm), 3), "warm_s": [round(t, 3) for t in warm],
        "calls": calls,
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
