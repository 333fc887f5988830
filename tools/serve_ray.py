"""The Ray Serve side: one deployment per served backend, whose replicas run it on their own models.

``deploy(profile)`` (``vitron serve``) starts an application per backend the profile serves on Ray,
with the resources its components declare (see :func:`vitron.tools.serving.deployment_options`);
``app(args)`` builds one for a Serve config file (``serve deploy deploy/ray-serve.yaml``).
A replica imports the backends, loads its models on first use (a registry of its own, with the
profile's memory budget) and answers JSON requests: handles in, handles out.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from langchain_core.tools import ToolException

try:  # the `scale` extra
    from ray import serve
    from ray.serve import Application
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        f"serving backends on Ray needs the scale extra: pip install 'vitron-langgraph[scale]' ({exc})"
    ) from exc

from vitron.tools.backend import (
    CallContext,
    ServiceSettings,
    get_services,
    registered_backends,
    run_backend,
)
from vitron.tools.errors import VitronToolError
from vitron.tools.profiles import load_profile
from vitron.tools.serving import (
    app_name,
    deployment_options,
    reply_from,
    served_backends,
)

logger = logging.getLogger(__name__)

__all__ = ["BackendReplica", "app", "application", "deploy"]


@serve.deployment
class BackendReplica:
    """Runs one backend for requests from :class:`vitron.tools.serving.RayBackendClient`."""

    def __init__(self, backend: str, profile: str, device: str = "auto",
                 memory_budget: str | None = None) -> None:  # fmt: skip
        if os.environ.get("OMP_NUM_THREADS"):
            import torch

            torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
        self.backend = registered_backends()[backend]
        self.profile, self.device, self.memory_budget = profile, device, memory_budget

    async def __call__(self, request: dict[str, Any]) -> dict[str, Any]:
        # in a worker thread, so the replica's event loop keeps answering health checks
        return await asyncio.to_thread(self.run, request)

    def run(self, request: dict[str, Any]) -> dict[str, Any]:
        try:
            services = get_services(
                ServiceSettings(
                    profile=self.profile,
                    workspace=request["workspace"],
                    device=self.device,
                    memory_budget=self.memory_budget,
                )  # fmt: skip
            )
            call = CallContext(
                workspace=services.workspace.for_thread(request.get("thread")),
                models=services.models,
                progress=lambda event: logger.debug("%s: %s", self.backend.name, event),
                notices=set(request.get("notices") or []),
            )
            args = self.backend.args_schema.model_validate(request["args"])
            return reply_from(run_backend(self.backend, args, call), call)
        except (ToolException, VitronToolError) as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:  # bad request: answered, never a dead replica
            logger.exception("request to %s failed", self.backend.name)
            return {
                "ok": False,
                "error": f"{self.backend.name} failed: {type(exc).__name__}: {exc}",
            }


def application(backend: str, profile: str, device: str = "auto",
                memory_budget: str | None = None) -> Application:  # fmt: skip
    """The Serve application of one backend, with the resources its profile declares."""
    loaded = load_profile(profile)
    options = deployment_options(loaded, registered_backends()[backend])
    deployment = BackendReplica.options(name=backend, **options)
    return deployment.bind(backend, profile, device, memory_budget)


def app(args: dict[str, str]) -> Application:
    """Application builder for Serve config files: ``import_path: vitron.tools.serve_ray:app`` with
    ``args: {backend, profile, device}``."""
    return application(args["backend"], args["profile"], args.get("device", "auto"),
                       args.get("memory_budget"))  # fmt: skip


def deploy(profile: str, device: str = "auto", memory_budget: str | None = None,
           backends: list[str] | None = None) -> list[str]:  # fmt: skip
    """Deploy every backend ``profile`` serves on Ray (or ``backends``) on the connected cluster,
    waiting until each is ready; returns the application names."""
    loaded = load_profile(profile)
    names = backends or served_backends(loaded, registered_backends())
    apps = []
    for name in names:
        apps.append(app_name(loaded, name))
        serve.run(application(name, profile, device, memory_budget), name=apps[-1],
                  route_prefix=None)  # fmt: skip
    return apps
