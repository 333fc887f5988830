"""The Vitron LangGraph graph: state, run context, nodes, routing and builders.

Names are imported on first access so that light users (``vitron --help``, reading a ``Context``)
do not pay for torch and the model libraries.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Context": "vitron.graphs.context",
    "InputState": "vitron.graphs.state",
    "State": "vitron.graphs.state",
    "build_graph": "vitron.graphs.graph",
    "graph_builder": "vitron.graphs.graph",
    "user_message": "vitron.agent.messages",
}

if TYPE_CHECKING:
    from vitron.agent.messages import user_message
    from vitron.graphs.context import Context
    from vitron.graphs.graph import build_graph, graph_builder
    from vitron.graphs.state import InputState, State

__all__ = ["Context", "InputState", "State", "build_graph", "graph_builder", "user_message"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
