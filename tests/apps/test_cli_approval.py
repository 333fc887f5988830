"""Approval at the terminal: ``vitron chat`` asks before an edit; no runs nothing, yes runs it."""

from __future__ import annotations

import numpy as np
from PIL import Image

from vitron.apps.cli import main

PLANNERS = "tests.apps.scripted_planners"


def test_chat_asks_before_an_edit_and_only_the_approved_one_runs(tmp_path, monkeypatch, capsys):
    picture = tmp_path / "square.png"
    image = np.full((48, 48, 3), 210, dtype=np.uint8)
    image[12:36, 12:36] = (200, 30, 30)
    Image.fromarray(image).save(picture)
    lines = iter([f"/image {picture}", "make the square blue", "x", "n", "too soon",
                  "make it blue now", "y", "/quit"])  # fmt: skip
    prompts: list[str] = []

    def answer(prompt=""):
        prompts.append(prompt)
        return next(lines)

    monkeypatch.setattr("builtins.input", answer)
    argv = ["chat", "--planner", f"{PLANNERS}:edit_then_answer", "--profile", "tiny",
            "--workspace", str(tmp_path / "ws"), "--device", "cpu", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.count("? Run edit_image(") == 2
    assert "image='img_" in printed and "prompt='blue'" in printed
    assert sum("[y]es / [n]o / [e]dit" in p for p in prompts) == 3  # "x" was asked again
    assert "✗ edit_image: The user rejected this call to edit_image: too soon" in printed
    assert "Not edited: The user rejected" in printed
    assert "← edit_image: " in printed and "Edited: img_" in printed
    edited = [line for line in printed.splitlines() if line.strip().startswith("file: ")]
    assert len(edited) >= 1


def test_approve_before_none_runs_without_asking(tmp_path, monkeypatch, capsys):
    picture = tmp_path / "square.png"
    Image.fromarray(np.full((32, 32, 3), 120, dtype=np.uint8)).save(picture)
    lines = iter([f"/image {picture}", "make it blue", "/quit"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(lines))
    argv = ["chat", "--planner", f"{PLANNERS}:edit_then_answer", "--profile", "tiny",
            "--workspace", str(tmp_path / "ws"), "--device", "cpu", "--no-progress",
            "--approve-before", "none"]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "? Run edit_image(" not in printed and "Edited: img_" in printed
