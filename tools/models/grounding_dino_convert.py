"""IDEA-format Grounding DINO checkpoints → transformers' format (``vitron convert grounding-dino``).

The output folder holds ``config.json`` and ``model.safetensors`` (loadable with
``GroundingDinoForObjectDetection.from_pretrained``) plus the processor files (tokenizer and image
processor) that the transformers-format ``grounding_dino`` loader reads, so one set of weights runs
under either ``format``.

Weights are written under the names of transformers' published Grounding DINO checkpoints (e.g.
``IDEA-Research/grounding-dino-tiny``: Swin attention as ``attention.self.query``…), which every
transformers 5.x release maps onto its own module names when loading. The mapping follows
transformers' ``convert_grounding_dino_to_hf.py``: Swin's fused ``qkv`` and the text attention
layers' fused ``in_proj`` are split into query, key and value; the rest is renaming.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vitron.tools.errors import MissingCheckpointError, VitronToolError
from vitron.tools.models.grounding_dino_idea_files import (
    read_idea_checkpoint,
    read_idea_config,
)

SWIN_SIZES: dict[str, dict[str, Any]] = {
    "swin_T_224_1k": {"embed_dim": 96, "depths": [2, 2, 6, 2], "num_heads": [3, 6, 12, 24], "window_size": 7},
    "swin_B_224_22k": {"embed_dim": 128, "depths": [2, 2, 18, 2], "num_heads": [4, 8, 16, 32], "window_size": 7},
    "swin_B_384_22k": {"embed_dim": 128, "depths": [2, 2, 18, 2], "num_heads": [4, 8, 16, 32], "window_size": 12},
    "swin_L_224_22k": {"embed_dim": 192, "depths": [2, 2, 18, 2], "num_heads": [6, 12, 24, 48], "window_size": 7},
    "swin_L_384_22k": {"embed_dim": 192, "depths": [2, 2, 18, 2], "num_heads": [6, 12, 24, 48], "window_size": 12},
}  # fmt: skip
"""groundingdino-py's named Swin backbones (its ``build_swin_transformer`` table)."""

SWIN = "model.backbone.conv_encoder.model"

# (IDEA pattern, transformers replacement); applied to the first match only, in this order.
_RENAMES: list[tuple[str, str]] = [
    # Swin backbone
    (r"^backbone\.0\.patch_embed\.proj\.", f"{SWIN}.embeddings.patch_embeddings.projection."),
    (r"^backbone\.0\.patch_embed\.norm\.", f"{SWIN}.embeddings.norm."),
    (r"^backbone\.0\.layers\.(\d+)\.blocks\.(\d+)\.norm1\.", SWIN + r".encoder.layers.\1.blocks.\2.layernorm_before."),
    (r"^backbone\.0\.layers\.(\d+)\.blocks\.(\d+)\.norm2\.", SWIN + r".encoder.layers.\1.blocks.\2.layernorm_after."),
    (r"^backbone\.0\.layers\.(\d+)\.blocks\.(\d+)\.attn\.relative_position_bias_table$",
     SWIN + r".encoder.layers.\1.blocks.\2.attention.self.relative_position_bias_table"),
    (r"^backbone\.0\.layers\.(\d+)\.blocks\.(\d+)\.attn\.proj\.", SWIN + r".encoder.layers.\1.blocks.\2.attention.output.dense."),
    (r"^backbone\.0\.layers\.(\d+)\.blocks\.(\d+)\.mlp\.fc1\.", SWIN + r".encoder.layers.\1.blocks.\2.intermediate.dense."),
    (r"^backbone\.0\.layers\.(\d+)\.blocks\.(\d+)\.mlp\.fc2\.", SWIN + r".encoder.layers.\1.blocks.\2.output.dense."),
    (r"^backbone\.0\.layers\.(\d+)\.downsample\.", SWIN + r".encoder.layers.\1.downsample."),
    # text backbone and projections
    (r"^bert\.", "model.text_backbone."),
    (r"^feat_map\.", "model.text_projection."),
    (r"^input_proj\.", "model.input_proj_vision."),
    # encoder: deformable image layers, text enhancer layers, fusion layers
    (r"^transformer\.encoder\.layers\.(\d+)\.self_attn\.", r"model.encoder.layers.\1.deformable_layer.self_attn."),
    (r"^transformer\.encoder\.layers\.(\d+)\.norm1\.", r"model.encoder.layers.\1.deformable_layer.self_attn_layer_norm."),
    (r"^transformer\.encoder\.layers\.(\d+)\.linear1\.", r"model.encoder.layers.\1.deformable_layer.fc1."),
    (r"^transformer\.encoder\.layers\.(\d+)\.linear2\.", r"model.encoder.layers.\1.deformable_layer.fc2."),
    (r"^transformer\.encoder\.layers\.(\d+)\.norm2\.", r"model.encoder.layers.\1.deformable_layer.final_layer_norm."),
    (r"^transformer\.encoder\.text_layers\.(\d+)\.self_attn\.out_proj\.", r"model.encoder.layers.\1.text_enhancer_layer.self_attn.out_proj."),
    (r"^transformer\.encoder\.text_layers\.(\d+)\.linear1\.", r"model.encoder.layers.\1.text_enhancer_layer.fc1."),
    (r"^transformer\.encoder\.text_layers\.(\d+)\.linear2\.", r"model.encoder.layers.\1.text_enhancer_layer.fc2."),
    (r"^transformer\.encoder\.text_layers\.(\d+)\.norm1\.", r"model.encoder.layers.\1.text_enhancer_layer.layer_norm_before."),
    (r"^transformer\.encoder\.text_layers\.(\d+)\.norm2\.", r"model.encoder.layers.\1.text_enhancer_layer.layer_norm_after."),
    (r"^transformer\.encoder\.fusion_layers\.(\d+)\.gamma_v$", r"model.encoder.layers.\1.fusion_layer.vision_param"),
    (r"^transformer\.encoder\.fusion_layers\.(\d+)\.gamma_l$", r"model.encoder.layers.\1.fusion_layer.text_param"),
    (r"^transformer\.encoder\.fusion_layers\.(\d+)\.layer_norm_v\.", r"model.encoder.layers.\1.fusion_layer.layer_norm_vision."),
    (r"^transformer\.encoder\.fusion_layers\.(\d+)\.layer_norm_l\.", r"model.encoder.layers.\1.fusion_layer.layer_norm_text."),
    (r"^transformer\.encoder\.fusion_layers\.(\d+)\.attn\.v_proj\.", r"model.encoder.layers.\1.fusion_layer.attn.vision_proj."),
    (r"^transformer\.encoder\.fusion_layers\.(\d+)\.attn\.l_proj\.", r"model.encoder.layers.\1.fusion_layer.attn.text_proj."),
    (r"^transformer\.encoder\.fusion_layers\.(\d+)\.attn\.values_v_proj\.", r"model.encoder.layers.\1.fusion_layer.attn.values_vision_proj."),
    (r"^transformer\.encoder\.fusion_layers\.(\d+)\.attn\.values_l_proj\.", r"model.encoder.layers.\1.fusion_layer.attn.values_text_proj."),
    (r"^transformer\.encoder\.fusion_layers\.(\d+)\.attn\.out_v_proj\.", r"model.encoder.layers.\1.fusion_layer.attn.out_vision_proj."),
    (r"^transformer\.encoder\.fusion_layers\.(\d+)\.attn\.out_l_proj\.", r"model.encoder.layers.\1.fusion_layer.attn.out_text_proj."),
    # decoder
    (r"^transformer\.decoder\.layers\.(\d+)\.cross_attn\.", r"model.decoder.layers.\1.encoder_attn."),
    (r"^transformer\.decoder\.layers\.(\d+)\.norm1\.", r"model.decoder.layers.\1.encoder_attn_layer_norm."),
    (r"^transformer\.decoder\.layers\.(\d+)\.ca_text\.out_proj\.", r"model.decoder.layers.\1.encoder_attn_text.out_proj."),
    (r"^transformer\.decoder\.layers\.(\d+)\.catext_norm\.", r"model.decoder.layers.\1.encoder_attn_text_layer_norm."),
    (r"^transformer\.decoder\.layers\.(\d+)\.self_attn\.out_proj\.", r"model.decoder.layers.\1.self_attn.out_proj."),
    (r"^transformer\.decoder\.layers\.(\d+)\.norm2\.", r"model.decoder.layers.\1.self_attn_layer_norm."),
    (r"^transformer\.decoder\.layers\.(\d+)\.linear1\.", r"model.decoder.layers.\1.fc1."),
    (r"^transformer\.decoder\.layers\.(\d+)\.linear2\.", r"model.decoder.layers.\1.fc2."),
    (r"^transformer\.decoder\.layers\.(\d+)\.norm3\.", r"model.decoder.layers.\1.final_layer_norm."),
    (r"^transformer\.decoder\.norm\.", "model.decoder.layer_norm."),
    (r"^transformer\.decoder\.ref_point_head\.", "model.decoder.reference_points_head."),
    (r"^transformer\.level_embed$", "model.level_embed"),
    (r"^transformer\.tgt_embed\.", "model.query_position_embeddings."),
    (r"^transformer\.enc_output(_norm)?\.", r"model.enc_output\1."),
    (r"^transformer\.enc_out_bbox_embed\.", "model.encoder_output_bbox_embed."),
    (r"^bbox_embed\.", "bbox_embed."),
]  # fmt: skip

# fused attention projections split into query, key, value (rows in that order)
_FUSED: list[tuple[str, str]] = [
    (r"^backbone\.0\.layers\.(\d+)\.blocks\.(\d+)\.attn\.qkv\.(weight|bias)$",
     SWIN + r".encoder.layers.\1.blocks.\2.attention.self.{part}.\3"),
    (r"^transformer\.encoder\.text_layers\.(\d+)\.self_attn\.in_proj_(weight|bias)$",
     r"model.encoder.layers.\1.text_enhancer_layer.self_attn.{part}.\2"),
    (r"^transformer\.decoder\.layers\.(\d+)\.self_attn\.in_proj_(weight|bias)$",
     r"model.decoder.layers.\1.self_attn.{part}.\2"),
    (r"^transformer\.decoder\.layers\.(\d+)\.ca_text\.in_proj_(weight|bias)$",
     r"model.decoder.layers.\1.encoder_attn_text.{part}.\2"),
]  # fmt: skip

# IDEA entries with no counterpart: buffers rebuilt at construction, and copies of tied weights
_DROPPED = [
    r"\.relative_position_index$",
    r"\.attn_mask$",
    r"^transformer\.decoder\.bbox_embed\.",  # the same modules as the top-level bbox_embed
    r"^bert\.pooler\.",  # Grounding DINO never uses the pooled text output
]


class ConversionError(VitronToolError):
    """A checkpoint or config that cannot be converted; the message says which part."""


@dataclass(frozen=True)
class ConversionReport:
    destination: Path
    tensors: int
    """Weights written (one per tensor; IDEA's shared box heads once)."""


def convert_state_dict(
    state: dict[str, torch.Tensor], backbone_out: list[int]
) -> dict[str, torch.Tensor]:
    """Rename (and split) an IDEA state dict to transformers' published key names.

    ``backbone_out`` are the config's ``return_interm_indices`` (Swin stages whose normalised
    outputs feed the detector; IDEA's ``norm{i}`` is transformers' ``hidden_states_norms.stage{i+1}``).
    Raises :class:`ConversionError` naming any key it does not know.
    """
    out: dict[str, torch.Tensor] = {}
    unknown = []
    norms = {
        f"backbone.0.norm{i}.": f"{SWIN}.hidden_states_norms.stage{i + 1}." for i in backbone_out
    }
    for key, tensor in state.items():
        if any(re.search(pattern, key) for pattern in _DROPPED):
            continue
        if _split(key, tensor, out):
            continue
        prefix = next((p for p in norms if key.startswith(p)), None)
        if prefix:
            out[norms[prefix] + key[len(prefix) :]] = tensor
            continue
        for pattern, replacement in _RENAMES:
            new, n = re.subn(pattern, replacement, key)
            if n:
                out[new] = tensor
                break
        else:
            unknown.append(key)
    if unknown:
        raise ConversionError(
            f"{len(unknown)} checkpoint entr{'y' if len(unknown) == 1 else 'ies'} with no "
            f"transformers counterpart: {', '.join(unknown[:5])}"
        )
    return _without_shared(out)


def _without_shared(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """One copy of tensors that share storage (IDEA's shared box heads); transformers ties them."""
    seen: set[tuple[int, int, tuple[int, ...]]] = set()
    kept = {}
    for key, tensor in state.items():
        identity = (
            tensor.untyped_storage().data_ptr(),
            tensor.storage_offset(),
            tuple(tensor.shape),
        )
        if identity not in seen:
            seen.add(identity)
            kept[key] = tensor.contiguous()
    return kept


def _split(key: str, tensor: torch.Tensor, out: dict[str, torch.Tensor]) -> bool:
    for pattern, template in _FUSED:
        match = re.match(pattern, key)
        if match:
            if tensor.shape[0] % 3:
                raise ConversionError(f"{key} has {tensor.shape[0]} rows; a fused q/k/v needs 3n")
            for part, chunk in zip(("query", "key", "value"), tensor.chunk(3), strict=True):
                out[match.expand(template.replace("{part}", part))] = chunk.clone()
            return True
    return False


def transformers_config(settings: dict[str, Any], text_encoder: Path) -> Any:
    """``GroundingDinoConfig`` for an IDEA config's settings and its BERT folder."""
    from transformers import BertConfig, GroundingDinoConfig, SwinConfig

    for flag in (
        "use_text_enhancer",
        "use_fusion_layer",
        "use_text_cross_attention",
        "sub_sentence_present",
    ):
        if not settings.get(flag, True):
            raise ConversionError(
                f"transformers' Grounding DINO has no variant with {flag} = False"
            )
    if settings.get("two_stage_type", "standard") != "standard":
        raise ConversionError(
            "transformers' Grounding DINO supports only two_stage_type 'standard'"
        )
    backbone = settings["backbone"]
    sizes = settings.get("backbone_params") or SWIN_SIZES.get(backbone)
    if sizes is None:
        raise ConversionError(
            f"backbone {backbone!r} is not a Swin transformer this converter knows"
        )
    image_size = int(backbone.split("_")[-2]) if backbone in SWIN_SIZES else 224
    interm = list(settings.get("return_interm_indices", [1, 2, 3]))
    swin = SwinConfig(
        **sizes, image_size=image_size, out_indices=[i + 1 for i in interm], drop_path_rate=0.0
    )
    hidden = settings["hidden_dim"]
    return GroundingDinoConfig(
        backbone_config=swin,
        text_config=BertConfig.from_pretrained(text_encoder),
        use_timm_backbone=False,
        d_model=hidden,
        encoder_layers=settings["enc_layers"],
        decoder_layers=settings["dec_layers"],
        encoder_attention_heads=settings["nheads"],
        decoder_attention_heads=settings["nheads"],
        encoder_ffn_dim=settings["dim_feedforward"],
        decoder_ffn_dim=settings["dim_feedforward"],
        activation_function=settings.get("transformer_activation", "relu"),
        num_queries=settings["num_queries"],
        num_feature_levels=settings["num_feature_levels"],
        encoder_n_points=settings.get("enc_n_points", 4),
        decoder_n_points=settings.get("dec_n_points", 4),
        two_stage=True,
        max_text_len=settings.get("max_text_len", 256),
        query_dim=settings.get("query_dim", 4),
        embedding_init_target=settings.get("embed_init_tgt", True),
        decoder_bbox_embed_share=settings.get("dec_pred_bbox_embed_share", True),
        two_stage_bbox_embed_share=settings.get("two_stage_bbox_embed_share", False),
        positional_embedding_temperature=settings.get("pe_temperatureH", 20),
        fusion_droppath=settings.get("fusion_droppath", 0.0),
        dropout=settings.get("dropout", 0.0),
    )


def convert_grounding_dino(
    checkpoint: str | Path,
    destination: str | Path,
    *,
    config: str | Path = "GroundingDINO_SwinT_OGC",
    text_encoder: str | Path | None = None,
    image_size: int = 800,
    max_size: int = 1333,
    progress: Callable[[str], None] = lambda _: None,
) -> ConversionReport:
    """Convert an IDEA checkpoint (with its ``config``) into a transformers folder ``destination``.

    ``text_encoder`` is the BERT folder or hub id whose tokenizer and config go with the weights
    (default: the config's ``text_encoder_type``); ``image_size``/``max_size`` set the processor's
    resize to IDEA's (short side, cap on the long side). The written folder is loaded back with
    ``from_pretrained`` before this returns; nothing is left behind if any step fails.
    """
    import shutil
    import tempfile

    from safetensors.torch import save_file
    from transformers import (
        AutoTokenizer,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
    )

    destination = Path(destination).expanduser()
    if destination.exists() and any(destination.iterdir()):
        raise ConversionError(f"{destination} exists and is not empty; name a new folder")
    if not Path(checkpoint).expanduser().is_file():  # before the text encoder is looked up
        raise MissingCheckpointError(f"no IDEA Grounding DINO checkpoint at {checkpoint}")
    settings = read_idea_config(config)
    text_folder = _text_encoder_folder(text_encoder or settings.get("text_encoder_type", ""))
    progress(f"reading {checkpoint}")
    state = convert_state_dict(
        read_idea_checkpoint(checkpoint), list(settings.get("return_interm_indices", [1, 2, 3]))
    )
    hf_config = transformers_config(settings, text_folder)
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".converting-", dir=destination.parent))
    try:
        progress(f"writing {len(state)} tensors")
        hf_config.save_pretrained(staging)
        save_file(state, str(staging / "model.safetensors"), metadata={"format": "pt"})
        tokenizer = AutoTokenizer.from_pretrained(text_folder)
        image_processor = GroundingDinoImageProcessor(
            size={"shortest_edge": image_size, "longest_edge": max_size}
        )
        GroundingDinoProcessor(
            image_processor=image_processor, tokenizer=tokenizer
        ).save_pretrained(staging)
        progress("loading the result back with from_pretrained")
        _, info = GroundingDinoForObjectDetection.from_pretrained(staging, output_loading_info=True)
        missing = sorted(info["missing_keys"])
        if missing or info["unexpected_keys"] or info.get("mismatched_keys"):
            raise ConversionError(
                "the converted weights do not fit transformers' model: "
                f"missing {missing[:5]}, unexpected {list(info['unexpected_keys'])[:5]}, "
                f"mismatched {list(info.get('mismatched_keys') or [])[:5]}"
            )
        if destination.exists():
            destination.rmdir()
        staging.rename(destination)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ConversionReport(destination, len(state))


def _text_encoder_folder(name: str | Path) -> Path:
    local = Path(name).expanduser()
    if local.is_dir():
        return local
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id=str(name), allow_patterns=["*.json", "*.txt"]))
    except Exception as exc:
        raise ConversionError(
            f"text encoder {str(name) or '(none)'} is neither a local folder nor available from the "
            f"hub ({type(exc).__name__}); pass --text-encoder with a BERT folder"
        ) from exc
