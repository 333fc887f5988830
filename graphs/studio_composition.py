"""The composition examples served beside the Vitron graph by ``langgraph dev`` / Studio.

- ``report``: a workflow that runs the Vitron graph as a subgraph node, then has a writer model
  summarise (see :func:`vitron.graphs.composition.report_graph`);
- ``agent``: ``create_agent`` over another chat model with Vitron's tools
  (:func:`vitron.graphs.composition.agent_with_vitron_tools`).

Models: Vitron's planner as in :mod:`vitron.graphs.studio` (``VITRON_PLANNER`` or the profile's
Vitron LLM); the report's writer from ``VITRON_REPORT_MODEL`` and the agent's model from
``VITRON_AGENT_MODEL`` (each ``package.module:attribute``), else the same default planner.
Compiled without a checkpointer: the server brings its own.
"""

from __future__ import annotations

import os

from langchain_core.language_models import BaseChatModel

from vitron.graphs.composition import agent_with_vitron_tools, report_graph
from vitron.graphs.planner import default_planner, planner_from_spec


def model_from_env(variable: str) -> BaseChatModel:
    """The chat model ``variable`` names, else the default planner."""
    spec = os.environ.get(variable)
    return planner_from_spec(spec) if spec else default_planner()


report = report_graph(default_planner(), model_from_env("VITRON_REPORT_MODEL"))
agent = agent_with_vitron_tools(model_from_env("VITRON_AGENT_MODEL"))
