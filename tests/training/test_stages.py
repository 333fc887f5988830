"""The stages train exactly their parameters, their losses fall, and LoRA round-trips."""

from __future__ import annotations

import pytest
import torch

from tests.training.conftest import tiny_config
from vitron.agent.build import build_tiny_vitron, load_vitron
from vitron.agent.modeling.synergy import reverse_gradient
from vitron.agent.training.stages import check_trainable, prepare_stage
from vitron.agent.training.trainer import Trainer


def _trainable(stage: str, synergy: bool = True) -> tuple[set[str], set[str]]:
    model, processor = build_tiny_vitron()
    prepared = prepare_stage(model, stage, tokenizer=processor.tokenizer, synergy=synergy)
    named = dict(prepared.model.named_parameters())
    check_trainable(prepared, synergy=synergy)
    return {n for n, p in named.items() if p.requires_grad}, set(named)


def _under(names: set[str], part: str) -> set[str]:
    return {n for n in names if f".{part}." in f".{n}"}


def test_align_trains_projector_region_and_video_glue_only():
    trainable, names = _trainable("align")
    glue = _under(names, "projector") | _under(names, "region_encoder")
    glue |= _under(names, "video_encoder")
    assert glue and trainable == glue
    assert not _under(trainable, "language_model") and not _under(trainable, "image_encoder")


@pytest.mark.parametrize("synergy", [True, False])
def test_base_trains_every_llm_weight_and_the_glue_never_the_vision_tower(synergy):
    trainable, names = _trainable("base", synergy)
    llm = _under(names, "language_model")
    assert llm and llm <= trainable  # embeddings and output head included
    for glue in ("projector", "region_encoder", "video_encoder"):
        assert _under(names, glue) <= trainable
    assert not _under(trainable, "image_encoder") and not _under(trainable, "signal_heads")
    assert (_under(names, "synergy") <= trainable) is synergy
    assert not any("lora_" in n for n in names)


@pytest.mark.parametrize("synergy", [True, False])
def test_invoke_trains_lora_token_rows_signal_heads_and_synergy_when_on(synergy):
    trainable, names = _trainable("invoke", synergy)
    lora = {n for n in names if ".lora_A." in n or ".lora_B." in n}
    # 2 layers x q, k, v, o x (A, B): none frozen (the reference froze its own LoRA weights)
    assert len(lora) == 16 and lora <= trainable
    rows = {n for n in trainable if "trainable_tokens_delta" in n}
    assert len(rows) == 2  # embedding and output rows of the Vitron tokens
    assert _under(names, "signal_heads") <= trainable
    assert (_under(names, "synergy") <= trainable) is synergy
    assert not (_under(trainable, "synergy") and not synergy)
    base_llm = {n for n in _under(trainable, "language_model") if n not in lora | rows}
    assert base_llm == set()
    for frozen in ("projector", "region_encoder", "image_encoder", "video_encoder"):
        assert not _under(trainable, frozen)


def test_ground_trains_lora_and_region_glue_not_signal_heads():
    trainable, names = _trainable("ground")
    assert {n for n in names if ".lora_B." in n} <= trainable
    assert _under(names, "region_encoder") <= trainable and _under(names, "projector") <= trainable
    assert not _under(trainable, "signal_heads") and not _under(trainable, "image_encoder")


def test_the_reference_mistake_freezing_lora_is_refused():
    model, processor = build_tiny_vitron()
    prepared = prepare_stage(model, "invoke", tokenizer=processor.tokenizer)
    prepared.model.requires_grad_(False)  # what the reference code does after adding LoRA
    with pytest.raises(RuntimeError, match="wrongly frozen.*lora"):
        check_trainable(prepared, synergy=True)


def test_gradient_reversal_flips_the_sign():
    x = torch.randn(5, requires_grad=True)
    (reverse_gradient(x, 0.5) * torch.arange(5.0)).sum().backward()
    assert torch.equal(x.grad, -0.5 * torch.arange(5.0))


@pytest.mark.parametrize("stage", ["base", "align", "invoke", "ground"])
def test_each_stage_lowers_its_loss(squares, tmp_path, stage):
    trainer = Trainer(tiny_config(squares, tmp_path / stage, stage, epochs=3))
    before = trainer.evaluate(trainer.dataset)["lm"]
    result = trainer.run()
    after = trainer.evaluate(trainer.dataset)["lm"]
    assert result.steps == 9 and after < before - 0.02, (before, after)
    lines = (tmp_path / stage / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 9 and '"lm"' in lines[0]


def test_lora_saved_loaded_and_merged_gives_the_same_logits(squares, tmp_path):
    config = tiny_config(squares, tmp_path / "run", "invoke", epochs=1)
    config.lora.merge = False
    trainer = Trainer(config)
    trainer.run()
    # the trained model, rebuilt from the checkpoint's trainable weights
    reference, processor = build_tiny_vitron()
    ref = prepare_stage(reference, "invoke", tokenizer=processor.tokenizer)
    from safetensors.torch import load_file

    from vitron.agent.training.trainer import latest_checkpoint

    state = load_file(str(latest_checkpoint(tmp_path / "run") / "trainable.safetensors"))
    named = dict(ref.model.named_parameters())
    with torch.no_grad():
        for name, value in state.items():
            named[name.removeprefix("model.")].copy_(value)
    assert any(float(v.abs().sum()) > 0 for k, v in state.items() if "lora_B" in k)
    ids = processor("USER: Segment the red square. ASSISTANT:")["input_ids"]
    ref.model.eval()
    expected = ref.model(input_ids=ids).logits
    separate, _ = load_vitron(tmp_path / "run/llm", lora=tmp_path / "run/lora")
    merged, _ = load_vitron(tmp_path / "run/llm", lora=tmp_path / "run/lora", merge=True)
    for model in (separate, merged):
        torch.testing.assert_close(model(input_ids=ids).logits, expected, atol=1e-5, rtol=1e-5)


def test_a_batch_that_reaches_no_trainable_part_is_counted_not_fatal(squares, tmp_path):
    """Stage 1 trains only the vision glue, so a text-only batch (a generate request) gives a
    loss without gradient: the run goes on, and metrics.jsonl counts such batches."""
    import json

    lines = (squares / "train.jsonl").read_text().splitlines()
    text_only = [line for line in lines if '"generate_image"' in line][:1]
    with_media = [line for line in lines if '"segment_image"' in line][:1]
    (tmp_path / "data").mkdir()
    for folder in ("images", "masks"):
        (tmp_path / "data" / folder).symlink_to(squares / folder)
    (tmp_path / "data" / "train.jsonl").write_text("\n".join(text_only + with_media) + "\n")
    config = tiny_config(tmp_path / "data", tmp_path / "run", "align", batch_size=1, epochs=2,
                         log_every=1, group_by_length=False)  # fmt: skip
    result = Trainer(config).run()
    assert result.steps == 4
    logged = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert logged[-1]["untrained_batches"] == 2


def test_base_may_train_the_vision_tower_when_asked_and_no_other_stage_may():
    model, processor = build_tiny_vitron()
    prepared = prepare_stage(model, "base", tokenizer=processor.tokenizer, vision=True)
    trainable = set(check_trainable(prepared, synergy=True, vision=True))
    tower = _under({n for n, _ in model.named_parameters()}, "image_encoder")
    assert tower and tower <= trainable
    with pytest.raises(RuntimeError, match="wrongly trainable"):  # the default set excludes it
        check_trainable(prepared, synergy=True)
    with pytest.raises(ValueError, match="only the base stage"):
        prepare_stage(build_tiny_vitron()[0], "ground", tokenizer=processor.tokenizer, vision=True)
