"""Planner factories the CLI tests name with ``--planner tests.apps.scripted_planners:…``."""

from __future__ import annotations

from langchain_core.messages import AIMessage

from vitron.apps.scripted import ScriptedChatModel, tool_call
from vitron.tools.handles import find_handles


def _segment_attached(messages):
    human = [m for m in messages if m.type == "human"][-1]
    regions = human.additional_kwargs.get("regions") or []
    image = find_handles(human.text)[0] if not regions else regions[0]["media"]
    args = {"regions": [regions[0]["box"]]} if regions else {"instruction": "the main object"}
    return tool_call("segment_image", image=image, **args)


def segment_then_answer() -> ScriptedChatModel:
    """Segments the attached image (by the drawn region when there is one), then answers."""
    return ScriptedChatModel(
        steps=[
            _segment_attached,
            lambda m: AIMessage(content=f"Done: {m[-1].artifact['masks'][0]}"),
        ]
        * 3
    )


def answer_only() -> ScriptedChatModel:
    return ScriptedChatModel(steps=[AIMessage(content="Hello from the scripted planner.")] * 3)


def _recolor_attached(messages):
    said = [h for m in messages if m.type == "human" for h in find_handles(m.text)]
    image = [h for h in said if h.startswith("img_")][-1]
    return tool_call("edit_image", image=image, operation="recolor", prompt="blue",
                     regions=[[0.25, 0.25, 0.75, 0.75]], steps=2, seed=1)  # fmt: skip


def _report_edit(messages):
    last = messages[-1]
    if getattr(last, "status", "") == "error":
        return AIMessage(content=f"Not edited: {last.text}")
    return AIMessage(content=f"Edited: {last.artifact['image']}")


def edit_then_answer() -> ScriptedChatModel:
    """Recolours the middle of the attached image (a call that asks for approval), then reports."""
    return ScriptedChatModel(steps=[_recolor_attached, _report_edit] * 3)


def report_writer() -> ScriptedChatModel:
    """Writes a 'report' quoting the findings it was given (the report workflow's second model)."""
    return ScriptedChatModel(
        steps=[lambda m: AIMessage(content="Report: " + m[-1].text.splitlines()[0])] * 5
    )
