"""Backends as LangChain tools: one registry of backends, one wrapper that turns each into a tool.

A backend is a function ``run(args, call) -> ToolOutput`` registered with :func:`backend`. The wrapper
(:class:`VitronTool`) validates arguments with the backend's pydantic model, resolves the thread's
workspace and the model registry, and turns every failure into an error ``ToolMessage`` a person
can read, so a bad call never ends a session. Adding a backend is one module with a ``@backend``
function plus one profile entry for any model it loads; modules outside the package register through
the ``vitron.backends`` entry-point group or by being imported.
"""

from __future__ import annotations

import contextvars
import hashlib
import importlib
import logging
import os
import pkgutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForToolRun
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, ToolException
from pydantic import BaseModel, ValidationError

from vitron.prompts import tool_card
from vitron.tools.defaults import DEFAULT_PROFILE, DEFAULT_WORKSPACE
from vitron.tools.errors import VitronToolError
from vitron.tools.profiles import load_profile, parse_size
from vitron.tools.registry import ModelRegistry, ProgressCallback
from vitron.tools.workspace import MediaInfo, Workspace

logger = logging.getLogger(__name__)

NOTHING_FOUND = "nothing_found"
"""``ToolMessage.artifact`` key (``True``) of a call that ran and found nothing (``ground`` with
no box above its threshold): not an error, but nothing an answer may present as a result."""


@dataclass
class ToolOutput:
    """What a backend returns: text for the planner, the media it made, and structured data."""

    content: str
    created: list[MediaInfo] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def artifact(self) -> dict[str, Any]:
        """The ``ToolMessage.artifact``: new handles with their registry entries, plus data."""
        return {"media": {m.handle: m.to_state() for m in self.created}, **self.data}


@dataclass
class CallContext:
    """Everything a backend needs besides its arguments, scoped to one call."""

    workspace: Workspace
    models: ModelRegistry
    progress: ProgressCallback
    notices: set[str] = field(default_factory=set)
    """Notes already given in this session (shared by its calls), so each is said once."""
    notes: list[str] = field(default_factory=list)
    """Notes for this call's result (the tool wrapper appends them to its content)."""
    signals_used: set[str] = field(default_factory=set)
    """Signal handles this call projected (absent projectors leave a signal unused)."""

    def note_once(self, key: str, text: str) -> None:
        """Add ``text`` to this call's result unless the session was told ``key`` already."""
        if key not in self.notices:
            self.notices.add(key)
            self.notes.append(text)


@dataclass(frozen=True)
class Backend:
    name: str
    args_schema: type[BaseModel]
    run: Callable[[Any, CallContext], ToolOutput]
    description: str
    components: tuple[str, ...] = ()
    """Profile components the backend loads; a profile lacking one cannot serve it."""


_BACKENDS: dict[str, Backend] = {}


def backend(
    name: str, args: type[BaseModel], components: tuple[str, ...] = ()
) -> Callable[[Callable[[Any, CallContext], ToolOutput]], Callable[[Any, CallContext], ToolOutput]]:
    """Register ``run`` as the backend ``name``; its tool card (or docstring) is its description."""

    def register(
        run: Callable[[Any, CallContext], ToolOutput],
    ) -> Callable[[Any, CallContext], ToolOutput]:
        description = tool_card(name) or (run.__doc__ or name).strip()
        _BACKENDS[name] = Backend(name, args, run, description, tuple(components))
        return run

    return register


def registered_backends() -> dict[str, Backend]:
    """Every backend: the built-in ones, entry-point plug-ins, and any module already imported."""
    _import_backend_modules()
    return dict(_BACKENDS)


@cache
def _import_backend_modules() -> None:
    import vitron.tools.backends as builtin

    for module in pkgutil.iter_modules(builtin.__path__):
        importlib.import_module(f"{builtin.__name__}.{module.name}")
    for entry in entry_points(group="vitron.backends"):
        try:
            entry.load()
        except Exception:  # a broken plug-in must not take the built-in tools down
            logger.exception("could not load backend plug-in %s", entry.value)


# --------------------------------------------------------------------------- services


@dataclass(frozen=True)
class ServiceSettings:
    """Where media live and which models serve: the part of a run's settings tools need."""

    profile: str = DEFAULT_PROFILE
    workspace: str = DEFAULT_WORKSPACE
    device: str = "auto"
    memory_budget: str | None = None

    @classmethod
    def from_env(cls) -> ServiceSettings:
        return cls(
            profile=os.environ.get("VITRON_PROFILE", cls.profile),
            workspace=os.environ.get("VITRON_WORKSPACE", cls.workspace),
            device=os.environ.get("VITRON_DEVICE", cls.device),
            memory_budget=os.environ.get("VITRON_MEMORY_BUDGET") or None,
        )


@dataclass
class Services:
    """The workspace root and the model registry shared by every tool call of a process."""

    workspace: Workspace
    models: ModelRegistry
    notices: dict[str, set[str]] = field(default_factory=dict)
    """Per thread (session): the keys of the notes its tool results already gave."""

    def notices_for(self, thread_id: str | None) -> set[str]:
        """The note keys already given on ``thread_id`` (``None``: the default namespace)."""
        return self.notices.setdefault(thread_id or "", set())


_services_cache: dict[ServiceSettings, Services] = {}


def get_services(settings: ServiceSettings | None = None) -> Services:
    """One :class:`Services` per distinct settings per process, so models load once."""
    settings = settings or ServiceSettings.from_env()
    if settings not in _services_cache:
        profile = load_profile(settings.profile)
        budget = parse_size(settings.memory_budget) if settings.memory_budget else None
        _services_cache[settings] = Services(
            workspace=Workspace(Path(settings.workspace)),
            models=ModelRegistry(profile, device=settings.device, memory_budget=budget),
        )
    return _services_cache[settings]


current_services: contextvars.ContextVar[Services | None] = contextvars.ContextVar(
    "vitron_services", default=None
)
"""Set by the graph's nodes so tools and planner use the run's services; unset means env defaults."""


current_seed: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "vitron_seed", default=None
)
"""The run's seed (``Context.seed``), set by the graph's tool nodes: a call of a tool with a
``seed`` argument that names none takes one derived from it (:func:`with_run_seed`); unset means
a fresh seed."""


@contextmanager
def serving(services: Services, seed: int | None = None) -> Iterator[None]:
    """Tool calls (and planner steps) inside use ``services`` and, where a call names no seed,
    ``seed``: how a graph run hands its ``Context`` to the tools."""
    services_token, seed_token = current_services.set(services), current_seed.set(seed)
    try:
        yield
    finally:
        current_seed.reset(seed_token)
        current_services.reset(services_token)


def with_run_seed(args: BaseModel) -> BaseModel:
    """``args`` with a seed drawn from the run's where the tool takes a seed and the call named
    none. The seed is a hash of the run's seed and the call's arguments: a run repeats its
    pixels, two different calls still differ, and the number looks like any drawn seed (the nano
    planner learnt tool results with 32-bit seeds in them; "seed 0" threw it off). The tool
    reports the seed it used either way."""
    run_seed = current_seed.get()
    if run_seed is None or "seed" not in type(args).model_fields or args.seed is not None:
        return args
    key = f"{run_seed}\n{type(args).__name__}\n{args.model_dump_json()}".encode()
    seed = int.from_bytes(hashlib.sha256(key).digest()[:4], "big")
    return args.model_copy(update={"seed": seed})


def resolve_services(
    *,
    fixed: Services | None = None,
    profile: str | None = None,
    outside: ServiceSettings | None = None,
) -> Services:
    """The services a tool call or planner step uses — decided here, and only here.

    ``fixed`` services win; inside a graph run, the run's (:data:`current_services`), unless
    ``profile`` names another profile, which then loads with the run's workspace and device;
    outside a run, those of ``outside`` (default: the ``VITRON_*`` environment).
    """
    if fixed is not None:
        return fixed
    current = current_services.get()
    if current is None:
        return get_services(outside or ServiceSettings.from_env())
    named = current.models.profile
    if profile is None or profile in (named.name, named.source):
        return current
    return get_services(
        ServiceSettings(
            profile=profile,
            workspace=str(current.workspace.root),
            device=str(current.models.device),
        )
    )


def resolve_thread(config: RunnableConfig | None = None, explicit: str | None = None) -> str | None:
    """The conversation thread: ``explicit``, else ``configurable.thread_id`` of ``config`` (or of
    the LangGraph run this is called in), else ``None`` (the workspace's default namespace)."""
    if explicit:
        return str(explicit)
    if config is None:
        try:
            from langgraph.config import get_config

            config = get_config()
        except (ImportError, RuntimeError):  # not inside a graph run
            return None
    thread = (config.get("configurable") or {}).get("thread_id")
    return str(thread) if thread else None


# --------------------------------------------------------------------------- the tool wrapper


class VitronTool(BaseTool):
    """A backend as a LangChain tool returning ``(content, artifact)``; failures become errors."""

    backend: Backend
    services: Services | None = None
    """Fixed services; when ``None`` the graph's run settings (or the environment) decide."""
    response_format: str = "content_and_artifact"
    handle_tool_error: bool = True

    def __init__(self, backend: Backend, services: Services | None = None, **kwargs: Any) -> None:
        super().__init__(
            name=backend.name,
            description=backend.description,
            args_schema=backend.args_schema,
            backend=backend,
            services=services,
            handle_validation_error=format_validation_error,
            **kwargs,
        )

    def _run(
        self,
        config: RunnableConfig,
        run_manager: CallbackManagerForToolRun | None = None,
        **kwargs: Any,
    ) -> tuple[str, dict[str, Any]]:
        services = resolve_services(fixed=self.services)
        thread = resolve_thread(config)
        call = CallContext(
            workspace=services.workspace.for_thread(thread),
            models=services.models,
            progress=stream_progress(self.name),
            notices=services.notices_for(thread),
        )
        args = with_run_seed(self.backend.args_schema.model_validate(kwargs))
        from vitron.tools.serving import remote_backend  # a served backend runs on Ray Serve

        remote = remote_backend(services.models.profile, self.backend)
        output = remote.run(args, call, thread) if remote else self._run_with_retry(args, call)
        if call.notes:
            output.content = f"{output.content} Note: {' '.join(call.notes)}"
            output.data.setdefault("notes", list(call.notes))
        return output.content, output.artifact()

    def _run_with_retry(self, args: BaseModel, call: CallContext) -> ToolOutput:
        return run_backend(self.backend, args, call)


def run_backend(backend: Backend, args: BaseModel, call: CallContext) -> ToolOutput:
    """Run ``backend`` in this process; on out-of-memory evict every model and try once more.
    Every failure becomes a :class:`ToolException` whose text a person understands (a Ray Serve
    replica runs backends through this too, so both paths fail the same way)."""
    import torch

    for attempt in (1, 2):
        try:
            return backend.run(args, call)
        except VitronToolError as exc:
            raise ToolException(str(exc)) from exc
        except torch.OutOfMemoryError as exc:
            dropped = call.models.evict()
            logger.warning(
                "%s ran out of memory (attempt %d); evicted %s", backend.name, attempt, dropped
            )
            if attempt == 2:
                raise ToolException(
                    f"{backend.name} ran out of memory even after freeing every other model; try "
                    "a smaller image or video, fewer steps, or a larger device"
                ) from exc
        except Exception as exc:
            logger.exception("backend %s failed", backend.name)
            raise ToolException(f"{backend.name} failed: {type(exc).__name__}: {exc}") from exc
    raise AssertionError("unreachable")


def build_tools(
    services: Services | None = None, names: list[str] | None = None
) -> list[VitronTool]:
    """Tools for the registered backends (all, or ``names``), e.g. to bind to any chat model."""
    backends = registered_backends()
    unknown = sorted(set(names or []) - set(backends))
    if unknown:
        raise ValueError(f"unknown backends {unknown}; known: {sorted(backends)}")
    return [VitronTool(backends[n], services) for n in (names or list(backends))]


def format_validation_error(error: ValidationError | Exception) -> str:
    """One line per bad argument, naming it and saying what is wrong, for planner and person."""
    if not isinstance(error, ValidationError):
        return f"invalid arguments: {error}"
    lines = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "arguments"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "is not an argument of this tool"
        lines.append(f"{where}: {message}")
    return f"invalid arguments for {error.title}: " + "; ".join(lines)


def stream_progress(source: str, key: str = "tool") -> ProgressCallback:
    """Progress events of ``source`` (a tool, or ``node`` for the planner), sent to LangGraph's
    custom stream when running inside a graph, and logged at debug level either way."""
    try:
        from langgraph.config import get_stream_writer

        writer = get_stream_writer()
    except Exception:  # outside a graph run there is no stream to write to
        writer = None

    def report(event: dict[str, Any]) -> None:
        logger.debug("%s: %s", source, event)
        if writer is not None:
            writer({key: source, **event})

    return report
