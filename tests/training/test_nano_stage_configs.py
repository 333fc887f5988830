"""The nano run's steps: ``regions`` continues ``base`` with region captions added, before
Vitron's three stages, and is left out when it has no steps (the committed planner's recipe and
the micro run)."""

from __future__ import annotations

import pytest

from vitron.agent.training.config import TrainConfig
from vitron.agent.training.nano import DEFAULT_STEPS, MICRO, stage_configs


def _runs(tmp_path, parts):
    for part in parts:
        (tmp_path / part).mkdir()
        (tmp_path / part / "train.jsonl").write_text("{}\n")
    return tmp_path


def test_regions_continues_base_on_the_mix_plus_region_captions(tmp_path):
    run = _runs(tmp_path, ("data", "reading", "regions_data"))
    steps = DEFAULT_STEPS | {"regions": 500}
    configs = stage_configs(run, seed=1, profile="nano", steps=steps)
    assert list(configs) == ["base", "regions", "align", "invoke", "ground"]
    base, regions, align = configs["base"], configs["regions"], configs["align"]
    roots = [d["root"] for d in regions["data"]]
    assert roots == [str(run / "data"), str(run / "reading"), str(run / "regions_data")]
    assert [d["root"] for d in base["data"]] == roots[:2] == [d["root"] for d in align["data"]]
    assert regions["stage"] == "base" and regions["model"] == str(run / "base")
    assert regions["lr"] < base["lr"] and regions["max_steps"] == 500
    assert align["model"] == str(run / "regions")
    TrainConfig.from_dict(regions, source="regions")  # a valid vitron train config


@pytest.mark.parametrize("steps", [DEFAULT_STEPS, MICRO["steps"]], ids=["committed", "micro"])
def test_without_steps_regions_is_left_out(tmp_path, steps):
    run = _runs(tmp_path, ("data", "reading"))
    configs = stage_configs(run, seed=0, profile="nano", steps=steps)
    assert list(configs) == ["base", "align", "invoke", "ground"]
    assert configs["align"]["model"] == str(run / "base")
