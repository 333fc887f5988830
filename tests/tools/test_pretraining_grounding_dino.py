"""``vitron pretrain grounding_dino``: a few steps train, the saved folder loads through the
``grounding_dino`` loader as the same model, and the loaded engine detects shapes-world phrases."""

from __future__ import annotations

import json
import types

import numpy as np
import torch
from PIL import Image

from vitron.apps.cli import main
from vitron.evals.shapes.dataset import make_sample
from vitron.tools.models.grounding_dino import load_grounding_dino
from vitron.tools.pretraining import make_pretrainer
from vitron.tools.pretraining.grounding_dino import (
    SPECIAL_IDS,
    TEXT_LENGTH,
    WORDS,
    shapes_tokenizer,
)
from vitron.tools.pretraining.loop import RESUME_NAME, RunSettings, train
from vitron.tools.profiles import ComponentSpec

CPU = types.SimpleNamespace(device=torch.device("cpu"), dtype=torch.float32)


def _load(path) -> object:  # noqa: ANN001
    spec = ComponentSpec(name="grounding_dino", loader="grounding_dino", checkpoint=str(path),
                         profile="test")  # fmt: skip
    return load_grounding_dino(spec, CPU)


def test_tokenizer_puts_delimiters_where_grounding_dino_expects_them():
    tokenizer = shapes_tokenizer()
    ids = tokenizer("the leftmost red circle.")["input_ids"]
    assert ids[0] == 101 and ids[-2:] == [1012, 102]  # [CLS] … . [SEP]
    assert tokenizer.convert_tokens_to_ids("?") == SPECIAL_IDS["?"] == 1029
    assert all(len(tokenizer(w, add_special_tokens=False)["input_ids"]) == 1 for w in WORDS)
    spelled = tokenizer("a zebra 42", add_special_tokens=False)["input_ids"]
    assert tokenizer.unk_token_id not in spelled and len(spelled) == 1 + 5 + 2


def test_pretrain_command_saves_a_folder_the_loader_reads_and_that_detects(tmp_path):
    out = tmp_path / "gd"
    assert main(["pretrain", "grounding_dino", "--seed", "2", "--out", str(out), "--steps", "2",
                 "--eval-count", "2"]) == 0  # fmt: skip
    report = json.loads((out / "pretrain.json").read_text())
    assert report["steps"] == 2 and report["finished"] and report["seed"] == 2
    assert report["command"].startswith("vitron pretrain grounding_dino --seed 2")
    assert set(report["metrics"]) == {"acc_at_0_5", "found", "acc_at_0_5_top1"}
    assert not (out / RESUME_NAME).exists()

    engine = _load(out)
    assert engine.max_text_tokens == TEXT_LENGTH
    assert engine.model.config.num_queries == 8
    assert engine.tokenizer.tokenize("the small red circle") == ["the", "small", "red", "circle"]
    sample = make_sample("test", 0, tasks=["grounding"])
    image = Image.fromarray(sample.media[0].pixels)
    found = engine.detect(image, [sample.gold["expression"]], box_threshold=0.0,
                          text_threshold=0.0, max_boxes=3)  # fmt: skip
    assert 1 <= len(found) <= 3
    for detection in found:
        assert all(0.0 <= v <= 1.0 for v in detection.box)
        assert detection.box[0] < detection.box[2] and detection.box[1] < detection.box[3]
        assert 0.0 <= detection.score <= 1.0
        assert detection.label == sample.gold["expression"]


def test_saved_weights_load_back_as_the_trained_model(tmp_path):
    trainer = make_pretrainer("grounding_dino", 4)
    train(trainer, RunSettings(seed=4, out=tmp_path, steps=2, eval_count=1, warmup=1,
                               log=lambda line: None))  # fmt: skip
    engine = _load(tmp_path)
    image = make_sample("test", 1, tasks=["grounding"]).media[0].pixels
    inputs = trainer.inputs([image], ["the red circle"])
    processed = engine.processor(images=Image.fromarray(image), text="the red circle.",
                                 return_tensors="pt")  # fmt: skip
    # the processor as saved makes the inputs the trainer trained on
    assert torch.equal(processed["input_ids"], inputs["input_ids"])
    assert torch.allclose(processed["pixel_values"], inputs["pixel_values"], atol=1e-5)
    with torch.no_grad():
        trained = trainer.model.eval()(**inputs)
        loaded = engine.model(**inputs)
    assert torch.allclose(trained.pred_boxes, loaded.pred_boxes, atol=1e-5)
    finite = torch.isfinite(trained.logits)
    assert torch.allclose(trained.logits[finite], loaded.logits[finite], atol=1e-4)
    assert np.isfinite(trained.pred_boxes.numpy()).all()
    fresh = make_pretrainer("grounding_dino", 4).model.eval()
    with torch.no_grad():
        assert not torch.allclose(fresh(**inputs).pred_boxes, loaded.pred_boxes)


def test_base_continues_a_trained_detector_without_the_curriculum(tmp_path):
    first = make_pretrainer("grounding_dino", 4)
    train(first, RunSettings(seed=4, out=tmp_path / "first", steps=2, eval_count=1, warmup=1,
                             log=lambda line: None))  # fmt: skip
    again = make_pretrainer("grounding_dino", 5, tmp_path / "first")
    for name, value in first.model.state_dict().items():  # seed 5 drew nothing: base's weights
        assert torch.equal(again.model.state_dict()[name], value), name
    again.start(0, 100)
    assert again.easy_steps == 0  # 1-2 object scenes are for a detector from nothing
    fresh = make_pretrainer("grounding_dino", 5)
    fresh.start(0, 100)
    assert fresh.easy_steps == 15
    assert main(["pretrain", "grounding_dino", "--seed", "5", "--out", str(tmp_path / "more"),
                 "--steps", "1", "--eval-count", "1", "--base", str(tmp_path / "first")]) == 0  # fmt: skip
    report = json.loads((tmp_path / "more" / "pretrain.json").read_text())
    assert report["command"].endswith(f"--base {tmp_path / 'first'}")
    assert _load(tmp_path / "more").model.config.num_queries == 8
