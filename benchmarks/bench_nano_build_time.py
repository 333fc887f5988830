"""How long the ``nano`` profile's parts took to train, each part's share of the whole, against
issue 13's goal (its parts in 45 minutes on 2 cores) and issue 14's (the diffusion parts in 60).

Read from the records the trainings wrote, not by training again (a whole build takes hours):
each committed part's ``pretrain.json`` (every run of its ``lineage`` for a part continued with
``--base``, and the stage records beside it: SAM 2's ``sam2_*_pretrain.json``, the VAE's
``vae_pretrain.json``), and the planner's ``training.json``. With ``--build DIR``, the
``build.json`` of a ``make nano`` / ``vitron train --profile nano --out DIR`` run instead: one
build from nothing, every part on the same box.

    python benchmarks/bench_nano_build_time.py [--profile-dir tools/profiles/nano] [--build DIR]

The committed parts were trained one at a time over several days, mostly on one thread with
other jobs on the box, so their times are not one build's; each part's record says how many
threads it had. A benchmark, not a test: it prints JSON and asserts nothing.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

ISSUE_13 = ("sam", "clip", "clip_tower", "grounding_dino", "sam2_video", "vitron_llm")
"""Parts of issue 13 (seeing, tracking, retrieving, planning); the rest are issue 14's."""
GOALS_MINUTES = {"issue 13": 45, "issue 14": 60}
STAGE_RECORDS = {
    "sam2_video": ("sam2_image_pretrain.json", "sam2_video_pretrain.json",
                   "sam2_video_long_pretrain.json"),
    "text_to_image": ("vae_pretrain.json",),
}  # fmt: skip
"""Records of the runs a part's folder was continued from that its ``pretrain.json`` leaves out."""


def run_seconds(record: dict[str, Any]) -> float:
    """Training seconds of one ``pretrain.json``: every run of its lineage (which lists the
    record's own run last), else its own."""
    runs = record.get("lineage") or [record]
    return float(sum(run["train_seconds"] for run in runs))


def committed_parts(profile_dir: Path) -> dict[str, dict[str, Any]]:
    """Each committed part with recorded training: seconds, threads and where they come from."""
    parts: dict[str, dict[str, Any]] = {}
    for folder in sorted(p for p in profile_dir.iterdir() if (p / "pretrain.json").is_file()):
        record = json.loads((folder / "pretrain.json").read_text())
        seconds = run_seconds(record)
        sources = ["pretrain.json"]
        for name in STAGE_RECORDS.get(folder.name, ()):
            if (folder / name).is_file():
                seconds += run_seconds(json.loads((folder / name).read_text()))
                sources.append(name)
        parts[folder.name] = {"seconds": round(seconds, 1), "threads": record.get("torch_threads"),
                              "records": sources}  # fmt: skip
    planner = profile_dir / "vitron_llm" / "training.json"
    if planner.is_file():
        times = json.loads(planner.read_text()).get("times_s") or {}
        parts["vitron_llm"] = {
            "seconds": round(sum(times.values()), 1), "records": ["training.json"],
        }  # fmt: skip
    return parts


def build_parts(build: Path) -> dict[str, dict[str, Any]]:
    """Each part of one ``make nano`` build, from its ``build.json``."""
    record = json.loads((build / "build.json").read_text())
    return {part: {"seconds": info["seconds"]} for part, info in record["parts"].items()}


def summary(parts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Shares of the whole and totals per issue against its goal."""
    total = sum(p["seconds"] for p in parts.values()) or 1.0
    for info in parts.values():
        info["minutes"] = round(info["seconds"] / 60, 1)
        info["share"] = round(info["seconds"] / total, 3)
    groups: dict[str, float] = {"issue 13": 0.0, "issue 14": 0.0}
    for name, info in parts.items():
        groups["issue 13" if name in ISSUE_13 else "issue 14"] += info["seconds"]
    return {
        "parts": parts,
        "total_minutes": round(total / 60, 1),
        "issues": {group: {"minutes": round(seconds / 60, 1), "goal_minutes": GOALS_MINUTES[group]}
                   for group, seconds in groups.items()},
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile-dir", type=Path, default=Path("tools/profiles/nano"))
    parser.add_argument("--build", type=Path, help="a build's output folder (its build.json)")
    args = parser.parse_args()
    parts = build_parts(args.build) if args.build else committed_parts(args.profile_dir)
    print(json.dumps(summary(parts), indent=2))


if __name__ == "__main__":
    main()
