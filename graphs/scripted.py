"""A chat model that replays a fixed script of replies — for labelled walk-throughs and tests.

It plans nothing: each call returns the next scripted ``AIMessage``, or calls the next scripted
function with the conversation so far (so a step can use a handle an earlier tool returned). The
product's planner is the Vitron LLM; this exists so the graph can be shown and tested end to end
with fixed tool calls.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import PrivateAttr

Step = AIMessage | Callable[[Sequence[BaseMessage]], AIMessage]


class ScriptedChatModel(BaseChatModel):
    """Replays ``steps`` in order, one per call, across turns; raises when the script runs out."""

    steps: list[Any]
    _position: int = PrivateAttr(default=0)
    _bound_tools: list[str] = PrivateAttr(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    @property
    def bound_tools(self) -> list[str]:
        return list(self._bound_tools)

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:
        """Record the tool names; the script decides the calls."""
        self._bound_tools = [getattr(t, "name", str(t)) for t in tools]
        return self

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:  # fmt: skip
        if self._position >= len(self.steps):
            raise RuntimeError(f"the script has only {len(self.steps)} steps")
        step = self.steps[self._position]
        self._position += 1
        message = step(messages) if callable(step) else step
        return ChatResult(generations=[ChatGeneration(message=message)])


def tool_call(name: str, **args: Any) -> AIMessage:
    """An ``AIMessage`` calling ``name`` with ``args``."""
    call_id = f"call_{uuid.uuid4().hex[:12]}"
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": call_id}])


def last_artifact(messages: Sequence[BaseMessage], key: str) -> Any:
    """``artifact[key]`` of the most recent successful tool result that has it."""
    for message in reversed(messages):
        if isinstance(message, ToolMessage) and message.status != "error":
            artifact = message.artifact if isinstance(message.artifact, dict) else {}
            if key in artifact:
                return artifact[key]
    raise LookupError(f"no tool result in the conversation has {key!r}")
