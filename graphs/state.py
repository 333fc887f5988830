"""Graph state: the conversation and a small registry of the media it has named — never bytes."""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

from langchain_core.messages import AnyMessage, ToolCall
from langgraph.graph.message import add_messages

MediaRegistry = dict[str, dict[str, Any]]
"""handle → kind, size, frames, source (``user`` or the tool), inputs, label."""


def merge_media(left: MediaRegistry | None, right: MediaRegistry | None) -> MediaRegistry:
    """Reducer: later entries for a handle update earlier ones; nothing is dropped."""
    merged = dict(left or {})
    for handle, info in (right or {}).items():
        merged[handle] = {**merged.get(handle, {}), **info}
    return merged


class InputState(TypedDict, total=False):
    """What a caller sends: new messages, and the handles of media it attached."""

    messages: Annotated[list[AnyMessage], add_messages]
    media: Annotated[MediaRegistry, merge_media]


class State(InputState, total=False):
    """The full state; today it adds nothing to the input, but nodes type against it."""


class ToolCallInput(TypedDict, total=False):
    """What a tool node receives through ``Send``: one tool call (and, for rejects, why)."""

    call: ToolCall
    error: str
