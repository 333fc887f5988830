"""Layout-to-image in the shapes world: the ``layout`` task (scored only when named, from its own
indices), its placement check, and its row. Boxes: normalised [x1, y1, x2, y2], top-left origin."""

from __future__ import annotations

import numpy as np
import pytest

from tests.evals.oracle import oracle_planner, oracle_tools
from vitron.evals.classifier import load_classifier
from vitron.evals.metrics import best_box_iou, colour_boxes
from vitron.evals.report import markdown
from vitron.evals.runner import EvalSettings, _shapes_samples, evaluate
from vitron.evals.scoring import judge_layout
from vitron.evals.shapes.dataset import EVAL_TASKS, fingerprint, make_sample
from vitron.evals.shapes.vocab import BACKGROUNDS, COLOURS


def test_layout_samples_ask_gligen_for_each_objects_box():
    sample = make_sample("test", 3, tasks=["layout"])
    again = make_sample("test", 3, tasks=["layout"])
    assert fingerprint(sample) == fingerprint(again) and "layout-000003" in sample.id
    (call,) = sample.calls
    args = call.args
    assert call.name == "generate_image" and len(args["regions"]) == len(args["phrases"]) >= 1
    assert [o["box"] for o in sample.gold["objects"]] == args["regions"]
    assert sample.gold["reference"].shape == (32, 32, 3)
    for phrase, box in zip(args["phrases"], args["regions"], strict=True):
        assert phrase in sample.instruction and f"{box[0]:.3f}" in sample.instruction


def test_layout_is_scored_on_request_and_moves_no_other_sample():
    assert "layout" not in EVAL_TASKS
    alone = _shapes_samples("test", 4, 0, ["layout"])
    assert [s.task for s in alone] == ["layout"] * 4
    mixed = _shapes_samples("test", 4, 0, ["grounding", "layout"])
    assert [s.task for s in mixed] == ["grounding", "layout"] * 2
    grounding = _shapes_samples("test", 2, 0, ["grounding"])
    assert [s.id for s in mixed[::2]] == [s.id for s in grounding]
    assert [s.id for s in mixed[1::2]] == [s.id for s in alone[:2]]
    with pytest.raises(ValueError, match="on request: layout"):
        _shapes_samples("test", 1, 0, ["layouts"])


def test_the_placement_check_finds_a_drawn_object_of_the_asked_colour():
    image = np.full((32, 32, 3), BACKGROUNDS["white"], np.uint8)
    image[8:16, 4:12] = COLOURS["red"]
    image[8:16, 4:12:2] = (np.array(COLOURS["red"]) * 0.55).astype(np.uint8)  # a striped red
    image[20:28, 20:28] = COLOURS["blue"]
    assert colour_boxes(image, "red", COLOURS) == [[0.125, 0.25, 0.375, 0.5]]
    assert colour_boxes(image, "green", COLOURS) == []
    assert best_box_iou(colour_boxes(image, "blue", COLOURS), [0.625, 0.625, 0.875, 0.875]) == 1.0


def test_the_worlds_own_renders_pass_and_a_blank_picture_fails():
    judge = load_classifier()
    judged, blank = [], []
    for index in range(40):
        sample = make_sample("test", index, tasks=["layout"])
        gold = sample.gold
        judged += judge_layout(judge, gold["reference"], gold["objects"], gold["reference"])
        empty = np.full_like(gold["reference"], gold["reference"][0, 0])
        blank += judge_layout(judge, empty, gold["objects"])
    assert np.mean([j["placed"] for j in judged]) >= 0.9
    assert np.mean([j["hit"] for j in judged]) >= 0.8
    assert all(j["placed"] == j["reference"] for j in judged)
    assert sum(j["placed"] for j in blank) == 0 and sum(j["hit"] for j in blank) == 0


def test_the_layout_row_pools_objects_and_says_what_it_counts(tmp_path):
    samples = _shapes_samples("test", 3, 0, ["layout"])
    settings = EvalSettings(workspace=str(tmp_path / "ws"), device="cpu", progress=False)
    report = evaluate(settings, samples, planner=oracle_planner, tools=oracle_tools(),
                      classifier=load_classifier())  # fmt: skip
    (run,) = report["runs"]
    row = run["tasks"]["layout"]
    objects = sum(len(s.gold["objects"]) for s in samples)
    assert row["n"] == 3 and row["execution"] == row["module"] == row["arguments"] == 1.0
    assert row["placed"] == row["placed_reference"]  # the oracle draws the world's own render
    assert row["in_box"] * objects == pytest.approx(round(row["in_box"] * objects))
    table = markdown(report)
    assert "in box" in table and "full layout: objects drawn in their box" in table
