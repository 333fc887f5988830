"""Shared fixtures: a tiny-profile workspace per test, tools bound to it, and a real photo."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from langchain_core.messages import ToolMessage
from skimage import data

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing in the suite may reach a model hub
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# One intra-op thread, here and in the processes tests start: the tiny models' operations are too
# small to gain from more, and on a busy 2-core machine competing threads slow them tenfold.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

torch.set_num_threads(1)

from vitron.tools.backend import Services, ServiceSettings, build_tools  # noqa: E402
from vitron.tools.profiles import load_profile  # noqa: E402
from vitron.tools.registry import ModelRegistry  # noqa: E402
from vitron.tools.workspace import MediaInfo, Workspace  # noqa: E402

THREAD = "test-thread"


@pytest.fixture
def settings(tmp_path) -> ServiceSettings:
    return ServiceSettings(profile="tiny", workspace=str(tmp_path / "workspace"), device="cpu")


@pytest.fixture(scope="session")
def tiny_models() -> ModelRegistry:
    """One registry of tiny models for the whole session: each loads once."""
    return ModelRegistry(load_profile("tiny"), device="cpu")


@pytest.fixture(scope="session")
def adds_models(tmp_path_factory) -> ModelRegistry:
    """Tiny models whose inpainting draws added objects (``draws_added_objects``, as nano's does:
    its GLIGEN inpainting is untrained), for the whole session."""
    profile = tmp_path_factory.mktemp("profiles") / "adds.toml"
    profile.write_text(
        'name = "adds"\nextends = "tiny"\n[components.inpaint]\nloader = "diffusion"\n'
        'pipeline = "inpaint"\ncheckpoint = "tiny"\nwidth = 32\nheight = 32\nsteps = 2\n'
        "draws_added_objects = true\n"
    )
    return ModelRegistry(load_profile(profile), device="cpu")


@pytest.fixture
def services(tmp_path, tiny_models) -> Services:
    """A fresh workspace per test over the session's tiny models."""
    return Services(workspace=Workspace(tmp_path / "workspace"), models=tiny_models)


@pytest.fixture
def workspace(services) -> Workspace:
    """The test thread's namespace of the workspace."""
    return services.workspace.for_thread(THREAD)


@pytest.fixture
def photo(workspace) -> MediaInfo:
    """scikit-image's astronaut (512 x 512), a real photo that ships with the package."""
    return workspace.put_image(data.astronaut())


@pytest.fixture
def square_video(workspace) -> MediaInfo:
    """A short synthetic video: a bright square moving right over 6 frames (64 x 48, 4 fps)."""
    frames = []
    for t in range(6):
        frame = np.full((48, 64, 3), 30, dtype=np.uint8)
        frame[14:34, 4 + 8 * t : 24 + 8 * t] = (220, 40, 40)
        frames.append(frame)
    return workspace.put_video(frames, fps=4)


@pytest.fixture
def invoke(services) -> Callable[..., ToolMessage]:
    """Call a tool by name as a graph would (a tool call in, a ToolMessage out)."""
    tools = {tool.name: tool for tool in build_tools(services)}

    def call(name: str, thread: str = THREAD, **args: Any) -> ToolMessage:
        message = {"type": "tool_call", "id": f"call_{name}", "name": name, "args": args}
        return tools[name].invoke(message, {"configurable": {"thread_id": thread}})

    return call
