"""Tokenizer set-up, media preprocessing, placeholder expansion and prompt building.

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
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    AddedToken,
    AutoTokenizer,
    BatchFeature,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)
from transformers.utils.constants import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

from vitron.agent.configuration import VitronConfig
from vitron.agent.invocation import GRAMMAR_TAGS, SIGNAL_TOKENS

if TYPE_CHECKING:
    from vitron.agent.modeling import VitronForCausalLM

logger = logging.getLogger(__name__)

IMAGE_TOKEN, VIDEO_TOKEN, REGION_TOKEN = "<image>", "<video>", "<region>"
PLACEHOLDER_TOKENS: tuple[str, ...] = (IMAGE_TOKEN, VIDEO_TOKEN, REGION_TOKEN)
PROCESSOR_FILE = "vitron_processor.json"

ImageInput = Image.Image | np.ndarray | torch.Tensor
"""A PIL image, an (H, W, 3) uint8 array, or a (3, H, W) float tensor in [0, 1]."""


# --------------------------------------------------------------------------------------------
# tokenizer


@dataclass(frozen=True)
class VitronTokenIds:
    """Ids of the tokens Vitron adds: placeholders, grammar tags and signal tokens."""

    image: int
    video: int
    region: int
    tags: dict[str, int]
    signals: dict[str, int]


def add_vitron_tokens(tokenizer: PreTrainedTokenizerBase) -> VitronTokenIds:
    """Add the placeholders (special: dropped when decoding), the grammar tags and the signal
    tokens (not special: kept in decoded text so replies parse) to ``tokenizer``.

    Idempotent. Each token must end up as exactly one id; anything else raises ``ValueError``.
    Resize the model's embeddings afterwards (``model.resize_token_embeddings(len(tokenizer))``).
    """
    tokenizer.add_special_tokens(
        {
            "extra_special_tokens": [
                AddedToken(t, special=True, normalized=False) for t in PLACEHOLDER_TOKENS
            ]
        },
        replace_extra_special_tokens=False,
    )
    plain = [*GRAMMAR_TAGS, *SIGNAL_TOKENS]
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in plain])
    return vitron_token_ids(tokenizer)


def vitron_token_ids(tokenizer: PreTrainedTokenizerBase) -> VitronTokenIds:
    """Look up (and check) the ids of every Vitron token in ``tokenizer``."""

    def one(token: str) -> int:
        ids = tokenizer.encode(token, add_special_tokens=False)
        if len(ids) != 1 or ids[0] == tokenizer.unk_token_id:
            raise ValueError(
                f"{token!r} encodes to {ids}, not one id: call add_vitron_tokens(tokenizer) first"
            )
        return int(ids[0])

    return VitronTokenIds(
        image=one(IMAGE_TOKEN),
        video=one(VIDEO_TOKEN),
        region=one(REGION_TOKEN),
        tags={t: one(t) for t in GRAMMAR_TAGS},
        signals={t: one(t) for t in SIGNAL_TOKENS},
    )


def bind_token_ids(config: VitronConfig, tokenizer: PreTrainedTokenizerBase) -> VitronTokenIds:
    """Write the tokenizer's Vitron token ids into ``config`` (placeholders and signal tokens)."""
    ids = vitron_token_ids(tokenizer)
    config.image_token_id, config.video_token_id, config.region_token_id = (
        ids.image,
        ids.video,
        ids.region,
    )
    config.signal_token_ids = {
        t: i for t, i in ids.signals.items() if t in config.signal_token_spaces
    }
    config.validate_glue()
    return ids


def configure_generation(model: VitronForCausalLM, tokenizer: PreTrainedTokenizerBase) -> None:
    """Generation defaults from the tokenizer: BOS/EOS/pad ids; placeholders never generated."""
    ids = model.config
    generation = model.generation_config
    generation.bos_token_id = tokenizer.bos_token_id
    generation.eos_token_id = tokenizer.eos_token_id
    generation.pad_token_id = (
        tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    )
    generation.suppress_tokens = [
        i for i in (ids.image_token_id, ids.video_token_id, ids.region_token_id) if i is not None
    ]


def prepare_model_for_tokenizer(
    model: VitronForCausalLM, tokenizer: PreTrainedTokenizerBase
) -> VitronTokenIds:
    """Add the Vitron tokens to ``tokenizer``, grow the model's embeddings to match (new rows are
    initialised around the mean of the old ones), and record the token ids in the config."""
    add_vitron_tokens(tokenizer)
    if model.get_input_embeddings().weight.shape[0] < len(tokenizer):
        model.resize_token_embeddings(len(tokenizer))
    ids = bind_token_ids(model.config, tokenizer)
    configure_generation(model, tokenizer)
    return ids


_TINY_CORPUS = """
A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful,
detailed, and polite answers to the user's questions and calls vision tools when pixels are needed.
USER: ASSISTANT: TOOL: Sure, here it is. I will segment the zebra farthest away in the image.
What is in the image? Describe the video. When does the person start running? From 1.5s to 4.0s.
Generate an image of a red cube on a blue sphere. Edit the photo: replace the dog with a cat.
Track the car through the video. Turn this image into a video. Find the cup, the table, the man.
segment_image ground retrieve track_video generate_image generate_video image_to_video edit_image
edit_video segmentation: tracking: editing: generation: The video has 8 sampled frames: frame 0 at
0.0s, frame 1 at 0.5s, frame 2 at 1.0s, frame 3 at 1.5s. Region (102, 211, 498, 903) box [0.25, 0.5]
mask covers 12.4% of the image, coloured shapes: circle square triangle star left right top bottom
green yellow purple orange black white small large moving still there are two three four five
0 1 2 3 4 5 6 7 8 9 10 25 50 100 250 500 999 the a an of in on at to and or with is are it this that
"""


def build_tiny_tokenizer(
    *, vocab_size: int = 512, vitron_tokens: bool = True
) -> PreTrainedTokenizerFast:
    """A small byte-level BPE tokenizer built in code (no download); deterministic.

    Byte-level: every string encodes (unknown characters fall back to bytes). Merges are learned
    from a fixed built-in corpus, so the same call always gives the same vocabulary. BOS is
    prepended to every encoded text.
    """
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
        show_progress=False,
    )
    backend.train_from_iterator(
        [line for line in _TINY_CORPUS.splitlines() if line], trainer=trainer
    )
    bos_id = backend.token_to_id("<s>")
    backend.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", bos_id)]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        model_max_length=4096,
    )
    if vitron_tokens:
        add_vitron_tokens(tokenizer)
    return tokenizer


# --------------------------------------------------------------------------------------------
# media inputs and conversation turns


@dataclass
class VideoInput:
    """A video as frames: an (T, H, W, 3) uint8 array or a list of images.

    Frame times come from ``timestamps`` (seconds, one per frame) or from ``fps``; without
    either, prompts name frames by index only.
    """

    frames: np.ndarray | Sequence[ImageInput]
    fps: float | None = None
    timestamps: Sequence[float] | None = None

    def __post_init__(self) -> None:
        count = len(self.frames)
        if count == 0:
            raise ValueError("a video needs at least one frame")
        if self.timestamps is not None and len(self.timestamps) != count:
            raise ValueError(f"{count} frames but {len(self.timestamps)} timestamps")
        if self.fps is not None and not self.fps > 0:
            raise ValueError(f"fps must be positive, got {self.fps}")


@dataclass
class RegionInput:
    """A region sketch: an (H, W) mask (bool, 0/1 or soft values) over the full extent of an
    image. ``image`` is the index of that image among the conversation's images (0-based, in
    order of appearance); ``None`` means the last image before the region's placeholder.
    """

    mask: np.ndarray | torch.Tensor | Image.Image
    image: int | None = None


Part = str | Image.Image | np.ndarray | torch.Tensor | VideoInput | RegionInput


@dataclass
class Turn:
    """One message of a conversation. ``content`` is text or a list of parts in reading order:
    text, images, :class:`VideoInput` and :class:`RegionInput` (rendered as ``<region>``)."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str | Sequence[Part]


@dataclass(frozen=True)
class ChatTemplate:
    """A Vicuna-v1-style template: ``SYSTEM USER: … ASSISTANT: …</s>USER: … ASSISTANT:``."""

    system: str = (
        "A chat between a curious user and an artificial intelligence assistant. The assistant "
        "gives helpful, detailed, and polite answers to the user's questions."
    )
    roles: dict[str, str] = field(
        default_factory=lambda: {"user": "USER", "assistant": "ASSISTANT", "tool": "TOOL"}
    )
    separator: str = " "

    def render(
        self, turns: Sequence[tuple[str, str]], eos_token: str, add_generation_prompt: bool = True
    ) -> str:
        """(role, text) pairs -> prompt text; a ``system`` turn replaces the default system text."""
        system = self.system
        body = ""
        for role, text in turns:
            if role == "system":
                system = text
                continue
            if role not in self.roles:
                raise ValueError(f"unknown role {role!r}; roles: system, {', '.join(self.roles)}")
            body += f"{self.roles[role]}: {text}"
            body += eos_token if role == "assistant" else self.separator
        if add_generation_prompt:
            body += f"{self.roles['assistant']}:"
        return f"{system}{self.separator}{body}"


@dataclass
class RenderedPrompt:
    """A prompt with unexpanded placeholders and the media they stand for, in order."""

    text: str
    images: list[ImageInput] = field(default_factory=list)
    videos: list[VideoInput] = field(default_factory=list)
    regions: list[RegionInput] = field(default_factory=list)


@dataclass(frozen=True)
class SampledVideo:
    """Frames chosen from a video: ``pixels`` (T, 3, S, S), source ``indices`` and ``timestamps``."""

    pixels: torch.Tensor
    indices: list[int]
    timestamps: list[float] | None

    def describe(self) -> str:
        """The timestamp line that follows the video's tokens in the prompt, kept far cheaper than
        the pooled visual tokens it annotates: evenly spread frames (segment-centre sampling: the
        steps differ by at most one source frame) as a span ("8 frames evenly spaced from 0.5s to
        7.5s"), others as one number per frame ("Frame times (s): 0.0 0.2 1.5.")."""
        count, times = len(self.indices), self.timestamps
        if times is None:
            return f"{count} video frames."
        steps = [b - a for a, b in zip(times, times[1:], strict=False)]
        if count > 2 and min(steps) > 0 and max(steps) - min(steps) <= min(steps) + 1e-6:
            return f"{count} frames evenly spaced from {times[0]:.1f}s to {times[-1]:.1f}s."
        return f"Frame times (s): {' '.join(f'{t:.1f}' for t in times)}."


# --------------------------------------------------------------------------------------------
# processor

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
        expanded, region_sources = self._expand(texts, sampled, regions)
        batch = self.tokenizer(
            expanded, padding=True, padding_side=padding_side, return_tensors="pt"
        )
        self._check_token_counts(batch["input_ids"], len(images), sampled, len(regions))
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
        if regions:
            data["region_masks"] = torch.stack([self.preprocess_mask(r.mask) for r in regions])
            data["region_image_index"] = torch.tensor(region_sources, dtype=torch.long)
        return BatchFeature(data)

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
        self, texts: list[str], sampled: list[SampledVideo], regions: list[RegionInput]
    ) -> tuple[list[str], list[int]]:
        image_count = video_count = region_count = 0
        sources: list[int] = []
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
                    pieces.append(REGION_TOKEN)
            pieces.append(text[position:])
            out.append("".join(pieces))
        bad = [s for s in sources if not 0 <= s < image_count]
        if bad:
            raise ValueError(
                f"regions refer to images {bad}, but only {image_count} image(s) were given"
            )
        return out, sources

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


__all__ = [
    "ChatTemplate",
    "RegionInput",
    "RenderedPrompt",
    "SampledVideo",
    "Turn",
    "VideoInput",
    "VitronProcessor",
    "VitronTokenIds",
    "add_vitron_tokens",
    "bind_token_ids",
    "build_tiny_tokenizer",
    "configure_generation",
    "prepare_model_for_tokenizer",
    "vitron_token_ids",
]
