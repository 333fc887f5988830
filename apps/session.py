"""A conversation as the command line (and later the web UI) drives it: attach media, send a
message, stream what happens, and collect the files the tools made.

The graph persists each thread in SQLite under the workspace, so a session resumed with the same
thread id continues where it stopped, in this process or another.
"""

from __future__ import annotations

import logging
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolMessage
from langgraph.types import Command

from vitron.graphs import Context, build_graph, user_message
from vitron.graphs.approval import pending_approvals
from vitron.graphs.persistence import checkpointer_from, checkpointer_spec
from vitron.tools.schemas import check_region
from vitron.tools.workspace import EXTENSIONS, MediaInfo

logger = logging.getLogger(__name__)

EventHandler = Callable[[dict[str, Any]], None]
Decider = Callable[[dict[str, Any]], Any]
"""Answers an approval request (the interrupt value) with a decision (see vitron.graphs.approval)."""


@dataclass
class Turn:
    """What one user message led to: the new messages and the media the tools made."""

    messages: list[BaseMessage] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    pending: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """Approval requests the turn stopped at, as ``(interrupt id, request)``; answer them with
    :meth:`Session.resume` (see :mod:`vitron.graphs.approval`)."""

    def extend(self, later: Turn) -> None:
        """Add what a resumed run did to this turn."""
        self.messages.extend(later.messages)
        self.created.extend(h for h in later.created if h not in self.created)
        self.pending = list(later.pending)

    @property
    def answer(self) -> str:
        replies = [m for m in self.messages if isinstance(m, AIMessage) and not m.tool_calls]
        return replies[-1].text if replies else ""


class Session:
    """One conversation thread over a planner, the tools, and a persistent checkpointer."""

    def __init__(
        self,
        model: BaseChatModel,
        context: Context,
        thread_id: str | None = None,
        tools: Sequence[Any] | None = None,
        checkpointer: str | None = None,
    ) -> None:
        """``checkpointer``: a ``postgresql://`` URL or a SQLite path (default:
        ``VITRON_CHECKPOINTER``, else SQLite in the workspace)."""
        self.context = context
        self.thread_id = thread_id or uuid.uuid4().hex[:12]
        self.config = {"configurable": {"thread_id": self.thread_id}}
        self.workspace = context.services().workspace.for_thread(self.thread_id)
        saver = checkpointer_from(checkpointer_spec(context.workspace, checkpointer))
        self.graph = build_graph(model, tools, checkpointer=saver)
        self._pending: list[MediaInfo] = []
        self.stream_tokens = False
        """When set, ``on_event`` also receives ``{"event": "token", "text"}`` as the planner writes."""
        self._regions: list[dict[str, Any]] = []

    # ---------------------------------------------------------------- input

    def attach(self, path: str | Path, kind: Literal["video"] | None = None) -> MediaInfo:
        """Store an image or video file; it goes with the next message. ``kind="video"``: read it
        as a video whatever its first bytes say (``--video``, ``/video``)."""
        info = self.workspace.import_file(path, kind, source="user", label=Path(path).name)
        self._pending.append(info)
        return info

    def attach_stored(self, info: MediaInfo) -> MediaInfo:
        """Attach media already stored in this thread's workspace (e.g. an image drawn on in the
        web UI) to the next message."""
        self._pending.append(info)
        return info

    def add_region(
        self, box: list[float], media: str | None = None, mask: str | None = None
    ) -> dict:
        """A region (normalised box, optional sketch mask handle) for the next message."""
        target = media or self.latest_visual()
        if target is None:
            raise ValueError("attach an image or video before drawing a region")
        region = {"media": target, "box": check_region(list(box)), "mask": mask}
        self._regions.append(region)
        return region

    def latest_visual(self) -> str | None:
        """The most recent image or video of the conversation (pending attachments first)."""
        if self._pending:
            return self._pending[-1].handle
        visuals = [h for h in self.media() if h.startswith(("img_", "vid_"))]
        return visuals[-1] if visuals else None

    # ---------------------------------------------------------------- running

    def send(
        self, text: str, on_event: EventHandler | None = None, decide: Decider | None = None
    ) -> Turn:
        """Run one turn; ``on_event`` receives progress events and each new message as it lands.

        A call that needs approval stops the turn with ``Turn.pending`` set, unless ``decide`` is
        given: it is asked for each request (``decide(request) -> decision``) and the turn goes on.
        A blank ``text`` is refused (``ValueError``) before anything is sent or taken off the
        pending attachments and regions.
        """
        if not text.strip():  # checked first: what is attached waits for the next message
            raise ValueError("the request is empty: say what you want done")
        media, self._pending = self._pending, []
        regions, self._regions = self._regions, []
        sketches = [r["mask"] for r in regions if r.get("mask")]
        inputs = {
            "messages": [user_message(text, media=media, regions=regions)],
            # a region's sketch mask is the conversation's media too (as `vitron eval` sends it)
            "media": {m.handle: m.to_state() for m in media}
            | {h: self.workspace.describe(h).to_state() for h in sketches},
        }
        turn = self._run(inputs, on_event)
        return self._decide_all(turn, on_event, decide)

    def resume(
        self,
        decisions: dict[str, Any],
        on_event: EventHandler | None = None,
        decide: Decider | None = None,
    ) -> Turn:
        """Answer pending approval requests (``{interrupt id: decision}``) and continue the turn."""
        turn = self._run(Command(resume=dict(decisions)), on_event)
        return self._decide_all(turn, on_event, decide)

    def pending_approvals(self) -> list[tuple[str, dict[str, Any]]]:
        """The thread's unanswered approval requests (e.g. after a restart or a page reload)."""
        return pending_approvals(self.graph.get_state(self.config).interrupts)

    def _decide_all(
        self, turn: Turn, on_event: EventHandler | None, decide: Decider | None
    ) -> Turn:
        while turn.pending and decide is not None:
            answers = {key: decide(request) for key, request in turn.pending}
            turn.extend(self._run(Command(resume=answers), on_event))
        return turn

    def _run(self, inputs: Any, on_event: EventHandler | None) -> Turn:
        turn = Turn()
        for mode, chunk in self._stream(inputs):
            if mode == "custom":
                if on_event:
                    on_event(chunk)
                continue
            if mode == "messages":  # only requested with stream_tokens
                token, meta = chunk
                if on_event and isinstance(token, AIMessageChunk) and token.text:
                    node = meta.get("langgraph_node")
                    on_event({"event": "token", "text": token.text, "node": node})
                continue
            if "__interrupt__" in (chunk or {}):
                new = pending_approvals(chunk["__interrupt__"])
                turn.pending.extend(new)
                if on_event:
                    for key, request in new:
                        on_event({"event": "approval", "id": key, "request": request})
                continue
            for update in (chunk or {}).values():
                for message in (update or {}).get("messages", []):
                    if isinstance(message, AIMessage | ToolMessage):
                        turn.messages.append(message)
                        if on_event:
                            on_event({"event": "message", "message": message})
                turn.created.extend(
                    h for h in (update or {}).get("media", {}) if h not in turn.created
                )
        return turn

    def _stream(self, inputs: Any) -> Iterator[tuple[str, Any]]:
        modes = ["updates", "custom", *(["messages"] if self.stream_tokens else [])]
        yield from self.graph.stream(inputs, self.config, context=self.context, stream_mode=modes)

    # ---------------------------------------------------------------- reading back

    def history(self) -> list[BaseMessage]:
        return list(self.graph.get_state(self.config).values.get("messages", []))

    def media(self) -> dict[str, dict[str, Any]]:
        return dict(self.graph.get_state(self.config).values.get("media", {}))

    def export(self, handles: Sequence[str], directory: str | Path) -> list[Path]:
        """Copy the files behind ``handles`` to ``directory`` under readable names."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        written = []
        for handle in handles:
            kind = handle.split("_", 1)[0]
            source = self.workspace.path(handle)
            label = (self.workspace.describe(handle).label or kind).replace(" ", "-")
            safe = "".join(c for c in label if c.isalnum() or c in "-_")[:40] or kind
            number = len(list(directory.glob("[0-9][0-9]_*"))) + 1
            target = directory / f"{number:02d}_{safe}_{handle}.{EXTENSIONS[kind]}"
            shutil.copyfile(source, target)
            written.append(target)
        return written
