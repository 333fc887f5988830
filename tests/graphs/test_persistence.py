"""Multi-turn conversations persist in SQLite and resume by thread id in a new process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_turn(turn: int, workspace: Path) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "tests.graphs.session_script", str(turn), str(workspace)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.heavy
def test_second_turn_in_a_new_process_uses_the_mask_from_the_first(tmp_path):
    first = run_turn(1, tmp_path)
    types = [m["type"] for m in first["messages"]]
    assert types == ["human", "ai", "tool", "ai"]
    mask = next(h for h in first["media"] if h.startswith("mask_"))
    assert first["media"][mask]["source"] == "segment_image"
    # the second planner step saw the first tool's result
    assert first["seen"][0][-1].startswith("ToolMessage:" + mask)

    second = run_turn(2, tmp_path)  # a new process: everything comes from SQLite and the workspace
    assert second["messages"][: len(first["messages"])] == first["messages"]
    assert [m["type"] for m in second["messages"][4:]] == ["human", "ai", "tool", "ai"]
    ground_result = second["messages"][6]
    assert ground_result["status"] == "success" and f"nearest to {mask}" in ground_result["text"]
    assert set(first["media"]) < set(second["media"])
    assert all(second["media"][h] == info for h, info in first["media"].items())
