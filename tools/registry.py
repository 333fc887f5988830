"""The model registry: lazy, cached, memory-budgeted access to every profile component.

Models never load at import and never live in graph state. A component is loaded on first use by
the loader its profile entry names, kept for later calls, and evicted least-recently-used first
when the profile's memory budget would be exceeded. Loaders register themselves by name with
:func:`component_loader`, so a new backend adds a loader in its own module and one profile entry.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from vitron.tools.errors import VitronToolError
from vitron.tools.profiles import ComponentSpec, Profile

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[dict[str, Any]], None]
"""Receives progress events such as ``{"event": "load", "component": "sam", "status": "done"}``."""


class LoadContext(Protocol):
    """What a loader gets besides its spec."""

    device: torch.device
    dtype: torch.dtype
    progress: ProgressCallback


@dataclass(frozen=True)
class _LoadContext:
    device: torch.device
    dtype: torch.dtype
    progress: ProgressCallback


Loader = Callable[[ComponentSpec, LoadContext], Any]
_LOADERS: dict[str, Loader] = {}


def component_loader(name: str) -> Callable[[Loader], Loader]:
    """Register a loader under the name a profile's ``loader = "…"`` refers to."""

    def register(fn: Loader) -> Loader:
        _LOADERS[name] = fn
        return fn

    return register


def find_loader(spec: ComponentSpec) -> Loader:
    """The loader a profile entry names: a registered name, a built-in model module, or
    ``"package.module:function"`` for components defined outside the package."""
    name = spec.loader
    if name not in _LOADERS:
        module_name, _, attr = name.partition(":")
        if not attr:
            module_name = f"vitron.tools.models.{name}"
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            module = None
        if attr and module is not None and callable(getattr(module, attr, None)):
            return getattr(module, attr)
    if name not in _LOADERS:
        raise VitronToolError(
            f"profile {spec.profile!r} asks for loader {name!r} for component {spec.name!r}, but "
            f"there is no such loader (registered: {', '.join(sorted(_LOADERS)) or 'none'}; "
            "an outside loader is written 'package.module:function')"
        )
    return _LOADERS[name]


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``auto`` (or ``None``) picks CUDA when present, then Apple MPS, then CPU. A device torch
    cannot name, or a GPU this machine does not have, is a :class:`VitronToolError` up front, not
    a driver error at the first model load."""
    import torch

    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps and mps.is_available())
    if device is None or str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if has_mps else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise VitronToolError(
            f"unknown device {str(device)!r}: use auto, cpu, cuda, cuda:N or mps"
        ) from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise VitronToolError(
            f"device {str(device)!r}: torch finds no CUDA GPU here; use cpu or auto"
        )
    if resolved.type == "cuda" and (resolved.index or 0) >= torch.cuda.device_count():
        raise VitronToolError(
            f"device {str(device)!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s)"
        )
    if resolved.type == "mps" and not has_mps:
        raise VitronToolError(
            f"device {str(device)!r}: Apple MPS is not available here; use cpu or auto"
        )
    return resolved


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """``auto`` is fp16 on a GPU and fp32 elsewhere (CPU half precision is slow and lossy)."""
    import torch

    if dtype == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    try:
        value = getattr(torch, dtype)
    except AttributeError:
        value = None
    if not isinstance(value, torch.dtype):
        raise VitronToolError(f"unknown dtype {dtype!r}; use auto, float32, float16 or bfloat16")
    return value


def nbytes_of(obj: Any) -> int:
    """Memory a loaded component holds: its ``nbytes`` if it says, else its torch parameters."""
    import torch

    if hasattr(obj, "nbytes"):
        return int(obj.nbytes)
    modules = obj if isinstance(obj, list | tuple) else [obj]
    total = 0
    for module in modules:
        if isinstance(module, torch.nn.Module):
            tensors = [*module.parameters(), *module.buffers()]
            total += sum(t.numel() * t.element_size() for t in tensors)
    return total


class ModelRegistry:
    """Owns every loaded component of one profile on one device; safe to share between threads."""

    def __init__(
        self,
        profile: Profile,
        device: str | torch.device | None = "auto",
        memory_budget: int | None = None,
    ) -> None:
        self.profile = profile
        self.device = resolve_device(device)
        self.memory_budget = memory_budget if memory_budget is not None else profile.memory_budget
        self._loaded: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self._lock = threading.RLock()
        self._loading: dict[str, threading.Lock] = {}

    def get(self, name: str, progress: ProgressCallback | None = None) -> Any:
        """The loaded component ``name``, loading (and evicting others) on first use."""
        with self._lock:
            if name in self._loaded:
                self._loaded.move_to_end(name)
                return self._loaded[name][0]
            name_lock = self._loading.setdefault(name, threading.Lock())
        with name_lock:  # one load per component even when parallel tool calls ask at once
            with self._lock:
                if name in self._loaded:
                    self._loaded.move_to_end(name)
                    return self._loaded[name][0]
            component = self._load(name, progress or _log_progress)
            size = nbytes_of(component)
            with self._lock:
                self._make_room(size, keep=name)
                self._loaded[name] = (component, size)
            return component

    def loaded(self) -> list[str]:
        """Names of loaded components, least recently used first."""
        with self._lock:
            return list(self._loaded)

    def used_bytes(self) -> int:
        with self._lock:
            return sum(size for _, size in self._loaded.values())

    def evict(self, name: str | None = None) -> list[str]:
        """Drop one component (or all); returns what was dropped. Frees GPU cache too."""
        import torch

        with self._lock:
            names = [name] if name else list(self._loaded)
            dropped = [n for n in names if self._loaded.pop(n, None) is not None]
        if dropped and torch.cuda.is_available():
            torch.cuda.empty_cache()
        return dropped

    def _make_room(self, size: int, keep: str) -> None:
        import torch

        if self.memory_budget is None:
            return
        if size > self.memory_budget:
            logger.warning(
                "component %s takes %.1f MB, more than the whole budget of %.1f MB; loading it alone",
                keep,
                size / 1e6,
                self.memory_budget / 1e6,
            )
        while self._loaded and self.used_bytes() + size > self.memory_budget:
            victim, _ = self._loaded.popitem(last=False)
            logger.info("evicting %s to stay within the memory budget", victim)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _load(self, name: str, progress: ProgressCallback) -> Any:
        spec = self.profile.component(name)
        loader = find_loader(spec)
        device = resolve_device(spec.device) if spec.device else self.device
        context = _LoadContext(
            device=device, dtype=resolve_dtype(spec.dtype, device), progress=progress
        )
        progress(
            {"event": "load", "component": name, "status": "start", "checkpoint": spec.checkpoint}
        )
        started = time.perf_counter()
        with libraries_quiet():
            component = loader(spec, context)
        seconds = round(time.perf_counter() - started, 3)
        progress({"event": "load", "component": name, "status": "done", "seconds": seconds})
        logger.info("loaded %s (%s) on %s in %.2fs", name, spec.checkpoint, device, seconds)
        return component


LIBRARIES_WITH_BARS = ("transformers", "diffusers")
"""Libraries whose loading shows its own progress bars ("Loading weights", "Loading pipeline
components"); the registry's ``load`` events already say what is loading and how long it took."""


@contextmanager
def libraries_quiet() -> Iterator[None]:
    """Turn off the progress bars of :data:`LIBRARIES_WITH_BARS` while a component loads, so a chat
    shows one "loaded sam in 0.1s" line instead of bars between its messages; each library's
    setting is restored afterwards."""
    switches = [importlib.import_module(f"{name}.utils.logging") for name in LIBRARIES_WITH_BARS]
    were_on = [switch.is_progress_bar_enabled() for switch in switches]
    for switch in switches:
        switch.disable_progress_bar()
    try:
        yield
    finally:
        for switch, on in zip(switches, were_on, strict=True):
            if on:
                switch.enable_progress_bar()


def _log_progress(event: dict[str, Any]) -> None:
    logger.debug("progress: %s", event)
