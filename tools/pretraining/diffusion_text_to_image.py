"""A nano Stable Diffusion text-to-image pipeline: ``CLIPTextModel`` + ``UNet2DConditionModel``
trained jointly in the latent space of the nano VAE (:mod:`~vitron.tools.pretraining.diffusion_vae`,
frozen, read from ``--base``) on the ``generation`` task's pictures and captions (32 px, one object;
:func:`~vitron.tools.pretraining.diffusion_data.generation_example`).

Stable Diffusion's recipe at nano size, with the objective of Stable Diffusion 2's 768 model and
Lin et al. 2024 ("Common diffusion noise schedules and sample steps are flawed"): v-prediction
under the scaled-linear DDPM schedule (1000 steps) rescaled to zero terminal SNR, sampled from the
last timestep ("trailing"). With epsilon prediction and SD's own schedule the nano UNet never learnt
where to draw (position at chance after 3000 steps): at the noisy steps where an 8 x 8 latent's
layout is decided, predicting the noise barely depends on the picture, so the place words earned
almost no gradient, and sampling started from pure noise that training never showed it.
10 % empty captions so classifier-free guidance works; Min-SNR (γ = 5) loss weights
(:func:`prediction_target`). The tokenizer is the nano CLIP's byte-level BPE with one token per
shapes-world word (:func:`~vitron.tools.pretraining.clip.shapes_tokenizer`), plus the generation
and editing texts' words, with a 24-token context.

``--base`` is the VAE's folder for a first run; a text-to-image pipeline folder continues its UNet
under this objective (converting an epsilon-prediction one), its text encoder and VAE frozen, so
the projector aligned to that text encoder and the pipelines sharing it stay valid.

Saved as a ``StableDiffusionPipeline`` folder (``save_pretrained``; fp16 weights, which the
``diffusion`` loader reads into its own dtype) with a DPM-Solver++ scheduler over the same
schedule and objective, so a profile entry ``loader = "diffusion"``, ``pipeline =
"text_to_image"`` reads it unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import (
    AutoencoderKL,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    SchedulerMixin,
    StableDiffusionPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from vitron.tools.pretraining.clip import WORDS, shapes_tokenizer
from vitron.tools.pretraining.data import ScenePool, pool_size
from vitron.tools.pretraining.diffusion_data import generation_example
from vitron.tools.pretraining.diffusion_vae import to_tensor
from vitron.tools.pretraining.loop import seeded, step_rng

TEXT_WIDTH = 64
TEXT_LENGTH = 24
"""Tokens of text context: the longest generation caption is 14 with start and end."""
EXTRA_WORDS = ("left", "right", "centre", "middle", "top", "bottom", "empty", "nothing", "there",
               "at", "to", "it", "make", "remove", "add", "move")  # fmt: skip
EMPTY_CAPTIONS = 0.1
SNR_GAMMA = 5.0


def nano_tokenizer() -> CLIPTokenizer:
    return shapes_tokenizer((*WORDS, *EXTRA_WORDS), TEXT_LENGTH)


def nano_text_encoder(tokenizer: CLIPTokenizer) -> CLIPTextModel:
    """2 layers, 64 wide, 4 heads; pools at the end token as CLIP does."""
    return CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=TEXT_WIDTH, intermediate_size=128,
        num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=TEXT_LENGTH,
        projection_dim=TEXT_WIDTH, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    ))  # fmt: skip


def nano_unet(sample_size: int = 8) -> UNet2DConditionModel:
    """Two levels (48, 96 channels; 8 x 8 -> 4 x 4 latents), one ResNet + cross-attention
    transformer per block, text states 64 wide (``attention_head_dim`` is the head count);
    2.4 M parameters (a (64, 128) UNet has 4.2 M and costs 1.5 x the time per step)."""
    return UNet2DConditionModel(
        sample_size=sample_size, in_channels=4, out_channels=4, block_out_channels=(48, 96),
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"), layers_per_block=1,
        cross_attention_dim=TEXT_WIDTH, attention_head_dim=4, norm_num_groups=16,
    )  # fmt: skip


SCHEDULE = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                num_train_timesteps=1000, clip_sample=False, steps_offset=1)  # fmt: skip
"""Stable Diffusion's noise schedule, before the objective's settings."""
OBJECTIVE = dict(prediction_type="v_prediction", rescale_betas_zero_snr=True,
                 timestep_spacing="trailing")  # fmt: skip
"""What every nano diffusion UNet trains for from now on (see the module docstring)."""


def training_scheduler(like: SchedulerMixin | None = None) -> DDPMScheduler:
    """The training schedule: SD's, under :data:`OBJECTIVE`; ``like`` (a trained pipeline's
    scheduler) gives its own objective instead, for layers trained around a frozen UNet (GLIGEN)."""
    if like is None:
        return DDPMScheduler(**SCHEDULE, **OBJECTIVE)
    kept = {key: like.config[key] for key in OBJECTIVE if key in like.config}
    return DDPMScheduler(**SCHEDULE, **kept)


def sampling_scheduler(training: DDPMScheduler) -> DPMSolverMultistepScheduler:
    """DPM-Solver++ over ``training``'s schedule and objective: good pictures in 20 steps."""
    return DPMSolverMultistepScheduler.from_config(training.config)


def load_vae(base: Path) -> AutoencoderKL:
    """The frozen VAE of ``base``: a VAE folder or a pipeline folder with a ``vae/`` in it."""
    folder = Path(base)
    if (folder / "vae" / "config.json").is_file():
        folder = folder / "vae"
    if not (folder / "config.json").is_file():
        raise ValueError(f"{base} holds no VAE (config.json); train one with "
                         "`vitron pretrain diffusion_vae --out DIR` and pass --base DIR")  # fmt: skip
    vae = AutoencoderKL.from_pretrained(folder, torch_dtype=torch.float32).eval()
    vae.requires_grad_(False)
    return vae


def saved_pipeline_class(folder: Path) -> str | None:
    """The diffusers pipeline class a ``save_pretrained`` folder holds (its ``model_index.json``),
    ``None`` when ``folder`` holds none: how a backend tells the base it grows from from a run of
    its own to continue."""
    index = Path(folder) / "model_index.json"
    return json.loads(index.read_text()).get("_class_name") if index.is_file() else None


def load_base_pipeline(base: Path | None, backend: str) -> StableDiffusionPipeline:
    """The trained nano text-to-image pipeline in ``base`` that ``backend`` builds on, its VAE and
    text encoder frozen (they stay the base's; only a UNet trains)."""
    if base is None or not (Path(base) / "model_index.json").is_file():
        raise ValueError(f"{backend} needs --base: the nano text-to-image pipeline "
                         "folder (from `vitron pretrain diffusion_text_to_image`)")  # fmt: skip
    pipe = StableDiffusionPipeline.from_pretrained(base, torch_dtype=torch.float32)
    for frozen in (pipe.vae, pipe.text_encoder):
        frozen.requires_grad_(False)
        frozen.eval()
    return pipe


def encode_images(vae: AutoencoderKL, images: np.ndarray) -> torch.Tensor:
    """B x S x S x 3 uint8 -> the scaled latent means the UNet is trained on."""
    with torch.no_grad():
        return vae.encode(to_tensor(images)).latent_dist.mean * vae.config.scaling_factor


def min_snr_weights(scheduler: DDPMScheduler, timesteps: torch.Tensor) -> torch.Tensor:
    """Min-SNR-γ weights of epsilon-prediction losses: min(SNR, γ) / SNR."""
    snr = signal_to_noise(scheduler, timesteps)
    return snr.clamp(max=SNR_GAMMA) / snr


def signal_to_noise(scheduler: DDPMScheduler, timesteps: torch.Tensor) -> torch.Tensor:
    """SNR = ᾱ / (1 - ᾱ) at ``timesteps`` (0 at the last step of a zero-terminal-SNR schedule)."""
    alphas = scheduler.alphas_cumprod[timesteps]
    return alphas / (1 - alphas).clamp(min=1e-12)


def prediction_target(
    scheduler: DDPMScheduler, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """What the UNet learns to predict for ``latents`` noised with ``noise`` at ``timesteps``, and
    each sample's loss weight (B), by the scheduler's ``prediction_type``.

    Epsilon: the noise, weighted min(SNR, γ) / SNR (Min-SNR). Velocity: ``get_velocity``,
    weighted (min(SNR, γ) + 1) / (SNR + 1), which weighs the clean picture's error by
    min(SNR, γ) + 1: capped at the nearly clean steps as Min-SNR caps them, and never under 1 at
    the noisiest ones, where the layout is decided (Min-SNR's own v weight, min(SNR, γ) /
    (SNR + 1), gives the zero-SNR step no weight at all)."""
    if scheduler.config.prediction_type == "v_prediction":
        snr = signal_to_noise(scheduler, timesteps)
        weights = (snr.clamp(max=SNR_GAMMA) + 1) / (snr + 1)
        return scheduler.get_velocity(latents, noise, timesteps), weights
    return noise, min_snr_weights(scheduler, timesteps)


def weighted_error(
    scheduler: DDPMScheduler,
    predicted: torch.Tensor,
    latents: torch.Tensor,
    noise: torch.Tensor,
    timesteps: torch.Tensor,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss of the UNet's ``predicted`` output: the per-sample MSE against
    :func:`prediction_target`'s target, weighted and averaged; and the plain MSE, for the log."""
    target, weights = prediction_target(scheduler, latents, noise, timesteps)
    per_sample = F.mse_loss(predicted, target, reduction="none").flatten(1).mean(dim=1)
    return (per_sample * weights).mean(), {"mse": per_sample.mean().item()}


def encode_texts(
    tokenizer: CLIPTokenizer, encoder: CLIPTextModel, texts: list[str]
) -> torch.Tensor:
    """``B x TEXT_LENGTH x 64`` states, padded as the pipelines pad."""
    ids = tokenizer(texts, padding="max_length", max_length=tokenizer.model_max_length,
                    truncation=True, return_tensors="pt").input_ids  # fmt: skip
    return encoder(ids)[0]


class TextToImagePretrainer:
    name = "diffusion_text_to_image"
    default_steps = 3000  # the committed nano text-to-image
    learning_rate = 1e-3
    batch_size = 64

    def __init__(self, seed: int, base: Path | None = None) -> None:
        if base is None:
            raise ValueError("diffusion_text_to_image needs --base: the trained nano VAE's folder "
                             "(or a text-to-image pipeline's, to continue it)")  # fmt: skip
        self.seed = seed
        if saved_pipeline_class(base) == "StableDiffusionPipeline":  # continue its UNet
            parts = load_base_pipeline(base, self.name)
            self.vae, self.tokenizer = parts.vae, parts.tokenizer
            self.model = torch.nn.ModuleDict(
                {"unet": parts.unet, "text_encoder": parts.text_encoder}
            )
        else:
            self.vae = load_vae(base)
            self.tokenizer = nano_tokenizer()
            self.model = seeded(seed, lambda: torch.nn.ModuleDict(
                {"unet": nano_unet(), "text_encoder": nano_text_encoder(self.tokenizer)}
            ))  # fmt: skip
        self.noise = training_scheduler()
        self.pool: ScenePool[tuple[np.ndarray, str]] | None = None

    def start(self, step: int, total: int) -> None:
        self.pool = ScenePool(generation_example, seed=self.seed, refresh=16,
                              capacity=pool_size(self.batch_size, total, 16), step=step)  # fmt: skip

    def loss(self, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        assert self.pool is not None, "call start() first"
        rng = step_rng(self.seed, 1, step)
        batch = self.pool.batch(rng, self.batch_size)
        self.pool.advance()
        latents = encode_images(self.vae, np.stack([b[0] for b in batch]))
        texts = ["" if rng.random() < EMPTY_CAPTIONS else b[1] for b in batch]
        return denoising_loss(self.model["unet"], self.model["text_encoder"], self.tokenizer,
                              self.noise, latents, texts, rng)  # fmt: skip

    def pipeline(self) -> StableDiffusionPipeline:
        return StableDiffusionPipeline(
            vae=self.vae, text_encoder=self.model["text_encoder"], tokenizer=self.tokenizer,
            unet=self.model["unet"], scheduler=sampling_scheduler(self.noise), safety_checker=None,
            feature_extractor=None, requires_safety_checker=False,
        )  # fmt: skip

    def evaluate(self, count: int) -> dict[str, float]:
        """Attribute accuracy of pictures made from the ``generation`` task's test descriptions
        (20 DPM-Solver++ steps, guidance 4), judged by the shapes world's classifier."""
        return evaluate_generation(self.pipeline(), count)

    def save(self, directory: Path) -> None:
        save_pipeline(self.pipeline(), directory)


def denoising_loss(
    unet: UNet2DConditionModel,
    text_encoder: CLIPTextModel,
    tokenizer: CLIPTokenizer,
    noise_scheduler: DDPMScheduler,
    latents: torch.Tensor,
    texts: list[str],
    rng: np.random.Generator,
    extra: torch.Tensor | None = None,
    cross_attention_kwargs: dict | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Min-SNR-weighted MSE (:func:`prediction_target`) of ``latents`` (B x 4 x h x w, scaled; B x 4 x T x h x w for a
    3-D UNet) noised at random
    timesteps; ``extra`` (B x k x h x w: mask and masked-image latents) is concatenated to the
    noisy latents as the inpainting UNet's input; ``cross_attention_kwargs`` go to the UNet
    (GLIGEN's grounding inputs)."""
    generator = torch.Generator().manual_seed(int(rng.integers(2**31)))
    noise = torch.randn(latents.shape, generator=generator)
    timesteps = torch.from_numpy(
        rng.integers(0, noise_scheduler.config.num_train_timesteps, len(latents))
    )
    noisy = noise_scheduler.add_noise(latents, noise, timesteps)
    if extra is not None:
        noisy = torch.cat([noisy, extra], dim=1)
    states = encode_texts(tokenizer, text_encoder, texts)
    predicted = unet(noisy, timesteps, encoder_hidden_states=states,
                     cross_attention_kwargs=cross_attention_kwargs).sample  # fmt: skip
    return weighted_error(noise_scheduler, predicted, latents, noise, timesteps)


def save_pipeline(pipe, directory: Path) -> None:  # noqa: ANN001
    """``save_pretrained`` in fp16 safetensors (the loader casts to its own dtype)."""
    pipe.to(torch.float16)
    try:
        pipe.save_pretrained(directory, safe_serialization=True)
    finally:
        pipe.to(torch.float32)


def evaluate_generation(pipe: StableDiffusionPipeline, count: int, seed: int = 0,
                        steps: int = 20, guidance: float = 4.0) -> dict[str, float]:  # fmt: skip
    """See :meth:`TextToImagePretrainer.evaluate` (``test`` split, seed ``seed``)."""
    from vitron.evals.classifier import load_classifier
    from vitron.evals.shapes.dataset import make_sample

    judge = load_classifier()
    pipe.set_progress_bar_config(disable=True)
    hits = {"shape": 0, "colour": 0, "position": 0, "all": 0}
    chunk = 50
    for first in range(0, count, chunk):
        samples = [make_sample("test", i, seed=seed, tasks=["generation"])
                   for i in range(first, min(count, first + chunk))]  # fmt: skip
        texts = [s.calls[0].args["instruction"] for s in samples]
        generator = torch.Generator().manual_seed(seed + first)
        with torch.no_grad():
            images = pipe(texts, height=32, width=32, num_inference_steps=steps,
                          guidance_scale=guidance, generator=generator, output_type="np").images  # fmt: skip
        for image, sample in zip(images, samples, strict=True):
            seen = judge.predict((np.clip(image, 0, 1) * 255).round().astype(np.uint8))
            right = {k: seen[k] == v for k, v in sample.gold["expected"].items()}
            for key, ok in right.items():
                hits[key] += ok
            hits["all"] += all(right.values())
    return {f"gen_{k}": v / max(count, 1) for k, v in hits.items()}


def make_pretrainer(seed: int, base: Path | None = None) -> TextToImagePretrainer:
    return TextToImagePretrainer(seed, base)
