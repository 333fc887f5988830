"""The conversations kept by the checkpointer — SQLite in the workspace, or the PostgreSQL database
``VITRON_CHECKPOINTER`` names — newest first."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from vitron.graphs.persistence import CHECKPOINT_FILE, checkpointer_spec, is_postgres

THREAD_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def valid_thread_id(value: str | None) -> str | None:
    """``value`` when it can name a thread (it also names a workspace folder), else ``None``."""
    return value if value and THREAD_ID.match(value) else None


LATEST = (
    "SELECT thread_id, MAX(checkpoint_id) AS latest FROM checkpoints WHERE checkpoint_ns = '' "
    "GROUP BY thread_id ORDER BY latest DESC LIMIT {}"
)


def list_threads(workspace: str | Path, limit: int = 30) -> list[str]:
    """Thread ids with a saved conversation, the most recently active first."""
    spec = checkpointer_spec(workspace)
    if is_postgres(spec):
        return _postgres_threads(spec, limit)
    path = Path(workspace).expanduser() / CHECKPOINT_FILE
    if not path.is_file():
        return []
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = connection.execute(LATEST.format("?"), (limit,)).fetchall()
    except sqlite3.OperationalError:  # no table yet
        return []
    finally:
        connection.close()
    return [row[0] for row in rows if valid_thread_id(row[0])]


def _postgres_threads(url: str, limit: int) -> list[str]:
    from vitron.graphs.persistence_postgres import postgres_checkpointer

    pool = postgres_checkpointer(url).conn  # the process's pool (its sessions use the same one)
    with pool.connection() as connection:
        rows = connection.execute(LATEST.format("%s"), (limit,)).fetchall()
    return [row["thread_id"] for row in rows if valid_thread_id(row["thread_id"])]
