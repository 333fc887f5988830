"""What a reply says when calls of the current turn failed or found nothing.

Vitron's training conversations (the released data's and this project's) hold no failed calls, so
a generated answer after one narrates a result that does not exist: asked to segment a circle
Grounding DINO could not find, the nano planner answered "Here is the mask of the circle." next to
the tool's error, and after ``ground`` found no box, "The circle is in the box shown."
:class:`~vitron.agent.chat_model.ChatVitron` therefore reports such calls in the tool's own words
instead of a generated answer (it still lets the model call a tool again).
"""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.messages import BaseMessage, ToolMessage

from vitron.agent.messages import REJECTED, REJECTION_REASON
from vitron.tools.backend import NOTHING_FOUND


def found_nothing(message: ToolMessage) -> bool:
    """Whether ``message`` is a call that ran and found nothing (``NOTHING_FOUND``)."""
    return isinstance(message.artifact, dict) and bool(message.artifact.get(NOTHING_FOUND))


def made_nothing(message: ToolMessage) -> bool:
    """Whether ``message`` gives the answer nothing to present: a failure, or nothing found."""
    return message.status == "error" or found_nothing(message)


def unresolved_failures(turn: Sequence[BaseMessage]) -> list[ToolMessage]:
    """The tool results of ``turn`` (the messages after the user's last one) that failed or found
    nothing and that no later call of the same tool made good, in order."""
    results = [m for m in turn if isinstance(m, ToolMessage)]
    return [m for k, m in enumerate(results) if made_nothing(m)
            and not any(later.name == m.name and not made_nothing(later)
                        for later in results[k + 1 :])]  # fmt: skip


def failure_report(failed: Sequence[ToolMessage], *, anything_done: bool) -> str:
    """The answer for a turn whose calls ``failed``: each in the tool's words (a rejected call as
    the user's decision, with its reason when one was given; a search that found nothing as
    such), after a sentence saying whether anything else was done when a call failed."""
    sentences = []
    for message in failed:
        name = message.name or "a tool"
        text = message.text.strip().rstrip(".")
        if message.additional_kwargs.get(REJECTED):
            reason = str(message.additional_kwargs.get(REJECTION_REASON) or "").strip().rstrip(".")
            why = f": {reason}." if reason else ", as you decided."
            sentences.append(f"I did not run {name}{why}")
        elif found_nothing(message):
            sentences.append(f"{name} found nothing: {text}.")
        else:
            sentences.append(
                f"{text}." if text.startswith(f"{name} failed") else f"{name}: {text}."
            )
    errors = [m for m in failed if m.status == "error" and not m.additional_kwargs.get(REJECTED)]
    if not errors:
        return " ".join(sentences)
    head = "Part of that did not work." if anything_done else "That did not work."
    return " ".join([head, *sentences])


__all__ = ["failure_report", "found_nothing", "made_nothing", "unresolved_failures"]
