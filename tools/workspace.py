"""The content-addressed media store behind every handle.

Layout: ``<root>/<namespace>/<kind>/<handle>.<ext>`` plus ``<handle>.meta.json`` holding its
:class:`MediaInfo`. A namespace is one conversation thread, so a thread can only name its own media;
distinct thread ids always get distinct directories (:func:`namespace_dir`).
Files are written under ``<root>/.tmp/`` with the writing process's host and pid in the name, then
renamed into place, so a crash never leaves half a file under a handle; temporary files of processes
that are gone are swept whenever a workspace is opened (:func:`sweep_temp_files`). Nothing here is
ever unpickled: images and masks are PNG, videos MP4, embeddings safetensors, boxes JSON.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from PIL import Image

from vitron.tools.errors import MediaError, MediaTooLargeError, UnknownHandleError
from vitron.tools.handles import Handle, MediaKind, handle_for, parse_handle
from vitron.tools.media import (
    MediaLimits,
    decode_image,
    encode_png,
    iter_video_frames,
    looks_like_video,
    probe_video,
    write_video,
)

if TYPE_CHECKING:
    import torch

EXTENSIONS: dict[str, str] = {
    "img": "png",
    "mask": "png",
    "vid": "mp4",
    "emb": "safetensors",
    "box": "json",
}
TEMP_DIR = ".tmp"
"""Folder under the root where files are written before being renamed into place."""
STALE_TEMP_SECONDS = 24 * 3600
"""Age after which a temporary file is swept even when its writer cannot be checked (another host)."""
_SAFE_NAMESPACE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
"""Thread ids used as directory names as they are: lower case only, so two ids never share a
directory on a case-insensitive file system."""
HASHED_NAMESPACE = re.compile(r"t_[0-9a-f]{24}")
"""Directory names of every other thread id. An id of this very form is hashed too, so no thread
can name another's directory."""


DERIVED = "derived"
"""Key set to ``True`` in ``MediaInfo.extra`` of media that only show other media (an overlay of
masks or boxes, a video of a tracked mask), not content of their own: ``retrieve`` leaves them out
of a conversation-wide ranking."""


@dataclass
class MediaInfo:
    """What the graph state keeps about one handle: small, JSON-clean, never the bytes."""

    handle: str
    kind: MediaKind
    source: str = "user"
    """``user`` for uploads, otherwise the tool that made it."""
    inputs: list[str] = field(default_factory=list)
    """Handles this item was made from."""
    width: int | None = None
    height: int | None = None
    frames: int | None = None
    fps: float | None = None
    shape: list[int] | None = None
    """Tensor shape, for embeddings."""
    label: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_state(self) -> dict[str, Any]:
        """The registry entry stored in graph state (``None`` fields dropped to keep it small)."""
        data = asdict(self)
        data.pop("handle")
        return {k: v for k, v in data.items() if v not in (None, [], {})}

    def summary(self) -> str:
        """A few words for a planner: ``img_… 640x480 image``."""
        if self.kind == "vid":
            frames = f"{self.frames} frame{'s' * (self.frames != 1)}"
            return f"{self.handle} {self.width}x{self.height} video, {frames} at {self.fps:g} fps"
        if self.kind in ("img", "mask"):
            noun = "image" if self.kind == "img" else "mask"
            return f"{self.handle} {self.width}x{self.height} {noun}"
        if self.kind == "emb":
            return f"{self.handle} embedding of shape {self.shape}"
        return f"{self.handle} {self.label or 'boxes'}"


@dataclass(frozen=True)
class Video:
    """Frames of a decoded video: ``frames`` is T x H x W x 3 uint8 RGB."""

    frames: np.ndarray
    fps: float


class Workspace:
    """A directory of media addressed by handle, scoped to one namespace (conversation thread)."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        namespace: str = "default",
        limits: MediaLimits | None = None,
    ) -> None:
        self.root = Path(root).expanduser().resolve()
        self.namespace = namespace
        self.limits = limits or MediaLimits()
        self.dir = self.root / namespace_dir(namespace)
        sweep_temp_files(self.root)

    def for_thread(self, thread_id: str | None) -> Workspace:
        """The same store scoped to another conversation thread."""
        return Workspace(self.root, thread_id or "default", self.limits)

    # ----------------------------------------------------------------- lookup

    def path(self, handle: str | Handle) -> Path:
        """The file behind a handle; raises if the handle is malformed or names nothing here."""
        parsed = handle if isinstance(handle, Handle) else parse_handle(handle)
        path = self._file(parsed.kind, parsed.base)
        if not path.is_file():
            raise UnknownHandleError(
                f"{parsed.base} is not in this conversation's workspace; use a handle from the "
                "conversation (attached by the user or returned by a tool)"
            )
        return path

    def exists(self, handle: str) -> bool:
        try:
            self.path(handle)
        except (UnknownHandleError, ValueError):
            return False
        return True

    def describe(self, handle: str, *, kinds: tuple[str, ...] | None = None) -> MediaInfo:
        """The stored :class:`MediaInfo` of a handle, checking its kind when ``kinds`` is given."""
        parsed = parse_handle(handle, kinds=kinds)
        self.path(parsed)
        return self._read_meta(parsed.kind, parsed.base)

    def handles(self, kind: MediaKind | None = None) -> list[str]:
        """Every handle stored in this namespace (optionally of one kind), oldest first."""
        kinds = [kind] if kind else list(EXTENSIONS)
        found: list[Path] = []
        for k in kinds:
            folder = self.dir / k
            if folder.is_dir():
                found.extend(folder.glob(f"{k}_*.{EXTENSIONS[k]}"))
        found.sort(key=lambda p: p.stat().st_mtime_ns)
        return [p.name.split(".")[0] for p in found]

    # ----------------------------------------------------------------- images and masks

    def put_image(self, image: Image.Image | np.ndarray, **info: Any) -> MediaInfo:
        """Store an RGB image; ``info`` fills :class:`MediaInfo` fields such as ``source``."""
        array = _as_rgb_array(image)
        self.limits.check_image_size(array.shape[1], array.shape[0])
        return self._put_png("img", array, info)

    def get_image(self, handle: str) -> Image.Image:
        """An image handle, or a video frame ``vid_<hex>#<n>``, as an RGB PIL image."""
        parsed = parse_handle(handle, kinds=("img", "vid"))
        if parsed.kind == "vid":
            return Image.fromarray(self.get_frame(str(parsed)))
        return self._decode_stored(parsed, "image")

    def put_mask(self, mask: np.ndarray, **info: Any) -> MediaInfo:
        """Store a binary H x W mask as a 0/255 PNG."""
        if mask.ndim != 2:
            raise MediaError(f"a mask must be 2-D (H x W), got shape {tuple(mask.shape)}")
        return self._put_png("mask", (np.asarray(mask) > 0).astype(np.uint8) * 255, info)

    def get_mask(self, handle: str) -> np.ndarray:
        """A mask handle as an H x W bool array."""
        parsed = parse_handle(handle, kinds=("mask",))
        return np.asarray(self._decode_stored(parsed, "mask"))[..., 0] > 127

    # ----------------------------------------------------------------- videos

    def put_video(
        self, frames: Iterable[np.ndarray], fps: float, *, lossless: bool = False, **info: Any
    ) -> MediaInfo:
        """Encode frames (streamed, never all held) to MP4 and store it under its content hash.

        The hash covers the decoded-to-be pixels as given, so equal frames give equal handles.
        """
        if fps <= 0:
            raise MediaError(f"fps must be positive, got {fps}")
        # Lossy and lossless encodings of the same frames are different files, so different handles.
        hasher = hashlib.sha256(b"vid-lossless" if lossless else b"vid")

        def hashed() -> Iterator[np.ndarray]:
            for index, frame in enumerate(frames):
                frame = np.ascontiguousarray(frame, dtype=np.uint8)
                if index == 0:
                    self.limits.check_frame_size(frame.shape[1], frame.shape[0])
                self.limits.check_frame_count(index + 1)
                hasher.update(str(frame.shape).encode())
                hasher.update(frame.tobytes())
                yield frame

        tmp = self._temp_file(".mp4")
        try:
            count, width, height = write_video(hashed(), tmp, fps, lossless=lossless)
            handle = handle_for("vid", hasher)
            meta = MediaInfo(
                handle=handle,
                kind="vid",
                width=width,
                height=height,
                frames=count,
                fps=float(fps),
                **info,
            )
            meta = self._commit(tmp, self._file("vid", handle), meta)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return meta

    def iter_frames(self, handle: str) -> Iterator[np.ndarray]:
        """Stream a stored video's frames as H x W x 3 uint8, cropped to the stored size."""
        meta = self.describe(handle, kinds=("vid",))
        name = f"stored video {meta.handle}"
        for frame in iter_video_frames(self.path(meta.handle), self.limits, name=name):
            yield frame[: meta.height, : meta.width]

    def get_video(self, handle: str) -> Video:
        """A whole video in memory (use :meth:`iter_frames` for long ones)."""
        meta = self.describe(handle, kinds=("vid",))
        return Video(frames=np.stack(list(self.iter_frames(meta.handle))), fps=meta.fps or 0.0)

    def get_frame(self, handle: str) -> np.ndarray:
        """One frame, ``vid_<hex>#<n>`` (frame 0 when no suffix is given)."""
        parsed = parse_handle(handle, kinds=("vid",))
        meta = self.describe(parsed.base)
        index = parsed.frame or 0
        if meta.frames is not None and index >= meta.frames:
            raise MediaError(
                f"{parsed.base} has {meta.frames} frames; frame {index} does not exist"
            )
        for i, frame in enumerate(self.iter_frames(parsed.base)):
            if i == index:
                return frame
        raise MediaError(f"{parsed.base} ended before frame {index}")

    # ----------------------------------------------------------------- embeddings and boxes

    def put_embedding(self, tensor: torch.Tensor, **info: Any) -> MediaInfo:
        """Store a tensor as safetensors; ``info['extra']`` may say which space it lives in."""
        from safetensors.torch import save_file

        tensor = tensor.detach().to("cpu").contiguous()
        handle = embedding_handle(tensor)
        meta = MediaInfo(handle=handle, kind="emb", shape=list(tensor.shape), **info)
        tmp = self._temp_file(".safetensors")
        try:
            save_file({"embedding": tensor}, tmp)
            meta = self._commit(tmp, self._file("emb", handle), meta)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return meta

    def get_embedding(self, handle: str) -> torch.Tensor:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        parsed = parse_handle(handle, kinds=("emb",))
        path = self.path(parsed)
        try:
            return load_file(str(path))["embedding"]
        except (SafetensorError, OSError, ValueError, KeyError) as exc:
            raise MediaError(_damaged(f"stored embedding {parsed.base}", exc, path)) from exc

    def put_boxes(
        self, boxes: list[list[float]], labels: list[str], scores: list[float], **info: Any
    ) -> MediaInfo:
        """Store detections: boxes as normalised ``[x1, y1, x2, y2]`` with a label and score each."""
        if not (len(boxes) == len(labels) == len(scores)):
            raise ValueError("boxes, labels and scores must have the same length")
        payload = json.dumps({"boxes": boxes, "labels": labels, "scores": scores}, sort_keys=True)
        handle = boxes_handle(payload.encode())
        meta = MediaInfo(handle=handle, kind="box", **info)
        return self._write_bytes("box", handle, payload.encode(), meta)

    def get_boxes(self, handle: str) -> dict[str, list[Any]]:
        parsed = parse_handle(handle, kinds=("box",))
        path = self.path(parsed)
        try:
            boxes = json.loads(path.read_bytes())
            if not isinstance(boxes, dict) or not {"boxes", "labels", "scores"} <= set(boxes):
                raise ValueError("not a detections record")
        except (OSError, ValueError) as exc:
            raise MediaError(_damaged(f"stored detections {parsed.base}", exc, path)) from exc
        return boxes

    # ----------------------------------------------------------------- import

    def import_file(
        self, path: str | os.PathLike[str], kind: Literal["video"] | None = None, **info: Any
    ) -> MediaInfo:
        """Bring a user's image or video file into the workspace: its kind sniffed from its bytes,
        or ``kind="video"`` to read it with FFmpeg whatever its first bytes say (a file someone
        called a video that will not read is then reported as a video, not as an image)."""
        path = Path(path).expanduser()
        if not path.is_file():
            raise MediaError(f"no such file: {path}")
        with path.open("rb") as fp:
            head = fp.read(16)
        if kind == "video" or looks_like_video(head):
            return self.put_video(
                iter_video_frames(path, self.limits), probe_video(path).fps or 24.0, **info
            )
        return self.put_image(decode_image(path, self.limits), **info)

    def import_bytes(self, data: bytes, **info: Any) -> MediaInfo:
        """Like :meth:`import_file` for bytes received over the wire (e.g. a base64 content block)."""
        if looks_like_video(data[:16]):
            tmp = self._temp_file(".upload")
            name = "the attached video"  # not the temporary file's name
            try:
                Path(tmp).write_bytes(data)
                frames = iter_video_frames(tmp, self.limits, name=name)
                return self.put_video(frames, probe_video(tmp, name=name).fps or 24.0, **info)
            finally:
                Path(tmp).unlink(missing_ok=True)
        return self.put_image(decode_image(data, self.limits), **info)

    # ----------------------------------------------------------------- internals

    def _folder(self, kind: str) -> Path:
        folder = self.dir / kind
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _file(self, kind: str, base: str) -> Path:
        return self.dir / kind / f"{base}.{EXTENSIONS[kind]}"

    def _meta_file(self, kind: str, base: str) -> Path:
        return self.dir / kind / f"{base}.meta.json"

    def _decode_stored(self, parsed: Handle, what: str) -> Image.Image:
        """A stored PNG as RGB; a file that no longer decodes is reported as damaged."""
        path = self.path(parsed)
        try:
            return decode_image(path, self.limits, name=parsed.base)
        except MediaTooLargeError:
            raise
        except MediaError as exc:
            detail = str(exc.__cause__ or exc)
            raise MediaError(_damaged(f"stored {what} {parsed.base}", detail, path)) from exc

    def _read_meta(self, kind: str, base: str) -> MediaInfo:
        """The stored :class:`MediaInfo` of a handle, or a clear error when the record is damaged."""
        path = self._meta_file(kind, base)
        try:
            data = json.loads(path.read_bytes())
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            data.pop("handle", None)
            meta = MediaInfo(handle=base, **data)
            if meta.kind != kind:
                raise ValueError(f"it records kind {meta.kind!r}")
        except (OSError, ValueError, TypeError) as exc:
            raise MediaError(_damaged(f"the stored record of {base}", exc, path)) from exc
        return meta

    def _temp_file(self, suffix: str) -> str:
        """A new empty temporary file named after this host and process (see the module doc)."""
        folder = self.root / TEMP_DIR
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=_temp_prefix(), suffix=suffix)
        os.close(fd)
        return tmp

    def _put_png(self, kind: MediaKind, array: np.ndarray, info: dict[str, Any]) -> MediaInfo:
        handle = pixels_handle(kind, array)
        meta = MediaInfo(
            handle=handle, kind=kind, width=array.shape[1], height=array.shape[0], **info
        )
        return self._write_bytes(kind, handle, encode_png(array), meta)

    def _write_bytes(self, kind: str, handle: str, data: bytes, meta: MediaInfo) -> MediaInfo:
        tmp = self._temp_file(f".{EXTENSIONS[kind]}")
        try:
            Path(tmp).write_bytes(data)
            return self._commit(tmp, self._file(kind, handle), meta)
        finally:
            Path(tmp).unlink(missing_ok=True)

    def _commit(self, tmp: str, target: Path, meta: MediaInfo) -> MediaInfo:
        """Rename the finished temporary file into place, metadata first so lookups never miss it.

        Returns what is stored under the handle. When the same content is already stored, its
        first record stands: content addressing makes a tool's output that equals the user's
        photo *be* that photo, and it stays the user's (it is not re-labelled as the tool's).
        """
        self._folder(meta.kind)
        meta_path = self._meta_file(meta.kind, meta.handle)
        if target.exists() and meta_path.exists():
            try:
                stored = self._read_meta(meta.kind, meta.handle)
            except MediaError:
                stored = None  # a damaged record is rewritten from this write below
            if stored is not None:
                os.utime(target)  # refresh its age for listing order
                return stored
        meta_tmp = self._temp_file(".meta.json")
        try:
            Path(meta_tmp).write_text(json.dumps(meta.to_state()))
            os.replace(meta_tmp, meta_path)
        finally:
            Path(meta_tmp).unlink(missing_ok=True)
        os.replace(tmp, target)
        return meta

    def remove_namespace(self) -> None:
        """Delete everything this thread stored (used when a conversation is deleted)."""
        shutil.rmtree(self.dir, ignore_errors=True)


def pixels_handle(kind: MediaKind, array: np.ndarray) -> str:
    """The handle of an image (H x W x 3) or mask (H x W, 0/255) array: a hash of its pixels."""
    hasher = hashlib.sha256(kind.encode() + str(array.shape).encode())
    hasher.update(np.ascontiguousarray(array).tobytes())
    return handle_for(kind, hasher)


def embedding_handle(tensor: torch.Tensor) -> str:
    """The handle of a CPU tensor: a hash of its dtype, shape and bytes."""
    import torch

    hasher = hashlib.sha256(b"emb" + str(tensor.dtype).encode() + str(tuple(tensor.shape)).encode())
    hasher.update(
        tensor.contiguous().view(torch.uint8).numpy().tobytes() if tensor.numel() else b""
    )
    return handle_for("emb", hasher)


def boxes_handle(payload: bytes) -> str:
    """The handle of a stored detections record (its exact JSON bytes)."""
    return handle_for("box", hashlib.sha256(b"box" + payload))


def namespace_dir(namespace: str) -> str:
    """A directory name for a thread id: itself when safe (lower case letters, digits, ``_.-``,
    not starting with a dot), otherwise ``t_`` and 24 hex characters of its hash. Ids that look like
    such a hashed name are hashed too, so distinct ids never share a directory."""
    if _SAFE_NAMESPACE.fullmatch(namespace) and not HASHED_NAMESPACE.fullmatch(namespace):
        return namespace
    return "t_" + hashlib.sha256(namespace.encode()).hexdigest()[:24]


def is_namespace_dir(name: str) -> bool:
    """Whether ``name`` is a directory name :func:`namespace_dir` can produce."""
    return bool(_SAFE_NAMESPACE.fullmatch(name) or HASHED_NAMESPACE.fullmatch(name))


def _temp_prefix() -> str:
    return f"{_host()}.{os.getpid()}."


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"


def temp_file_is_stale(path: Path, now: float | None = None) -> bool:
    """A temporary file is stale when the process that wrote it is gone (same host), or when it
    is older than :data:`STALE_TEMP_SECONDS` (a writer on another host cannot be checked)."""
    try:
        age = (now or time.time()) - path.stat().st_mtime
    except FileNotFoundError:
        return False
    host, _, rest = path.name.partition(".")
    pid_text = rest.partition(".")[0]
    if host == _host() and pid_text.isascii() and pid_text.isdigit():
        pid = int(pid_text)
        if pid == os.getpid():
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, owned by someone else
            return False
        return False
    return age > STALE_TEMP_SECONDS


def sweep_temp_files(root: Path) -> list[Path]:
    """Remove stale temporary files (:func:`temp_file_is_stale`) under ``root``; returns them."""
    folder = root / TEMP_DIR
    try:
        entries = list(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    removed = []
    for path in entries:
        if path.is_file() and temp_file_is_stale(path):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _damaged(what: str, exc: BaseException | str, path: Path) -> str:
    detail = str(exc).replace(str(path), path.name) or type(exc).__name__
    return f"{what} is damaged and cannot be read ({detail}); `vitron doctor --repair` checks the workspace"


def _as_rgb_array(image: Image.Image | np.ndarray) -> np.ndarray:
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise MediaError(f"an image must be H x W x 3, got shape {tuple(array.shape)}")
    if array.dtype != np.uint8:
        raise MediaError(f"image pixels must be uint8, got {array.dtype}")
    return np.ascontiguousarray(array[..., :3])
