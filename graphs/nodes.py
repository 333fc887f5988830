"""The graph's nodes: ``vitron_llm`` (the planner), one node per tool, and ``invalid_call`` (tool
calls that cannot run, answered with an error). ``ingest``, the first node, is in
:mod:`vitron.graphs.ingest`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.runtime import Runtime

from vitron.agent.chat_model import ChatVitron
from vitron.agent.messages import media_listing
from vitron.graphs.approval import review
from vitron.graphs.context import Context
from vitron.graphs.state import State, ToolCallInput
from vitron.prompts import load_prompt
from vitron.tools.backend import Services, resolve_thread, serving
from vitron.tools.errors import VitronToolError

logger = logging.getLogger(__name__)

MEDIA_BLOCK_TYPES = ("image", "video", "image_url")


def services_of(runtime: Runtime[Context] | None) -> Services:
    context = runtime.context if runtime is not None and runtime.context is not None else Context()
    return context.services()


def thread_of(config: RunnableConfig) -> str | None:
    """The run's thread (resolved in one place: :func:`vitron.tools.backend.resolve_thread`)."""
    return resolve_thread(config)


# --------------------------------------------------------------------------- the planner


def steps_this_turn(messages: Sequence[AnyMessage]) -> int:
    """Model steps since the latest user message (each AIMessage is one)."""
    count = 0
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            break
        count += isinstance(message, AIMessage)
    return count


def make_llm_node(model: BaseChatModel, tools: Sequence[BaseTool]) -> Callable[..., dict[str, Any]]:
    """The ``vitron_llm`` node: the planner with the tools bound once, not per call."""
    bound = bind_planner_tools(model, tools)
    system_prompt = load_prompt("system")

    def vitron_llm(
        state: State, config: RunnableConfig, runtime: Runtime[Context]
    ) -> dict[str, Any]:
        context = runtime.context or Context()
        messages = state.get("messages") or []
        if steps_this_turn(messages) >= context.step_limit:
            return {
                "messages": [
                    AIMessage(
                        content=f"I stopped after {context.step_limit} steps without finishing "
                        "(the step limit of this run). Tell me to continue, or raise step_limit.",
                        response_metadata={"stop_reason": "step_limit"},
                    )
                ]
            }
        if is_blank_request(messages):
            return {"messages": [empty_request_answer()]}
        system = SystemMessage(
            content=f"{system_prompt}\n\n{media_listing(state.get('media') or {})}"
        )
        try:
            with serving(context.services()):
                response = bound.invoke([system, *messages], config)
        except VitronToolError as exc:  # e.g. the planner's checkpoint is missing
            response = planner_failure(exc)
        except Exception as exc:  # the turn ends with the error; the thread stays usable
            logger.exception("the planner failed")
            response = planner_failure(exc)
        return {"messages": [response]}

    return vitron_llm


def empty_request_answer() -> AIMessage:
    """The answer to a user message with nothing in it (no words, nothing attached), given
    without asking the planner. The CLI and the web UI refuse one before it is sent; this covers
    input that reaches the graph another way (Studio, an agent that composes this graph), which a
    planner answers with something made up (the nano planner drew "a small yellow triangle on a
    grey background")."""
    return AIMessage(
        content="The request is empty: say what you want done.",
        response_metadata={"stop_reason": "empty_request"},
    )


def is_blank_request(messages: Sequence[AnyMessage]) -> bool:
    """Whether the turn has just begun with a user message that says and carries nothing."""
    return (
        bool(messages) and isinstance(messages[-1], HumanMessage) and not messages[-1].text.strip()
    )


def bind_planner_tools(model: BaseChatModel, tools: Sequence[BaseTool]) -> Any:
    """Bind every tool of the graph. The Vitron LLM can invoke only the modules its grammar names,
    so it binds with ``unknown_tools="ignore"``: a plug-in backend gets its node and stays callable
    by other planners instead of stopping the graph from being built."""
    if not tools:
        return model
    if isinstance(model, ChatVitron):
        return model.bind_tools(list(tools), unknown_tools="ignore")
    return model.bind_tools(list(tools))


def planner_failure(exc: Exception) -> AIMessage:
    """The turn's answer when the planner itself fails: says so, and ends the turn."""
    detail = str(exc) if isinstance(exc, VitronToolError) else f"{type(exc).__name__}: {exc}"
    return AIMessage(
        content=f"The planner failed, so this turn stopped: {detail}",
        response_metadata={"stop_reason": "planner_error"},
    )


# --------------------------------------------------------------------------- tools


def make_tool_node(tool: BaseTool) -> Callable[..., dict[str, Any]]:
    """A node running one call of ``tool``; any failure becomes an error ``ToolMessage``. Calls of
    tools the run's ``approve_before`` names wait for a person first (:mod:`vitron.graphs.approval`)."""

    def run_tool(
        payload: ToolCallInput, config: RunnableConfig, runtime: Runtime[Context]
    ) -> dict[str, Any]:
        context = runtime.context if runtime is not None and runtime.context is not None else None
        reviewed = review(payload["call"], (context or Context()).approve_before, config)
        if isinstance(reviewed, ToolMessage):  # a person rejected the call: it does not run
            return {"messages": [reviewed]}
        call = reviewed
        try:
            with serving(services_of(runtime), (context or Context()).seed):
                result = tool.invoke({**call, "type": "tool_call"}, config)
        except Exception as exc:  # a tool outside the package may raise anything
            logger.exception("tool %s raised", tool.name)
            result = error_message(call, f"{tool.name} failed: {type(exc).__name__}: {exc}")
        if not isinstance(result, ToolMessage):
            result = ToolMessage(content=str(result), tool_call_id=call["id"], name=tool.name)
        update: dict[str, Any] = {"messages": [result]}
        artifact = result.artifact
        if isinstance(artifact, dict) and isinstance(artifact.get("media"), dict):
            update["media"] = artifact["media"]
        return update

    run_tool.__name__ = tool.name
    return run_tool


def invalid_call(payload: ToolCallInput) -> dict[str, Any]:
    """Answer a call that cannot run (unknown tool, unparseable arguments) so the model can fix it."""
    return {"messages": [error_message(payload["call"], payload.get("error", "invalid tool call"))]}


def error_message(call: dict[str, Any], text: str) -> ToolMessage:
    return ToolMessage(
        content=text, tool_call_id=call.get("id") or "", name=call.get("name"), status="error"
    )
