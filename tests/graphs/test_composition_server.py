"""``langgraph dev`` lists the Vitron graph and both composition examples, the report workflow
(Vitron as a subgraph) answers a turn over langgraph-sdk, and an approval pause is resumed with the
standard interrupt protocol (what Studio's resume sends)."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from langgraph_sdk import get_sync_client
from PIL import Image

from tests.graphs.dev_server import dev_server


@pytest.mark.heavy
def test_dev_server_lists_three_graphs_the_report_answers_and_approval_resumes(tmp_path):
    env = {
        "VITRON_PLANNER": "tests.apps.scripted_planners:web_planner",
        "VITRON_REPORT_MODEL": "tests.apps.scripted_planners:report_writer",
        "VITRON_AGENT_MODEL": "tests.apps.scripted_planners:answer_only",
        "VITRON_WORKSPACE": str(tmp_path / "ws"),
        "VITRON_PROFILE": "tiny",
        "VITRON_DEVICE": "cpu",
    }
    with dev_server(tmp_path / "server.log", env) as url:
        client = get_sync_client(url=url, api_key=None)
        graphs = sorted(a["graph_id"] for a in client.assistants.search())
        assert graphs == ["vitron", "vitron_agent", "vitron_report"]

        buffer = io.BytesIO()
        picture = np.full((40, 60, 3), 220, dtype=np.uint8)
        picture[8:32, 15:45] = (30, 30, 200)
        Image.fromarray(picture).save(buffer, format="PNG")
        image = {"type": "image", "base64": base64.b64encode(buffer.getvalue()).decode(),
                 "mime_type": "image/png"}  # fmt: skip
        message = {"role": "user", "content": [{"type": "text", "text": "report on this"}, image]}
        thread = client.threads.create()
        chunks = list(client.runs.stream(thread["thread_id"], "vitron_report",
                                         input={"messages": [message]}, stream_mode="updates"))  # fmt: skip
        assert [next(iter(c.data)) for c in chunks if c.event == "updates"] == [
            "vitron",
            "write_report",
        ]
        values = client.threads.get_state(thread["thread_id"])["values"]
        assert values["report"].startswith("Report: segment_image result: mask_")
        assert values["messages"][-1]["content"] == values["report"]
        assert {h.split("_")[0] for h in values["media"]} >= {"img", "mask"}
        assert "base64" not in str(values)

        # approval over the API: the edit pauses, a rejection reaches the planner, nothing is made
        thread = client.threads.create()
        message = {"role": "user", "content": [{"type": "text", "text": "make it blue"}, image]}
        client.runs.wait(thread["thread_id"], "vitron", input={"messages": [message]})
        state = client.threads.get_state(thread["thread_id"])
        (pause,) = state["interrupts"]
        assert pause["value"]["type"] == "approval" and pause["value"]["tool"] == "edit_image"
        client.runs.wait(thread["thread_id"], "vitron",
                         command={"resume": {"action": "reject", "reason": "keep it red"}})  # fmt: skip
        values = client.threads.get_state(thread["thread_id"])["values"]
        tool = [m for m in values["messages"] if m["type"] == "tool"][-1]
        assert tool["status"] == "error" and "keep it red" in tool["content"]
        assert (
            values["messages"][-1]["content"] == "Understood, I did not run edit_image this time."
        )
        assert not any(i.get("source") == "edit_image" for i in values["media"].values())
