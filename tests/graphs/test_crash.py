"""A process killed with SIGKILL in the middle of a turn loses nothing, and the thread goes on.

Each case runs turn 1 in a child process that kills itself at a chosen point — inside a tool call
(its output written to a temporary file, not yet renamed into place) or inside the SQLite transaction
storing the checkpoint after a tool — then turn 2 in a new process, with a planner that validates
the history as the OpenAI and Anthropic APIs do. The two cases run side by side to save time.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CASES = ("tool", "checkpoint")


def run_all(mode_of: dict[str, str], tmp_path: Path) -> dict[str, tuple[int, str, str]]:
    """Run ``crash_script`` for each case at once; returns (returncode, stdout, stderr) per case."""
    processes = {
        case: subprocess.Popen(
            [sys.executable, "-m", "tests.graphs.crash_script", mode, str(tmp_path / case)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for case, mode in mode_of.items()
    }
    results = {}
    for case, process in processes.items():
        out, err = process.communicate(timeout=300)
        results[case] = (process.returncode, out, err)
    return results


@pytest.mark.heavy  # four processes that each import the model libraries
def test_a_thread_killed_mid_turn_resumes_in_a_new_process(tmp_path):
    crashed = run_all({case: case for case in CASES}, tmp_path)
    for case, (code, _, err) in crashed.items():
        assert code == -signal.SIGKILL, f"{case}: {err[-3000:]}"
    # killed between writing the mask and renaming it into place: a temporary file is left
    assert list((tmp_path / "tool" / ".tmp").iterdir())

    resumed = run_all({case: "resume" for case in CASES}, tmp_path)
    for case, (code, out, err) in resumed.items():
        assert code == 0, f"{case}: {err[-3000:]}"
        state = json.loads(out.strip().splitlines()[-1])
        messages = state["messages"]
        assert [m["type"] for m in messages] == ["human", "ai", "tool", "human", "ai"], case
        photo = next(h for h, info in state["media"].items() if info["source"] == "user")
        assert photo in messages[0]["text"] and "base64" not in messages[0]["text"]
        assert messages[2]["tool_call_id"] == messages[1]["calls"][0]  # answered right after
        if case == "tool":  # the tool never finished: its call is answered with an error
            assert messages[2]["status"] == "error" and "interrupted" in messages[2]["text"]
        else:  # the tool finished and saved its result before the checkpoint broke: kept
            assert messages[2]["status"] == "success", messages[2]
            mask = messages[2]["text"].split(":")[0]
            assert state["media"][mask]["source"] == "segment_image"
        # the history-validating planner answered turn 2
        assert messages[4]["text"] == "Turn 2 sees 4 messages.", case

        workspace = tmp_path / case
        for handle in state["media"]:  # nothing the thread names is missing
            kind = handle.split("_")[0]
            assert (workspace / "crash-thread" / kind / f"{handle}.png").is_file()
        assert not [p for p in workspace.rglob("*") if p.is_file() and p.parent.name == ".tmp"]
