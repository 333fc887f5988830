"""The backend layer's shape: backends call the shared steps (vitron.tools.steps, signals…), never
one another, so changing one backend cannot break another through its internals."""

from __future__ import annotations

import ast
from pathlib import Path

import vitron.tools.backends as backends_package

BACKENDS = Path(backends_package.__file__).parent
PREFIX = "vitron.tools.backends"


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports (absolute names; relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = PREFIX.split(".")[: len(PREFIX.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            names.add(base)
            names |= {f"{base}.{alias.name}" for alias in node.names}
    return names


def test_no_backend_imports_another_backend():
    modules = sorted(p for p in BACKENDS.glob("*.py") if p.name != "__init__.py")
    assert len(modules) >= 9
    own = {f"{PREFIX}.{p.stem}" for p in modules}
    crossing = {
        path.stem: sorted(own & imported_modules(path) - {f"{PREFIX}.{path.stem}"})
        for path in modules
    }
    assert {k: v for k, v in crossing.items() if v} == {}


def test_the_walk_sees_a_crossing_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from vitron.tools.backends.ground import GroundArgs\nfrom .segment_image import x\n"
    )
    found = imported_modules(sample)
    assert f"{PREFIX}.ground" in found and f"{PREFIX}.segment_image" in found
