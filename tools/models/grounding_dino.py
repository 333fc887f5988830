"""Grounding DINO through transformers (``GroundingDinoForObjectDetection``).

This is the default ``format = "transformers"``; ``format = "idea"`` runs the original IDEA-Research
model through groundingdino-py instead (:mod:`vitron.tools.models.grounding_dino_idea`), with the
same ``detect`` and results. :class:`GroundingEngine` turns phrases into boxes normalised to [0, 1]
(``x1, y1, x2, y2``, top-left origin) with a label and score each.
"""

from __future__ import annotations

import string
import threading
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any

import torch
from PIL import Image
from transformers import (
    AutoProcessor,
    BertConfig,
    BertTokenizerFast,
    GroundingDinoConfig,
    GroundingDinoForObjectDetection,
    GroundingDinoImageProcessor,
    GroundingDinoProcessor,
    SwinConfig,
)

from vitron.tools.checkpoints import load_pretrained
from vitron.tools.errors import VitronToolError
from vitron.tools.profiles import ComponentSpec
from vitron.tools.registry import LoadContext, component_loader


def tiny_tokenizer() -> BertTokenizerFast:
    """A character-level WordPiece tokenizer built in memory: covers any lower-case English text."""
    chars = string.ascii_lowercase + string.digits
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *string.punctuation]
    tokens += [f"##{c}" for c in chars]
    return BertTokenizerFast(vocab={t: i for i, t in enumerate(tokens)}, do_lower_case=True)


def build_tiny_grounding_dino(
    seed: int = 0,
) -> tuple[GroundingDinoForObjectDetection, GroundingDinoProcessor]:
    """A 1.3 M-parameter Grounding DINO with random weights and a 224 px processor."""
    tokenizer = tiny_tokenizer()
    config = GroundingDinoConfig(
        backbone_config=SwinConfig(
            embed_dim=32, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2], window_size=7,
            out_indices=[2, 3, 4], image_size=224,
        ),
        text_config=BertConfig(
            hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37,
            vocab_size=len(tokenizer),
        ),
        d_model=32, encoder_layers=1, decoder_layers=2,  # one decoder layer breaks tied box heads
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
        decoder_ffn_dim=32, num_queries=20, num_feature_levels=3, use_timm_backbone=False,
    )  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GroundingDinoForObjectDetection(config)
    image_processor = GroundingDinoImageProcessor(size={"shortest_edge": 224, "longest_edge": 320})
    processor = GroundingDinoProcessor(image_processor=image_processor, tokenizer=tokenizer)
    return model.eval(), processor


def prompt_text(phrases: list[str]) -> str:
    """The text prompt Grounding DINO reads: lower-case phrases, each ending in a period."""
    return " ".join(p.strip().rstrip(".").lower() + "." for p in phrases if p.strip())


def fit_phrases(
    tokenizer: Any, phrases: list[str], max_tokens: int
) -> tuple[list[str], str | None]:
    """The phrases that fit a text encoder of ``max_tokens`` positions, and a note saying what was
    left out (``None`` when everything fits).

    Whole phrases are kept in order while the prompt (with its special tokens) fits; when even the
    first phrase does not, it is cut at a token boundary. Every Grounding DINO text target (``ground``,
    ``segment_image``, ``track_video``, the edit tools) goes through here, because a longer prompt
    does not fit the model's position table and crashes it.
    """

    def length(text: str) -> int:
        return len(tokenizer(text)["input_ids"])

    phrases = [p for p in phrases if p.strip()]
    if not phrases or length(prompt_text(phrases)) <= max_tokens:
        return phrases, None
    kept: list[str] = []
    for phrase in phrases:
        if length(prompt_text([*kept, phrase])) > max_tokens:
            break
        kept.append(phrase)
    if not kept:
        kept = [_cut_to_tokens(tokenizer, phrases[0], max_tokens)]
        what = f"only its first {len(kept[0])} characters ({kept[0]!r}) were used"
    else:
        what = f"only its first {len(kept)} of {len(phrases)} phrases were used"
    note = (
        f"the text target is longer than Grounding DINO reads ({max_tokens} tokens); {what}. "
        "Name the target in fewer words for a better result."
    )
    return kept, note


def _cut_to_tokens(tokenizer: Any, phrase: str, max_tokens: int) -> str:
    """The longest start of ``phrase`` whose prompt fits ``max_tokens`` (found by bisection over
    characters, which works for every tokenizer, fast or not)."""
    low, high = 0, len(phrase)
    while low < high:
        middle = (low + high + 1) // 2
        if len(tokenizer(prompt_text([phrase[:middle]]) or ".")["input_ids"]) <= max_tokens:
            low = middle
        else:
            high = middle - 1
    return phrase[:low].strip() or phrase[:1]


def limit_phrases(engine: Any, phrases: list[str]) -> tuple[list[str], str | None]:
    """:func:`fit_phrases` with an engine's own tokenizer and text length (``tokenizer`` and
    ``max_text_tokens`` attributes); engines without them get the phrases unchanged."""
    tokenizer = getattr(engine, "tokenizer", None)
    max_tokens = getattr(engine, "max_text_tokens", None)
    if tokenizer is None or not max_tokens:
        return phrases, None
    return fit_phrases(tokenizer, phrases, max_tokens)


@dataclass(frozen=True)
class Detection:
    box: list[float]
    """``[x1, y1, x2, y2]`` as fractions of width and height, clipped to the image."""
    label: str
    score: float


class GroundingEngine:
    """A loaded Grounding DINO with its processor."""

    def __init__(self, model: GroundingDinoForObjectDetection, processor: GroundingDinoProcessor):
        self.model = model
        self.processor = processor
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        return sum(p.numel() * p.element_size() for p in self.model.parameters())

    @property
    def tokenizer(self) -> Any:
        return self.processor.tokenizer

    @property
    def max_text_tokens(self) -> int:
        """Text positions the model has (``max_text_len``, 256 for the released checkpoints)."""
        limits = [self.model.config.max_text_len, getattr(self.tokenizer, "model_max_length", 0)]
        return min(n for n in limits if isinstance(n, int) and 0 < n < 1_000_000)

    def detect(
        self,
        image: Image.Image,
        phrases: list[str],
        *,
        box_threshold: float = 0.35,
        text_threshold: float = 0.25,
        max_boxes: int = 10,
    ) -> list[Detection]:
        """Boxes for ``phrases`` in ``image``, best first, at most ``max_boxes``.

        Phrases beyond the model's text length are left out (:func:`limit_phrases`; callers that
        want to tell the user call it first)."""
        phrases = limit_phrases(self, phrases)[0]
        text = prompt_text(phrases)
        inputs = self.processor(images=image, text=text, return_tensors="pt")
        param = next(self.model.parameters())
        inputs = {
            k: v.to(param.device, dtype=param.dtype if v.is_floating_point() else v.dtype)
            for k, v in inputs.items()
        }
        with self._lock, torch.inference_mode():
            outputs = self.model(**inputs)
        width, height = image.size
        result = self.processor.post_process_grounded_object_detection(
            outputs,
            inputs["input_ids"],
            threshold=box_threshold,
            text_threshold=text_threshold,
            target_sizes=[(height, width)],
        )[0]
        if len(result["scores"]) == 0:  # the library mislabels an empty result; nothing to read
            return []
        detections = []
        for box, score, label in zip(
            result["boxes"].float().tolist(),
            result["scores"].float().tolist(),
            result["text_labels"],
            strict=True,
        ):
            x1, y1, x2, y2 = box
            clipped = [x1 / width, y1 / height, x2 / width, y2 / height]
            clipped = [round(min(max(v, 0.0), 1.0), 4) for v in clipped]
            if clipped[2] > clipped[0] and clipped[3] > clipped[1]:
                detections.append(Detection(clipped, closest_phrase(label, phrases), score))
        detections.sort(key=lambda d: d.score, reverse=True)
        return detections[:max_boxes]


def closest_phrase(label: str, phrases: list[str]) -> str:
    """Map the model's decoded label (word pieces, special tokens) onto the phrase it came from."""
    cleaned = " ".join(w for w in label.split() if not (w.startswith("[") and w.endswith("]")))
    cleaned = cleaned.strip(" .")
    if not phrases:
        return cleaned
    best = max(phrases, key=lambda p: SequenceMatcher(None, cleaned, p.lower().strip(" .")).ratio())
    return best.strip(" .")


FORMATS = ("transformers", "idea")
"""Checkpoint formats of the ``grounding_dino`` component (the profile's ``format``)."""


@component_loader("grounding_dino")
def load_grounding_dino(spec: ComponentSpec, context: LoadContext) -> Any:
    """A ``GroundingEngine`` (transformers) or ``IdeaGroundingEngine`` (``format = "idea"``)."""
    fmt = spec.options.get("format", "transformers")
    if fmt == "idea":  # imports groundingdino-py (5-7 s) only for profiles that ask for it
        from vitron.tools.models.grounding_dino_idea import load_idea_grounding_dino

        return load_idea_grounding_dino(spec, context)
    if fmt != "transformers":
        raise VitronToolError(
            f"component {spec.name!r} of profile {spec.profile!r} has format = {fmt!r}; "
            f"grounding_dino reads {' or '.join(repr(f) for f in FORMATS)}"
        )
    if spec.is_tiny:
        model, processor = build_tiny_grounding_dino(int(spec.options.get("seed", 0)))
    else:
        model = load_pretrained(spec, GroundingDinoForObjectDetection.from_pretrained)
        processor = load_pretrained(spec, AutoProcessor.from_pretrained)
    return GroundingEngine(model.to(device=context.device, dtype=context.dtype).eval(), processor)
