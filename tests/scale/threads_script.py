"""One turn on several threads at once, in its own process (run by the scale tests and benchmark).

    python -m tests.scale.threads_script CHECKPOINTER WORKSPACE TURN THREAD [THREAD …]

Turn 1 attaches a photo distinct per thread (the astronaut shifted by the thread's number) and asks
for a segmentation; turn 2 asks for what is next to it. Every thread runs in parallel through one
compiled graph. Prints ``{thread: {"messages": […], "media": {…}}}`` as JSON on the last line.
"""

from __future__ import annotations

import json
import sys
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from PIL import Image
from skimage import data

from tests.scale.planner import HandlePlanner
from vitron.graphs import Context, build_graph, user_message
from vitron.graphs.persistence import checkpointer_from


def photo_for(thread: str) -> np.ndarray:
    """The astronaut, rolled sideways by an amount fixed by the thread id (distinct handles), at
    128 x 128 (the tiny models gain nothing from more pixels; the test only gets slower)."""
    shift = 1 + zlib.crc32(thread.encode()) % 500
    rolled = Image.fromarray(np.roll(data.astronaut(), shift, axis=1))
    return np.asarray(rolled.resize((128, 128), Image.Resampling.BILINEAR))


def turn_input(context: Context, thread: str, turn: int) -> dict[str, Any]:
    if turn == 1:
        photo = context.services().workspace.for_thread(thread).put_image(photo_for(thread))
        message = user_message(f"thread {thread}: segment the astronaut", media=[photo])
        return {"messages": [message], "media": {photo.handle: photo.to_state()}}
    return {"messages": [user_message(f"thread {thread}: now what is next to it?")]}


def snapshot(graph: Any, thread: str) -> dict[str, Any]:
    values = graph.get_state({"configurable": {"thread_id": thread}}).values
    messages = [{"type": m.type, "id": m.id, "text": m.text, "status": getattr(m, "status", None),
                 "name": getattr(m, "name", None)} for m in values["messages"]]  # fmt: skip
    return {"messages": messages, "media": values.get("media") or {}}


def main(checkpointer: str, workspace: str, turn: int, threads: list[str]) -> None:
    context = Context(profile="tiny", workspace=workspace, device="cpu", approve_before=[])
    graph = build_graph(HandlePlanner(), checkpointer=checkpointer_from(checkpointer))

    def run(thread: str) -> None:
        config = {"configurable": {"thread_id": thread}}
        graph.invoke(turn_input(context, thread, turn), config, context=context)

    with ThreadPoolExecutor(max_workers=len(threads)) as pool:
        list(pool.map(run, threads))
    print(json.dumps({t: snapshot(graph, t) for t in threads}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:])
