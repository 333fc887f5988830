"""The image-editing task's scores per operation: a background change ("make the background
beige") is judged by the tone around the objects, the others by the attribute classifier; the gold
edit scores 1 on both, the input handed back unchanged scores 0 on a restyle."""

from __future__ import annotations

import numpy as np

from tests.evals.oracle import CURRENT, oracle_planner, oracle_tools
from vitron.evals.classifier import load_classifier
from vitron.evals.report import markdown
from vitron.evals.restyle import background_tone
from vitron.evals.runner import EvalSettings, _shapes_samples, evaluate
from vitron.tools.backend import Backend, ToolOutput, VitronTool, registered_backends


def _restyles_and_recolours(count: int) -> list:
    samples = _shapes_samples("test", 60, 0, ["editing"])
    kept = [s for s in samples if s.gold["operation"] in ("restyle", "recolor")]
    return kept[:count]


def _unedited_tools() -> list[VitronTool]:
    """The oracle's tools, except that ``edit_image`` hands the input picture back."""

    def unchanged(args, call) -> ToolOutput:
        stored = call.workspace.put_image(CURRENT["sample"].media[0].pixels, source="test")
        return ToolOutput(content=stored.handle, created=[stored], data={"image": stored.handle})

    schema = registered_backends()["edit_image"].args_schema
    keep = [t for t in oracle_tools() if t.name != "edit_image"]
    return [*keep, VitronTool(Backend("edit_image", schema, unchanged, "returns its input"))]


def test_a_background_change_names_the_tone_it_asks_for():
    for sample in _restyles_and_recolours(12):
        gold = sample.gold
        if gold["operation"] != "restyle":
            assert gold["background"] is None
            continue
        assert gold["edit"] == f"make the background {gold['background']}"
        objects = ~gold["region"]
        assert background_tone(gold["after"], objects) == gold["background"]
        assert background_tone(sample.media[0].pixels, objects) != gold["background"]


def test_editing_is_scored_per_operation_and_a_restyle_by_its_background(tmp_path):
    samples = _restyles_and_recolours(8)
    assert {s.gold["operation"] for s in samples} == {"restyle", "recolor"}
    rows, judge = {}, load_classifier()
    for name, tools in (("gold", oracle_tools()), ("unedited", _unedited_tools())):
        settings = EvalSettings(workspace=str(tmp_path / name), device="cpu", progress=False)
        report = evaluate(settings, samples, planner=oracle_planner, tools=tools,
                          classifier=judge)  # fmt: skip
        rows[name] = report["runs"][0]["tasks"]["editing"]
    gold, unedited = rows["gold"]["per_operation"], rows["unedited"]["per_operation"]
    assert gold["restyle"]["attribute_accuracy"] == 1.0
    assert unedited["restyle"]["attribute_accuracy"] == 0.0
    assert unedited["restyle"]["psnr_outside"] == 100.0  # the objects untouched: capped
    # a recolour handed back unchanged keeps the old colour
    assert gold["recolor"]["attribute_accuracy"] == 1.0 > unedited["recolor"]["attribute_accuracy"]
    assert "per operation (attr acc / PSNR out): recolor" in markdown(report)


def test_the_tone_is_read_around_the_objects():
    image = np.zeros((8, 8, 3), dtype=np.uint8)
    image[:] = (200, 185, 150)  # beige
    image[2:6, 2:6] = (25, 25, 30)  # a black object
    objects = np.zeros((8, 8), dtype=bool)
    objects[2:6, 2:6] = True
    assert background_tone(image, objects) == "beige"
