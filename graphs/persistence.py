"""The embedded default checkpointer: SQLite in the workspace, so conversations survive restarts."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from langgraph.checkpoint.sqlite import SqliteSaver

CHECKPOINT_FILE = "conversations.sqlite"


def sqlite_checkpointer(path: str | Path) -> SqliteSaver:
    """A SQLite checkpointer at ``path`` (a file, or a directory that gets ``conversations.sqlite``).

    The connection is shared across the graph's worker threads; SqliteSaver serialises access.
    """
    path = Path(path).expanduser()
    if path.is_dir() or not path.suffix:
        path.mkdir(parents=True, exist_ok=True)
        path = path / CHECKPOINT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(str(path), check_same_thread=False)
    saver = SqliteSaver(connection)
    saver.setup()
    return saver
