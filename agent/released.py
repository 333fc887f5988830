"""Loader for the released Vitron checkpoints (``Vitron/vitron-base`` + ``Vitron/vitron-lora``).

The release follows the Video-LLaVA layout (read from the public SkyworkAI/Vitron code):

- ``vitron-base``: a ``LlavaLlamaForCausalLM`` checkpoint, ``config.json`` with Llama fields plus
  ``mm_image_tower``, ``mm_video_tower``, ``mm_projector_type``, ``mm_hidden_size``,
  ``mm_vision_select_layer``…, weights in ``pytorch_model*.bin`` (names ``model.embed_tokens.*``,
  ``model.layers.*``, ``model.norm.*``, ``lm_head.*``, maybe ``model.mm_projector.*``);
- ``vitron-lora``: a PEFT adapter (``adapter_config.json``, ``adapter_model.bin``; names
  ``base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight``…), its own ``config.json``,
  and ``non_lora_trainables.bin`` holding the projector (``…model.mm_projector.{0,2}.*``) and the
  region extractor (``…model.region_extractor.region_linear.layers.{0,1,2}.*``,
  ``…model.region_extractor.loc_encoder.loc_encoder.{0,2}.*``).

Weights are renamed into :class:`VitronForCausalLM` through :data:`RENAMES`, LoRA deltas are
merged (``W += alpha / r * B @ A``), and ``.bin`` files load with ``weights_only=True``.

Known differences, reported once at WARNING (what is random or replaced, and what it means for
quality) rather than hidden: the LanguageBind towers are separate
downloads (pass a CLIP-compatible ``vision_tower``; LanguageBind's video tower has temporal layers
this model does not have, so videos go through the image tower); the reference location encoder
takes boxes in pixels of a 224 x 224 frame, ours normalised boxes, so its first layer is scaled
by 224 on load; the reference builds region masks from boxes only (and indexes them
``[x, y]``), so its region weights were trained on boxes, not sketches.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModel, AutoTokenizer, CLIPVisionConfig, PreTrainedModel

from vitron.agent.configuration import VitronConfig
from vitron.agent.modeling import VitronForCausalLM
from vitron.agent.modeling.image_encoder import load_vision_tower
from vitron.agent.processing import VitronProcessor
from vitron.agent.tokens import prepare_model_for_tokenizer

logger = logging.getLogger(__name__)

RENAMES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), target)
    for pattern, target in (
        (r"^model\.mm_projector\.(\d+)\.(weight|bias)$", r"projector.layers.\1.\2"),
        (
            r"^model\.region_extractor\.region_linear\.layers\.(\d+)\.(weight|bias)$",
            r"region_encoder.feature_mlp.layers.\1.\2",
        ),
        (
            r"^model\.region_extractor\.loc_encoder\.loc_encoder\.(\d+)\.(weight|bias)$",
            r"region_encoder.location_mlp.\1.\2",
        ),
        (r"^model\.(embed_tokens|layers|norm)\.(.+)$", r"language_model.model.\1.\2"),
        (r"^lm_head\.(weight|bias)$", r"language_model.lm_head.\1"),
    )
)
"""Released weight name -> ``VitronForCausalLM`` name (after PEFT prefixes are stripped)."""

SKIPPED = re.compile(r"^model\.(image_tower|video_tower|vision_tower)\.")
"""Tower weights: loaded from their own checkpoints, not from the LLM files."""

PEFT_PREFIX = re.compile(r"^(base_model\.model\.)+")
RELEASED_REGION_FRAME = 224
"""The reference region extractor's box coordinates are pixels of a 224 x 224 frame."""
LOCATION_FIRST_LAYER = "region_encoder.location_mlp.0.weight"

_LLAVA_ONLY_KEYS = {
    "architectures",
    "model_type",
    "_name_or_path",
    "transformers_version",
    "image_tower",
    "video_tower",
    "use_mm_proj",
    "image_aspect_ratio",
    "image_grid_pinpoints",
    "group_by_modality_length",
}
_LLAVA_ONLY_PREFIXES = ("mm_", "tune_", "freeze_", "pretrain_", "tokenizer_")


def map_released_name(name: str) -> str | None:
    """A released weight name -> our name, or ``None`` when it has no counterpart here."""
    name = PEFT_PREFIX.sub("", name)
    for pattern, target in RENAMES:
        if pattern.match(name):
            return pattern.sub(target, name)
    return None


def read_state_dict(directory: Path, stem: str = "pytorch_model") -> dict[str, torch.Tensor]:
    """All tensors of a checkpoint directory: sharded or single, safetensors or ``.bin``.

    ``.bin`` files are read with ``torch.load(weights_only=True)``: no pickled code runs.
    """
    candidates = [
        directory / "model.safetensors.index.json",
        directory / f"{stem}.bin.index.json",
        directory / "model.safetensors",
        directory / f"{stem}.bin",
    ]
    for path in candidates:
        if not path.is_file():
            continue
        if path.name.endswith(".index.json"):
            files = sorted(set(json.loads(path.read_text())["weight_map"].values()))
            state: dict[str, torch.Tensor] = {}
            for file in files:
                state.update(_read_file(directory / file))
            return state
        return _read_file(path)
    raise FileNotFoundError(
        f"no weights in {directory}: expected one of {', '.join(p.name for p in candidates)}"
    )


def _read_file(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file {path} is missing")
    if path.suffix == ".safetensors":
        return load_file(str(path))
    return torch.load(path, map_location="cpu", weights_only=True)


def released_config(
    base: dict[str, Any],
    vision_config: CLIPVisionConfig,
    vocab_size: int,
    **overrides: Any,
) -> VitronConfig:
    """A :class:`VitronConfig` from a Video-LLaVA/Vitron ``config.json`` dict."""
    missing = [k for k in ("mm_projector_type", "mm_hidden_size") if k not in base]
    if missing:
        raise ValueError(f"not a Video-LLaVA/Vitron config: missing {missing}")
    if int(base["mm_hidden_size"]) != vision_config.hidden_size:
        raise ValueError(
            f"config.json has mm_hidden_size={base['mm_hidden_size']} but the vision tower's "
            f"hidden size is {vision_config.hidden_size}"
        )
    text = {
        k: v
        for k, v in base.items()
        if k not in _LLAVA_ONLY_KEYS and not k.startswith(_LLAVA_ONLY_PREFIXES)
    }
    text["vocab_size"] = vocab_size
    text_config = AutoConfig.for_model("llama", **text)
    select = base.get("mm_vision_select_feature", "patch")
    return VitronConfig(
        text_config=text_config,
        vision_config=vision_config,
        vision_feature_layer=int(base.get("mm_vision_select_layer", -2)),
        vision_feature_select="patch" if select == "patch" else "cls_patch",
        projector_type=base["mm_projector_type"],
        **overrides,
    )


def merge_lora(
    state: dict[str, torch.Tensor], adapter: dict[str, torch.Tensor], adapter_config: dict[str, Any]
) -> int:
    """Fold LoRA pairs into ``state`` (our names) in place; returns the number of merged weights.

    ``W += s * B @ A`` with ``s = lora_alpha / r`` (``/ sqrt(r)`` with rsLoRA).
    """
    r = int(adapter_config["r"])
    alpha = float(adapter_config.get("lora_alpha", r))
    scale = alpha / (r**0.5 if adapter_config.get("use_rslora") else r)
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    for name, tensor in adapter.items():
        match = re.match(r"^(.*)\.lora_([AB])(?:\.default)?\.weight$", PEFT_PREFIX.sub("", name))
        if match:
            pairs.setdefault(match.group(1), {})[match.group(2)] = tensor
    merged = 0
    for module, pair in pairs.items():
        if set(pair) != {"A", "B"}:
            raise ValueError(f"LoRA weights for {module} are incomplete: found {sorted(pair)}")
        target = map_released_name(f"{module}.weight")
        if target is None or target not in state:
            raise ValueError(f"LoRA adapter targets {module}, which has no base weight here")
        weight = state[target]
        delta = (pair["B"].float() @ pair["A"].float()) * scale
        if delta.shape != weight.shape:
            raise ValueError(
                f"LoRA delta {tuple(delta.shape)} does not fit {target} {tuple(weight.shape)}"
            )
        state[target] = (weight.float() + delta).to(weight.dtype)
        merged += 1
    return merged


def load_released_vitron(
    base_path: str | Path,
    lora_path: str | Path | None = None,
    *,
    vision_tower: str | Path | PreTrainedModel | CLIPVisionConfig | None = None,
    tokenizer_path: str | Path | None = None,
    dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
    **config_overrides: Any,
) -> tuple[VitronForCausalLM, VitronProcessor | None]:
    """Load ``vitron-base`` (+ ``vitron-lora``) from local directories into ``VitronForCausalLM``.

    Args:
        base_path: the ``vitron-base`` directory.
        lora_path: the ``vitron-lora`` directory; its adapter is merged and its
            ``non_lora_trainables.bin`` (projector, region extractor) loaded.
        vision_tower: a CLIP-compatible tower (directory, hub id, or model); a
            ``CLIPVisionConfig`` builds a random tower of that shape (for tests); ``None`` builds
            a random ViT-L/14-224 tower, with a warning.
        tokenizer_path: where the tokenizer is (default: ``base_path``); without one the
            processor is ``None`` and the Vitron tokens are not bound.
        config_overrides: glue fields of :class:`VitronConfig` (signal spaces, video pooling…).

    Returns:
        (model, processor). Modules the release lacks (signal heads, synergy, temporal
        embedding) keep their fresh initialisation; the log lists them.
    """
    base_dir = Path(base_path)
    lora_dir = Path(lora_path) if lora_path is not None else None
    raw = json.loads((base_dir / "config.json").read_text())
    if lora_dir is not None and (lora_dir / "config.json").is_file():
        raw.update(json.loads((lora_dir / "config.json").read_text()))

    state: dict[str, torch.Tensor] = {}
    skipped: list[str] = []
    sources = [read_state_dict(base_dir)]
    if lora_dir is not None:
        sources.append(_read_file(lora_dir / "non_lora_trainables.bin"))
    for source in sources:
        for name, tensor in source.items():
            target = map_released_name(name)
            if target is None:
                skipped.append(name)
            else:
                state[target] = tensor
    unmapped = [n for n in skipped if not SKIPPED.match(PEFT_PREFIX.sub("", n))]
    if unmapped:
        raise ValueError(
            f"released weights with no counterpart in VitronForCausalLM: {unmapped[:10]}"
        )
    if skipped:
        logger.info("skipped %d tower weight(s) stored with the LLM", len(skipped))
    if LOCATION_FIRST_LAYER in state:
        state[LOCATION_FIRST_LAYER] = state[LOCATION_FIRST_LAYER] * RELEASED_REGION_FRAME

    if lora_dir is not None:
        adapter_config = json.loads((lora_dir / "adapter_config.json").read_text())
        adapter_file = lora_dir / "adapter_model.safetensors"
        adapter = _read_file(
            adapter_file if adapter_file.is_file() else lora_dir / "adapter_model.bin"
        )
        logger.info(
            "merged %d LoRA weight(s) from %s", merge_lora(state, adapter, adapter_config), lora_dir
        )

    embed = state.get("language_model.model.embed_tokens.weight")
    if embed is None:
        raise ValueError(
            f"{base_dir} holds no model.embed_tokens.weight: not a LLaVA-Llama checkpoint"
        )
    tower = _vision_tower(vision_tower, raw)
    config = released_config(raw, tower.config, int(embed.shape[0]), **config_overrides)
    model = VitronForCausalLM(config, vision_tower=tower)
    result = model.load_state_dict(state, strict=False)
    if result.unexpected_keys:
        raise ValueError(f"mapped weights that do not fit the model: {result.unexpected_keys[:10]}")
    fresh = sorted({k.split(".")[0] for k in result.missing_keys})
    warn_once(
        f"released:{base_dir}",
        "The released Vitron checkpoint %s does not hold everything this model uses. Freshly "
        "initialised (random until trained): %s. Replaced: the LanguageBind image and video towers "
        "by the CLIP tower %s. What it means: module choice, instructions and regions come from the "
        "released weights, but signal embeddings are noise (leave the signal projectors untrained "
        "and the backends run on the text alone), videos are read frame by frame through the image "
        "tower without temporal modelling, and the LLM sees image features it was not trained on, "
        "so answers about media are less reliable than the paper's.",
        base_dir,
        ", ".join(fresh) or "nothing",
        _tower_name(vision_tower, raw),
    )

    processor = None
    tokenizer_dir = Path(tokenizer_path) if tokenizer_path is not None else base_dir
    if any(
        (tokenizer_dir / f).is_file()
        for f in ("tokenizer.json", "tokenizer.model", "tokenizer_config.json")
    ):
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
        prepare_model_for_tokenizer(model, tokenizer)
        processor = VitronProcessor.from_config(tokenizer, model.config)
    else:
        logger.warning(
            "no tokenizer in %s: Vitron tokens are not bound; pass tokenizer_path", tokenizer_dir
        )
    if dtype is not None:
        model.to(dtype=dtype)
    if device is not None:
        model.to(device)
    return model.eval(), processor


_WARNED: set[str] = set()


def warn_once(key: str, message: str, *args: Any) -> None:
    """Log ``message`` at WARNING the first time ``key`` is seen in this process."""
    if key not in _WARNED:
        _WARNED.add(key)
        logger.warning(message, *args)


def _tower_name(
    vision_tower: str | Path | PreTrainedModel | CLIPVisionConfig | None, raw: dict[str, Any]
) -> str:
    if isinstance(vision_tower, str | Path):
        return str(vision_tower)
    if isinstance(vision_tower, PreTrainedModel):
        return str(getattr(vision_tower.config, "_name_or_path", "") or type(vision_tower).__name__)
    return "(random, none given)"


def _vision_tower(
    vision_tower: str | Path | PreTrainedModel | CLIPVisionConfig | None, raw: dict[str, Any]
) -> PreTrainedModel:
    if isinstance(vision_tower, PreTrainedModel):
        return vision_tower
    if isinstance(vision_tower, CLIPVisionConfig):
        logger.warning("building a random vision tower from the given config")
        return AutoModel.from_config(vision_tower)
    if vision_tower is None:
        logger.warning(
            "no vision tower given (the release names %s / %s, separate downloads): using a random "
            "ViT-L/14-224 tower",
            raw.get("mm_image_tower"),
            raw.get("mm_video_tower"),
        )
        config = CLIPVisionConfig(
            hidden_size=int(raw.get("mm_hidden_size", 1024)),
            intermediate_size=4096,
            num_hidden_layers=24,
            num_attention_heads=16,
            image_size=224,
            patch_size=14,
        )
        return AutoModel.from_config(config)
    return load_vision_tower(vision_tower)
