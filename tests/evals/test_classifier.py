"""The shapes world's attribute classifier: trained weights ship, read the world, and retrain."""

from __future__ import annotations

import json

import numpy as np

from vitron.evals.classifier import (
    HEADS,
    SHIPPED,
    held_out_accuracy,
    load_classifier,
    main,
)
from vitron.evals.shapes.scene import Obj, Scene, render


def test_the_shipped_classifier_reads_shape_colour_and_position_on_fresh_renders():
    accuracy = held_out_accuracy(load_classifier(), seed=777, count=150)
    assert set(accuracy) == set(HEADS)
    # random weights read about 0.2 / 0.17 / 0.33; the trained judge must be far above
    assert min(accuracy.values()) >= 0.9, accuracy


def test_a_box_picks_the_object_that_is_judged():
    scene = Scene(
        (Obj("star", "orange", "large", "plain", 0.25, 0.5),
         Obj("circle", "blue", "large", "plain", 0.75, 0.5)),
        "white",
    )  # fmt: skip
    rendered = render(scene)
    classifier = load_classifier()
    assert classifier.predict(rendered.image, rendered.boxes[0])["colour"] == "orange"
    seen = classifier.predict(rendered.image, rendered.boxes[1])
    assert (seen["shape"], seen["colour"]) == ("circle", "blue")


def test_the_training_command_writes_weights_and_a_card_that_load(tmp_path, capsys):
    assert main(["--seed", "3", "--steps", "3", "--out", str(tmp_path)]) == 0
    card = json.loads((tmp_path / "attribute_classifier.json").read_text())
    assert card["seed"] == 3 and set(card["held_out_accuracy"]) == set(HEADS)
    seen = load_classifier(tmp_path).predict(np.zeros((40, 50, 3), dtype=np.uint8))
    assert set(seen) == set(HEADS)


def test_the_shipped_card_states_how_the_weights_were_made():
    card = json.loads((SHIPPED / "attribute_classifier.json").read_text())
    assert card["command"].startswith("python -m vitron.evals.classifier")
    assert min(card["held_out_accuracy"].values()) >= 0.9
