"""What every diffusers engine shares: defaults, prompts and text-encoder states (with a signal's
tokens appended), seeding, step events, sizes, and the :class:`DiffusionEngine` base.

Every engine run is seeded (a CPU generator plus a forked, seeded global RNG, so the parts of
diffusers that draw from the global RNG — GLIGEN inpainting, VAE sampling — repeat too), reports
``{"event": "step", "step": k, "total": n}`` after each denoising step, and conditions the UNet on
text-encoder states computed here (:func:`encode_text`), to which a signal's tokens may be appended
(:func:`append_tokens`). Images come back as H x W x 3 uint8 arrays, videos as T x H x W x 3.
"""

from __future__ import annotations

import inspect
import itertools
import logging
import math
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from PIL import Image

from vitron.tools.registry import ProgressCallback

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
    layout_from_words: bool = False
    """``generate_image`` (text-to-image entry): a description that puts its one object at a named
    place ('a red circle on the left on a white background') is drawn by the ``gligen``
    component inside the box those words name (:func:`vitron.tools.placement.placed_object`),
    for a text-to-image model that does not place objects by words (nano's)."""
    draws_added_objects: bool = False
    """``edit_image`` (inpainting entry): an add, and a move's redraw, paints the new object into
    its box (grown by the edit's ``grow``) with this inpainting pipeline instead of GLIGEN
    inpainting, for a profile whose inpainting model draws a named object into a masked area
    (nano's, trained to) and whose GLIGEN inpainting is untrained. Only the object SAM finds it
    drew in the box is kept; the rest of the box stays the input's."""
    hold_first_frame: bool = False
    """``image_to_video``: frame 0 is held to the picture's latents through the denoising
    (:mod:`vitron.tools.models.first_frame`), for a model that redraws the picture it is given
    (nano's)."""
    hold_still: bool = False
    """``image_to_video``: an instruction that names what moves ('the red circle moves left') lets
    only that object and its path change; the rest of every frame is held to the picture
    (:mod:`vitron.tools.motion_area`), for a model that redraws the scene it animates (nano's).
    Regions given to the tool are held this way whatever this says."""
    drift_noise: bool = False
    """``generate_video``: a description whose object moves one way ('a red star moving right on
    a grey background') starts every frame from one noise picture shifted that way frame by frame
    (:func:`vitron.tools.motion_area.drift_per_frame`), the noise-initialisation trajectory
    control of training-free video diffusion (as in FreeTraj), for a model that does not move
    the object by the words (nano's): it follows where its noise goes."""
    collage_background: str = ""
    """The ``collage`` pipeline (box layouts): the background every phrase is drawn on
    ("beige"), for a model that draws shapes better on one background than on others (nano's);
    the picture's own background is then the first phrase drawn on the asked one, its object
    painted out. Empty: each phrase is drawn on the asked background."""
    carry: float = 0.0
    """``image_to_video`` with ``hold_still``: the named object's box is moved along the asked
    direction (:data:`vitron.tools.motion_area.SPEED` a frame) in the first ``carry`` share of
    the denoising steps, then the model finishes it (:class:`vitron.tools.models.first_frame.Carry`),
    for a model that does not move what the words say (nano's). 0: off."""

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> Defaults:
        values: dict[str, Any] = {}
        for item in fields(cls):
            if item.name not in options:
                continue
            value = options[item.name]
            if item.type == "bool":
                if not isinstance(value, bool):
                    raise TypeError(f"{item.name} must be true or false, not {value!r}")
                values[item.name] = value
            elif item.type == "str":
                if not isinstance(value, str):
                    raise TypeError(f"{item.name} must be a string, not {value!r}")
                values[item.name] = value
            else:
                values[item.name] = (int if item.type == "int" else float)(value)
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
    notes: tuple[str, ...] = ()
    """Sentences the tool's result should carry (what the drawing could not do)."""


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
        around: AbstractContextManager[Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Call the pipeline with this engine's conditioning, seed and step events; ``kwargs`` go
        to the pipeline, and ``around`` (if any) is entered for the call, inside the engine's
        lock. Returns its output object (``output_type="np"``)."""
        extra = 0 if prompt.extra_tokens is None else len(prompt.extra_tokens)
        logger.debug("%s: seed %d, %d steps, %d signal tokens", self.kind, seed, steps, extra)
        with self._lock, seeded(seed, self.device) as generator, torch.inference_mode():
            cond, uncond = self.encode(prompt)
            with (
                around or nullcontext(),
                step_events(self.pipe, total or steps, progress, self.kind) as callbacks,
            ):
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


def resize_array(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """H x W x 3 uint8 resized to ``size = (width, height)`` (no-op when it already is)."""
    if (array.shape[1], array.shape[0]) == tuple(size):
        return array
    return np.asarray(Image.fromarray(array).resize(size, Image.BICUBIC))
