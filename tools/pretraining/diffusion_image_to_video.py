"""A nano image-to-video pipeline: diffusers' ``I2VGenXLPipeline`` (what ``image_to_video``
loads), its ``I2VGenXLUNet`` grown from the nano text-to-video UNet (``--base``: that pipeline's
folder) and trained on 8-frame 64 px clips of a shapes-world scene where one named object moves
left, right, up or down (:func:`~vitron.tools.pretraining.diffusion_data.animation_example`, the
requests ``vitron eval``'s ``image_to_video`` task makes).

What the pipeline feeds the UNet (diffusers' ``pipeline_i2vgen_xl``): the noisy latents
(B x 4 x T x h x w); ``image_latents`` of the same shape, frame 0 the VAE latents of the picture
and frame t > 0 a constant t / (T - 1) (a frame-position mask), which the UNet's
``image_latents_proj_in`` and temporal encoder turn into 4 channels concatenated to the latents
(so ``conv_in`` takes 8); the CLIP image embedding (B x 1 x D, D the text width) and the picture's
latents, both turned into extra cross-attention tokens after the text's; and an fps embedding added
to the time embedding.

Growing: every weight of the text-to-video UNet whose name and shape match is copied (down, mid
and up blocks, time embedding, ``transformer_in``, ``conv_norm_out``, ``conv_out``); ``conv_in``
keeps its 4 trained input channels and the 4 new ones start at zero; the last layers of
``fps_embedding``, ``context_embedding`` and ``image_latents_context_embedding`` start at zero, so
at step 0 fps adds nothing and the new cross-attention tokens carry no values (they only dilute
the text's attention a little). The image encoder is the vision half and visual projection of the
nano CLIP (``tools/profiles/nano/clip``: projection 64 = the text width, as I2VGen-XL needs);
the VAE, text encoder, tokenizer and the image encoder stay frozen; only the UNet trains.

Text states are taken as ``image_to_video`` takes them (``ImageToVideoEngine.clip_skip = 1``: the
text encoder's penultimate layer through its final norm). The text-to-image recipe's
objective (v-prediction at zero terminal SNR, Min-SNR-5: ``diffusion_text_to_image.OBJECTIVE``;
a base trained for epsilon prediction is converted by the run); 10 % of the clips drop
both the text (to ``""``) and the image embedding (to zeros), which is what the pipeline's
unconditional branch sees (its image latents are never dropped). fps is 4, as the nano profile
animates.

``--base`` may also be a folder this backend wrote: the run then continues its UNet.

Saved as an ``I2VGenXLPipeline`` folder (fp16 safetensors, DPM-Solver++), which the ``diffusion``
loader with ``pipeline = "image_to_video"`` reads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from diffusers import DDPMScheduler, I2VGenXLPipeline, TextToVideoSDPipeline, UNet3DConditionModel
from diffusers.models.unets.unet_i2vgen_xl import I2VGenXLUNet
from PIL import Image
from transformers import CLIPConfig, CLIPImageProcessor, CLIPVisionModelWithProjection

from vitron.evals.shapes.video import GENERATED_FRAMES
from vitron.tools.models.diffusion_common import encode_text
from vitron.tools.pretraining.data import ScenePool, pool_size
from vitron.tools.pretraining.diffusion_data import EDIT_SIZE, animation_example
from vitron.tools.pretraining.diffusion_text_to_image import (
    EMPTY_CAPTIONS,
    sampling_scheduler,
    save_pipeline,
    saved_pipeline_class,
    training_scheduler,
    weighted_error,
)
from vitron.tools.pretraining.diffusion_vae import to_tensor
from vitron.tools.pretraining.loop import step_rng

CLIP_FOLDER = Path(__file__).resolve().parents[1] / "profiles" / "nano" / "clip"
"""The nano CLIP whose vision half becomes the image encoder."""
FPS = 4
"""The frame rate clips are conditioned on (the nano profile's ``fps``)."""
CLIP_SKIP = 1
"""Text states as ``ImageToVideoEngine`` reads them (its ``clip_skip``)."""
ANIMATION_SIZE = EDIT_SIZE
"""The side clips are trained and animated at: the scenes' own 64 px (16 x 16 latents). At 32 px
the nano VAE alone keeps only 0.49 of a scene's objects, below the task's 0.60 floor (0.96 at
64 px; tools/profiles/nano/README.md)."""


def is_i2v_pipeline(folder: Path) -> bool:
    """Whether ``folder`` holds an ``I2VGenXLPipeline`` (a run to continue)."""
    return saved_pipeline_class(folder) == "I2VGenXLPipeline"


def i2v_unet(video: UNet3DConditionModel) -> I2VGenXLUNet:
    """An I2VGen-XL UNet with ``video``'s levels, widths, heads and text width, grown from it
    (see the module's docstring)."""
    config = video.config
    unet = I2VGenXLUNet(
        sample_size=config.sample_size, in_channels=config.in_channels,
        out_channels=config.out_channels, block_out_channels=tuple(config.block_out_channels),
        down_block_types=tuple(config.down_block_types),
        up_block_types=tuple(config.up_block_types), layers_per_block=config.layers_per_block,
        cross_attention_dim=config.cross_attention_dim,
        attention_head_dim=config.attention_head_dim, norm_num_groups=config.norm_num_groups,
    )  # fmt: skip
    source, target = video.state_dict(), unet.state_dict()
    copied = {k: v for k, v in source.items() if k in target and target[k].shape == v.shape}
    skipped = [k for k in source if k not in copied and k != "conv_in.weight"]
    if skipped:
        raise ValueError(f"the I2VGen-XL UNet has no place for the video UNet's {skipped[:3]}")
    unet.load_state_dict(copied, strict=False)
    with torch.no_grad():
        weight = unet.conv_in.weight  # out x (4 noisy + 4 image) x 3 x 3
        weight.zero_()
        weight[:, : config.in_channels] = source["conv_in.weight"]
        for last in (unet.fps_embedding[-1], unet.context_embedding[-1],
                     unet.image_latents_context_embedding[-1]):  # fmt: skip
            last.weight.zero_()
            last.bias.zero_()
    return unet


def nano_image_encoder(
    folder: Path = CLIP_FOLDER,
) -> tuple[CLIPVisionModelWithProjection, CLIPImageProcessor]:
    """The vision tower and visual projection of the CLIP in ``folder``, and a processor for its
    input size (the pipeline resizes pictures to ``crop_size`` itself and only normalises)."""
    from safetensors.torch import load_file

    clip = CLIPConfig.from_pretrained(folder)
    config = clip.vision_config
    config.projection_dim = clip.projection_dim
    encoder = CLIPVisionModelWithProjection(config)
    weights = load_file(str(Path(folder) / "model.safetensors"))
    kept = {
        k: v for k, v in weights.items() if k.startswith(("vision_model.", "visual_projection."))
    }
    missing, unexpected = encoder.load_state_dict(kept, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"{folder} is no CLIP for an image encoder: {missing[:3]} {unexpected[:3]}"
        )
    side = config.image_size
    processor = CLIPImageProcessor.from_pretrained(folder)
    processor.size, processor.crop_size = {"shortest_edge": side}, {"height": side, "width": side}
    return encoder.eval().requires_grad_(False), processor


def clip_pixels(processor: CLIPImageProcessor, pictures: np.ndarray) -> torch.Tensor:
    """B x S x S x 3 uint8 (the pipeline's shrunk picture) -> B x 3 x C x C, as
    ``I2VGenXLPipeline`` prepares its image encoder's input: a bilinear resize to the processor's
    crop size, then CLIP normalisation."""
    side = (processor.crop_size["width"], processor.crop_size["height"])
    resized = [np.asarray(Image.fromarray(p).resize(side, Image.BILINEAR)) for p in pictures]
    x = torch.from_numpy(np.stack(resized)).permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor(processor.image_mean).view(1, 3, 1, 1)
    std = torch.tensor(processor.image_std).view(1, 3, 1, 1)
    return (x - mean) / std


def condition_latents(first: torch.Tensor, frames: int) -> torch.Tensor:
    """B x 4 x h x w latents of the picture -> B x 4 x T x h x w ``image_latents``: frame 0 the
    picture, frame t > 0 the constant t / (T - 1) (``prepare_image_latents``' position mask)."""
    scales = torch.arange(1, frames, dtype=first.dtype) / max(frames - 1, 1)
    masks = torch.ones_like(first)[:, :, None] * scales.view(1, 1, -1, 1, 1)
    return torch.cat([first[:, :, None], masks], dim=2)


class ImageToVideoPretrainer:
    name = "diffusion_image_to_video"
    default_steps = 1500
    learning_rate = 5e-4
    batch_size = 8
    """Clips a step (8 frames each), as text-to-video."""

    def __init__(self, seed: int, base: Path | None = None) -> None:
        self.seed = seed
        if base is not None and is_i2v_pipeline(base):  # a continuation of an earlier run
            parts = I2VGenXLPipeline.from_pretrained(base, torch_dtype=torch.float32)
            unet, self.image_encoder = parts.unet, parts.image_encoder
            self.feature_extractor = parts.feature_extractor
        elif base is not None and saved_pipeline_class(base) is not None:
            parts = TextToVideoSDPipeline.from_pretrained(base, torch_dtype=torch.float32)
            unet = i2v_unet(parts.unet)
            self.image_encoder, self.feature_extractor = nano_image_encoder()
        else:
            raise ValueError(f"{self.name} needs --base: the nano text-to-video pipeline folder "
                             "(from `vitron pretrain diffusion_text_to_video`)")  # fmt: skip
        for frozen in (parts.vae, parts.text_encoder, self.image_encoder):
            frozen.requires_grad_(False)
            frozen.eval()
        self.vae, self.text_encoder, self.tokenizer = parts.vae, parts.text_encoder, parts.tokenizer
        self.model = torch.nn.ModuleDict({"unet": unet})
        self.noise = training_scheduler()
        self.empty = self._text_states("")
        self.pool: ScenePool[dict[str, torch.Tensor]] | None = None

    def _text_states(self, text: str) -> torch.Tensor:
        """L x D states of ``text`` as the engine computes them."""
        with torch.no_grad():
            states = encode_text(self.tokenizer, self.text_encoder, [text], torch.device("cpu"),
                                 CLIP_SKIP)  # fmt: skip
        return states[0]

    def _encoded(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """A clip's tensors, computed once while it is in the pool: ``latents`` 4 x T x h x w
        (the clip's latent means), ``first_mean`` / ``first_std`` 4 x h x w (the picture's
        posterior, sampled afresh each step as the pipeline samples it), ``embedding`` 1 x D (the
        CLIP image embedding), ``states`` L x D (the text)."""
        example = animation_example(rng, ANIMATION_SIZE)
        with torch.no_grad():
            scale = self.vae.config.scaling_factor
            posterior = self.vae.encode(to_tensor(example.clip)).latent_dist
            pixels = clip_pixels(self.feature_extractor, example.clip[:1])
            embedding = self.image_encoder(pixels).image_embeds
        return {"latents": (posterior.mean * scale).permute(1, 0, 2, 3).contiguous(),
                "first_mean": posterior.mean[0] * scale, "first_std": posterior.std[0] * scale,
                "embedding": embedding, "states": self._text_states(example.text)}  # fmt: skip

    def start(self, step: int, total: int) -> None:
        self.pool = ScenePool(self._encoded, seed=self.seed, refresh=2,
                              capacity=pool_size(self.batch_size, total, 2, largest=512),
                              step=step)  # fmt: skip

    def loss(self, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        assert self.pool is not None, "call start() first"
        rng = step_rng(self.seed, 1, step)
        batch = self.pool.batch(rng, self.batch_size)
        self.pool.advance()
        dropped = [rng.random() < EMPTY_CAPTIONS for _ in batch]
        states = torch.stack(
            [self.empty if d else b["states"] for b, d in zip(batch, dropped, strict=True)]
        )
        embeddings = torch.stack([b["embedding"] * (0.0 if d else 1.0)
                                  for b, d in zip(batch, dropped, strict=True)])  # fmt: skip
        generator = torch.Generator().manual_seed(int(rng.integers(2**31)))
        mean = torch.stack([b["first_mean"] for b in batch])
        std = torch.stack([b["first_std"] for b in batch])
        first = mean + std * torch.randn(mean.shape, generator=generator)
        latents = torch.stack([b["latents"] for b in batch])
        return animation_loss(self.model["unet"], self.noise, latents, first, states, embeddings,
                              generator, rng)  # fmt: skip

    def pipeline(self) -> I2VGenXLPipeline:
        return I2VGenXLPipeline(
            vae=self.vae, text_encoder=self.text_encoder, tokenizer=self.tokenizer,
            unet=self.model["unet"], scheduler=sampling_scheduler(self.noise),
            image_encoder=self.image_encoder, feature_extractor=self.feature_extractor,
        )  # fmt: skip

    def evaluate(self, count: int) -> dict[str, float]:
        """On ``count`` of the ``image_to_video`` task's test requests, through
        ``ImageToVideoEngine`` (20 DPM-Solver++ steps, guidance 4, 8 frames at 64 px, frame 0 held
        to the picture, as the nano profile runs it): the numbers of
        :func:`~vitron.evals.scoring.judge_animation`."""
        return evaluate_image_to_video(self.pipeline(), count)

    def save(self, directory: Path) -> None:
        save_pipeline(self.pipeline(), directory)


def animation_loss(
    unet: I2VGenXLUNet,
    noise_scheduler: DDPMScheduler,
    latents: torch.Tensor,
    first: torch.Tensor,
    states: torch.Tensor,
    embeddings: torch.Tensor,
    generator: torch.Generator,
    rng: np.random.Generator,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Min-SNR-weighted MSE (:func:`~vitron.tools.pretraining.diffusion_text_to_image.prediction_target`)
    of ``latents`` (B x 4 x T x h x w) noised at random
    timesteps, the UNet conditioned as the pipeline conditions it: ``first`` (B x 4 x h x w, the
    picture's latents), ``states`` (B x L x D text), ``embeddings`` (B x 1 x D CLIP image)."""
    noise = torch.randn(latents.shape, generator=generator)
    timesteps = torch.from_numpy(
        rng.integers(0, noise_scheduler.config.num_train_timesteps, len(latents))
    )
    noisy = noise_scheduler.add_noise(latents, noise, timesteps)
    predicted = unet(
        noisy, timesteps, encoder_hidden_states=states,
        fps=torch.full((len(latents),), FPS), image_latents=condition_latents(first, latents.shape[2]),
        image_embeddings=embeddings,
    ).sample  # fmt: skip
    return weighted_error(noise_scheduler, predicted, latents, noise, timesteps)


def evaluate_image_to_video(pipe: I2VGenXLPipeline, count: int, seed: int = 0, steps: int = 20,
                            guidance: float = 4.0, hold_first_frame: bool = True,
                            ) -> dict[str, float]:  # fmt: skip
    """See :meth:`ImageToVideoPretrainer.evaluate` (``test`` split, seed ``seed``; frame 0 held
    to the picture, as the nano profile animates, unless ``hold_first_frame`` is false)."""
    from vitron.evals.classifier import load_classifier
    from vitron.evals.scoring import judge_animation
    from vitron.evals.shapes.dataset import make_sample
    from vitron.tools.models.diffusion_common import Defaults, Prompt, fit_size
    from vitron.tools.models.diffusion_engines import ImageToVideoEngine

    judge = load_classifier()
    defaults = Defaults(hold_first_frame=hold_first_frame)
    engine = ImageToVideoEngine(pipe, kind="image_to_video", defaults=defaults)
    judged = []
    for index in range(count):
        sample = make_sample("test", index, seed=seed, tasks=["image_to_video"])
        picture = Image.fromarray(sample.media[0].pixels)
        width, height = fit_size(*picture.size, ANIMATION_SIZE)
        clip = engine.animate(
            Prompt(sample.calls[0].args["instruction"]), picture, frames=GENERATED_FRAMES,
            width=width, height=height, fps=FPS, seed=seed + index, steps=steps,
            guidance=guidance, progress=lambda _event: None,
        )  # fmt: skip
        judged.append(judge_animation(clip, sample.gold, judge))
    return {key: float(np.mean([j[key] for j in judged]))
            for key in ("psnr_first", "objects_kept", "direction")}  # fmt: skip


def make_pretrainer(seed: int, base: Path | None = None) -> ImageToVideoPretrainer:
    return ImageToVideoPretrainer(seed, base)
