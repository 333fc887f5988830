"""Whole-clip restyles by a profile's ``video_to_video`` pipeline (``edit_video``'s restyle) on
shapes-world clips (:mod:`vitron.evals.restyle`): one object moving on one background tone,
restyled by a caption that asks for another tone ("a large red circle moving left on a black
background").

For each strength: the share of frames whose background (the pixels outside the object's mask)
is nearest the asked tone, and the share whose object the world's attribute classifier still reads
as the same shape and colour; the input clips themselves are the first row (what a restyle that
changes nothing scores). nano's ``video_to_video`` is the nano text-to-video folder read as
diffusers' ``VideoToVideoSDPipeline`` (SDEdit over its 3-D UNet). A benchmark: it prints JSON and
asserts nothing.

    python benchmarks/bench_nano_restyle.py [--profile nano] [--count 16] [--strengths 0.6,0.8,0.9]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch


def main() -> None:
    from vitron.evals.classifier import load_classifier
    from vitron.evals.restyle import judge_restyle, restyle_requests
    from vitron.tools.models.diffusion_common import Prompt
    from vitron.tools.profiles import load_profile
    from vitron.tools.registry import ModelRegistry

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="nano")
    parser.add_argument("--count", type=int, default=16)
    parser.add_argument("--strengths", default="0.6,0.8,0.9")
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    engine = ModelRegistry(load_profile(args.profile), device="cpu").get("video_to_video")
    judge, items = load_classifier(), restyle_requests(args.count)
    rows = {"input": [judge_restyle(i.clip.frames, i, judge) for i in items]}
    seconds = {}
    for strength in (float(s) for s in args.strengths.split(",")):
        start, results = time.perf_counter(), []
        for seed, item in enumerate(items):
            out = engine.transform(Prompt(item.prompt), item.clip.frames, seed=seed,
                                   steps=args.steps, guidance=engine.defaults.guidance,
                                   progress=lambda event: None, strength=strength)  # fmt: skip
            results.append(judge_restyle(out, item, judge))
        rows[f"strength {strength}"] = results
        seconds[f"strength {strength}"] = round((time.perf_counter() - start) / len(items), 2)
    print(json.dumps({
        "profile": args.profile, "clips": args.count, "steps": args.steps,
        "rows": {name: {"background_right": round(float(np.mean([r[0] for r in rs])), 3),
                        "object_kept": round(float(np.mean([r[1] for r in rs])), 3),
                        "s_per_clip": seconds.get(name)} for name, rs in rows.items()},
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
