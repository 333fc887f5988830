"""How ChatVitron steers one generation: which tokens are suppressed, the invocation grammar
(this project's or the released format's) when decoding is constrained, the forced opening of a
required tool call, ``tool_choice`` in LangChain's forms, and the end-of-sequence ids."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from vitron.agent.invocation import MODULE_CLOSE, MODULE_OPEN, MODULES, RELEASED_OPEN

if TYPE_CHECKING:
    from transformers import LogitsProcessor

    from vitron.agent.loading import VitronEngine

logger = logging.getLogger(__name__)


def logits_processors(
    engine: VitronEngine,
    modules: list[str],
    tool_choice: str,
    constrained: bool | None,
    max_new_tokens: int,
    request: str | None = None,
    evidence: str | None = None,
    media: Mapping[str, str] | None = None,
) -> list[LogitsProcessor]:
    """Placeholder suppression, then constrained decoding and forced tokens as asked: no
    invocation when nothing is bound or ``tool_choice`` is ``none``; the grammar of the engine's
    format (``constrained`` ``None``: the profile's default), its instructions written with
    ``request``'s words when the profile copies instructions; a forced opening for ``any`` or
    one named tool. ``evidence`` (the request and the turn's tool results, once a tool has run)
    makes a number after "picture" or "video" the best match's place of a retrieve result in it
    (and, with no picture ranked, holds back "picture") when the profile asks
    (:mod:`vitron.agent.places`), and
    holds back the profile's ``grounded_words`` it lacks, and phrases of them (up to one of
    ``grounded_nouns``, or on through one of ``grounded_relations``) it binds otherwise
    (:mod:`vitron.agent.grounded`); that processor comes
    last, so where the grammar or a copied instruction leaves only held tokens it yields rather
    than leaving none.
    ``media`` (kind -> the conversation's current handle; ``None``: not known) leaves out the
    modules whose input the conversation lacks, unless ``tool_choice`` names one: the planner
    fills a module's image or video from the conversation, so ``track_video`` with no video can
    only fail (the nano planner called it for 11 of 40 "make a short video of …" requests)."""
    from transformers import SuppressTokensLogitsProcessor

    ids = engine.processor.token_ids
    device = engine.device
    if media is not None and tool_choice not in modules:
        modules = [m for m in modules if has_input(m, media)]
    suppressed = [ids.image, ids.video, ids.region]
    choice = tool_choice
    invocations = bool(modules) and choice != "none"
    if not invocations:  # nothing to call: no invocation may start
        suppressed += [*ids.tags.values(), *ids.signals.values()]
    processors: list[LogitsProcessor] = [SuppressTokensLogitsProcessor(suppressed, device)]
    if invocations:
        processors += invocation_processors(engine, modules, choice, constrained, max_new_tokens,
                                            request)  # fmt: skip
    if engine.best_match_places and evidence is not None:
        processors.append(best_match_places(engine, evidence))
    if engine.grounded_words and evidence is not None:
        # last: where the grammar or a copied instruction leaves only held words, it yields
        processors.append(grounded_answer(engine, evidence))
    return processors


def invocation_processors(
    engine: VitronEngine,
    modules: list[str],
    choice: str,
    constrained: bool | None,
    max_new_tokens: int,
    request: str | None,
) -> list[LogitsProcessor]:
    """The grammar (and copied instructions) and the forced opening of a generation that may
    call one of ``modules``."""
    from vitron.agent.decoding import ForcedTokens

    processors: list[LogitsProcessor] = []
    constrained = engine.constrained if constrained is None else constrained
    allowed = engine.invocable([choice] if choice in modules else modules)
    if not allowed:  # e.g. the released format names none of the bound tools
        return processors
    if constrained:
        grammar = engine.grammar(allowed)
        processors.append(grammar.logits_processor(max_new_tokens))
        if engine.copy_instructions and request and engine.format == "vitron":
            from vitron.agent.copying import CopiedInstructionProcessor

            processors.append(CopiedInstructionProcessor(grammar, request, engine.grounded_words))
    if choice == "any" or choice in modules:
        processors.append(ForcedTokens(forced_opening(engine, choice, constrained)))
    return processors


def has_input(module: str, media: Mapping[str, str]) -> bool:
    """Whether ``media`` holds the image or video ``module`` takes (a module that takes none, or
    one the grammar does not know, always may run)."""
    spec = MODULES.get(module)
    return spec is None or spec.media is None or bool(media.get(spec.media))


def best_match_places(engine: VitronEngine, evidence: str) -> LogitsProcessor:
    """The processor making a number after "picture" or "video" the best match's place of a
    retrieve result in ``evidence``, and holding back "picture" when no picture was ranked."""
    from vitron.agent.places import BestMatchPlaceProcessor, best_places

    places = best_places(evidence)
    return BestMatchPlaceProcessor(engine.token_strings(), places, special_ids(engine))


def special_ids(engine: VitronEngine) -> set[int]:
    """Tokens that end the words a closing is checked by: tags, signals, the tokenizer's own."""
    ids = engine.processor.token_ids
    return {*ids.tags.values(), *ids.signals.values(), *engine.processor.tokenizer.all_special_ids}


def grounded_answer(engine: VitronEngine, evidence: str) -> LogitsProcessor:
    """The processor holding back the profile's ``grounded_words`` that ``evidence`` lacks, and
    phrases of them bound otherwise than in ``evidence``."""
    from vitron.agent.grounded import UngroundedWordsProcessor, phrases, ungrounded

    held = ungrounded(engine.grounded_words, evidence)
    return UngroundedWordsProcessor(
        engine.token_strings(),
        held,
        special_ids(engine),
        listed=engine.grounded_words,
        nouns=engine.grounded_nouns,
        relations=engine.grounded_relations,
        phrases=phrases(
            engine.grounded_words, evidence, engine.grounded_nouns, engine.grounded_relations
        )
        if engine.grounded_nouns
        else None,
    )


def forced_opening(engine: VitronEngine, choice: str, constrained: bool) -> list[int]:
    """The tokens a forced invocation starts with: the opening tag, and the module's name (and
    closing tag) when one tool is chosen and no grammar will steer the name."""
    tokenizer = engine.processor.tokenizer
    if engine.format == "released":
        opening = RELEASED_OPEN
        if choice != "any" and not constrained:
            opening += MODULES[choice].released_letter or ""
        return tokenizer.encode(opening, add_special_tokens=False)
    ids = engine.processor.token_ids
    forced = [ids.tags[MODULE_OPEN]]
    if choice != "any" and not constrained:
        forced += tokenizer.encode(choice, add_special_tokens=False)
        forced.append(ids.tags[MODULE_CLOSE])
    return forced


def normalise_tool_choice(choice: dict[str, Any] | str | bool | None, names: list[str]) -> str:
    """Normalise LangChain's tool_choice forms to ``auto``, ``none``, ``any`` or a tool name."""
    if choice is None or choice is False or choice == "auto":
        return "auto"
    if choice is True or choice in ("any", "required"):
        chosen = "any"
    elif choice == "none":
        return "none"
    elif isinstance(choice, dict):
        chosen = (choice.get("function") or {}).get("name") or choice.get("name") or ""
    else:
        chosen = str(choice)
    if not names:
        logger.warning("tool_choice=%r but no tool ChatVitron can invoke is bound", choice)
        return "auto"
    if chosen != "any" and chosen not in names:
        raise ValueError(f"tool_choice names {chosen!r}, which is not bound; bound: {names}")
    return chosen


def eos_ids(engine: VitronEngine) -> list[int]:
    eos = engine.model.generation_config.eos_token_id
    if eos is None:
        eos = engine.processor.tokenizer.eos_token_id
    return [int(e) for e in (eos if isinstance(eos, list | tuple) else [eos]) if e is not None]


def warn_if_too_long(engine: VitronEngine, prompt: int, new: int) -> None:
    limit = engine.max_positions
    if limit is not None and prompt + new > limit:
        logger.warning(
            "prompt of %d tokens + %d new tokens exceeds the model's %d positions",
            prompt,
            new,
            limit,
        )
