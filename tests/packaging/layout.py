"""The source tree as pyproject.toml maps it: folder → ``vitron.<folder>`` package."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PACKAGE_DIRS: dict[str, str] = PYPROJECT["tool"]["setuptools"]["package-dir"]
"""``{"vitron.agent": "agent", …}``: each mapped import name and its folder."""


def source_files() -> list[tuple[Path, str]]:
    """Every file under the mapped folders, with the path it must have inside a wheel.

    Caches (``__pycache__``, ``*.pyc``) are skipped; everything else a folder holds — modules,
    prompt cards, profiles, shipped weights — belongs in the installed package.
    """
    found = []
    for package, folder in PACKAGE_DIRS.items():
        base = ROOT / folder
        for path in sorted(base.rglob("*")):
            if not path.is_file() or "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            inside = path.relative_to(base).as_posix()
            found.append((path, f"{package.replace('.', '/')}/{inside}"))
    return found


def python_files() -> list[Path]:
    """The project's own Python files: the mapped folders, tests and benchmarks."""
    files = [p for p, _ in source_files() if p.suffix == ".py"]
    for extra in ("tests", "benchmarks"):
        files += sorted((ROOT / extra).rglob("*.py"))
    return [f for f in files if "__pycache__" not in f.parts]
