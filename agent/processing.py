"""The processor: media preprocessing, placeholder expansion and prompt building.

Tokens are set up in :mod:`vitron.agent.tokens`, the inputs it reads (turns, videos, regions, the
chat template) are in :mod:`vitron.agent.inputs`.

The processor turns a conversation (text with images, videos and region masks) into model
inputs. Placeholders are expanded here so their positions are real: ``<image>`` becomes
``tokens_per_image`` ``<image>`` tokens, ``<video>`` becomes ``frames * tokens_per_frame``
``<video>`` tokens followed by a line of frame timestamps ("8 frames evenly spaced from 0.5s to 7.5s")
so the LLM can answer temporal grounding in seconds, and ``<region>`` stays one token.

Coordinates: images are resized (squashed, not cropped or padded) to the tower's square input,
so a normalised region ``[x1, y1, x2, y2]`` means the same part of the image before and after.
Region masks are resampled the same way and kept soft (values in [0, 1]).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from transformers import (
    AutoTokenizer,
    BatchFeature,
    PreTrainedTokenizerBase,
)
from transformers.utils.constants import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

from vitron.agent.configuration import VitronConfig
from vitron.agent.inputs import (
    ChatTemplate,
    ImageInput,
    RegionInput,
    RenderedPrompt,
    SampledVideo,
    Turn,
    VideoInput,
)
from vitron.agent.tokens import (
    IMAGE_TOKEN,
    PLACEHOLDER_TOKENS,
    REGION_TOKEN,
    VIDEO_TOKEN,
    vitron_token_ids,
)

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)

PROCESSOR_FILE = "vitron_processor.json"


# --------------------------------------------------------------------------------------------
# processor


class Expanded(NamedTuple):
    """Texts with placeholders expanded, and every ``<region>`` token's mask in order: the
    regions given and, with an object finder, the objects after each picture."""

    texts: list[str]
    sources: list[int]
    """Per region: the index of the picture it is drawn on."""
    masks: list[Any]
    marked: list[bool]
    """Per region: whether it marks its picture's tokens (a region given; an object does not)."""


_PLACEHOLDER_RE = re.compile("|".join(re.escape(t) for t in PLACEHOLDER_TOKENS))


class VitronProcessor:
    """Tokenizer + image/video/mask preprocessing + placeholder expansion + chat template."""

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        *,
        image_size: int,
        tokens_per_image: int,
        video_num_frames: int = 8,
        video_tokens_per_frame: int = 16,
        image_mean: Sequence[float] = tuple(OPENAI_CLIP_MEAN),
        image_std: Sequence[float] = tuple(OPENAI_CLIP_STD),
        template: ChatTemplate | None = None,
        object_finder: Callable[[ImageInput], list[np.ndarray]] | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.token_ids = vitron_token_ids(tokenizer)
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token
        self.image_size = int(image_size)
        self.tokens_per_image = int(tokens_per_image)
        self.video_num_frames = int(video_num_frames)
        self.video_tokens_per_frame = int(video_tokens_per_frame)
        self.image_mean = torch.tensor(image_mean, dtype=torch.float32)[:, None, None]
        self.image_std = torch.tensor(image_std, dtype=torch.float32)[:, None, None]
        self.template = template or ChatTemplate()
        self.object_finder = object_finder
        """Pictures -> their objects' masks (:class:`~vitron.agent.objects.ObjectFinder`): with
        one, each picture's image tokens are followed by one unmarked ``<region>`` per object."""

    @classmethod
    def from_config(
        cls,
        tokenizer: PreTrainedTokenizerBase,
        config: VitronConfig,
        template: ChatTemplate | None = None,
    ) -> VitronProcessor:
        """A processor whose token counts match ``config`` (image grid, video pooling)."""
        return cls(
            tokenizer,
            image_size=config.vision_config.image_size,
            tokens_per_image=config.tokens_per_image,
            video_num_frames=config.video_num_frames,
            video_tokens_per_frame=config.video_tokens_per_frame,
            template=template,
        )

    # ---- persistence ----

    def to_dict(self) -> dict[str, Any]:
        return {
            "image_size": self.image_size,
            "tokens_per_image": self.tokens_per_image,
            "video_num_frames": self.video_num_frames,
            "video_tokens_per_frame": self.video_tokens_per_frame,
            "image_mean": self.image_mean.flatten().tolist(),
            "image_std": self.image_std.flatten().tolist(),
            "template": asdict(self.template),
        }

    def save_pretrained(self, directory: str | Path) -> None:
        """Write the tokenizer files and ``vitron_processor.json``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save_pretrained(directory)
        (directory / PROCESSOR_FILE).write_text(json.dumps(self.to_dict(), indent=2))

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> VitronProcessor:
        """Load what :meth:`save_pretrained` wrote."""
        directory = Path(directory)
        settings_file = directory / PROCESSOR_FILE
        if not settings_file.is_file():
            raise FileNotFoundError(f"{settings_file} is missing: not a saved VitronProcessor")
        settings = json.loads(settings_file.read_text())
        template = ChatTemplate(**settings.pop("template"))
        tokenizer = AutoTokenizer.from_pretrained(directory)
        return cls(tokenizer, template=template, **settings)

    # ---- media ----

    def preprocess_image(self, image: ImageInput) -> torch.Tensor:
        """An image -> (3, S, S) float tensor, resized (squashed) and CLIP-normalised."""
        pixels = _to_chw_float(image)
        pixels = F.interpolate(
            pixels[None],
            size=(self.image_size, self.image_size),
            mode="bilinear",
            antialias=True,
            align_corners=False,
        )[0]
        return (pixels.clamp(0.0, 1.0) - self.image_mean) / self.image_std

    def preprocess_mask(self, mask: np.ndarray | torch.Tensor | Image.Image) -> torch.Tensor:
        """An (H, W) mask -> (S, S) float mask in [0, 1], area-resampled (soft edges kept)."""
        if isinstance(mask, Image.Image):
            mask = np.asarray(mask.convert("L"), dtype=np.float32) / 255.0
        values = torch.as_tensor(
            np.asarray(mask) if not isinstance(mask, torch.Tensor) else mask
        ).float()
        if values.ndim != 2:
            raise ValueError(f"a region mask must be (H, W), got shape {tuple(values.shape)}")
        if values.max() > 1.0:
            values = values / 255.0
        if not bool((values > 0).any()):
            raise ValueError("a region mask is empty: it needs at least one pixel set")
        return F.interpolate(
            values[None, None], size=(self.image_size, self.image_size), mode="area"
        )[0, 0].clamp(0, 1)

    def sample_video(self, video: VideoInput) -> SampledVideo:
        """Pick ``video_num_frames`` frames uniformly (segment centres) and preprocess them."""
        total = len(video.frames)
        count = min(self.video_num_frames, total)
        indices = [min(total - 1, int((k + 0.5) * total / count)) for k in range(count)]
        pixels = torch.stack([self.preprocess_image(video.frames[i]) for i in indices])
        if video.timestamps is not None:
            times: list[float] | None = [float(video.timestamps[i]) for i in indices]
        elif video.fps is not None:
            times = [i / video.fps for i in indices]
        else:
            times = None
        return SampledVideo(pixels, indices, times)

    # ---- text ----

    def render(
        self, turns: Sequence[Turn], *, add_generation_prompt: bool = True
    ) -> RenderedPrompt:
        """Turns -> prompt text (placeholders unexpanded) and the media in order of appearance."""
        prompt = RenderedPrompt("")
        rendered: list[tuple[str, str]] = []
        for turn in turns:
            parts = [turn.content] if isinstance(turn.content, str) else list(turn.content)
            text = ""
            for part in parts:
                if isinstance(part, str):
                    text += part
                elif isinstance(part, VideoInput):
                    prompt.videos.append(part)
                    text += f"{VIDEO_TOKEN}\n"
                elif isinstance(part, RegionInput):
                    prompt.regions.append(part)
                    text += REGION_TOKEN
                elif isinstance(part, Image.Image | np.ndarray | torch.Tensor):
                    prompt.images.append(part)
                    text += f"{IMAGE_TOKEN}\n"
                else:
                    raise TypeError(
                        f"unsupported content part {type(part).__name__} in a {turn.role} turn"
                    )
            rendered.append((turn.role, text))
        eos = self.tokenizer.eos_token or ""
        prompt.text = self.template.render(rendered, eos, add_generation_prompt)
        return prompt

    def __call__(
        self,
        text: str | Sequence[str],
        images: Sequence[ImageInput] | None = None,
        videos: Sequence[VideoInput] | None = None,
        regions: Sequence[RegionInput] | None = None,
        *,
        padding_side: Literal["left", "right"] = "left",
    ) -> BatchFeature:
        """Texts with placeholders + media (in order of appearance across the batch) -> inputs.

        Returns a ``BatchFeature`` with ``input_ids`` and ``attention_mask`` (B, L), and when
        present ``pixel_values`` (N, 3, S, S), ``pixel_values_videos`` (V, T, 3, S, S) — a list
        of (T_i, 3, S, S) when frame counts differ — ``region_masks`` (R, S, S) and
        ``region_image_index`` (R,). Pass it to the model as ``model(**batch)``.
        """
        texts = [text] if isinstance(text, str) else list(text)
        images, videos, regions = list(images or []), list(videos or []), list(regions or [])
        counts = {t: sum(s.count(t) for s in texts) for t in PLACEHOLDER_TOKENS}
        given = {IMAGE_TOKEN: len(images), VIDEO_TOKEN: len(videos), REGION_TOKEN: len(regions)}
        for token, found in counts.items():
            if found != given[token]:
                raise ValueError(
                    f"the text has {found} {token} placeholder(s) but {given[token]} were given"
                )

        sampled = [self.sample_video(v) for v in videos]
        expanded = self._expand(texts, sampled, regions, self.find_objects(images))
        batch = self.tokenizer(
            expanded.texts, padding=True, padding_side=padding_side, return_tensors="pt"
        )
        self._check_token_counts(batch["input_ids"], len(images), sampled, len(expanded.masks))
        data: dict[str, Any] = {
            "input_ids": batch["input_ids"],
            "attention_mask": batch["attention_mask"],
        }
        if images:
            data["pixel_values"] = torch.stack([self.preprocess_image(im) for im in images])
        if sampled:
            frame_counts = {len(s.indices) for s in sampled}
            pixels = [s.pixels for s in sampled]
            data["pixel_values_videos"] = torch.stack(pixels) if len(frame_counts) == 1 else pixels
        if expanded.masks:
            data["region_masks"] = torch.stack([self.preprocess_mask(m) for m in expanded.masks])
            data["region_image_index"] = torch.tensor(expanded.sources, dtype=torch.long)
            if not all(expanded.marked):
                data["region_marked"] = torch.tensor(expanded.marked, dtype=torch.bool)
        return BatchFeature(data)

    def find_objects(self, images: Sequence[ImageInput]) -> list[list[np.ndarray]] | None:
        """Each picture's object masks (``H x W`` bool), or ``None`` without an object finder."""
        if self.object_finder is None:
            return None
        return [self.object_finder(image) for image in images]

    def encode_chat(
        self, turns: Sequence[Turn], *, add_generation_prompt: bool = True
    ) -> BatchFeature:
        """Render a conversation and encode it (batch of one)."""
        prompt = self.render(turns, add_generation_prompt=add_generation_prompt)
        return self(prompt.text, prompt.images, prompt.videos, prompt.regions)

    def decode(self, token_ids: Sequence[int] | torch.Tensor) -> str:
        """Token ids -> reply text: placeholders, BOS/EOS and padding dropped, grammar tags and
        signal tokens kept (so the text parses)."""
        ids = token_ids.tolist() if isinstance(token_ids, torch.Tensor) else list(token_ids)
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def _expand(
        self,
        texts: list[str],
        sampled: list[SampledVideo],
        regions: list[RegionInput],
        objects: list[list[np.ndarray]] | None = None,
    ) -> Expanded:
        """Placeholders expanded in ``texts``; ``objects`` (per picture, in order) add one
        unmarked region after that picture's image tokens."""
        image_count = video_count = region_count = 0
        sources: list[int] = []
        masks: list[Any] = []
        marked: list[bool] = []
        out: list[str] = []
        for text in texts:
            pieces: list[str] = []
            last_image: int | None = None
            position = 0
            for match in _PLACEHOLDER_RE.finditer(text):
                pieces.append(text[position : match.start()])
                position = match.end()
                token = match.group(0)
                if token == IMAGE_TOKEN:
                    pieces.append(IMAGE_TOKEN * self.tokens_per_image)
                    for mask in objects[image_count] if objects is not None else []:
                        pieces.append(REGION_TOKEN)
                        sources.append(image_count)
                        masks.append(mask)
                        marked.append(False)
                    last_image = image_count
                    image_count += 1
                elif token == VIDEO_TOKEN:
                    video = sampled[video_count]
                    video_count += 1
                    tokens = len(video.indices) * self.video_tokens_per_frame
                    pieces.append(VIDEO_TOKEN * tokens + "\n" + video.describe())
                else:
                    region = regions[region_count]
                    region_count += 1
                    source = region.image if region.image is not None else last_image
                    if source is None:
                        raise ValueError(
                            f"region {region_count - 1} names no image and no <image> precedes it in its text"
                        )
                    sources.append(source)
                    masks.append(region.mask)
                    marked.append(True)
                    pieces.append(REGION_TOKEN)
            pieces.append(text[position:])
            out.append("".join(pieces))
        bad = [s for s in sources if not 0 <= s < image_count]
        if bad:
            raise ValueError(
                f"regions refer to images {bad}, but only {image_count} image(s) were given"
            )
        return Expanded(out, sources, masks, marked)

    def _check_token_counts(
        self, input_ids: torch.Tensor, images: int, sampled: list[SampledVideo], regions: int
    ) -> None:
        ids = self.token_ids
        expected = {
            IMAGE_TOKEN: (ids.image, images * self.tokens_per_image),
            VIDEO_TOKEN: (
                ids.video,
                sum(len(s.indices) for s in sampled) * self.video_tokens_per_frame,
            ),
            REGION_TOKEN: (ids.region, regions),
        }
        for name, (token_id, want) in expected.items():
            found = int((input_ids == token_id).sum())
            if found != want:
                raise ValueError(
                    f"tokenizing gave {found} {name} tokens but the media need {want}: the text "
                    f"must not spell {name} on its own"
                )


def _to_chw_float(image: ImageInput) -> torch.Tensor:
    """Any supported image -> (3, H, W) float32 in [0, 1]."""
    if isinstance(image, Image.Image):
        array = np.asarray(image.convert("RGB"), dtype=np.uint8)
        return torch.from_numpy(array.copy()).permute(2, 0, 1).float() / 255.0
    if isinstance(image, np.ndarray):
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        if image.ndim != 3 or image.shape[2] not in (3, 4):
            raise ValueError(f"an image array must be (H, W, 3), got {image.shape}")
        array = image[..., :3]
        scale = 255.0 if array.dtype == np.uint8 or array.max() > 1.0 else 1.0
        return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).float() / scale
    if isinstance(image, torch.Tensor):
        if image.ndim != 3 or image.shape[0] != 3:
            raise ValueError(
                f"an image tensor must be (3, H, W) in [0, 1], got {tuple(image.shape)}"
            )
        return image.float()
    raise TypeError(f"unsupported image type {type(image).__name__}")


__all__ = ["PROCESSOR_FILE", "VitronProcessor"]
