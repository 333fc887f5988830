"""The key-value cache's keyword across the transformers 5.x range this project admits.

transformers 5.24 renamed ``past_key_values`` to ``cache`` in model outputs, ``forward`` and
``prepare_inputs_for_generation``; its ``ModelOutput`` rewrites the old keyword to the new one, so a
dataclass output that declares ``past_key_values`` can no longer be built with it. Every place that
builds an output, reads a cache from one or passes one to a model goes through this module, so the
name is decided once, from the installed version's own ``CausalLMOutputWithPast``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from transformers.modeling_outputs import CausalLMOutputWithPast

CACHE_KEY: str = (
    "cache"
    if "cache" in {field.name for field in dataclasses.fields(CausalLMOutputWithPast)}
    else "past_key_values"
)
"""``"cache"`` on transformers ≥ 5.24, ``"past_key_values"`` before."""

_ALL_KEYS = ("cache", "past_key_values", "cache_params")


def cache_of(output: Any) -> Any:
    """The cache an output (``ModelOutput`` or mapping) carries, or ``None``, whatever its name."""
    if isinstance(output, dict):
        return next((output[k] for k in _ALL_KEYS if output.get(k) is not None), None)
    return getattr(output, CACHE_KEY, None)


def cache_kwargs(cache: Any) -> dict[str, Any]:
    """``{CACHE_KEY: cache}``: the keyword the installed transformers expects for a cache."""
    return {CACHE_KEY: cache}


def pop_cache(kwargs: dict[str, Any], given: Any = None) -> Any:
    """Take the cache out of ``kwargs`` under whichever name a caller used (``given`` first).

    Generation on transformers ≥ 5.24 passes ``cache=``, older versions and our own decoding loop
    ``past_key_values=``; a model forward accepts both and forwards one.
    """
    found = [kwargs.pop(k) for k in _ALL_KEYS if k in kwargs]
    found = [c for c in ([given] if given is not None else []) + found if c is not None]
    if len(found) > 1 and any(c is not found[0] for c in found[1:]):
        raise ValueError("pass the cache once, as `cache` or `past_key_values`, not both")
    return found[0] if found else None


__all__ = ["CACHE_KEY", "cache_kwargs", "cache_of", "pop_cache"]
