"""Embedding-oriented decoder alignment: the frozen backend decoders as differentiable targets.

Stage 2 trains each signal head and its backend's signal projector against that backend's own
conditioning space, never against a proxy:

- ``[SEG]``: the projected tokens join SAM's sparse prompt exactly as
  :meth:`vitron.tools.models.sam.SamEngine.segment` appends them (after the box prompt of the
  invocation's first ``<Region>``, if any), SAM's frozen mask decoder predicts the mask, and the
  mask is upsampled to the image as the backend does; :class:`SamAlignment` returns those logits
  with gradients flowing back into the tokens;
- ``[TRK]``: the same through SAM 2's video model on the prompt frame (the first frame), with the
  tokens appended by the very hook ``track_video`` uses (:class:`Sam2Alignment`);
- ``[GEN]``/``[VID]``/``[EDIT]``: the projected tokens (appended to the text-encoder states at
  inference, :func:`~vitron.tools.models.diffusion_common.append_tokens`) are regressed onto the frozen
  text encoder's states of the target caption, :func:`caption_targets`.

Every frozen module here runs with ``requires_grad`` off; only the tokens carry gradients.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import torch
from PIL import Image

from vitron.tools.geometry import region_to_pixels


class SamAlignment:
    """Differentiable mask logits from a frozen segment-anything ``Sam`` and extra prompt tokens."""

    def __init__(self, sam: Any, cache_size: int = 64) -> None:
        from segment_anything import SamPredictor

        self.sam = sam.requires_grad_(False).eval()
        self._predictor = SamPredictor(self.sam)
        self._cache: dict[str, tuple[torch.Tensor, tuple[int, int], tuple[int, int]]] = {}
        self.cache_size = cache_size

    @property
    def prompt_dim(self) -> int:
        return int(self.sam.prompt_encoder.embed_dim)

    def _features(
        self, image: Image.Image
    ) -> tuple[torch.Tensor, tuple[int, int], tuple[int, int]]:
        """The frozen image embedding (as ``SamPredictor.set_image`` makes it), cached by the
        image's content: a data set often holds the same picture for several signals."""
        key = hashlib.sha1(image.tobytes() + repr(image.size).encode()).hexdigest()
        if key not in self._cache:
            if len(self._cache) >= self.cache_size:
                self._cache.clear()
            with torch.no_grad():
                self._predictor.set_image(np.asarray(image.convert("RGB")))
            p = self._predictor
            self._cache[key] = (p.features, p.original_size, p.input_size)
        return self._cache[key]

    def mask_logits(
        self,
        image: Image.Image,
        tokens: torch.Tensor,
        box: tuple[float, float, float, float] | None = None,
    ) -> torch.Tensor:
        """(C, H, W) mask logits at the image's size for ``tokens`` (k, prompt_dim) appended to
        the prompt; C = 1 with a ``box`` (normalised), 3 without (SAM's multimask output, as the
        backend asks for when only a signal prompts it)."""
        features, original, input_size = self._features(image)
        device = features.device
        box_prompt = None
        if box is not None:
            width, height = image.size
            pixels = np.asarray(region_to_pixels(list(box), width, height), dtype=np.float32)
            box_prompt = torch.as_tensor(
                self._predictor.transform.apply_boxes(pixels[None], original), device=device
            )
        sparse, dense = self.sam.prompt_encoder(points=None, boxes=box_prompt, masks=None)
        sparse = torch.cat([sparse, tokens.reshape(1, -1, sparse.shape[-1]).to(sparse)], dim=1)
        low_res, _ = self.sam.mask_decoder(
            image_embeddings=features,
            image_pe=self.sam.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=box is None,
        )
        return self.sam.postprocess_masks(low_res, input_size, original)[0]


def caption_targets(
    tokenizer: Any, text_encoder: torch.nn.Module, caption: str, tokens: int
) -> torch.Tensor:
    """(tokens, D) regression target for one caption: the frozen text encoder's states (the same
    :func:`~vitron.tools.models.diffusion_common.encode_text` the pipelines use) over the caption's real
    tokens, split into ``tokens`` consecutive chunks and averaged per chunk — so each extra
    token the projector makes summarises one part of the caption."""
    from vitron.tools.models.diffusion_common import encode_text

    device = next(text_encoder.parameters()).device
    with torch.no_grad():
        states = encode_text(tokenizer, text_encoder, [caption], device)[0].float()  # (L, D)
    length = len(
        tokenizer(caption, truncation=True, max_length=tokenizer.model_max_length)["input_ids"]
    )
    chunks = torch.tensor_split(torch.arange(min(length, states.shape[0])), tokens)
    return torch.stack(
        [states[c].mean(0) if len(c) else states[: max(1, length)].mean(0) for c in chunks]
    )


class Sam2Alignment:
    """Differentiable prompt-frame mask logits from a frozen SAM 2 video engine
    (:class:`vitron.tools.models.sam2_video.Sam2VideoEngine`) and extra prompt tokens.

    transformers runs ``Sam2VideoModel.forward`` under ``torch.inference_mode``; training calls
    the undecorated function (same computation, gradients kept) on a fresh one-frame session,
    with the box prompt ``track_video`` would give and the tokens appended by the engine's hook.
    """

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        engine.model.requires_grad_(False).eval()
        forward = type(engine.model).forward
        while hasattr(forward, "__wrapped__"):
            forward = forward.__wrapped__
        self._forward = forward

    @property
    def prompt_dim(self) -> int:
        return int(self.engine.prompt_dim)

    def mask_logits(
        self,
        image: Image.Image,
        tokens: torch.Tensor,
        box: tuple[float, float, float, float] | None = None,
    ) -> torch.Tensor:
        """(1, H, W) logits of the target on ``image`` (the prompt frame); without a ``box``
        the whole frame is the box prompt."""
        import torch.nn.functional as F

        from vitron.tools.models.sam2_video import VideoPrompt, _extra_tokens

        engine, model = self.engine, self.engine.model
        frame = np.asarray(image.convert("RGB"))
        height, width = frame.shape[:2]
        pixels = region_to_pixels(list(box or (0.0, 0.0, 1.0, 1.0)), width, height)
        session = engine.processor.init_video_session(
            inference_device=engine._device, dtype=engine._dtype
        )
        engine._add_prompt(session, 0, VideoPrompt(box=list(map(float, pixels))), (height, width))
        inputs = engine.processor(images=frame, return_tensors="pt")["pixel_values"][0]
        with _extra_tokens(tokens.reshape(-1, self.prompt_dim)):
            output = self._forward(model, inference_session=session, frame_idx=0, frame=inputs)
        low = output.pred_masks.reshape(-1, *output.pred_masks.shape[-2:])[:1]
        return F.interpolate(low[None].float(), size=(height, width), mode="bilinear")[0]


def can_denoise(pipe: Any) -> bool:
    """Whether ``pipe`` is a plain latent text-to-image pipeline (UNet input = VAE latents), the
    case :func:`denoising_pair` handles; inpainting and video UNets take other inputs."""
    unet, vae = getattr(pipe, "unet", None), getattr(pipe, "vae", None)
    if unet is None or vae is None or getattr(pipe, "scheduler", None) is None:
        return False
    image_unet = type(unet).__name__ == "UNet2DConditionModel"
    return image_unet and int(unet.config.in_channels) == int(vae.config.latent_channels)


def denoising_pair(
    pipe: Any, image: Image.Image, caption: str, tokens: torch.Tensor, size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(prediction, target) of one denoising step of the frozen UNet on the wanted ``image``.

    The image is resized to ``size``, encoded by the frozen VAE, noised at a random timestep
    (torch's global generator: reproducible and restored on resume), and denoised with the
    caption's text-encoder states plus the signal's ``tokens`` (k, D) appended, as the pipelines
    append them at inference; the target is the noise (or the velocity for v-prediction).
    """
    from diffusers import DDPMScheduler

    from vitron.tools.models.diffusion_common import encode_text

    unet, vae = pipe.unet, pipe.vae
    # the training-time view of the pipeline's sampler (its schedule and objective): samplers
    # such as DPM-Solver++ have no ``get_velocity``
    scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    device, dtype = unet.device, unet.dtype
    pixels = np.asarray(image.convert("RGB").resize((size, size)), dtype=np.float32) / 127.5 - 1
    with torch.no_grad():
        batch = torch.from_numpy(pixels).permute(2, 0, 1)[None].to(device, vae.dtype)
        latents = vae.encode(batch).latent_dist.mean * vae.config.scaling_factor
        states = encode_text(pipe.tokenizer, pipe.text_encoder, [caption], device)
    noise = torch.randn(latents.shape).to(latents)
    steps = int(scheduler.config.num_train_timesteps)
    timestep = torch.randint(0, steps, (1,)).to(device)
    noisy = scheduler.add_noise(latents, noise, timestep)
    condition = torch.cat([states.to(dtype), tokens[None].to(dtype)], dim=1)
    prediction = unet(noisy.to(dtype), timestep, encoder_hidden_states=condition).sample
    if scheduler.config.prediction_type == "v_prediction":
        target = scheduler.get_velocity(latents, noise, timestep)
    else:
        target = noise
    return prediction, target
