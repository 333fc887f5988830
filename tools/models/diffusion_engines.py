"""The diffusers engines, one per task (``pipeline = "<kind>"`` of a profile entry, a key of
:data:`PIPELINES`), on the shared pieces of :mod:`vitron.tools.models.diffusion_common`."""

from __future__ import annotations

import logging
import warnings
from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np
import torch
from PIL import Image

from vitron.tools.models.diffusion_common import (
    DiffusionEngine,
    ImageResult,
    Prompt,
    effective_steps,
    fit_size,
    resize_array,
    to_uint8,
)
from vitron.tools.models.first_frame import Carry, first_frame_held
from vitron.tools.registry import ProgressCallback

logger = logging.getLogger(__name__)


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


class LayoutEngine(DiffusionEngine, ABC):
    """Text-to-image with a box layout: each phrase drawn inside its box (``generate_image``'s
    ``gligen`` component, whichever way the profile's pipeline does it)."""

    method: ClassVar[str]
    """How it draws, for the result's description."""
    reads_signal: ClassVar[bool] = True
    """Whether the whole description's conditioning (a planner's signal tokens) reaches the
    drawing."""

    @abstractmethod
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
        """An image of ``height x width`` pixels with each phrase in its box; ``boxes`` are
        normalised ``[x1, y1, x2, y2]`` (top-left origin), one per phrase."""


class GligenEngine(LayoutEngine):
    """GLIGEN box-grounded generation: each phrase is drawn inside its box."""

    pipeline_class = "StableDiffusionGLIGENPipeline"
    method = "GLIGEN"

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
        """``grounding`` is the fraction of steps that use the boxes (GLIGEN's scheduled
        sampling; at least the first step does when it is positive)."""
        if grounding > 0:
            grounding = max(grounding, 1.0 / steps)
        output = self.run(
            prompt, seed=seed, steps=steps, progress=progress, width=width, height=height,
            guidance_scale=guidance, gligen_phrases=phrases, gligen_boxes=boxes,
            gligen_scheduled_sampling_beta=grounding,
        )  # fmt: skip
        return self._image_result(output)


class CollageEngine(LayoutEngine):
    """A layout drawn as a collage (:mod:`vitron.tools.collage`) by a Stable Diffusion 1.x
    text-to-image pipeline: each phrase drawn alone on the description's background (or the
    profile's ``collage_background``), cut out and scaled into its box. For a profile whose
    GLIGEN does not place (nano's); the placement is the tool's, the drawing the model's."""

    pipeline_class = "StableDiffusionPipeline"
    method = "a Stable Diffusion collage, each phrase drawn alone"
    reads_signal = False  # a signal stands for the whole picture; each drawing is one phrase

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
        """Phrase ``i`` is drawn with seed ``seed + i``, on the profile's ``collage_background``
        when it sets one (then the first phrase is also drawn on the asked background, for the
        picture's background); ``grounding`` is not read (every object lands in its box).
        Progress counts the steps of all the drawings."""
        from vitron.tools.collage import Piece, background_words, compose, object_prompt

        drawn_on = self.defaults.collage_background
        on = f"on a {drawn_on} background" if drawn_on else prompt.text
        asked = background_words(prompt.text)
        backdrop_too = bool(drawn_on and asked and asked.lower() != on.lower())
        runs = len(phrases) + backdrop_too
        flagged = False

        def draw(text: str, index: int, run: int) -> np.ndarray:
            nonlocal flagged
            output = self.run(
                Prompt(text, negative=prompt.negative), seed=seed + index, steps=steps,
                width=width, height=height, guidance_scale=guidance,
                progress=_offset_steps(progress, run, runs),
            )  # fmt: skip
            drawing = self._image_result(output)
            flagged |= drawing.flagged
            return drawing.pixels

        pairs = enumerate(zip(phrases, boxes, strict=True))
        pieces = [Piece(draw(object_prompt(phrase, on), i, i), box) for i, (phrase, box) in pairs]
        backdrop = None
        if backdrop_too:  # the first phrase on the asked background, from its own seed
            backdrop = draw(object_prompt(phrases[0], prompt.text), 0, len(phrases))
        pixels, found = compose(pieces, backdrop)
        missing = [repr(p) for p, ok in zip(phrases, found, strict=True) if not ok]
        boxes_left = "its box is" if len(missing) == 1 else "their boxes are"
        notes = (
            (f"Nothing stood out from the background in the drawing of {', '.join(missing)}, "
             f"so {boxes_left} left empty.",) if missing else ()
        )  # fmt: skip
        return ImageResult(pixels, flagged, notes)


def _offset_steps(progress: ProgressCallback, index: int, count: int) -> ProgressCallback:
    """``progress`` for drawing ``index`` of ``count`` equal runs: steps counted over them all."""

    def report(event: dict) -> None:
        if event.get("event") == "step":
            total = event["total"]
            event = {**event, "step": index * total + event["step"], "total": count * total}
        progress(event)

    return report


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
        drift: tuple[float, float] | None = None,
    ) -> np.ndarray:
        """``frames x height x width x 3`` uint8. ``drift`` ((dx, dy) a frame, fractions of the
        picture, y down) starts frame t from one noise picture shifted t times that far (whole
        latent cells, wrapped round, so each frame's noise is still standard normal)."""
        latents = (
            None if drift is None else self._drifting_noise(drift, frames, width, height, seed)
        )
        output = self.run(
            prompt, seed=seed, steps=steps, progress=progress, num_frames=frames,
            width=width, height=height, guidance_scale=guidance, latents=latents,
        )  # fmt: skip
        return to_uint8(np.asarray(output.frames[0]))

    def _drifting_noise(
        self, drift: tuple[float, float], frames: int, width: int, height: int, seed: int
    ) -> torch.Tensor:
        """1 x C x frames x h x w starting latents: frame t is frame 0's noise rolled by
        ``t * drift`` of the grid (rounded to whole cells)."""
        factor = self.pipe.vae_scale_factor
        rows, columns = height // factor, width // factor
        channels = self.pipe.unet.config.in_channels
        generator = torch.Generator("cpu").manual_seed(seed)
        noise = torch.randn(1, channels, rows, columns, generator=generator)
        shifted = [
            torch.roll(noise, (round(t * drift[1] * rows), round(t * drift[0] * columns)), (2, 3))
            for t in range(frames)
        ]
        return torch.stack(shifted, dim=2).to(self.device, self.pipe.unet.dtype)


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
        moving: np.ndarray | None = None,
        carried: tuple[list[float], tuple[float, float]] | None = None,
    ) -> np.ndarray:
        """``frames x height x width x 3`` uint8; the image is centre-cropped to the aspect of
        ``width x height`` and becomes the first frame's condition (and the first frame itself
        with the profile's ``hold_first_frame``). ``fps`` conditions motion. ``moving`` (the
        image's H x W bool, True where the clip may change) holds the rest of every frame to the
        picture, so only that area is drawn (frame 0 is then held too). ``carried`` (a normalised
        box in that area and its (dx, dy) a frame, fractions of the picture) moves what the box
        holds along that path for the profile's ``carry`` share of the steps."""
        still, carry = None, None
        if moving is not None:
            band = self._latent_cells(moving, width, height)
            still = ~band
            if carried is not None and self.defaults.carry > 0:
                carry = self._carry(carried, band, moving.shape, width, height, steps)
        held = (
            first_frame_held(self.pipe, frames, seed, still=still, carry=carry)
            if self.defaults.hold_first_frame or still is not None
            else None
        )
        output = self.run(
            prompt, seed=seed, steps=steps, progress=progress, around=held,
            image=image.convert("RGB"), num_frames=frames, width=width, height=height,
            target_fps=max(1, round(fps)), guidance_scale=guidance,
        )  # fmt: skip
        clip = to_uint8(np.asarray(output.frames[0]))
        if still is not None:  # the VAE's decoder reaches across cells: copy the rest exactly
            clip = self._keep_still(clip, ~still.numpy())
        return clip

    def _keep_still(self, clip: np.ndarray, cells: np.ndarray) -> np.ndarray:
        """``clip`` (T x H x W x 3 uint8) with frames 1.. taken from frame 0 (the held picture)
        outside the latent ``cells`` that may move (h x w bool), blended across one cell."""
        from vitron.tools.compositing import blend_weights, composite

        factor = self.pipe.vae_scale_factor
        moving = np.kron(cells, np.ones((factor, factor), dtype=bool))
        weights = blend_weights(moving, factor)
        return np.stack([clip[0], *(composite(clip[0], frame, weights) for frame in clip[1:])])

    def _carry(
        self,
        carried: tuple[list[float], tuple[float, float]],
        band: torch.Tensor,
        image_shape: tuple[int, ...],
        width: int,
        height: int,
        steps: int,
    ) -> Carry:
        """The :class:`Carry` of a box moving (dx, dy) of the picture a frame, on the latents'
        grid (``band`` h x w bool, the cells that may change; ``image_shape`` the picture's H x W,
        whose box is cropped and scaled as the picture is)."""
        from vitron.tools.geometry import box_mask

        box, (dx, dy) = carried
        box_area = box_mask(box, image_shape[1], image_shape[0])  # cropped as the image is
        cells = self._latent_cells(box_area, width, height) & band
        rows, columns = band.shape
        return Carry(cells=cells, band=band, shift=(dx * columns, dy * rows),
                     steps=round(self.defaults.carry * steps))  # fmt: skip

    def _latent_cells(self, area: np.ndarray, width: int, height: int) -> torch.Tensor:
        """``area`` (the image's H x W bool) cropped and scaled as the pipeline crops and scales
        the image (to cover ``width x height``, then the centre), as an h x w bool over the
        latents' grid: a cell is in it when any of its pixels is."""
        factor = self.pipe.vae_scale_factor
        picture = Image.fromarray(area.astype(np.uint8) * 255)
        scale = min(picture.width / width, picture.height / height)
        picture = picture.resize(
            (round(picture.width // scale), round(picture.height // scale)), Image.BOX
        )
        left, top = (picture.width - width) // 2, (picture.height - height) // 2
        cropped = np.asarray(picture.crop((left, top, left + width, top + height))) > 0
        cells = cropped.reshape(height // factor, factor, width // factor, factor)
        return torch.from_numpy(cells.any(axis=(1, 3)))


PIPELINES: dict[str, type[DiffusionEngine]] = {
    "text_to_image": TextToImageEngine,
    "gligen": GligenEngine,
    "collage": CollageEngine,
    "gligen_inpaint": GligenInpaintEngine,
    "inpaint": InpaintEngine,
    "instruct_pix2pix": InstructPix2PixEngine,
    "text_to_video": TextToVideoEngine,
    "video_to_video": VideoToVideoEngine,
    "image_to_video": ImageToVideoEngine,
}
"""The ``pipeline = "…"`` values a profile entry may name, and the engine each builds."""
