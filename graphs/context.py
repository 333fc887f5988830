"""Run settings of a Vitron graph, passed per run through LangGraph's ``context_schema``.

Every field has a default read from the environment (``VITRON_<FIELD>``), so Studio and the CLI need
no code to switch profile or workspace. The JSON schema (Studio's settings form) shows each field's
effective default — the environment's value when set — computed when the schema is asked for.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from pydantic import ConfigDict

from vitron.tools.defaults import DEFAULT_PROFILE, DEFAULT_WORKSPACE, MAX_SEED

if TYPE_CHECKING:
    from vitron.tools.backend import Services


def _env(name: str, default: str) -> str:
    return os.environ.get(f"VITRON_{name.upper()}", default)


def _names(text: str) -> list[str]:
    """Tool names from a comma-separated list; ``none`` (or nothing) is the empty list."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    return [] if names in ([], ["none"]) else names


DEFAULT_APPROVE_BEFORE = ("edit_image", "edit_video", "generate_video", "image_to_video")
"""Tools that wait for approval unless a run says otherwise: edits change the user's pictures, and
video generation is the slowest work there is (see :mod:`vitron.graphs.approval`)."""


def _optional_int(name: str) -> int | None:
    value = os.environ.get(f"VITRON_{name.upper()}", "").strip()
    return int(value) if value else None


def _approve_before_from_env() -> list[str]:
    value = os.environ.get("VITRON_APPROVE_BEFORE")
    return list(DEFAULT_APPROVE_BEFORE) if value is None else _names(value)


def _effective_defaults(schema: dict[str, Any]) -> None:
    """Fill each property's ``default`` with the value a run without it gets (pydantic leaves
    ``default_factory`` fields without one, so Studio showed them as null)."""
    for item in fields(Context):
        prop = schema.get("properties", {}).get(item.name)
        if prop is None or not callable(item.default_factory):
            continue
        try:
            prop["default"] = item.default_factory()
        except ValueError:  # e.g. VITRON_STEP_LIMIT is not a number; the run will say so
            continue


@dataclass(kw_only=True)
class Context:
    """Settings of one run of the graph (each default comes from a VITRON_* variable)."""

    __pydantic_config__ = ConfigDict(json_schema_extra=_effective_defaults)  # type: ignore[misc]

    profile: str = field(
        default_factory=lambda: _env("profile", DEFAULT_PROFILE),
        metadata={
            "description": "model profile: nano, tiny, vitron-7b or a .toml path; default from VITRON_PROFILE, else nano"
        },
    )
    workspace: str = field(
        default_factory=lambda: _env("workspace", DEFAULT_WORKSPACE),
        metadata={
            "description": "directory that stores media behind handles (and the CLI's conversations); default "
            "from VITRON_WORKSPACE"
        },
    )
    device: str = field(
        default_factory=lambda: _env("device", "auto"),
        metadata={
            "description": "torch device for the models: auto, cpu, cuda, cuda:1, mps; default from "
            "VITRON_DEVICE"
        },
    )
    memory_budget: str | None = field(
        default_factory=lambda: os.environ.get("VITRON_MEMORY_BUDGET") or None,
        metadata={
            "description": "bytes the loaded models may take (e.g. 12GB); default from VITRON_MEMORY_BUDGET, "
            "else the profile's"
        },
    )
    step_limit: int = field(
        default_factory=lambda: int(_env("step_limit", "8")),
        metadata={
            "description": "model steps per user turn before the run stops; default from VITRON_STEP_LIMIT"
        },
    )

    seed: int | None = field(
        default_factory=lambda: _optional_int("seed"),
        metadata={
            "description": "seed of the generation and editing tools when a call names none, so a "
            "run repeats its pixels (the same seed, arguments and profile give the same output); "
            "default from VITRON_SEED, else a fresh seed per call"
        },
    )

    approve_before: list[str] = field(
        default_factory=_approve_before_from_env,
        metadata={
            "description": "tools that pause for a person's approval before they run (approve, edit the "
            "arguments, or reject); default from VITRON_APPROVE_BEFORE (comma-separated, 'none' for "
            "none), else edits and video generation. Only runs with a checkpointer pause."
        },
    )

    def __post_init__(self) -> None:
        if isinstance(
            self.approve_before, str
        ):  # e.g. a form or a CLI flag: "edit_image,edit_video"
            self.approve_before = _names(self.approve_before)
        if self.seed is not None and not 0 <= self.seed <= MAX_SEED:
            raise ValueError(f"seed must be between 0 and {MAX_SEED}, got {self.seed}")
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
