"""Start-up stays light: importing the Studio graph, building it, listing its tools' schemas and
importing the CLI load none of the model libraries (they load with the first model or decoder).
Each check runs in a fresh interpreter, since this test process has long imported them all."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("torch", "transformers", "diffusers", "segment_anything", "groundingdino", "av")

PROBE = """
import json, sys
{extra}
import vitron.graphs.studio as studio
from vitron.graphs import build_graph
from vitron.graphs.planner import default_planner
from vitron.tools.backend import build_tools
import vitron.apps.cli

graph = build_graph(default_planner())  # the Studio graph, built again
tools = build_tools()
schemas = {{t.name: (t.description, t.tool_call_schema.model_json_schema()) for t in tools}}
print(json.dumps({{
    "nodes": sorted(studio.graph.get_graph().nodes),
    "tools": sorted(schemas),
    "loaded": [m for m in {heavy!r} if m in sys.modules],
}}))
"""


def probe(extra: str = "") -> dict:
    code = PROBE.format(extra=extra, heavy=HEAVY)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_graph_tools_and_cli_import_no_model_library():
    found = probe()
    assert len(found["tools"]) >= 9 and "segment_image" in found["tools"]
    assert "vitron_llm" in found["nodes"]
    assert found["loaded"] == []


def test_the_probe_sees_a_model_library_imported_at_module_level():
    # what a heavy import added back at module level looks like to the probe
    found = probe(extra="import torch")
    assert found["loaded"] == ["torch"]
