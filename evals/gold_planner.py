"""A planner that makes a sample's ground-truth calls: it takes the planner out of an end-to-end
measurement, so a backend is scored through the graph on the calls it should get (the nano
benchmarks use it)."""

from __future__ import annotations

from typing import Any

from vitron.evals.sample import Sample


def gold_planner(sample: Sample) -> Any:
    """A scripted planner that makes ``sample``'s ground-truth calls, then gives its answer."""
    from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

    from vitron.evals.sample import resolve
    from vitron.graphs.scripted import ScriptedChatModel, tool_call
    from vitron.tools.handles import find_handles

    def step(k: int) -> Any:
        def call(messages: list) -> Any:
            human = [m for m in messages if isinstance(m, HumanMessage)][-1]
            media = list(dict.fromkeys(find_handles(human.text)))
            results = [m.artifact for m in messages if isinstance(m, ToolMessage)]
            target = sample.calls[k]
            return tool_call(target.name, **resolve(target.args, media, results, []))

        return call

    steps = [step(k) for k in range(len(sample.calls))]
    return ScriptedChatModel(steps=[*steps, AIMessage(content=sample.answer or "Done.")])


__all__ = ["gold_planner"]
