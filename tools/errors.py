"""Errors a person can act on.

Every error a backend raises on purpose derives from :class:`VitronToolError`; the tool wrapper turns
it into an error ``ToolMessage`` whose text is the exception message, so messages here are written
for the planner and the person reading the transcript, not for a stack trace.
"""

from __future__ import annotations


class VitronToolError(Exception):
    """A tool call that cannot be carried out, with a message that says why."""


class InvalidHandleError(VitronToolError, ValueError):
    """A string that is not a well-formed media handle (checked before any file access)."""


class UnknownHandleError(VitronToolError, KeyError):
    """A well-formed handle that names nothing in this workspace namespace."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class MediaError(VitronToolError, ValueError):
    """Media that cannot be read or is outside the configured caps."""


class MediaTooLargeError(MediaError):
    """Media above a pixel or frame cap (readable, but refused before decoding)."""


class RegionError(VitronToolError, ValueError):
    """A region or point outside the referenced media, or inverted."""


class MissingCheckpointError(VitronToolError, FileNotFoundError):
    """A profile names a checkpoint that cannot be found; the message names profile and file."""
