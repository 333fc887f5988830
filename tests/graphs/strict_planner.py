"""A scripted planner that checks the history the way the OpenAI and Anthropic APIs do.

Those APIs reject a conversation in which an assistant message's tool call is not answered by a
tool message before the next non-tool message (or a tool message answers no call). A thread left in
that state after a crash could never be continued with them; tests use this planner to prove it can.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

from vitron.graphs.scripted import ScriptedChatModel


class UnansweredToolCall(ValueError):
    """The history has a tool call without its ``ToolMessage`` (or a stray ``ToolMessage``)."""


def check_history(messages: Sequence[BaseMessage]) -> None:
    """Raise :class:`UnansweredToolCall` unless every tool call is answered right after its call."""
    open_calls: set[str] = set()
    for message in messages:
        if isinstance(message, ToolMessage):
            if message.tool_call_id not in open_calls:
                raise UnansweredToolCall(f"tool message {message.tool_call_id!r} answers no call")
            open_calls.discard(message.tool_call_id)
            continue
        if open_calls:
            raise UnansweredToolCall(f"tool calls without a tool message: {sorted(open_calls)}")
        if isinstance(message, AIMessage):
            open_calls = {c["id"] for c in message.tool_calls if c.get("id")}
    if open_calls:
        raise UnansweredToolCall(f"tool calls without a tool message: {sorted(open_calls)}")


class HistoryCheckingPlanner(ScriptedChatModel):
    """:class:`ScriptedChatModel` that refuses an invalid history before replying."""

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any):  # fmt: skip
        check_history(messages)
        return super()._generate(messages, stop, run_manager, **kwargs)
