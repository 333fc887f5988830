"""Run settings of a Vitron graph, passed per run through LangGraph's ``context_schema``.

Every field has a default read from the environment (``VITRON_<FIELD>``), so Studio and the CLI need
no code to switch profile or workspace.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

from vitron.tools.defaults import DEFAULT_PROFILE, DEFAULT_WORKSPACE

if TYPE_CHECKING:
    from vitron.tools.backend import Services


def _env(name: str, default: str) -> str:
    return os.environ.get(f"VITRON_{name.upper()}", default)


@dataclass(kw_only=True)
class Context:
    """Settings of one run of the graph."""

    profile: str = field(
        default_factory=lambda: _env("profile", DEFAULT_PROFILE),
        metadata={"description": "model profile: tiny, nano, vitron-7b or a .toml path"},
    )
    workspace: str = field(
        default_factory=lambda: _env("workspace", DEFAULT_WORKSPACE),
        metadata={"description": "directory that stores media behind handles"},
    )
    device: str = field(
        default_factory=lambda: _env("device", "auto"),
        metadata={"description": "torch device for the models: auto, cpu, cuda, cuda:1, mps"},
    )
    memory_budget: str | None = field(
        default_factory=lambda: os.environ.get("VITRON_MEMORY_BUDGET") or None,
        metadata={"description": "bytes the loaded models may take (e.g. 12GB); profile default"},
    )
    step_limit: int = field(
        default_factory=lambda: int(_env("step_limit", "8")),
        metadata={"description": "model steps per user turn before the run stops"},
    )

    def __post_init__(self) -> None:
        if self.step_limit < 1:
            raise ValueError(f"step_limit must be at least 1, got {self.step_limit}")

    def services(self) -> Services:
        """The process-wide workspace and model registry these settings name."""
        from vitron.tools.backend import ServiceSettings, get_services

        return get_services(
            ServiceSettings(
                profile=self.profile,
                workspace=self.workspace,
                device=self.device,
                memory_budget=self.memory_budget,
            )
        )

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]
