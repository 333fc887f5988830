"""The nano planner's image tower: the nano CLIP of :mod:`.clip` in 8 px patches.

The planner reads 64 image tokens per picture (8 x 8 patches of a 64 px scene), so that its
sequences stay short on a CPU; the retriever (:mod:`.clip`) sees each candidate once per call and
uses 4 px patches (256 tokens), which it needs to tell shapes apart. Same data, loss and tokenizer;
``vitron.agent.training.nano`` builds the planner on this model's vision half.
"""

from __future__ import annotations

from vitron.tools.pretraining.clip import ClipPretrainer


class ClipTowerPretrainer(ClipPretrainer):
    name = "clip_tower"
    default_steps = 2000
    patch_size = 8


def make_pretrainer(seed: int) -> ClipTowerPretrainer:
    return ClipTowerPretrainer(seed)
