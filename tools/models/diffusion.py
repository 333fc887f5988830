"""diffusers pipelines as profile components: one loader, one engine per task.

A profile entry ``loader = "diffusion"`` with ``pipeline = "<kind>"`` (a key of :data:`PIPELINES`)
builds the pipeline from ``checkpoint`` (a hub id or local directory, via ``from_pretrained``; fp16
on a GPU by default) or, for ``checkpoint = "tiny"``, from the random-weight parts of
:mod:`vitron.tools.models.diffusion_tiny`. Other keys of the entry are the backends' defaults
(``width``, ``height``, ``steps``, ``guidance``, ``frames``, ``fps``, ``strength``,
``image_guidance``) and loading options (``offload = true`` for model CPU offload on CUDA,
``variant``, ``revision``, ``safety_checker = false``, ``signal_projector`` naming the component
that turns a planner's signal into extra text-encoder tokens for this pipeline).

Every engine run is seeded (a CPU generator plus a forked, seeded global RNG, so the parts of
diffusers that draw from the global RNG — GLIGEN inpainting, VAE sampling — repeat too), reports
``{"event": "step", "step": k, "total": n}`` after each denoising step, and conditions the UNet on
text-encoder states computed here (:func:`encode_text`), to which a signal's tokens may be appended
(:func:`append_tokens`). Images come back as H x W x 3 uint8 arrays, videos as T x H x W x 3.
diffusers itself is imported only when a pipeline is loaded.
"""

from __future__ import annotations

import inspect
import itertools
import logging
import math
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from PIL import Image

from vitron.tools.checkpoints import load_pretrained
from vitron.tools.errors import VitronToolError
from vitron.tools.profiles import ComponentSpec
from vitron.tools.registry import LoadContext, ProgressCallback, component_loader

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline

logger = logging.getLogger(__name__)

SIZE_MULTIPLE = 8
"""Pixel sizes are snapped to this: the real VAEs downsample by 8 (the tiny one by 2)."""


@dataclass(frozen=True)
class Defaults:
    """Backend defaults a profile entry may set: small for ``tiny``, the model's native for real."""

    width: int = 512
    height: int = 512
    steps: int = 30
    guidance: float = 7.5
    frames: int = 16
    fps: float = 8.0
    strength: float = 0.6
    """How much of the input video-to-video re-noises (1 = ignore the input)."""
    image_guidance: float = 1.5
    """InstructPix2Pix's pull towards the input image."""

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> Defaults:
        values = {}
        for item in fields(cls):
            if item.name in options:
                values[item.name] = (int if item.type == "int" else float)(options[item.name])
        return cls(**values)

    @property
    def long_side(self) -> int:
        """The working resolution of editing engines: inputs are scaled so their long side is this."""
        return max(self.width, self.height)


@dataclass(frozen=True)
class Prompt:
    """What conditions a run: the text, a negative text, and optional extra conditioning tokens.

    ``extra_tokens`` is ``k x D`` (``D`` = the text encoder's width), appended after the text's
    states; ``None`` leaves the text-only conditioning untouched.
    """

    text: str
    negative: str = ""
    extra_tokens: torch.Tensor | None = None


@dataclass(frozen=True)
class ImageResult:
    pixels: np.ndarray
    """H x W x 3 uint8."""
    flagged: bool = False
    """True when the pipeline's safety checker blanked the image."""


# --------------------------------------------------------------------------- shared pieces


def encode_text(
    tokenizer: Any,
    text_encoder: torch.nn.Module,
    texts: list[str],
    device: torch.device,
    clip_skip: int | None = None,
) -> torch.Tensor:
    """CLIP text-encoder states ``B x L x D`` for ``texts``, padded to the tokenizer's context.

    The same computation as diffusers' ``encode_prompt`` (last hidden state, or the state
    ``clip_skip`` layers earlier passed through the final layer norm), written once here so every
    pipeline gets its conditioning the same way and signal tokens can be appended to it.
    """
    return torch.cat([_encode_one(tokenizer, text_encoder, t, device, clip_skip) for t in texts])


def _encode_one(
    tokenizer: Any,
    text_encoder: torch.nn.Module,
    text: str,
    device: torch.device,
    clip_skip: int | None,
) -> torch.Tensor:
    """``1 x L x D``; one text per call, as diffusers does, so the states match its bit for bit."""
    tokens = tokenizer(
        [text],
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    )
    ids = tokens.input_ids.to(device)
    use_mask = getattr(text_encoder.config, "use_attention_mask", False)
    mask = tokens.attention_mask.to(device) if use_mask else None
    if clip_skip is None:
        states = text_encoder(ids, attention_mask=mask)[0]
    else:
        hidden = text_encoder(ids, attention_mask=mask, output_hidden_states=True).hidden_states
        # transformers 5 keeps the final norm on the model itself; older versions on `text_model`
        norm = getattr(text_encoder, "text_model", text_encoder).final_layer_norm
        states = norm(hidden[-(clip_skip + 1)])
    return states.to(dtype=text_encoder.dtype)


def append_tokens(
    cond: torch.Tensor, uncond: torch.Tensor, extra: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Append ``k x D`` tokens to the ``1 x L x D`` conditional states.

    The unconditional states grow by ``k`` copies of their own last (padding) state, so both
    branches of classifier-free guidance keep one length while the unconditional one still says
    nothing.
    """
    extra = extra.to(device=cond.device, dtype=cond.dtype)[None].expand(cond.shape[0], -1, -1)
    padding = uncond[:, -1:].expand(-1, extra.shape[1], -1)
    return torch.cat([cond, extra], dim=1), torch.cat([uncond, padding], dim=1)


@contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[torch.Generator]:
    """A CPU generator seeded with ``seed``, with the global RNGs forked and seeded too.

    The generator makes the initial noise independent of the device; seeding the global RNG
    covers the diffusers code that draws without a generator. The caller's RNG state is restored.
    """
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield torch.Generator("cpu").manual_seed(seed)


@contextmanager
def step_events(
    pipe: DiffusionPipeline, total: int, progress: ProgressCallback, kind: str
) -> Iterator[dict[str, Any]]:
    """Keyword arguments that make ``pipe`` report each finished denoising step to ``progress``.

    Pipelines with ``callback_on_step_end`` use it; older ones take ``callback``; I2VGen-XL has
    neither, so its UNet calls are counted (one per step: guidance runs batched).
    """

    def report(index: int) -> None:
        progress({"event": "step", "step": min(index + 1, total), "total": total, "pipeline": kind})

    params = inspect.signature(pipe.__call__).parameters
    if "callback_on_step_end" in params:

        def on_step_end(_pipe: Any, index: int, _t: Any, _tensors: dict[str, Any]) -> dict:
            report(index)
            return {}

        yield {"callback_on_step_end": on_step_end}
    elif "callback" in params:
        yield {"callback": lambda index, _t, _latents: report(index), "callback_steps": 1}
    else:
        counter = itertools.count()
        hook = pipe.unet.register_forward_hook(lambda *_: report(next(counter)))
        try:
            yield {}
        finally:
            hook.remove()


def to_uint8(array: np.ndarray) -> np.ndarray:
    """Pipeline ``np`` output (floats in [0, 1]) as uint8, channels last."""
    return (np.clip(array, 0.0, 1.0) * 255.0).round().astype(np.uint8)


def fit_size(
    width: int, height: int, long_side: int, multiple: int = SIZE_MULTIPLE
) -> tuple[int, int]:
    """``(w, h)`` with the aspect of ``width x height``, the long side ``long_side``, both snapped
    to ``multiple`` (at least one multiple)."""
    scale = long_side / max(width, height)
    return snap(width * scale, multiple), snap(height * scale, multiple)


def snap(value: float, multiple: int = SIZE_MULTIPLE) -> int:
    """The nearest positive multiple of ``multiple``."""
    return max(multiple, int(round(value / multiple)) * multiple)


def effective_steps(steps: int, strength: float) -> tuple[int, int]:
    """``(steps to ask for, steps that run)`` when only ``strength`` of the schedule runs.

    diffusers runs ``int(steps * strength)`` steps; at least one must run, so ``steps`` grows.
    """
    steps = max(steps, math.ceil(1.0 / strength))
    return steps, min(int(steps * strength), steps)


# --------------------------------------------------------------------------- engines


class DiffusionEngine:
    """A loaded pipeline plus seeding, step progress, conditioning and a lock (pipelines keep
    scheduler state, so one run at a time)."""

    pipeline_class: ClassVar[str]
    """The diffusers class name this engine drives."""
    clip_skip: ClassVar[int | None] = None

    def __init__(
        self,
        pipe: DiffusionPipeline,
        *,
        kind: str,
        defaults: Defaults | None = None,
        signal_projector: str = "diffusion_signal",
    ) -> None:
        pipe.set_progress_bar_config(disable=True)  # progress goes to events instead
        self.pipe = pipe
        self.kind = kind
        self.defaults = defaults or Defaults()
        self.signal_projector = signal_projector
        """The profile component that projects a signal embedding to this pipeline's tokens."""
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        """Bytes of every torch component's parameters and buffers (what the budget counts)."""
        total = 0
        for part in self.pipe.components.values():
            if isinstance(part, torch.nn.Module):
                tensors = [*part.parameters(), *part.buffers()]
                total += sum(t.numel() * t.element_size() for t in tensors)
        return total

    @property
    def device(self) -> torch.device:
        """Where inputs go (the GPU under CPU offload)."""
        return self.pipe._execution_device

    @property
    def text_width(self) -> int:
        """``D``, the width of a text-encoder state (and of a signal token)."""
        return int(self.pipe.text_encoder.config.hidden_size)

    def encode(self, prompt: Prompt) -> tuple[torch.Tensor, torch.Tensor]:
        """Conditional and unconditional states, ``1 x (L + k) x D`` each."""
        states = encode_text(
            self.pipe.tokenizer,
            self.pipe.text_encoder,
            [prompt.text, prompt.negative],
            self.device,
            self.clip_skip,
        )
        cond, uncond = states[:1], states[1:]
        if prompt.extra_tokens is not None:
            cond, uncond = append_tokens(cond, uncond, prompt.extra_tokens)
        return cond, uncond

    def run(
        self,
        prompt: Prompt,
        *,
        seed: int,
        steps: int,
        progress: ProgressCallback,
        total: int | None = None,
        **kwargs: Any,
    ) -> Any:
        """Call the pipeline with this engine's conditioning, seed and step events; ``kwargs`` go
        to the pipeline. Returns its output object (``output_type="np"``)."""
        extra = 0 if prompt.extra_tokens is None else len(prompt.extra_tokens)
        logger.debug("%s: seed %d, %d steps, %d signal tokens", self.kind, seed, steps, extra)
        with self._lock, seeded(seed, self.device) as generator, torch.inference_mode():
            cond, uncond = self.encode(prompt)
            with step_events(self.pipe, total or steps, progress, self.kind) as callbacks:
                return self.pipe(
                    prompt_embeds=cond,
                    negative_prompt_embeds=uncond,
                    num_inference_steps=steps,
                    generator=generator,
                    output_type="np",
                    **callbacks,
                    **kwargs,
                )

    def _image_result(self, output: Any) -> ImageResult:
        flagged = getattr(output, "nsfw_content_detected", None)
        return ImageResult(to_uint8(output.images[0]), bool(flagged and flagged[0]))


class TextToImageEngine(DiffusionEngine):
    """Stable Diffusion 1.x text-to-image."""

    pipeline_class = "StableDiffusionPipeline"

    def generate(
        self,
        prompt: Prompt,
        *,
        width: int,
        height: int,
        seed: int,
        steps: int,
        guidance: float,
        progress: ProgressCallback,
    ) -> ImageResult:
        """An image of ``height x width`` pixels (multiples of 8)."""
        output = self.run(
            prompt, seed=seed, steps=steps, progress=progress,
            width=width, height=height, guidance_scale=guidance,
        )  # fmt: skip
        return self._image_result(output)


class GligenEngine(DiffusionEngine):
    """GLIGEN box-grounded generation: each phrase is drawn inside its box."""

    pipeline_class = "StableDiffusionGLIGENPipeline"

    def generate(
        self,
        prompt: Prompt,
        phrases: list[str],
        boxes: list[list[float]],
        *,
        width: int,
        height: int,
        seed: int,
        steps: int,
        guidance: float,
        progress: ProgressCallback,
        grounding: float = 0.3,
    ) -> ImageResult:
        """``boxes`` are normalised ``[x1, y1, x2, y2]`` (top-left origin), one per phrase;
        ``grounding`` is the fraction of steps that use them (GLIGEN's scheduled sampling; at
        least the first step does when it is positive)."""
        if grounding > 0:
            grounding = max(grounding, 1.0 / steps)
        output = self.run(
            prompt, seed=seed, steps=steps, progress=progress, width=width, height=height,
            guidance_scale=guidance, gligen_phrases=phrases, gligen_boxes=boxes,
            gligen_scheduled_sampling_beta=grounding,
        )  # fmt: skip
        return self._image_result(output)


class GligenInpaintEngine(DiffusionEngine):
    """GLIGEN inpainting: phrases are painted into their boxes of an existing image."""

    pipeline_class = "StableDiffusionGLIGENPipeline"

    @property
    def native_size(self) -> int:
        """The square size the pipeline works at (it centre-crops anything else to it)."""
        return int(self.pipe.vae.config.sample_size)

    def add(
        self,
        prompt: Prompt,
        image: Image.Image,
        phrases: list[str],
        boxes: list[list[float]],
        *,
        seed: int,
        steps: int,
        guidance: float,
        progress: ProgressCallback,
    ) -> np.ndarray:
        """``image`` with each phrase painted into its normalised box; returned at the input's size.

        The image is resized (not cropped) to the native square, which keeps normalised boxes
        where they were, and the result is resized back.
        """
        size = self.native_size
        square = image.convert("RGB").resize((size, size), Image.BICUBIC)
        with warnings.catch_warnings():  # diffusers' own GLIGEN code reads a deprecated attribute
            warnings.filterwarnings("ignore", message=".*sample_size.*", category=FutureWarning)
            output = self.run(
                prompt, seed=seed, steps=steps, progress=progress, width=size, height=size,
                guidance_scale=guidance, gligen_phrases=phrases, gligen_boxes=boxes,
                gligen_inpaint_image=square,
            )  # fmt: skip
        return resize_array(to_uint8(output.images[0]), image.size)


class InpaintEngine(DiffusionEngine):
    """Stable Diffusion inpainting; also the per-frame engine of video editing.

    For temporal consistency call :meth:`inpaint` on every frame with the same ``seed``: frames of
    one size then start from identical noise (``initial_noise`` shows it), so unchanged content
    stays put from frame to frame.
    """

    pipeline_class = "StableDiffusionInpaintPipeline"

    def working_size(
        self, width: int, height: int, long_side: int | None = None
    ) -> tuple[int, int]:
        """The size an input of ``width x height`` is inpainted at (aspect kept, multiples of 8)."""
        return fit_size(width, height, long_side or self.defaults.long_side)

    def initial_noise(
        self, width: int, height: int, seed: int, long_side: int | None = None
    ) -> torch.Tensor:
        """The ``1 x 4 x h x w`` latent noise :meth:`inpaint` starts from for this input size and
        seed at strength 1 (pass it back as ``noise`` to share it explicitly)."""
        w, h = self.working_size(width, height, long_side)
        factor = self.pipe.vae_scale_factor
        generator = torch.Generator("cpu").manual_seed(seed)
        return torch.randn((1, 4, h // factor, w // factor), generator=generator)

    def inpaint(
        self,
        prompt: Prompt,
        image: Image.Image,
        mask: np.ndarray,
        *,
        seed: int,
        steps: int,
        guidance: float,
        progress: ProgressCallback,
        strength: float = 1.0,
        long_side: int | None = None,
        noise: torch.Tensor | None = None,
    ) -> np.ndarray:
        """Repaint where the H x W bool ``mask`` is true; returns H x W x 3 uint8 at the input size.

        Pixels outside the mask are *not* guaranteed unchanged (the VAE round trip and the resize
        touch them); composite with :func:`vitron.tools.compositing.composite` for that.
        ``strength < 1`` keeps some of the masked content (e.g. recolouring keeps shapes);
        ``noise`` (only at strength 1) replaces the seed's initial noise.
        """
        if noise is not None and strength < 1.0:
            raise ValueError("explicit noise only applies at strength 1; share the seed instead")
        width, height = self.working_size(*image.size, long_side)
        small = image.convert("RGB").resize((width, height), Image.BICUBIC)
        mask_image = Image.fromarray(mask.astype(np.uint8) * 255).resize((width, height))
        steps, total = effective_steps(steps, strength)
        extra = {"latents": noise} if noise is not None else {}
        output = self.run(
            prompt, seed=seed, steps=steps, progress=progress, total=total, image=small,
            mask_image=mask_image, width=width, height=height, strength=strength,
            guidance_scale=guidance, **extra,
        )  # fmt: skip
        return resize_array(to_uint8(output.images[0]), image.size)


class InstructPix2PixEngine(DiffusionEngine):
    """InstructPix2Pix: edits a whole image by an instruction ("make it look like winter")."""

    pipeline_class = "StableDiffusionInstructPix2PixPipeline"

    def edit(
        self,
        prompt: Prompt,
        image: Image.Image,
        *,
        seed: int,
        steps: int,
        guidance: float,
        image_guidance: float,
        progress: ProgressCallback,
        long_side: int | None = None,
    ) -> np.ndarray:
        """The edited image, H x W x 3 uint8 at the input's size (run at the working size)."""
        width, height = fit_size(*image.size, long_side or self.defaults.long_side)
        small = image.convert("RGB").resize((width, height), Image.BICUBIC)
        output = self.run(
            prompt, seed=seed, steps=steps, progress=progress, image=small,
            guidance_scale=guidance, image_guidance_scale=image_guidance,
        )  # fmt: skip
        return resize_array(to_uint8(output.images[0]), image.size)


class TextToVideoEngine(DiffusionEngine):
    """Text-to-video with a ModelScope/ZeroScope 3-D UNet."""

    pipeline_class = "TextToVideoSDPipeline"

    def generate(
        self,
        prompt: Prompt,
        *,
        frames: int,
        width: int,
        height: int,
        seed: int,
        steps: int,
        guidance: float,
        progress: ProgressCallback,
    ) -> np.ndarray:
        """``frames x height x width x 3`` uint8."""
        output = self.run(
            prompt, seed=seed, steps=steps, progress=progress, num_frames=frames,
            width=width, height=height, guidance_scale=guidance,
        )  # fmt: skip
        return to_uint8(np.asarray(output.frames[0]))


class VideoToVideoEngine(DiffusionEngine):
    """Video-to-video (SDEdit over a 3-D UNet): restyles a whole clip coherently."""

    pipeline_class = "VideoToVideoSDPipeline"

    def transform(
        self,
        prompt: Prompt,
        frames: np.ndarray,
        *,
        seed: int,
        steps: int,
        guidance: float,
        progress: ProgressCallback,
        strength: float | None = None,
        long_side: int | None = None,
    ) -> np.ndarray:
        """``T x H x W x 3`` uint8 in, the same shape out (run at the working size).

        ``strength`` (default from the profile) is how much is re-noised: low keeps the input's
        layout and motion, 1 ignores it. Long clips cost memory linearly; chunk them.
        """
        strength = self.defaults.strength if strength is None else strength
        height, width = frames.shape[1:3]
        size = fit_size(width, height, long_side or self.defaults.long_side)
        video = [Image.fromarray(frame).resize(size, Image.BICUBIC) for frame in frames]
        steps, total = effective_steps(steps, strength)
        output = self.run(
            prompt, seed=seed, steps=steps, progress=progress, total=total, video=video,
            strength=strength, guidance_scale=guidance,
        )  # fmt: skip
        out = to_uint8(np.asarray(output.frames[0]))
        return np.stack([resize_array(frame, (width, height)) for frame in out])


class ImageToVideoEngine(DiffusionEngine):
    """I2VGen-XL: animates an image, guided by text."""

    pipeline_class = "I2VGenXLPipeline"
    clip_skip = 1  # the pipeline's own default: I2VGen-XL conditions on the penultimate layer

    def animate(
        self,
        prompt: Prompt,
        image: Image.Image,
        *,
        frames: int,
        width: int,
        height: int,
        fps: float,
        seed: int,
        steps: int,
        guidance: float,
        progress: ProgressCallback,
    ) -> np.ndarray:
        """``frames x height x width x 3`` uint8; the image is centre-cropped to the aspect of
        ``width x height`` and becomes the first frame's condition. ``fps`` conditions motion."""
        output = self.run(
            prompt, seed=seed, steps=steps, progress=progress, image=image.convert("RGB"),
            num_frames=frames, width=width, height=height, target_fps=max(1, round(fps)),
            guidance_scale=guidance,
        )  # fmt: skip
        return to_uint8(np.asarray(output.frames[0]))


def resize_array(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """H x W x 3 uint8 resized to ``size = (width, height)`` (no-op when it already is)."""
    if (array.shape[1], array.shape[0]) == tuple(size):
        return array
    return np.asarray(Image.fromarray(array).resize(size, Image.BICUBIC))


PIPELINES: dict[str, type[DiffusionEngine]] = {
    "text_to_image": TextToImageEngine,
    "gligen": GligenEngine,
    "gligen_inpaint": GligenInpaintEngine,
    "inpaint": InpaintEngine,
    "instruct_pix2pix": InstructPix2PixEngine,
    "text_to_video": TextToVideoEngine,
    "video_to_video": VideoToVideoEngine,
    "image_to_video": ImageToVideoEngine,
}
"""The ``pipeline = "…"`` values a profile entry may name, and the engine each builds."""


# --------------------------------------------------------------------------- loading


@component_loader("diffusion")
def load_diffusion(spec: ComponentSpec, context: LoadContext) -> DiffusionEngine:
    """Build the engine a profile entry names: tiny random parts or ``from_pretrained``."""
    import diffusers

    kind = str(spec.options.get("pipeline", ""))
    if kind not in PIPELINES:
        raise VitronToolError(
            f"profile {spec.profile!r}: component {spec.name!r} needs `pipeline` set to one of "
            f"{', '.join(PIPELINES)} (got {kind or 'nothing'!r})"
        )
    try:
        defaults = Defaults.from_options(spec.options)
    except (TypeError, ValueError) as exc:
        raise VitronToolError(
            f"profile {spec.profile!r}: component {spec.name!r} has a default that is not a "
            f"number ({exc})"
        ) from exc
    engine_class = PIPELINES[kind]
    pipeline_class: Callable[..., DiffusionPipeline] = getattr(
        diffusers, engine_class.pipeline_class
    )
    if spec.is_tiny:
        from vitron.tools.models.diffusion_tiny import tiny_components

        pipe = pipeline_class(**tiny_components(kind, int(spec.options.get("seed", 0))))
        if context.dtype != torch.float32:  # the parts are built in float32
            pipe = pipe.to(dtype=context.dtype)
    else:
        kwargs: dict[str, Any] = {"torch_dtype": context.dtype}
        for key in ("variant", "revision"):
            if key in spec.options:
                kwargs[key] = spec.options[key]
        if spec.options.get("safety_checker") is False:
            kwargs.update(safety_checker=None, requires_safety_checker=False)
        with warnings.catch_warnings():  # newer diffusers call it `dtype`; older only know this
            warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
            pipe = load_pretrained(
                spec, lambda path: pipeline_class.from_pretrained(path, **kwargs)
            )
    if spec.options.get("offload") and context.device.type == "cuda":
        pipe.enable_model_cpu_offload(device=context.device)
    else:
        pipe = pipe.to(context.device)
    return engine_class(
        pipe,
        kind=kind,
        defaults=defaults,
        signal_projector=str(spec.options.get("signal_projector", "diffusion_signal")),
    )
