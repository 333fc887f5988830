"""``langgraph dev`` serves the graph from langgraph.json; a thread is driven over its HTTP API."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from langgraph_sdk import get_sync_client
from PIL import Image

from tests.graphs.dev_server import dev_server


@pytest.fixture
def server(tmp_path):
    env = {
        "VITRON_PLANNER": "tests.apps.scripted_planners:segment_then_answer",
        "VITRON_WORKSPACE": str(tmp_path / "ws"),
        "VITRON_DEVICE": "cpu",
    }
    with dev_server(tmp_path / "server.log", env) as url:
        yield url


@pytest.mark.heavy
def test_a_thread_runs_through_the_dev_server_with_a_tool_call(server):
    client = get_sync_client(url=server, api_key=None)
    assistants = [a for a in client.assistants.search() if a["graph_id"] == "vitron"]
    assert (
        len(assistants) == 1
    )  # beside it: the composition examples (tests/graphs/test_composition_server.py)
    # Studio's forms: the input form has the state's fields, the settings form the effective
    # defaults (the server's VITRON_* environment), not nulls
    schemas = client.assistants.get_schemas(assistants[0]["assistant_id"])
    assert {"messages", "media"} <= set(schemas["input_schema"]["properties"])
    settings = schemas["context_schema"]["properties"]
    assert (
        settings["workspace"]["default"].endswith("ws") and settings["device"]["default"] == "cpu"
    )
    thread = client.threads.create()
    buffer = io.BytesIO()
    Image.fromarray(np.full((40, 60, 3), 90, dtype=np.uint8)).save(buffer, format="PNG")
    image = {
        "type": "image",
        "base64": base64.b64encode(buffer.getvalue()).decode(),
        "mime_type": "image/png",
    }
    message = {
        "role": "user",
        "content": [{"type": "text", "text": "segment the main object"}, image],
    }

    chunks = list(
        client.runs.stream(
            thread["thread_id"], "vitron", input={"messages": [message]},
            context={"profile": "tiny", "device": "cpu"}, stream_mode=["updates", "custom"],
        )
    )  # fmt: skip
    nodes = [next(iter(c.data)) for c in chunks if c.event == "updates"]
    assert nodes == ["ingest", "vitron_llm", "segment_image", "vitron_llm"]
    assert any(c.event == "custom" and c.data.get("event") == "load" for c in chunks)

    values = client.threads.get_state(thread["thread_id"])["values"]
    types = [m["type"] for m in values["messages"]]
    assert types == ["human", "ai", "tool", "ai"]
    assert values["messages"][2]["status"] == "success"
    assert values["messages"][3]["content"].startswith("Done: mask_")
    assert {h.split("_")[0] for h in values["media"]} == {"img", "mask"}
    assert "base64" not in str(values["messages"][0])  # the pixels went to the workspace
