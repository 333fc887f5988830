"""Human approval: the graph pauses before the tools ``Context.approve_before`` names, and resumes
with approve / edit the arguments / reject through LangGraph's interrupt protocol."""

from __future__ import annotations

import numpy as np
import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.types import Command

import vitron.agent.chat_model as chat_model
from vitron.graphs import Context, build_graph, user_message
from vitron.graphs.approval import Decision, pending_approvals, rejection
from vitron.graphs.persistence import sqlite_checkpointer
from vitron.graphs.scripted import ScriptedChatModel, tool_call
from vitron.tools.backend import build_tools

CONFIG = {"configurable": {"thread_id": "approval"}}


@pytest.fixture
def context(tmp_path) -> Context:
    return Context(profile="tiny", workspace=str(tmp_path / "ws"), device="cpu")


@pytest.fixture
def picture(context):
    image = np.full((64, 64, 3), 200, dtype=np.uint8)
    image[16:48, 16:48] = (200, 30, 30)
    return context.services().workspace.for_thread("approval").put_image(image, source="user")


def edited_images(context) -> list[str]:
    workspace = context.services().workspace.for_thread("approval")
    return [h for h in workspace.handles("img") if workspace.describe(h).source == "edit_image"]


def recolor(picture, colour: str):
    return tool_call("edit_image", image=picture.handle, operation="recolor",
                     regions=[[0.25, 0.25, 0.75, 0.75]], prompt=colour, steps=2, seed=1)  # fmt: skip


def test_reject_an_edit_then_approve_the_next_keeps_only_the_approved_result(
    tmp_path, context, picture
):
    seen: list = []

    def after_reject(messages):
        seen.extend(messages)
        return recolor(picture, "green")

    planner = ScriptedChatModel(
        steps=[recolor(picture, "blue"), after_reject, AIMessage(content="recoloured")]
    )
    graph = build_graph(planner, checkpointer=sqlite_checkpointer(tmp_path / "db"))
    inputs = {"messages": [user_message("recolour the square", media=[picture])]}

    graph.invoke(inputs, CONFIG, context=context)
    (first_id, first), *_ = pending_approvals(graph.get_state(CONFIG).interrupts)
    assert first["tool"] == "edit_image" and first["args"]["prompt"] == "blue"
    assert "edit_image(" in first["question"]
    assert edited_images(context) == []  # paused before running

    graph.invoke(Command(resume={first_id: {"action": "reject", "reason": "not blue"}}), CONFIG,
                 context=context)  # fmt: skip
    rejected = [m for m in seen if isinstance(m, ToolMessage)][-1]
    assert (
        rejected.status == "error" and "rejected" in rejected.text and "not blue" in rejected.text
    )
    assert edited_images(context) == []

    (second_id, second), *_ = pending_approvals(graph.get_state(CONFIG).interrupts)
    assert second["args"]["prompt"] == "green"
    result = graph.invoke(Command(resume={second_id: "approve"}), CONFIG, context=context)
    assert result["messages"][-1].content == "recoloured"
    assert not graph.get_state(CONFIG).interrupts
    edited = edited_images(context)
    assert len(edited) == 1
    assert edited[0] in result["media"]
    done = [m for m in result["messages"] if isinstance(m, ToolMessage) and m.status == "success"]
    assert [m.name for m in done] == ["edit_image"]


def test_an_edited_call_runs_with_the_persons_arguments(tmp_path, context, picture):
    graph = build_graph(
        ScriptedChatModel(steps=[recolor(picture, "blue"), AIMessage(content="ok")]),
        checkpointer=sqlite_checkpointer(tmp_path / "db"),
    )
    graph.invoke({"messages": [user_message("recolour", media=[picture])]}, CONFIG, context=context)
    (key, request), *_ = pending_approvals(graph.get_state(CONFIG).interrupts)
    args = {**request["args"], "prompt": "yellow", "seed": 5}
    result = graph.invoke(Command(resume={key: {"action": "edit", "args": args}}), CONFIG,
                          context=context)  # fmt: skip
    ran = next(m for m in result["messages"] if isinstance(m, ToolMessage))
    assert ran.status == "success"
    calls = [m for m in result["messages"] if isinstance(m, AIMessage) and m.tool_calls]
    assert calls[0].tool_calls[0]["args"]["prompt"] == "blue"  # the planner's call is kept as is
    edited = edited_images(context)
    assert len(edited) == 1


def test_tools_not_named_and_runs_without_a_checkpointer_do_not_pause(context, picture):
    steps = [tool_call("segment_image", image=picture.handle, regions=[[0.2, 0.2, 0.8, 0.8]]),
             AIMessage(content="a"), recolor(picture, "blue"), AIMessage(content="b")]  # fmt: skip
    graph = build_graph(ScriptedChatModel(steps=steps))  # no checkpointer: nothing could resume
    for text in ("segment", "recolour"):
        result = graph.invoke({"messages": [user_message(text, media=[picture])]}, CONFIG,
                              context=context)  # fmt: skip
        assert "__interrupt__" not in result
    assert len(edited_images(context)) == 1


def test_approve_before_setting_reads_names_and_none(monkeypatch):
    assert "edit_image" in Context().approve_before
    assert "generate_video" in Context().approve_before
    monkeypatch.setenv("VITRON_APPROVE_BEFORE", "none")
    assert Context().approve_before == []
    monkeypatch.setenv("VITRON_APPROVE_BEFORE", "ground, segment_image")
    assert Context().approve_before == ["ground", "segment_image"]
    assert Context(approve_before="edit_video").approve_before == ["edit_video"]


@pytest.mark.parametrize(
    ("value", "action"),
    [("approve", "approve"), ("yes", "approve"), ("reject", "reject"), ({"action": "edit"}, "reject"),
     ({"action": "edit", "args": {"x": 1}}, "edit"), (42, "reject"), ("too dark", "reject")],
)  # fmt: skip
def test_decisions_are_read_and_anything_unclear_rejects(value, action):
    assert Decision.parse(value).action == action


def test_a_planner_is_not_offered_a_module_the_user_rejected_in_this_turn(tmp_path, monkeypatch):
    """The rejection says "do not call it again unless the user asks"; the nano planner called
    ``edit_image`` three times in one turn, each time rejected. ChatVitron leaves the module out
    of the grammar for the rest of the turn; a new request offers it again."""
    offered = []
    steer = chat_model.logits_processors
    monkeypatch.setattr(chat_model, "logits_processors",
                        lambda engine, modules, *a, **kw: offered.append(set(modules))
                        or steer(engine, modules, *a, **kw))  # fmt: skip
    planner = chat_model.ChatVitron(profile="tiny", workspace=str(tmp_path / "ws"), device="cpu",
                                    max_new_tokens=2, constrained=True)  # fmt: skip
    bound = planner.bind_tools(build_tools(names=["segment_image", "edit_image"]))
    call = {"name": "edit_image", "args": {"instruction": "make it red"}, "id": "c1"}
    turn = [HumanMessage("make it red"), AIMessage(content="", tool_calls=[call]),
            rejection(call)]  # fmt: skip
    bound.invoke(turn)
    bound.invoke([*turn, AIMessage("Not done."), HumanMessage("do it after all")])
    failed = ToolMessage("edit_image failed: no image", tool_call_id="c1", name="edit_image",
                         status="error")  # fmt: skip
    bound.invoke([*turn[:2], failed])  # a failure is not a refusal
    assert offered == [{"segment_image"}, {"segment_image", "edit_image"},
                       {"segment_image", "edit_image"}]  # fmt: skip
    assert rejection(call).additional_kwargs == {"rejected": True}
