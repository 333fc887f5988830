"""Video editing in the shapes world: the ``video_editing`` task (scored only when named, from its
own indices) and its judge of the edited clip. Frames T x S x S x 3 uint8; boxes normalised
[x1, y1, x2, y2], top-left origin."""

from __future__ import annotations

import numpy as np

from tests.evals.oracle import CURRENT, oracle_planner, oracle_tools
from vitron.evals.classifier import load_classifier
from vitron.evals.report import markdown
from vitron.evals.runner import EvalSettings, _shapes_samples, classifier_self_check, evaluate
from vitron.evals.shapes.dataset import EVAL_TASKS, fingerprint, make_sample
from vitron.tools.backend import Backend, ToolOutput, VitronTool, registered_backends


def _samples(count: int) -> list:
    return _shapes_samples("test", count, 0, ["video_editing"])


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
