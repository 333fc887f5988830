"""`make setup`'s disk check: a disk too small for the locked venv is named up front, in words,
instead of pip's "[Errno 28]" minutes into the install; an existing venv is never refused."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

CHECK = Path(__file__).parents[2] / ".ci" / "check_disk.sh"


def run_check(venv: Path, need_mb: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "VITRON_SETUP_NEED_MB": str(need_mb)}
    return subprocess.run(["bash", str(CHECK), str(venv)], env=env, capture_output=True, text=True)


def test_a_disk_too_small_is_refused_with_the_free_space_in_words(tmp_path):
    result = run_check(tmp_path / "not-yet" / ".venv", need_mb=10**9)
    assert result.returncode == 1
    assert "setup needs about 1000000000 MB free" in result.stderr
    assert f"but {tmp_path} has" in result.stderr


def test_enough_disk_passes_and_says_how_much_is_free(tmp_path):
    result = run_check(tmp_path / ".venv", need_mb=0)
    assert result.returncode == 0, result.stderr
    assert "free for the virtual environment" in result.stdout


def test_an_existing_venv_is_never_refused(tmp_path):
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("#!/bin/sh\n")
    python.chmod(0o755)
    assert run_check(tmp_path / ".venv", need_mb=10**9).returncode == 0
