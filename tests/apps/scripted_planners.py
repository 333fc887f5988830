"""Planner factories the CLI tests name with ``--planner tests.apps.scripted_planners:…``."""

from __future__ import annotations

import json

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from vitron.graphs.scripted import ScriptedChatModel, tool_call
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


class RulePlanner(BaseChatModel):
    """A stateless planner for the web UI's browser tests: it decides from the conversation alone
    (so any number of threads and page reloads can share one instance) and streams its answers
    word by word like a real model.

    - after a tool result: answers naming what the tool made (or that it was rejected);
    - "segment …": segment_image on the drawn sketch (its box, and the sketch as the mask);
    - "recolor …" / "make it blue": edit_image (a call that asks for approval);
    - anything else: a short text answer.
    """

    @property
    def _llm_type(self) -> str:
        return "rules"

    def bind_tools(self, tools, **kwargs):
        return self

    def _reply(self, messages) -> AIMessage:
        last = messages[-1]
        if isinstance(last, ToolMessage):
            if last.status == "error":
                return AIMessage(content=f"Understood, I did not run {last.name} this time.")
            made = ", ".join(h for h in (last.artifact or {}).get("media", {}))
            return AIMessage(content=f"Here is the result of {last.name}: {made}.")
        text = last.text.lower()
        said = [h for m in messages if m.type == "human" for h in find_handles(m.text)]
        images = [h for h in said if h.startswith("img_")]
        regions = last.additional_kwargs.get("regions") or []
        if text.startswith("segment") and (regions or images):
            if regions:
                region = regions[0]
                args = {"image": region["media"], "regions": [region["box"]]}
                if region.get("mask"):
                    args["mask"] = region["mask"]
            else:
                args = {"image": images[-1], "instruction": "the main object"}
            return tool_call("segment_image", **args)
        if ("recolor" in text or "blue" in text) and images:
            return tool_call("edit_image", image=images[-1], operation="recolor", prompt="blue",
                             regions=[[0.25, 0.25, 0.75, 0.75]], steps=2, seed=1)  # fmt: skip
        return AIMessage(content="I can segment, ground, generate and edit pictures and videos.")

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._reply(messages))])

    def _stream(self, messages, stop=None, run_manager=None, **kwargs):
        reply = self._reply(messages)
        if reply.tool_calls:
            chunk = AIMessageChunk(content="", tool_call_chunks=[
                {"name": c["name"], "args": json.dumps(c["args"]), "id": c["id"], "index": 0}
                for c in reply.tool_calls])  # fmt: skip
            yield ChatGenerationChunk(message=chunk)
            return
        for i, word in enumerate(reply.text.split(" ")):
            piece = word if i == 0 else " " + word
            if run_manager:
                run_manager.on_llm_new_token(piece)
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))


def web_planner() -> RulePlanner:
    return RulePlanner()
