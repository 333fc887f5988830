"""N concurrent conversations through three deployments of the same graph, in one run:

(a) ``local``: one process, the graph compiled with the SQLite checkpointer, conversations on threads;
(b) ``server+pg``: ``langgraph dev`` serving the graph with the PostgreSQL checkpointer
    (``deploy/langgraph.postgres.json``), conversations over its HTTP API;
(c) ``server+pg+ray``: as (b), with ``segment_image`` and ``ground`` served by Ray Serve
    (a local Ray cluster on loopback; one replica each).

Each conversation has two turns: an image sent inline (stored by the graph's ingest node), segmented;
then "what is next to it?", grounded next to the mask. The planner is stateless
(``tests.scale.planner``), the models the ``tiny`` profile, so this measures the plumbing —
checkpointing, the server, the Ray hop — not model quality. For N = 1, 4, 16 it reports turns per
second and p50/p95 turn latency, each also as a ratio to (a); then the stored bytes and the server's
resident memory per idle thread. Every turn's answer is checked (``errors``).

    .venv/bin/python benchmarks/bench_scale.py [--n 1 4 16] [--modes local server+pg server+pg+ray]

PostgreSQL comes from a throw-away cluster (``tests/scale/postgres_cluster.py``). This is a
benchmark, not a test: it asserts nothing about time.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import os
import platform
import sys
import tempfile
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from skimage import data  # noqa: E402

from tests.graphs.dev_server import free_port, serving  # noqa: E402
from tests.scale.postgres_cluster import postgres_cluster  # noqa: E402

MODES = ("local", "server+pg", "server+pg+ray")
RAY_PROFILE = """
name = "tiny-ray"
extends = "tiny"

[components.sam]
serve = "ray"
num_cpus = 0.1

[components.grounding_dino]
serve = "ray"
num_cpus = 0.1
"""
RunTurn = Callable[[str, dict[str, Any]], dict[str, Any]]
"""(thread, input) -> the thread's state values after the turn."""


def photo(seed: str, side: int = 128) -> str:
    """A distinct image per conversation, base64 PNG: the astronaut, rolled, downscaled."""
    shift = zlib.crc32(seed.encode()) % 500
    image = Image.fromarray(np.roll(data.astronaut(), shift, axis=1)).resize((side, side))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def turn_input(thread: str, turn: int) -> dict[str, Any]:
    if turn == 0:
        content = [{"type": "text", "text": f"thread {thread}: segment the astronaut"},
                   {"type": "image", "base64": photo(thread), "mime_type": "image/png"}]  # fmt: skip
    else:
        content = [{"type": "text", "text": f"thread {thread}: now what is next to it?"}]
    return {"messages": [{"role": "user", "content": content}]}


def answered(values: dict[str, Any], turn: int) -> bool:
    """The turn ended with the expected tool's successful result, answered."""
    messages = values.get("messages") or []

    def field(m: Any, key: str) -> Any:
        return m.get(key) if isinstance(m, dict) else getattr(m, key, None)

    if len(messages) != 4 * (turn + 1):
        return False
    tool, answer = messages[-2], messages[-1]
    expected = "segment_image" if turn == 0 else "ground"
    return (field(tool, "name") == expected and field(tool, "status") == "success"
            and str(field(answer, "content")).startswith(f"{expected} answered"))  # fmt: skip


def drive(run_turn: RunTurn, new_thread: Callable[[], str], n: int, turns: int) -> dict[str, Any]:
    """``n`` conversations at once, ``turns`` turns each; latencies and wall time."""
    threads = [new_thread() for _ in range(n)]
    latencies: list[float] = []
    errors = 0

    def conversation(thread: str) -> None:
        nonlocal errors
        for turn in range(turns):
            started = time.perf_counter()
            try:
                values = run_turn(thread, turn_input(thread, turn))
                ok = answered(values, turn)
            except Exception as exc:  # counted, and the benchmark goes on
                print(f"  turn failed on {thread}: {type(exc).__name__}: {exc}", file=sys.stderr)
                ok = False
            latencies.append(time.perf_counter() - started)
            errors += not ok

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=n) as pool:
        list(pool.map(conversation, threads))
    wall = time.perf_counter() - started
    return {"n": n, "turns": len(latencies), "wall": wall, "errors": errors,
            "turns_per_s": len(latencies) / wall, "p50": percentile(latencies, 50),
            "p95": percentile(latencies, 95)}  # fmt: skip


def percentile(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return float(np.percentile(values, q))


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return children


def rss_of_tree(pid: int) -> int:
    """Resident bytes of ``pid`` and its descendants (a server's worker processes); Linux /proc."""
    children, todo, total = _children(), [pid], 0
    while todo:
        current = todo.pop()
        todo += children.get(current, [])
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


def replicas_rss() -> int:
    """Resident bytes of this machine's Ray Serve replica processes (``ray::ServeReplica…``)."""
    total = 0
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            if cmdline.read_bytes().startswith(b"ray::ServeReplica"):
                total += rss_of_tree(int(cmdline.parent.name))
    return total


def pid_with_argument(argument: bytes) -> int:
    """The process whose command line holds ``argument`` (the server, found by its port)."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            words = cmdline.read_bytes().split(b"\0")
            if argument in words and any(b"langgraph" in w for w in words):
                return int(cmdline.parent.name)
    return 0


# --------------------------------------------------------------------------- the three modes


@contextlib.contextmanager
def local_mode(workdir: Path) -> Iterator[dict[str, Any]]:
    from tests.scale.planner import HandlePlanner
    from vitron.graphs import Context, build_graph
    from vitron.graphs.persistence import CHECKPOINT_FILE, sqlite_checkpointer

    workspace = workdir / "ws-local"
    context = Context(profile="tiny", workspace=str(workspace), device="cpu", approve_before=[])
    graph = build_graph(HandlePlanner(), checkpointer=sqlite_checkpointer(workspace))

    def run_turn(thread: str, inputs: dict[str, Any]) -> dict[str, Any]:
        config = {"configurable": {"thread_id": thread}}
        graph.invoke(inputs, config, context=context)
        return graph.get_state(config).values

    yield {"run_turn": run_turn, "new_thread": lambda: uuid.uuid4().hex,
           "stored_bytes": lambda: sum(p.stat().st_size for p in workspace.glob(CHECKPOINT_FILE + "*")),
           "rss": lambda: rss_of_tree(os.getpid())}  # fmt: skip


@contextlib.contextmanager
def server_mode(workdir: Path, url: str, ray_address: str | None,
                profile: str) -> Iterator[dict[str, Any]]:  # fmt: skip
    import psycopg
    from langgraph_sdk import get_sync_client

    name = "ray" if ray_address else "pg"
    with psycopg.connect(url, autocommit=True) as conn:  # a database of its own per mode
        conn.execute(f"CREATE DATABASE bench_{name}")
    database = url.rsplit("/", 1)[0] + f"/bench_{name}"
    env = {"VITRON_CHECKPOINTER": database, "VITRON_PLANNER": "tests.scale.planner:planner",
           "VITRON_PROFILE": profile, "VITRON_WORKSPACE": str(workdir / f"ws-{name}"),
           "VITRON_DEVICE": "cpu", "VITRON_APPROVE_BEFORE": "none", "OMP_NUM_THREADS": "1"}  # fmt: skip
    if ray_address:
        env["VITRON_RAY_ADDRESS"] = ray_address
    with langgraph_dev(workdir / f"server-{name}.log", env) as (base, pid):
        local = threading.local()

        def client() -> Any:
            if not hasattr(local, "client"):
                local.client = get_sync_client(url=base, api_key=None)
            return local.client

        def run_turn(thread: str, inputs: dict[str, Any]) -> dict[str, Any]:
            client().runs.wait(thread, "vitron", input=inputs, raise_error=True)
            return client().threads.get_state(thread)["values"]

        def stored_bytes() -> int:
            with psycopg.connect(database) as conn:
                row = conn.execute(
                    "SELECT sum(pg_total_relation_size(t)) FROM unnest(ARRAY['checkpoints', "
                    "'checkpoint_blobs', 'checkpoint_writes']) AS t"
                ).fetchone()
            return int(row[0])

        yield {"run_turn": run_turn, "new_thread": lambda: client().threads.create()["thread_id"],
               "stored_bytes": stored_bytes, "rss": lambda: rss_of_tree(pid)}  # fmt: skip


@contextlib.contextmanager
def langgraph_dev(log: Path, env: dict[str, str]) -> Iterator[tuple[str, int]]:
    """``langgraph dev`` on ``deploy/langgraph.postgres.json``; yields its URL and process id."""
    port = free_port()
    env = {**os.environ, "LANGSMITH_TRACING": "false", "LANGGRAPH_CLI_NO_ANALYTICS": "1",
           "PYTHONPATH": str(ROOT), **env}  # fmt: skip
    command = [str(Path(sys.executable).with_name("langgraph")), "dev", "--port", str(port),
               "--host", "127.0.0.1", "--no-browser", "--no-reload", "--n-jobs-per-worker", "32",
               "--config", str(ROOT / "deploy" / "langgraph.postgres.json")]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    with serving(command, f"{url}/ok", log, env, timeout=300):
        yield url, pid_with_argument(str(port).encode())


@contextlib.contextmanager
def ray_cluster(workdir: Path) -> Iterator[tuple[str, str]]:
    """A local Ray cluster on loopback with segment_image and ground deployed (tiny models)."""
    import ray
    from ray import serve

    from vitron.tools.serve_ray import deploy

    profile = workdir / "tiny-ray.toml"
    profile.write_text(RAY_PROFILE)
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 1024**2,
             _node_ip_address="127.0.0.1", log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}})  # fmt: skip
    try:
        serve.start(proxy_location="Disabled")
        deploy(str(profile), device="cpu")
        yield ray.get_runtime_context().gcs_address, str(profile)
    finally:
        serve.shutdown()
        ray.shutdown()


# --------------------------------------------------------------------------- the run


def measure(name: str, mode: dict[str, Any], ns: list[int], turns: int) -> dict[str, Any]:
    print(f"{name}: warm-up", file=sys.stderr)
    warm = drive(mode["run_turn"], mode["new_thread"], 1, turns)
    rss_before, stored_before = mode["rss"](), mode["stored_bytes"]()
    rows = []
    threads = 1
    for n in ns:
        print(f"{name}: N={n}", file=sys.stderr)
        rows.append(drive(mode["run_turn"], mode["new_thread"], n, turns))
        threads += n
    return {"rows": rows, "warm_errors": warm["errors"], "threads": threads,
            "stored_per_thread": (mode["stored_bytes"]() - stored_before) / (threads - 1),
            "rss_per_thread": (mode["rss"]() - rss_before) / (threads - 1),
            "rss": mode["rss"](), "replicas_rss": replicas_rss()}  # fmt: skip


def report(results: dict[str, dict[str, Any]], ns: list[int], turns: int, seconds: float) -> str:
    cpu = platform.processor() or platform.machine()
    lines = [f"machine: {os.cpu_count()} CPUs ({cpu}), "
             f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB RAM, "
             f"Python {platform.python_version()}, torch 1 thread; {turns} turns per "
             f"conversation; whole run {seconds:.0f} s", "",
             "| mode | N | turns | turns/s | p50 s | p95 s | turns/s vs local | p50 vs local "
             "| p95 vs local | errors |", "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    base = {r["n"]: r for r in results.get("local", {"rows": []})["rows"]}
    for mode, result in results.items():
        for row in result["rows"]:
            ref = base.get(row["n"])

            def ratio(key: str, row: dict[str, Any] = row, ref: Any = ref) -> str:
                return f"{row[key] / ref[key]:.2f}" if ref else "-"

            lines.append(f"| {mode} | {row['n']} | {row['turns']} | {row['turns_per_s']:.2f} | "
                         f"{row['p50']:.2f} | {row['p95']:.2f} | {ratio('turns_per_s')} | "
                         f"{ratio('p50')} | {ratio('p95')} | {row['errors']} |")  # fmt: skip
    lines += ["", "Per idle thread, from the growth between the warm-up and the end of the run "
              "(checkpoint storage: SQLite file and WAL, or PostgreSQL's checkpoint tables with "
              "their indexes; resident memory of the graph's process: the benchmark's own for "
              "local, the server's otherwise):", "",
              "| mode | threads | stored per thread | resident memory per thread | graph process "
              "resident | Ray replicas resident |", "|---|---|---|---|---|---|"]  # fmt: skip
    for mode, result in results.items():
        replicas = result["replicas_rss"]
        lines.append(f"| {mode} | {result['threads']} | {result['stored_per_thread'] / 1024:.1f} KiB"
                     f" | {result['rss_per_thread'] / 1024:.0f} KiB | "
                     f"{result['rss'] / 2**20:.0f} MiB | "
                     f"{f'{replicas / 2**20:.0f} MiB' if replicas else '-'} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--turns", type=int, default=2, choices=[1, 2])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    started = time.perf_counter()
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="vitron-bench-scale-") as tmp:
        workdir = Path(tmp)
        if "local" in args.modes:
            with local_mode(workdir) as mode:
                results["local"] = measure("local", mode, args.n, args.turns)
        if {"server+pg", "server+pg+ray"} & set(args.modes):
            with postgres_cluster() as url:
                if "server+pg" in args.modes:
                    with server_mode(workdir, url, None, "tiny") as mode:
                        results["server+pg"] = measure("server+pg", mode, args.n, args.turns)
                if "server+pg+ray" in args.modes:
                    with ray_cluster(workdir) as (address, profile), \
                            server_mode(workdir, url, address, profile) as mode:  # fmt: skip
                        results["server+pg+ray"] = measure(
                            "server+pg+ray", mode, args.n, args.turns
                        )
    table = report(results, args.n, args.turns, time.perf_counter() - started)
    print(table)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
