"""The web UI's parts that need no browser: upload checks, the thread list, rendering a
conversation, and turning the image editor's value into an attachment with a sketched region."""

from __future__ import annotations

import numpy as np
import pytest
from langchain_core.messages import AIMessage
from PIL import Image

from tests.apps.scripted_planners import web_planner
from vitron.apps.session import Session
from vitron.apps.web import render
from vitron.apps.web.threads import list_threads, valid_thread_id
from vitron.apps.web.uploads import UploadLimits, UploadRefused
from vitron.graphs import Context


@pytest.fixture
def session(tmp_path) -> Session:
    context = Context(profile="tiny", workspace=str(tmp_path / "ws"), device="cpu")
    return Session(web_planner(), context, thread_id="web-thread")


def test_uploads_are_refused_by_size_and_type_with_a_sentence(tmp_path):
    limits = UploadLimits.from_megabytes(0.001)  # about 1 KB
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG" + bytes(4000))
    with pytest.raises(UploadRefused, match=r"big.png is too large \(4 KB\); the limit is 1 KB"):
        limits.check(big)
    text = tmp_path / "notes.txt"
    text.write_text("hi")
    with pytest.raises(UploadRefused, match="notes.txt is not an image or video this app reads"):
        limits.check(text)
    small = tmp_path / "ok.png"
    small.write_bytes(b"x" * 10)
    assert limits.check(small) == small
    with pytest.raises(ValueError, match="must be positive"):
        UploadLimits.from_megabytes(0)


def test_editor_value_becomes_an_image_and_a_sketched_region(session):
    from vitron.apps.web.app import take_uploads

    background = np.full((40, 60, 4), 255, dtype=np.uint8)
    layer = np.zeros((40, 60, 4), dtype=np.uint8)
    layer[10:20, 30:45, 3] = 255  # the strokes
    value = {"background": background, "layers": [layer], "composite": background}
    attached = take_uploads(session, value, None, UploadLimits())
    assert len(attached) == 1 and attached[0].startswith("img_")
    region = session._regions[0]
    assert region["media"] == attached[0]
    assert region["box"] == [0.5, 0.25, 0.75, 0.5]
    mask = session.workspace.get_mask(region["mask"])
    assert mask.shape == (40, 60) and mask.sum() == 150

    turn = session.send("segment this")
    shown = render.chat_items(session.history(), session.workspace)
    user_files = [i["content"]["alt_text"] for i in shown
                  if i["role"] == "user" and isinstance(i["content"], dict)]  # fmt: skip
    assert user_files == [attached[0], region["mask"]]  # the picture, then the sketch
    assert [m.name for m in turn.messages if m.type == "tool"] == ["segment_image"]
    call = next(m for m in turn.messages if isinstance(m, AIMessage) and m.tool_calls).tool_calls[0]
    assert call["args"]["mask"] == region["mask"] and call["args"]["regions"] == [region["box"]]


def test_conversation_renders_text_steps_and_inline_pictures(session):
    from vitron.apps.web.app import take_uploads

    value = {"background": np.full((32, 32, 3), 90, dtype=np.uint8), "layers": []}
    take_uploads(session, value, None, UploadLimits())
    session.send("segment this")
    items = render.chat_items(session.history(), session.workspace)
    roles = [i["role"] for i in items]
    assert roles[:2] == ["user", "user"]  # the text, then the picture
    files = [i["content"]["path"] for i in items if isinstance(i["content"], dict)]
    assert len(files) == 2 and all(p.endswith(".png") for p in files)  # upload + overlay
    steps = [i for i in items if "metadata" in i]
    assert steps[0]["metadata"]["title"] == "→ segment_image"
    assert any(str(i["content"]).startswith("**✓ segment_image:**") for i in items)
    assert items[-1]["content"].startswith("Here is the result of segment_image: mask_")
    downloads = render.outputs(session.media(), session.workspace)
    assert downloads and all("/web-thread/" in p or "web-thread" in p for p in downloads)


def test_thread_list_is_newest_first_and_ids_are_checked(tmp_path, session):
    assert list_threads(tmp_path / "nothing") == []
    session.send("hello")
    other = Session(web_planner(), session.context, thread_id="later")
    other.send("hi again")
    assert list_threads(session.context.workspace) == ["later", "web-thread"]
    assert valid_thread_id("abc-123_x") == "abc-123_x"
    assert valid_thread_id("../etc") is None and valid_thread_id("") is None


def test_progress_lines_and_notices():
    assert render.progress_line({"event": "step", "tool": "edit_image", "step": 3, "total": 8}) == (
        "edit_image: step 3/8"
    )
    assert render.progress_line({"event": "load", "component": "sam", "status": "start"}) == (
        "loading sam"
    )
    assert render.progress_line({"event": "token", "text": "x"}) is None
    assert render.notice("bad file")["content"] == "⚠️ bad file"


def test_tokens_stream_as_the_planner_writes(session):
    events: list[dict] = []
    session.stream_tokens = True
    turn = session.send("hello", on_event=events.append)
    tokens = [e["text"] for e in events if e["event"] == "token"]
    assert len(tokens) > 3  # word by word, before the message lands
    assert "".join(tokens) == turn.answer
    first_message = next(i for i, e in enumerate(events) if e["event"] == "message")
    assert all(e["event"] == "token" for e in events[:first_message])


def test_videos_are_given_to_the_chat_as_playable_files(session):
    frames = [np.full((24, 32, 3), 40 * t, dtype=np.uint8) for t in range(4)]
    video = session.workspace.put_video(frames, fps=4, source="image_to_video")
    (item,) = render.media_items([video.handle, "vid_000000000000"], session.workspace)
    assert item["content"]["path"].endswith(".mp4") and item["content"]["alt_text"] == video.handle


def test_a_damaged_upload_and_a_failing_turn_become_sentences(session, tmp_path):
    from vitron.apps.web.app import run_turn, take_uploads
    from vitron.tools.errors import VitronToolError

    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 10)
    with pytest.raises(VitronToolError) as caught:
        take_uploads(session, None, str(broken), UploadLimits())
    assert "broken.png" in str(caught.value) or "image" in str(caught.value)

    class Failing:
        workspace = session.workspace

        def send(self, text, on_event=None):
            raise RuntimeError("the disk is full")

    *_, (items, status) = list(run_turn(Failing(), "hi", [render.user("hi")]))
    assert items[-1]["content"] == "⚠️ The turn failed: RuntimeError: the disk is full."
    assert "Traceback" not in str(items)


def test_web_refuses_thread_and_says_how_to_resume_one(capsys):
    from vitron.apps.cli import main

    assert main(["web", "--thread", "abc123", "--port", "7999"]) == 2
    assert "http://127.0.0.1:7999/?thread=abc123" in capsys.readouterr().err


def test_a_blank_request_is_refused_and_its_attachments_wait(session, tmp_path):
    """Nothing is sent or lost: the picture attached before a blank request goes with the next."""
    path = tmp_path / "picture.png"
    Image.fromarray(np.zeros((24, 32, 3), dtype=np.uint8)).save(path)
    attached = session.attach(path)
    with pytest.raises(ValueError, match="the request is empty"):
        session.send(" \n ")
    assert session.history() == []
    session.send("segment it")
    sent = session.history()[0]
    assert sent.type == "human" and f"[attached {attached.handle}" in sent.content, sent.content
