"""One turn of a scripted conversation in its own process (run by test_persistence.py).

    python -m tests.graphs.session_script TURN WORKSPACE

Prints the thread's messages, media registry and what the planner saw, as JSON.
"""

from __future__ import annotations

import json
import sys

from langchain_core.messages import AIMessage, ToolMessage
from skimage import data

from vitron.graphs import Context, build_graph, user_message
from vitron.graphs.persistence import sqlite_checkpointer
from vitron.graphs.scripted import ScriptedChatModel, last_artifact, tool_call
from vitron.tools.handles import find_handles

THREAD = {"configurable": {"thread_id": "restart-thread"}}


def main(turn: int, workspace: str) -> None:
    context = Context(profile="tiny", workspace=workspace, device="cpu")
    seen: list[list[str]] = []

    def planner_saw(messages) -> None:
        seen.append([f"{type(m).__name__}:{m.text[:120]}" for m in messages])

    def answer_with_mask(messages):
        planner_saw(messages)
        assert isinstance(messages[-1], ToolMessage), "the planner must see the tool result"
        return AIMessage(content=f"Segmented the astronaut: {last_artifact(messages, 'masks')[0]}")

    def ground_next_to_mask(messages):
        planner_saw(messages)
        mask = last_artifact(messages, "masks")[0]  # from turn 1, made in another process
        image = find_handles(messages[1].text)[0]  # the photo attached in turn 1
        return tool_call("ground", image=image, instruction="object", near=mask)

    def answer_with_boxes(messages):
        planner_saw(messages)
        assert isinstance(messages[-1], ToolMessage) and messages[-1].name == "ground"
        return AIMessage(content=f"Found {len(last_artifact(messages, 'boxes'))} boxes near it.")

    if turn == 1:
        photo = (
            context.services().workspace.for_thread("restart-thread").put_image(data.astronaut())
        )
        steps = [
            tool_call("segment_image", image=photo.handle, instruction="the astronaut"),
            answer_with_mask,
        ]
        inputs = {"messages": [user_message("segment the astronaut", media=[photo])],
                  "media": {photo.handle: photo.to_state()}}  # fmt: skip
    else:
        steps = [ground_next_to_mask, answer_with_boxes]
        inputs = {"messages": [user_message("now ground the object next to it")]}
    graph = build_graph(ScriptedChatModel(steps=steps), checkpointer=sqlite_checkpointer(workspace))
    graph.invoke(inputs, THREAD, context=context)
    state = graph.get_state(THREAD).values
    print(
        json.dumps(
            {
                "messages": [
                    {
                        "type": m.type,
                        "id": m.id,
                        "text": m.text,
                        "status": getattr(m, "status", None),
                    }
                    for m in state["messages"]
                ],
                "media": state["media"],
                "seen": seen,
            }
        )
    )


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
