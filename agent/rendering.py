"""LangChain messages -> the processor's conversation turns, the way the Vitron LLM was trained.

- ``SystemMessage``: one system turn (several are joined), replacing the template's default.
- ``HumanMessage``: the media it names by handle (``img_…``, ``vid_…``, a frame ``vid_…#n``) are
  loaded from the thread's workspace and put before the text as ``<image>`` / ``<video>``
  inputs, each handle once per conversation; inline image and video content blocks (base64) are
  decoded directly; regions in ``additional_kwargs["regions"]`` (``{"media", "box", "mask"}``)
  become region masks after the text, one ``<region>`` each (a ``mask`` handle keeps the sketch's
  shape, a ``box`` fills its rectangle).
- ``AIMessage``: its text and tool calls in the invocation grammar (:func:`format_reply`), so the
  model reads its earlier calls as it wrote them; parse errors recorded in
  ``response_metadata["parse_errors"]`` follow as a tool turn, so the model can correct itself.
- ``ToolMessage``: a tool turn ``<tool>: <result>`` (``<tool> failed: …`` for errors).

Literal placeholders (``<image>``, ``<video>``, ``<region>``) in any text are escaped, so only real
media become media tokens. The rendering also finds the conversation's current image and video —
the latest one the user named or a tool produced as its main output — which fill the media
argument of the model's tool calls.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from PIL import Image

from vitron.agent.inputs import RegionInput, Turn, VideoInput
from vitron.agent.invocation import MODULES, format_reply, format_tool_call, sanitize_text
from vitron.agent.tokens import PLACEHOLDER_TOKENS
from vitron.tools.errors import VitronToolError
from vitron.tools.geometry import box_mask
from vitron.tools.handles import find_handles, parse_handle
from vitron.tools.media import (
    decode_image,
    inline_bytes,
    iter_video_frames,
    looks_like_video,
    probe_video,
)
from vitron.tools.schemas import check_region
from vitron.tools.workspace import Workspace

logger = logging.getLogger(__name__)

PLACEHOLDER_ESCAPES: dict[str, str] = {
    token: "\u2039" + token[1:-1] + "\u203a" for token in PLACEHOLDER_TOKENS
}
"""``<image>`` -> ``‹image›``: how a placeholder spelled in text is shown to the model."""

PARSE_ERROR_NOTE = (
    "Your previous reply could not be run as written: {errors}. Write each call as "
    "<Module>tool name</Module><Instruction>what to do</Instruction>, optionally "
    "<Region>(x1, y1, x2, y2)</Region> with integers 0-999, then the tool's signal token."
)
"""The tool turn that follows an assistant reply whose invocations did not parse."""

MEDIA_BLOCK_TYPES = ("image", "image_url", "video")
ARTIFACT_MEDIA_KEYS = {"image": "image", "video": "video"}
"""Tool artifact keys that name a tool's main output (what "it" refers to afterwards)."""


def escape_placeholders(text: str) -> str:
    """Replace literal placeholders so they stay text (the processor counts real ones)."""
    for token, escaped in PLACEHOLDER_ESCAPES.items():
        text = text.replace(token, escaped)
    return text


@dataclass
class RenderedConversation:
    """Turns for :meth:`VitronProcessor.encode_chat` and the conversation's current media."""

    turns: list[Turn]
    media: dict[str, str] = field(default_factory=dict)
    """``{"image": handle, "video": handle}``: the latest of each kind, for tool-call defaults."""
    images: int = 0
    videos: int = 0
    regions: int = 0
    handles: dict[int, str] = field(default_factory=dict, repr=False)
    """``id(part)`` -> the handle an image or video part was loaded from."""


def render_messages(
    messages: Sequence[BaseMessage],
    workspace: Workspace,
    *,
    video_frames: int,
    max_media: int | None = None,
) -> RenderedConversation:
    """Render ``messages`` with media from ``workspace`` (the conversation thread's namespace);
    videos are sampled to ``video_frames`` frames (the processor's count) while decoding.

    ``max_media`` caps the images and videos shown as visual tokens: the most recent ones are
    kept (and any image a region of the last user turn is drawn on); older ones stay in the text
    as their handles, so the prompt stops growing with every image the user names.
    """
    rendered = _Renderer(workspace, video_frames).render(messages)
    if max_media is not None and rendered.images + rendered.videos > max_media:
        rendered = cap_media(rendered, max_media)
    return rendered


def cap_media(rendered: RenderedConversation, limit: int) -> RenderedConversation:
    """``rendered`` with only its last ``limit`` images/videos as pixels (see
    :func:`render_messages`); region indices are renumbered to the images kept."""
    places = [
        (t, p)
        for t, turn in enumerate(rendered.turns)
        if isinstance(turn.content, list)
        for p, part in enumerate(turn.content)
        if _is_media(part)
    ]
    keep = set(places[-limit:]) if limit > 0 else set()
    last_user = max((t for t, turn in enumerate(rendered.turns) if turn.role == "user"), default=-1)
    image_places = [place for place in places if not isinstance(_part(rendered, place), VideoInput)]
    if last_user >= 0 and isinstance(rendered.turns[last_user].content, list):
        for part in rendered.turns[last_user].content:
            if isinstance(part, RegionInput) and part.image is not None:
                keep.add(image_places[part.image])  # a region needs its image
    new_index = {
        old: new for new, old in enumerate(i for i, p in enumerate(image_places) if p in keep)
    }
    turns: list[Turn] = []
    images = videos = 0
    for t, turn in enumerate(rendered.turns):
        if not isinstance(turn.content, list):
            turns.append(turn)
            continue
        parts: list[Any] = []
        for p, part in enumerate(turn.content):
            if _is_media(part) and (t, p) not in keep:
                if id(part) not in rendered.handles:  # a handle stays in the text; this has none
                    parts.append("[an earlier attachment, not shown again]")
            elif isinstance(part, RegionInput) and part.image is not None:
                if part.image in new_index:
                    parts.append(replace(part, image=new_index[part.image]))
                else:
                    parts.append("[a region on an image not shown again]")
            else:
                images += _is_media(part) and not isinstance(part, VideoInput)
                videos += isinstance(part, VideoInput)
                parts.append(part)
        turns.append(Turn(turn.role, parts))
    return RenderedConversation(
        turns, rendered.media, images, videos, rendered.regions, rendered.handles
    )


def _is_media(part: Any) -> bool:
    return isinstance(part, Image.Image | VideoInput | np.ndarray)


def _part(rendered: RenderedConversation, place: tuple[int, int]) -> Any:
    return rendered.turns[place[0]].content[place[1]]


class _Renderer:
    def __init__(self, workspace: Workspace, video_frames: int) -> None:
        self.workspace = workspace
        self.video_frames = max(1, int(video_frames))
        self.system: list[str] = []
        self.turns: list[Turn] = []
        self.image_index: dict[str, int] = {}  # handle -> index among the prompt's images
        self.seen_videos: set[str] = set()
        self.images = self.videos = self.regions = 0
        self.media: dict[str, str] = {}
        self.handles: dict[int, str] = {}

    def render(self, messages: Sequence[BaseMessage]) -> RenderedConversation:
        for message in messages:
            if isinstance(message, SystemMessage):
                self.system.append(escape_placeholders(message.text))
            elif isinstance(message, HumanMessage):
                self._human(message)
            elif isinstance(message, AIMessage):
                self._assistant(message)
            elif isinstance(message, ToolMessage):
                self._tool(message)
            elif isinstance(message, ChatMessage) and message.role in ("assistant", "ai"):
                self._assistant(AIMessage(content=message.content))
            elif isinstance(message, ChatMessage) and message.role == "system":
                self.system.append(escape_placeholders(message.text))
            else:
                self.turns.append(Turn("user", escape_placeholders(message.text)))
        turns = [Turn("system", "\n\n".join(self.system))] if self.system else []
        return RenderedConversation(
            turns + self.turns,
            dict(self.media),
            self.images,
            self.videos,
            self.regions,
            self.handles,
        )

    # ---- user turns ----

    def _human(self, message: HumanMessage) -> None:
        parts: list[Any] = []
        notes: list[str] = []
        if isinstance(message.content, list):
            for block in message.content:
                if isinstance(block, dict) and block.get("type") in MEDIA_BLOCK_TYPES:
                    part = self._inline_block(block, notes)
                    if part is not None:
                        parts.append(part)
        text = message.text
        for handle in find_handles(text):
            part = self._handle(handle)
            if part is not None:
                parts.append(part)
        region_parts: list[Any] = []
        for number, region in enumerate(message.additional_kwargs.get("regions") or []):
            part, media = self._region(region)
            if media is not None:
                parts.append(media)
            if part is not None:
                region_parts += [f"\nregion {number}: ", part]
        body = escape_placeholders("\n".join([text, *notes]).strip())
        self.turns.append(Turn("user", [*parts, body, *region_parts]))

    def _handle(self, handle: str) -> Any | None:
        """An image or video part for a mentioned handle, or None (not media, known, missing)."""
        parsed = parse_handle(handle)
        if parsed.kind == "img" or (parsed.kind == "vid" and parsed.frame is not None):
            self.media["image"] = handle
            return self._image(handle)
        if parsed.kind == "vid":
            self.media["video"] = handle
            if handle in self.seen_videos:
                return None
            try:
                video = self._video(handle)
            except VitronToolError as exc:
                logger.warning("cannot show %s to the model: %s", handle, exc)
                return None
            self.seen_videos.add(handle)
            self.videos += 1
            self.handles[id(video)] = handle
            return video
        return None

    def _image(self, handle: str) -> Image.Image | None:
        if handle in self.image_index:
            return None
        try:
            image = self.workspace.get_image(handle)
        except VitronToolError as exc:
            logger.warning("cannot show %s to the model: %s", handle, exc)
            return None
        self.image_index[handle] = self.images
        self.images += 1
        self.handles[id(image)] = handle
        return image

    def _video(self, handle: str) -> VideoInput:
        """The video's frames sampled at segment centres (as the processor samples), decoding
        the file once without holding every frame."""
        info = self.workspace.describe(handle, kinds=("vid",))
        fps = info.fps or None
        if not info.frames:
            video = self.workspace.get_video(handle)
            return VideoInput(video.frames, fps=video.fps or None)
        total = int(info.frames)
        count = min(self.video_frames, total)
        wanted = [min(total - 1, int((k + 0.5) * total / count)) for k in range(count)]
        chosen = set(wanted)
        frames: dict[int, np.ndarray] = {}
        for index, frame in enumerate(self.workspace.iter_frames(handle)):
            if index in chosen:
                frames[index] = frame
            if index >= wanted[-1]:
                break
        kept = [i for i in wanted if i in frames]
        if not kept:
            raise VitronToolError(f"{handle} has no readable frames")
        times = [i / fps for i in kept] if fps else None
        return VideoInput([frames[i] for i in kept], timestamps=times)

    def _region(self, region: Mapping[str, Any]) -> tuple[RegionInput | None, Any | None]:
        """(the region's mask input, its image part if this is the image's first mention)."""
        media = region.get("media")
        try:
            parsed = parse_handle(media)
            if not (parsed.kind == "img" or (parsed.kind == "vid" and parsed.frame is not None)):
                raise VitronToolError(f"regions are drawn on images, not on {media}")
            part = None
            if media not in self.image_index:
                part = self._image(str(parsed))
                if part is None:
                    return None, None
            self.media["image"] = str(parsed)
            if region.get("mask"):
                mask = self.workspace.get_mask(region["mask"])
            else:
                info = self.workspace.describe(parsed.base)
                box = check_region([float(v) for v in region["box"]])
                mask = box_mask(box, info.width or 1, info.height or 1)
        except (VitronToolError, KeyError, TypeError, ValueError) as exc:
            logger.warning("region %r is not shown to the model: %s", dict(region), exc)
            return None, None
        self.regions += 1
        return RegionInput(mask, image=self.image_index[str(parsed)]), part

    def _inline_block(self, block: dict[str, Any], notes: list[str]) -> Any | None:
        """An inline base64 image or video block, decoded; a note for what cannot be used."""
        try:
            data = inline_bytes(block)
            limits = self.workspace.limits
            if looks_like_video(data[:16]):
                video = decode_video_bytes(data, self.video_frames, limits)
                self.videos += 1
                return video
            image = decode_image(data, limits)
        except VitronToolError as exc:
            notes.append(f"[attachment not usable: {exc}]")
            return None
        self.images += 1
        return image

    # ---- assistant and tool turns ----

    def _assistant(self, message: AIMessage) -> None:
        text = reply_text(message)
        self.turns.append(Turn("assistant", text))
        errors = (message.response_metadata or {}).get("parse_errors") or []
        if errors:
            note = PARSE_ERROR_NOTE.format(errors="; ".join(str(e) for e in errors))
            self.turns.append(Turn("tool", escape_placeholders(note)))

    def _tool(self, message: ToolMessage) -> None:
        name = message.name or "tool"
        verb = "failed" if message.status == "error" else "returned"
        self.turns.append(Turn("tool", escape_placeholders(f"{name} {verb}: {message.text}")))
        artifact = message.artifact if isinstance(message.artifact, dict) else {}
        for key, kind in ARTIFACT_MEDIA_KEYS.items():
            value = artifact.get(key)
            if isinstance(value, str):
                self.media[kind] = value


def reply_text(message: AIMessage) -> str:
    """An assistant message as the model would have written it: text, then its invocations.

    Calls of tools the grammar cannot name (another planner's) are described in words.
    """
    pieces = [format_reply(escape_placeholders(message.text))]
    for call in message.tool_calls:
        if call["name"] in MODULES:
            try:
                pieces.append(format_tool_call(call))
                continue
            except (ValueError, TypeError) as exc:
                logger.debug("cannot format %s in the grammar: %s", call["name"], exc)
        args = ", ".join(f"{k}={v!r}" for k, v in (call.get("args") or {}).items())
        pieces.append(sanitize_text(f"(called {call['name']}({args}))"))
    return " ".join(p for p in pieces if p)


def decode_video_bytes(data: bytes, frames: int, limits: Any) -> VideoInput:
    """An MP4 (or other container) in memory -> ``frames`` frames sampled at segment centres."""
    fd, path = tempfile.mkstemp(suffix=".video")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        fps = probe_video(path).fps or None
        decoded = list(iter_video_frames(path, limits))
    finally:
        os.unlink(path)
    if not decoded:
        raise VitronToolError("the attached video has no frames")
    total = len(decoded)
    count = min(frames, total)
    indices = [min(total - 1, int((k + 0.5) * total / count)) for k in range(count)]
    times = [i / fps for i in indices] if fps else None
    return VideoInput([decoded[i] for i in indices], timestamps=times)


__all__ = [
    "PARSE_ERROR_NOTE",
    "PLACEHOLDER_ESCAPES",
    "RenderedConversation",
    "box_mask",
    "escape_placeholders",
    "render_messages",
    "reply_text",
]
