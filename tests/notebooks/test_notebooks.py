"""The notebooks in notebooks/: committed without outputs, and each runs top to bottom.

Each notebook runs in a fresh kernel of the running interpreter (its kernelspec is written to a
temporary folder, so no Jupyter installation or user kernel is needed or used), with the working
directory in a temporary folder.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))
KERNEL = "vitron-tests"


def test_there_is_a_notebook_and_none_is_committed_with_outputs():
    assert NOTEBOOKS, "notebooks/ holds no notebook"
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
        code = [cell for cell in notebook.cells if cell.cell_type == "code"]
        dirty = [i for i, c in enumerate(code) if c.outputs or c.execution_count is not None]
        assert not dirty, (
            f"{path.name}: code cells {dirty} have outputs or execution counts; clear them "
            "before committing (e.g. jupyter nbconvert --clear-output --inplace)"
        )


@pytest.fixture(scope="module")
def kernel_of_this_interpreter(tmp_path_factory):
    """A kernelspec named ``KERNEL`` that runs ``sys.executable``, on ``JUPYTER_PATH``."""
    from ipykernel.kernelspec import install

    prefix = tmp_path_factory.mktemp("jupyter")
    install(prefix=str(prefix), kernel_name=KERNEL, display_name="vitron tests")
    spec = json.loads(
        (prefix / "share" / "jupyter" / "kernels" / KERNEL / "kernel.json").read_text()
    )
    assert spec["argv"][0] == sys.executable
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))
        yield KERNEL


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path, kernel_of_this_interpreter, tmp_path):
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        kernel_name=kernel_of_this_interpreter,
        timeout=300,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError naming the cell if any cell fails
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code)
    errors = [o for cell in code for o in cell.outputs if o.output_type == "error"]
    assert not errors
    images = [o for cell in code for o in cell.outputs if "image/png" in o.get("data", {})]
    assert images, f"{path.name} shows no image inline"
