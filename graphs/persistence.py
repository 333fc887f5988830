"""Which checkpointer keeps the conversations: SQLite in the workspace (the embedded default), or
PostgreSQL when many processes or machines serve the same threads.

A checkpointer is named by one string, from ``--checkpointer`` or ``VITRON_CHECKPOINTER``:
``postgresql://…`` (or ``postgres://…``) selects :mod:`vitron.graphs.persistence_postgres`; anything
else is a SQLite file or directory. Unset, it is SQLite in the workspace.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite import SqliteSaver

from vitron.tools.errors import VitronToolError

CHECKPOINT_FILE = "conversations.sqlite"
CHECKPOINTER_ENV = "VITRON_CHECKPOINTER"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def sqlite_checkpointer(path: str | Path) -> SqliteSaver:
    """A SQLite checkpointer at ``path`` (a file, or a directory that gets ``conversations.sqlite``).

    The connection is shared across the graph's worker threads; SqliteSaver serialises access.
    """
    path = Path(path).expanduser()
    try:
        if path.is_dir() or not path.suffix:
            if path.exists() and not path.is_dir():
                raise NotADirectoryError("it is a file, not a folder")
            path.mkdir(parents=True, exist_ok=True)
            path = path / CHECKPOINT_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(str(path), check_same_thread=False)
        saver = SqliteSaver(connection)
        saver.setup()
    except (OSError, sqlite3.Error) as exc:  # a file where a folder belongs, no rights, not SQLite
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise VitronToolError(
            f"cannot keep conversations in {path}: {reason} (give --workspace or --checkpointer "
            "a folder, or a .sqlite file)"
        ) from exc
    return saver


def is_postgres(spec: str | Path | None) -> bool:
    """Whether ``spec`` names a PostgreSQL database (a ``postgresql://`` connection URL)."""
    return isinstance(spec, str) and spec.startswith(POSTGRES_SCHEMES)


def checkpointer_spec(workspace: str | Path, explicit: str | None = None) -> str:
    """The checkpointer a process uses: ``explicit``, else ``VITRON_CHECKPOINTER``, else SQLite in
    ``workspace``."""
    return explicit or os.environ.get(CHECKPOINTER_ENV) or str(workspace)


def checkpointer_from(spec: str | Path) -> BaseCheckpointSaver:
    """The checkpointer ``spec`` names: PostgreSQL for a ``postgresql://`` URL, else SQLite."""
    if is_postgres(spec):
        from vitron.graphs.persistence_postgres import postgres_checkpointer

        return postgres_checkpointer(str(spec))
    return sqlite_checkpointer(spec)


def describe(spec: str | Path) -> str:
    """``spec`` fit to print: a PostgreSQL URL without its password."""
    if not is_postgres(spec):
        return str(spec)
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(str(spec))
    if parts.password is None:
        return str(spec)
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
