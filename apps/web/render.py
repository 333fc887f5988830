"""A conversation (LangChain messages) as Gradio chat messages: text, tool calls as collapsible
steps, and the pictures and videos the tools made shown inline.

Pure functions over messages and a workspace, so they are tested without a browser. Files are
given to Gradio by path (``{"path": ...}``); the app allows the workspace folder for that.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

from vitron.tools.errors import VitronToolError
from vitron.tools.handles import find_handles
from vitron.tools.workspace import Workspace

ChatItem = dict[str, Any]
INLINE_KINDS = ("img", "vid")


def chat_items(messages: Sequence[BaseMessage], workspace: Workspace) -> list[ChatItem]:
    """Every message of the conversation, in order, as Gradio chat items."""
    items: list[ChatItem] = []
    for message in messages:
        items.extend(message_items(message, workspace))
    return items


def message_items(message: BaseMessage, workspace: Workspace) -> list[ChatItem]:
    """One message as chat items (a message with pictures becomes several)."""
    if isinstance(message, HumanMessage):
        attached = [h for h in find_handles(message.text) if h.split("_")[0] in INLINE_KINDS]
        regions = message.additional_kwargs.get("regions") or []
        sketches = [r["mask"] for r in regions if isinstance(r, dict) and r.get("mask")]
        return [user(message.text), *media_items([*attached, *sketches], workspace, role="user")]
    if isinstance(message, ToolMessage):
        failed = message.status == "error"
        mark = f"✗ {message.name} failed" if failed else f"✓ {message.name}"
        artifact = message.artifact if isinstance(message.artifact, dict) else {}
        made = [h for h in (artifact.get("media") or {}) if h.split("_")[0] in INLINE_KINDS]
        step = {"role": "assistant", "content": f"**{mark}:** {message.text}"}
        return [step, *media_items(made, workspace)]
    if isinstance(message, AIMessage):
        items = []
        if message.text:
            items.append({"role": "assistant", "content": message.text})
        for call in message.tool_calls:
            items.append(tool_call_item(call))
        return items
    return []


def tool_call_item(call: dict[str, Any]) -> ChatItem:
    args = json.dumps(call.get("args") or {}, indent=1)
    return {"role": "assistant", "content": f"```json\n{args}\n```",
            "metadata": {"title": f"→ {call['name']}", "status": "done"}}  # fmt: skip


def media_items(handles: Iterable[str], workspace: Workspace, role: str = "assistant") -> list:
    """Pictures and videos behind ``handles``, by path; handles that name nothing are skipped."""
    items = []
    for handle in handles:
        try:
            path = workspace.path(handle.split("#")[0])
        except VitronToolError:
            continue
        items.append({"role": role, "content": {"path": str(path), "alt_text": handle}})
    return items


def user(text: str) -> ChatItem:
    return {"role": "user", "content": text}


def notice(text: str) -> ChatItem:
    """An error or warning for the person, in the chat (never a stack trace)."""
    return {"role": "assistant", "content": f"⚠️ {text}", "metadata": {"title": "problem"}}


def progress_line(event: dict[str, Any]) -> str | None:
    """The progress text for a custom stream event (model loading, denoising steps)."""
    kind = event.get("event")
    if kind == "load":
        verb = "loading" if event.get("status") == "start" else "loaded"
        return f"{verb} {event.get('component', 'a model')}"
    if kind == "step" and event.get("total"):
        return f"{event.get('tool', 'working')}: step {event['step']}/{event['total']}"
    return None


def approval_text(request: dict[str, Any]) -> str:
    return f"**Approval needed.** {request['question']}"


def outputs(media: dict[str, dict[str, Any]], workspace: Workspace) -> list[str]:
    """Paths of every file the tools made in this conversation (for the downloads list)."""
    paths = []
    for handle, info in media.items():
        if info.get("source", "user") == "user" or handle.startswith("emb_"):
            continue
        try:
            paths.append(str(workspace.path(handle)))
        except VitronToolError:
            continue
    return paths
