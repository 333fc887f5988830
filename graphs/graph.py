"""The Vitron graph: ``ingest → vitron_llm → (tool nodes, in parallel) → vitron_llm … → END``.

``graph_builder`` returns the uncompiled ``StateGraph`` (for tests and composition) and
``build_graph`` compiles it with an optional checkpointer. The compiled ``graph`` that
``langgraph.json`` serves lives in :mod:`vitron.graphs.studio`, so importing this module never
constructs a planner.
"""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool
from langgraph.graph import END, START, StateGraph
from langgraph.types import Checkpointer

from vitron.graphs.context import Context
from vitron.graphs.ingest import VitronGraph, as_vitron_graph, ingest
from vitron.graphs.nodes import invalid_call, make_llm_node, make_tool_node
from vitron.graphs.routing import INVALID_CALL, make_router
from vitron.graphs.state import InputState, State, ToolCallInput
from vitron.tools.backend import build_tools

RESERVED_NODES = ("ingest", "vitron_llm", INVALID_CALL)


def graph_builder(model: BaseChatModel, tools: Sequence[BaseTool] | None = None) -> StateGraph:
    """The uncompiled graph with ``model`` as planner and one node per tool (default: all)."""
    tools = list(build_tools() if tools is None else tools)
    names = [t.name for t in tools]
    clashes = sorted({n for n in names if n in RESERVED_NODES or names.count(n) > 1})
    if clashes:
        raise ValueError(f"tool names must be unique and not {RESERVED_NODES}: {clashes}")

    builder = StateGraph(State, context_schema=Context, input_schema=InputState)
    builder.add_node("ingest", ingest)
    builder.add_node("vitron_llm", make_llm_node(model, tools))
    builder.add_node(INVALID_CALL, invalid_call, input_schema=ToolCallInput)
    for tool in tools:
        builder.add_node(tool.name, make_tool_node(tool), input_schema=ToolCallInput)
        builder.add_edge(tool.name, "vitron_llm")
    builder.add_edge(START, "ingest")
    builder.add_edge("ingest", "vitron_llm")
    builder.add_conditional_edges("vitron_llm", make_router(names), [*names, INVALID_CALL, END])
    builder.add_edge(INVALID_CALL, "vitron_llm")
    return builder


def build_graph(
    model: BaseChatModel,
    tools: Sequence[BaseTool] | None = None,
    checkpointer: Checkpointer | None = None,
) -> VitronGraph:
    """The compiled Vitron graph; pass a checkpointer (e.g. SQLite) for multi-turn persistence.

    It is a :class:`~vitron.graphs.ingest.VitronGraph`: inline media of the input are stored in the
    workspace before the first checkpoint, so the history never holds their bytes."""
    compiled = graph_builder(model, tools).compile(checkpointer=checkpointer, name="vitron")
    return as_vitron_graph(compiled)
