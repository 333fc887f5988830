"""The released Vitron checkpoint layout (vitron-base + vitron-lora), written tiny, loads."""

from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import CLIPVisionConfig, LlamaConfig, LlamaForCausalLM

from vitron.agent.build import TINY_VISION_CONFIG, load_released_vitron
from vitron.agent.inputs import RegionInput, Turn
from vitron.agent.released import RELEASED_REGION_FRAME, map_released_name, read_state_dict
from vitron.agent.tokens import build_tiny_tokenizer

HIDDEN, VISION = 64, TINY_VISION_CONFIG["hidden_size"]


def write_release(root: Path) -> dict[str, torch.Tensor]:
    """A tiny vitron-base + vitron-lora pair in the released layout; returns source tensors."""
    generator = torch.Generator().manual_seed(0)
    tokenizer = build_tiny_tokenizer(vitron_tokens=False)
    llama = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=HIDDEN,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
    )
    torch.manual_seed(0)
    base_state = LlamaForCausalLM(llama).state_dict()  # same names as LlavaLlamaForCausalLM
    config = {
        **llama.to_dict(),
        "architectures": ["LlavaLlamaForCausalLM"],
        "model_type": "llava",
        "mm_image_tower": "LanguageBind/LanguageBind_Image",
        "mm_video_tower": "LanguageBind/LanguageBind_Video_merge",
        "mm_projector_type": "mlp2x_gelu",
        "mm_hidden_size": VISION,
        "mm_vision_select_layer": -2,
        "mm_vision_select_feature": "patch",
        "mm_use_im_start_end": False,
        "mm_use_im_patch_token": False,
        "image_aspect_ratio": "pad",
        "tune_mm_mlp_adapter": True,
        "tokenizer_model_max_length": 3072,
    }
    base, lora = root / "vitron-base", root / "vitron-lora"
    base.mkdir()
    lora.mkdir()
    (base / "config.json").write_text(json.dumps(config))
    names = sorted(base_state)
    shards = {
        "pytorch_model-00001-of-00002.bin": names[::2],
        "pytorch_model-00002-of-00002.bin": names[1::2],
    }
    shards["pytorch_model-00002-of-00002.bin"].append(
        "model.image_tower.image_tower.embeddings.class_embedding"
    )
    base_state["model.image_tower.image_tower.embeddings.class_embedding"] = torch.zeros(VISION)
    for file, keys in shards.items():
        torch.save({k: base_state[k] for k in keys}, base / file)
    index = {"weight_map": {k: f for f, keys in shards.items() for k in keys}}
    (base / "pytorch_model.bin.index.json").write_text(json.dumps(index))
    tokenizer.save_pretrained(base)

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator) * 0.1

    prefix = "base_model.model.model."
    non_lora = {
        f"{prefix}mm_projector.0.weight": rand(HIDDEN, VISION),
        f"{prefix}mm_projector.0.bias": rand(HIDDEN),
        f"{prefix}mm_projector.2.weight": rand(HIDDEN, HIDDEN),
        f"{prefix}mm_projector.2.bias": rand(HIDDEN),
        f"{prefix}region_extractor.region_linear.layers.0.weight": rand(HIDDEN, VISION),
        f"{prefix}region_extractor.region_linear.layers.0.bias": rand(HIDDEN),
        f"{prefix}region_extractor.region_linear.layers.1.weight": rand(HIDDEN, HIDDEN),
        f"{prefix}region_extractor.region_linear.layers.1.bias": rand(HIDDEN),
        f"{prefix}region_extractor.region_linear.layers.2.weight": rand(HIDDEN, HIDDEN),
        f"{prefix}region_extractor.region_linear.layers.2.bias": rand(HIDDEN),
        f"{prefix}region_extractor.loc_encoder.loc_encoder.0.weight": rand(HIDDEN // 2, 4),
        f"{prefix}region_extractor.loc_encoder.loc_encoder.0.bias": rand(HIDDEN // 2),
        f"{prefix}region_extractor.loc_encoder.loc_encoder.2.weight": rand(HIDDEN, HIDDEN // 2),
        f"{prefix}region_extractor.loc_encoder.loc_encoder.2.bias": rand(HIDDEN),
    }
    torch.save(non_lora, lora / "non_lora_trainables.bin")
    rank = 4
    adapter = {}
    for layer in range(2):
        for proj, out_dim in (("q_proj", HIDDEN), ("v_proj", HIDDEN // 2)):
            adapter[f"{prefix}layers.{layer}.self_attn.{proj}.lora_A.weight"] = rand(rank, HIDDEN)
            adapter[f"{prefix}layers.{layer}.self_attn.{proj}.lora_B.weight"] = rand(out_dim, rank)
    torch.save(adapter, lora / "adapter_model.bin")
    (lora / "adapter_config.json").write_text(
        json.dumps(
            {
                "peft_type": "LORA",
                "r": rank,
                "lora_alpha": 8,
                "target_modules": ["q_proj", "v_proj"],
            }
        )
    )
    (lora / "config.json").write_text(json.dumps(config))
    return {**base_state, **non_lora, **adapter}


def test_released_names_map_into_vitron():
    assert (
        map_released_name("base_model.model.model.mm_projector.2.bias") == "projector.layers.2.bias"
    )
    assert (
        map_released_name("model.region_extractor.loc_encoder.loc_encoder.0.weight")
        == "region_encoder.location_mlp.0.weight"
    )
    assert (
        map_released_name("model.layers.3.mlp.up_proj.weight")
        == "language_model.model.layers.3.mlp.up_proj.weight"
    )
    assert map_released_name("lm_head.weight") == "language_model.lm_head.weight"
    assert (
        map_released_name("model.image_tower.image_tower.encoder.layers.0.mlp.fc1.weight") is None
    )


def test_tiny_release_loads_with_lora_merged(tmp_path, caplog):
    source = write_release(tmp_path)
    vision = CLIPVisionConfig(**TINY_VISION_CONFIG)
    caplog.set_level(logging.WARNING, logger="vitron.agent.released")

    def load():
        return load_released_vitron(
            tmp_path / "vitron-base",
            tmp_path / "vitron-lora",
            vision_tower=vision,
            signal_spaces={"sam": 16, "diffusion": 8},
            video_tokens_per_frame=4,
            synergy_specific_dim=8,
            synergy_invariant_dim=8,
            synergy_discriminator_hidden_size=8,
        )

    model, processor = load()
    params = dict(model.named_parameters())
    prefix = "base_model.model.model."
    assert torch.equal(
        params["projector.layers.0.weight"], source[f"{prefix}mm_projector.0.weight"]
    )
    assert torch.equal(params["projector.layers.2.bias"], source[f"{prefix}mm_projector.2.bias"])
    assert torch.equal(
        params["region_encoder.feature_mlp.layers.1.weight"],
        source[f"{prefix}region_extractor.region_linear.layers.1.weight"],
    )
    assert torch.allclose(
        params["region_encoder.location_mlp.0.weight"],
        source[f"{prefix}region_extractor.loc_encoder.loc_encoder.0.weight"]
        * RELEASED_REGION_FRAME,
    )
    # LoRA merged: W + alpha / r * B @ A on q/v, other weights untouched.
    for layer in range(2):
        for proj in ("q_proj", "v_proj"):
            a = source[f"{prefix}layers.{layer}.self_attn.{proj}.lora_A.weight"]
            b = source[f"{prefix}layers.{layer}.self_attn.{proj}.lora_B.weight"]
            want = source[f"model.layers.{layer}.self_attn.{proj}.weight"] + 2.0 * b @ a
            got = params[f"language_model.model.layers.{layer}.self_attn.{proj}.weight"]
            assert torch.allclose(got, want, atol=1e-6)
        k_name = f"model.layers.{layer}.self_attn.k_proj.weight"
        assert torch.equal(params[f"language_model.{k_name}"], source[k_name])
    # The vocabulary grew by the Vitron tokens; old rows are the released ones.
    embed = model.get_input_embeddings().weight
    old = source["model.embed_tokens.weight"]
    assert embed.shape[0] == old.shape[0] + 14
    assert torch.equal(embed[: old.shape[0]], old)
    assert model.config.vision_feature_layer == -2 and model.config.projector_type == "mlp2x_gelu"
    # What is not real is said once, at WARNING, with what it means for quality.
    said = [r for r in caplog.records if "does not hold everything" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.WARNING
    text = said[0].getMessage()
    assert "signal_heads" in text and "synergy" in text and "LanguageBind" in text
    assert "signal embeddings are noise" in text and "temporal" in text
    caplog.clear()
    load()  # a second load of the same checkpoint says nothing new
    assert not [r for r in caplog.records if "does not hold everything" in r.getMessage()]
    # And it runs on an image with a region sketch.
    assert processor is not None
    mask = np.zeros((20, 20), dtype=bool)
    mask[2:9, 3:15] = True
    image = np.zeros((20, 20, 3), dtype=np.uint8)
    batch = processor.encode_chat([Turn("user", [image, "what is ", RegionInput(mask), "?"])])
    with torch.no_grad():
        out = model(**batch)
    assert out.logits.shape[-1] == embed.shape[0]


def test_bin_files_never_unpickle_code(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    path = tmp_path / "pytorch_model.bin"
    torch.save({"model.norm.weight": torch.ones(2), "evil": Payload()}, path)
    with pytest.raises(pickle.UnpicklingError):
        read_state_dict(tmp_path)
