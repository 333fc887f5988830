"""``realign_signals``: the committed nano planner's projectors re-aligned through the profile's
current decoders, the planner frozen, on the training records that carry a signal."""

from __future__ import annotations

import json

import pytest
import torch

from vitron.agent.build import load_vitron
from vitron.agent.training.nano import (
    PROJECTORS,
    SIGNAL_RECORDS,
    _profile_path,
    main,
    publish_projectors,
    realign_signals,
)


def test_a_short_realignment_keeps_the_planner_and_writes_every_projector(tmp_path):
    planner = _profile_path("nano", "vitron_llm")
    report = realign_signals(tmp_path, planner, seed=1, records=40, steps=3)
    kept = [json.loads(line) for line in (tmp_path / "data" / SIGNAL_RECORDS).open()]
    assert kept and all(record["signals"] for record in kept) and report["records"] == len(kept)
    assert report["steps"] == 3 and {"mask_bce", "caption_mse"} <= set(report["last_logged"])
    for name in PROJECTORS:
        assert (tmp_path / "realign" / "projectors" / name / "model.safetensors").is_file()
    before, _ = load_vitron(planner, dtype="float32")
    after, _ = load_vitron(tmp_path / "realign" / "llm", dtype="float32")
    expected = before.state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in after.state_dict().items())
    assert (
        realign_signals(tmp_path, planner, seed=1, records=40, steps=3) == report
    )  # finished: read back


def test_publishing_some_projectors_copies_only_those_and_records_which(tmp_path):
    """A projector added after its planner (``video_signal``) is published alone: the others stay
    as the planner's own stage 2 left them, and ``training.json`` says which were re-aligned."""
    run = tmp_path / "run"
    for name in PROJECTORS:
        folder = run / "realign" / "projectors" / name
        folder.mkdir(parents=True)
        (folder / "model.safetensors").write_text(f"re-aligned {name}")
    profile = tmp_path / "profile"
    (profile / "vitron_llm").mkdir(parents=True)
    (profile / "vitron_llm" / "training.json").write_text(json.dumps({"records": 6000}))
    (profile / "image_signal").mkdir()
    (profile / "image_signal" / "model.safetensors").write_text("the planner's own")
    report = {"seconds": 1.0, "steps": 3}
    publish_projectors(run, profile, report, command="nano RUN --realign P",
                       projectors=["video_signal"])  # fmt: skip
    assert (profile / "video_signal" / "model.safetensors").read_text() == "re-aligned video_signal"
    assert (profile / "image_signal" / "model.safetensors").read_text() == "the planner's own"
    assert not (profile / "sam_signal").exists()
    summary = json.loads((profile / "vitron_llm" / "training.json").read_text())
    assert summary["records"] == 6000
    assert summary["realigned_video_signal"] == report | {
        "projectors": ["video_signal"], "command": "nano RUN --realign P"}  # fmt: skip
    with pytest.raises(ValueError, match="video_signal"):
        publish_projectors(run, profile, report, projectors=["gligen_signal"])


def test_an_unknown_projector_name_is_refused_before_anything_runs(tmp_path, capsys):
    argv = [str(tmp_path / "run"), "--realign", "PLANNER", "--projectors", "video_signa"]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "--projectors: some of sam_signal" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
