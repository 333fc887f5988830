"""Faults at the graph's edges: inline media never reach a checkpoint, a crash never leaves a tool
call unanswered, a tool output equal to the user's photo stays the user's, and Studio's forms."""

from __future__ import annotations

import base64
import io
import sqlite3

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from PIL import Image
from skimage import data

from tests.graphs.strict_planner import HistoryCheckingPlanner, UnansweredToolCall, check_history
from vitron.graphs import Context, build_graph
from vitron.graphs.ingest import answer_dangling_calls
from vitron.graphs.persistence import sqlite_checkpointer
from vitron.graphs.scripted import ScriptedChatModel, tool_call
from vitron.graphs.state import merge_media
from vitron.tools.handles import find_handles


def jpeg_block(width: int, height: int) -> dict:
    buffer = io.BytesIO()
    photo = Image.fromarray(data.astronaut()).resize((width, height), Image.BILINEAR)
    photo.save(buffer, format="JPEG", quality=90)
    return {"type": "image", "base64": base64.b64encode(buffer.getvalue()).decode(),
            "mime_type": "image/jpeg"}  # fmt: skip


def bytes_written(database, thread: str) -> int:
    """Every byte the thread's rows hold: checkpoints (with metadata) and pending writes."""
    with sqlite3.connect(database) as connection:
        checkpoints = connection.execute(
            "SELECT SUM(LENGTH(checkpoint) + LENGTH(metadata) + LENGTH(checkpoint_id)"
            " + LENGTH(thread_id)) FROM checkpoints WHERE thread_id = ?", (thread,),
        ).fetchone()[0]  # fmt: skip
        writes = connection.execute(
            "SELECT SUM(LENGTH(value) + LENGTH(channel) + LENGTH(task_id) + LENGTH(thread_id))"
            " FROM writes WHERE thread_id = ?", (thread,),
        ).fetchone()[0]  # fmt: skip
    return checkpoints + (writes or 0)


def test_a_turn_with_a_12_mp_inline_photo_writes_under_64_kb_to_sqlite(tmp_path):
    """Before the fix the base64 was stored three times: 3.8 MB for this turn."""
    block = jpeg_block(4000, 3000)
    assert len(block["base64"]) > 1_000_000
    planner = ScriptedChatModel(
        steps=[
            # a tool step, as in the measurement (six checkpoints); a handle the thread
            # does not have keeps the tool from decoding 12 MP again, which storage does not need
            lambda m: tool_call("ground", image="img_000000000000", instruction="person"),
            AIMessage(content="Done."),
        ]
    )
    graph = build_graph(planner, checkpointer=sqlite_checkpointer(tmp_path))
    text = {"type": "text", "text": "find the person"}
    graph.invoke(
        {"messages": [{"role": "user", "content": [text, block]}]},
        {"configurable": {"thread_id": "big"}},
        context=Context(profile="tiny", workspace=str(tmp_path), device="cpu"),
    )
    state = graph.get_state({"configurable": {"thread_id": "big"}}).values
    assert [m.type for m in state["messages"]] == ["human", "ai", "tool", "ai"]
    assert "not in this conversation" in state["messages"][2].text
    photo = find_handles(state["messages"][0].text)[0]
    assert state["media"][photo]["width"] == 4000
    assert bytes_written(tmp_path / "conversations.sqlite", "big") <= 64 * 1024


def test_inline_media_are_stored_before_the_first_checkpoint(tmp_path):
    saver = InMemorySaver()
    graph = build_graph(ScriptedChatModel(steps=[AIMessage(content="ok")]), tools=[],
                        checkpointer=saver)  # fmt: skip
    block = jpeg_block(64, 48)
    url_block = {"type": "image", "url": "https://example.com/x.png"}
    message = HumanMessage(content=[{"type": "text", "text": "look"}, block, url_block])
    config = {"configurable": {"thread_id": "t"}}
    graph.invoke({"messages": [message]}, config,
                 context=Context(profile="tiny", workspace=str(tmp_path)))  # fmt: skip
    stored = [saver.get_tuple({"configurable": {**config["configurable"], "checkpoint_id": c}})
              for c in [t.config["configurable"]["checkpoint_id"] for t in saver.list(config)]]  # fmt: skip
    assert stored and all(block["base64"][:200] not in str(t.checkpoint) for t in stored)
    assert all(block["base64"][:200] not in str(w) for w in saver.writes.values())
    text = graph.get_state(config).values["messages"][0].text
    assert "[attached img_" in text and "attachment not usable" in text


def test_a_dangling_tool_call_is_answered_before_the_next_turn(tmp_path):
    """What a crash during a tool call leaves: an AIMessage whose call has no ToolMessage."""
    saver = InMemorySaver()
    config = {"configurable": {"thread_id": "t"}}
    context = Context(profile="tiny", workspace=str(tmp_path))
    call = tool_call("ground", image="img_0123456789abcdef", instruction="dog")
    graph = build_graph(HistoryCheckingPlanner(steps=[call, AIMessage(content="answered")]),
                        checkpointer=saver)  # fmt: skip
    # the planner's step is saved; the process dies before the tool runs (interrupt_before)
    graph.invoke({"messages": [HumanMessage("find the dog")]}, config, context=context,
                 interrupt_before=["ground"])  # fmt: skip
    with pytest.raises(UnansweredToolCall):
        check_history(graph.get_state(config).values["messages"])

    graph.invoke({"messages": [HumanMessage("hello again")]}, config, context=context)
    messages = graph.get_state(config).values["messages"]
    assert [m.type for m in messages] == ["human", "ai", "tool", "human", "ai"]
    assert messages[2].status == "error" and "interrupted" in messages[2].text
    assert messages[4].text == "answered"


def test_answer_dangling_calls_places_answers_after_their_calls():
    first = AIMessage(content="", tool_calls=[{"name": "a", "args": {}, "id": "1"},
                                             {"name": "b", "args": {}, "id": "2"}])  # fmt: skip
    history = [HumanMessage("x"), first, ToolMessage("ok", tool_call_id="2"), HumanMessage("y")]
    fixed = answer_dangling_calls(history)
    assert [type(m).__name__ for m in fixed] == [
        "HumanMessage", "AIMessage", "ToolMessage", "ToolMessage", "HumanMessage",
    ]  # fmt: skip
    assert fixed[3].tool_call_id == "1" and fixed[3].status == "error"
    check_history(fixed)
    assert answer_dangling_calls(fixed) is None


def test_a_tool_output_equal_to_the_users_photo_stays_the_users(workspace, photo):
    again = workspace.put_image(data.astronaut(), source="segment_image", inputs=[photo.handle],
                                label="mask overlay")  # fmt: skip
    assert again.handle == photo.handle and again.source == "user" and again.inputs == []
    registry = merge_media({photo.handle: photo.to_state()}, {again.handle: {"source": "x"}})
    assert registry[photo.handle]["source"] == "user"


def test_studio_forms_show_the_input_fields_and_the_effective_defaults(monkeypatch):
    graph = build_graph(ScriptedChatModel(steps=[]), tools=[])
    assert {"messages", "media"} <= set(graph.get_input_jsonschema()["properties"])
    monkeypatch.setenv("VITRON_PROFILE", "vitron-7b")
    monkeypatch.setenv("VITRON_STEP_LIMIT", "5")
    properties = graph.get_context_jsonschema()["properties"]
    assert properties["profile"]["default"] == "vitron-7b"
    assert properties["step_limit"]["default"] == 5
    assert properties["device"]["default"] == "auto"
    assert all(f"VITRON_{name.upper()}" in properties[name]["description"] for name in properties)


def test_inputs_without_inline_media_are_passed_through_untouched(tmp_path):
    from vitron.graphs.ingest import prepare_input

    for value in (None, {"messages": [HumanMessage("hi")]}, {"media": {}}, "text"):
        assert prepare_input(value, {}, None) is value
