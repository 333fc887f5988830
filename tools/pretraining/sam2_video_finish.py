"""The nano SAM 2's last stage: the long-clip stage (:mod:`.sam2_video_long`) continued once more,
at a third of its rate, on 12-frame clips it has not seen.

The long stage ends with later frames still below the first (training-batch IoU 0.63-0.70 against
0.85); 500 more steps at 1e-4 on fresh clips raised held-out J&F from the gold box from 0.758 to
0.794 (the same 200 clips), while 500 more on 16-frame clips at the long stage's own rate had
lowered it (0.742). A build gives every stage its one ``--seed``; at the long stage's seed this
stage would replay its clips step for step, so it draws them from ``seed + 1``
(:attr:`~.sam2_video.Sam2VideoPretrainer.clip_seed_offset`).
"""

from __future__ import annotations

from pathlib import Path

from vitron.tools.pretraining.sam2_video_long import Sam2VideoLongPretrainer


class Sam2VideoFinishPretrainer(Sam2VideoLongPretrainer):
    name = "sam2_video_finish"
    learning_rate = 1e-4
    clip_seed_offset = 1


def make_pretrainer(seed: int, base: Path | None = None) -> Sam2VideoFinishPretrainer:
    """``base``: the tracker the long stage trained (this stage only continues one)."""
    if base is None:
        raise ValueError(
            "sam2_video_finish continues a tracker trained on long clips: give --base, the folder "
            "`vitron pretrain sam2_video_long` wrote"
        )
    return Sam2VideoFinishPretrainer(seed, base)
