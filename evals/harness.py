"""Run samples through the Vitron graph, end to end, and collect what came out.

For each sample the harness stores its media in a fresh thread of the run's workspace, sends the
instruction as one user turn (with the media and any drawn regions), lets the planner plan and the
tools execute until the planner answers (or the step limit ends the turn), and returns an
:class:`Outcome`: the calls the planner made, the tool results, the final answer and the wall time
of the turn. Scoring (:mod:`vitron.evals.scoring`) reads only this — the graph's final outputs —
never a tool called on its own.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

from vitron.evals.sample import Sample
from vitron.graphs import Context, build_graph, user_message
from vitron.tools.workspace import MediaInfo, Workspace

logger = logging.getLogger(__name__)

PlannerSource = BaseChatModel | Callable[[Sample], BaseChatModel]
"""A planner for every sample, or a factory making one per sample (scripted planners)."""


@dataclass
class Outcome:
    """What one sample's turn produced."""

    sample: Sample
    calls: list[dict[str, Any]] = field(default_factory=list)
    """``{"name", "args"}`` of every tool call the planner made, in order."""
    results: list[dict[str, Any]] = field(default_factory=list)
    """``{"name", "status", "content", "artifact"}`` of every tool result, in order."""
    answer: str = ""
    latency: float = 0.0
    """Seconds the turn took (planner and tools)."""
    error: str | None = None
    """Set when the turn itself failed (the graph raised, or the planner failed and the graph
    ended the turn with that error); the sample then scores as failed."""
    media: list[str] = field(default_factory=list)
    regions: list[str | None] = field(default_factory=list)
    workspace: Workspace | None = None

    def last_result(self, tool: str) -> dict[str, Any] | None:
        """The latest successful result of ``tool`` (``None`` if it never succeeded)."""
        for result in reversed(self.results):
            if result["name"] == tool and result["status"] == "success":
                return result
        return None


def store_media(
    workspace: Workspace, sample: Sample
) -> tuple[list[MediaInfo], list[dict[str, Any]]]:
    """Put the sample's media and region sketches in ``workspace``; returns the media infos and
    the regions as :func:`vitron.graphs.user_message` takes them."""
    infos = []
    for item in sample.media:
        if item.kind == "image":
            infos.append(workspace.put_image(item.pixels, source="user", label=item.label or None))
        else:
            infos.append(workspace.put_video(list(item.pixels), item.fps, lossless=True,
                                             source="user", label=item.label or None))  # fmt: skip
    regions = []
    for region in sample.regions:
        mask = None
        if region.mask is not None:
            mask = workspace.put_mask(region.mask, source="user", label="sketch").handle
        regions.append({"media": infos[region.media].handle, "box": list(region.box), "mask": mask})
    return infos, regions


def run_sample(graph: Any, sample: Sample, context: Context, *,
               thread_id: str | None = None) -> Outcome:  # fmt: skip
    """One user turn of ``sample`` through a compiled graph (built without a checkpointer)."""
    thread = thread_id or f"eval-{uuid.uuid4().hex[:12]}"
    workspace = context.services().workspace.for_thread(thread)
    outcome = Outcome(sample=sample, workspace=workspace)
    infos, regions = store_media(workspace, sample)
    outcome.media = [m.handle for m in infos]
    outcome.regions = [r["mask"] for r in regions]
    inputs = {
        "messages": [user_message(sample.instruction, media=infos, regions=regions)],
        "media": {m.handle: m.to_state() for m in infos}
        | {r["mask"]: workspace.describe(r["mask"]).to_state() for r in regions if r["mask"]},
    }
    config = {"configurable": {"thread_id": thread}, "recursion_limit": 4 * context.step_limit + 10}
    start = time.perf_counter()
    try:
        state = graph.invoke(inputs, config, context=context)
    except Exception as exc:  # a crashed turn is a failed sample, never a crashed evaluation
        logger.exception("sample %s: the turn failed", sample.id)
        outcome.error = f"{type(exc).__name__}: {exc}"
        state = {"messages": []}
    outcome.latency = time.perf_counter() - start
    read_turn(outcome, state.get("messages", []))
    return outcome


def read_turn(outcome: Outcome, messages: Sequence[BaseMessage]) -> Outcome:
    """Fill ``outcome``'s calls, results, answer and error from one turn's messages (the graph's
    final state, or the messages a :class:`~vitron.apps.session.Session` turn added)."""
    for message in messages:
        if isinstance(message, AIMessage):
            outcome.calls += [
                {"name": c["name"], "args": dict(c["args"])} for c in message.tool_calls
            ]
            outcome.calls += [{"name": c.get("name") or "", "args": {}}
                              for c in message.invalid_tool_calls]  # fmt: skip
        elif isinstance(message, ToolMessage):
            artifact = message.artifact if isinstance(message.artifact, dict) else {}
            outcome.results.append({"name": message.name or "", "status": message.status,
                                    "content": message.text, "artifact": artifact})  # fmt: skip
    replies = [m for m in messages if isinstance(m, AIMessage) and not m.tool_calls]
    outcome.answer = replies[-1].text if replies else ""
    stop = replies[-1].response_metadata.get("stop_reason") if replies else None
    if stop == "planner_error":  # the graph kept going, but the turn failed
        outcome.error, outcome.answer = outcome.answer, ""
    elif stop == "step_limit":  # the turn was cut off: the notice is not the planner's answer
        outcome.answer = ""
    return outcome


def cleanup(outcome: Outcome) -> None:
    """Remove the sample's thread from the workspace (its media and outputs)."""
    if outcome.workspace is not None:
        outcome.workspace.remove_namespace()


def planner_for(source: PlannerSource, sample: Sample) -> BaseChatModel:
    return source if isinstance(source, BaseChatModel) else source(sample)


def run_samples(
    samples: Sequence[Sample],
    planner: PlannerSource,
    context: Context,
    *,
    tools: Sequence[Any] | None = None,
    score: Callable[[Outcome], dict[str, Any]],
    progress: Callable[[int], None] | None = None,
    keep_media: bool = False,
) -> list[dict[str, Any]]:
    """Run every sample and score it right away (so its outputs can be removed after); returns one
    record per sample: ``{"id", "task", "latency", "error", "calls", "scores"}``."""
    shared = build_graph(planner, tools) if isinstance(planner, BaseChatModel) else None
    records = []
    for sample in samples:
        graph = shared or build_graph(planner_for(planner, sample), tools)
        outcome = run_sample(graph, sample, context)
        try:
            scores = score(outcome)
        finally:
            if not keep_media:
                cleanup(outcome)
        records.append({"id": sample.id, "task": sample.task, "latency": outcome.latency,
                        "error": outcome.error, "calls": [c["name"] for c in outcome.calls],
                        "answer": outcome.answer[:200], "scores": scores})  # fmt: skip
        if progress:
            progress(1)
    return records
