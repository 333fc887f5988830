"""PostgreSQL checkpointers (``langgraph-checkpoint-postgres``) for threads shared by processes.

Only checkpoints live in the database: a few KB per turn, since state carries media *handles*. The
media stay in the content-addressed workspace, which every process serving the same threads must
mount at the same path (a shared filesystem: NFS, EFS, a CSI volume).

Two entry points: :func:`postgres_checkpointer` (synchronous, for the CLI, sessions and scripts)
and :func:`server_checkpointer` (asynchronous, for the LangGraph Agent Server / ``langgraph dev``,
named by ``checkpointer.path`` in ``deploy/langgraph.postgres.json``).
"""

from __future__ import annotations

import asyncio
import atexit
import os
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

try:  # the `scale` extra
    import psycopg
    from langgraph.checkpoint.postgres import PostgresSaver
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from psycopg.rows import dict_row
    from psycopg_pool import AsyncConnectionPool, ConnectionPool
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "a postgresql:// checkpointer needs the scale extra: pip install 'vitron-langgraph[scale]' "
        f"({exc})"
    ) from exc

from vitron.graphs.persistence import CHECKPOINTER_ENV, describe, is_postgres

POOL_SIZE_ENV = "VITRON_POSTGRES_POOL"
"""Connections per process (default 16): a graph's parallel tool calls and concurrent runs each hold
one while they write a checkpoint."""

CONNECTION_KWARGS: dict[str, Any] = {
    "autocommit": True,  # setup() creates indexes concurrently, outside a transaction
    "prepare_threshold": 0,  # safe behind PgBouncer in transaction mode
    "row_factory": dict_row,  # what the savers expect
}


SETUP_LOCK = 0x76697472  # "vitr": the advisory lock around table creation and migration
"""Key of the advisory lock held while the tables are set up: ``PostgresSaver.setup()`` run by two
processes at once races on its migrations table (a duplicate-key error in the loser). Waiters poll
with ``pg_try_advisory_lock``: a blocked ``pg_advisory_lock`` is an open transaction, which the
holder's ``CREATE INDEX CONCURRENTLY`` would wait for — a deadlock."""
SETUP_TIMEOUT = 120.0


TRY_LOCK = "SELECT pg_try_advisory_lock(%s) AS ok"


def _wait_for_lock(connection: Any) -> None:
    deadline = time.monotonic() + SETUP_TIMEOUT
    while not connection.execute(TRY_LOCK, (SETUP_LOCK,)).fetchone()["ok"]:
        if time.monotonic() > deadline:
            raise TimeoutError("another process held the checkpointer set-up lock too long")
        time.sleep(0.2)


async def _try_lock_async(connection: Any) -> bool:
    cursor = await connection.execute(TRY_LOCK, (SETUP_LOCK,))
    row = await cursor.fetchone()
    return bool(row["ok"])


def _pool_size() -> int:
    return int(os.environ.get(POOL_SIZE_ENV, "16"))


_savers: dict[str, PostgresSaver] = {}
_savers_lock = threading.Lock()


def postgres_checkpointer(url: str, max_connections: int | None = None) -> PostgresSaver:
    """A checkpointer on the database at ``url`` over a connection pool (safe across threads),
    with its tables created or migrated; one per URL per process (sessions share its pool), the
    pool closed when the process exits."""
    with _savers_lock:
        if url not in _savers:
            _savers[url] = _open(url, max_connections)
        return _savers[url]


def _open(url: str, max_connections: int | None) -> PostgresSaver:
    if not is_postgres(url):
        raise ValueError(f"not a PostgreSQL URL: {describe(url)!r} (write postgresql://…)")
    try:  # one plain connection first: a wrong URL fails at once with the server's reason
        psycopg.connect(url, connect_timeout=10).close()
    except psycopg.Error as exc:
        raise ConnectionError(f"cannot reach the checkpointer at {describe(url)}: {exc}") from exc
    pool = ConnectionPool(
        url,
        min_size=1,
        max_size=max_connections or _pool_size(),
        kwargs=CONNECTION_KWARGS,
        open=False,
    )
    pool.open(wait=True, timeout=30)
    atexit.register(pool.close)
    with pool.connection() as connection:  # one process at a time creates or migrates the tables
        _wait_for_lock(connection)
        try:
            PostgresSaver(connection).setup()  # type: ignore[arg-type]
        finally:
            connection.execute("SELECT pg_advisory_unlock(%s)", (SETUP_LOCK,))
    return PostgresSaver(pool)  # type: ignore[arg-type]


@asynccontextmanager
async def server_checkpointer() -> AsyncIterator[AsyncPostgresSaver]:
    """The Agent Server's checkpointer: PostgreSQL at ``VITRON_CHECKPOINTER`` (or ``DATABASE_URI``),
    open for the server's lifetime."""
    url = os.environ.get(CHECKPOINTER_ENV) or os.environ.get("DATABASE_URI") or ""
    if not is_postgres(url):
        raise RuntimeError(
            f"set {CHECKPOINTER_ENV} to a postgresql:// URL to serve threads from PostgreSQL "
            f"(got {describe(url)!r})"
        )
    async with AsyncConnectionPool(
        url, min_size=1, max_size=_pool_size(), kwargs=CONNECTION_KWARGS, open=False
    ) as pool:
        async with pool.connection() as connection:
            deadline = time.monotonic() + SETUP_TIMEOUT
            while not await _try_lock_async(connection):
                if time.monotonic() > deadline:
                    raise TimeoutError("another process held the checkpointer set-up lock too long")
                await asyncio.sleep(0.2)
            try:
                await AsyncPostgresSaver(connection).setup()  # type: ignore[arg-type]
            finally:
                await connection.execute("SELECT pg_advisory_unlock(%s)", (SETUP_LOCK,))
        yield AsyncPostgresSaver(pool)  # type: ignore[arg-type]
