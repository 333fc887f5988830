"""The built wheel holds every module, prompt and profile of the source tree, and works installed.

setuptools cannot discover packages under the ``vitron.`` prefix, so pyproject.toml lists them;
these tests catch a forgotten package or data file (which an editable install would hide) and a
root-level folder that shadows the installed package when the repository root is on ``sys.path``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.packaging.layout import ROOT, source_files


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(out),
            str(ROOT),
        ],  # fmt: skip
        check=True,
        capture_output=True,
        text=True,
    )
    (built,) = out.glob("vitron_langgraph-*.whl")
    return built


def test_wheel_holds_every_source_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = source_files()
    assert any(inside.startswith("vitron/prompts/tools/") for _, inside in expected)
    missing = [inside for _, inside in expected if inside not in names]
    assert not missing, (
        f"missing from the wheel (list the package or its data in pyproject): {missing}"
    )


def test_wheel_has_no_root_package_that_could_shadow_a_namespace(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"vitron"}, tops
    assert "vitron/__init__.py" not in names  # a namespace package: nothing at the root to shadow
    assert not (ROOT / "vitron").exists(), "a ./vitron folder shadows the installed package"


def test_installed_wheel_serves_the_studio_graph_from_the_repository_root(wheel, tmp_path):
    """The ``langgraph build`` case: the wheel installed, cwd = repository root, root on sys.path.

    The wheel goes into its own folder; ``-S`` keeps this venv's editable-install hook away, and
    the venv's site-packages supply the dependencies.
    """
    target = tmp_path / "installed"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],  # fmt: skip
        check=True,
        capture_output=True,
        text=True,
    )
    site = sysconfig.get_paths()["purelib"]
    script = (
        "import sys, vitron.graphs.studio as s, vitron.prompts as p;"
        "assert s.__file__.startswith(sys.argv[1]), s.__file__;"
        "assert p.tool_card('segment_image');"
        "print(sorted(s.graph.get_graph().nodes))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(target), site])}
    result = subprocess.run(
        [sys.executable, "-S", "-c", script, str(target)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "segment_image" in result.stdout and "vitron_llm" in result.stdout
