"""``vitron doctor [--repair]``: finds what is wrong with a workspace, repairs what is safe, and
exits non-zero while problems remain."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from vitron.apps.cli import main
from vitron.tools.doctor import check_workspace
from vitron.tools.errors import UnknownHandleError
from vitron.tools.workspace import TEMP_DIR


def doctor(capsys, root, *flags: str) -> tuple[int, str]:
    code = main(["doctor", "--workspace", str(root), *flags])
    return code, capsys.readouterr().out


def test_a_healthy_workspace_passes(capsys, workspace, photo, square_video):
    workspace.put_mask(np.eye(8, dtype=bool))
    workspace.put_embedding(torch.arange(6.0))
    workspace.put_boxes([[0.1, 0.1, 0.4, 0.4]], ["cat"], [0.9])
    code, out = doctor(capsys, workspace.root)
    assert code == 0, out
    assert "5 handles in 1 threads" in out and "no problems found" in out


def test_problems_are_reported_repaired_and_the_exit_code_follows(capsys, workspace, photo):
    root = workspace.root
    mask = workspace.put_mask(np.eye(16, dtype=bool))
    changed = workspace.put_image(np.full((8, 8, 3), 9, dtype=np.uint8))
    unrecorded = workspace.put_embedding(torch.ones(3))
    garbled = workspace.put_boxes([[0.1, 0.1, 0.4, 0.4]], ["cat"], [0.9])
    orphan_record = workspace.put_mask(np.ones((4, 4), dtype=bool))

    path = workspace.path(mask.handle)  # a truncated file
    path.write_bytes(path.read_bytes()[:40])
    buffer = io.BytesIO()  # a readable file whose pixels are no longer its handle's
    Image.new("RGB", (8, 8), (1, 2, 3)).save(buffer, format="PNG")
    workspace.path(changed.handle).write_bytes(buffer.getvalue())
    workspace.path(unrecorded.handle).with_name(f"{unrecorded.handle}.meta.json").unlink()
    workspace.path(garbled.handle).with_name(f"{garbled.handle}.meta.json").write_text("{nope")
    workspace.path(orphan_record.handle).unlink()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    stale = (
        root / TEMP_DIR / f"{workspace._temp_file('.x').split('/')[-1].split('.')[0]}.{dead}.q.png"
    )
    stale.write_bytes(b"half")
    legacy = workspace.dir / "vid" / "tmpab12cd.mp4.tmp"
    legacy.parent.mkdir(exist_ok=True)
    legacy.write_bytes(b"half")
    (root / "Not A Thread").mkdir()

    code, out = doctor(capsys, root)
    assert code == 1
    for expected in (
        f"{mask.handle}.png: damaged",
        f"{changed.handle}.png: damaged: its content no longer matches its handle",
        f"{unrecorded.handle}.safetensors: has no record",
        f"{garbled.handle}.json: its record is damaged",
        f"{orphan_record.handle}.meta.json: record without its file",
        f"{stale.name}: temporary file left by a process that stopped",
        "tmpab12cd.mp4.tmp: temporary file",
        "Not A Thread: is not a thread directory",
        "--repair fixes what it can",
    ):
        assert expected in out, (expected, out)
    assert str(root) not in out.split("\n", 1)[1]  # findings name paths inside the workspace

    code, out = doctor(capsys, root, "--repair")
    assert code == 1 and "1 problem(s) remain" in out  # the unknown folder is only reported
    assert not stale.exists() and not legacy.exists()
    assert (root / ".damaged" / workspace.dir.name / "mask" / f"{mask.handle}.png").is_file()
    with pytest.raises(UnknownHandleError):
        workspace.get_mask(mask.handle)
    assert workspace.describe(unrecorded.handle).source == "recovered"
    assert workspace.get_embedding(unrecorded.handle).tolist() == [1.0, 1.0, 1.0]
    assert workspace.get_boxes(garbled.handle)["labels"] == ["cat"]

    (root / "Not A Thread").rmdir()
    report = check_workspace(root)
    assert report.remaining == [] and report.handles == 3, report.text()


def test_a_damaged_video_and_database_are_found(capsys, workspace, square_video):
    path = workspace.path(square_video.handle)
    path.write_bytes(path.read_bytes()[:300])
    (workspace.root / "conversations.sqlite").write_bytes(b"SQLite format 3\x00" + b"\x01" * 200)
    code, out = doctor(capsys, workspace.root)
    assert code == 1
    assert f"{square_video.handle}.mp4: damaged" in out
    assert "conversations database fails its integrity check" in out
