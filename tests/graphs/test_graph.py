"""The graph's behaviour: routing, parallel calls, errors that keep the session alive, limits, size."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from PIL import Image

from vitron.graphs import Context, build_graph, user_message
from vitron.graphs.persistence import sqlite_checkpointer
from vitron.graphs.scripted import ScriptedChatModel, last_artifact, tool_call

THREAD = "graph-thread"
CONFIG = {"configurable": {"thread_id": THREAD}}


@pytest.fixture
def context(tmp_path) -> Context:
    return Context(profile="tiny", workspace=str(tmp_path / "workspace"), device="cpu")


@pytest.fixture
def photo(context):
    from skimage import data

    return context.services().workspace.for_thread(THREAD).put_image(data.astronaut())


def run(graph, text: str, context: Context, media=()):
    inputs = {
        "messages": [user_message(text, media=media)],
        "media": {m.handle: m.to_state() for m in media},
    }
    return graph.invoke(inputs, CONFIG, context=context)


def final(result) -> AIMessage:
    message = result["messages"][-1]
    assert isinstance(message, AIMessage)
    return message


def test_parallel_tool_calls_fan_out_and_join_before_the_next_step(context, photo):
    both = AIMessage(
        content="",
        tool_calls=[
            {
                "name": "segment_image",
                "args": {"image": photo.handle, "regions": [[0.1, 0.1, 0.6, 0.9]]},
                "id": "a",
            },
            {"name": "ground", "args": {"image": photo.handle, "instruction": "a flag"}, "id": "b"},
        ],
    )
    seen = []

    def answer(messages):
        seen.extend(messages)
        return AIMessage(content="both done")

    graph = build_graph(ScriptedChatModel(steps=[both, answer]))
    result = run(graph, "segment and ground", context, media=[photo])
    assert final(result).content == "both done"
    tool_results = [m for m in seen if isinstance(m, ToolMessage)]
    assert sorted(m.tool_call_id for m in tool_results) == ["a", "b"]  # both joined before step 2
    assert all(m.status == "success" for m in tool_results)
    kinds = {h.split("_")[0] for h in result["media"]}
    assert {"img", "mask", "box"} <= kinds


def test_unknown_tool_malformed_arguments_and_bad_handles_keep_the_session_usable(context, photo):
    bad_calls = AIMessage(
        content="",
        tool_calls=[
            {"name": "teleport", "args": {}, "id": "unknown"},
            {
                "name": "segment_image",
                "args": {"image": "../../etc/passwd", "instruction": "x"},
                "id": "path",
            },
            {
                "name": "segment_image",
                "args": {"image": "img_00000000000000aa", "instruction": "x"},
                "id": "missing",
            },
            {
                "name": "ground",
                "args": {
                    "image": photo.handle,
                    "regions": [[0.9, 0.1, 0.2, 0.5]],
                    "instruction": "a",
                },
                "id": "inverted",
            },
        ],
        invalid_tool_calls=[
            {
                "name": "ground",
                "args": '{"image": img_',
                "id": "garbled",
                "error": None,
                "type": "invalid_tool_call",
            }
        ],
    )
    graph = build_graph(
        ScriptedChatModel(
            steps=[
                bad_calls,
                AIMessage(content="I could not do that."),
                tool_call("ground", image=photo.handle, instruction="a flag"),
                AIMessage(content="ok"),
            ]
        ),
        checkpointer=sqlite_checkpointer(context.workspace),
    )
    result = run(graph, "do impossible things", context, media=[photo])
    errors = {m.tool_call_id: m.content for m in result["messages"] if isinstance(m, ToolMessage)}
    assert set(errors) == {"unknown", "path", "missing", "inverted", "garbled"}
    assert all(m.status == "error" for m in result["messages"] if isinstance(m, ToolMessage))
    assert (
        "there is no tool 'teleport'" in errors["unknown"] and "segment_image" in errors["unknown"]
    )
    assert "is not a media handle" in errors["path"]
    assert "not in this conversation" in errors["missing"]
    assert "inverted" in errors["inverted"]
    assert "could not read the arguments of ground" in errors["garbled"]
    # the same thread goes on working
    again = run(graph, "now ground the flag", context)
    assert final(again).content == "ok"
    assert [m for m in again["messages"] if isinstance(m, ToolMessage)][-1].status == "success"


def test_step_limit_stops_a_runaway_loop_with_a_clear_message(context, photo):
    looping = [tool_call("ground", image=photo.handle, instruction="a flag") for _ in range(10)]
    graph = build_graph(ScriptedChatModel(steps=looping))
    result = graph.invoke(
        {
            "messages": [user_message("loop", media=[photo])],
            "media": {photo.handle: photo.to_state()},
        },
        CONFIG,
        context=Context(profile="tiny", workspace=context.workspace, device="cpu", step_limit=3),
    )
    last = final(result)
    assert (
        "stopped after 3 steps" in last.content
        and last.response_metadata["stop_reason"] == "step_limit"
    )
    assert sum(isinstance(m, ToolMessage) for m in result["messages"]) == 3


def test_the_planner_sees_the_media_registry_and_tools_are_bound(context, photo):
    seen = []

    def look(messages):
        seen.extend(messages)
        return AIMessage(content="seen")

    model = ScriptedChatModel(steps=[look])
    run(build_graph(model), "what do you have?", context, media=[photo])
    system = seen[0]
    assert (
        system.type == "system" and photo.handle in system.text and "512x512 image" in system.text
    )
    assert {"segment_image", "ground"} <= set(model.bound_tools)


def test_inline_base64_images_are_moved_into_the_workspace(context):
    buffer = io.BytesIO()
    Image.fromarray(np.full((30, 40, 3), 200, dtype=np.uint8)).save(buffer, format="PNG")
    encoded = base64.b64encode(buffer.getvalue()).decode()
    message = HumanMessage(
        content=[
            {"type": "text", "text": "what is this?"},
            {"type": "image", "base64": encoded, "mime_type": "image/png"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,not-base64!"}},
        ]
    )
    graph = build_graph(ScriptedChatModel(steps=[AIMessage(content="a grey picture")]))
    result = graph.invoke({"messages": [message]}, CONFIG, context=context)
    (handle,) = result["media"]
    assert result["media"][handle] == {"about": "40x30 image, from the user", "kind": "img",
                                       "source": "user", "width": 40, "height": 30}  # fmt: skip
    stored = result["messages"][0]
    assert encoded not in str(stored.content) and handle in stored.text
    assert "attachment not usable" in stored.text  # the broken block is reported, not fatal


def test_checkpoint_of_a_turn_on_a_12_megapixel_image_stays_small(context):
    workspace = context.services().workspace.for_thread(THREAD)
    big = np.zeros((3000, 4000, 3), dtype=np.uint8)
    big[:, :, 0] = np.linspace(0, 255, 4000, dtype=np.uint8)
    photo = workspace.put_image(big)
    saver = sqlite_checkpointer(context.workspace)
    steps = [tool_call("segment_image", image=photo.handle, regions=[[0.2, 0.2, 0.6, 0.7]]),
             lambda m: AIMessage(content=f"done: {last_artifact(m, 'masks')[0]}")]  # fmt: skip
    graph = build_graph(ScriptedChatModel(steps=steps), checkpointer=saver)
    run(graph, "segment the left part", context, media=[photo])
    latest = saver.get_tuple(CONFIG)
    _, blob = saver.serde.dumps_typed(latest.checkpoint)
    assert len(blob) < 16 * 1024, f"checkpoint is {len(blob)} bytes"
    assert latest.checkpoint["channel_values"]["media"][photo.handle]["width"] == 4000


def test_progress_of_model_loading_streams_as_custom_events(tmp_path, photo):
    fresh = Context(profile="tiny", workspace=str(tmp_path / "fresh"), device="cpu")
    workspace = fresh.services().workspace.for_thread(THREAD)
    image = workspace.put_image(np.zeros((32, 32, 3), dtype=np.uint8))
    graph = build_graph(ScriptedChatModel(steps=[tool_call("ground", image=image.handle, instruction="a"),
                                                 AIMessage(content="ok")]))  # fmt: skip
    events = [
        chunk
        for mode, chunk in graph.stream(
            {"messages": [user_message("go", media=[image])]},
            CONFIG,
            context=fresh,
            stream_mode=["custom", "updates"],
        )
        if mode == "custom"
    ]
    assert {
        "tool": "ground",
        "event": "load",
        "component": "grounding_dino",
        "status": "start",
    }.items() <= events[0].items()
    assert events[-1]["status"] == "done" and events[-1]["seconds"] >= 0


def test_a_failing_planner_ends_the_turn_with_a_message_and_the_thread_goes_on(context):
    def crash(messages):
        raise RuntimeError("CUDA out of memory in the planner")

    graph = build_graph(
        ScriptedChatModel(steps=[crash, AIMessage(content="fine again")]),
        checkpointer=sqlite_checkpointer(context.workspace),
    )
    first = final(run(graph, "hello", context))
    assert "planner failed" in first.content and "CUDA out of memory" in first.content
    assert first.response_metadata["stop_reason"] == "planner_error"
    assert final(run(graph, "hello again", context)).content == "fine again"


def test_a_blank_message_is_answered_without_the_planner_and_the_thread_goes_on(context, photo):
    asked = []

    def answer(messages):
        asked.append(messages[-1].text)
        return AIMessage(content="ok")

    graph = build_graph(
        ScriptedChatModel(steps=[answer]), checkpointer=sqlite_checkpointer(context.workspace)
    )
    for blank in ("", "  \n "):
        last = final(graph.invoke({"messages": [HumanMessage(content=blank)]}, CONFIG,
                                  context=context))  # fmt: skip
        assert last.content == "The request is empty: say what you want done."
        assert last.response_metadata["stop_reason"] == "empty_request"
    assert asked == []
    result = run(graph, "describe it", context, media=[photo])
    assert final(result).content == "ok" and asked == [result["messages"][-2].text]
    answers = [m for m in result["messages"] if isinstance(m, AIMessage)]
    assert len(answers) == 3 and len({m.id for m in answers}) == 3  # each blank keeps its answer
