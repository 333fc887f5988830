"""Graph state: the conversation and a small registry of the media it has named — never bytes."""

from __future__ import annotations

from typing import Annotated, Any

from langchain_core.messages import AnyMessage, ToolCall
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict  # pydantic (Studio's forms) needs it on Python < 3.12

from vitron.agent.messages import MediaRegistry

PROVENANCE = ("source", "inputs")
"""Registry fields the first entry of a handle fixes: who made it, from what."""


def merge_media(left: MediaRegistry | None, right: MediaRegistry | None) -> MediaRegistry:
    """Reducer: later entries for a handle update earlier ones, except its provenance; nothing is
    dropped. A handle names content, so a tool output equal to the user's photo is that photo and
    stays registered as the user's (as in the workspace, the first record stands)."""
    merged = dict(left or {})
    for handle, info in (right or {}).items():
        earlier = merged.get(handle, {})
        kept = {k: earlier[k] for k in PROVENANCE if k in earlier}
        entry = {**earlier, **info, **kept}
        entry.pop("about", None)
        merged[handle] = {"about": about(handle, entry), **entry}
    return merged


KIND_NAMES = {"img": "image", "vid": "video", "mask": "mask", "emb": "embedding", "box": "boxes"}


def about(handle: str, info: dict[str, Any]) -> str:
    """One readable line for a registry entry, shown first in Studio's state view: kind, size,
    frames and what made it (``64x48 mask, made by segment_image from img_…``)."""
    kind = KIND_NAMES.get(info.get("kind") or handle.split("_")[0], "media")
    size = f"{info['width']}x{info['height']} " if info.get("width") and info.get("height") else ""
    frames = ""
    if info.get("frames"):
        fps = f" at {info['fps']:g} fps" if info.get("fps") else ""
        frames = f", {info['frames']} frames{fps}"
    source = info.get("source") or "user"
    origin = "from the user" if source == "user" else f"made by {source}"
    if info.get("inputs"):
        origin += " from " + ", ".join(info["inputs"])
    label = f" '{info['label']}'" if info.get("label") else ""
    return f"{size}{kind}{frames}{label}, {origin}"


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
