"""The conversations kept in the workspace's SQLite checkpointer, newest first."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from vitron.graphs.persistence import CHECKPOINT_FILE

THREAD_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def valid_thread_id(value: str | None) -> str | None:
    """``value`` when it can name a thread (it also names a workspace folder), else ``None``."""
    return value if value and THREAD_ID.match(value) else None


def list_threads(workspace: str | Path, limit: int = 30) -> list[str]:
    """Thread ids with a saved conversation, the most recently active first."""
    path = Path(workspace).expanduser() / CHECKPOINT_FILE
    if not path.is_file():
        return []
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = connection.execute(
            "SELECT thread_id, MAX(checkpoint_id) AS latest FROM checkpoints "
            "WHERE checkpoint_ns = '' GROUP BY thread_id ORDER BY latest DESC LIMIT ?",
            (limit,),
        ).fetchall()
    except sqlite3.OperationalError:  # no table yet
        return []
    finally:
        connection.close()
    return [row[0] for row in rows if valid_thread_id(row[0])]
