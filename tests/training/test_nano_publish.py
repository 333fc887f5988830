"""``publish`` copies a finished nano run's planner and every aligned projector into a profile
folder (the ablation's set under its suffix), and refuses an unfinished run."""

from __future__ import annotations

import json

import pytest

from vitron.agent.training.nano import PROJECTORS, STAGE_ORDER, publish


def finished_run(root):
    (root / "ground" / "llm").mkdir(parents=True)
    (root / "ground" / "llm" / "config.json").write_text("{}")
    for name in PROJECTORS:
        (root / "invoke" / "projectors" / name).mkdir(parents=True)
        (root / "invoke" / "projectors" / name / "projector_config.json").write_text(name)
    for stage in STAGE_ORDER:
        (root / stage).mkdir(exist_ok=True)
        (root / stage / "metrics.jsonl").write_text(
            '{"step": 1, "lm": 2.0}\n{"step": 2, "lm": 1.0}\n'
        )
        (root / stage / "train_config.json").write_text(json.dumps({"stage": stage, "data": []}))
    (root / "data").mkdir()
    (root / "data" / "train.jsonl").write_text("{}\n{}\n{}\n")
    (root / "times.json").write_text('{"base": 10.0}')
    return root


@pytest.mark.parametrize("suffix", ["", "_no_synergy"])
def test_the_planner_and_every_projector_land_in_the_profile(tmp_path, suffix):
    run, profile = finished_run(tmp_path / "run"), tmp_path / "profile"
    summary = publish(run, profile, suffix=suffix)
    assert (profile / f"vitron_llm{suffix}" / "config.json").is_file()
    for name in ("sam_signal", "sam2_signal", "image_signal"):
        assert (profile / f"{name}{suffix}" / "projector_config.json").read_text() == name
    assert summary["records"] == 3 and summary["ground"]["last_logged"]["lm"] == 1.0
    written = json.loads((profile / f"vitron_llm{suffix}" / "training.json").read_text())
    assert written["times_s"] == {"base": 10.0} and "data" not in written["base"]["config"]


def test_an_unfinished_run_is_refused_and_the_profile_left_alone(tmp_path):
    run = finished_run(tmp_path / "run")
    (run / "invoke" / "projectors" / "sam2_signal" / "projector_config.json").unlink()
    (run / "invoke" / "projectors" / "sam2_signal").rmdir()
    profile = tmp_path / "profile"
    (profile / "vitron_llm").mkdir(parents=True)
    (profile / "vitron_llm" / "keep.txt").write_text("old")
    with pytest.raises(FileNotFoundError, match="sam2_signal is missing"):
        publish(run, profile)
    assert (profile / "vitron_llm" / "keep.txt").read_text() == "old"
