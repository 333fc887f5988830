"""The three training stages as exact sets of trainable parameters (DESIGN §7).

=========  ================================================================================
stage      trains (everything else frozen)
=========  ================================================================================
base       every weight of the LLM (embeddings and output head included), the projector, the
           region encoder and the video encoder glue: the backbone's own language training, which
           vitron-7b inherits from Vicuna and a backbone built from nothing (``nano``) must do
           first; not one of the paper's three stages, and never needed for a pretrained LLM.
           With ``train_vision_tower`` the vision tower too (a tower built here)
align      the projector, the region encoder and the video encoder's temporal/pooling glue
           (the LLM and the vision tower frozen)
invoke     LoRA on the LLM's attention projections, the embedding and output rows of the
           Vitron tokens (grammar tags, signal tokens), the signal heads, the backends' signal
           projectors, and the synergy module when synergy is on; with ``signals_only``
           (:func:`freeze_planner`) the projectors alone
ground     LoRA as in ``invoke``, the Vitron token rows, the projector, the region encoder, the
           video encoder glue, and the synergy module when synergy is on
=========  ================================================================================

The reference code's LoRA stage builds its adapters and then freezes every parameter of the
model, its own LoRA weights included; :func:`prepare_stage` switches trainable parts on *after*
wrapping, and :func:`check_trainable` refuses a model whose trainable set is not the stage's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from torch import nn

from vitron.agent.modeling import VitronForCausalLM
from vitron.agent.training.config import LoraSettings

ALIGN_MODULES = ("projector", "region_encoder", "video_encoder")
BASE_MODULES = ("language_model", "projector", "region_encoder", "video_encoder")
GROUND_MODULES = ("projector", "region_encoder", "video_encoder")
LORA_PARAMETER = re.compile(r"\.lora_[AB]\.|\.trainable_tokens_delta\.")


@dataclass
class StageModel:
    """The model a stage optimises: ``model`` is what runs forward (a ``PeftModel`` in the LoRA
    stages), ``vitron`` the ``VitronForCausalLM`` inside it."""

    model: nn.Module
    vitron: VitronForCausalLM
    stage: str
    lora: bool


def vitron_token_ids(vitron: VitronForCausalLM, tokenizer: Any) -> list[int]:
    """Ids of the grammar tags and signal tokens (the rows new to the base vocabulary)."""
    from vitron.agent.tokens import vitron_token_ids as lookup

    ids = lookup(tokenizer)
    return sorted({*ids.tags.values(), *ids.signals.values()})


def prepare_stage(
    vitron: VitronForCausalLM,
    stage: str,
    *,
    tokenizer: Any,
    lora: LoraSettings | None = None,
    synergy: bool = True,
    vision: bool = False,
) -> StageModel:
    """Freeze and wrap ``vitron`` for ``stage``; the trainable set is exactly the stage's.

    ``vision`` (``base`` only) trains the vision tower too: for a tower built here (``nano``'s
    small CLIP), ``base`` stands in for the pretraining a released tower already had."""
    if stage not in ("base", "align", "invoke", "ground"):
        raise ValueError(f"unknown stage {stage!r}; stages: base, align, invoke, ground")
    if vision and stage != "base":
        raise ValueError(f"only the base stage may train the vision tower, not {stage!r}")
    vitron.requires_grad_(False)
    vitron.synergy.enabled = synergy
    if stage in ("base", "align"):
        for name in BASE_MODULES if stage == "base" else ALIGN_MODULES:
            getattr(vitron, name).requires_grad_(True)
        vitron.image_encoder.requires_grad_(vision)
        vitron.synergy.requires_grad_(synergy and stage == "base")
        return StageModel(vitron, vitron, stage, lora=False)

    from peft import LoraConfig, get_peft_model

    settings = lora or LoraSettings()
    rows = vitron_token_ids(vitron, tokenizer)
    targets = {"embed_tokens": rows}
    if not vitron.config.text_config.tie_word_embeddings:
        targets["lm_head"] = rows
    config = LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=rf".*language_model\..*\.({'|'.join(settings.targets)})",
        trainable_token_indices=targets,
    )
    model = get_peft_model(vitron, config)
    # Switch on after wrapping (the reference froze everything after adding LoRA, LoRA included).
    for name, parameter in model.named_parameters():
        if LORA_PARAMETER.search(name):
            parameter.requires_grad_(True)
    extra = ("signal_heads",) if stage == "invoke" else GROUND_MODULES
    for name in extra:
        getattr(vitron, name).requires_grad_(True)
    vitron.synergy.requires_grad_(synergy)
    return StageModel(model, vitron, stage, lora=True)


def freeze_planner(vitron: VitronForCausalLM) -> StageModel:
    """Stage 2 with ``signals_only``: every weight of ``vitron`` frozen and synergy off, so only
    the backends' signal projectors (outside the model) train."""
    vitron.requires_grad_(False)
    vitron.synergy.enabled = False
    return StageModel(vitron, vitron, "invoke", lora=False)


def expected_trainable(
    stage: str, names: Iterable[str], *, synergy: bool, vision: bool = False
) -> set[str]:
    """The parameter names (of ``model.named_parameters()``) ``stage`` must train (``vision``:
    the vision tower too, see :func:`prepare_stage`)."""
    owners = {
        "base": BASE_MODULES,
        "align": ALIGN_MODULES,
        "invoke": ("signal_heads",),
        "ground": GROUND_MODULES,
    }[stage]
    wanted = set()
    for name in names:
        parts = name.split(".")
        if stage != "align" and LORA_PARAMETER.search(name):
            wanted.add(name)
        elif any(o in parts for o in owners) and "lora_" not in name:
            if "image_encoder" not in parts and (stage == "base" or "language_model" not in parts):
                wanted.add(name)
        elif (stage != "align" and synergy and "synergy" in parts) or (
            vision and "image_encoder" in parts
        ):
            wanted.add(name)
    return wanted


def check_trainable(stage_model: StageModel, *, synergy: bool, vision: bool = False) -> list[str]:
    """Names of the trainable parameters; ``RuntimeError`` when they differ from the stage's
    set (listing what is wrongly frozen and wrongly trainable)."""
    named = dict(stage_model.model.named_parameters())
    have = {n for n, p in named.items() if p.requires_grad}
    want = expected_trainable(stage_model.stage, named, synergy=synergy, vision=vision)
    if have != want:
        frozen = sorted(want - have)[:5]
        loose = sorted(have - want)[:5]
        raise RuntimeError(
            f"stage {stage_model.stage!r}: trainable parameters differ from the stage's set; "
            f"wrongly frozen: {frozen}; wrongly trainable: {loose}"
        )
    return sorted(have)
