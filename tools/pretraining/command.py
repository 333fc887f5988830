"""``vitron pretrain BACKEND --seed N --out DIR``: one backend's pre-training as one command.

Also runnable as ``python -m vitron.tools.pretraining.command``. Torch runs on ``--threads``
intra-op threads (default 1, for a shared machine; on an idle 2-core box two train each nano part
1.2-1.6 times as fast, and `vitron train --profile nano` uses two).
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from vitron.tools.pretraining import BACKENDS


def add_pretrain_command(commands: argparse._SubParsersAction) -> None:
    """Register ``pretrain`` on the ``vitron`` CLI's sub-command parser."""
    parser = commands.add_parser(
        "pretrain",
        help="train one backend of the nano profile (sam, clip, clip_tower, grounding_dino, "
        "sam2_image, sam2_video, sam2_video_long, sam2_video_finish, the diffusion parts) on the "
        "shapes world",
        description="Train a nano-size backend on the shapes world, deterministically from --seed, "
        "and save it in the format its loader reads. Run the same command again to resume.",
    )
    add_arguments(parser)
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")


def run_pretrain(args: argparse.Namespace) -> int:
    """The ``vitron pretrain`` command (see :func:`run`)."""
    return run(args)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("backend", choices=sorted(BACKENDS), help="which backend to train")
    parser.add_argument("--seed", type=int, default=0, help="fixes initialisation and data")
    parser.add_argument("--out", type=Path, required=True,
                        help="folder for the weights, in the format the backend's loader reads")  # fmt: skip
    parser.add_argument("--steps", type=int, default=None,
                        help="optimiser steps (default: the backend's own)")  # fmt: skip
    parser.add_argument("--minutes", type=float, default=None,
                        help="stop training after this wall time, saving what there is")  # fmt: skip
    parser.add_argument("--eval-count", type=int, default=200,
                        help="held-out samples for the final metrics (default: %(default)s)")  # fmt: skip
    parser.add_argument("--base", type=Path, default=None,
                        help="a trained folder to start from: the VAE for diffusion_text_to_image, "
                        "the text-to-image pipeline for diffusion_inpaint, "
                        "diffusion_instruct_pix2pix, diffusion_gligen and diffusion_text_to_video "
                        "(the inpainting, InstructPix2Pix and text-to-video ones also continue a "
                        "folder of their own), a trained detector "
                        "(grounding_dino) or tracker (sam2_image, sam2_video) to continue, the video "
                        "stage's tracker for sam2_video_long and the long stage's for "
                        "sam2_video_finish (required there)")  # fmt: skip
    parser.add_argument("--learning-rate", type=float, default=None,
                        help="AdamW's peak rate, after a 50-step warm-up and before the cosine "
                        "decay to a tenth of it (default: the backend's own)")  # fmt: skip
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")


def run(args: argparse.Namespace) -> int:
    """Train, save and print the final metrics; 0 on success."""
    import torch

    from vitron.tools.pretraining import make_pretrainer
    from vitron.tools.pretraining.loop import RunSettings, train

    if args.steps is not None and args.steps < 1:
        raise ValueError("--steps must be at least 1")
    if args.minutes is not None and args.minutes <= 0:
        raise ValueError("--minutes must be positive")
    if args.learning_rate is not None and not args.learning_rate > 0:
        raise ValueError("--learning-rate must be positive")
    torch.set_num_threads(max(1, args.threads))
    command = ["vitron", "pretrain", args.backend, "--seed", str(args.seed), "--out", str(args.out)]
    if args.steps is not None:
        command += ["--steps", str(args.steps)]
    if args.minutes is not None:
        command += ["--minutes", str(args.minutes)]
    if args.threads != 1:  # float sums, hence the weights, depend on it
        command += ["--threads", str(args.threads)]
    if args.base is not None:
        command += ["--base", str(args.base)]
    if args.learning_rate is not None:
        command += ["--learning-rate", repr(args.learning_rate)]
    settings = RunSettings(
        seed=args.seed, out=args.out, steps=args.steps, minutes=args.minutes,
        eval_count=args.eval_count, learning_rate=args.learning_rate, command=shlex.join(command),
    )  # fmt: skip
    train(make_pretrainer(args.backend, args.seed, args.base), settings)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vitron pretrain", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
