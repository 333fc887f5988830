"""The Vitron LLM (DESIGN §5): model, encoders, signal embeddings, invocation grammar.

Public API (names below are importable from ``vitron.agent``; torch-heavy modules load lazily on
first use, so ``vitron.agent.invocation`` stays cheap for graph code):

Grammar (``invocation``, ``parsing``): ``parse_reply(text, *, modules, media, signal_tokens, make_id) ->
ParsedReply`` (``.calls``, ``.content``, ``.errors``, ``.invocations``, ``.signal_count``,
``.with_signals(handles)``; never raises), ``format_invocation``, ``format_tool_call``,
``format_reply``, ``sanitize_text``, ``quantize_coordinate``/``dequantize_coordinate``,
``MODULES`` (tool name -> ``ModuleSpec``: media argument, signal token, released letter),
``RELEASED_LETTERS``, ``GRAMMAR_TAGS``, ``SIGNAL_TOKENS``.

Config and model (``configuration``, ``modeling``): ``VitronConfig``; ``VitronForCausalLM``
(``forward``, ``generate``, ``embed_inputs``, ``embed_batch``, ``encode_images``,
``encode_videos``, ``encode_regions``, ``video_token_count``, ``signal_embeddings``,
``generated_signal_embeddings``, ``embed_signal``, ``synergy_losses``, ``task_index``); the
parts ``ImageEncoder``, ``VideoEncoder``, ``RegionEncoder``, ``MultimodalProjector``,
``SignalHeads`` + ``extract_signal_embeddings``, ``SynergyModule`` + ``reverse_gradient``.

Processing (``processing``): ``VitronProcessor`` (``render``, ``__call__``, ``encode_chat``,
``decode``, ``save_pretrained``/``from_pretrained``), ``Turn``, ``VideoInput``, ``RegionInput``,
``ChatTemplate``, ``build_tiny_tokenizer``, ``add_vitron_tokens``, ``prepare_model_for_tokenizer``.

Constrained decoding (``constrained``): ``InvocationGrammar(tokenizer, modules)`` and its
``logits_processor(max_new_tokens)``.

Factories (``build``, ``released``): ``build_tiny_vitron(seed)``, ``build_vitron(text_model,
vision_model)``, ``load_vitron(path, dtype, device, lora, merge)``, ``save_vitron``,
``add_lora``, ``load_released_vitron(base_path, lora_path, vision_tower=...)``.

Chat model (``chat_model``, ``loading``): ``ChatVitron`` (a LangChain ``BaseChatModel``: lazy
loading through the profile's ``vitron_llm`` component, ``bind_tools(tools, tool_choice,
unknown_tools)``, ``invoke``/``stream`` with signal handles in ``tool_calls``, ``render`` and
``prompt_text`` to see what the model reads, ``ChatVitron.from_model(model, processor)``);
``VitronEngine`` (model + processor + constrained-decoding tables) and ``load_vitron_llm``, the
profile loader.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS: dict[str, str] = {
    **{
        name: "vitron.agent.invocation"
        for name in (
            "GRAMMAR_TAGS",
            "MODULES",
            "RELEASED_LETTERS",
            "SIGNAL_TOKENS",
            "ModuleSpec",
            "dequantize_coordinate",
            "format_invocation",
            "format_reply",
            "format_tool_call",
            "quantize_coordinate",
            "sanitize_text",
        )
    },
    **{name: "vitron.agent.parsing" for name in ("Invocation", "ParsedReply", "parse_reply")},
    "VitronConfig": "vitron.agent.configuration",
    **{
        name: "vitron.agent.modeling"
        for name in (
            "SignalEmbedding",
            "VitronCausalLMOutput",
            "VitronForCausalLM",
            "VideoTokenCount",
        )
    },
    **{
        name: "vitron.agent.inputs"
        for name in ("ChatTemplate", "RegionInput", "Turn", "VideoInput")
    },
    "VitronProcessor": "vitron.agent.processing",
    **{
        name: "vitron.agent.tokens"
        for name in ("add_vitron_tokens", "build_tiny_tokenizer", "prepare_model_for_tokenizer")
    },
    **{
        name: "vitron.agent.constrained"
        for name in ("InvocationGrammar", "InvocationLogitsProcessor")
    },
    **{
        name: "vitron.agent.build"
        for name in ("add_lora", "build_tiny_vitron", "build_vitron", "load_vitron", "save_vitron")
    },
    "load_released_vitron": "vitron.agent.released",
    "ChatVitron": "vitron.agent.chat_model",
    **{name: "vitron.agent.loading" for name in ("VitronEngine", "load_vitron_llm")},
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vitron.agent' has no attribute {name!r}")
    return getattr(import_module(module), name)
