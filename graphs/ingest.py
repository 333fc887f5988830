"""Getting a turn's input into shape before anything is checkpointed.

Two jobs, both done at the start of every run:

- **Inline media leave the messages.** An image or video sent as a base64 content block is stored
  in the thread's workspace and the block becomes a text naming its handle. :class:`VitronGraph`
  does this to the input *before* LangGraph sees it, so no checkpoint and no stored input write ever
  holds the bytes (a 12 MP photo would otherwise be stored three times per turn). The ``ingest``
  node does the same for input that reached the state another way (the graph used as a subgraph).
- **No tool call stays unanswered.** A process killed during a tool call leaves the planner's
  ``AIMessage`` with calls that have no ``ToolMessage``; LangGraph drops the interrupted task when
  the next message arrives. ``ingest`` answers each such call with an error ``ToolMessage`` placed
  right after the calls it answers, so planners that validate the history (OpenAI, Anthropic) keep
  working on that thread. Calls that did finish before the crash (their results were saved, the
  checkpoint after them was not) keep their results: :class:`VitronGraph` applies those saved
  results to the thread before the new input (``recover_finished_calls``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    BaseMessage,
    HumanMessage,
    RemoveMessage,
    ToolMessage,
    convert_to_messages,
)
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import merge_configs
from langgraph.graph.message import REMOVE_ALL_MESSAGES
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import StateSnapshot, StateUpdate

from vitron.graphs.context import Context
from vitron.graphs.nodes import MEDIA_BLOCK_TYPES, services_of, thread_of
from vitron.graphs.state import MediaRegistry, State
from vitron.tools.errors import VitronToolError
from vitron.tools.handles import find_handles
from vitron.tools.media import inline_bytes
from vitron.tools.workspace import Workspace

INTERRUPTED = (
    "{name} was interrupted before it returned a result (the process running it stopped, or a new "
    "message came before it ran); call it again if it is still needed"
)


# --------------------------------------------------------------------------- inline media


def has_inline_media(message: Any) -> bool:
    """Whether a message (object or dict) carries image/video content blocks."""
    content = message.content if isinstance(message, BaseMessage) else None
    if isinstance(message, dict):
        content = message.get("content")
    return isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") in MEDIA_BLOCK_TYPES for b in content
    )


def take_inline_media(
    message: BaseMessage, workspace: Workspace
) -> tuple[BaseMessage, MediaRegistry]:
    """``message`` with each inline media block stored in ``workspace`` and replaced by a text block
    naming its handle (same id), and the registry entries of what was stored. A block that cannot
    be stored becomes a text saying why; nothing raises."""
    if not has_inline_media(message):
        return message, {}
    media: MediaRegistry = {}
    blocks: list[Any] = []
    for block in message.content:
        if not (isinstance(block, dict) and block.get("type") in MEDIA_BLOCK_TYPES):
            blocks.append(block)
            continue
        gap = "\n" if blocks else ""  # message.text joins blocks without a separator
        try:
            info = workspace.import_bytes(inline_bytes(block), source="user")
        except VitronToolError as exc:
            blocks.append({"type": "text", "text": f"{gap}[attachment not usable: {exc}]"})
            continue
        media[info.handle] = info.to_state()
        blocks.append({"type": "text", "text": f"{gap}[attached {info.summary()}]"})
    return message.model_copy(update={"content": blocks}), media


def prepare_input(input: Any, config: RunnableConfig | None, context: Any) -> Any:
    """The run's input with inline media moved to the workspace (see the module doc); any other
    input (``None`` to resume, a ``Command``, input without media) is returned as it is."""
    if not isinstance(input, dict) or "messages" not in input:
        return input
    raw = input["messages"]
    items = list(raw) if isinstance(raw, list | tuple) else [raw]
    if not any(has_inline_media(m) for m in items):
        return input
    workspace = _context_of(context).services().workspace.for_thread(thread_of(config or {}))
    messages: list[Any] = []
    media: MediaRegistry = dict(input.get("media") or {})
    for item in items:
        if has_inline_media(item):
            message = convert_to_messages([item])[0]
            if isinstance(message, HumanMessage):
                item, stored = take_inline_media(message, workspace)
                media.update(stored)
        messages.append(item)
    return {**input, "messages": messages, "media": media}


def _context_of(context: Any) -> Context:
    if isinstance(context, Context):
        return context
    if isinstance(context, dict):
        names = set(Context.field_names())
        return Context(**{k: v for k, v in context.items() if k in names})
    return Context()


def finished_updates(snapshot: StateSnapshot) -> list[StateUpdate]:
    """The saved results of tasks that finished in a step whose checkpoint was never written."""
    return [
        StateUpdate(task.result, as_node=task.name, task_id=task.id)
        for task in snapshot.tasks
        if task.error is None and isinstance(task.result, dict) and task.result
    ]


def _new_turn(input: Any, config: RunnableConfig) -> bool:
    thread = (config.get("configurable") or {}).get("thread_id")
    return isinstance(input, dict) and bool(thread)


class VitronGraph(CompiledStateGraph):
    """The compiled graph: before LangGraph sees a new input it stores the input's inline media
    (so no checkpoint holds their bytes) and keeps the results of tool calls that finished just
    before a crash (see the module doc).

    Every way of running a compiled graph (``invoke``, ``stream``, their async forms, the event
    streams, the Agent Server) goes through :meth:`stream` or :meth:`astream`.
    """

    def stream(
        self,
        input: Any,
        config: RunnableConfig | None = None,
        *,
        context: Any = None,
        **kwargs: Any,
    ) -> Iterator[Any]:
        merged = merge_configs(self.config, config)
        if _new_turn(input, merged):
            self.recover_finished_calls(merged)
        input = prepare_input(input, merged, context)
        yield from super().stream(input, config, context=context, **kwargs)

    async def astream(
        self,
        input: Any,
        config: RunnableConfig | None = None,
        *,
        context: Any = None,
        **kwargs: Any,
    ) -> AsyncIterator[Any]:
        merged = merge_configs(self.config, config)
        if _new_turn(input, merged):
            await self.arecover_finished_calls(merged)
        input = await asyncio.to_thread(prepare_input, input, merged, context)
        async for chunk in super().astream(input, config, context=context, **kwargs):
            yield chunk

    def recover_finished_calls(self, config: RunnableConfig) -> None:
        """Apply results of tasks that finished before an interrupted step was checkpointed
        (LangGraph would drop them when the next input arrives)."""
        try:
            snapshot = self.get_state(config)
        except (ValueError, NotImplementedError):  # no checkpointer: nothing was saved
            return
        if updates := finished_updates(snapshot):
            self.bulk_update_state(snapshot.config, [updates])

    async def arecover_finished_calls(self, config: RunnableConfig) -> None:
        try:
            snapshot = await self.aget_state(config)
        except (ValueError, NotImplementedError):  # no (async) checkpointer
            return
        if updates := finished_updates(snapshot):
            await self.abulk_update_state(snapshot.config, [updates])


def as_vitron_graph(compiled: CompiledStateGraph) -> VitronGraph:
    """The same compiled graph as a :class:`VitronGraph` (as ``Pregel.copy`` rebuilds one)."""
    attrs = {k: v for k, v in compiled.__dict__.items() if k != "__orig_class__"}
    return VitronGraph(**attrs)


# --------------------------------------------------------------------------- dangling calls


def answer_dangling_calls(messages: Sequence[AnyMessage]) -> list[AnyMessage] | None:
    """The history with an error ``ToolMessage`` after every tool call that has no answer, or
    ``None`` when every call is answered."""
    answered = {m.tool_call_id for m in messages if isinstance(m, ToolMessage)}
    fixed: list[AnyMessage] = []
    pending: list[ToolMessage] = []
    for message in messages:
        if pending and not isinstance(message, ToolMessage):
            fixed.extend(pending)
            pending = []
        fixed.append(message)
        if isinstance(message, AIMessage):
            calls = [*message.tool_calls, *message.invalid_tool_calls]
            for call in calls:
                call_id = call.get("id")
                if call_id and call_id not in answered:
                    answered.add(call_id)
                    name = call.get("name") or "the tool call"
                    pending.append(
                        ToolMessage(
                            content=INTERRUPTED.format(name=name),
                            tool_call_id=call_id,
                            name=call.get("name"),
                            status="error",
                        )
                    )
    fixed.extend(pending)
    return fixed if len(fixed) != len(messages) else None


# --------------------------------------------------------------------------- the node


def ingest(state: State, config: RunnableConfig, runtime: Runtime[Context]) -> dict[str, Any]:
    """The first node of every run: answers calls a crash left open, stores inline media of the
    newest user message (for input that did not pass :class:`VitronGraph`), and registers handles
    the user mentions that exist in this thread's workspace."""
    messages = list(state.get("messages") or [])
    update: dict[str, Any] = {}
    media: MediaRegistry = {}
    repaired = answer_dangling_calls(messages)
    if not messages or not isinstance(messages[-1], HumanMessage):
        if repaired is not None:
            update["messages"] = [RemoveMessage(id=REMOVE_ALL_MESSAGES), *repaired]
        return update
    message = messages[-1]
    workspace = services_of(runtime).workspace.for_thread(thread_of(config))
    cleaned, media = take_inline_media(message, workspace)
    if repaired is not None:
        repaired[-1] = cleaned  # the newest user message stays last
        update["messages"] = [RemoveMessage(id=REMOVE_ALL_MESSAGES), *repaired]
    elif cleaned is not message:
        update["messages"] = [cleaned]

    known = state.get("media") or {}
    for handle in find_handles(message.text):
        base = handle.split("#")[0]
        if base not in known and base not in media and workspace.exists(base):
            try:
                media[base] = workspace.describe(base).to_state()
            except VitronToolError:  # a damaged record: the tools will say so when it is used
                continue
    if media:
        update["media"] = media
    return update
