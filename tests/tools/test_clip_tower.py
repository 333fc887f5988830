"""``vitron pretrain clip_tower``: the planner's image tower learns, patch by patch, the attributes
of the object under each patch, and is saved as the bare ``CLIPVisionModel`` a planner is built on."""

from __future__ import annotations

import json
import types

import numpy as np
import torch
from transformers import CLIPVisionModel

from vitron.apps.cli import main
from vitron.evals.shapes.scene import Obj, Scene, render
from vitron.tools.pretraining import make_pretrainer
from vitron.tools.pretraining.clip_tower import ATTRIBUTES, object_weights, patch_labels
from vitron.tools.profiles import ComponentSpec
from vitron.tools.registry import find_loader


def test_each_patch_names_the_object_covering_most_of_it_or_the_background():
    star = Obj("star", "red", "large", "striped", 0.25, 0.25)
    square = Obj("square", "blue", "small", "plain", 0.75, 0.75)
    scene = Scene((star, square))
    rendered = render(scene, 64)
    labels = patch_labels(scene, rendered.masks, (8, 8))
    grid = {k: v.reshape(8, 8) for k, v in labels.items()}
    assert grid["shape"][2, 2] == ATTRIBUTES["shape"].index("star") + 1  # centre (0.25, 0.25)
    assert grid["colour"][2, 2] == ATTRIBUTES["colour"].index("red") + 1
    assert grid["texture"][2, 2] == ATTRIBUTES["texture"].index("striped") + 1
    assert grid["shape"][6, 6] == ATTRIBUTES["shape"].index("square") + 1  # centre (0.75, 0.75)
    assert grid["size"][6, 6] == ATTRIBUTES["size"].index("small") + 1
    assert grid["shape"][0, 7] == 0 and grid["shape"][7, 0] == 0  # empty corners: background
    empty = patch_labels(Scene(()), [], (8, 8))
    assert all(int(v.sum()) == 0 for v in empty.values())
    weights = object_weights(np.stack(rendered.masks), (8, 8))
    assert weights.shape == (2, 64) and torch.allclose(weights.sum(1), torch.ones(2))
    assert int(weights[0].argmax()) // 8 in (1, 2) and int(weights[1].argmax()) // 8 in (5, 6)


def test_pretrain_clip_tower_trains_and_saves_a_tower_a_planner_is_built_on(tmp_path):
    from vitron.agent.training.nano import build_nano_vitron

    before = {k: v.clone() for k, v in make_pretrainer("clip_tower", 0).model.state_dict().items()}
    out = tmp_path / "tower"
    assert main(["pretrain", "clip_tower", "--seed", "0", "--out", str(out), "--steps", "2",
                 "--eval-count", "3"]) == 0  # fmt: skip
    report = json.loads((out / "pretrain.json").read_text())
    assert set(report["metrics"]) == {f"{p}_{k}" for p in ("patch", "object") for k in ATTRIBUTES}
    assert all(0.0 <= v <= 1.0 for v in report["metrics"].values())
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "clip_vision_model" and config["patch_size"] == 8
    context = types.SimpleNamespace(device=torch.device("cpu"), dtype=torch.float32)
    spec = ComponentSpec(name="clip_tower", loader="vision_tower", checkpoint=str(out), profile="t")
    assert isinstance(find_loader(spec)(spec, context), CLIPVisionModel)  # the profile's loader
    model, _ = build_nano_vitron(out, corpus_samples=2)  # 64 tokens a picture, 128 wide
    assert model.image_encoder.tokens_per_image == 64 and model.image_encoder.hidden_size == 128
    after = model.image_encoder.tower.state_dict()
    assert any(not torch.equal(before[f"tower.{k}"], v) for k, v in after.items())  # it trained
