"""Vitron inside other agents: the whole graph as a subgraph node of a report workflow, and its
tools bound to another chat model through ``langchain.agents.create_agent``."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from PIL import Image

from tests.apps.scripted_planners import report_writer, segment_then_answer
from vitron.graphs import Context
from vitron.graphs.composition import agent_with_vitron_tools, report_graph
from vitron.graphs.persistence import sqlite_checkpointer
from vitron.graphs.scripted import ScriptedChatModel, tool_call
from vitron.tools.handles import find_handles

CONFIG = {"configurable": {"thread_id": "composed"}}


@pytest.fixture
def context(tmp_path) -> Context:
    return Context(profile="tiny", workspace=str(tmp_path / "ws"), device="cpu")


def png_block() -> dict:
    image = np.full((48, 64, 3), 230, dtype=np.uint8)
    image[10:38, 20:44] = (30, 30, 200)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return {"type": "image", "base64": base64.b64encode(buffer.getvalue()).decode(),
            "mime_type": "image/png"}  # fmt: skip


def test_report_workflow_runs_vitron_as_a_subgraph_and_summarises(tmp_path, context):
    graph = report_graph(segment_then_answer(), report_writer(),
                         checkpointer=sqlite_checkpointer(tmp_path / "db"))  # fmt: skip
    message = HumanMessage(
        content=[{"type": "text", "text": "what is in this picture?"}, png_block()]
    )
    result = graph.invoke({"messages": [message]}, CONFIG, context=context)

    image = next(h for h in result["media"] if h.startswith("img_"))  # the inline image, stored
    mask = next(h for h in result["media"] if h.startswith("mask_"))  # what Vitron made
    assert result["media"][mask]["source"] == "segment_image"
    assert f"segment_image result: {mask}" in result["findings"]
    assert result["findings"].splitlines()[-1] == f"Vitron: Done: {mask}"
    assert result["report"] == "Report: " + result["findings"].splitlines()[0]
    assert result["messages"][-1].content == result["report"]
    workspace = context.services().workspace.for_thread("composed")
    assert workspace.exists(image) and workspace.exists(mask)  # the parent's thread
    assert "base64" not in str(graph.get_state(CONFIG).values)  # no bytes in the checkpoint


def test_report_workflow_state_mapping_keeps_vitrons_messages_out(tmp_path, context):
    graph = report_graph(segment_then_answer(), report_writer())
    message = HumanMessage(content=[{"type": "text", "text": "report"}, png_block()])
    result = graph.invoke({"messages": [message]}, CONFIG, context=context)
    assert [type(m).__name__ for m in result["messages"]] == ["HumanMessage", "AIMessage"]


def test_create_agent_gains_pixel_skills_with_handles_and_the_workspace(tmp_path, context):
    def segment(messages):
        image = next(h for h in find_handles(messages[-1].text) if h.startswith("img_"))
        return tool_call("segment_image", image=image, regions=[[0.3, 0.2, 0.7, 0.8]])

    model = ScriptedChatModel(
        steps=[segment, lambda m: AIMessage(content=f"The mask is {m[-1].artifact['masks'][0]}.")]
    )
    agent = agent_with_vitron_tools(model, checkpointer=sqlite_checkpointer(tmp_path / "db"))
    message = HumanMessage(content=[{"type": "text", "text": "segment the square"}, png_block()])
    result = agent.invoke({"messages": [message]}, CONFIG, context=context)

    assert "segment_image" in model.bound_tools and "edit_image" in model.bound_tools
    ran = [m for m in result["messages"] if isinstance(m, ToolMessage)]
    assert [(m.name, m.status) for m in ran] == [("segment_image", "success")]
    mask = ran[0].artifact["masks"][0]
    assert result["messages"][-1].content == f"The mask is {mask}."
    workspace = context.services().workspace.for_thread("composed")
    assert workspace.exists(mask)  # the run's workspace and thread, not the environment's
    assert workspace.get_mask(mask).any()
