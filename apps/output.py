"""Output folders checked before the work that fills them, so nothing is computed and then lost."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def check_output_folder(path: str | Path, what: str) -> Path:
    """``path`` as a folder ``what`` can be written to, or an ``OSError`` that says why not.

    Nothing is created: a folder that does not exist yet passes when its nearest existing parent
    is a writable folder (the writer makes it later). An evaluation that ran for an hour used to
    fail only when it wrote its report to a folder it could not make.
    """
    path = Path(path).expanduser()
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is None or not existing.is_dir():
        blocker = existing if existing is not None else path
        raise NotADirectoryError(f"cannot write {what} to {path}: {blocker} is not a folder")
    try:  # a real try: permissions alone miss read-only mounts, and root passes every check
        os.rmdir(tempfile.mkdtemp(prefix=".vitron-probe-", dir=existing))
    except OSError as exc:
        raise PermissionError(
            f"cannot write {what} to {path}: making a folder in {existing} failed "
            f"({exc.strerror or exc})"
        ) from exc
    return path


__all__ = ["check_output_folder"]
