"""``vitron eval``: score the graph end to end on the shapes world or a local benchmark copy.

Kept apart from :mod:`vitron.apps.cli` so that the command table only names it; nothing heavy is
imported until the command runs.
"""

from __future__ import annotations

import argparse
import sys

SUITES = ("shapes", "refcoco", "refcoco+", "refcocog", "davis", "ref-youtube-vos", "magicbrush")


SHIPPED_CLASSIFIER = "vitron.evals.classifier:load_classifier"


def add_eval_command(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    from vitron.evals.shapes.labels import MEDIA_LABELS  # imports nothing heavy

    parser = commands.add_parser(
        "eval",
        parents=[common],
        help="run a suite through the graph (planner plans, tools execute) and print the "
        "task x metric table",
        description="Run every sample of a suite through the graph end to end and score the final "
        "outputs. Prints a markdown table and writes it, with a JSON copy and per-sample records, "
        "under --out.",
    )
    parser.add_argument("--suite", default="shapes", choices=SUITES, help="(default: %(default)s)")
    parser.add_argument(
        "--split",
        help="shapes: train, validation, test (default) or compositional; benchmarks: their "
        "split name (refcoco val/testA/testB, davis val, ref-youtube-vos train)",
    )
    parser.add_argument("--limit", type=int, help="at most N samples (shapes default: 10 per task)")
    parser.add_argument(
        "--tasks",
        help="shapes only: comma-separated tasks to score (e.g. vqa,region_caption); each keeps "
        "the samples a whole-suite run gives it (default: every scored task)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="world, planner and generation-tool seed (default: 0)"
    )
    parser.add_argument("--data", help="folder of a real benchmark's local copy")
    parser.add_argument(
        "--media-labels",
        default="world",
        choices=MEDIA_LABELS,
        help="shapes only: names = label each picture and clip with a file-like name drawn "
        "regardless of the task ('IMG_0412', 'holiday photo'), as a user's files are, instead of "
        "the world's ('scene', 'clip', 'before'); measures how much the planner reads the task "
        "from a label (default: %(default)s)",
    )
    parser.add_argument(
        "--ablate",
        action="append",
        default=[],
        choices=("synergy", "signals"),
        help="also run an ablation (repeatable): signals = text-only invocation; synergy = the "
        "profile's planner trained without synergy (only where the profile provides one)",
    )
    parser.add_argument(
        "--max-new-tokens",
        type=int,
        default=64,
        help="planner reply budget per step (default: %(default)s)",
    )
    parser.add_argument(
        "--classifier",
        default=SHIPPED_CLASSIFIER,
        help="package.module:attribute of an attribute classifier (an object, or a factory "
        "returning one, with predict(image, box) -> {'shape', 'colour', 'position'}) that judges "
        "generated and edited images (default: the shapes-world classifier shipped with the "
        "package); 'none' leaves attribute accuracy n/a",
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="torch CPU threads (default: torch's choice); 1 is fastest on a shared machine",
    )
    parser.add_argument(
        "--out", default="vitron-eval", help="folder for the table (default: %(default)s)"
    )
    parser.set_defaults(step_limit=4)


def run_eval(args: argparse.Namespace) -> int:
    from vitron.apps.output import check_output_folder
    from vitron.evals.report import markdown
    from vitron.evals.runner import EvalSettings, evaluate, write_report

    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be at least 1, got {args.limit}")
    check_output_folder(args.out, "the report")
    settings = EvalSettings(
        suite=args.suite, split=args.split, limit=args.limit, seed=args.seed, data=args.data,
        profile=args.profile, workspace=args.workspace, device=args.device,
        step_limit=args.step_limit, planner_spec=args.planner,
        max_new_tokens=args.max_new_tokens, ablate=list(dict.fromkeys(args.ablate)),
        tasks=[t.strip() for t in (args.tasks or "").split(",") if t.strip()],
        out=args.out, progress=not args.no_progress, media_labels=args.media_labels,
    )  # fmt: skip
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be at least 1, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)
    wanted = args.classifier and args.classifier.lower() != "none"
    classifier = load_object(args.classifier) if wanted else None
    report = evaluate(settings, classifier=classifier)
    print(markdown(report))
    md, js = write_report(report, args.out)
    print(f"wrote {md} and {js}", file=sys.stderr)
    return 0


def load_object(spec: str) -> object:
    """Import ``package.module:attribute``; call it when it is a class or factory."""
    import importlib

    module_name, _, attribute = spec.partition(":")
    if not attribute:
        raise ValueError(f"{spec!r} must be written package.module:attribute")
    target = getattr(importlib.import_module(module_name), attribute)
    if isinstance(target, type) or (callable(target) and not hasattr(target, "predict")):
        return target()
    return target
