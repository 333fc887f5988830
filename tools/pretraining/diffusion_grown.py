"""What the inpainting and InstructPix2Pix pretrainers share: a pipeline whose UNet is the nano
text-to-image UNet with more input channels (the noisy latents first, then what the pipeline
concatenates to them), fine-tuned while the base pipeline's VAE, text encoder and tokenizer stay
frozen, on examples drawn from a refreshed pool."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from diffusers import UNet2DConditionModel

from vitron.tools.pretraining.data import ScenePool, pool_size
from vitron.tools.pretraining.diffusion_text_to_image import (
    denoising_loss,
    encode_images,
    load_base_pipeline,
    sampling_scheduler,
    save_pipeline,
    training_scheduler,
)
from vitron.tools.pretraining.loop import step_rng


def grown_unet(unet: UNet2DConditionModel, channels: int) -> UNet2DConditionModel:
    """A ``channels``-input copy of ``unet`` whose ``conv_in`` keeps its weights on the first 4
    (the noisy latents) and is zero on the new ones, so it predicts what ``unet`` does whatever
    they hold. A UNet that has ``channels`` already (a trained folder as ``--base``) is continued
    as it is."""
    if unet.config.in_channels == channels:
        return unet
    config = dict(unet.config)
    config["in_channels"] = channels
    grown = UNet2DConditionModel.from_config(config)
    state = unet.state_dict()
    weight = state["conv_in.weight"]
    widened = torch.zeros(weight.shape[0], channels, *weight.shape[2:], dtype=weight.dtype)
    widened[:, :4] = weight
    state["conv_in.weight"] = widened
    grown.load_state_dict(state)
    return grown


class GrownUNetPretrainer(ABC):
    """A pretrainer of a pipeline grown from the text-to-image one (``--base``: its folder, or one
    of this pipeline's own, to continue it). Subclasses name the pipeline class, the UNet's input
    channels and the example drawer (a ``staticmethod``), and write ``conditions``: each
    example's text and what goes beside the noisy latents."""

    name: ClassVar[str]
    channels: ClassVar[int]
    pipeline_class: ClassVar[type]
    draw_example: ClassVar[Callable[[np.random.Generator], Any]]
    batch_size: ClassVar[int]

    def __init__(self, seed: int, base: Path | None = None) -> None:
        self.seed = seed
        parts = load_base_pipeline(base, self.name)
        self.vae, self.tokenizer, self.text_encoder = parts.vae, parts.tokenizer, parts.text_encoder
        self.model = grown_unet(parts.unet, self.channels)
        self.noise = training_scheduler()
        self.pool: ScenePool[Any] | None = None

    def start(self, step: int, total: int) -> None:
        self.pool = ScenePool(self.draw_example, seed=self.seed, refresh=6,
                              capacity=pool_size(self.batch_size, total, 6, largest=768), step=step)  # fmt: skip

    def batch(self, rng: np.random.Generator) -> list[Any]:
        """The next ``batch_size`` examples of the pool (then refreshed a little)."""
        assert self.pool is not None, "call start() first"
        batch = self.pool.batch(rng, self.batch_size)
        self.pool.advance()
        return batch

    @abstractmethod
    def conditions(
        self, batch: list[Any], rng: np.random.Generator
    ) -> tuple[list[str], torch.Tensor]:
        """The batch's texts and its ``B x (channels - 4) x h x w`` extra UNet inputs."""

    def loss(self, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        """The denoising loss of each example's ``target`` under its conditions."""
        rng = step_rng(self.seed, 1, step)
        batch = self.batch(rng)
        latents = encode_images(self.vae, np.stack([b.target for b in batch]))
        texts, extra = self.conditions(batch, rng)
        return denoising_loss(self.model, self.text_encoder, self.tokenizer, self.noise,
                              latents, texts, rng, extra=extra)  # fmt: skip

    def pipeline(self) -> Any:
        return self.pipeline_class(
            vae=self.vae, text_encoder=self.text_encoder, tokenizer=self.tokenizer,
            unet=self.model, scheduler=sampling_scheduler(self.noise), safety_checker=None,
            feature_extractor=None, requires_safety_checker=False,
        )  # fmt: skip

    def save(self, directory: Path) -> None:
        save_pipeline(self.pipeline(), directory)
