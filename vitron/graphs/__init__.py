"""The Vitron LangGraph graph: state, run context, nodes, routing and builders."""

from vitron.graphs.context import Context
from vitron.graphs.graph import build_graph, graph_builder
from vitron.graphs.messages import user_message
from vitron.graphs.state import InputState, State

__all__ = ["Context", "InputState", "State", "build_graph", "graph_builder", "user_message"]
