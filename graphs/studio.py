"""The compiled graph served by ``langgraph dev`` / LangGraph Studio and the Agent Server.

Compiled without a checkpointer: the server brings its own persistence. The planner comes from
``VITRON_PLANNER`` or the Vitron LLM of the run's profile (``VITRON_PROFILE``, else ``nano``; see
:mod:`vitron.graphs.planner`); its weights load on the first message, not here.
"""

from vitron.graphs.graph import build_graph
from vitron.graphs.planner import default_planner

graph = build_graph(default_planner())
