"""The Vitron LLM as a profile component, so the planner shares the model registry (and its
memory budget, with least-recently-used eviction) with the vision backends.

A profile names it like any backend model::

    [components.vitron_llm]
    loader = "vitron.agent.loading:load_vitron_llm"
    checkpoint = "tiny"          # random weights from the tiny config, no files

Other checkpoints, picked by ``format``:

- ``format = "vitron"`` (default): a directory written by :func:`~vitron.agent.build.save_vitron`
  (this project's format), or a hub repository holding one; ``lora`` names a PEFT adapter
  directory, ``merge = true`` folds it into the weights;
- ``format = "released"``: the public ``Vitron/vitron-base`` checkpoint (``checkpoint``) with its
  ``Vitron/vitron-lora`` adapter (``lora``, always merged), a CLIP-compatible ``vision_tower`` and
  optionally a ``tokenizer`` directory (default: the base checkpoint's), plus ``config``, a table
  of :class:`~vitron.agent.configuration.VitronConfig` glue overrides (signal spaces, pooling).

``constrained = true`` makes constrained invocation decoding the default for
:class:`~vitron.agent.chat_model.ChatVitron` with this profile; ``history_turns = N`` makes it
show the planner only the last N exchanges of a conversation (:mod:`vitron.agent.history`);
``end_requests = true`` shows it each request ending as a sentence
(:func:`~vitron.agent.messages.finish_request`). Hub ids are fetched on first use;
with the hub unreachable a missing checkpoint is a :class:`MissingCheckpointError` naming the
component, the profile and the file.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vitron.tools.checkpoints import missing
from vitron.tools.errors import MissingCheckpointError
from vitron.tools.profiles import ComponentSpec
from vitron.tools.registry import LoadContext

if TYPE_CHECKING:
    import torch

    from vitron.agent.configuration import VitronConfig
    from vitron.agent.constrained import InvocationGrammar
    from vitron.agent.processing import VitronProcessor

logger = logging.getLogger(__name__)

COMPONENT = "vitron_llm"
"""The profile component that holds the planner LLM."""
FORMATS = ("vitron", "released")


DECODING_OPTIONS = (
    "constrained",
    "copy_instructions",
    "history_turns",
    "end_requests",
    "grounded_words",
    "grounded_nouns",
    "grounded_relations",
    "best_match_places",
)
"""The ``vitron_llm`` options that say how the planner decodes and what it is shown, not which
weights it has: a training run's profile keeps its base profile's (:mod:`vitron.agent.training.export`)."""


@dataclass
class VitronEngine:
    """A loaded Vitron LLM: model, processor, the profile's decoding default, and the constrained
    decoding tables built for it (one :class:`InvocationGrammar` per set of bound modules: they
    cost a pass over the vocabulary, so they are built once and reused)."""

    model: Any
    """``VitronForCausalLM`` (or a ``PeftModel`` around one, when a LoRA adapter is not merged)."""
    processor: VitronProcessor
    name: str = "vitron"
    """What was loaded (the checkpoint), for logs and ``response_metadata``."""
    constrained: bool = False
    """Whether constrained invocation decoding is on when ``ChatVitron.constrained`` is ``None``."""
    history_turns: int | None = None
    """How many of the latest exchanges the prompt shows when ``ChatVitron.history_turns`` is
    ``None`` (the profile's ``history_turns`` option; ``None``: all that fit)."""
    end_requests: bool = False
    """Show each request's words ending in ".", "?" or "!", adding the mark a user left off (the
    profile's ``end_requests`` option; :func:`~vitron.agent.messages.finish_request`)."""
    copy_instructions: bool = False
    """With constrained decoding, write an invocation's instruction only with the request's words
    (the profile's ``copy_instructions`` option; :mod:`vitron.agent.copying`)."""
    grounded_words: frozenset[str] = frozenset()
    """Words a closing answer may name only if the request or a tool result of the turn has them
    (the profile's ``grounded_words`` list; :mod:`vitron.agent.grounded`)."""
    grounded_nouns: frozenset[str] = frozenset()
    """Words of ``grounded_words`` that end a phrase (the profile's ``grounded_nouns``): the
    listed words before one must be bound as the turn bound them. Empty: no phrase is checked."""
    grounded_relations: frozenset[str] = frozenset()
    """Words of ``grounded_words`` that join a noun to what it is related to ("right" in "the star
    right of the circle"; the profile's ``grounded_relations``): a phrase runs on through one, so
    the object it relates must be bound too."""
    best_match_places: bool = False
    """After a retrieve result in the turn, a number written right after "picture" or "video" is
    the best match's place, and with no picture ranked no "picture" is written (the profile's
    ``best_match_places`` option; :mod:`vitron.agent.places`)."""
    format: str = "vitron"
    """The checkpoint's invocation format: ``vitron`` (this project's tag tokens) or ``released``
    (the released weights' ``<module>B</module>`` markup); constrained decoding follows it."""
    _grammars: dict[frozenset[str], InvocationGrammar] = field(default_factory=dict, repr=False)
    _strings: list[str] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def config(self) -> VitronConfig:
        return self.model.config

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def nbytes(self) -> int:
        """Bytes of parameters and buffers: what the registry counts against its budget."""
        tensors = [*self.model.parameters(), *self.model.buffers()]
        return sum(t.numel() * t.element_size() for t in tensors)

    @property
    def max_positions(self) -> int | None:
        """The backbone's context length, if its config says."""
        value = getattr(self.config.text_config, "max_position_embeddings", None)
        return int(value) if value else None

    def grammar(self, modules: Iterable[str]) -> InvocationGrammar:
        """The constrained-decoding tables for ``modules`` (built on first use, then cached)."""
        from vitron.agent.constrained import InvocationGrammar

        key = frozenset(modules)
        style = "released" if self.format == "released" else "vitron"
        with self._lock:
            if key not in self._grammars:
                self._grammars[key] = InvocationGrammar(
                    self.processor.tokenizer, sorted(key), style=style
                )
            return self._grammars[key]

    def token_strings(self) -> list[str]:
        """Each token's text as it adds to earlier text (built on first use, then cached)."""
        from vitron.agent.constrained import _token_strings

        with self._lock:
            if self._strings is None:
                self._strings = _token_strings(self.processor.tokenizer)
            return self._strings

    def invocable(self, modules: Iterable[str]) -> list[str]:
        """The modules, of ``modules``, this checkpoint's format can invoke (the released format
        names only the modules with a letter)."""
        from vitron.agent.constrained import released_modules

        modules = list(modules)
        return released_modules(modules) if self.format == "released" else modules


def load_vitron_llm(spec: ComponentSpec, context: LoadContext) -> VitronEngine:
    """Profile loader for the Vitron LLM (see the module docstring for the options)."""
    options = dict(spec.options)
    fmt = str(options.get("format", "vitron"))
    if fmt not in FORMATS:
        raise MissingCheckpointError(
            f"component {spec.name!r} of profile {spec.profile!r} has format {fmt!r}; "
            f"use one of {', '.join(FORMATS)}"
        )
    if spec.is_tiny:
        from vitron.agent.build import build_tiny_vitron

        model, processor = build_tiny_vitron(seed=int(options.get("seed", 0)))
        model.to(device=context.device, dtype=context.dtype)
    elif fmt == "vitron":
        model, processor = _load_own(spec, options, context)
    else:
        model, processor = _load_released(spec, options, context)
    model.eval()
    grounded = _word_list(options.get("grounded_words"), spec, "grounded_words")
    nouns = _word_list(options.get("grounded_nouns"), spec, "grounded_nouns")
    relations = _word_list(options.get("grounded_relations"), spec, "grounded_relations")
    for option, words in (("grounded_nouns", nouns), ("grounded_relations", relations)):
        if words - grounded:
            raise _option_error(
                spec,
                f"{option} must be words of grounded_words: {sorted(words - grounded)} are not",
            )
    return VitronEngine(
        model=model,
        processor=processor,
        name=spec.checkpoint,
        constrained=bool(options.get("constrained", False)),
        history_turns=int(options["history_turns"]) if options.get("history_turns") else None,
        end_requests=bool(options.get("end_requests", False)),
        copy_instructions=bool(options.get("copy_instructions", False)),
        grounded_words=grounded,
        grounded_nouns=nouns,
        grounded_relations=relations,
        best_match_places=bool(options.get("best_match_places", False)),
        format=fmt,
    )


def _word_list(value: Any, spec: ComponentSpec, option: str) -> frozenset[str]:
    """A word-list option (``grounded_words``, ``grounded_nouns``, ``grounded_relations``),
    lower-cased, or none."""
    if value is None:
        return frozenset()
    if not isinstance(value, list) or not all(isinstance(w, str) and w.strip() for w in value):
        raise _option_error(spec, f"{option} must be a list of words, got {value!r}")
    return frozenset(w.strip().lower() for w in value)


def _option_error(spec: ComponentSpec, message: str) -> Exception:
    from vitron.tools.profiles import ProfileError

    return ProfileError(f"component {spec.name!r} of profile {spec.profile!r}: {message}")


def _load_own(
    spec: ComponentSpec, options: dict[str, Any], context: LoadContext
) -> tuple[Any, VitronProcessor]:
    from vitron.agent.build import load_vitron

    path = local_directory(spec, spec.checkpoint)
    lora = options.get("lora")
    lora_path = local_directory(spec, str(lora)) if lora else None
    try:
        return load_vitron(
            path,
            dtype=context.dtype,
            device=context.device,
            lora=lora_path,
            merge=bool(options.get("merge", False)),
        )
    except (OSError, ValueError) as exc:
        raise missing(spec, str(path), exc) from exc


def _load_released(
    spec: ComponentSpec, options: dict[str, Any], context: LoadContext
) -> tuple[Any, VitronProcessor]:
    from vitron.agent.released import load_released_vitron

    base = local_directory(spec, spec.checkpoint)
    lora = options.get("lora")
    tokenizer = options.get("tokenizer")
    tower = options.get("vision_tower")
    if tower is not None and Path(str(tower)).expanduser().exists():
        tower = str(Path(str(tower)).expanduser())
    try:
        model, processor = load_released_vitron(
            base,
            local_directory(spec, str(lora)) if lora else None,
            vision_tower=tower,
            tokenizer_path=local_directory(spec, str(tokenizer)) if tokenizer else None,
            dtype=context.dtype,
            device=context.device,
            **dict(options.get("config") or {}),
        )
    except (OSError, ValueError) as exc:
        raise missing(spec, str(base), exc) from exc
    if processor is None:
        raise MissingCheckpointError(
            f"component {spec.name!r} of profile {spec.profile!r}: {base} holds no tokenizer; "
            "set `tokenizer` in the profile to a directory with the Vicuna tokenizer files"
        )
    return model, processor


def local_directory(spec: ComponentSpec, source: str) -> Path:
    """A local directory for ``source``: itself when it exists, else a hub snapshot of it."""
    local = Path(source).expanduser()
    if local.exists():
        return local
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id=source))
    except Exception as exc:  # offline, unknown repository, no access: all mean "not here"
        raise missing(spec, source, exc) from exc


__all__ = ["COMPONENT", "VitronEngine", "load_vitron_llm", "local_directory"]
