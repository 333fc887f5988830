"""The nano SAM 2's last stage: its video training continued on longer clips, more gently.

The video stage (:mod:`.sam2_video`) trains on 8-frame clips at a learning rate that teaches the
memory path from nothing; the shapes world's tracking clips run 8 to 16 frames, so a tracker
trained there alone never reads a memory bank that has filled and begun to drop frames, and its
later frames carried the target poorly (held-out J&F 0.62 from a gold box, frame 0 at 0.87 IoU).
As SAM 2.1 ends its training on longer clips, this stage continues it (``--base``, required) on
:attr:`~Sam2VideoLongPretrainer.frames`-frame clips at about a seventh of the learning rate: the memory
path keeps what it learnt and extends it. Continued at the video stage's own rate (on 12-frame
clips), its later-frame IoU fell from 0.48 to under 0.2 within 200 steps. The last stage,
:mod:`.sam2_video_finish`, continues this one once more, more gently still.
"""

from __future__ import annotations

from pathlib import Path

from vitron.tools.pretraining.sam2_video import Sam2VideoPretrainer


class Sam2VideoLongPretrainer(Sam2VideoPretrainer):
    name = "sam2_video_long"
    default_steps = 500
    learning_rate = 3e-4
    frames = 12


def make_pretrainer(seed: int, base: Path | None = None) -> Sam2VideoLongPretrainer:
    """``base``: the tracker the video stage trained (this stage only continues one)."""
    if base is None:
        raise ValueError(
            "sam2_video_long continues a tracker trained on videos: give --base, the folder "
            "`vitron pretrain sam2_video` wrote"
        )
    return Sam2VideoLongPretrainer(seed, base)
