"""Routing after the planner: one ``Send`` per tool call (they run in parallel and join before the
next planner step), rejects to ``invalid_call``, and the end of the turn when there are no calls."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Literal

from langchain_core.messages import AIMessage
from langgraph.graph import END
from langgraph.types import Send

from vitron.graphs.state import State

INVALID_CALL = "invalid_call"


def make_router(tool_names: Collection[str]) -> Callable[[State], list[Send] | Literal["__end__"]]:
    known = sorted(tool_names)

    def route_tool_calls(state: State) -> list[Send] | Literal["__end__"]:
        messages = state.get("messages") or []
        last = messages[-1] if messages else None
        if not isinstance(last, AIMessage):
            return END
        sends = []
        for call in last.tool_calls:
            if call["name"] in tool_names:
                sends.append(Send(call["name"], {"call": call}))
            else:
                error = f"there is no tool {call['name']!r}; the tools are: {', '.join(known)}"
                sends.append(Send(INVALID_CALL, {"call": call, "error": error}))
        for bad in last.invalid_tool_calls:
            call = {"name": bad.get("name") or "", "args": {}, "id": bad.get("id") or ""}
            error = f"could not read the arguments of {call['name'] or 'a tool call'}: "
            error += bad.get("error") or f"not valid JSON: {bad.get('args')!r}"
            sends.append(Send(INVALID_CALL, {"call": call, "error": error}))
        return sends or END

    return route_tool_calls
