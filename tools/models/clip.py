"""CLIP through transformers (``CLIPModel``): image and text features in one embedding space.

:class:`ClipEngine` turns images and texts into L2-normalised features whose dot product is their
cosine similarity, and caches image features per key (a media handle), since a session's media are
ranked again and again against new queries. The ``tiny`` build has random weights and a byte-level
tokenizer made in memory, so nothing is downloaded.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import torch
from PIL import Image
from transformers import (
    AutoProcessor,
    CLIPConfig,
    CLIPImageProcessor,
    CLIPModel,
    CLIPProcessor,
    CLIPTokenizer,
)
from transformers.convert_slow_tokenizer import bytes_to_unicode

from vitron.tools.checkpoints import load_pretrained
from vitron.tools.profiles import ComponentSpec
from vitron.tools.registry import LoadContext, component_loader

TEXT_LENGTH = 77
"""CLIP's text context: longer instructions are cut to this many tokens."""


def tiny_tokenizer() -> CLIPTokenizer:
    """A byte-level BPE tokenizer with no merges: every byte is a token, so any text encodes."""
    symbols = list(bytes_to_unicode().values())
    tokens = ["<|startoftext|>", "<|endoftext|>", *symbols, *(s + "</w>" for s in symbols)]
    return CLIPTokenizer(
        vocab={t: i for i, t in enumerate(tokens)}, merges=[], model_max_length=TEXT_LENGTH
    )


def build_tiny_clip(seed: int = 0) -> tuple[CLIPModel, CLIPProcessor]:
    """A CLIP of about 0.2 M parameters with random weights: 64 px images, 2-layer towers."""
    tokenizer = tiny_tokenizer()
    config = CLIPConfig(
        text_config=dict(
            hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
            vocab_size=len(tokenizer), max_position_embeddings=TEXT_LENGTH,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        ),
        vision_config=dict(
            hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
            image_size=64, patch_size=16,
        ),
        projection_dim=32,
    )  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CLIPModel(config)
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": 64}, crop_size={"height": 64, "width": 64}
    )
    return model.eval(), CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)


class ClipEngine:
    """A loaded CLIP with its processor and an LRU cache of image features per key."""

    def __init__(self, model: CLIPModel, processor: CLIPProcessor, cache_size: int = 1024) -> None:
        self.model = model
        self.processor = processor
        self.cache_size = cache_size
        self._features: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._lock = threading.Lock()
        self.images_encoded = 0
        """How many images this engine has run through the vision tower (tests, benchmarks)."""

    @property
    def nbytes(self) -> int:
        return sum(p.numel() * p.element_size() for p in self.model.parameters())

    def text_features(self, text: str) -> torch.Tensor:
        """The normalised ``(dim,)`` feature of ``text`` (cut to CLIP's 77 tokens)."""
        inputs = self.processor.tokenizer(
            [text], padding=True, truncation=True, max_length=TEXT_LENGTH, return_tensors="pt"
        )
        with torch.inference_mode():
            features = self.model.get_text_features(**inputs.to(self._device))
        return _normalise(_pooled(features))[0].float().cpu()

    def image_features(self, images: list[Image.Image]) -> torch.Tensor:
        """Normalised ``(N, dim)`` features of RGB images, uncached."""
        inputs = self.processor.image_processor(
            images=[image.convert("RGB") for image in images], return_tensors="pt"
        )
        param = next(self.model.parameters())
        pixels = inputs["pixel_values"].to(param.device, dtype=param.dtype)
        with torch.inference_mode():
            features = self.model.get_image_features(pixel_values=pixels)
        self.images_encoded += len(images)
        return _normalise(_pooled(features)).float().cpu()

    def cached(self, key: str) -> torch.Tensor | None:
        """The feature stored under ``key``, if any (refreshing its place in the LRU order)."""
        with self._lock:
            feature = self._features.get(key)
            if feature is not None:
                self._features.move_to_end(key)
            return feature

    def remember(self, key: str, feature: torch.Tensor) -> None:
        with self._lock:
            self._features[key] = feature
            self._features.move_to_end(key)
            while len(self._features) > self.cache_size:
                self._features.popitem(last=False)

    @property
    def logit_scale(self) -> float:
        """CLIP's learned inverse temperature for turning similarities into a softmax."""
        return float(self.model.logit_scale.detach().exp())

    @property
    def _device(self) -> torch.device:
        return next(self.model.parameters()).device


def pooled_video_feature(frame_features: torch.Tensor) -> torch.Tensor:
    """A video's feature: the mean of its frames' normalised features, normalised again."""
    return _normalise(frame_features.mean(dim=0, keepdim=True))[0]


def _pooled(output: torch.Tensor | object) -> torch.Tensor:
    """``get_*_features`` return the projected features: a tensor in older transformers, an
    output whose ``pooler_output`` holds them in transformers 5."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output  # type: ignore[attr-defined]


def _normalise(features: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(features.float(), dim=-1)


@component_loader("clip")
def load_clip(spec: ComponentSpec, context: LoadContext) -> ClipEngine:
    if spec.is_tiny:
        model, processor = build_tiny_clip(int(spec.options.get("seed", 0)))
    else:
        model = load_pretrained(spec, CLIPModel.from_pretrained)
        processor = load_pretrained(spec, AutoProcessor.from_pretrained)
    model = model.to(device=context.device, dtype=context.dtype).eval()
    return ClipEngine(model, processor, cache_size=int(spec.options.get("feature_cache", 1024)))
