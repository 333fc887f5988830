"""A throw-away PostgreSQL cluster for tests and the scale benchmark.

``initdb`` in a fresh temporary folder, ``postgres`` on a free 127.0.0.1 port with its unix socket
in that folder, stopped and deleted on exit. PostgreSQL refuses to run as root, so under root the
server runs as the ``postgres`` user (Debian's package creates it), else ``nobody``. The binaries come
from ``VITRON_PG_BIN``, else the newest ``/usr/lib/postgresql/*/bin`` (Debian), else ``PATH``.
``.ci/run`` installs Debian's ``postgresql`` package when it is missing.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.graphs.dev_server import free_port

USER = "vitron"
"""The cluster's superuser (trust authentication: the cluster only listens on loopback)."""


class PostgresUnavailable(RuntimeError):
    """PostgreSQL cannot start here; the message says why (tests skip with it)."""


def bin_dir() -> Path:
    """The folder holding ``initdb`` and ``pg_ctl``."""
    if os.environ.get("VITRON_PG_BIN"):
        return Path(os.environ["VITRON_PG_BIN"])
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if debian:
        return debian[-1].parent
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise PostgresUnavailable(
        "PostgreSQL's initdb is not installed (apt-get install postgresql, or set VITRON_PG_BIN)"
    )


def _run_as() -> list[str]:
    """The prefix that runs a command as an unprivileged user when this process is root."""
    if os.geteuid() != 0:
        return []
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            if shutil.which("setpriv") is None:
                raise PostgresUnavailable("running as root and setpriv is missing (util-linux)")
            return ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}",
                    "--clear-groups", "--"]  # fmt: skip
    raise PostgresUnavailable("running as root and there is no postgres or nobody user to run as")


def _owner() -> tuple[int, int] | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return entry.pw_uid, entry.pw_gid
    return None


@contextlib.contextmanager
def postgres_cluster(max_connections: int = 200) -> Iterator[str]:
    """Start a fresh cluster; yields its ``postgresql://`` URL (database ``postgres``)."""
    bins = bin_dir()
    prefix = _run_as()
    folder = Path(tempfile.mkdtemp(prefix="vitron-pg-"))
    owner = _owner()
    if owner is not None:
        os.chown(folder, *owner)
    data, log = folder / "data", folder / "server.log"
    port = free_port()

    def run(*args: str, timeout: float = 120) -> None:
        result = subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=timeout,
                                cwd=folder)  # fmt: skip
        if result.returncode != 0:
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise PostgresUnavailable(
                f"{Path(args[0]).name} failed ({result.returncode}): "
                f"{(result.stderr or result.stdout)[-2000:]}{tail}"
            )

    started = False
    try:
        run(str(bins / "initdb"), "-D", str(data), "-U", USER, "-A", "trust", "-E", "UTF8",
            "--no-locale", "--no-sync")  # fmt: skip
        options = (f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off "
                   f"-c synchronous_commit=off -c max_connections={max_connections} "
                   "-c shared_buffers=32MB")  # fmt: skip
        run(str(bins / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60",
            "-o", options, "start")  # fmt: skip
        started = True
        yield f"postgresql://{USER}@127.0.0.1:{port}/postgres"
    finally:
        if started:
            with contextlib.suppress(PostgresUnavailable, subprocess.TimeoutExpired):
                run(str(bins / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop", timeout=60)
        shutil.rmtree(folder, ignore_errors=True)
