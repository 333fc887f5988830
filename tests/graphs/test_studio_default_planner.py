"""The Studio graph with its default planner (ChatVitron on ``tiny``) answers over HTTP.

A transformers release once broke ChatVitron, and the server answered every message with "The
planner failed…"; this drives one turn through ``langgraph dev`` with no planner override.
"""

from __future__ import annotations

from langgraph_sdk import get_sync_client

from tests.graphs.dev_server import dev_server


def test_default_planner_answers_a_turn_without_an_error(tmp_path):
    env = {"VITRON_WORKSPACE": str(tmp_path / "ws"), "VITRON_DEVICE": "cpu", "VITRON_PLANNER": ""}
    with dev_server(tmp_path / "server.log", env) as url:
        client = get_sync_client(url=url, api_key=None)
        thread = client.threads.create()
        run = client.runs.wait(
            thread["thread_id"],
            "vitron",
            input={"messages": [{"role": "user", "content": "describe what you can do"}]},
            context={"profile": "tiny", "device": "cpu", "step_limit": 2},
        )
        assert "__error__" not in run, run
        messages = client.threads.get_state(thread["thread_id"])["values"]["messages"]
    assert messages[0]["type"] == "human"
    planner_replies = [m for m in messages if m["type"] == "ai"]
    assert planner_replies, messages
    for message in planner_replies:
        assert "planner failed" not in str(message["content"]).lower(), message["content"]
