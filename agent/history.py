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
"""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage


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


__all__ = ["exchange_starts", "last_exchanges"]
