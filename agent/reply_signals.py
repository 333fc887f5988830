"""ChatVitron's signal embeddings: each signal token of a finished reply is embedded from its
hidden state (the model's signal heads), stored in the thread's workspace, and its ``emb_`` handle
put in its tool call's ``signal`` argument."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from langchain_core.messages import ToolCall

from vitron.agent.loading import COMPONENT

if TYPE_CHECKING:
    import torch

    from vitron.agent.loading import VitronEngine
    from vitron.agent.parsing import ParsedReply
    from vitron.agent.reply import FinishedText
    from vitron.tools.workspace import Workspace

logger = logging.getLogger(__name__)


def store_signals(
    engine: VitronEngine,
    workspace: Workspace,
    generated: list[int],
    states: list[torch.Tensor],
    finished: FinishedText,
) -> tuple[list[str | None], list[dict[str, Any]]]:
    """Embed every signal token of the final text, store each in the workspace; returns a
    handle per signal token (text order; None if spelled out) and their descriptions."""
    import torch

    wanted = {s for s in finished.signal_steps if s is not None}
    if not wanted:
        return [None] * len(finished.signal_steps), []
    model = engine.model
    sequence = torch.tensor([[-1, *generated[: len(states)]]], device=states[0].device)
    with torch.inference_mode():
        embedded = model.signal_embeddings(torch.stack(states)[None], sequence, start=1)
    by_step = {e.position - 1: e for e in embedded}
    handles: list[str | None] = []
    described: list[dict[str, Any]] = []
    for step in finished.signal_steps:
        signal = by_step.get(step) if step is not None else None
        if signal is None:
            handles.append(None)
            continue
        info = workspace.put_embedding(
            signal.embedding.float(),
            source=COMPONENT,
            extra={"space": signal.space, "token": signal.token},
        )
        handles.append(info.handle)
        described.append({"handle": info.handle, "token": signal.token, "space": signal.space})
    return handles, described


def attach_signals(parsed: ParsedReply, handles: list[str | None]) -> list[ToolCall]:
    """The parsed calls with each signal handle in its call's ``signal`` argument."""
    if len(handles) != parsed.signal_count:
        logger.warning(
            "%d signal token(s) parsed but %d embedded; calls keep no signal",
            parsed.signal_count,
            len(handles),
        )
        return list(parsed.calls)
    if all(h is not None for h in handles):
        return parsed.with_signals([h for h in handles if h is not None])
    calls = []
    for call, invocation in zip(parsed.calls, parsed.invocations, strict=True):
        args = dict(call["args"])
        index = invocation.signal_index
        if index is not None and handles[index] is not None:
            args["signal"] = handles[index]
        calls.append(ToolCall(name=call["name"], args=args, id=call["id"], type="tool_call"))
    return calls
