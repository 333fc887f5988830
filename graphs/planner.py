"""Which chat model plans: the profile's Vitron LLM by default, or any LangChain chat model.

``VITRON_PLANNER=package.module:attribute`` names a chat model instance or a factory returning
one — e.g. a hosted model with ``bind_tools`` — so Studio and the Agent Server can serve the graph
with another planner without code changes.
"""

from __future__ import annotations

import importlib
import os

from langchain_core.language_models import BaseChatModel


def planner_from_spec(spec: str) -> BaseChatModel:
    """Import ``package.module:attribute``; call it if it is a factory."""
    module_name, _, attr = spec.partition(":")
    if not attr:
        raise ValueError(f"planner {spec!r} must be written package.module:attribute")
    target = getattr(importlib.import_module(module_name), attr)
    model = target() if callable(target) and not isinstance(target, BaseChatModel) else target
    if not isinstance(model, BaseChatModel):
        raise TypeError(f"{spec} gave {type(model).__name__}, not a LangChain chat model")
    return model


def default_planner() -> BaseChatModel:
    """The planner named by ``VITRON_PLANNER``, else the Vitron LLM of the run's profile.

    ``ChatVitron()`` follows each run's ``context.profile`` (whose default is ``VITRON_PROFILE``),
    so the planner and the backends always come from the same profile; its weights load on the
    first message.
    """
    spec = os.environ.get("VITRON_PLANNER")
    if spec:
        return planner_from_spec(spec)
    from vitron.agent.chat_model import ChatVitron

    return ChatVitron()


def check_planner(planner: BaseChatModel, profile: str) -> None:
    """Refuse now, not at the first message, a ``ChatVitron`` whose profile (its own, else the
    run's ``profile``) names no Vitron LLM: the turn used to run and stop with "the planner
    failed" (a :class:`~vitron.tools.profiles.ProfileError` saying what to add)."""
    from vitron.agent.chat_model import ChatVitron
    from vitron.agent.loading import COMPONENT
    from vitron.tools.profiles import load_profile

    if isinstance(planner, ChatVitron) and not planner.loaded:
        load_profile(planner.profile or profile).component(COMPONENT)
