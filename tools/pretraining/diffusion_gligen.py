"""A nano GLIGEN (box-grounded text-to-image), grown from the nano text-to-image pipeline
(``--base``: its folder) as GLIGEN grows from Stable Diffusion.

GLIGEN's recipe at nano size: the UNet gains a gated self-attention layer in every transformer
block (``attention_type="gated"``: visual tokens attend to one grounding token per object, added
through a tanh gate that starts at zero) and a position net that turns each object's phrase
(the frozen text encoder's pooled embedding) and box (Fourier features of ``[x1, y1, x2, y2]``)
into its grounding token. Only these new layers train; the UNet, text encoder and VAE stay the
text-to-image pipeline's, so at step 0 it draws exactly what text-to-image draws, and without
boxes it still does (a plain ``StableDiffusionPipeline`` reads the folder too). 10 % of captions
are empty and 10 % of pictures lose their grounding (every object masked), as the pipeline's
classifier-free guidance runs its unconditional half.

Data (:func:`~vitron.tools.pretraining.diffusion_data.layout_example`): 32 px pictures of 1–2
objects placed anywhere, one phrase and box per object. Saved as a
``StableDiffusionGLIGENPipeline`` folder (fp16 safetensors, DPM-Solver++), which a profile entry
``loader = "diffusion"``, ``pipeline = "gligen"`` reads unchanged.

Measured here, it does not place: after 3000 steps its objects land in their box 0.04 of the time
(the boxes lower the loss by under 2 %; the cause is not found), so the ``nano`` profile does not
ship it (``tools/profiles/nano/README.md`` has the runs).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from diffusers import StableDiffusionGLIGENPipeline, StableDiffusionPipeline, UNet2DConditionModel

from vitron.evals.shapes.language import layout_caption
from vitron.evals.shapes.scene import layout_scene, render
from vitron.tools.pretraining.data import ScenePool, pool_size
from vitron.tools.pretraining.diffusion_data import GENERATION_SIZE, LayoutExample, layout_example
from vitron.tools.pretraining.diffusion_text_to_image import (
    EMPTY_CAPTIONS,
    denoising_loss,
    encode_images,
    load_base_pipeline,
    sampling_scheduler,
    save_pipeline,
    training_scheduler,
)
from vitron.tools.pretraining.loop import step_rng

MAX_OBJECTS = 30
"""Grounding slots per picture: ``StableDiffusionGLIGENPipeline`` always fills 30 (unused ones
masked), so training does too."""
UNGROUNDED = 0.1
NEW_LAYERS = ("fuser.", "position_net.")
"""Parameter-name parts of the layers GLIGEN adds (the only ones trained)."""


def gligen_unet(unet: UNet2DConditionModel) -> UNet2DConditionModel:
    """``unet`` with GLIGEN's gated layers and position net added (their gates at zero) and every
    original weight kept and frozen."""
    config = dict(unet.config)
    config.pop("_use_default_values", None)  # else from_config resets what it lists, this too
    config["attention_type"] = "gated"
    grounded = UNet2DConditionModel.from_config(config)
    missing, unexpected = grounded.load_state_dict(unet.state_dict(), strict=False)
    stray = [k for k in missing if not any(part in k for part in NEW_LAYERS)]
    if unexpected or stray:
        raise ValueError(f"the base UNet does not fit GLIGEN's: {unexpected or stray}")
    for name, parameter in grounded.named_parameters():
        parameter.requires_grad_(any(part in name for part in NEW_LAYERS))
    return grounded


def phrase_embeddings(pipe: StableDiffusionPipeline, phrases: list[str]) -> torch.Tensor:
    """``len(phrases) x D`` pooled text-encoder embeddings, as the GLIGEN pipeline makes them."""
    ids = pipe.tokenizer(phrases, padding=True, truncation=True, return_tensors="pt").input_ids
    with torch.no_grad():
        return pipe.text_encoder(ids).pooler_output


def grounding_inputs(
    pipe: StableDiffusionPipeline, examples: list[LayoutExample], grounded: list[bool]
) -> dict[str, torch.Tensor]:
    """GLIGEN's ``cross_attention_kwargs["gligen"]`` for a batch: ``boxes`` B x 30 x 4,
    ``positive_embeddings`` B x 30 x D, ``masks`` B x 30 (1 for a real object of a grounded
    picture)."""
    width = pipe.text_encoder.config.hidden_size
    boxes = torch.zeros(len(examples), MAX_OBJECTS, 4)
    embeddings = torch.zeros(len(examples), MAX_OBJECTS, width)
    masks = torch.zeros(len(examples), MAX_OBJECTS)
    phrases = [p for e in examples for p in e.phrases]
    pooled = phrase_embeddings(pipe, phrases)
    first = 0
    for row, (example, keep) in enumerate(zip(examples, grounded, strict=True)):
        count = len(example.phrases)
        boxes[row, :count] = torch.tensor(example.boxes)
        embeddings[row, :count] = pooled[first : first + count]
        masks[row, :count] = float(keep)
        first += count
    return {"boxes": boxes, "positive_embeddings": embeddings, "masks": masks}


class GligenPretrainer:
    name = "diffusion_gligen"
    default_steps = 3000  # the run measured in tools/profiles/nano/README.md
    learning_rate = 1e-3
    batch_size = 48

    def __init__(self, seed: int, base: Path | None = None) -> None:
        self.seed = seed
        self.base = load_base_pipeline(base, self.name)
        self.model = gligen_unet(self.base.unet)
        self.noise = training_scheduler(like=self.base.scheduler)  # the frozen UNet's objective
        self.pool: ScenePool[LayoutExample] | None = None

    def start(self, step: int, total: int) -> None:
        self.pool = ScenePool(layout_example, seed=self.seed, refresh=16,
                              capacity=pool_size(self.batch_size, total, 16), step=step)  # fmt: skip

    def loss(self, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        assert self.pool is not None, "call start() first"
        rng = step_rng(self.seed, 1, step)
        batch = self.pool.batch(rng, self.batch_size)
        self.pool.advance()
        latents = encode_images(self.base.vae, np.stack([b.image for b in batch]))
        texts = ["" if rng.random() < EMPTY_CAPTIONS else b.caption for b in batch]
        grounded = [bool(rng.random() >= UNGROUNDED) for _ in batch]
        gligen = grounding_inputs(self.base, batch, grounded)
        return denoising_loss(self.model, self.base.text_encoder, self.base.tokenizer,
                              self.noise, latents, texts, rng,
                              cross_attention_kwargs={"gligen": gligen})  # fmt: skip

    def pipeline(self) -> StableDiffusionGLIGENPipeline:
        return StableDiffusionGLIGENPipeline(
            vae=self.base.vae, text_encoder=self.base.text_encoder, tokenizer=self.base.tokenizer,
            unet=self.model, scheduler=sampling_scheduler(self.noise), safety_checker=None,
            feature_extractor=None, requires_safety_checker=False,
        )  # fmt: skip

    def evaluate(self, count: int) -> dict[str, float]:
        """Layout-to-image on ``count`` held-out layouts (seed 20 000 + i, never trained on),
        drawn as ``generate_image`` draws them (20 steps, guidance 4, boxes followed for 30 % of
        the steps): the share of objects of the right shape and colour (the shapes world's
        classifier, inside the box) whose found box overlaps the asked one with IoU ≥ 0.5."""
        return evaluate_layout(self.pipeline(), count)

    def save(self, directory: Path) -> None:
        save_pipeline(self.pipeline(), directory)


def evaluate_layout(pipe: StableDiffusionGLIGENPipeline, count: int, steps: int = 20,
                    guidance: float = 4.0, grounding: float = 0.3) -> dict[str, float]:  # fmt: skip
    from vitron.evals.classifier import load_classifier
    from vitron.evals.scoring import judge_layout

    judge = load_classifier()
    pipe.set_progress_bar_config(disable=True)
    judged = []
    for i in range(count):
        scene = layout_scene(np.random.default_rng([20_000, i]))
        boxes = [b for b in render(scene, GENERATION_SIZE).boxes if b is not None]
        phrases = [f"a {o.name}" for o in scene.objects]
        generator = torch.Generator().manual_seed(i)
        with torch.no_grad():
            out = pipe(layout_caption(phrases, scene.background), gligen_phrases=phrases,
                       gligen_boxes=boxes, gligen_scheduled_sampling_beta=grounding,
                       height=GENERATION_SIZE, width=GENERATION_SIZE, num_inference_steps=steps,
                       guidance_scale=guidance, generator=generator, output_type="np").images[0]  # fmt: skip
        image = (np.clip(out, 0, 1) * 255).round().astype(np.uint8)
        objects = [{"box": box, "expected": {"shape": obj.shape, "colour": obj.colour}}
                   for obj, box in zip(scene.objects, boxes, strict=True)]  # fmt: skip
        judged += judge_layout(judge, image, objects)
    return {f"layout_{key}": float(np.mean([j[key] for j in judged]))
            for key in ("kind", "placed", "hit")}  # fmt: skip


def make_pretrainer(seed: int, base: Path | None = None) -> GligenPretrainer:
    return GligenPretrainer(seed, base)
