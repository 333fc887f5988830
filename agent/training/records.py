"""The one dataset record format every training reader produces and every stage consumes.

A data set is a directory (the *root*) holding media files and one or more JSON-lines files; each
line is one :class:`Record`::

    {"id": "shapes-000017", "source": "shapes", "task": "segment_image",
     "media": [{"kind": "image", "path": "images/000017.png"}],
     "regions": [{"media": 0, "box": [0.1, 0.2, 0.5, 0.6]}],
     "messages": [
        {"role": "user", "text": "<image>\\nSegment the shape inside <region>."},
        {"role": "assistant", "text": "<Module>segment_image</Module><Instruction>the red circle</Instruction>[SEG]"}],
     "signals": [{"token": "[SEG]", "media": 0, "mask": "masks/000017_0.png"}],
     "meta": {"split": "train"}}

Conventions (checked by :meth:`Record.check`, which readers and the collator call):

- **Media** are paths relative to the root, POSIX separators, never absolute and never ``..``; a
  video is a video file (mp4, gif…) or a directory of frame images (sorted by name).
- **Placeholders.** Message texts name media with ``<image>`` / ``<video>`` and region sketches
  with ``<region>``. The ``<image>``/``<video>`` placeholders of all messages, in reading order,
  take the ``media`` entries in order (the kinds must agree); ``<region>`` placeholders take the
  ``regions`` entries in order.
- **Regions** are drawn on ``media[region.media]`` (an image): a normalised ``[x1, y1, x2, y2]``
  ``box`` (fractions of width and height, 0 ≤ x1 < x2 ≤ 1) and/or a ``mask`` sketch (a PNG,
  non-zero = inside, any size: it is resampled to the image). With both, the mask wins and the
  box is its bounding box.
- **Targets.** ``assistant`` messages are what the model learns to say; they are written in the
  invocation grammar of :mod:`vitron.agent.invocation` (``<Module>…</Module><Instruction>…
  </Instruction><Region>(x1, y1, x2, y2)</Region>[SEG]``, regions as 0–999 integers). Only
  assistant tokens carry labels.
- **Signal supervision.** ``signals`` is empty (no signal supervision) or holds exactly one entry
  per signal token of the assistant messages, in text order. An entry names its ``token`` and
  supervises it with a target ``mask`` PNG or ``mask_polygons`` (``[SEG]``: on
  ``media[entry.media]``; ``[TRK]``: on the first frame of that video) and/or a target ``caption`` (``[GEN]``/``[VID]``/``[EDIT]``: the text
  whose diffusion text-encoder states the signal should reproduce). ``target_media`` optionally
  names the wanted output (an edited image, a generated clip) for losses that need pixels.
- **Task.** ``task`` is the module (tool name of :data:`vitron.agent.invocation.MODULES`) the
  sample teaches; it is the label of cross-task synergy learning. ``None`` for samples without an
  invocation (captions, QA, grounding answered in text); they never enter the synergy loss.
- ``meta`` is free-form JSON kept with the record (split, ground-truth boxes for evaluation…).

This module imports no torch: writers of data sets (the shapes world) only need pydantic.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from vitron.agent.invocation import MODULES, SIGNAL_TOKENS

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
IMAGE_PLACEHOLDER, VIDEO_PLACEHOLDER, REGION_PLACEHOLDER = "<image>", "<video>", "<region>"
_MEDIA_RE = re.compile(r"<image>|<video>")
_SIGNAL_RE = re.compile("|".join(re.escape(t) for t in SIGNAL_TOKENS))
MASK_SIGNALS = ("[SEG]", "[TRK]")
"""Signal tokens supervised by a target mask through a frozen SAM / SAM 2 decoder."""
CAPTION_SIGNALS = ("[GEN]", "[VID]", "[EDIT]")
"""Signal tokens supervised by a caption through the frozen diffusion text encoder."""


class RecordError(ValueError):
    """A record that breaks the format; the message says which field and why."""


def check_relative_path(path: str) -> str:
    """``path`` if it is a relative POSIX path inside the root; otherwise :class:`RecordError`."""
    if not path or "\\" in path:
        raise RecordError(f"media path {path!r} must be a non-empty POSIX path")
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts:
        raise RecordError(f"media path {path!r} must be relative to the data set root, without ..")
    return path


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MediaRef(_Strict):
    """An image or video file (or a directory of frames, for videos) under the root."""

    kind: Literal["image", "video"]
    path: str
    fps: float | None = Field(default=None, gt=0)
    """Videos: frames per second, for timestamps in the prompt (read from the file when absent)."""

    @field_validator("path")
    @classmethod
    def _relative(cls, value: str) -> str:
        return check_relative_path(value)


class Region(_Strict):
    """A region sketch drawn on ``media[self.media]``: a normalised ``box`` and/or a ``mask`` PNG."""

    media: int = Field(ge=0)
    box: tuple[float, float, float, float] | None = None
    mask: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Region:
        if self.box is None and self.mask is None:
            raise RecordError("a region needs a box or a mask")
        if self.box is not None:
            check_box(self.box)
        if self.mask is not None:
            check_relative_path(self.mask)
        return self


class Message(_Strict):
    """One turn; ``text`` holds placeholders; assistant texts are training targets."""

    role: Literal["system", "user", "assistant", "tool"]
    text: str


class SignalTarget(_Strict):
    """Supervision of one signal token (see the module docstring)."""

    token: str
    media: int | None = Field(default=None, ge=0)
    """Index into ``media`` of the image (or video, first frame) the target ``mask`` is on."""
    mask: str | None = None
    mask_polygons: list[list[float]] | None = None
    """The target mask as polygons (flat ``[x1, y1, x2, y2, …]`` normalised to [0, 1]), for
    sources that store outlines (COCO, RefCOCO); used when ``mask`` is absent."""
    caption: str | None = None
    target_media: str | None = None

    @model_validator(mode="after")
    def _check(self) -> SignalTarget:
        if self.token not in SIGNAL_TOKENS:
            raise RecordError(f"signal token {self.token!r} is not one of {list(SIGNAL_TOKENS)}")
        if self.mask is not None:
            check_relative_path(self.mask)
        if self.mask_polygons is not None:
            for polygon in self.mask_polygons:
                if len(polygon) < 6 or len(polygon) % 2 or not all(0 <= v <= 1 for v in polygon):
                    raise RecordError(
                        "a mask polygon is at least 3 normalised (x, y) points in [0, 1]"
                    )
        if self.has_mask and self.media is None:
            raise RecordError("a target mask needs `media` (which image or video it is on)")
        if self.target_media is not None:
            check_relative_path(self.target_media)
        return self

    @property
    def has_mask(self) -> bool:
        return self.mask is not None or bool(self.mask_polygons)


class Record(_Strict):
    """One training sample; see the module docstring for the conventions."""

    id: str
    source: str = ""
    task: str | None = None
    media: list[MediaRef] = Field(default_factory=list)
    regions: list[Region] = Field(default_factory=list)
    messages: list[Message]
    signals: list[SignalTarget] = Field(default_factory=list)
    meta: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> Record:
        self.check()
        return self

    # ---- derived views ----

    def assistant_text(self) -> str:
        """All assistant texts joined in order (where the signal tokens are counted)."""
        return "\n".join(m.text for m in self.messages if m.role == "assistant")

    def signal_tokens(self) -> list[str]:
        """The signal tokens of the assistant messages, in text order."""
        return _SIGNAL_RE.findall(self.assistant_text())

    def check(self) -> None:
        """Raise :class:`RecordError` if placeholders, regions, signals or the task disagree."""
        if not any(m.role == "assistant" for m in self.messages):
            raise RecordError(f"record {self.id!r}: no assistant message to learn from")
        kinds = [
            "image" if t == IMAGE_PLACEHOLDER else "video"
            for m in self.messages
            for t in _MEDIA_RE.findall(m.text)
        ]
        given = [m.kind for m in self.media]
        if kinds != given:
            raise RecordError(
                f"record {self.id!r}: the texts' media placeholders are {kinds} but media are {given}"
            )
        regions = sum(m.text.count(REGION_PLACEHOLDER) for m in self.messages)
        if regions != len(self.regions):
            raise RecordError(
                f"record {self.id!r}: {regions} <region> placeholder(s) but {len(self.regions)} regions"
            )
        for k, region in enumerate(self.regions):
            if region.media >= len(self.media) or self.media[region.media].kind != "image":
                raise RecordError(f"record {self.id!r}: region {k} must name an image in media")
        for m in self.messages:
            if m.role != "assistant" and _SIGNAL_RE.search(m.text):
                raise RecordError(
                    f"record {self.id!r}: a {m.role} message holds a signal token; only "
                    "assistant replies may"
                )
        tokens = self.signal_tokens()
        if self.signals:
            have = [s.token for s in self.signals]
            if have != tokens:
                raise RecordError(
                    f"record {self.id!r}: signals {have} do not match the reply's signal tokens "
                    f"{tokens} (one entry per token, in text order)"
                )
            for k, target in enumerate(self.signals):
                if target.media is not None and target.media >= len(self.media):
                    raise RecordError(f"record {self.id!r}: signal {k} names media {target.media}")
                if target.has_mask and target.token not in MASK_SIGNALS:
                    raise RecordError(
                        f"record {self.id!r}: {target.token} is supervised by a caption, not a mask"
                    )
                if target.caption is not None and target.token not in CAPTION_SIGNALS:
                    raise RecordError(
                        f"record {self.id!r}: {target.token} is supervised by a mask, not a caption"
                    )
        if self.task is not None and self.task not in MODULES:
            raise RecordError(
                f"record {self.id!r}: task {self.task!r} is not a module; modules: {list(MODULES)}"
            )

    # ---- serialisation ----

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (defaults left out, so lines stay short)."""
        return self.model_dump(mode="json", exclude_defaults=True) | {
            "id": self.id,
            "messages": [m.model_dump(mode="json") for m in self.messages],
        }

    def to_line(self) -> str:
        return json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, data: Any) -> Record:
        """Parse and check one record; any problem becomes :class:`RecordError`."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            ident = data.get("id") if isinstance(data, dict) else None
            message = _short(exc)
            if not message.startswith("record "):
                message = f"record {ident!r}: {message}"
            raise RecordError(message) from None

    def media_paths(self) -> list[str]:
        """Every file the record names (media, region masks, target masks and media)."""
        paths = [m.path for m in self.media]
        paths += [r.mask for r in self.regions if r.mask]
        for s in self.signals:
            paths += [p for p in (s.mask, s.target_media) if p]
        return paths


def check_box(box: Sequence[float]) -> tuple[float, float, float, float]:
    """A normalised ``[x1, y1, x2, y2]`` with 0 <= x1 < x2 <= 1 (same for y); else RecordError."""
    if len(box) != 4:
        raise RecordError(f"a box needs 4 numbers, got {list(box)}")
    x1, y1, x2, y2 = (float(v) for v in box)
    if not (0.0 <= x1 < x2 <= 1.0 and 0.0 <= y1 < y2 <= 1.0):
        raise RecordError(f"box {list(box)} must satisfy 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1")
    return x1, y1, x2, y2


def _short(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:3]:
        message = str(error["msg"]).removeprefix("Value error, ")
        where = ".".join(str(p) for p in error["loc"])
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


# --------------------------------------------------------------------------------------------
# JSON lines


def write_jsonl(path: str | Path, records: Iterable[Record]) -> int:
    """Write records one per line (UTF-8); returns how many. The file appears only once every
    record is written: when ``records`` raises, no empty or partial file is left behind for a
    resumed pipeline to take for finished data."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    count = 0
    try:
        with partial.open("w", encoding="utf-8") as out:
            for record in records:
                out.write(record.to_line() + "\n")
                count += 1
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(path)
    return count


@dataclass(frozen=True)
class Skipped:
    """A sample that could not be used: where (file and line or item) and why."""

    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


def iter_jsonl(path: str | Path) -> Iterator[Record | Skipped]:
    """Records of a JSON-lines file; a bad line yields :class:`Skipped` naming ``path:line``.

    Blank lines are ignored. A missing file yields one :class:`Skipped`.
    """
    path = Path(path)
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        yield Skipped(str(path), f"cannot read: {exc.strerror or exc}")
        return
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield Record.from_json(json.loads(line))
            except (json.JSONDecodeError, RecordError) as exc:
                yield Skipped(f"{path}:{number}", str(exc))


def read_jsonl(path: str | Path) -> tuple[list[Record], list[Skipped]]:
    """All records of a JSON-lines file and what was skipped (each skip logged as a warning)."""
    records: list[Record] = []
    skipped: list[Skipped] = []
    for item in iter_jsonl(path):
        if isinstance(item, Skipped):
            logger.warning("skipped %s", item)
            skipped.append(item)
        else:
            records.append(item)
    return records, skipped
