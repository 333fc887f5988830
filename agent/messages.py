"""The messages planner and graph agree on: user messages that carry media handles and region
sketches in one form, the notes on them that are not the user's words, the media listing, and
the mark on a rejected call's result.

It sits in ``agent/`` because ChatVitron and its training data read and write this form, and
``agent/`` may not import ``graphs/`` (DESIGN §3); the graph builds its messages with it
(``vitron.graphs.user_message``).

Regions ride in ``additional_kwargs["regions"]`` as ``{"media", "box", "mask"}`` dicts (``box``
normalised ``[x1, y1, x2, y2]``, ``mask`` an optional ``mask_`` handle for a free-form sketch), and
are also spelled out in the text so any planner, not only Vitron, can use them.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from typing import Any

from langchain_core.messages import HumanMessage

from vitron.tools.geometry import fmt_box
from vitron.tools.workspace import MediaInfo

MediaRegistry = dict[str, dict[str, Any]]
"""The graph state's registry of media (``State.media``): handle → about (a readable line), kind,
size, frames, source (``user`` or the tool), inputs, label."""

REJECTED = "rejected"
"""``additional_kwargs`` key that marks a rejected call's ``ToolMessage`` (``True``; the graph's
approval step writes it), so a planner can tell it from a failed call without reading its words."""
REJECTION_REASON = "rejection_reason"
"""``additional_kwargs`` key of a rejected call's reason, when one was given."""


def user_message(
    text: str,
    media: Sequence[MediaInfo] = (),
    regions: Sequence[dict[str, Any]] = (),
) -> HumanMessage:
    """A human message naming attached ``media`` and ``regions`` so planners can use them."""
    parts = [text.strip()]
    for item in media:
        parts.append(f"[attached {item.summary()}]")
    for i, region in enumerate(regions):
        sketch = f", sketch {region['mask']}" if region.get("mask") else ""
        parts.append(f"[region {i}: {fmt_box(region['box'])} of {region['media']}{sketch}]")
    kwargs = {"regions": [dict(r) for r in regions]} if regions else {}
    return HumanMessage(content="\n".join(p for p in parts if p), additional_kwargs=kwargs)


_MARKUP = re.compile(
    r"\[(?:attached [^\[\]]*|attachment not usable: [^\[\]]*"
    r"|region \d+: \[[^\[\]]*\] of [^\[\]]*)\]"
)
"""What :func:`user_message` and the ingest step add to a user's words: ``[attached …]``,
``[region N: […] of …]`` and ``[attachment not usable: …]``."""


_ATTACHED = re.compile(r"\[attached ((?:img|vid)_[0-9a-f]{12,64}) [^\[\]]*\]")


def attached_media(text: str) -> list[str]:
    """The image and video handles a user message's ``[attached …]`` notes name, in order."""
    return list(dict.fromkeys(_ATTACHED.findall(text)))


def user_words(text: str) -> str:
    """A user message's own words: its text without the attachment and region notes the graph
    adds (:data:`_MARKUP`), so that what the user said is told apart from what they sent."""
    lines = (line.strip() for line in _MARKUP.sub("\n", text).splitlines())
    return "\n".join(line for line in lines if line)


QUESTION_OPENERS = frozenset({
    "what", "which", "who", "whose", "where", "when", "why", "how", "is", "are", "was", "were",
    "do", "does", "did", "can", "could", "will", "would", "should", "has", "have",
})  # fmt: skip
"""First words of a sentence that make it a question (:func:`finish_request`)."""
_QUESTION_WORD = re.compile(r",\s*(?:what|which|who|where|when|how)\b", re.IGNORECASE)


def finish_request(text: str) -> str:
    """``text`` with the user's own words (the last stretch of them, not the notes after) ending
    as a sentence: "?" after one that opens with a question word (or asks ", which …"), "."
    after any other; words that already end in ".", "?" or "!" (or in a quote or bracket after
    one), and text with no words, are left as they are. For a planner trained only on requests
    that end so (the nano planner: the shapes world's wording)."""
    bounds = [0, *(i for note in _MARKUP.finditer(text) for i in note.span()), len(text)]
    between_notes = list(zip(bounds[::2], bounds[1::2], strict=True))
    for start, end in reversed(between_notes):
        words = text[start:end].rstrip()
        if words.strip():
            break
    else:
        return text
    cut = start + len(words)
    if words.rstrip("\"')]").endswith((".", "?", "!")):
        return text
    sentence = re.split(r"[.?!]\s+", words.strip())[-1]  # not empty: the words end in no mark
    first = sentence.split()[0].lower().strip("\"'(")
    ending = "?" if first in QUESTION_OPENERS or _QUESTION_WORD.search(sentence) else "."
    return text[:cut] + ending + text[cut:]


def finished_request(message: HumanMessage) -> HumanMessage:
    """``message`` with :func:`finish_request` applied to its text (for block content, to the
    last text block with words of the user's); the message itself when nothing changes."""
    content = message.content
    if isinstance(content, str):
        finished = finish_request(content)
        return message if finished == content else message.model_copy(update={"content": finished})
    for index in reversed(range(len(content))):
        block = content[index]
        text = block if isinstance(block, str) else None
        if isinstance(block, dict) and block.get("type") == "text":
            text = block.get("text", "")
        if text is None or not user_words(text):
            continue
        finished = finish_request(text)
        if finished == text:
            return message
        blocks = list(content)
        blocks[index] = finished if isinstance(block, str) else {**block, "text": finished}
        return message.model_copy(update={"content": blocks})
    return message


LISTING_HEAD = "Media in this conversation"
_LISTED = re.compile(r"^- ((?:img|vid|mask|emb|box)_[0-9a-f]{12,64}) ")


def media_listing(media: MediaRegistry, limit: int = 40) -> str:
    """Lines describing the conversation's media for the planner, newest last."""
    if not media:
        return "No media in this conversation yet."
    lines = []
    items = list(media.items())[-limit:]
    for handle, info in items:
        info = {k: v for k, v in info.items() if k in MediaInfo.__dataclass_fields__}
        summary = MediaInfo(handle=handle, **info).summary()
        origin = info.get("source", "user")
        origin = "from the user" if origin == "user" else f"made by {origin}"
        if info.get("inputs"):
            origin += " from " + ", ".join(info["inputs"])
        label = f" '{info['label']}'" if info.get("label") else ""
        lines.append(f"- {summary}{label}, {origin}")
    skipped = len(media) - len(items)
    head = f"{LISTING_HEAD} ({skipped} older not shown):" if skipped else f"{LISTING_HEAD}:"
    return "\n".join([head, *lines])


def narrow_listing(text: str, keep: Collection[str], made: Collection[str] = ()) -> str:
    """``text`` (a system message holding a :func:`media_listing`) listing only the media whose
    handle is in ``keep``, its head saying how many others are not shown. Media in ``made`` (what
    the current request's own calls made) are left out without being counted, so the listing is
    the one the request was made with, word for word. Text without a listing comes back
    unchanged."""
    lines = text.split("\n")
    start = next((i for i, line in enumerate(lines) if line.startswith(LISTING_HEAD)), None)
    if start is None:
        return text
    end = start + 1
    while end < len(lines) and _LISTED.match(lines[end]):
        end += 1
    listed = [line for line in lines[start + 1 : end] if _LISTED.match(line)[1] not in made]
    kept = [line for line in listed if _LISTED.match(line)[1] in keep]
    older = re.search(r"\((\d+) older not shown\)", lines[start])
    hidden = len(listed) - len(kept) + (int(older[1]) if older else 0)
    if not hidden and len(listed) == end - start - 1:
        return text
    if not kept and not hidden:
        return "\n".join([*lines[:start], media_listing({}), *lines[end:]])
    head = (
        f"{LISTING_HEAD} ({hidden} older not shown):" if hidden and kept
        else f"{LISTING_HEAD}: {hidden} earlier, not shown." if hidden
        else f"{LISTING_HEAD}:"
    )  # fmt: skip
    return "\n".join([*lines[:start], head, *kept, *lines[end:]])
