"""Heavy backends on Ray Serve: which backends a profile serves there, and the client that calls them.

A profile says ``serve = "ray"`` (every backend that loads a model) or marks components
(``[components.sam] serve = "ray"``): a backend runs on Ray when its main component (the first it
names) is served there; its other components load beside it in the same replica. Each such backend is its own Ray Serve application, ``vitron-<profile>-<backend>``, deployed
by :mod:`vitron.tools.serve_ray` (``vitron serve``); its replicas load their models once and run
the backend exactly as the graph's process would.

Only handles cross the wire: the request holds the validated arguments (JSON: handles, text,
regions), the workspace root and the thread; the replica opens the same content-addressed
workspace (a path every node mounts) and answers with the text, the new handles' records and data.
The error contract is the local one: a backend failure comes back as the text of an error
``ToolMessage``; a replica that dies under a call is retried once, then the call fails with a clear
error; the graph keeps running either way. ``ray`` is imported only when a served backend is called.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from langchain_core.tools import ToolException
from pydantic import BaseModel

from vitron.tools.profiles import Profile
from vitron.tools.workspace import MediaInfo

if TYPE_CHECKING:
    from vitron.tools.backend import Backend, CallContext, ToolOutput

logger = logging.getLogger(__name__)

RAY_ADDRESS_ENV = "VITRON_RAY_ADDRESS"
"""The Ray cluster to call (``ray start --head`` prints it); default ``auto`` (the local one)."""
TIMEOUT_ENV = "VITRON_SERVE_TIMEOUT"
"""Seconds one served call may take, queueing included (default 600)."""


def component_serve(profile: Profile, name: str) -> str:
    """Where component ``name`` runs: its own ``serve``, else the profile's."""
    spec = profile.components.get(name)
    return (spec.serve if spec is not None and spec.serve else None) or profile.serve


def is_served(profile: Profile, backend: Backend) -> bool:
    """Whether ``backend`` runs on Ray Serve under ``profile``: where its first component, its main
    model, is served (``segment_image``: ``sam``; ``ground``: ``grounding_dino``). Backends without
    models, and plug-ins whose main model the profile does not have (they cannot be served by it),
    run locally, where a call names the missing component."""
    if not backend.components or backend.components[0] not in profile.components:
        return False
    return component_serve(profile, backend.components[0]) == "ray"


def served_backends(profile: Profile, backends: dict[str, Backend]) -> list[str]:
    return [name for name, backend in backends.items() if is_served(profile, backend)]


def app_name(profile: Profile, backend: str) -> str:
    """The Ray Serve application of ``backend`` under ``profile``."""
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in profile.name)
    return f"vitron-{safe}-{backend}"


def deployment_options(profile: Profile, backend: Backend) -> dict[str, Any]:
    """Ray Serve options of ``backend``'s deployment, from its components' declarations: replicas
    as its main component says; CPUs the largest asked; GPUs and memory the sum, since every
    component the backend uses loads in each replica (a sum above one GPU rounds up to whole GPUs,
    as Ray asks)."""
    specs = [profile.components[c] for c in backend.components if c in profile.components]
    declared = [s.resources for s in specs]
    replicas = int(declared[0].get("replicas", 1)) if declared else 1
    actor: dict[str, Any] = {
        "num_cpus": max([float(r.get("num_cpus", 1)) for r in declared] or [1])
    }
    gpus = round(sum(float(r.get("num_gpus", 0)) for r in declared), 4)
    memory = sum(int(r.get("memory", 0)) for r in declared)
    if gpus:
        actor["num_gpus"] = math.ceil(gpus) if gpus > 1 else gpus
    if memory:
        actor["memory"] = memory
    return {"num_replicas": replicas, "ray_actor_options": actor, "max_ongoing_requests": 8}


def remote_backend(profile: Profile, backend: Backend) -> RayBackendClient | None:
    """The client for ``backend`` when ``profile`` serves it on Ray, else ``None`` (run locally)."""
    if not is_served(profile, backend):
        return None
    return RayBackendClient(app_name(profile, backend.name), backend.name)


# --------------------------------------------------------------------------- the wire format


def request_for(args: BaseModel, call: CallContext, thread: str | None) -> dict[str, Any]:
    """What crosses the wire to a replica: JSON only, no pixels."""
    return {
        "args": args.model_dump(mode="json", exclude_unset=True),
        "workspace": str(call.workspace.root),
        "thread": thread,
        "notices": sorted(call.notices),
    }


def reply_from(output: ToolOutput, call: CallContext) -> dict[str, Any]:
    """What a replica answers for a backend that ran."""
    return {
        "ok": True,
        "content": output.content,
        "created": [asdict(m) for m in output.created],
        "data": output.data,
        "notes": list(call.notes),
        "notices": sorted(call.notices),
    }


def output_from(reply: dict[str, Any], call: CallContext) -> ToolOutput:
    """The :class:`ToolOutput` of a replica's reply; an error reply raises its text."""
    from vitron.tools.backend import ToolOutput

    if not reply.get("ok"):
        raise ToolException(str(reply.get("error") or "the served backend failed"))
    call.notices.update(reply.get("notices") or [])
    call.notes.extend(reply.get("notes") or [])
    created = [MediaInfo(**item) for item in reply.get("created") or []]
    return ToolOutput(content=reply["content"], created=created, data=reply.get("data") or {})


# --------------------------------------------------------------------------- the client

_connect_lock = threading.Lock()
_handles: dict[str, Any] = {}


def _ray() -> Any:
    """The ``ray`` module (with ``ray.serve`` and ``ray.exceptions`` loaded), or a clear error."""
    try:  # the `scale` extra
        import ray
        import ray.exceptions
        import ray.serve
    except ImportError as exc:
        raise ToolException(
            "this profile serves the backend on Ray, but Ray is not installed: "
            f"pip install 'vitron-langgraph[scale]' ({exc})"
        ) from exc
    return ray


def _retryable_errors() -> tuple[type[BaseException], ...]:
    """Errors meaning the replica (not the backend) is gone: worth one more try elsewhere."""
    rex = _ray().exceptions
    names = ("RayActorError", "ActorDiedError", "ActorUnavailableError", "ActorUnschedulableError")
    return tuple(getattr(rex, n) for n in names if hasattr(rex, n))


def _handle(app: str) -> Any:
    """A handle to ``app``'s ingress deployment, connecting to the cluster on first use."""
    with _connect_lock:
        if app in _handles:
            return _handles[app]
        ray = _ray()
        serve = ray.serve
        if not ray.is_initialized():
            address = os.environ.get(RAY_ADDRESS_ENV, "auto")
            try:
                ray.init(address=address, namespace="vitron", log_to_driver=False,
                         configure_logging=False)  # fmt: skip
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ToolException(
                    f"cannot reach the Ray cluster at {address!r} ({RAY_ADDRESS_ENV}): {exc}"
                ) from exc
        try:
            handle = serve.get_app_handle(app)
        except Exception as exc:  # Serve not started, or the application not deployed
            raise ToolException(
                f"the profile serves this backend on Ray, but application {app!r} is not deployed "
                f"on the cluster ({type(exc).__name__}: {exc}); deploy it with `vitron serve`"
            ) from exc
        _handles[app] = handle
        return handle


def forget_handles() -> None:
    """Drop cached handles (after ``serve.shutdown()`` or a new cluster)."""
    with _connect_lock:
        _handles.clear()


class RayBackendClient:
    """Calls one backend's Ray Serve application; fails the way a local backend fails."""

    def __init__(self, app: str, backend: str, timeout: float | None = None) -> None:
        self.app = app
        self.backend = backend
        self.timeout = timeout or float(os.environ.get(TIMEOUT_ENV, "600"))

    def run(self, args: BaseModel, call: CallContext, thread: str | None) -> ToolOutput:
        request = request_for(args, call, thread)
        call.progress({"event": "serve", "app": self.app, "status": "start"})
        reply = self._call(request)
        call.progress({"event": "serve", "app": self.app, "status": "done"})
        return output_from(reply, call)

    def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        retryable, rex = _retryable_errors(), _ray().exceptions

        for attempt in (1, 2):
            handle = _handle(self.app)
            try:
                return handle.remote(request).result(timeout_s=self.timeout)
            except retryable as exc:
                logger.warning("%s: replica lost (attempt %d): %s", self.app, attempt, exc)
                if attempt == 2:
                    raise ToolException(
                        f"{self.backend} failed: its Ray Serve replica died twice in a row "
                        f"({type(exc).__name__}); the cluster may be short of memory, see the "
                        "replica logs"
                    ) from exc
            except (rex.GetTimeoutError, TimeoutError) as exc:
                raise ToolException(
                    f"{self.backend} did not answer within {self.timeout:g} s on Ray Serve "
                    f"({TIMEOUT_ENV}); its replicas may be busy or still loading"
                ) from exc
            except Exception as exc:  # Ray's and Serve's other errors (back-pressure, a replica
                # that raised outside the backend): the call fails, the session goes on
                raise ToolException(
                    f"{self.backend} failed on Ray Serve: {type(exc).__name__}: {exc}"
                ) from exc
        raise AssertionError("unreachable")
