"""Profiles: which checkpoint, dtype and device every component uses, as TOML data.

A profile is a TOML file with a ``[components.<name>]`` table per component. Built-in profiles live
beside this module (``tiny``, ``vitron-7b``); any other ``.toml`` path works too (or a directory
holding a ``profile.toml``, such as a training run; ``./`` paths in it are relative to it), and
``extends = "<profile>"`` inherits every component of another profile, so a user's profile holds only
what it changes or adds.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from vitron.tools.errors import VitronToolError

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?i?B)?\s*$", re.IGNORECASE)
_UNITS = {
    "": 1,
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KIB": 2**10,
    "MIB": 2**20,
    "GIB": 2**30,
    "TIB": 2**40,
}


PROFILE_FILE = "profile.toml"
"""The profile file of a directory profile (``--profile RUN_DIR`` of a training run)."""


class ProfileError(VitronToolError):
    """A profile that does not exist or does not parse."""


@dataclass(frozen=True)
class ComponentSpec:
    """One component of a profile: the loader that builds it and where its weights are."""

    name: str
    loader: str
    checkpoint: str
    """``tiny`` (random weights from a small config), a hub id, or a local path."""
    profile: str
    dtype: str = "auto"
    device: str | None = None
    """Overrides the run's device for this component only."""
    options: dict[str, Any] = field(default_factory=dict)
    """Everything else in the table, passed to the loader (e.g. ``variant = "vit_h"``)."""
    serve: str | None = None
    """``"ray"``: the backends using this component run as Ray Serve deployments; ``"local"``: in
    the graph's process; ``None``: as the profile's ``serve`` says (see :mod:`vitron.tools.serving`)."""
    resources: dict[str, Any] = field(default_factory=dict)
    """What one serving replica declares: ``replicas``, ``num_cpus``, ``num_gpus``, ``memory``."""

    @property
    def is_tiny(self) -> bool:
        return self.checkpoint == "tiny"


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    components: dict[str, ComponentSpec]
    memory_budget: int | None = None
    """Bytes that loaded components may take together; ``None`` means no limit."""
    source: str = ""
    serve: str = "local"
    """Where the backends run unless a component says otherwise: ``local`` or ``ray``."""

    def component(self, name: str) -> ComponentSpec:
        try:
            return self.components[name]
        except KeyError:
            known = ", ".join(sorted(self.components)) or "none"
            raise ProfileError(
                f"profile {self.name!r} has no component {name!r} (it has: {known}); add a "
                f"[components.{name}] table to {self.source or 'the profile'}"
            ) from None


def builtin_profiles() -> list[str]:
    """Names of the profiles shipped with the package."""
    folder = resources.files(__name__)
    return sorted(
        p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml")
    )


def load_profile(name_or_path: str | Path) -> Profile:
    """Load a built-in profile by name, or any profile TOML file by path."""
    text, source = _read(str(name_or_path))
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"profile {source} is not valid TOML: {exc}") from exc
    # built-in profiles (the committed ``nano`` weights) resolve ``./`` paths beside this module
    builtin = source.endswith("(built-in)")
    data = _relative_to(
        Path(str(resources.files(__name__))) if builtin else Path(source).parent, data
    )
    name = data.get("name") or Path(source).stem
    base = load_profile(data["extends"]) if data.get("extends") else None
    components: dict[str, ComponentSpec] = {}
    if base is not None:  # inherited entries keep their settings but report this profile's name
        components = {k: replace(v, profile=name) for k, v in base.components.items()}
    for comp_name, table in (data.get("components") or {}).items():
        table = dict(table)
        inherited = components.get(comp_name)
        if inherited is not None and not {"loader", "checkpoint"} & set(table):
            # only serving settings: the inherited component, served differently
            if set(table) - SERVE_KEYS:
                raise ProfileError(
                    f"profile {source}: component {comp_name!r} changes "
                    f"{', '.join(sorted(set(table) - SERVE_KEYS))} without naming its loader and "
                    "checkpoint; repeat them, or change only serving settings ("
                    f"{', '.join(sorted(SERVE_KEYS))})"
                )
            components[comp_name] = replace(
                inherited,
                serve=_serve_mode(table.get("serve", inherited.serve), source),
                resources={**inherited.resources, **_resources(table)},
            )
            continue
        missing = [key for key in ("loader", "checkpoint") if key not in table]
        if missing:
            raise ProfileError(
                f"profile {source}: component {comp_name!r} lacks {', '.join(missing)}"
            )
        serve = _serve_mode(table.pop("serve", None), source)
        serving = _resources(table)
        for key in RESOURCE_KEYS:
            table.pop(key, None)
        components[comp_name] = ComponentSpec(
            name=comp_name,
            loader=table.pop("loader"),
            checkpoint=str(table.pop("checkpoint")),
            profile=name,
            dtype=table.pop("dtype", "auto"),
            device=table.pop("device", None),
            options=table,
            serve=serve,
            resources=serving,
        )
    budget = data.get("memory_budget")
    return Profile(
        name=name,
        description=data.get("description", base.description if base else ""),
        components=components,
        memory_budget=parse_size(budget) if budget is not None else (base and base.memory_budget),
        source=source,
        serve=_serve_mode(data.get("serve"), source) or (base.serve if base else "local"),
    )


SERVE_MODES = ("local", "ray")
RESOURCE_KEYS = frozenset({"replicas", "num_cpus", "num_gpus", "memory"})
SERVE_KEYS = RESOURCE_KEYS | {"serve"}


def _serve_mode(value: Any, source: str) -> str | None:
    if value is None or value in SERVE_MODES:
        return value
    raise ProfileError(f"profile {source}: serve = {value!r}; use one of {', '.join(SERVE_MODES)}")


def _resources(table: dict[str, Any]) -> dict[str, Any]:
    """A component's serving resources, checked: ``memory`` as bytes, the rest as numbers."""
    out: dict[str, Any] = {}
    for key in RESOURCE_KEYS & set(table):
        value = table[key]
        if key == "memory":
            value = parse_size(value)
        elif not isinstance(value, int | float) or value < 0 or (key == "replicas" and value < 1):
            raise ProfileError(f"{key} = {value!r} must be a non-negative number (replicas >= 1)")
        out[key] = value
    return out


def parse_size(value: int | str) -> int:
    """Bytes from ``1073741824``, ``"1GB"`` or ``"512 MiB"``."""
    if isinstance(value, int):
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise ProfileError(f"cannot read {value!r} as a size; write e.g. 512MB or 2GiB")
    number, unit = match.groups()
    return int(float(number) * _UNITS[(unit or "").upper()])


def _relative_to(folder: Path, data: dict[str, Any]) -> dict[str, Any]:
    """Strings starting ``./`` or ``../`` in ``extends`` and component tables made relative to the
    profile file's folder, so a profile written beside its weights (a training run's directory)
    loads from any working directory."""

    def fix(value: Any) -> Any:
        if isinstance(value, str) and value.startswith(("./", "../")):
            return str((folder / value).resolve())
        return value

    out = dict(data)
    if "extends" in out:
        out["extends"] = fix(out["extends"])
    out["components"] = {
        name: {key: fix(value) for key, value in dict(table).items()}
        for name, table in (data.get("components") or {}).items()
    }
    return out


def _read(name_or_path: str) -> tuple[str, str]:
    path = Path(name_or_path).expanduser()
    if path.is_dir() and (path / PROFILE_FILE).is_file():  # a directory holding its profile
        path = path / PROFILE_FILE
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise ProfileError(f"no profile file at {path}")
        return path.read_text(), str(path)
    resource = resources.files(__name__) / f"{name_or_path}.toml"
    if not resource.is_file():
        known = ", ".join(builtin_profiles())
        raise ProfileError(
            f"unknown profile {name_or_path!r}; built-in profiles: {known}, or a .toml path"
        )
    return resource.read_text(), f"{name_or_path}.toml (built-in)"


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def toml_value(value: Any) -> str:
    """``value`` as a TOML value, for writing derived profiles (``make nano``, the ablations)."""
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        keys = [k if _BARE_KEY.match(k) else json.dumps(k) for k in value]
        return (
            "{ "
            + ", ".join(f"{k} = {toml_value(v)}" for k, v in zip(keys, value.values(), strict=True))
            + " }"
        )
    raise TypeError(f"cannot write {type(value).__name__} to a profile")
