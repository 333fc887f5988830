"""A planner that decides from the conversation alone, so one instance serves many threads at once.

(:class:`vitron.graphs.scripted.ScriptedChatModel` replays one script in order, which concurrent
threads would interleave.) A user turn that attaches an image, or comes before any mask, segments
the latest attached image; a later user turn grounds "object" next to the thread's latest mask; a tool result is
answered with a sentence that repeats it. So each answer names handles of its own thread only,
which lets the scale tests and the benchmark check that nothing crossed between threads.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from vitron.tools.handles import find_handles


def _handles(messages: Sequence[BaseMessage], kind: str, of: type[BaseMessage]) -> list[str]:
    found: list[str] = []
    for message in messages:
        if isinstance(message, of) and not (
            isinstance(message, ToolMessage) and message.status == "error"
        ):
            found += [h for h in find_handles(message.text) if h.startswith(kind + "_")]
    return found


def plan(messages: Sequence[BaseMessage]) -> AIMessage:
    """The next step for ``messages`` (system prompt first, as the graph passes them)."""
    last = messages[-1]
    if isinstance(last, ToolMessage):
        outcome = "failed" if last.status == "error" else "answered"
        return AIMessage(content=f"{last.name} {outcome}: {last.text}")
    images = _handles(messages, "img", HumanMessage)
    if not images:
        return AIMessage(content="Attach an image first.")
    masks = _handles(messages, "mask", ToolMessage)
    attached_now = _handles([last], "img", HumanMessage)
    call_id = f"call_{uuid.uuid4().hex[:12]}"
    if masks and not attached_now:
        call = {"name": "ground", "id": call_id,
                "args": {"image": images[-1], "instruction": "object", "near": masks[-1]}}  # fmt: skip
    else:
        call = {"name": "segment_image", "id": call_id,
                "args": {"image": images[-1], "instruction": "the astronaut"}}  # fmt: skip
    return AIMessage(content="", tool_calls=[call])


class HandlePlanner(BaseChatModel):
    """:func:`plan` as a LangChain chat model (stateless; tools are bound by name only)."""

    @property
    def _llm_type(self) -> str:
        return "handle-planner"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> HandlePlanner:
        return self

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:  # fmt: skip
        return ChatResult(generations=[ChatGeneration(message=plan(messages))])


def planner() -> HandlePlanner:
    """Factory for ``VITRON_PLANNER=tests.scale.planner:planner`` (``langgraph dev`` in the benchmark)."""
    return HandlePlanner()
