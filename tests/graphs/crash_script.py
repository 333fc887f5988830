"""One step of the crash test in its own process (run by test_crash.py).

    python -m tests.graphs.crash_script MODE WORKSPACE

``tool``: turn 1 sends an inline photo; the planner asks segment_image for it, and the process
SIGKILLs itself inside the tool, after the mask is written to a temporary file and before it is
renamed into place. ``checkpoint``: turn 1 runs the same call to the end of the tool, and the
process SIGKILLs itself in the middle of the SQLite transaction writing the checkpoint after it.
``resume``: a new process sends turn 2 on the same thread with a planner that validates the
history, and prints the thread as JSON.
"""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import sys
from contextlib import contextmanager

from langchain_core.messages import AIMessage
from langgraph.checkpoint.sqlite import SqliteSaver
from PIL import Image
from skimage import data

from tests.graphs.strict_planner import HistoryCheckingPlanner
from vitron.graphs import Context, build_graph
from vitron.graphs.persistence import sqlite_checkpointer
from vitron.graphs.scripted import tool_call
from vitron.tools.handles import find_handles
from vitron.tools.workspace import Workspace

CONFIG = {"configurable": {"thread_id": "crash-thread"}}


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def kill_inside_tool_output() -> None:
    """SIGKILL when segment_image commits its mask: the file is complete in .tmp/, not renamed."""
    original = Workspace._commit

    def commit(self, tmp, target, meta):
        if meta.source == "segment_image":
            die()
        return original(self, tmp, target, meta)

    Workspace._commit = commit


def kill_inside_checkpoint_write(step: int) -> None:
    """SIGKILL inside the SQLite transaction that stores the checkpoint of ``step``, after its
    rows are inserted and before the commit."""
    original_put, original_cursor = SqliteSaver.put, SqliteSaver.cursor
    state = {"armed": False}

    def put(self, config, checkpoint, metadata, new_versions):
        state["armed"] = metadata.get("step") == step
        return original_put(self, config, checkpoint, metadata, new_versions)

    @contextmanager
    def cursor(self, transaction: bool = True):
        if not state["armed"]:
            with original_cursor(self, transaction) as cur:
                yield cur
            return
        with self.lock:
            cur = self.conn.cursor()
            yield cur  # the INSERT runs here
            die()  # before commit

    SqliteSaver.put, SqliteSaver.cursor = put, cursor


def photo_block() -> dict:
    buffer = io.BytesIO()
    Image.fromarray(data.astronaut()).resize((96, 96)).save(buffer, format="PNG")
    return {"type": "image", "base64": base64.b64encode(buffer.getvalue()).decode(),
            "mime_type": "image/png"}  # fmt: skip


def main(mode: str, workspace: str) -> None:
    context = Context(profile="tiny", workspace=workspace, device="cpu")
    if mode == "resume":
        planner = HistoryCheckingPlanner(
            steps=[lambda m: AIMessage(content=f"Turn 2 sees {len(m) - 1} messages.")]
        )
        inputs = {"messages": [{"role": "user", "content": "are you still there?"}]}
    else:
        if mode == "tool":
            kill_inside_tool_output()
        else:
            kill_inside_checkpoint_write(step=3)  # the checkpoint after the tool's step
        planner = HistoryCheckingPlanner(
            steps=[
                lambda m: tool_call(
                    "segment_image",
                    image=find_handles(m[-1].text)[0],
                    regions=[[0.2, 0.1, 0.8, 0.9]],
                ),
                AIMessage(content="unreachable: the process is killed before this"),
            ]
        )
        text = {"type": "text", "text": "segment the astronaut"}
        inputs = {"messages": [{"role": "user", "content": [text, photo_block()]}]}
    graph = build_graph(planner, checkpointer=sqlite_checkpointer(workspace))
    graph.invoke(inputs, CONFIG, context=context, durability="sync")
    state = graph.get_state(CONFIG).values
    print(json.dumps({
        "messages": [
            {"type": m.type, "text": m.text, "status": getattr(m, "status", None),
             "tool_call_id": getattr(m, "tool_call_id", None),
             "calls": [c["id"] for c in getattr(m, "tool_calls", [])]}
            for m in state["messages"]
        ],
        "media": state.get("media", {}),
    }))  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
