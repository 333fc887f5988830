"""The nano SAM 2's image stage: its image path trained alone before its video training.

SAM 2 is trained on images first (SA-1B) and on videos after. A video step costs eight frames
through the memory path; whether the prompt is followed is decided on frame 0, which this stage
trains alone, four times as many pictures a step for less time. It is
:class:`~.sam2_video.Sam2VideoPretrainer` on one-frame clips: the box-prompted first frame of a
shapes-world video (1–3 objects), no memory, 16 pictures with two targets each. Its folder is a
complete tracker (``save_pretrained``) that ``vitron pretrain sam2_video --base`` continues on
videos.
"""

from __future__ import annotations

from pathlib import Path

from vitron.tools.pretraining.sam2_video import Sam2VideoPretrainer


class Sam2ImagePretrainer(Sam2VideoPretrainer):
    name = "sam2_image"
    default_steps = 3000
    batch_size = 32
    frames = 1
    refresh = 8


def make_pretrainer(seed: int, base: Path | None = None) -> Sam2ImagePretrainer:
    """``base``: a trained tracker folder to continue from."""
    return Sam2ImagePretrainer(seed, base)
