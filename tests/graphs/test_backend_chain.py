"""Backends chained through handles over several turns: each input is the previous output."""

from __future__ import annotations

from langchain_core.messages import AIMessage, ToolMessage

from vitron.graphs import Context, build_graph, user_message
from vitron.graphs.persistence import sqlite_checkpointer
from vitron.graphs.scripted import ScriptedChatModel, last_artifact, tool_call

CONFIG = {"configurable": {"thread_id": "chain"}}


def done(messages):
    return AIMessage(content="done")


def test_generate_segment_recolor_animate_track(tmp_path):
    steps = [
        tool_call("generate_image", instruction="a red ball on grass", seed=3), done,
        lambda m: tool_call("segment_image", image=last_artifact(m, "image"), regions=[[0.2, 0.2, 0.8, 0.8]]), done,
        lambda m: tool_call("edit_image", image=_image_before_mask(m), operation="recolor",
                            instruction="make it blue", mask=last_artifact(m, "masks")[0], seed=3), done,
        lambda m: tool_call("image_to_video", image=last_artifact(m, "image"), seed=3), done,
        lambda m: tool_call("track_video", video=last_artifact(m, "video"), mask=_edited_area(m), frame=0), done,
    ]  # fmt: skip
    context = Context(profile="tiny", workspace=str(tmp_path / "ws"), device="cpu",
                      approve_before=[])  # fmt: skip  # the chain runs unattended: nothing asks
    graph = build_graph(
        ScriptedChatModel(steps=steps), checkpointer=sqlite_checkpointer(tmp_path / "db")
    )
    for text in (
        "draw a red ball",
        "segment the ball",
        "make it blue",
        "animate it",
        "track the ball",
    ):
        result = graph.invoke({"messages": [user_message(text)]}, CONFIG, context=context)

    results = [m for m in result["messages"] if isinstance(m, ToolMessage)]
    assert [m.name for m in results] == [
        "generate_image",
        "segment_image",
        "edit_image",
        "image_to_video",
        "track_video",
    ]
    assert all(m.status == "success" for m in results), [
        m.content for m in results if m.status != "success"
    ]
    media = result["media"]
    generated, mask, edited, video, tracked = (
        results[0].artifact["image"], results[1].artifact["masks"][0], results[2].artifact["image"],
        results[3].artifact["video"], results[4].artifact["masks"],
    )  # fmt: skip
    assert media[mask]["inputs"] == [generated]
    assert media[edited]["inputs"][:2] == [generated, mask]
    assert media[video]["inputs"][0] == edited
    assert media[tracked]["inputs"][0] == video
    assert media[tracked]["frames"] == media[video]["frames"]


def _image_before_mask(messages) -> str:
    """The image the latest mask was made from."""
    for message in reversed(messages):
        if isinstance(message, ToolMessage) and message.name == "generate_image":
            return message.artifact["image"]
    raise LookupError("no generated image")


def _edited_area(messages) -> str:
    """The mask of the area edit_image changed: the object to follow in the video."""
    for message in reversed(messages):
        if isinstance(message, ToolMessage) and message.name == "edit_image":
            return message.artifact["mask"]
    raise LookupError("no edit")
