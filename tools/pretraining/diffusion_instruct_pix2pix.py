"""A nano InstructPix2Pix pipeline, fine-tuned from the nano text-to-image one (``--base``: its
pipeline folder; or a trained InstructPix2Pix folder, to continue it) on whole-picture edits of
64 px shapes-world scenes: the background changed to the tone the instruction asks for, every
object kept (:func:`~vitron.tools.pretraining.diffusion_data.restyle_example`). That is what
``edit_image``'s restyle does on this world ("make the background beige").

The UNet is the text-to-image UNet with 8 input channels, as InstructPix2Pix's: the noisy latents
and the input picture's latents, in the order ``StableDiffusionInstructPix2PixPipeline``
concatenates them. The picture's latents are the VAE's mode *unscaled* (the pipeline does not
multiply them by ``scaling_factor``), so training feeds them the same way. ``conv_in`` keeps the
text-to-image weights on the first 4 channels and starts at zero on the picture's, so training
starts from the text-to-image model. The VAE, text encoder and tokenizer are the base
pipeline's, frozen. As in the paper, 5 % of examples drop the instruction, 5 % the picture (zero
latents: the pipeline's unconditional picture) and 5 % both, so both guidance scales have an
unconditional model to push from. The objective is ``diffusion_text_to_image.OBJECTIVE``.

Saved as a ``StableDiffusionInstructPix2PixPipeline`` folder (fp16 safetensors, DPM-Solver++
scheduler).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from diffusers import (
    AutoencoderKL,
    StableDiffusionInstructPix2PixPipeline,
)

from vitron.tools.pretraining.diffusion_data import EDIT_SIZE, RestyleExample, restyle_example
from vitron.tools.pretraining.diffusion_grown import GrownUNetPretrainer
from vitron.tools.pretraining.diffusion_vae import psnr, to_tensor

DROP_TEXT = 0.05
DROP_IMAGE = 0.05
DROP_BOTH = 0.05
"""Conditioning dropout (InstructPix2Pix's): the shares of examples trained without the
instruction, without the picture, and without either."""
GUIDANCE = 4.0
IMAGE_GUIDANCE = 1.5
"""What the evaluation samples with: the nano profile's text guidance and the tool's default
picture guidance."""


def picture_latents(vae: AutoencoderKL, images: np.ndarray) -> torch.Tensor:
    """``B x 4 x h x w``: the input pictures as the pipeline conditions on them (the VAE's mode,
    not scaled)."""
    with torch.no_grad():
        return vae.encode(to_tensor(images)).latent_dist.mode()


def dropped(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Which of ``count`` examples lose their instruction and which their picture."""
    draw = rng.random(count)
    no_text = draw < DROP_TEXT
    no_image = (draw >= DROP_TEXT) & (draw < DROP_TEXT + DROP_IMAGE)
    both = (draw >= DROP_TEXT + DROP_IMAGE) & (draw < DROP_TEXT + DROP_IMAGE + DROP_BOTH)
    return no_text | both, no_image | both


class InstructPix2PixPretrainer(GrownUNetPretrainer):
    name = "diffusion_instruct_pix2pix"
    default_steps = 1500
    learning_rate = 1e-3
    batch_size = 24
    channels = 8
    pipeline_class = StableDiffusionInstructPix2PixPipeline
    draw_example = staticmethod(restyle_example)

    def conditions(
        self, batch: list[RestyleExample], rng: np.random.Generator
    ) -> tuple[list[str], torch.Tensor]:
        """The instructions and the input pictures' latents, each dropped as :func:`dropped` says."""
        pictures = picture_latents(self.vae, np.stack([b.source for b in batch]))
        no_text, no_image = dropped(rng, len(batch))
        pictures[torch.from_numpy(no_image)] = 0.0
        return ["" if drop else b.text for b, drop in zip(batch, no_text, strict=True)], pictures

    def evaluate(self, count: int) -> dict[str, float]:
        """On ``count`` held-out restyles (seed 10 000 + i of the training stream's generator,
        never trained on): :func:`evaluate_restyles`."""
        return evaluate_restyles(self.pipeline(), count)


def evaluate_restyles(pipe: StableDiffusionInstructPix2PixPipeline, count: int, steps: int = 20,
                      guidance: float = GUIDANCE,
                      image_guidance: float = IMAGE_GUIDANCE) -> dict[str, float]:  # fmt: skip
    """``background_right``: the share of edits whose background (outside the objects) is nearest
    the asked tone; ``objects_kept``: of the objects the attribute classifier reads right in the
    input, the share it still reads right (shape and colour, in their boxes) in the output;
    ``psnr_objects`` and ``psnr_background``: mean PSNR on the objects' pixels and on the rest,
    against the gold edit."""
    from PIL import Image

    from vitron.evals.classifier import load_classifier
    from vitron.evals.restyle import background_tone

    judge = load_classifier()
    pipe.set_progress_bar_config(disable=True)
    scores: dict[str, list[float]] = {}
    for i in range(count):
        example = restyle_example(np.random.default_rng([10_000, i]))
        generator = torch.Generator().manual_seed(i)
        with torch.no_grad():
            out = pipe(example.text, image=Image.fromarray(example.source), num_inference_steps=steps,
                       guidance_scale=guidance, image_guidance_scale=image_guidance,
                       generator=generator, output_type="np").images[0]  # fmt: skip
        image = (np.clip(out, 0, 1) * 255).round().astype(np.uint8)
        assert image.shape == (EDIT_SIZE, EDIT_SIZE, 3)
        scores.setdefault("background_right", []).append(
            float(background_tone(image, example.objects) == example.asked)
        )
        inside = example.objects
        scores.setdefault("psnr_background", []).append(
            psnr(image[~inside], example.target[~inside])
        )
        if inside.any():
            scores.setdefault("psnr_objects", []).append(
                psnr(image[inside], example.target[inside])
            )
        for box in example.boxes:
            want, seen = judge.predict(example.source, box), judge.predict(image, box)
            scores.setdefault("objects_kept", []).append(
                float(seen["colour"] == want["colour"] and seen["shape"] == want["shape"])
            )
    return {k: float(np.mean(v)) for k, v in scores.items()}


def make_pretrainer(seed: int, base: Path | None = None) -> InstructPix2PixPretrainer:
    return InstructPix2PixPretrainer(seed, base)
