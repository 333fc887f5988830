"""Start-up cost before and after the lazy imports of issue 17, in one run on this machine:

- ``import vitron.graphs.studio`` wall time (fresh interpreter; median of ``--repeats``);
- ``langgraph dev`` time until ``/ok`` answers, and whether LangGraph logged its "Graph import
  exceeded the expected startup time" warning;
- one-shot ``vitron run`` on the ``tiny`` profile, in a new process: time until its first line of
  output, "loaded vitron_llm", printed as the planner is about to emit its first token (the CLI
  prints whole messages, not tokens; the tiny model's first token takes milliseconds more);
  median of ``--repeats``.

Both versions are checked out with ``git worktree`` into a temporary folder (``--before``,
default the last commit before the lazy imports, and ``--after``, default ``HEAD``) and imported
through a ``vitron`` folder of links to their code folders placed first on ``PYTHONPATH``, so the
installed environment is the same for both.

    .venv/bin/python benchmarks/bench_startup.py [--before REV] [--after REV] [--repeats 3]

This is a benchmark, not a test: it asserts nothing about time.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "6a9b188"
"""The last commit before issue 17's lazy imports."""
FOLDERS = ("agent", "apps", "evals", "graphs", "prompts", "tools")
WARNING = "Graph import exceeded"


def checkout(rev: str, into: Path) -> Path:
    """A worktree of ``rev`` at ``into`` plus the ``vitron`` link folder; returns PYTHONPATH."""
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(into / "tree"), rev],
                   check=True, capture_output=True)  # fmt: skip
    shim = into / "shim" / "vitron"
    shim.mkdir(parents=True)
    for folder in FOLDERS:
        if (into / "tree" / folder).is_dir():
            (shim / folder).symlink_to(into / "tree" / folder)
    return into / "shim"


def environment(path: Path, workspace: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(path),
        "VITRON_WORKSPACE": str(workspace),
        "VITRON_PROFILE": "tiny",
        "VITRON_DEVICE": "cpu",
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "LANGSMITH_TRACING": "false",
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
    }


def import_seconds(env: dict[str, str], repeats: int) -> float:
    code = ("import time; t = time.perf_counter(); import vitron.graphs.studio; "
            "print(time.perf_counter() - t)")  # fmt: skip
    times = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, check=True, cwd=tempfile.gettempdir())  # fmt: skip
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def dev_server_seconds(tree: Path, env: dict[str, str], log: Path) -> tuple[float, bool]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [str(Path(sys.executable).with_name("langgraph")), "dev", "--port", str(port),
               "--host", "127.0.0.1", "--no-browser", "--no-reload",
               "--config", str(tree / "langgraph.json")]  # fmt: skip
    with log.open("w") as out:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=tree, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            while process.poll() is None and time.perf_counter() - started < 300:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/ok", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    time.sleep(0.2)
            ready = time.perf_counter() - started
            time.sleep(1.0)  # let the start-up log flush
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
    return ready, WARNING in log.read_text()


def first_token_seconds(env: dict[str, str], workspace: Path) -> float:
    command = [sys.executable, "-m", "vitron.apps.cli", "run", "describe a red square",
               "--profile", "tiny", "--workspace", str(workspace), "--device", "cpu",
               "--no-progress", "--out", str(workspace / "out")]  # fmt: skip
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               cwd=tempfile.gettempdir())  # fmt: skip
    try:
        assert process.stdout is not None
        process.stdout.read(1)
        return time.perf_counter() - started
    finally:
        process.kill()
        process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", default=BEFORE)
    parser.add_argument("--after", default="HEAD")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = {}
        try:
            for label, rev in (("before", args.before), ("after", args.after)):
                base = Path(tmp) / label
                path = checkout(rev, base)
                env = environment(path, base / "ws")
                seconds = import_seconds(env, args.repeats)
                ready, warned = dev_server_seconds(base / "tree", env, base / "server.log")
                first = statistics.median(
                    first_token_seconds(env, base / f"ws{k}") for k in range(args.repeats)
                )
                rows[label] = (rev, seconds, ready, warned, first)
        finally:
            for label in ("before", "after"):
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                                str(Path(tmp) / label / "tree")], capture_output=True)  # fmt: skip
    print(f"{'':8} {'rev':>10} {'import studio':>14} {'langgraph dev ready':>20} "
          f"{'start-up warning':>17} {'vitron run first token':>23}")  # fmt: skip
    for label, (rev, seconds, ready, warned, first) in rows.items():
        print(f"{label:8} {rev:>10} {seconds:13.2f}s {ready:19.2f}s {str(warned):>17} "
              f"{first:22.2f}s")  # fmt: skip
    (_, b_import, b_ready, _, b_first), (_, a_import, a_ready, _, a_first) = rows.values()
    print(f"ratios before/after: import {b_import / a_import:.1f}x, langgraph dev "
          f"{b_ready / a_ready:.1f}x, first token {b_first / a_first:.1f}x")  # fmt: skip


if __name__ == "__main__":
    main()
