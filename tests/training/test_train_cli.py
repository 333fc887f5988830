"""``vitron train``: the help names the stages, the synergy switch and resume; a config runs."""

from __future__ import annotations

import json

import pytest

from tests.training.data import make_dataset
from vitron.apps.cli import build_parser, main


def test_help_lists_stages_synergy_switch_and_resume(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    text = capsys.readouterr().out
    for needle in ("align", "invoke", "ground", "--no-synergy", "--resume", "--config"):
        assert needle in text


def test_bad_config_is_a_clear_error(tmp_path, capsys):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"stage": "align", "output_dir": "out", "data": [], "colour": 1}))
    assert main(["train", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "bad.json" in err and "colour" in err and "data" in err


def test_a_stage_runs_from_a_config_file(tmp_path, capsys):
    make_dataset(tmp_path / "data", 4)
    config = tmp_path / "align.toml"
    config.write_text(
        'stage = "invoke"\noutput_dir = "run"\nbatch_size = 2\n'
        'signal_alignment = false\n[[data]]\nroot = "data"\n'
    )
    code = main(["train", "--stage", "align", "--config", str(config), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "trained 2 steps" in out and "--profile" in out
    saved = json.loads((tmp_path / "run/train_config.json").read_text())
    assert saved["stage"] == "align"  # the flag won, and the config was saved beside the run
    assert (tmp_path / "run/metrics.jsonl").read_text().count("\n") == 2
    assert (tmp_path / "run/profile.toml").is_file()
