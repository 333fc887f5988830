"""generate_video on the tiny profile: MP4 out, frame counts, sizes, seeds, progress, errors."""

from __future__ import annotations

import pytest

from vitron.tools.backend import CallContext
from vitron.tools.backends.generate_video import GenerateVideoArgs, generate_video


def test_makes_an_mp4_with_the_asked_frames_size_and_rate(invoke, workspace):
    message = invoke(
        "generate_video", instruction="a ball rolling", frames=5, width=40, height=32, fps=10,
        seed=2,
    )  # fmt: skip
    assert message.status == "success", message.content
    handle = message.artifact["video"]
    assert handle.startswith("vid_") and "5 frames at 10 fps" in message.content
    info = workspace.describe(handle)
    assert (info.width, info.height, info.frames, info.fps) == (40, 32, 5, 10.0)
    video = workspace.get_video(handle)
    assert video.frames.shape == (5, 32, 40, 3)
    assert workspace.get_frame(f"{handle}#4").shape == (32, 40, 3)


def test_defaults_come_from_the_profile(invoke, workspace):
    info = workspace.describe(
        invoke("generate_video", instruction="waves", seed=0).artifact["video"]
    )
    assert (info.width, info.height, info.frames, info.fps) == (32, 32, 4, 4.0)


def test_same_seed_same_frames_other_seed_other_frames(invoke):
    # a video handle hashes the frames as generated, so equal handles mean equal pixels
    first = invoke("generate_video", instruction="a cat", seed=5, frames=2).artifact["video"]
    again = invoke("generate_video", instruction="a cat", seed=5, frames=2).artifact["video"]
    other = invoke("generate_video", instruction="a cat", seed=6, frames=2).artifact["video"]
    assert first == again != other


def test_each_step_reports_progress(services, workspace):
    events: list[dict] = []
    call = CallContext(workspace=workspace, models=services.models, progress=events.append)
    generate_video(GenerateVideoArgs(instruction="a cat", seed=0, steps=3, frames=2), call)
    steps = [e for e in events if e["event"] == "step"]
    assert [(e["step"], e["total"]) for e in steps] == [(1, 3), (2, 3), (3, 3)]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"frames": 0}, "frames"),
        ({"frames": 500}, "frames"),
        ({"fps": 0}, "fps"),
        ({"regions": [[0.1, 0.1, 0.5, 0.5]]}, "takes no regions"),
        ({"instruction": ""}, "describe the video"),
        ({"signal": "emb_../../etc"}, "not a media handle"),
    ],
)
def test_bad_arguments_are_error_messages(invoke, args, expected):
    message = invoke("generate_video", **{"instruction": "a cat", **args})
    assert message.status == "error"
    assert expected in message.content
