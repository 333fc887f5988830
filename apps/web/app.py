"""The Gradio app: one page with the conversation, an image editor to draw region sketches, a file
upload for images and videos, approval buttons, downloads and the list of earlier conversations.

Each conversation is a :class:`~vitron.apps.session.Session` whose thread id is in the page's URL
(``?thread=…``), persisted by the SQLite checkpointer under the workspace, so a reload (or a restart
of the server) shows the same conversation. A turn runs in a worker thread; its events (tokens,
tool progress, messages) are streamed to the page as they arrive.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import gradio as gr
import numpy as np
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, ToolMessage

from vitron.apps.session import Session
from vitron.apps.web import render
from vitron.apps.web.threads import list_threads, valid_thread_id
from vitron.apps.web.uploads import UploadLimits, UploadRefused
from vitron.graphs import Context
from vitron.tools.errors import VitronToolError
from vitron.tools.geometry import mask_box

logger = logging.getLogger(__name__)

SET_URL_JS = """(thread) => {
  const url = new URL(window.location);
  if (thread && url.searchParams.get('thread') !== thread) {
    url.searchParams.set('thread', thread);
    window.history.replaceState(null, '', url);
  }
}"""


class Sessions:
    """One :class:`Session` per thread id, made on first use and kept for the process."""

    def __init__(self, planner: BaseChatModel, context: Context) -> None:
        self.planner = planner
        self.context = context
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()
        self.titles: dict[str, str] = {}

    def get(self, thread_id: str) -> Session:
        with self._lock:
            if thread_id not in self._sessions:
                session = Session(self.planner, self.context, thread_id=thread_id)
                session.stream_tokens = True
                self._sessions[thread_id] = session
            return self._sessions[thread_id]

    def title(self, thread_id: str) -> str:
        if thread_id not in self.titles:
            history = self.get(thread_id).history()
            first = next((m.text for m in history if m.type == "human"), "")
            self.titles[thread_id] = (first.splitlines() or ["(empty)"])[0][:48] or "(empty)"
        return self.titles[thread_id]


def build_app(planner: BaseChatModel, context: Context, limits: UploadLimits) -> gr.Blocks:
    """The Blocks app over ``planner`` with the run settings ``context``."""
    sessions = Sessions(planner, context)

    def thread_list(current: str) -> str:
        lines = ["[+ new conversation](?)"]
        for tid in list_threads(context.workspace):
            mark = "**" if tid == current else ""
            lines.append(f"- {mark}[{sessions.title(tid)}](?thread={tid}){mark}")
        return "\n".join(lines)

    def approval_panel(session: Session) -> tuple[Any, str, str]:
        pending = session.pending_approvals()
        if not pending:
            return gr.update(visible=False), "", ""
        _, request = pending[0]
        return gr.update(visible=True), render.approval_text(request), json.dumps(request["args"])

    def page(session: Session, notices: list[dict] = ()) -> tuple:
        """Everything that shows the conversation's saved state."""
        items = render.chat_items(session.history(), session.workspace) + list(notices)
        box, question, args = approval_panel(session)
        files = render.outputs(session.media(), session.workspace) or None
        return items, box, question, args, files, thread_list(session.thread_id)

    def on_load(request: gr.Request) -> tuple:
        thread_id = valid_thread_id(request.query_params.get("thread")) or uuid.uuid4().hex[:12]
        return (thread_id, *page(sessions.get(thread_id)))

    def on_send(thread_id: str, text: str, picture: dict | None, upload: str | None) -> Iterator:
        session = sessions.get(thread_id)
        shown = render.chat_items(session.history(), session.workspace)
        try:
            attached = take_uploads(session, picture, upload, limits)
        except (UploadRefused, VitronToolError, ValueError, OSError) as exc:
            notices = [render.user(text), render.notice(str(exc))]
            yield (*page(session, notices), "", text, None, gr.skip())
            return
        words = text if text.strip() else ""
        if not words and not attached:
            yield (*page(session), "", text, upload, gr.skip())
            return
        shown += [render.user(words or "(no text)")]
        shown += render.media_items(attached, session.workspace, role="user")
        for items, status in run_turn(session, words or "Look at this.", shown):
            yield (items, *[gr.skip()] * 5, status, "", None, gr.skip())
        sessions.titles.pop(thread_id, None)
        # the picture and its sketch went with this message: clear them so the next one does not
        # carry the same region again (the picture stays in the conversation)
        yield (*page(session), "", "", None, None if picture is not None else gr.skip())

    def on_decide(thread_id: str, action: str, args_text: str, reason: str) -> Iterator:
        session = sessions.get(thread_id)
        pending = session.pending_approvals()
        if not pending:
            yield (*page(session, [render.notice("There is nothing waiting for approval.")]), "")
            return
        key, request = pending[0]
        decision: Any = {"action": "reject", "reason": reason.strip()}
        if action == "approve":
            decision = {"action": "approve"}
            try:
                edited = json.loads(args_text) if args_text.strip() else request["args"]
            except ValueError as exc:
                yield (*page(session, [render.notice(f"The arguments are not JSON: {exc}")]), "")
                return
            if edited != request["args"]:
                decision = {"action": "edit", "args": edited}
        shown = render.chat_items(session.history(), session.workspace)
        for items, status in run_turn(session, None, shown, resume={key: decision}):
            yield items, gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), status
        yield (*page(session), "")

    with gr.Blocks(title="Vitron") as app:
        thread = gr.Textbox(visible=False, elem_id="thread-id")
        with gr.Row():
            with gr.Column(scale=1, min_width=180):
                gr.Markdown("### Conversations")
                threads = gr.Markdown(elem_id="threads")
            with gr.Column(scale=4):
                chat = gr.Chatbot(elem_id="chat", height=620, label="Vitron",
                                  group_consecutive_messages=False)  # fmt: skip
                status = gr.Markdown(elem_id="progress")
                with gr.Group(visible=False, elem_id="approval") as approval:
                    question = gr.Markdown(elem_id="approval-question")
                    args = gr.Textbox(label="arguments (JSON; change them to run it differently)",
                                      lines=3, elem_id="approval-args")  # fmt: skip
                    reason = gr.Textbox(label="reason, if you reject (the planner sees it)",
                                        elem_id="approval-reason")  # fmt: skip
                    with gr.Row():
                        approve = gr.Button("Approve", variant="primary", elem_id="approve")
                        reject = gr.Button("Reject", variant="stop", elem_id="reject")
                with gr.Row():
                    picture = gr.ImageEditor(
                        label="Image — draw a region with the brush to point at something",
                        type="numpy", layers=False, transforms=(), elem_id="editor", height=360,
                        brush=gr.Brush(colors=["#ff3030"], default_size=14, color_mode="fixed"),
                    )  # fmt: skip
                    upload = gr.File(label="or upload an image or video file", type="filepath",
                                     file_types=["image", "video"], elem_id="upload")  # fmt: skip
                with gr.Row():
                    message = gr.Textbox(show_label=False, placeholder="Ask Vitron…", scale=5,
                                         elem_id="message")  # fmt: skip
                    send = gr.Button("Send", variant="primary", scale=1, elem_id="send")
                downloads = gr.File(label="Outputs (download)", file_count="multiple",
                                    interactive=False, elem_id="downloads")  # fmt: skip

        shows = [chat, approval, question, args, downloads, threads]
        app.load(on_load, None, [thread, *shows]).then(None, [thread], None, js=SET_URL_JS)
        send_inputs = [thread, message, picture, upload]
        send_outputs = [*shows, status, message, upload, picture]
        send.click(on_send, send_inputs, send_outputs)
        message.submit(on_send, send_inputs, send_outputs)
        approve_action = gr.Textbox("approve", visible=False)
        reject_action = gr.Textbox("reject", visible=False)
        approve.click(on_decide, [thread, approve_action, args, reason], [*shows, status])
        reject.click(on_decide, [thread, reject_action, args, reason], [*shows, status])
    return app


def take_uploads(
    session: Session, picture: dict | None, upload: str | None, limits: UploadLimits
) -> list[str]:
    """Attach the uploaded file and the editor's image (with its sketch as a region) to the next
    message; returns the handles attached. Raises a readable error for anything refused."""
    attached = []
    if upload:
        info = session.attach(limits.check(upload))
        attached.append(info.handle)
    background = (picture or {}).get("background")
    if background is None:
        return attached
    image = np.asarray(background)[..., :3]
    stored = session.workspace.put_image(np.ascontiguousarray(image), source="user",
                                         label="picture")  # fmt: skip
    if stored.handle not in session.media():
        session.attach_stored(stored)
        attached.append(stored.handle)
    sketch = sketch_mask(picture, image.shape[:2])
    if sketch is not None:
        box = mask_box(sketch)
        mask = session.workspace.put_mask(sketch, source="user", label="sketch")
        session.add_region(box, media=stored.handle, mask=mask.handle)
    return attached


def sketch_mask(picture: dict, shape: tuple[int, int]) -> np.ndarray | None:
    """The drawn strokes (any layer's opaque pixels) as a boolean mask of ``shape``, or ``None``."""
    from PIL import Image

    masks = [np.asarray(layer)[..., 3] > 0 for layer in picture.get("layers") or []
             if layer is not None and np.asarray(layer).ndim == 3 and np.asarray(layer).shape[2] == 4]  # fmt: skip
    if not masks:
        return None
    mask = np.logical_or.reduce(masks)
    if mask.shape != shape:
        resized = Image.fromarray(mask.astype(np.uint8) * 255).resize(shape[::-1], Image.NEAREST)
        mask = np.asarray(resized) > 127
    return mask if mask.any() else None


def run_turn(
    session: Session, text: str | None, shown: list[dict], resume: dict | None = None
) -> Iterator[tuple[list[dict], str]]:
    """Run a turn (or resume one) in a worker thread; yields the chat and a progress line as
    messages, tokens and progress events arrive. Failures end as a notice in the chat."""
    events: queue.Queue = queue.Queue()
    failure: list[BaseException] = []

    def work() -> None:
        try:
            if resume is not None:
                session.resume(resume, on_event=events.put)
            else:
                session.send(text or "", on_event=events.put)
        except Exception as exc:  # shown to the person as one sentence; logged in full
            logger.exception("the turn failed")
            failure.append(exc)
        finally:
            events.put(None)

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    done: list[dict] = []
    tokens = ""
    status = "working…"
    yield [*shown], status
    while (event := events.get()) is not None:
        kind = event.get("event")
        if kind == "token" and event.get("node") == "vitron_llm":
            tokens += event["text"]
        elif kind == "message":
            message = event["message"]
            if isinstance(message, AIMessage | ToolMessage):
                tokens = ""
                done += render.message_items(message, session.workspace)
        elif kind == "approval":
            status = "waiting for your approval"
        elif (line := render.progress_line(event)) is not None:
            status = line
        else:
            continue
        live = [{"role": "assistant", "content": tokens}] if tokens else []
        yield [*shown, *done, *live], status
    worker.join()
    if failure:
        exc = failure[0]
        detail = str(exc) if isinstance(exc, VitronToolError) else f"{type(exc).__name__}: {exc}"
        yield [*shown, *done, render.notice(f"The turn failed: {detail}.")], ""


def launch(
    planner: BaseChatModel,
    context: Context,
    host: str = "127.0.0.1",
    port: int = 7860,
    limits: UploadLimits | None = None,
    block: bool = True,
) -> gr.Blocks:
    """Serve the app; ``block=False`` returns once it is listening (tests, notebooks)."""
    limits = limits or UploadLimits()
    app = build_app(planner, context, limits)
    app.queue(default_concurrency_limit=4)
    app.launch(
        server_name=host,
        server_port=port,
        allowed_paths=[context.workspace],
        max_file_size=max(4 * limits.max_bytes, 64 * 1024 * 1024),  # hard cap; ours is the message
        prevent_thread_lock=not block,
        quiet=not block,
        show_error=False,
    )
    return app
