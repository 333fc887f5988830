"""What a reply says when calls of the current turn failed.

Vitron's training conversations (the released data's and this project's) hold no failed calls, so
a generated answer after one narrates a result that does not exist: asked to segment a circle
Grounding DINO could not find, the nano planner answered "Here is the mask of the circle." next to
the tool's error. :class:`~vitron.agent.chat_model.ChatVitron` therefore reports such failures in
the tool's own words instead of a generated answer (it still lets the model call a tool again).
"""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.messages import BaseMessage, ToolMessage

from vitron.agent.messages import REJECTED, REJECTION_REASON


def unresolved_failures(turn: Sequence[BaseMessage]) -> list[ToolMessage]:
    """The failed tool results of ``turn`` (the messages after the user's last one) that no later
    successful call of the same tool made good, in order."""
    results = [m for m in turn if isinstance(m, ToolMessage)]
    return [m for k, m in enumerate(results) if m.status == "error"
            and not any(later.name == m.name and later.status != "error"
                        for later in results[k + 1 :])]  # fmt: skip


def failure_report(failed: Sequence[ToolMessage], *, anything_done: bool) -> str:
    """The answer for a turn whose calls ``failed``: each failure in the tool's words (a rejected
    call as the user's decision, with its reason when one was given), after a sentence saying
    whether anything else was done."""
    sentences = []
    for message in failed:
        name = message.name or "a tool"
        if message.additional_kwargs.get(REJECTED):
            reason = str(message.additional_kwargs.get(REJECTION_REASON) or "").strip().rstrip(".")
            why = f": {reason}." if reason else ", as you decided."
            sentences.append(f"I did not run {name}{why}")
            continue
        text = message.text.strip().rstrip(".")
        sentences.append(f"{text}." if text.startswith(f"{name} failed") else f"{name}: {text}.")
    if all(m.additional_kwargs.get(REJECTED) for m in failed):
        return " ".join(sentences)
    head = "Part of that did not work." if anything_done else "That did not work."
    return " ".join([head, *sentences])


__all__ = ["failure_report", "unresolved_failures"]
