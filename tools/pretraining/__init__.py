"""Backend pre-training for the ``nano`` profile: the architectures the tools load, at nano size,
trained from nothing on the shapes world (:mod:`vitron.evals.shapes`).

This plays the part the upstream projects play for the real checkpoints (SAM, CLIP …) and is kept
apart from Vitron's own training stages (:mod:`vitron.agent.training`). Each backend has one module
with a ``Pretrainer`` (model, batch loss, held-out evaluation, saving in its loader's format);
:mod:`vitron.tools.pretraining.loop` runs any of them with a seed, a step count, an optional time
cap and resumable checkpoints. ``vitron pretrain BACKEND --seed N --out DIR`` is the command.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from vitron.tools.pretraining.loop import Pretrainer

BACKENDS: dict[str, str] = {
    "sam": "vitron.tools.pretraining.sam",
    "clip": "vitron.tools.pretraining.clip",
    "clip_tower": "vitron.tools.pretraining.clip_tower",
    "grounding_dino": "vitron.tools.pretraining.grounding_dino",
    "sam2_image": "vitron.tools.pretraining.sam2_image",
    "sam2_video": "vitron.tools.pretraining.sam2_video",
    "sam2_video_long": "vitron.tools.pretraining.sam2_video_long",
    "sam2_video_finish": "vitron.tools.pretraining.sam2_video_finish",
    "diffusion_vae": "vitron.tools.pretraining.diffusion_vae",
    "diffusion_text_to_image": "vitron.tools.pretraining.diffusion_text_to_image",
    "diffusion_inpaint": "vitron.tools.pretraining.diffusion_inpaint",
    "diffusion_gligen": "vitron.tools.pretraining.diffusion_gligen",
    "diffusion_instruct_pix2pix": "vitron.tools.pretraining.diffusion_instruct_pix2pix",
    "diffusion_text_to_video": "vitron.tools.pretraining.diffusion_text_to_video",
    "diffusion_image_to_video": "vitron.tools.pretraining.diffusion_image_to_video",
}
"""Backend name -> the module whose ``make_pretrainer(seed)`` builds its trainer."""

CONTINUABLE = (
    "grounding_dino",
    "sam2_image",
    "sam2_video",
    "sam2_video_long",
    "sam2_video_finish",
    "diffusion_text_to_image",
    "diffusion_inpaint",
    "diffusion_gligen",
    "diffusion_instruct_pix2pix",
    "diffusion_text_to_video",
    "diffusion_image_to_video",
)
"""The backends whose ``make_pretrainer(seed, base)`` starts from a trained folder."""


def make_pretrainer(backend: str, seed: int, base: Path | None = None) -> Pretrainer:
    """The trainer of ``backend`` (a key of :data:`BACKENDS`), its model initialised from ``seed``;
    ``base`` is a trained folder it starts from (the diffusion parts build on one another; a
    detector or a tracker continues its own training)."""
    if backend not in BACKENDS:
        raise ValueError(
            f"unknown backend {backend!r}; pre-training exists for {', '.join(BACKENDS)}"
        )
    module = import_module(BACKENDS[backend])
    if base is None:
        return module.make_pretrainer(seed)
    if backend not in CONTINUABLE:
        raise ValueError(f"--base does not apply to {backend}; it does to {', '.join(CONTINUABLE)}")
    return module.make_pretrainer(seed, base)
