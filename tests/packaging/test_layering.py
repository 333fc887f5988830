"""DESIGN §3's layering, checked on the source: which of the project's folders each folder's
modules import (at the top or inside a function). ``agent/`` reads the message form it shares
with the graph from ``vitron.agent.messages``, not from ``graphs/``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("agent", "tools", "graphs", "prompts", "evals", "apps")
MAY_NOT_IMPORT = {
    "agent": {"graphs", "apps"},
    "tools": {"agent", "graphs", "apps"},
    "prompts": {"agent", "tools", "graphs", "evals", "apps"},
    "graphs": {"apps", "evals"},
    "evals": {"apps"},
}
"""Folder -> the project folders its modules may not import. The training code (``agent/training``,
``tools/pretraining``) also reads the shapes world in ``evals/``: it is their data."""
OUTSIDE_TRAINING = {"agent": "training", "tools": "pretraining"}
"""Folders whose modules outside this subfolder may not import ``evals/`` either."""


def imported_folders(path: Path) -> set[str]:
    """The project folders (``vitron.<folder>``) that ``path`` imports."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
    return {name.split(".")[1] for name in names if name.startswith("vitron.") and "." in name}


@pytest.mark.parametrize("folder", sorted(MAY_NOT_IMPORT))
def test_each_folder_imports_only_what_the_design_lets_it(folder):
    wrong = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        banned = set(MAY_NOT_IMPORT[folder])
        inside = OUTSIDE_TRAINING.get(folder)
        if inside and inside not in path.relative_to(ROOT / folder).parts:
            banned.add("evals")
        found = imported_folders(path) & banned
        if found:
            wrong.append(f"{path.relative_to(ROOT)} imports {sorted(found)}")
    assert not wrong, "\n".join(wrong)


def test_the_scan_sees_imports_inside_functions(tmp_path):
    module = tmp_path / "m.py"
    module.write_text(
        "def f():\n    from vitron.graphs.state import State\n    import vitron.apps.cli\n"
    )
    assert imported_folders(module) == {"graphs", "apps"}
