"""Image-to-video in the shapes world: the ``image_to_video`` task (scored only when named, from
its own indices), which asks what ``video_tools`` teaches the planner to pass on to
``image_to_video``, and its judge of the clip the tool made. Clips T x S x S x 3 uint8."""

from __future__ import annotations

import re

import numpy as np
import pytest

from tests.evals.oracle import CURRENT, oracle_planner, oracle_tools
from vitron.evals.classifier import load_classifier
from vitron.evals.report import markdown
from vitron.evals.runner import EvalSettings, _shapes_samples, evaluate
from vitron.evals.scoring import PSNR_CAP, judge_animation
from vitron.evals.shapes.dataset import EVAL_TASKS, fingerprint, make_sample
from vitron.evals.shapes.tasks import ANIMATE, ON_REQUEST
from vitron.evals.shapes.video import DIRECTIONS, shrink
from vitron.tools.backend import Backend, ToolOutput, VitronTool, registered_backends


def _samples(count: int) -> list:
    return _shapes_samples("test", count, 0, ["image_to_video"])


def test_samples_ask_to_animate_the_picture_as_video_tools_words_it():
    samples = _samples(8)
    assert "image_to_video" in ON_REQUEST and "image_to_video" not in EVAL_TASKS
    assert fingerprint(make_sample("test", 3, tasks=["image_to_video"])) == fingerprint(samples[3])
    for sample in samples:
        gold, (call,) = sample.gold, sample.calls
        text = call.args["instruction"]
        assert call.name == "image_to_video" and call.args["image"] == "<media:0>"
        assert re.fullmatch(rf"the .+ moves {gold['direction']}", text)
        assert any(t.format(t=text) == sample.instruction for t in ANIMATE)
        assert np.array_equal(gold["picture"], sample.media[0].pixels)
        assert gold["reference"].shape == (8, 32, 32, 3)
        assert np.array_equal(gold["reference"][0], shrink(gold["picture"], 32))
        assert gold["colour"] in {o["colour"] for o in gold["objects"]}
    assert {s.gold["direction"] for s in _samples(16)} == set(DIRECTIONS)


def test_the_judge_scores_the_worlds_clip_and_not_noise():
    judge = load_classifier()
    world, noise = [], []
    for index, sample in enumerate(_samples(8)):
        gold = sample.gold
        world.append(judge_animation(gold["reference"], gold, judge))
        rng = np.random.default_rng(index)
        noise.append(judge_animation(rng.integers(0, 256, gold["reference"].shape, np.uint8),
                                     gold, judge))  # fmt: skip
    assert all(w["psnr_first"] == PSNR_CAP for w in world)
    assert all(w["direction"] == 1.0 and w["moved"] == s.gold["direction"]
               for w, s in zip(world, _samples(8), strict=True))  # fmt: skip
    assert np.mean([w["objects_kept"] for w in world]) >= 0.7
    assert all(n["psnr_first"] < 12 for n in noise)
    assert np.mean([n["objects_kept"] for n in noise]) < 0.3
    assert np.mean([n["direction"] for n in noise]) < 0.5


def test_through_the_graph_the_worlds_clip_scores_and_noise_does_not(tmp_path):
    samples = _samples(4)

    def noise(args, call) -> ToolOutput:
        shape = CURRENT["sample"].gold["reference"].shape
        frames = np.random.default_rng(0).integers(0, 256, shape, np.uint8)
        handle = call.workspace.put_video(list(frames), 4.0, lossless=True, source="test").handle
        return ToolOutput(content=handle, data={"video": handle})

    schema = registered_backends()["image_to_video"].args_schema
    noise_tools = [t for t in oracle_tools() if t.name != "image_to_video"]
    noise_tools.append(VitronTool(Backend("image_to_video", schema, noise, "noise")))
    rows = {}
    for name, tools in (("world", oracle_tools()), ("noise", noise_tools)):
        settings = EvalSettings(workspace=str(tmp_path / name), device="cpu", progress=False)
        report = evaluate(settings, samples, planner=oracle_planner, tools=tools,
                          classifier=load_classifier())  # fmt: skip
        rows[name] = report["runs"][0]["tasks"]["image_to_video"]
    world, noisy = rows["world"], rows["noise"]
    assert world["execution"] == world["module"] == world["arguments"] == 1.0
    assert world["psnr_first"] > 45  # stored losslessly: colour-conversion rounding only
    assert world["direction"] == 1.0
    assert world["objects_kept"] == pytest.approx(world["objects_kept_reference"], abs=0.05)
    assert noisy["psnr_first"] < 12 and noisy["objects_kept"] < world["objects_kept"] / 2
    assert world["chance"] == {"direction": 0.25}
    assert "PSNR first" in markdown(report) and "objects kept" in markdown(report)
