"""``ChatVitron``: the Vitron LLM as a LangChain chat model, so it can be the graph's planner.

It reads the conversation with its media (:mod:`vitron.agent.rendering`), generates token by token
(:mod:`vitron.agent.decoding`), and turns its invocations into ``AIMessage.tool_calls``: each
signal token's embedding is stored in the thread's workspace and its ``emb_`` handle becomes the
call's ``signal`` argument. Malformed output never raises: the message keeps the text and
``response_metadata["parse_errors"]`` says what is wrong; the next turn shows it to the model.
After a failed call it answers with the tool's error, not a generated sentence
(:mod:`vitron.agent.failures`).

Where things come from:

- **the model**: lazily, on the first call, from the run's model registry (component
  ``vitron_llm`` of the profile), so it shares the memory budget with the backends. Inside the
  graph the registry is the run's (``current_services``); outside, the one for ``profile``,
  ``workspace`` and ``device`` (defaults from ``VITRON_*``). :meth:`ChatVitron.from_model` wraps
  an already built ``(model, processor)`` instead (tests, notebooks).
- **the thread**: ``configurable.thread_id`` of the LangGraph run (``langgraph.config``); outside
  a graph run, a per-call ``thread_id`` keyword, else the workspace's ``default`` namespace — the
  same namespace the tools use then.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.language_models.chat_models import generate_from_stream
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    ToolMessage,
)
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field, PrivateAttr

from vitron.agent.failures import failure_report, made_nothing, unresolved_failures
from vitron.agent.invocation import MODULES
from vitron.agent.loading import COMPONENT, VitronEngine
from vitron.agent.messages import REJECTED, attached_media, finished_request, user_words
from vitron.agent.parsing import ParsedReply, parse_reply
from vitron.agent.reply import ReplyText
from vitron.agent.reply_signals import attach_signals, store_signals
from vitron.agent.steering import (
    eos_ids,
    logits_processors,
    normalise_tool_choice,
    warn_if_too_long,
)
from vitron.tools.backend import (
    DEFAULT_WORKSPACE,
    Services,
    ServiceSettings,
    resolve_services,
    resolve_thread,
    stream_progress,
)
from vitron.tools.defaults import DEFAULT_PROFILE
from vitron.tools.errors import VitronToolError

if TYPE_CHECKING:  # torch and transformers load on the first call, not when the graph is built
    import torch
    from transformers import LogitsProcessor

    from vitron.agent.decoding import SamplingSettings
    from vitron.agent.rendering import RenderedConversation

logger = logging.getLogger(__name__)

ToolChoice = Literal["auto", "none", "any"] | str
OVERRIDES = ("temperature", "top_p", "max_new_tokens", "max_tokens", "seed", "constrained")
"""Generation settings a call may override (``model.invoke(messages, temperature=0.7)``)."""


@dataclass(frozen=True)
class _Call:
    """The settings of one generation, after per-call overrides."""

    sampling: SamplingSettings
    constrained: bool | None
    stop: list[str]
    modules: list[str]
    tool_choice: str
    thread_id: str | None


class ChatVitron(BaseChatModel):
    """The Vitron LLM as a tool-calling chat model (see the module docstring).

    Example::

        planner = ChatVitron(profile="vitron-7b", temperature=0.2)
        graph = build_graph(planner)               # binds the graph's tools
        ChatVitron().bind_tools(build_tools(names=["segment_image"])).invoke("…")
    """

    model_config = ConfigDict(populate_by_name=True)

    profile: str | None = None
    """Profile whose ``vitron_llm`` component is the model. ``None``: the graph run's profile;
    outside a graph ``VITRON_PROFILE``, else the default profile (``nano``, as ``vitron chat``)."""
    workspace: str = Field(
        default_factory=lambda: os.environ.get("VITRON_WORKSPACE", DEFAULT_WORKSPACE)
    )
    """Media store used outside a graph run (inside one, the run's workspace)."""
    device: str = Field(default_factory=lambda: os.environ.get("VITRON_DEVICE", "auto"))
    """Device used outside a graph run (inside one, the run's device)."""
    temperature: float = Field(default=0.0, ge=0.0)
    """0 picks the most likely token (greedy); above 0 samples."""
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    max_new_tokens: int = Field(default=256, ge=1, alias="max_tokens")
    """Most tokens one reply may have (``max_tokens`` is accepted too)."""
    seed: int | None = None
    """Seed for sampling, so a sampled reply can be repeated."""
    constrained: bool | None = None
    """Constrained invocation decoding: invocations always parse, module names are limited to the
    bound tools. ``None``: the profile's default (on for ``vitron-7b``, off for ``tiny``)."""
    stop: list[str] | None = Field(default=None, alias="stop_sequences")
    """Stop sequences: the reply ends before the first one."""
    unknown_tools: Literal["raise", "ignore"] = "raise"
    """What :meth:`bind_tools` does with tools the invocation grammar cannot name: ``raise`` a
    ``ValueError``, or ``ignore`` them with a warning (the graph binds with ``ignore``, so plug-in
    backends do not stop the Vitron planner from serving the others)."""
    streaming: bool = False
    """Stream tokens to callbacks even on ``invoke``."""
    history_turns: int | None = Field(default=None, ge=1)
    """How many of the latest exchanges (a user message with the calls, results and answer after
    it) the prompt shows; system messages are always kept. ``None``: the profile's
    ``history_turns`` option, else all. Either way the oldest exchanges are dropped while the
    prompt and the reply would not fit the backbone's positions (see :mod:`vitron.agent.history`)."""
    max_media: int | None = Field(default=4, ge=0)
    """Most images and videos a prompt shows as visual tokens (the latest, plus any image a
    region of the last user turn is drawn on); older ones stay in the text as their handles, so
    the prompt does not grow with every image named. ``None``: show them all."""

    report_failures: bool = True
    """After a call of this turn failed (and no later call of that tool made it good), answer
    with the tool's error instead of a generated sentence, which would narrate a result that does
    not exist (:mod:`vitron.agent.failures`); the model may still call a tool again."""

    _engine: VitronEngine | None = PrivateAttr(default=None)

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_model(
        cls,
        model: Any,
        processor: Any,
        *,
        constrained_default: bool = False,
        name: str = "in-memory",
        **settings: Any,
    ) -> ChatVitron:
        """A ChatVitron around an already built ``(model, processor)`` (no registry loading).

        ``constrained_default`` stands in for the profile's ``constrained`` option.
        """
        chat = cls(**settings)
        chat._engine = VitronEngine(model, processor, name=name, constrained=constrained_default)
        return chat

    @property
    def _llm_type(self) -> str:
        return "vitron"

    @property
    def model_name(self) -> str:
        """What is loaded, or will be: the in-memory model's name or the profile's component."""
        if self._engine is not None:
            return self._engine.name
        return f"{COMPONENT}@{self.profile or 'run-profile'}"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_new_tokens": self.max_new_tokens,
            "seed": self.seed,
            "constrained": self.constrained,
        }

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        model = kwargs.get("model")
        params = LangSmithParams(
            ls_provider="vitron",
            ls_model_name=model if isinstance(model, str) else self.model_name,
            ls_model_type="chat",
            ls_temperature=float(kwargs.get("temperature", self.temperature)),
            ls_max_tokens=int(
                kwargs.get("max_new_tokens", kwargs.get("max_tokens", self.max_new_tokens))
            ),
        )
        stops = stop if stop is not None else self.stop
        if stops:
            params["ls_stop"] = list(stops)
        return params

    # ------------------------------------------------------------------ tools

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: dict[str, Any] | str | bool | None = None,
        unknown_tools: Literal["raise", "ignore"] | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools the Vitron grammar can name (``segment_image``, ``ground``… see
        :data:`~vitron.agent.invocation.MODULES`).

        Args:
            tools: LangChain tools, functions, pydantic models or OpenAI tool dicts; their
                names pick the modules the model may invoke.
            tool_choice: ``"auto"`` / ``None`` (the model decides), ``"none"`` (answer in
                text), ``"any"`` / ``"required"`` / ``True`` (the reply starts with an
                invocation), or a tool name (or ``{"function": {"name": …}}``) to invoke that one.
            unknown_tools: overrides the ``unknown_tools`` field for this binding.
        """
        policy = unknown_tools or self.unknown_tools
        specs = [convert_to_openai_tool(tool) for tool in tools]
        names = [spec["function"]["name"] for spec in specs]
        unknown = [name for name in names if name not in MODULES]
        if unknown and policy == "raise":
            raise ValueError(
                f"ChatVitron cannot call {', '.join(repr(n) for n in unknown)}: its invocation "
                f"grammar names only the modules {', '.join(MODULES)}. Bind only those, or pass "
                "unknown_tools='ignore' to bind the rest and skip these"
            )
        if unknown:
            logger.warning("ChatVitron ignores tools it cannot invoke: %s", ", ".join(unknown))
        kept = [spec for spec, name in zip(specs, names, strict=True) if name in MODULES]
        choice = normalise_tool_choice(tool_choice, [spec["function"]["name"] for spec in kept])
        return super().bind(tools=kept, tool_choice=choice, **kwargs)

    # ------------------------------------------------------------------ what the model sees

    def render(
        self, messages: Sequence[BaseMessage], *, thread_id: str | None = None
    ) -> RenderedConversation:
        """The conversation as the model reads it: turns, media and the current image/video."""
        services = self._services()
        engine = self._load_engine(services)
        workspace = services.workspace.for_thread(resolve_thread(explicit=thread_id))
        return self._prepare(messages, engine, workspace, self.max_new_tokens)[0]

    def _prepare(
        self, messages: Sequence[BaseMessage], engine: VitronEngine, workspace: Any, max_new: int
    ) -> tuple[RenderedConversation, dict[str, Any]]:
        """The rendered and encoded prompt of ``messages``: the last ``history_turns`` exchanges
        (their media listing narrowed to what they name), then fewer while the prompt plus ``max_new`` tokens exceed the backbone's positions."""
        from vitron.agent.history import exchange_starts, last_exchanges, listing_for_kept
        from vitron.agent.rendering import render_messages

        turns = self.history_turns if self.history_turns is not None else engine.history_turns
        kept = last_exchanges(messages, turns)
        if turns is not None:  # a windowed planner lists the media its window names
            kept = listing_for_kept(kept)
        if engine.end_requests:
            kept = [finished_request(m) if isinstance(m, HumanMessage) else m for m in kept]
        limit = engine.max_positions
        while True:
            rendered = render_messages(
                kept, workspace, video_frames=engine.processor.video_num_frames,
                max_media=self.max_media,
            )  # fmt: skip
            batch = engine.processor.encode_chat(rendered.turns)
            exchanges = len(exchange_starts(kept))
            too_long = limit is not None and batch["input_ids"].shape[1] + max_new > limit
            if not too_long or exchanges <= 1:
                return rendered, batch
            kept = last_exchanges(kept, exchanges - 1)
            logger.info("dropped the oldest exchange from the prompt to fit %d positions", limit)

    def prompt_text(self, messages: Sequence[BaseMessage], *, thread_id: str | None = None) -> str:
        """The prompt text (placeholders unexpanded) the model gets for ``messages``."""
        engine = self._load_engine(self._services())
        rendered = self.render(messages, thread_id=thread_id)
        return engine.processor.render(rendered.turns).text

    @property
    def loaded(self) -> bool:
        """Whether the model is already in hand (:meth:`from_model`, or after a first call)."""
        return self._engine is not None

    # ------------------------------------------------------------------ generation

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        """One reply: the same decoding as :meth:`_stream`, its chunks added up."""
        return generate_from_stream(self._stream(messages, stop=stop, **kwargs))

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        """One chunk per generated token (its shown text, possibly empty while an invocation is
        being written), then a last chunk with the rest of the content, the tool calls, usage and
        response metadata."""
        from vitron.agent.decoding import generate_tokens

        call = self._call(stop, kwargs)
        services = self._services()
        engine = self._load_engine(services)
        workspace = services.workspace.for_thread(call.thread_id)
        processor = engine.processor
        rendered, batch = self._prepare(messages, engine, workspace, call.sampling.max_new_tokens)
        prompt_tokens = int(batch["input_ids"].shape[1])
        warn_if_too_long(engine, prompt_tokens, call.sampling.max_new_tokens)

        signal_ids = {i: t for t, i in processor.token_ids.signals.items()}
        request, turn = current_turn(messages)
        failed = unresolved_failures(turn) if self.report_failures else []
        reply = ReplyText(processor.decode, call.stop, signal_ids, hold=bool(failed))
        eos = eos_ids(engine)
        states: list[torch.Tensor] = []
        finish_reason = "length"
        processors = self._processors(engine, call, messages, rendered.media)
        steps = generate_tokens(engine.model, batch, call.sampling, processors, eos)
        for step in steps:
            states.append(step.hidden)
            delta = reply.add(step.token_id)
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=delta))
            if run_manager is not None:
                run_manager.on_llm_new_token(delta, chunk=chunk)
            yield chunk
            if step.token_id in eos or reply.stopped:
                finish_reason = "stop"
                break
            if reply.looping():
                finish_reason = "loop"
                logger.info("ChatVitron reply stopped in a loop: %r", reply.text[-80:])
                break
        steps.close()

        finished = reply.finish()
        handles, signals = store_signals(engine, workspace, reply.ids, states, finished)
        parsed = parse_reply(finished.text, modules=call.modules, media=rendered.media)
        parsed = with_request_media(parsed, request or "")
        if parsed.errors:
            logger.info("ChatVitron reply did not parse cleanly: %s", parsed.errors)
        content, reported = parsed.content, []
        if failed and not parsed.calls:
            done = any(isinstance(m, ToolMessage) and not made_nothing(m) for m in turn)
            content = failure_report(failed, anything_done=done)
            reported = [m.tool_call_id for m in failed]
        message = AIMessageChunk(
            content=reply.rest(content),
            tool_call_chunks=[
                {
                    "name": c["name"],
                    "args": json.dumps(c["args"]),
                    "id": c["id"],
                    "index": i,
                    "type": "tool_call_chunk",
                }
                for i, c in enumerate(attach_signals(parsed, handles))
            ],
            usage_metadata=UsageMetadata(
                input_tokens=prompt_tokens,
                output_tokens=len(reply.ids),
                total_tokens=prompt_tokens + len(reply.ids),
            ),
            response_metadata={
                "model_name": engine.name,
                "finish_reason": finish_reason,
                "parse_errors": list(parsed.errors),
                "signals": signals,
                "reported_failures": reported,
            },
            chunk_position="last",
        )
        chunk = ChatGenerationChunk(message=message)
        if run_manager is not None:
            run_manager.on_llm_new_token(message.text, chunk=chunk)
        yield chunk

    # ------------------------------------------------------------------ helpers

    def _call(self, stop: list[str] | None, kwargs: dict[str, Any]) -> _Call:
        from vitron.agent.decoding import SamplingSettings

        tools = kwargs.pop("tools", None) or []
        tool_choice = kwargs.pop("tool_choice", None) or "auto"
        thread_id = kwargs.pop("thread_id", None)
        for internal in [k for k in kwargs if k.startswith("ls_")]:
            kwargs.pop(internal)
        unknown = sorted(set(kwargs) - set(OVERRIDES))
        if unknown:
            raise ValueError(
                f"ChatVitron does not take {', '.join(unknown)}; per-call settings are "
                f"{', '.join(OVERRIDES)}, thread_id, tools and tool_choice"
            )
        max_new = kwargs.get("max_new_tokens", kwargs.get("max_tokens", self.max_new_tokens))
        sampling = SamplingSettings(
            max_new_tokens=int(max_new),
            temperature=float(kwargs.get("temperature", self.temperature)),
            top_p=float(kwargs.get("top_p", self.top_p)),
            seed=kwargs.get("seed", self.seed),
        )
        modules = [t["function"]["name"] for t in tools if isinstance(t, dict)]
        return _Call(
            sampling=sampling,
            constrained=kwargs.get("constrained", self.constrained),
            stop=list(stop if stop is not None else self.stop or []),
            modules=modules,
            tool_choice=str(tool_choice),
            thread_id=resolve_thread(explicit=thread_id),
        )

    def _services(self) -> Services:
        """The run's services inside a graph (unless another profile is named), else this
        model's own settings (see :func:`~vitron.tools.backend.resolve_services`)."""
        return resolve_services(
            profile=self.profile,
            outside=ServiceSettings(
                profile=self.profile or os.environ.get("VITRON_PROFILE", DEFAULT_PROFILE),
                workspace=self.workspace,
                device=self.device,
                memory_budget=os.environ.get("VITRON_MEMORY_BUDGET") or None,
            ),
        )

    def _load_engine(self, services: Services) -> VitronEngine:
        if self._engine is not None:
            return self._engine
        engine = services.models.get(COMPONENT, stream_progress(COMPONENT, key="node"))
        if not isinstance(engine, VitronEngine):
            raise VitronToolError(
                f"component {COMPONENT!r} of profile {services.models.profile.name!r} loaded a "
                f"{type(engine).__name__}, not a VitronEngine; its loader must be "
                "vitron.agent.loading:load_vitron_llm"
            )
        return engine

    def _processors(
        self,
        engine: VitronEngine,
        call: _Call,
        messages: Sequence[BaseMessage] = (),
        media: Mapping[str, str] | None = None,
    ) -> list[LogitsProcessor]:
        """The logits processors of one generation (see :func:`~vitron.agent.steering.logits_processors`;
        the request is the user's own words in the last user message, whether its content is
        text or blocks (:func:`~vitron.agent.messages.user_words`: without the notes on what
        was attached, whose handles and sizes an instruction must not copy); once a tool has run
        in this turn, the evidence is that message and the turn's tool results; ``media``: the
        conversation's current image and video, which the modules that take one need). A
        module whose call the user rejected in this turn is not offered again in it (the
        rejection says "do not call it again unless the user asks"; the nano planner asked three
        times), unless ``tool_choice`` names it."""
        said, after = current_turn(messages)
        results = [m.content if isinstance(m.content, str) else str(m.content)
                   for m in after if isinstance(m, ToolMessage)]  # fmt: skip
        evidence = "\n".join([said or "", *results]) if results else None
        request = user_words(said) if said else None
        rejected = {m.name for m in after
                    if isinstance(m, ToolMessage) and m.additional_kwargs.get(REJECTED)}  # fmt: skip
        modules = [m for m in call.modules if m not in rejected or m == call.tool_choice]
        return logits_processors(
            engine, modules, call.tool_choice, call.constrained,
            call.sampling.max_new_tokens, request=request or None, evidence=evidence, media=media,
        )  # fmt: skip


# ---------------------------------------------------------------------- module helpers


def current_turn(messages: Sequence[BaseMessage]) -> tuple[str | None, Sequence[BaseMessage]]:
    """The text of the last user message (attachment notes included; ``None`` without one) and
    the messages after it: the turn a generation continues."""
    turn = next((k for k in range(len(messages) - 1, -1, -1)
                 if isinstance(messages[k], HumanMessage)), None)  # fmt: skip
    if turn is None:
        return None, []
    return messages[turn].text, messages[turn + 1 :]


def with_request_media(parsed: ParsedReply, request: str) -> ParsedReply:
    """``parsed`` with every ``retrieve`` call that names no ``media`` ranking the images and
    videos the request attached, when it attached some. Without a list, ``retrieve`` ranks the
    whole conversation: asked to "find the image with a large green star" among ten pictures
    sent with the request, the demo's planner ranked those and the ten of earlier turns."""
    attached = attached_media(request)
    if not attached or not any(c["name"] == "retrieve" for c in parsed.calls):
        return parsed
    calls = [c | {"args": {"media": attached} | c["args"]} if c["name"] == "retrieve" else c
             for c in parsed.calls]  # fmt: skip
    return replace(parsed, calls=calls)


__all__ = ["ChatVitron"]
