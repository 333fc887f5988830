"""Vitron inside other agents: as a subgraph node of a larger workflow, and as tools of any
tool-calling chat model.

**Subgraph** — :func:`report_graph` is a two-step workflow: a ``vitron`` node hands the request to
the whole Vitron graph (which segments and describes), and a ``write_report`` node has a writer
model turn what Vitron found into a short report. The Vitron graph runs *inside* the ``vitron``
node, on the parent's thread and checkpointer, so handles resolve in the same workspace and an
approval pause inside Vitron pauses the whole workflow. State mapping (parent → Vitron → parent):

====================  =========================================================================
parent ``ReportState``  Vitron ``State``
====================  =========================================================================
``messages[-1]``        the user's request, sent as ``messages=[HumanMessage(BRIEF + request)]``
``media``               passed as ``media`` (the handles the request may use), merged back after
``findings``  ←         the tool results (``ToolMessage`` texts) and Vitron's final answer
``messages``  ←         the report, one ``AIMessage`` (Vitron's own messages stay in its run)
``report``    ←         the report text
====================  =========================================================================

**Tools of another model** — :func:`agent_with_vitron_tools` builds a
``langchain.agents.create_agent`` agent whose tools are Vitron's backends. The tools find media
through the run's thread (``configurable.thread_id``) in the workspace of the run's ``Context``, so
handles work as in the Vitron graph; inline images and videos in the input are stored as handles
before the first checkpoint, as the Vitron graph does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.runtime import Runtime
from langgraph.types import Checkpointer
from typing_extensions import TypedDict

from vitron.graphs.context import Context
from vitron.graphs.graph import build_graph
from vitron.graphs.ingest import VitronGraph, as_vitron_graph
from vitron.graphs.state import MediaRegistry, merge_media
from vitron.tools.backend import build_tools, serving

BRIEF = (
    "Segment the objects this request is about in the media named below and describe what you "
    "find (what each is, where, how large). Request: "
)
REPORT_PROMPT = (
    "You write short factual reports. Summarise the findings below for the person who asked, "
    "naming the handles of any masks or images they can open."
)
AGENT_PROMPT = (
    "You can see and change pictures with the Vitron tools. Media are named by handles "
    "(img_…, vid_…, mask_…); pass them to the tools, and name the handles of results in answers."
)


class ReportState(TypedDict, total=False):
    """The report workflow's state (see the module doc for its mapping onto Vitron's)."""

    messages: Annotated[list[AnyMessage], add_messages]
    media: Annotated[MediaRegistry, merge_media]
    findings: str
    report: str


def report_graph(
    planner: BaseChatModel,
    writer: BaseChatModel,
    tools: Sequence[BaseTool] | None = None,
    checkpointer: Checkpointer | None = None,
) -> VitronGraph:
    """``START → vitron (the Vitron graph as a subgraph) → write_report → END``."""
    vitron = build_graph(planner, tools)  # no checkpointer of its own: it uses the parent's

    def ask_vitron(state: ReportState, config: RunnableConfig, runtime: Runtime[Context]) -> dict:
        request = _latest_request(state.get("messages") or [])
        media = state.get("media") or {}
        listing = "".join(f"\n- {h} ({info.get('kind', 'media')})" for h, info in media.items())
        inputs = {"messages": [HumanMessage(content=BRIEF + request + listing)], "media": media}
        result = vitron.invoke(inputs, config, context=runtime.context)
        return {"findings": findings_of(result.get("messages") or []), "media": result.get("media")}

    def write_report(state: ReportState) -> dict:
        prompt = [SystemMessage(content=REPORT_PROMPT), HumanMessage(content=state["findings"])]
        report = writer.invoke(prompt).text
        return {"report": report, "messages": [AIMessage(content=report, name="report")]}

    builder = StateGraph(ReportState, context_schema=Context)
    builder.add_node("vitron", ask_vitron)
    builder.add_node("write_report", write_report)
    builder.add_edge(START, "vitron")
    builder.add_edge("vitron", "write_report")
    builder.add_edge("write_report", END)
    return as_vitron_graph(builder.compile(checkpointer=checkpointer, name="vitron_report"))


def _latest_request(messages: Sequence[AnyMessage]) -> str:
    humans = [m for m in messages if isinstance(m, HumanMessage)]
    if not humans:
        raise ValueError("the report workflow needs a user message saying what to report on")
    return humans[-1].text


def findings_of(messages: Sequence[AnyMessage]) -> str:
    """What Vitron found in its run: each tool result since the brief, then its answer."""
    start = max((i for i, m in enumerate(messages) if isinstance(m, HumanMessage)), default=-1)
    lines = []
    for message in messages[start + 1 :]:
        if isinstance(message, ToolMessage):
            mark = "failed" if message.status == "error" else "result"
            lines.append(f"{message.name} {mark}: {message.text}")
        elif isinstance(message, AIMessage) and message.text and not message.tool_calls:
            lines.append(f"Vitron: {message.text}")
    return "\n".join(lines) or "Vitron found nothing."


def agent_with_vitron_tools(
    model: BaseChatModel,
    tools: Sequence[BaseTool] | None = None,
    checkpointer: Checkpointer | None = None,
    system_prompt: str = AGENT_PROMPT,
    name: str = "vitron_agent",
) -> VitronGraph:
    """A ``create_agent`` agent over ``model`` with Vitron's tools (default: every backend).

    Runs take Vitron's :class:`~vitron.graphs.context.Context` (profile, workspace, device), which
    the tools use for their models and media."""
    from langchain.agents import create_agent

    agent = create_agent(
        model,
        list(build_tools() if tools is None else tools),
        system_prompt=system_prompt,
        middleware=[_vitron_services()],
        context_schema=Context,
        checkpointer=checkpointer,
        name=name,
    )
    return as_vitron_graph(agent)


def _vitron_services() -> Any:
    """Middleware giving each tool call the services of the run's Context (as the Vitron graph's
    tool nodes do), so the run's profile and workspace decide, not the environment."""
    from langchain.agents.middleware import AgentMiddleware

    class VitronServices(AgentMiddleware):
        def wrap_tool_call(self, request: Any, handler: Callable[[Any], Any]) -> Any:
            context = getattr(request.runtime, "context", None) or Context()
            with serving(context.services(), context.seed):
                return handler(request)

    return VitronServices()
