"""Every third-party module the project imports comes from a declared dependency.

A module that only arrives through another package's requirements (scipy through scikit-image,
say) disappears the day that package drops it; this test names it first. The package code is held
to the main dependencies, tests and benchmarks to the main and ``dev`` ones. An import guarded by
``try: … except ImportError`` is an optional extra and is not required.
"""

from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

from tests.packaging.layout import PYPROJECT, ROOT, python_files

FIRST_PARTY = {"vitron", "tests"}
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(extras: set[str]) -> set[str]:
    """Distribution names pyproject.toml requires: the main list plus the given extras.

    Read from pyproject.toml itself, not installed metadata, which can be stale (an old
    ``*.egg-info`` in the repository root wins on ``sys.path``).
    """
    project = PYPROJECT["project"]
    lines = list(project["dependencies"])
    for extra in extras:
        lines += project["optional-dependencies"][extra]
    return {canonical(_NAME.match(line).group(1)) for line in lines}


def _optional(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """True when ``node`` sits in a ``try`` whose handlers catch ImportError."""
    while node in parents:
        parent = parents[node]
        if isinstance(parent, ast.Try) and node in parent.body:
            for handler in parent.handlers:
                caught = ast.unparse(handler.type) if handler.type else "BaseException"
                if "ImportError" in caught or "ModuleNotFoundError" in caught:
                    return True
        node = parent
    return False


def third_party_imports(path: Path) -> set[str]:
    """Top-level names of the absolute, non-optional imports in one file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        else:
            continue
        if not _optional(node, parents):
            names.update(m.split(".")[0] for m in modules)
    return {n for n in names if n not in sys.stdlib_module_names and n not in FIRST_PARTY}


def undeclared(files: list[Path], allowed: set[str]) -> dict[str, str]:
    """``{module: where}`` for imports no allowed distribution provides."""
    providers = metadata.packages_distributions()
    problems = {}
    for path in files:
        for module in sorted(third_party_imports(path)):
            dists = {canonical(d) for d in providers.get(module, [])}
            if not dists & allowed:
                source = ", ".join(sorted(dists)) or "no installed distribution"
                where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
                problems.setdefault(module, f"{where} (from {source})")
    return problems


def test_package_code_imports_only_main_dependencies():
    package = [f for f in python_files() if f.parts[len(ROOT.parts)] not in ("tests", "benchmarks")]
    assert len(package) > 50
    assert undeclared(package, declared(set())) == {}


def test_tests_and_benchmarks_import_only_declared_dependencies():
    others = [f for f in python_files() if f.parts[len(ROOT.parts)] in ("tests", "benchmarks")]
    assert undeclared(others, declared({"dev"})) == {}


def test_the_check_names_an_undeclared_import(tmp_path):
    """The guard itself: scipy is imported by the tools, so without it declared it must be named."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import scipy.ndimage\ntry:\n    import tensorboard\nexcept ImportError:\n    pass\n"
    )
    problems = undeclared([probe], declared(set()) - {"scipy"})
    assert set(problems) == {"scipy"}
