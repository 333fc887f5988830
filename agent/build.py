"""Factories: sizes and checkpoints in, ready ``(model, processor)`` pairs out.

- :func:`build_tiny_vitron`: random weights from small configs and a tokenizer built in code
  (the ``tiny`` profile; no files, no network);
- :func:`build_vitron`: a pretrained causal LM + CLIP-type tower (hub ids or local paths) with
  fresh glue modules;
- :func:`load_vitron`: a saved ``VitronForCausalLM`` (``save_pretrained`` layout), optionally with
  a PEFT LoRA adapter, merged or not;
- :func:`add_lora`: wrap the backbone's attention projections in LoRA for fine-tuning;
- :func:`~vitron.agent.released.load_released_vitron`: the released Vitron checkpoints.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase

from vitron.agent.configuration import VitronConfig
from vitron.agent.modeling import VitronForCausalLM
from vitron.agent.modeling.image_encoder import load_vision_tower
from vitron.agent.objects import ObjectFinderSettings, sam_object_finder, save_object_finder
from vitron.agent.processing import VitronProcessor
from vitron.agent.released import load_released_vitron
from vitron.agent.shared_tower import TOWER_FILE, load_with_tower, shared_tower
from vitron.agent.tokens import (
    bind_token_ids,
    build_tiny_tokenizer,
    configure_generation,
    prepare_model_for_tokenizer,
)

logger = logging.getLogger(__name__)

TINY_TEXT_CONFIG: dict[str, Any] = {
    "model_type": "llama",
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 2048,
    "tie_word_embeddings": False,
}
"""A 2-layer Llama, hidden 64."""

TINY_VISION_CONFIG: dict[str, Any] = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "image_size": 64,
    "patch_size": 8,
}
"""A 2-layer CLIP vision tower on 64 x 64 images with 8 x 8 patches: 64 tokens per image."""

TINY_GLUE: dict[str, Any] = {
    "video_num_frames": 8,
    "video_tokens_per_frame": 4,
    "video_max_frames": 32,
    "signal_spaces": {"sam": 64, "diffusion": 32},
    "synergy_specific_dim": 16,
    "synergy_invariant_dim": 16,
    "synergy_discriminator_hidden_size": 32,
}

LORA_TARGETS: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")


def tiny_config(vocab_size: int, **overrides: Any) -> VitronConfig:
    """The tiny profile's config for a tokenizer of ``vocab_size`` tokens; ``overrides`` replace
    glue fields (e.g. ``video_tokens_per_frame=1``)."""
    text = {**TINY_TEXT_CONFIG, "vocab_size": vocab_size, **overrides.pop("text_config", {})}
    vision = {**TINY_VISION_CONFIG, **overrides.pop("vision_config", {})}
    return VitronConfig(text_config=text, vision_config=vision, **{**TINY_GLUE, **overrides})


def build_tiny_vitron(
    seed: int = 0, **config_overrides: Any
) -> tuple[VitronForCausalLM, VitronProcessor]:
    """The ``tiny`` profile: a random-weight Vitron LLM (about 0.2 M parameters) and its processor.

    Deterministic for a given ``seed``; needs no files and no network.
    """
    tokenizer = build_tiny_tokenizer()
    config = tiny_config(len(tokenizer), **config_overrides)
    bind_token_ids(config, tokenizer)
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = VitronForCausalLM(config)
    finally:
        torch.random.set_rng_state(generator_state)
    model.eval()
    configure_generation(model, tokenizer)
    return model, VitronProcessor.from_config(tokenizer, config)


def build_vitron(
    text_model: str | Path,
    vision_model: str | Path,
    *,
    tokenizer: str | Path | PreTrainedTokenizerBase | None = None,
    dtype: torch.dtype | str | None = None,
    device: str | torch.device | None = None,
    **config_overrides: Any,
) -> tuple[VitronForCausalLM, VitronProcessor]:
    """A Vitron LLM from a pretrained causal LM and a pretrained CLIP-type tower (hub ids or local
    directories); projector, region encoder, signal heads and synergy start from random weights.
    """
    language_model = AutoModelForCausalLM.from_pretrained(
        text_model, dtype=_dtype(dtype) if dtype else None
    )
    vision_tower = load_vision_tower(vision_model, _dtype(dtype) if dtype else None)
    if not isinstance(tokenizer, PreTrainedTokenizerBase):
        tokenizer = AutoTokenizer.from_pretrained(tokenizer or text_model)
    config = VitronConfig(
        text_config=language_model.config, vision_config=vision_tower.config, **config_overrides
    )
    model = VitronForCausalLM(config, language_model=language_model, vision_tower=vision_tower)
    prepare_model_for_tokenizer(model, tokenizer)
    if dtype is not None:
        model.to(dtype=_dtype(dtype))
    if device is not None:
        model.to(device)
    return model.eval(), VitronProcessor.from_config(tokenizer, model.config)


def load_vitron(
    path_or_id: str | Path,
    dtype: torch.dtype | str | None = None,
    device: str | torch.device | None = None,
    lora: str | Path | None = None,
    merge: bool = False,
) -> tuple[Any, VitronProcessor]:
    """Load a saved Vitron LLM and its processor (both written to ``path_or_id``).

    A folder that names its image tower instead of holding it (:mod:`vitron.agent.shared_tower`)
    gets that tower; one that names a segmenter (``object_finder.json``) reads objects through it
    (:mod:`vitron.agent.objects`). With ``lora`` (a PEFT adapter directory), the adapter is applied; ``merge=True`` folds it
    into the weights and returns a plain ``VitronForCausalLM``, otherwise a ``PeftModel``.
    """
    dtype = _dtype(dtype) if dtype else None
    tower = shared_tower(path_or_id, dtype)
    if tower is None:
        model = VitronForCausalLM.from_pretrained(path_or_id, dtype=dtype)
    else:
        model = load_with_tower(VitronForCausalLM, path_or_id, tower, dtype=dtype)
    if lora is not None:
        from peft import PeftModel

        logger.info("applying LoRA adapter %s", lora)
        model = PeftModel.from_pretrained(model, str(lora))
        if merge:
            model = model.merge_and_unload()
    if device is not None:
        model.to(device)
    model.eval()
    processor = VitronProcessor.from_pretrained(path_or_id)
    settings = ObjectFinderSettings.read(path_or_id) if Path(path_or_id).is_dir() else None
    if settings is not None:  # the planner reads objects: the segmenter it was trained with
        processor.object_finder = sam_object_finder(settings, path_or_id)
    return model, processor


def save_vitron(
    model: VitronForCausalLM, processor: VitronProcessor, directory: str | Path
) -> None:
    """Write model weights (safetensors), config and processor so :func:`load_vitron` reads them.
    The weights hold the image tower, so a stale note naming a shared one is removed; a processor
    that reads objects names its segmenter (:mod:`vitron.agent.objects`)."""
    model.save_pretrained(directory)
    (Path(directory) / TOWER_FILE).unlink(missing_ok=True)
    processor.save_pretrained(directory)
    save_object_finder(processor.object_finder, directory)


def add_lora(
    model: VitronForCausalLM,
    *,
    r: int = 8,
    alpha: int = 16,
    dropout: float = 0.0,
    targets: Sequence[str] = LORA_TARGETS,
) -> Any:
    """Wrap the backbone's ``targets`` projections in LoRA adapters (vision tower and glue
    modules untouched); returns a ``peft.PeftModel``."""
    from peft import LoraConfig, get_peft_model

    pattern = rf".*language_model\..*\.({'|'.join(targets)})"
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=pattern)
    return get_peft_model(model, config)


def _dtype(dtype: torch.dtype | str) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    resolved = getattr(torch, str(dtype), None)
    if not isinstance(resolved, torch.dtype):
        raise ValueError(f"unknown dtype {dtype!r}; use e.g. float32, bfloat16, float16")
    return resolved


__all__ = [
    "LORA_TARGETS",
    "TINY_GLUE",
    "TINY_TEXT_CONFIG",
    "TINY_VISION_CONFIG",
    "add_lora",
    "build_tiny_vitron",
    "build_vitron",
    "configure_generation",
    "load_released_vitron",
    "load_vitron",
    "prepare_model_for_tokenizer",
    "save_vitron",
    "tiny_config",
]
