"""``realign_signals``: the committed nano planner's projectors re-aligned through the profile's
current decoders, the planner frozen, on the training records that carry a signal."""

from __future__ import annotations

import json

import torch

from vitron.agent.build import load_vitron
from vitron.agent.training.nano import PROJECTORS, SIGNAL_RECORDS, _profile_path, realign_signals


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
