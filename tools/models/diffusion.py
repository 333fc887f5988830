"""diffusers pipelines as profile components: one loader, one engine per task.

A profile entry ``loader = "diffusion"`` with ``pipeline = "<kind>"`` (a key of :data:`PIPELINES`)
builds the pipeline from ``checkpoint`` (a hub id or local directory, via ``from_pretrained``; fp16
on a GPU by default) or, for ``checkpoint = "tiny"``, from the random-weight parts of
:mod:`vitron.tools.models.diffusion_tiny`. Other keys of the entry are the backends' defaults
(``width``, ``height``, ``steps``, ``guidance``, ``frames``, ``fps``, ``strength``,
``image_guidance``) and loading options (``offload = true`` for model CPU offload on CUDA,
``variant``, ``revision``, ``safety_checker = false``, ``signal_projector`` naming the component
that turns a planner's signal into extra text-encoder tokens for this pipeline).

The pieces live by job: :mod:`~vitron.tools.models.diffusion_common` (prompts, text states, seeding,
sizes, the engine base), :mod:`~vitron.tools.models.diffusion_engines` (one engine per task), this
module (the loader). diffusers itself is imported only when a pipeline is loaded.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import torch

from vitron.tools.checkpoints import load_pretrained
from vitron.tools.errors import VitronToolError
from vitron.tools.models.diffusion_common import Defaults, DiffusionEngine
from vitron.tools.models.diffusion_engines import PIPELINES
from vitron.tools.profiles import ComponentSpec
from vitron.tools.registry import LoadContext, component_loader

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline


logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- loading


@component_loader("diffusion")
def load_diffusion(spec: ComponentSpec, context: LoadContext) -> DiffusionEngine:
    """Build the engine a profile entry names: tiny random parts or ``from_pretrained``."""
    import diffusers

    kind = str(spec.options.get("pipeline", ""))
    if kind not in PIPELINES:
        raise VitronToolError(
            f"profile {spec.profile!r}: component {spec.name!r} needs `pipeline` set to one of "
            f"{', '.join(PIPELINES)} (got {kind or 'nothing'!r})"
        )
    try:
        defaults = Defaults.from_options(spec.options)
    except (TypeError, ValueError) as exc:
        raise VitronToolError(
            f"profile {spec.profile!r}: component {spec.name!r} has a default of the wrong "
            f"kind ({exc})"
        ) from exc
    engine_class = PIPELINES[kind]
    pipeline_class: Callable[..., DiffusionPipeline] = getattr(
        diffusers, engine_class.pipeline_class
    )
    if spec.is_tiny:
        from vitron.tools.models.diffusion_tiny import tiny_components

        with deprecation_notice_as_info(pipeline_class):
            pipe = pipeline_class(**tiny_components(kind, int(spec.options.get("seed", 0))))
        if context.dtype != torch.float32:  # the parts are built in float32
            pipe = pipe.to(dtype=context.dtype)
    else:
        kwargs: dict[str, Any] = {"torch_dtype": context.dtype}
        for key in ("variant", "revision"):
            if key in spec.options:
                kwargs[key] = spec.options[key]
        if spec.options.get("safety_checker") is False:
            kwargs.update(safety_checker=None, requires_safety_checker=False)
        with warnings.catch_warnings(), deprecation_notice_as_info(pipeline_class):
            # newer diffusers call it `dtype`; older only know this
            warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
            pipe = load_pretrained(
                spec, lambda path: pipeline_class.from_pretrained(path, **kwargs)
            )
    if spec.options.get("offload") and context.device.type == "cuda":
        pipe.enable_model_cpu_offload(device=context.device)
    else:
        pipe = pipe.to(context.device)
    return engine_class(
        pipe,
        kind=kind,
        defaults=defaults,
        signal_projector=str(spec.options.get("signal_projector", "diffusion_signal")),
    )


@contextmanager
def deprecation_notice_as_info(pipeline_class: type) -> Iterator[None]:
    """Build a pipeline diffusers has moved to its deprecated folder (I2VGenXL) without its
    warning on every load: diffusers logs one each time such a pipeline is built, which the
    demo and ``vitron chat`` printed to users who can do nothing about it (the lock pins
    diffusers). The notice is logged here at INFO instead, once per load."""
    from diffusers.pipelines.pipeline_utils import DeprecatedPipelineMixin

    if not issubclass(pipeline_class, DeprecatedPipelineMixin):
        yield
        return
    notices = logging.getLogger("diffusers.pipelines.pipeline_utils")
    level = notices.level
    notices.setLevel(logging.ERROR)
    try:
        yield
    finally:
        notices.setLevel(level)
    last = getattr(pipeline_class, "_last_supported_version", None) or "this version"
    logger.info(
        "%s is one of diffusers' deprecated pipelines (no fixes after %s); the lock pins diffusers",
        pipeline_class.__name__, last,
    )  # fmt: skip
