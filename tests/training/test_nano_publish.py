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


def test_a_planner_that_reads_objects_names_the_profiles_segmenter_after_publishing(tmp_path):
    from vitron.agent.objects import OBJECT_FINDER_FILE, ObjectFinderSettings

    run, profile = finished_run(tmp_path / "run"), tmp_path / "profile"
    (profile / "sam").mkdir(parents=True)
    # as save_vitron wrote it in the run: relative to run/ground/llm
    ObjectFinderSettings(source="../../../profile/sam").save(run / "ground" / "llm")
    summary = publish(run, profile)
    moved = ObjectFinderSettings.read(profile / "vitron_llm")
    assert moved is not None and moved.source == "../sam"
    assert moved.source_path(profile / "vitron_llm") == (profile / "sam").resolve()
    assert summary["objects"] is True
    (run / "ground" / "llm" / OBJECT_FINDER_FILE).unlink()
    assert publish(run, profile)["objects"] is False


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


def test_realigned_projectors_replace_the_profiles_and_the_planner_stays(tmp_path):
    """``publish_projectors`` copies a re-alignment's projectors (under the ablation's suffix when
    asked) and records it in the planner's ``training.json``; the planner's weights are kept."""
    from vitron.agent.training.nano import publish_projectors

    run, profile = tmp_path / "run", tmp_path / "profile"
    for name in PROJECTORS:
        (run / "realign" / "projectors" / name).mkdir(parents=True)
        (run / "realign" / "projectors" / name / "projector_config.json").write_text("new")
        (profile / f"{name}_no_synergy").mkdir(parents=True)
        (profile / f"{name}_no_synergy" / "projector_config.json").write_text("old")
    (profile / "vitron_llm_no_synergy").mkdir()
    (profile / "vitron_llm_no_synergy" / "model.safetensors").write_text("planner")
    (profile / "vitron_llm_no_synergy" / "training.json").write_text('{"records": 6000}')
    report = {"seconds": 1.0, "steps": 150, "records": 3000, "last_logged": {"step": 150}}
    publish_projectors(run, profile, report, suffix="_no_synergy", command="python -m x")
    for name in PROJECTORS:
        assert (profile / f"{name}_no_synergy" / "projector_config.json").read_text() == "new"
    assert (profile / "vitron_llm_no_synergy" / "model.safetensors").read_text() == "planner"
    summary = json.loads((profile / "vitron_llm_no_synergy" / "training.json").read_text())
    assert summary["records"] == 6000 and summary["realigned"]["steps"] == 150
    assert summary["realigned"]["command"] == "python -m x"


def test_an_unfinished_realignment_is_refused(tmp_path):
    from vitron.agent.training.nano import publish_projectors

    (tmp_path / "run" / "realign" / "projectors" / "sam_signal").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="sam2_signal"):
        publish_projectors(tmp_path / "run", tmp_path / "profile", {})
    assert not (tmp_path / "profile").exists()


def test_publish_records_the_recipe_and_a_build_retraces_it(tmp_path):
    from vitron.agent.training.nano import RECIPE_FILE
    from vitron.apps.nano_build import committed_plan

    run, profile = finished_run(tmp_path / "run"), tmp_path / "profile"
    recipe = {"glue": {"video_num_frames": 16}, "data_tasks": ["multi_step", "vqa"]}
    (run / RECIPE_FILE).write_text(json.dumps(recipe))
    assert publish(run, profile)["recipe"] == recipe
    assert committed_plan(profile).planner_recipe == recipe
    (run / RECIPE_FILE).unlink()
    assert "recipe" not in publish(run, profile)
    assert committed_plan(profile).planner_recipe == {}
