"""``langgraph dev`` serves the graph from langgraph.json; a thread is driven over its HTTP API."""

from __future__ import annotations

import base64
import io
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from langgraph_sdk import get_sync_client
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "VITRON_PLANNER": "tests.apps.scripted_planners:segment_then_answer",
        "VITRON_WORKSPACE": str(tmp_path / "ws"),
        "VITRON_DEVICE": "cpu",
        "LANGSMITH_TRACING": "false",
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
        "PYTHONPATH": str(ROOT),
    }
    log = (tmp_path / "server.log").open("w")
    command = [str(Path(sys.executable).with_name("langgraph")), "dev", "--port", str(port),
               "--host", "127.0.0.1", "--no-browser", "--no-reload", "--config", str(ROOT / "langgraph.json")]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"{url}/ok", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(1)
        else:
            pytest.fail(
                "langgraph dev did not start: " + (tmp_path / "server.log").read_text()[-3000:]
            )
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


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
