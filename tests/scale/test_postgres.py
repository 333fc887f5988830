"""Threads checkpointed in a real PostgreSQL: many at once, each resumed by another process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vitron.graphs.persistence import checkpointer_from, describe, is_postgres

ROOT = Path(__file__).resolve().parents[2]


def start_turn(url: str, workspace: Path, turn: int, threads: list[str]) -> subprocess.Popen:
    command = [sys.executable, "-m", "tests.scale.threads_script", url, str(workspace), str(turn),
               *threads]  # fmt: skip
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip


def finish(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=400)
    assert process.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.heavy
def test_sixteen_parallel_threads_each_resumed_in_another_process(postgres_url, tmp_path):
    workspace = tmp_path / "workspace"  # the shared filesystem path every process mounts
    threads = [f"pg-thread-{i:02d}" for i in range(16)]
    left, right = threads[:8], threads[8:]

    # turn 1: two processes at once, 8 threads in parallel in each
    first = {}
    for process in [start_turn(postgres_url, workspace, 1, part) for part in (left, right)]:
        first.update(finish(process))
    # turn 2: each thread resumed by the *other* process than the one that began it
    second = {}
    for process in [start_turn(postgres_url, workspace, 2, part) for part in (right, left)]:
        second.update(finish(process))

    masks = {}
    for thread in threads:
        before, after = first[thread], second[thread]
        assert [m["type"] for m in before["messages"]] == ["human", "ai", "tool", "ai"]
        assert before["messages"][2]["status"] == "success", before["messages"][2]
        mask = next(h for h in before["media"] if h.startswith("mask_"))
        masks[thread] = mask
        # nothing lost: turn 1 is intact under turn 2, which used turn 1's mask
        assert after["messages"][:4] == before["messages"]
        assert [m["type"] for m in after["messages"][4:]] == ["human", "ai", "tool", "ai"]
        grounded = after["messages"][6]
        assert grounded["name"] == "ground" and grounded["status"] == "success", grounded
        assert f"nearest to {mask}" in grounded["text"]
        assert all(after["media"][h] == info for h, info in before["media"].items())
        # nothing crossed: every user message is this thread's
        humans = [m["text"] for m in after["messages"] if m["type"] == "human"]
        assert all(text.startswith(f"thread {thread}:") for text in humans)
    assert len(set(masks.values())) == 16  # distinct photos, distinct masks, none shared
    for thread in threads:
        others = [m for t, m in masks.items() if t != thread]
        text = " ".join(m["text"] for m in second[thread]["messages"])
        assert not any(other in text for other in others)


def test_checkpointer_strings_select_the_backend(postgres_url, tmp_path):
    assert is_postgres(postgres_url) and not is_postgres(str(tmp_path))
    saver = checkpointer_from(postgres_url)
    assert type(saver).__name__ == "PostgresSaver"
    assert list(saver.list({"configurable": {"thread_id": "nobody-here"}})) == []
    assert type(checkpointer_from(tmp_path / "db")).__name__ == "SqliteSaver"
    assert describe("postgresql://u:secret@db:5432/x") == "postgresql://u:***@db:5432/x"


def test_an_unreachable_database_is_a_clear_error(tmp_path):
    from tests.graphs.dev_server import free_port

    with pytest.raises(ConnectionError, match="cannot reach the checkpointer"):
        from vitron.graphs.persistence_postgres import postgres_checkpointer

        postgres_checkpointer(f"postgresql://nobody:pw@127.0.0.1:{free_port()}/x")


@pytest.mark.heavy
def test_the_cli_keeps_its_conversation_in_postgres(postgres_url, tmp_path, monkeypatch):
    command = [str(Path(sys.executable).with_name("vitron")), "run", "hello there", "--profile",
               "tiny", "--device", "cpu", "--workspace", str(tmp_path / "ws"), "--thread",
               "cli-thread", "--checkpointer", postgres_url, "--no-progress",
               "--out", str(tmp_path / "out")]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    saved = checkpointer_from(postgres_url).get_tuple({"configurable": {"thread_id": "cli-thread"}})
    assert saved is not None
    texts = [m.text for m in saved.checkpoint["channel_values"]["messages"]]
    assert texts[0].startswith("hello there")
    assert not (tmp_path / "ws" / "conversations.sqlite").exists()
    # the web UI lists the conversations of the database the environment names
    from vitron.apps.web.threads import list_threads

    monkeypatch.setenv("VITRON_CHECKPOINTER", postgres_url)
    assert "cli-thread" in list_threads(tmp_path / "ws")
    monkeypatch.delenv("VITRON_CHECKPOINTER")
    assert list_threads(tmp_path / "ws") == []


def test_the_agent_server_checkpointer_opens_sets_up_and_saves(postgres_url, monkeypatch):
    """What ``deploy/langgraph.postgres.json`` names: an async context manager over a pool."""
    import asyncio

    from langgraph.checkpoint.base import empty_checkpoint

    from vitron.graphs.persistence_postgres import server_checkpointer

    monkeypatch.setenv("VITRON_CHECKPOINTER", postgres_url)

    async def roundtrip() -> tuple[str, str]:
        async with server_checkpointer() as saver:
            config = {"configurable": {"thread_id": "server-thread", "checkpoint_ns": ""}}
            checkpoint = empty_checkpoint()
            await saver.aput(config, checkpoint, {"source": "input", "step": -1}, {})
            saved = await saver.aget_tuple(config)
            return checkpoint["id"], saved.checkpoint["id"] if saved else ""

    for _ in range(2):  # the second server start finds the tables set up already
        written, read = asyncio.run(roundtrip())
        assert written == read
    monkeypatch.setenv("VITRON_CHECKPOINTER", "/not/a/url")
    with pytest.raises(RuntimeError, match="postgresql:// URL"):
        asyncio.run(roundtrip())


def test_the_dev_server_config_names_the_postgres_checkpointer_and_the_graph():
    """deploy/langgraph.postgres.json, as `langgraph dev --config` reads it (the benchmark runs it)."""
    import importlib

    from langgraph_cli.config import validate_config_file

    config = validate_config_file(ROOT / "deploy" / "langgraph.postgres.json")
    module, _, name = config["checkpointer"]["path"].rpartition(".")  # the server's module form
    assert getattr(importlib.import_module(module), name).__name__ == "server_checkpointer"
    assert config["graphs"] == {"vitron": "vitron.graphs.studio:graph"}
