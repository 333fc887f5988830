"""``Context.seed``: generation calls that name no seed take one derived from the run's, so a run
(the demo, an eval) repeats its pixels; a call's own seed still wins, and without a run seed each
call draws one."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, ToolMessage

from vitron.graphs import Context, build_graph, user_message
from vitron.graphs.scripted import ScriptedChatModel, tool_call


def done(messages):
    return AIMessage(content="done")


def generated(tmp_path, run_seed: int | None, **args) -> list[ToolMessage]:
    """Two ``generate_image`` calls (same arguments) in one run of a graph with ``run_seed``."""
    steps = [tool_call("generate_image", instruction="a red ball", steps=2, **args),
             tool_call("generate_image", instruction="a red ball", steps=2, **args), done]  # fmt: skip
    context = Context(profile="tiny", workspace=str(tmp_path / "ws"), device="cpu", seed=run_seed)
    result = build_graph(ScriptedChatModel(steps=steps)).invoke(
        {"messages": [user_message("draw a red ball twice")]}, context=context
    )
    results = [m for m in result["messages"] if isinstance(m, ToolMessage)]
    assert [m.status for m in results] == ["success", "success"], [m.content for m in results]
    return results


def test_the_runs_seed_fixes_the_seed_of_calls_that_name_none(tmp_path):
    first, second = generated(tmp_path / "a", run_seed=7)
    assert first.artifact["seed"] == second.artifact["seed"]  # the same call, the same seed
    assert first.artifact["image"] == second.artifact["image"]  # handles name the pixels
    assert f"seed {first.artifact['seed']}" in first.content
    again, _ = generated(tmp_path / "b", run_seed=7)
    assert again.artifact["image"] == first.artifact["image"]  # a run repeats its pixels
    other, _ = generated(tmp_path / "c", run_seed=8)
    assert other.artifact["seed"] != first.artifact["seed"]
    differently, _ = generated(tmp_path / "d", run_seed=7, negative_prompt="blue")
    assert differently.artifact["seed"] != first.artifact["seed"]  # another call, another seed


def test_a_calls_own_seed_wins_over_the_runs(tmp_path):
    first, _ = generated(tmp_path, run_seed=7, seed=3)
    assert first.artifact["seed"] == 3


def test_without_a_run_seed_each_call_draws_its_own(tmp_path):
    first, second = generated(tmp_path, run_seed=None)
    assert first.artifact["seed"] != second.artifact["seed"]  # equal once in 2**32 runs
    assert first.artifact["image"] != second.artifact["image"]


def test_a_seed_out_of_range_is_refused_up_front():
    with pytest.raises(ValueError, match="seed must be between 0 and 4294967295"):
        Context(profile="tiny", seed=-1)
