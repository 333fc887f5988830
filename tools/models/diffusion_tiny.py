"""Tiny random-weight diffusion components: every pipeline of the design, built offline in seconds.

Each builder returns the keyword arguments of one diffusers pipeline class, with parts small enough
that a 2-core CPU runs a few denoising steps at 32–64 px in well under a second. Shapes follow the
real checkpoints (4-channel latents; 9 UNet input channels for inpainting, 8 for InstructPix2Pix;
gated attention plus a position net for GLIGEN; a 3-D UNet for video), so the code paths exercised
by tests are the ones the real models take. The outputs are noise: meaningful only as shapes.

The VAE downsamples by 2 (two blocks), so pixel sizes must be multiples of 8 like the real models'.
Weights depend only on ``seed``; building never touches the network or the disk.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    I2VGenXLUNet,
    UNet2DConditionModel,
    UNet3DConditionModel,
)
from tokenizers import pre_tokenizers
from transformers import (
    CLIPImageProcessor,
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTokenizer,
    CLIPVisionConfig,
    CLIPVisionModelWithProjection,
)

TEXT_WIDTH = 32
"""Width of the tiny text encoder's states: the out_dim of the tiny ``diffusion_signal`` projector."""
NATIVE_SIZE = 64
"""Pixel size the tiny VAE reports as its ``sample_size`` (GLIGEN inpainting works at it)."""
MAX_TOKENS = 77
"""CLIP's context; the tokenizer needs it explicitly or pipelines overflow when padding."""


def tiny_clip_tokenizer() -> CLIPTokenizer:
    """A byte-level CLIP BPE tokenizer with no merges: one token per byte, any text encodes.

    The vocabulary is every byte symbol, once inside a word and once word-final (``</w>``), plus the
    start and end tokens; it is written here, in memory, so nothing is downloaded.
    """
    symbols = pre_tokenizers.ByteLevel.alphabet()
    symbols.sort()
    vocab: dict[str, int] = {}
    for symbol in [*symbols, *(s + "</w>" for s in symbols), "<|startoftext|>", "<|endoftext|>"]:
        vocab[symbol] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=MAX_TOKENS)


def tiny_text_encoder(tokenizer: CLIPTokenizer) -> CLIPTextModel:
    """A 2-layer CLIP text encoder of width :data:`TEXT_WIDTH`; pools at the end token like CLIP."""
    config = CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=TEXT_WIDTH, intermediate_size=37,
        num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=MAX_TOKENS,
        projection_dim=TEXT_WIDTH, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    return CLIPTextModel(config)


def tiny_vae() -> AutoencoderKL:
    """A two-block KL autoencoder: 3 x H x W pixels ↔ 4 x H/2 x W/2 latents."""
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16, 32),
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        layers_per_block=1, norm_num_groups=8, sample_size=NATIVE_SIZE,
    )  # fmt: skip


def tiny_unet(in_channels: int = 4, attention_type: str = "default") -> UNet2DConditionModel:
    """A two-level conditional UNet, cross-attending to :data:`TEXT_WIDTH`-wide states.

    ``in_channels`` is 9 for inpainting (latents + masked-image latents + mask), 8 for
    InstructPix2Pix (latents + image latents); ``attention_type="gated"`` adds GLIGEN's gated
    self-attention and its box/phrase position net. GLIGEN initialises its gates closed (an
    untrained GLIGEN ignores boxes); here they are opened so boxes steer even random weights.
    """
    unet = UNet2DConditionModel(
        sample_size=NATIVE_SIZE // 2, in_channels=in_channels, out_channels=4,
        block_out_channels=(16, 32), layers_per_block=1, norm_num_groups=8,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=TEXT_WIDTH, attention_head_dim=8, attention_type=attention_type,
    )  # fmt: skip
    with torch.no_grad():
        for name, parameter in unet.named_parameters():
            if name.endswith(("alpha_attn", "alpha_dense")):
                parameter.fill_(1.0)
    return unet


def tiny_unet3d() -> UNet3DConditionModel:
    """A two-level space-time UNet for text-to-video (and video-to-video): B x 4 x T x h x w."""
    return UNet3DConditionModel(
        sample_size=NATIVE_SIZE // 2, in_channels=4, out_channels=4,
        block_out_channels=(16, 32), layers_per_block=1, norm_num_groups=8,
        down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"),
        up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"),
        cross_attention_dim=TEXT_WIDTH, attention_head_dim=8,
    )  # fmt: skip


def tiny_i2vgen_unet() -> I2VGenXLUNet:
    """I2VGen-XL's UNet at two levels: conditioned on text, the first frame's latents and its
    CLIP image embedding (which must share the text width)."""
    return I2VGenXLUNet(
        sample_size=NATIVE_SIZE // 2, in_channels=4, out_channels=4,
        block_out_channels=(16, 32), layers_per_block=1, norm_num_groups=8,
        down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"),
        up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"),
        cross_attention_dim=TEXT_WIDTH, attention_head_dim=8,
    )  # fmt: skip


def tiny_image_encoder() -> tuple[CLIPVisionModelWithProjection, CLIPImageProcessor]:
    """A 32 px CLIP vision tower whose projection matches the text width, and its processor."""
    config = CLIPVisionConfig(
        hidden_size=TEXT_WIDTH, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
        image_size=32, patch_size=8, projection_dim=TEXT_WIDTH,
    )  # fmt: skip
    processor = CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    )
    return CLIPVisionModelWithProjection(config), processor


def tiny_scheduler() -> DDIMScheduler:
    """Stable Diffusion's DDIM settings (deterministic with ``eta = 0``)."""
    return DDIMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
        clip_sample=False, set_alpha_to_one=False, steps_offset=1,
    )  # fmt: skip


def _text_parts() -> dict[str, Any]:
    tokenizer = tiny_clip_tokenizer()
    return {"tokenizer": tokenizer, "text_encoder": tiny_text_encoder(tokenizer)}


def _image_pipeline(in_channels: int = 4, attention_type: str = "default") -> dict[str, Any]:
    return {
        **_text_parts(),
        "vae": tiny_vae(),
        "unet": tiny_unet(in_channels, attention_type),
        "scheduler": tiny_scheduler(),
        "safety_checker": None,
        "feature_extractor": None,
        "requires_safety_checker": False,
    }


def _video_pipeline() -> dict[str, Any]:
    return {
        **_text_parts(),
        "vae": tiny_vae(),
        "unet": tiny_unet3d(),
        "scheduler": tiny_scheduler(),
    }


def _i2v_pipeline() -> dict[str, Any]:
    image_encoder, feature_extractor = tiny_image_encoder()
    return {
        **_text_parts(),
        "vae": tiny_vae(),
        "unet": tiny_i2vgen_unet(),
        "scheduler": tiny_scheduler(),
        "image_encoder": image_encoder,
        "feature_extractor": feature_extractor,
    }


TINY_BUILDERS: dict[str, Callable[[], dict[str, Any]]] = {
    "text_to_image": _image_pipeline,
    "gligen": lambda: _image_pipeline(attention_type="gated"),
    "collage": _image_pipeline,
    "gligen_inpaint": lambda: _image_pipeline(in_channels=9, attention_type="gated"),
    "inpaint": lambda: _image_pipeline(in_channels=9),
    "instruct_pix2pix": lambda: _image_pipeline(in_channels=8),
    "text_to_video": _video_pipeline,
    "video_to_video": _video_pipeline,
    "image_to_video": _i2v_pipeline,
}
"""Pipeline kind (as in :data:`vitron.tools.models.diffusion_engines.PIPELINES`) → its tiny components."""


def tiny_components(kind: str, seed: int = 0) -> dict[str, Any]:
    """The constructor arguments of the ``kind`` pipeline with random weights fixed by ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return TINY_BUILDERS[kind]()
