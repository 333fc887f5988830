"""The ``vitron`` command: demo, one-shot run, interactive chat, and its error messages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vitron.apps.cli import main

ROOT = Path(__file__).resolve().parents[2]
PLANNERS = "tests.apps.scripted_planners"


@pytest.fixture
def picture(tmp_path) -> Path:
    path = tmp_path / "picture.png"
    Image.fromarray(np.tile(np.arange(64, dtype=np.uint8), (48, 1))[..., None].repeat(3, 2)).save(
        path
    )
    return path


def common(tmp_path) -> list[str]:
    return [
        "--profile",
        "tiny",
        "--workspace",
        str(tmp_path / "ws"),
        "--device",
        "cpu",
        "--no-progress",
    ]


def test_scripted_demo_is_labelled_and_writes_its_outputs(tmp_path):
    """The old walk-through, kept behind --scripted: a new process, offline, and labelled."""
    out = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "vitron.apps.cli", "demo", "--scripted", "--out", str(out),
         *common(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "FIXED BY A SCRIPT" in result.stdout and "random weights" in result.stdout
    assert result.stdout.count("vitron: ") == 6  # six turns, each answered
    written = sorted(p.name for p in out.iterdir())
    assert "transcript.md" in written and "astronaut.png" in written
    assert sum(name.endswith(".png") and "_mask_" in name for name in written) == 3
    assert any(name.endswith(".json") and "_box_" in name for name in written)
    assert sum(name.endswith(".mp4") for name in written) == 3  # animation, masks, overlay
    assert "--thread" in result.stdout


def test_run_attaches_writes_outputs_and_resumes_by_thread(tmp_path, picture, capsys):
    out = tmp_path / "out"
    args = [
        "run",
        "segment it",
        "--image",
        str(picture),
        "--out",
        str(out),
        "--planner",
        f"{PLANNERS}:segment_then_answer",
    ]
    assert main([*args, *common(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "→ segment_image(" in printed and "vitron: Done: mask_" in printed
    assert len(list(out.glob("*_mask_*.png"))) == 1 and len(list(out.glob("*overlay*.png"))) == 1
    thread = printed.strip().splitlines()[-1].removeprefix("thread: ")

    again = [
        "run",
        "and this box",
        "--region",
        "0.1",
        "0.1",
        "0.5",
        "0.5",
        "--out",
        str(out),
        "--thread",
        thread,
    ]
    assert main([*again, "--planner", f"{PLANNERS}:segment_then_answer", *common(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "regions=[[0.1, 0.1, 0.5, 0.5]]" in printed  # the region reached the planner
    assert f"thread: {thread}" in printed
    assert "has no conversation here yet" not in capsys.readouterr().err

    mistyped = ["run", "hi", "--out", str(out), "--thread", thread + "x"]
    assert main([*mistyped, "--planner", f"{PLANNERS}:answer_only", *common(tmp_path)]) == 0
    assert f"thread {thread}x has no conversation here yet" in capsys.readouterr().err


def test_chat_commands_and_errors_do_not_end_the_session(tmp_path, picture, monkeypatch, capsys):
    sketch = tmp_path / "sketch.png"
    mask = np.zeros((48, 64), dtype=np.uint8)
    mask[10:30, 5:25] = 255
    Image.fromarray(mask).save(sketch)
    lines = iter(
        [
            "/image /no/such/file.png",
            f"/image {picture}",
            "/region 0.9 0.1 0.2 0.5",
            f"/sketch {sketch}",
            "segment my sketch",
            "/media",
            "/image 'my photo.png",
            "/bogus",
            "/region 0.1 0.2",
            "/help",
            "/quit",
        ]
    )
    monkeypatch.setattr("builtins.input", lambda prompt="": next(lines))
    assert main(["chat", "--planner", f"{PLANNERS}:segment_then_answer", *common(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "error: no such file: /no/such/file.png" in printed
    assert "attached img_" in printed and "64x48 image" in printed
    assert "← segment_image: mask_" in printed and "file: " in printed
    assert "error: region [0.9, 0.1, 0.2, 0.5] is inverted" in printed  # refused before sending
    assert "sketch mask_" in printed and "box [0.0781, 0.2083, 0.3906, 0.625]" in printed
    assert "regions=[[0.0781, 0.2083, 0.3906, 0.625]]" in printed
    assert 'error: cannot read "/image \'my photo.png": No closing quotation' in printed
    assert "error: unknown command /bogus; /help lists them" in printed
    assert "error: /region takes 4 arguments: /region X1 Y1 X2 Y2" in printed
    assert "/quit                       leave" in printed  # help
    assert "resume with: vitron chat --thread" in printed
    assert f"--workspace {tmp_path / 'ws'}" in printed.split("resume with:")[1]  # not the default


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "hi", "--image", "/no/such.png"], "no such file: /no/such.png"),
        (["run", "hi", "--profile", "imaginary"], "unknown profile 'imaginary'"),
        (["run", "hi", "--planner", "not-a-spec"], "must be written package.module:attribute"),
    ],
)
def test_cli_errors_are_one_clear_line(tmp_path, argv, message, capsys):
    base = ["--workspace", str(tmp_path / "ws"), "--planner", f"{PLANNERS}:answer_only"]
    assert main([*argv[:2], *base, *argv[2:]]) == 2
    assert message in capsys.readouterr().err


def test_demo_banner_describes_the_profile_actually_used(tmp_path):
    from vitron.apps.walkthrough import describe_models

    assert "random weights" in describe_models("tiny")
    real = describe_models("vitron-7b")
    assert "random weights" not in real and "real checkpoints" in real
    mixed = tmp_path / "mixed.toml"
    mixed.write_text(
        'name = "mixed"\n[components.sam]\nloader = "sam"\ncheckpoint = "tiny"\n'
        '[components.clip]\nloader = "clip"\ncheckpoint = "openai/clip-vit-large-patch14"\n'
    )
    text = describe_models(str(mixed))
    assert "real checkpoints (clip)" in text and "random weights (sam)" in text


def test_scripted_demo_rejects_planner_instead_of_ignoring_it(tmp_path, capsys):
    argv = ["demo", "--scripted", "--planner", f"{PLANNERS}:answer_only", *common(tmp_path)]
    assert main(argv) == 2
    assert "--planner does not apply" in capsys.readouterr().err
    assert not (tmp_path / "ws").exists()


def test_run_refuses_an_empty_request_and_reads_video_flags_as_videos(tmp_path, capsys):
    """A blank request is refused before anything runs (the nano planner made up a picture for
    ``vitron run ""``); a file given as ``--video`` that will not read is reported as a video."""
    base = ["--workspace", str(tmp_path / "ws"), "--planner", f"{PLANNERS}:answer_only"]
    assert main(["run", "  ", *base]) == 2
    assert "the request is empty: say what you want done" in capsys.readouterr().err
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"not a video at all")
    assert main(["run", "track the square", *base, "--video", str(clip)]) == 2
    error = capsys.readouterr().err
    assert "cannot read clip.mp4 as a video: " in error, error
    assert "as an image" not in error and "Errno" not in error and "()" not in error


@pytest.mark.parametrize("command", ["run", "demo", "eval", "gallery"])
def test_an_output_folder_that_cannot_be_made_is_refused_before_any_work(
    tmp_path, command, capsys, monkeypatch
):
    """An evaluation used to run to its end and only then fail to write its report."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out = blocker / "outputs"

    def must_not_run(*args, **kwargs):
        raise AssertionError("work started before the output folder was checked")

    for target in ("vitron.apps.session.Session", "vitron.evals.runner.evaluate",
                   "vitron.apps.demo.run_demo", "vitron.evals.gallery.run_gallery"):  # fmt: skip
        monkeypatch.setattr(target, must_not_run)
    argv = {
        "run": ["run", "hi", *common(tmp_path)],
        "demo": ["demo", *common(tmp_path)],
        "eval": ["eval", "--limit", "1", *common(tmp_path)],
        "gallery": ["gallery", "--profile", "tiny"],
    }[command]
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "vitron: error: cannot write" in err and f"to {out}: {blocker} is not a folder" in err


def test_an_output_folder_is_checked_without_being_made(tmp_path):
    from vitron.apps.output import check_output_folder

    fresh = tmp_path / "new" / "deeper"
    assert check_output_folder(fresh, "x") == fresh and not (tmp_path / "new").exists()
    assert list(tmp_path.iterdir()) == []  # the probe left nothing behind


def test_web_refuses_a_port_it_cannot_listen_on_before_loading_anything(tmp_path, capsys):
    """Gradio's own error came after "open http://…" was printed and named an environment
    variable; ``--port 0`` gave a traceback."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["web", "--port", str(port), *common(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert f"cannot listen on 127.0.0.1:{port}" in err and "pick another --port" in err
    assert main(["web", "--port", "0", *common(tmp_path)]) == 2
    assert "--port must be between 1 and 65535, got 0" in capsys.readouterr().err


def test_a_profile_without_a_planner_is_refused_before_the_first_turn(tmp_path, capsys):
    """An empty profile used to run the turn and stop it with "the planner failed"."""
    import socket

    empty = tmp_path / "empty.toml"
    empty.write_text("")
    with socket.socket() as probe:  # a free port, so the web case is not refused for 7860
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    for argv in (["run", "hi"], ["chat"], ["web", "--port", port]):
        assert main([*argv, "--profile", str(empty), "--workspace", str(tmp_path / "ws")]) == 2
        err = capsys.readouterr().err
        assert "has no component 'vitron_llm'" in err and "add a [components.vitron_llm]" in err
