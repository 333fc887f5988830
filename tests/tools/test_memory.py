"""The memory budget across backends, and out-of-memory handling."""

from __future__ import annotations

import numpy as np
import torch

from vitron.tools.backend import Services, build_tools, registered_backends
from vitron.tools.profiles import load_profile
from vitron.tools.registry import ModelRegistry, nbytes_of
from vitron.tools.workspace import Workspace

CALLS = {
    "ground": lambda image: {"image": image, "instruction": "a square"},
    "retrieve": lambda image: {"instruction": "a grey square"},
    "generate_video": lambda image: {"instruction": "a red ball rolling", "seed": 1},
}
COMPONENT = {"ground": "grounding_dino", "retrieve": "clip", "generate_video": "text_to_video"}


def tools_with_budget(tmp_path, budget: int | None):
    registry = ModelRegistry(load_profile("tiny"), device="cpu", memory_budget=budget)
    services = Services(workspace=Workspace(tmp_path / "ws"), models=registry)
    tools = {t.name: t for t in build_tools(services, names=list(CALLS))}
    image = services.workspace.for_thread("t").put_image(np.full((40, 40, 3), 120, dtype=np.uint8))
    return registry, tools, image.handle


def call(tools, name: str, image: str):
    message = {"type": "tool_call", "id": name, "name": name, "args": CALLS[name](image)}
    return tools[name].invoke(message, {"configurable": {"thread_id": "t"}})


def test_a_budget_for_two_backends_evicts_the_least_recently_used_and_all_answer(tmp_path):
    probe = ModelRegistry(load_profile("tiny"), device="cpu")
    sizes = {name: nbytes_of(probe.get(component)) for name, component in COMPONENT.items()}
    largest_two = sum(sorted(sizes.values())[-2:])
    assert largest_two < sum(sizes.values())
    registry, tools, image = tools_with_budget(tmp_path, budget=largest_two)

    for name in ("ground", "retrieve", "generate_video"):
        result = call(tools, name, image)
        assert result.status == "success", result.content
        assert registry.used_bytes() <= largest_two
    assert registry.loaded() == ["clip", "text_to_video"]  # grounding_dino was least recent
    assert call(tools, "ground", image).status == "success"  # reloaded on demand
    assert registry.loaded() == ["text_to_video", "grounding_dino"]


def test_out_of_memory_evicts_every_model_and_retries_once(tmp_path, monkeypatch):
    registry, tools, image = tools_with_budget(tmp_path, budget=None)
    backend = registered_backends()["ground"]
    attempts = []

    def flaky(args, ctx):
        attempts.append(registry.loaded())
        if len(attempts) == 1:
            ctx.models.get("grounding_dino")
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return backend.run(args, ctx)

    monkeypatch.setattr(
        tools["ground"], "backend", backend.__class__(**{**backend.__dict__, "run": flaky})
    )
    result = call(tools, "ground", image)
    assert result.status == "success", result.content
    assert attempts == [[], []]  # the retry started with nothing loaded


def test_out_of_memory_twice_is_a_clear_error(tmp_path, monkeypatch):
    registry, tools, image = tools_with_budget(tmp_path, budget=None)
    backend = registered_backends()["ground"]

    def always(args, ctx):
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(
        tools["ground"], "backend", backend.__class__(**{**backend.__dict__, "run": always})
    )
    result = call(tools, "ground", image)
    assert result.status == "error"
    assert "ran out of memory even after freeing every other model" in result.content
