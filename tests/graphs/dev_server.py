"""Start a server process for a test (``langgraph dev``, ``vitron web``) and stop it afterwards."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serving(
    command: Sequence[str], ready_url: str, log_path: Path, env: dict[str, str], timeout: float
) -> Iterator[None]:
    """Run ``command`` from the repository root, output to ``log_path``, until ``ready_url``
    answers 200; stop it on exit. A server that exits or stays silent past ``timeout`` raises
    with the end of its log."""
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            while True:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{command[0]} did not start: " + log_path.read_text()[-3000:]
                    )
                try:
                    with urllib.request.urlopen(ready_url, timeout=2) as response:
                        if response.status == 200:
                            break
                except OSError:
                    time.sleep(0.5)
            yield
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


@contextlib.contextmanager
def dev_server(log_path: Path, env: dict[str, str], timeout: float = 240) -> Iterator[str]:
    """Serve langgraph.json from the repository root; yields the base URL once ``/ok`` answers."""
    port = free_port()
    env = {
        **os.environ,
        "LANGSMITH_TRACING": "false",
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
        "PYTHONPATH": str(ROOT),
        **env,
    }
    command = [str(Path(sys.executable).with_name("langgraph")), "dev", "--port", str(port),
               "--host", "127.0.0.1", "--no-browser", "--no-reload", "--config", str(ROOT / "langgraph.json")]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    with serving(command, f"{url}/ok", log_path, env, timeout):
        yield url
