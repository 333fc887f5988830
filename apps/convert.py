"""``vitron convert``: turn a checkpoint from one format into another.

``vitron convert grounding-dino SRC DST`` writes an IDEA-Research Grounding DINO checkpoint (``.pth``
plus its Python config) as a transformers folder, so either ``format`` of the ``grounding_dino``
component runs the same weights. The model libraries are imported only when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_convert_command(commands: Any) -> None:
    """Register ``convert`` and its targets on the CLI's sub-command parser."""
    convert = commands.add_parser("convert", help="convert checkpoints between formats")
    convert.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    targets = convert.add_subparsers(dest="target", required=True)
    gdino = targets.add_parser(
        "grounding-dino",
        help="an IDEA-format Grounding DINO .pth (+ its config) -> a transformers folder",
        description="Convert an IDEA-Research Grounding DINO checkpoint (e.g. "
        "groundingdino_swint_ogc.pth) into transformers' format: config.json, model.safetensors and "
        "the processor files, loadable with GroundingDinoForObjectDetection.from_pretrained and by "
        'a profile\'s grounding_dino component with format = "transformers".',
    )
    gdino.add_argument("src", help="the IDEA checkpoint (.pth; read with weights_only=True)")
    gdino.add_argument("dst", help="the folder to write (must not exist or be empty)")
    gdino.add_argument(
        "--config",
        default="GroundingDINO_SwinT_OGC",
        help="the checkpoint's Python config: a .py path or a config groundingdino-py ships "
        "(default: %(default)s)",
    )
    gdino.add_argument(
        "--text-encoder",
        help="BERT folder or hub id for the tokenizer and text config "
        "(default: the config's text_encoder_type)",
    )
    gdino.add_argument(
        "--image-size", type=int, default=800, help="short side to resize to (default: %(default)s)"
    )
    gdino.add_argument(
        "--max-size", type=int, default=1333, help="cap on the long side (default: %(default)s)"
    )


def run_convert(args: argparse.Namespace) -> int:
    if args.target == "grounding-dino":
        from vitron.tools.models.grounding_dino_convert import convert_grounding_dino

        report = convert_grounding_dino(
            args.src,
            args.dst,
            config=args.config,
            text_encoder=args.text_encoder,
            image_size=args.image_size,
            max_size=args.max_size,
            progress=lambda line: print(line, file=sys.stderr),
        )
        print(f"wrote {report.tensors} tensors and the processor files to {report.destination}")
        return 0
    raise ValueError(f"nothing converts to {args.target!r}")
