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


def test_a_checkpointer_place_that_cannot_hold_conversations_is_one_clear_error(tmp_path):
    """A file where the workspace folder belongs, a folder that cannot be made, a file that is
    not SQLite: each used to surface as a bare OSError or sqlite3 error."""
    from vitron.graphs.persistence import sqlite_checkpointer
    from vitron.tools.errors import VitronToolError

    a_file = tmp_path / "workspace"
    a_file.write_text("")
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database, but long enough to be read as one's header")
    cases = {
        a_file: "it is a file, not a folder",
        a_file / "below" / "db.sqlite": "Not a directory",
        notes: "file is not a database",
    }
    for place, reason in cases.items():
        with pytest.raises(VitronToolError, match=f"cannot keep conversations in .*: {reason}"):
            sqlite_checkpointer(place)
    assert (
        sqlite_checkpointer(tmp_path / "fine").get_tuple({"configurable": {"thread_id": "t"}})
        is None
    )
