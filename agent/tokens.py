"""The Vitron tokens in a tokenizer: placeholders (``<image>``, ``<video>``, ``<region>``), grammar
tags and signal tokens added as single tokens, their ids bound into the model's config and
generation settings, and the small byte-level tokenizer of the ``tiny`` model, built in code.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    AddedToken,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)

from vitron.agent.configuration import VitronConfig
from vitron.agent.invocation import GRAMMAR_TAGS, SIGNAL_TOKENS

if TYPE_CHECKING:
    from vitron.agent.modeling import VitronForCausalLM

logger = logging.getLogger(__name__)

IMAGE_TOKEN, VIDEO_TOKEN, REGION_TOKEN = "<image>", "<video>", "<region>"
PLACEHOLDER_TOKENS: tuple[str, ...] = (IMAGE_TOKEN, VIDEO_TOKEN, REGION_TOKEN)


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


def build_bpe_tokenizer(
    corpus: Iterable[str],
    *,
    vocab_size: int,
    model_max_length: int = 4096,
    vitron_tokens: bool = True,
) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer learned from ``corpus`` in code (no download); deterministic.

    Byte-level: every string encodes (unknown characters fall back to bytes). The same corpus
    always gives the same vocabulary. BOS is prepended to every encoded text; the Vitron tokens
    are added unless ``vitron_tokens`` is false.
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
    backend.train_from_iterator(list(corpus), trainer=trainer)
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
        model_max_length=model_max_length,
    )
    if vitron_tokens:
        add_vitron_tokens(tokenizer)
    return tokenizer


def build_tiny_tokenizer(
    *, vocab_size: int = 512, vitron_tokens: bool = True
) -> PreTrainedTokenizerFast:
    """The ``tiny`` profile's tokenizer: BPE merges learned from a fixed built-in corpus."""
    lines = [line for line in _TINY_CORPUS.splitlines() if line]
    return build_bpe_tokenizer(lines, vocab_size=vocab_size, vitron_tokens=vitron_tokens)


__all__ = [
    "IMAGE_TOKEN",
    "PLACEHOLDER_TOKENS",
    "REGION_TOKEN",
    "VIDEO_TOKEN",
    "VitronTokenIds",
    "add_vitron_tokens",
    "bind_token_ids",
    "build_bpe_tokenizer",
    "build_tiny_tokenizer",
    "configure_generation",
    "prepare_model_for_tokenizer",
    "vitron_token_ids",
]
