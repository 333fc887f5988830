"""Media handles: the only way pixels and tensors are named in graph state and tool arguments.

A handle is ``<kind>_<hex>`` where ``<hex>`` is the start of a content hash, so the same content
always gets the same handle and no handle can spell a path. Video frames are addressed as
``vid_<hex>#<frame>``. Every handle is checked against :data:`HANDLE_PATTERN` before any file access.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Literal, get_args

from vitron.tools.errors import InvalidHandleError

MediaKind = Literal["img", "vid", "mask", "emb", "box"]
MEDIA_KINDS: tuple[str, ...] = get_args(MediaKind)

HASH_CHARS = 16
"""Hex characters of the content hash kept in a new handle (the pattern accepts 12 to 64)."""

HANDLE_PATTERN = re.compile(r"(img|vid|mask|emb|box)_([0-9a-f]{12,64})(?:#([0-9]{1,6}))?")
"""Matched whole (``fullmatch``): a handle with anything else in it (``/``, ``..``, spaces, upper
case, a trailing new line, non-ASCII digits such as ``#٣``) is rejected."""


@dataclass(frozen=True)
class Handle:
    """A parsed handle; ``frame`` is set only for ``vid_<hex>#<n>`` frame references."""

    kind: MediaKind
    digest: str
    frame: int | None = None

    @property
    def base(self) -> str:
        """The handle without a frame suffix: the name of the stored file."""
        return f"{self.kind}_{self.digest}"

    def __str__(self) -> str:
        return self.base if self.frame is None else f"{self.base}#{self.frame}"


def parse_handle(text: object, *, kinds: tuple[str, ...] | None = None) -> Handle:
    """Validate ``text`` as a handle, optionally of the given kinds, before anything touches disk."""
    if not isinstance(text, str):
        raise InvalidHandleError(f"a media handle must be a string, got {type(text).__name__}")
    match = HANDLE_PATTERN.fullmatch(text.strip())
    if match is None:
        shown = text if len(text) <= 80 else text[:77] + "..."
        raise InvalidHandleError(
            f"{shown!r} is not a media handle; handles look like img_3f2a9c1b7d04e5f6 "
            "(kinds: img, vid, mask, emb, box; video frames as vid_<hex>#<frame>)"
        )
    kind, digest, frame = match.groups()
    if frame is not None and kind != "vid":
        raise InvalidHandleError(f"{text!r}: only video handles take a #frame suffix")
    if kinds is not None and kind not in kinds:
        wanted = " or ".join(f"{k}_…" for k in kinds)
        raise InvalidHandleError(f"{text!r} is a {kind} handle, but this argument takes {wanted}")
    return Handle(kind=kind, digest=digest, frame=None if frame is None else int(frame))  # type: ignore[arg-type]


def is_handle(text: object) -> bool:
    """True when ``text`` is a well-formed handle of any kind."""
    return isinstance(text, str) and HANDLE_PATTERN.fullmatch(text) is not None


def handle_for(kind: MediaKind, hasher: hashlib._Hash) -> str:
    """Make a handle of ``kind`` from a finished content hasher."""
    if kind not in MEDIA_KINDS:
        raise ValueError(f"unknown media kind {kind!r}")
    return f"{kind}_{hasher.hexdigest()[:HASH_CHARS]}"


def find_handles(text: str) -> list[str]:
    """All handles mentioned in free text, in order, without duplicates."""
    found = re.findall(
        r"\b(?:img|vid|mask|emb|box)_[0-9a-f]{12,64}(?:#[0-9]{1,6})?\b", text, re.ASCII
    )
    return list(dict.fromkeys(found))
