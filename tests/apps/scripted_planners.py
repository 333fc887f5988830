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
