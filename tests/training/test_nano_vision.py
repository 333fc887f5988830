"""Dense tower pretraining: each patch is labelled with the object covering it, and a few steps
move the tower the planner reads."""

from __future__ import annotations

import numpy as np
import torch

from vitron.agent.build import build_tiny_vitron
from vitron.agent.training.nano_vision import attribute_names, patch_labels, pretrain_tower
from vitron.evals.shapes.scene import Obj, Scene, render


def test_each_patch_names_the_object_covering_most_of_it_or_the_background():
    star = Obj("star", "red", "large", "striped", 0.25, 0.25)
    square = Obj("square", "blue", "small", "plain", 0.75, 0.75)
    scene = Scene((star, square))
    rendered = render(scene, 64)
    labels = patch_labels(scene, rendered.masks, (8, 8))
    names = attribute_names()
    grid = {k: v.reshape(8, 8) for k, v in labels.items()}
    assert grid["shape"][2, 2] == names["shape"].index("star") + 1  # centre (0.25, 0.25)
    assert grid["colour"][2, 2] == names["colour"].index("red") + 1
    assert grid["texture"][2, 2] == names["texture"].index("striped") + 1
    assert grid["shape"][6, 6] == names["shape"].index("square") + 1  # centre (0.75, 0.75)
    assert grid["size"][6, 6] == names["size"].index("small") + 1
    assert grid["shape"][0, 7] == 0 and grid["shape"][7, 0] == 0  # empty corners: background
    empty = patch_labels(Scene(()), [], (8, 8))
    assert all(int(v.sum()) == 0 for v in empty.values())


def test_a_few_steps_train_the_tower_in_place_and_report_held_out_accuracy():
    model, processor = build_tiny_vitron(seed=0)
    before = {k: v.clone() for k, v in model.image_encoder.state_dict().items()}
    report = pretrain_tower(model, processor, steps=2, batch_size=2, held_out=4, seed=0)
    after = model.image_encoder.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert set(report["held_out_patch_accuracy"]) == {"colour", "shape", "size", "texture"}
    assert all(0.0 <= v <= 1.0 for v in report["held_out_patch_accuracy"].values())
    assert np.isfinite(report["last_loss"]) and report["steps"] == 2
    assert not any(p.requires_grad for p in model.image_encoder.parameters())  # frozen again
