"""Which part of a long conversation the planner reads.

The graph keeps every message of a thread; the planner's prompt does not have to. A conversation
is split into *exchanges*: a user message and everything after it up to the next user message (the
planner's calls, the tools' results, its answer). System messages are always kept: the graph's
carries the media listing, so media named in dropped exchanges can still be referred to by handle.

Two limits apply, in this order:

- a fixed window (``history_turns``): the last N exchanges, for a planner trained on single
  requests (``nano``), which reads a long multi-turn prompt worse than a fresh one;
- the context length: the oldest exchanges are dropped until the prompt and the reply fit the
  backbone's positions, never the current one (a prompt still too long then is logged). The
  chat model applies this one, since only it can count the prompt's tokens.

With a fixed window the media listing narrows too (:func:`listing_for_kept`): it names only the
media the kept exchanges name up to the current request, as in the single requests such a planner
was trained on, whose listing was written once, before the request's calls; a long conversation's
listing otherwise outgrows the window (ten images per retrieval request) and, with it, the
backbone's positions. Other media stay usable by handle; the listing says how many it hides. What
the current request's calls make is not listed (nor counted): their results name it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from vitron.agent.messages import narrow_listing
from vitron.tools.handles import HANDLE_PATTERN


def exchange_starts(messages: Sequence[BaseMessage]) -> list[int]:
    """Indices of the user messages that open each exchange, oldest first."""
    return [i for i, m in enumerate(messages) if isinstance(m, HumanMessage)]


def last_exchanges(messages: Sequence[BaseMessage], count: int | None) -> list[BaseMessage]:
    """``messages`` with only the last ``count`` exchanges (``None``: all); system messages and
    anything before the first user message are kept."""
    starts = exchange_starts(messages)
    if count is None or len(starts) <= count:
        return list(messages)
    cut = starts[-count] if count > 0 else len(messages)
    head = list(messages[: starts[0]])
    dropped = [m for m in messages[starts[0] : cut] if isinstance(m, SystemMessage)]
    return head + dropped + list(messages[cut:])


def named_handles(messages: Sequence[BaseMessage]) -> set[str]:
    """Media handles (frame suffixes dropped) in ``messages``' text, calls and regions."""
    found: set[str] = set()
    for message in messages:
        texts = [
            message.content if isinstance(message.content, str) else json.dumps(message.content)
        ]
        texts.append(json.dumps(message.additional_kwargs.get("regions") or [], default=str))
        if isinstance(message, AIMessage):
            texts.append(json.dumps([call["args"] for call in message.tool_calls], default=str))
        found.update(
            m.group(0).split("#")[0] for text in texts for m in HANDLE_PATTERN.finditer(text)
        )
    return found


def listing_for_kept(messages: Sequence[BaseMessage]) -> list[BaseMessage]:
    """``messages`` with each system message's media listing narrowed to the handles the other
    messages name up to the current request (:func:`vitron.agent.messages.narrow_listing`).
    What the current request's own calls made is left out: its results name it, and a planner
    trained on single requests saw the listing the request was made with at every step (with the
    generated picture listed before its second call, three nano planners called
    ``generate_image`` again for half of "generate …, then segment … in it")."""
    starts = exchange_starts(messages)
    current = starts[-1] if starts else len(messages)
    keep = named_handles([m for m in messages[: current + 1] if not isinstance(m, SystemMessage)])
    made = named_handles([m for m in messages[current + 1 :] if not isinstance(m, SystemMessage)])
    made -= keep
    return [
        m.model_copy(update={"content": narrow_listing(m.content, keep, made)})
        if isinstance(m, SystemMessage) and isinstance(m.content, str) else m
        for m in messages
    ]  # fmt: skip


__all__ = ["exchange_starts", "last_exchanges", "listing_for_kept", "named_handles"]
