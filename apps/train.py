"""``vitron train``: one stage of Vitron's training recipe from a config file.

``vitron train --stage invoke --config invoke.toml`` trains, writes checkpoints and metrics under
the config's ``output_dir``, and exports a profile directory there that ``--profile OUTPUT_DIR``
loads. ``--resume`` continues from the latest checkpoint (or the one given) with the same weights
an uninterrupted run would reach; Ctrl-C saves a checkpoint first. Several GPUs: start it with
``accelerate launch --config_file configs/accelerate/<zero2|zero3|fsdp>.yaml -m vitron.apps.cli
train …``. The training libraries are imported only when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from vitron.apps.nano_build import DEFAULT_OUT as DEFAULT_BUILD

STAGES_HELP = (
    "base: every LLM weight, for a backbone trained from nothing (the nano profile's; not needed "
    "for a pretrained LLM); "
    "align: projector + region encoder on captions (LLM and vision tower frozen); "
    "invoke: LoRA invocation tuning + signal heads and per-backend signal projectors aligned "
    "through the frozen SAM / diffusion decoders; "
    "ground: LoRA + projector + region encoder on boxes as text, regions, temporal grounding"
)


def add_train_command(commands: Any) -> None:
    """Register ``train`` on the CLI's sub-command parser."""
    train = commands.add_parser(
        "train",
        help="train one stage (base, align, invoke, ground) from a config file, or with "
        "--profile nano every trained part of the nano profile from nothing",
        description="Train one stage of Vitron's recipe. " + STAGES_HELP + ". A finished run "
        "writes a profile directory in output_dir; load it with --profile OUTPUT_DIR. "
        "`vitron train --profile nano [--out DIR] [--seed 0] [--quick]` instead trains every "
        "trained part of the nano profile (the backends by `vitron pretrain`, then the planner's "
        "stages, then the diffusion VAE, text-to-image and inpainting pipelines) into DIR, writes "
        "DIR/nano.toml and DIR/build.json (each part's wall time and final metrics); run it again "
        "to resume.",
    )
    train.add_argument(
        "--profile",
        choices=("nano",),
        help="train this whole profile from nothing instead of one stage",
    )
    train.add_argument(
        "--out",
        help=f"with --profile: the folder to build in (default: ./{DEFAULT_BUILD}; the committed "
        "profile is replaced only when this names tools/profiles/nano)",
    )
    train.add_argument(
        "--quick",
        action="store_true",
        help="with --profile: a few steps per part (checks the pipeline; not a usable profile)",
    )
    train.add_argument(
        "--threads",
        type=int,
        help="with --profile: torch intra-op threads for every part (default: two, or one on a "
        "one-core machine; on two cores each part trains 1.2-1.6 times as fast as on one)",
    )
    train.add_argument(
        "--stage",
        choices=("base", "align", "invoke", "ground"),
        help="the stage (overrides the config's)",
    )
    train.add_argument(
        "--config", help="the run's config (.toml or .json); needed without --profile"
    )
    train.add_argument("--output-dir", help="where checkpoints, metrics and the profile go")
    train.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=False,
        metavar="CHECKPOINT",
        help="continue from the latest checkpoint of output_dir, or from CHECKPOINT",
    )
    train.add_argument(
        "--synergy",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="cross-task synergy learning on (default in stages invoke and ground) or off "
        "(--no-synergy, the ablation: no synergy term is computed)",
    )
    train.add_argument("--synergy-weight", type=float, help="weight of the synergy terms")
    train.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
    train.add_argument("--seed", type=int, help="random seed (data order, LoRA init)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument("-v", "--verbose", action="store_true", help="log what happens")


def run_train(args: argparse.Namespace) -> int:
    if args.profile:
        return run_profile_build(args)
    if args.config is None:
        raise ValueError("vitron train needs --config (one stage) or --profile nano (every part)")
    if args.out or args.quick or args.threads:
        raise ValueError(
            "--out, --quick and --threads go with --profile; one stage writes to --output-dir"
        )
    from vitron.agent.training.config import TrainConfig

    overrides = {
        "stage": args.stage,
        "output_dir": args.output_dir,
        "synergy.enabled": args.synergy,
        "synergy.weight": args.synergy_weight,
        "max_steps": args.max_steps,
        "seed": args.seed,
        "progress": False if args.no_progress else None,
    }
    config = TrainConfig.load(args.config, **overrides)
    from vitron.agent.training.trainer import Interrupted, Trainer

    try:
        result = Trainer(config).run(resume=args.resume)
    except Interrupted as exc:
        print(f"\nvitron train: {exc}; continue with --resume", file=sys.stderr)
        return 130
    last = next((h for h in reversed(result.history) if "loss" in h), {})
    loss = f", last loss {last['loss']:.4f}" if "loss" in last else ""
    print(f"trained {result.steps} steps{loss}; {result.skipped} samples skipped")
    if result.profile is not None:
        print(f"profile: {result.profile.parent} (use --profile {result.profile.parent})")
    return 0


def run_profile_build(args: argparse.Namespace) -> int:
    """``vitron train --profile nano``: see :mod:`vitron.apps.nano_build`."""
    given = [flag for flag, value in (("--config", args.config), ("--stage", args.stage),
             ("--output-dir", args.output_dir), ("--resume", args.resume),
             ("--max-steps", args.max_steps)) if value]  # fmt: skip
    if given:
        raise ValueError(f"{', '.join(given)} configure one stage; --profile trains every part "
                         "with its own settings (see --help)")  # fmt: skip
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be at least 1, got {args.threads}")
    import torch

    from vitron.apps.nano_build import build, default_threads

    threads = args.threads or default_threads()
    torch.set_num_threads(threads)
    build(args.out or DEFAULT_BUILD, seed=args.seed or 0, quick=args.quick, threads=threads)
    return 0
