"""A nano text-to-video pipeline: diffusers' ``TextToVideoSDPipeline`` (the ModelScope / ZeroScope
kind ``generate_video`` loads), its ``UNet3DConditionModel`` grown from the nano text-to-image UNet
(``--base``: that pipeline's folder) and trained on 8-frame 32 px clips of one object moving left,
right, up or down (:func:`~vitron.tools.pretraining.diffusion_data.moving_example`, the texts
``vitron eval``'s ``video_generation`` task asks for).

Growing, as ModelScope grew its video UNet from an image one: every spatial weight of the 3-D UNet
is the 2-D UNet's (the transformers' linear in / out projections become 1 x 1 convolutions), and
every temporal layer starts as the identity (diffusers zeroes each temporal convolution's last
layer; the temporal transformers' output projections are zeroed here), so at step 0 each frame is
drawn as the text-to-image model draws a picture, and training adds coherence and motion. The
temporal attention has no position embedding, so a frame's place in the clip reaches the model
through the temporal convolutions' zero padding. The text encoder trains too (a copy: the
text-to-image folder keeps its own); the VAE and tokenizer are the base's, frozen. The
text-to-image recipe's objective (v-prediction under the scaled-linear schedule at zero terminal
SNR, Min-SNR-5: ``diffusion_text_to_image.OBJECTIVE``), 10 % empty captions.

``--base`` may also be a folder this backend wrote: the run then continues its UNet and text
encoder (a new schedule, the seed's own clips) under that objective, converting a run trained for
epsilon prediction.

Latents: B x 4 x T x h x w (h = w = 8 at 32 px). Saved as a ``TextToVideoSDPipeline`` folder (fp16
safetensors, DPM-Solver++), which the ``diffusion`` loader with ``pipeline = "text_to_video"`` reads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from diffusers import TextToVideoSDPipeline, UNet2DConditionModel, UNet3DConditionModel

from vitron.evals.shapes.video import GENERATED_FRAMES
from vitron.tools.pretraining.data import ScenePool, pool_size
from vitron.tools.pretraining.diffusion_data import GENERATION_SIZE, moving_example
from vitron.tools.pretraining.diffusion_text_to_image import (
    EMPTY_CAPTIONS,
    denoising_loss,
    encode_images,
    load_base_pipeline,
    sampling_scheduler,
    save_pipeline,
    saved_pipeline_class,
    training_scheduler,
)
from vitron.tools.pretraining.loop import step_rng


def is_video_pipeline(folder: Path) -> bool:
    """Whether ``folder`` holds a ``TextToVideoSDPipeline`` (a run to continue), not the
    text-to-image pipeline a first run grows from."""
    return saved_pipeline_class(folder) == "TextToVideoSDPipeline"


def video_unet(unet: UNet2DConditionModel) -> UNet3DConditionModel:
    """A 3-D UNet with ``unet``'s levels, widths and text width, its spatial weights copied and its
    temporal layers the identity (see the module's docstring).

    ``UNet3DConditionModel`` has one attention head size for every level (a level's head count is
    its width over that size; ``UNet2DConditionModel``'s ``attention_head_dim`` is a head count),
    so the heads take the first level's size: where the 2-D UNet's heads on another level are
    wider (the nano UNet's 96-wide level: 4 heads of 24), the same weights are split into more,
    narrower heads (8 of 12), and that level starts near, not at, the 2-D UNet's output."""
    config = unet.config
    blocks = len(config.block_out_channels)
    heads = config.attention_head_dim
    first_heads = heads[0] if isinstance(heads, list | tuple) else heads
    video = UNet3DConditionModel(
        sample_size=config.sample_size, in_channels=config.in_channels,
        out_channels=config.out_channels, block_out_channels=tuple(config.block_out_channels),
        down_block_types=("CrossAttnDownBlock3D",) * blocks,
        up_block_types=("CrossAttnUpBlock3D",) * blocks,
        layers_per_block=config.layers_per_block, cross_attention_dim=config.cross_attention_dim,
        attention_head_dim=config.block_out_channels[0] // first_heads,
        norm_num_groups=config.norm_num_groups,
    )  # fmt: skip
    target = video.state_dict()
    copied = {}
    for name, weight in unet.state_dict().items():
        if name in target and target[name].numel() == weight.numel():
            copied[name] = weight.reshape(target[name].shape)
    missing = [k for k in target if k not in copied and "temp_" not in k
               and not k.startswith("transformer_in.")]  # fmt: skip
    if missing:
        raise ValueError(f"the 2-D UNet has no weights for the 3-D UNet's spatial {missing[:3]}")
    video.load_state_dict(copied, strict=False)
    with torch.no_grad():
        for name, module in video.named_modules():
            if (name.startswith("transformer_in") or ".temp_attentions." in name) and name.endswith(
                "proj_out"
            ):
                module.weight.zero_()
                module.bias.zero_()
    return video


class TextToVideoPretrainer:
    name = "diffusion_text_to_video"
    default_steps = 1500
    learning_rate = 5e-4
    batch_size = 8
    """Clips a step (8 frames each: 64 frames, as text-to-image's 64 pictures)."""

    def __init__(self, seed: int, base: Path | None = None) -> None:
        self.seed = seed
        if base is not None and is_video_pipeline(base):  # a continuation of an earlier run
            parts = TextToVideoSDPipeline.from_pretrained(base, torch_dtype=torch.float32)
            unet = parts.unet
            parts.vae.requires_grad_(False)
            parts.vae.eval()
        else:
            parts = load_base_pipeline(base, self.name)
            unet = video_unet(parts.unet)
        self.vae, self.tokenizer = parts.vae, parts.tokenizer
        parts.text_encoder.requires_grad_(True)
        parts.text_encoder.train()
        self.model = torch.nn.ModuleDict({"unet": unet, "text_encoder": parts.text_encoder})
        self.noise = training_scheduler()
        self.pool: ScenePool[tuple[torch.Tensor, str]] | None = None

    def _encoded(self, rng: np.random.Generator) -> tuple[torch.Tensor, str]:
        """A clip as 4 x T x h x w latents (encoded once, reused while it is in the pool)."""
        frames, text = moving_example(rng)
        return encode_images(self.vae, frames).permute(1, 0, 2, 3).contiguous(), text

    def start(self, step: int, total: int) -> None:
        self.pool = ScenePool(self._encoded, seed=self.seed, refresh=2,
                              capacity=pool_size(self.batch_size, total, 2, largest=512),
                              step=step)  # fmt: skip

    def loss(self, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        assert self.pool is not None, "call start() first"
        rng = step_rng(self.seed, 1, step)
        batch = self.pool.batch(rng, self.batch_size)
        self.pool.advance()
        latents = torch.stack([b[0] for b in batch])
        texts = ["" if rng.random() < EMPTY_CAPTIONS else b[1] for b in batch]
        return denoising_loss(self.model["unet"], self.model["text_encoder"], self.tokenizer,
                              self.noise, latents, texts, rng)  # fmt: skip

    def pipeline(self) -> TextToVideoSDPipeline:
        return TextToVideoSDPipeline(
            vae=self.vae, text_encoder=self.model["text_encoder"], tokenizer=self.tokenizer,
            unet=self.model["unet"], scheduler=sampling_scheduler(self.noise),
        )  # fmt: skip

    def evaluate(self, count: int) -> dict[str, float]:
        """On ``count`` of the ``video_generation`` task's test requests (20 DPM-Solver++ steps,
        guidance 4, 8 frames at 32 px, as ``generate_video`` runs it on nano): the share of frames
        where the world's classifier reads the asked shape and colour, and of clips whose object
        moved the asked way."""
        return evaluate_text_to_video(self.pipeline(), count)

    def save(self, directory: Path) -> None:
        save_pipeline(self.pipeline(), directory)


def evaluate_text_to_video(pipe: TextToVideoSDPipeline, count: int, seed: int = 0,
                           steps: int = 20, guidance: float = 4.0) -> dict[str, float]:  # fmt: skip
    """See :meth:`TextToVideoPretrainer.evaluate` (``test`` split, seed ``seed``)."""
    from vitron.evals.classifier import load_classifier
    from vitron.evals.metrics import motion_direction
    from vitron.evals.shapes.dataset import make_sample
    from vitron.evals.shapes.vocab import COLOURS

    judge = load_classifier()
    pipe.set_progress_bar_config(disable=True)
    frames_right, directions = [], []
    chunk = 10
    for first in range(0, count, chunk):
        samples = [make_sample("test", i, seed=seed, tasks=["video_generation"])
                   for i in range(first, min(count, first + chunk))]  # fmt: skip
        texts = [s.calls[0].args["instruction"] for s in samples]
        generator = torch.Generator().manual_seed(seed + first)
        with torch.no_grad():
            clips = pipe(texts, num_frames=GENERATED_FRAMES, height=GENERATION_SIZE, width=GENERATION_SIZE,
                         num_inference_steps=steps, guidance_scale=guidance,
                         generator=generator, output_type="np").frames  # fmt: skip
        for clip, sample in zip(clips, samples, strict=True):
            frames = (np.clip(np.asarray(clip), 0, 1) * 255).round().astype(np.uint8)
            want = sample.gold["expected"]
            frames_right.append(np.mean([
                all(judge.predict(f).get(k) == v for k, v in want.items()) for f in frames
            ]))  # fmt: skip
            went = motion_direction(frames, want["colour"], COLOURS)
            directions.append(float(went == sample.gold["direction"]))
    return {"frames_right": float(np.mean(frames_right)),
            "direction": float(np.mean(directions))}  # fmt: skip


def make_pretrainer(seed: int, base: Path | None = None) -> TextToVideoPretrainer:
    return TextToVideoPretrainer(seed, base)
