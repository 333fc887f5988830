"""Prompt texts (system prompt, tool cards) kept as files so they can be read and edited as text.

This package imports nothing of the project: tools and graphs read their texts from here.
"""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def load_prompt(name: str) -> str:
    """The text of ``<name>.md`` in this package (e.g. ``system``)."""
    return (resources.files(__name__) / f"{name}.md").read_text(encoding="utf-8").strip()


@cache
def tool_card(tool: str) -> str | None:
    """A backend's description for planners, from ``tools/<tool>.md``; ``None`` if it has none."""
    card = resources.files(__name__) / "tools" / f"{tool}.md"
    return card.read_text(encoding="utf-8").strip() if card.is_file() else None
