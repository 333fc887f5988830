"""Text-to-video and video editing in the shapes world: the ``video_generation`` and
``video_editing`` tasks (scored only when named, each from its own indices) and their judges of the
clip a tool made. Frames T x S x S x 3 uint8; boxes normalised [x1, y1, x2, y2], top-left origin."""

from __future__ import annotations

import numpy as np
import pytest

from tests.evals.oracle import CURRENT, oracle_planner, oracle_tools
from vitron.evals.classifier import load_classifier
from vitron.evals.metrics import motion_direction
from vitron.evals.report import markdown
from vitron.evals.runner import EvalSettings, _shapes_samples, classifier_self_check, evaluate
from vitron.evals.shapes.dataset import EVAL_TASKS, fingerprint, make_sample
from vitron.evals.shapes.video import inside, moving_video
from vitron.evals.shapes.vocab import COLOURS
from vitron.tools.backend import Backend, ToolOutput, VitronTool, registered_backends


def _samples(count: int, task: str = "video_editing") -> list:
    return _shapes_samples("test", count, 0, [task])


def test_video_editing_samples_carry_the_edited_clip_and_where_to_judge_it():
    samples = _samples(12)
    assert "video_editing" not in EVAL_TASKS
    assert fingerprint(make_sample("test", 2, tasks=["video_editing"])) == fingerprint(samples[2])
    assert {s.gold["operation"] for s in samples} == {"recolor", "remove"}
    for sample in samples:
        gold, (call,) = sample.gold, sample.calls
        before = sample.media[0].pixels
        assert call.name == "edit_video" and call.args["instruction"] == gold["edit"]
        assert gold["edit"] in sample.instruction
        assert gold["after"].shape == before.shape and gold["region"].shape == before.shape[:3]
        changed = (gold["after"] != before).any(axis=3)
        assert np.array_equal(changed, gold["region"]) and changed.any()
        assert len(gold["frames"]) == len(gold["boxes"]) >= 1
        if gold["operation"] == "recolor":
            assert gold["expected"]["colour"] != gold["colour"]
            assert gold["edit"].endswith(gold["expected"]["colour"])
        else:
            assert gold["expected"] is None and gold["edit"].startswith("remove ")


def test_the_classifier_reads_the_gold_frames_it_judges():
    accuracy = classifier_self_check(load_classifier(), _samples(12))
    assert accuracy["all"] >= 0.9


def _unedited_tools() -> list[VitronTool]:
    """The oracle's tools, except that ``edit_video`` hands the input clip back unchanged."""

    def unchanged(args, call) -> ToolOutput:
        frames = CURRENT["sample"].media[0].pixels
        handle = call.workspace.put_video(list(frames), 4.0, lossless=True, source="test").handle
        return ToolOutput(content=handle, data={"video": handle})

    schema = registered_backends()["edit_video"].args_schema
    keep = [t for t in oracle_tools() if t.name != "edit_video"]
    return [*keep, VitronTool(Backend("edit_video", schema, unchanged, "returns its input"))]


def test_the_gold_clip_scores_every_frame_and_the_unedited_clip_none(tmp_path):
    samples = _samples(6)  # four recolours and two removals
    judge = load_classifier()
    rows = {}
    for name, tools in (("gold", oracle_tools()), ("unedited", _unedited_tools())):
        settings = EvalSettings(workspace=str(tmp_path / name), device="cpu", progress=False)
        report = evaluate(settings, samples, planner=oracle_planner, tools=tools, classifier=judge)
        rows[name] = report["runs"][0]["tasks"]["video_editing"]
    gold, unedited = rows["gold"], rows["unedited"]
    assert gold["execution"] == gold["module"] == gold["arguments"] == 1.0
    assert gold["psnr_outside"] > 45  # stored losslessly: colour-conversion rounding only
    assert gold["frames_right"] == gold["attribute_accuracy"] == 1.0
    assert unedited["frames_right"] == unedited["attribute_accuracy"] == 0.0
    assert set(gold["per_operation"]) == {"recolor", "remove"}
    assert "frames right" in markdown(report)


def test_video_generation_samples_ask_for_one_object_moving_one_way():
    samples = _samples(12, "video_generation")
    assert "video_generation" not in EVAL_TASKS
    assert {s.gold["direction"] for s in samples} == {"left", "right", "up", "down"}
    for sample in samples:
        (call,) = sample.calls
        text, gold = call.args["instruction"], sample.gold
        assert call.name == "generate_video" and text in sample.instruction
        assert f"{gold['expected']['colour']} {gold['expected']['shape']} moving " in text
        assert gold["reference"].shape == (8, 32, 32, 3)
        colour = gold["expected"]["colour"]
        assert motion_direction(gold["reference"], colour, COLOURS) == gold["direction"]
        still = np.repeat(gold["reference"][:1], 8, axis=0)
        assert motion_direction(still, colour, COLOURS) is None  # an object that stays: no way


def test_moving_videos_keep_their_object_inside_every_frame():
    from vitron.evals.shapes.scene import random_object, training_combination

    rng = np.random.default_rng(0)
    for direction in ("left", "right", "up", "down"):
        for _ in range(50):
            clip = moving_video(rng, random_object(rng, training_combination), direction, "grey")
            assert all(inside(clip, 0, t) for t in range(clip.frames))


def test_the_worlds_own_clip_scores_and_a_still_one_does_not_move(tmp_path):
    samples = _samples(4, "video_generation")
    judge = load_classifier()

    def still(args, call) -> ToolOutput:
        first = CURRENT["sample"].gold["reference"][:1]
        handle = call.workspace.put_video(list(np.repeat(first, 8, axis=0)), 4.0, lossless=True,
                                          source="test").handle  # fmt: skip
        return ToolOutput(content=handle, data={"video": handle})

    schema = registered_backends()["generate_video"].args_schema
    still_tools = [t for t in oracle_tools() if t.name != "generate_video"]
    still_tools.append(VitronTool(Backend("generate_video", schema, still, "one frame, held")))
    rows = {}
    for name, tools in (("world", oracle_tools()), ("still", still_tools)):
        settings = EvalSettings(workspace=str(tmp_path / name), device="cpu", progress=False)
        report = evaluate(settings, samples, planner=oracle_planner, tools=tools, classifier=judge)
        rows[name] = report["runs"][0]["tasks"]["video_generation"]
    world, held = rows["world"], rows["still"]
    assert world["execution"] == world["module"] == world["arguments"] == 1.0
    assert world["direction"] == 1.0 and world["frames_right"] >= 0.9
    # a held frame is read as its first frame is, on every frame; it goes nowhere
    first = [judge.predict(s.gold["reference"][0]) for s in samples]
    read = [
        all(f[k] == v for k, v in s.gold["expected"].items())
        for f, s in zip(first, samples, strict=True)
    ]
    assert held["direction"] == 0.0 and held["frames_right"] == pytest.approx(np.mean(read))
    assert world["chance"] == {"direction": 0.25} and "direction" in markdown(report)
