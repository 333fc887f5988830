"""Server-side checks of what a person uploads, before anything is decoded or stored.

The workspace then enforces its own pixel and frame caps while decoding; both kinds of refusal
reach the chat as one readable sentence (:class:`UploadRefused`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".avi", ".mkv", ".m4v")
DEFAULT_MAX_UPLOAD_MB = 50.0


class UploadRefused(ValueError):
    """An upload the app will not take; the message says why, for the person who sent it."""


@dataclass(frozen=True)
class UploadLimits:
    """``max_bytes``: the largest file taken (Gradio's own, larger cap stops abuse earlier)."""

    max_bytes: int = int(DEFAULT_MAX_UPLOAD_MB * 1024 * 1024)

    @classmethod
    def from_megabytes(cls, megabytes: float) -> UploadLimits:
        if megabytes <= 0:
            raise ValueError(f"the upload limit must be positive, got {megabytes} MB")
        return cls(max_bytes=int(megabytes * 1024 * 1024))

    def check(self, path: str | Path, name: str | None = None) -> Path:
        """The path, if its size and type are acceptable; else :class:`UploadRefused`."""
        path = Path(path)
        name = name or path.name
        size = path.stat().st_size
        if size > self.max_bytes:
            raise UploadRefused(
                f"{name} is too large ({megabytes(size)}); the limit is {megabytes(self.max_bytes)}."
            )
        if path.suffix.lower() not in IMAGE_SUFFIXES + VIDEO_SUFFIXES:
            kinds = ", ".join(s.lstrip(".") for s in IMAGE_SUFFIXES + VIDEO_SUFFIXES)
            raise UploadRefused(f"{name} is not an image or video this app reads ({kinds}).")
        return path


def megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB" if size >= 102_400 else f"{size / 1024:.0f} KB"
