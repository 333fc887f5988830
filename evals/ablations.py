"""The paper's ablations as evaluation runs: text-only invocation and no synergy.

- ``signals``: the planner runs as usual but its calls reach the tools without the ``signal``
  embedding (text-only invocation instead of hybrid). Any profile whose backends take signals
  (a ``*_signal`` projector component) provides it.
- ``synergy``: the planner is a Vitron LLM trained without cross-task synergy learning. Synergy
  acts in training only, so this needs a second checkpoint: the profile provides it by naming a
  ``vitron_llm_no_synergy`` component; the run then uses a derived profile whose ``vitron_llm`` is
  that component. Parts trained jointly with the planner (the ``[SEG]`` projector ``sam_signal``)
  are swapped the same way where the profile names them ``<part>_no_synergy``.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable, RunnableLambda

from vitron.tools.profiles import Profile, load_profile, toml_value

ABLATIONS = ("synergy", "signals")
NO_SYNERGY_COMPONENT = "vitron_llm_no_synergy"


def strip_signals(message: AIMessage) -> AIMessage:
    """The same reply with no ``signal`` argument in any tool call."""
    if not message.tool_calls:
        return message
    calls = [{**c, "args": {k: v for k, v in c["args"].items() if k != "signal"}}
             for c in message.tool_calls]  # fmt: skip
    return message.model_copy(update={"tool_calls": calls})


class TextOnlyInvocations(BaseChatModel):
    """Wraps a planner so that its tool calls carry no signal embedding (the ``signals``
    ablation); everything else is the wrapped planner's."""

    inner: BaseChatModel

    @property
    def _llm_type(self) -> str:
        return f"text-only({self.inner._llm_type})"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable:
        from vitron.graphs.nodes import bind_planner_tools

        return bind_planner_tools(self.inner, tools) | RunnableLambda(strip_signals)

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:  # fmt: skip
        reply = self.inner.invoke(messages, stop=stop, **kwargs)
        return ChatResult(generations=[ChatGeneration(message=strip_signals(reply))])


def provides(profile: Profile, ablation: str) -> tuple[bool, str]:
    """Whether ``profile`` can run ``ablation``, and a sentence saying why (not)."""
    if ablation == "signals":
        projectors = sorted(c for c in profile.components if c.endswith("_signal"))
        if projectors:
            return (
                True,
                f"text-only invocation: tool calls lose their signal ({', '.join(projectors)} unused)",
            )
        return (
            False,
            f"profile {profile.name} has no signal projectors (*_signal components), so its calls are text-only already",
        )
    if ablation == "synergy":
        if NO_SYNERGY_COMPONENT in profile.components:
            return True, f"planner from {NO_SYNERGY_COMPONENT} (trained without synergy)"
        return False, (
            f"profile {profile.name} provides no synergy ablation: it has no "
            f"[components.{NO_SYNERGY_COMPONENT}] (a Vitron LLM trained without synergy)"
        )
    raise ValueError(f"unknown ablation {ablation!r}; known: {', '.join(ABLATIONS)}")  # fmt: skip


def no_synergy_profile(profile_spec: str, folder: str | Path | None = None) -> str:
    """Path of a profile that extends ``profile_spec`` with ``vitron_llm`` replaced by its
    ``vitron_llm_no_synergy`` component, and any other ``<part>_no_synergy`` component replacing
    ``<part>`` (a projector trained with that planner belongs with it)."""
    profile = load_profile(profile_spec)
    profile.component(NO_SYNERGY_COMPONENT)  # a clear error when the profile has none
    folder = Path(folder or tempfile.mkdtemp(prefix="vitron-ablation-"))
    extends = (
        profile_spec
        if not Path(profile_spec).expanduser().exists()
        else str(Path(profile_spec).expanduser().resolve())
    )
    lines = [
        f"extends = {json.dumps(extends)}",
        f"name = {json.dumps(profile.name + '-no-synergy')}",
    ]
    suffix = "_no_synergy"
    for name in sorted(c for c in profile.components if c.endswith(suffix)):
        spec = profile.component(name)
        lines += [
            f"[components.{name.removesuffix(suffix)}]",
            f"loader = {json.dumps(spec.loader)}",
            f"checkpoint = {json.dumps(spec.checkpoint)}",
            f"dtype = {json.dumps(spec.dtype)}",
        ]
        if spec.device:
            lines.append(f"device = {json.dumps(spec.device)}")
        lines += [f"{json.dumps(k)} = {toml_value(v)}" for k, v in spec.options.items()]
    path = folder / f"{profile.name}-no-synergy.toml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)
