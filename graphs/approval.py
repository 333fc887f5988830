"""Human approval before expensive or destructive tool calls.

A tool node whose tool is named in the run's ``Context.approve_before`` pauses with LangGraph's
``interrupt`` before it runs. The interrupt's value (:func:`approval_request`) shows the call; the
run resumes with ``Command(resume=decision)`` where the decision is one of

- ``"approve"`` or ``{"action": "approve"}``: run the call as the planner wrote it;
- ``{"action": "edit", "args": {...}}``: run it with these arguments instead (validated as usual);
- ``"reject"`` or ``{"action": "reject", "reason": "..."}``: do not run it; the planner receives an
  error ``ToolMessage`` saying the person rejected the call.

This is LangGraph's standard interrupt protocol, so the CLI (a prompt), the web UI (buttons) and
Studio (its resume box) all drive it the same way. A run without a checkpointer could never be
resumed, so it is never paused: approval applies only where the graph has persistence (every app,
Studio and the Agent Server do; an in-memory evaluation run does not).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.messages import ToolCall, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.types import interrupt

from vitron.agent.messages import REJECTED, REJECTION_REASON
from vitron.graphs.context import DEFAULT_APPROVE_BEFORE

__all__ = ["DEFAULT_APPROVE_BEFORE", "Decision", "approval_request", "pending_approvals", "review"]

APPROVAL = "approval"
"""The ``type`` of the interrupt value this module raises (other interrupts may exist)."""

RESUME_SCHEMA: dict[str, Any] = {
    "title": "Approval decision",
    "type": "object",
    "properties": {
        "action": {"type": "string", "enum": ["approve", "edit", "reject"]},
        "args": {"type": "object", "description": "with action=edit: the arguments to run with"},
        "reason": {
            "type": "string",
            "description": "with action=reject: why (the planner sees it)",
        },
    },
    "required": ["action"],
}

_CHECKPOINTER_KEY = (
    "__pregel_checkpointer"  # langgraph._internal._constants.CONFIG_KEY_CHECKPOINTER
)


@dataclass(frozen=True)
class Decision:
    """A person's answer to an approval request."""

    action: Literal["approve", "edit", "reject"]
    args: dict[str, Any] | None = None
    reason: str = ""

    @classmethod
    def parse(cls, value: Any) -> Decision:
        """Read a resume value: a word (``approve``/``yes``/``reject``/``no``) or a dict with
        ``action`` (and ``args`` for ``edit``, ``reason`` for ``reject``). Anything else rejects,
        so an unreadable answer never runs an expensive call."""
        if isinstance(value, Decision):
            return value
        if isinstance(value, str):
            word = value.strip().lower()
            if word in ("approve", "approved", "yes", "y", "ok"):
                return cls("approve")
            return cls("reject", reason="" if word in ("reject", "no", "n") else value.strip())
        if isinstance(value, dict):
            action = str(value.get("action", "")).lower()
            if action == "approve":
                return cls("approve")
            if action == "edit" and isinstance(value.get("args"), dict):
                return cls("edit", args=dict(value["args"]))
            if action == "edit":
                return cls("reject", reason="an edit came without arguments")
            return cls("reject", reason=str(value.get("reason") or ""))
        return cls("reject", reason=f"unreadable decision {value!r}")


def can_pause(config: RunnableConfig) -> bool:
    """Whether this run has a checkpointer, so a pause can be resumed."""
    return (config.get("configurable") or {}).get(_CHECKPOINTER_KEY) is not None


def approval_request(call: ToolCall) -> dict[str, Any]:
    """The interrupt value shown to a person: the tool, its arguments, and how to answer."""
    args = ", ".join(f"{k}={v!r}" for k, v in call["args"].items())
    return {
        "type": APPROVAL,
        "tool": call["name"],
        "args": dict(call["args"]),
        "call_id": call.get("id") or "",
        "question": f"Run {call['name']}({args})?",
        "answers": 'resume with "approve", "reject", {"action": "reject", "reason": "…"} or '
        '{"action": "edit", "args": {…}}',
    }


def rejection(call: ToolCall, reason: str = "") -> ToolMessage:
    """What the planner receives for a rejected call (marked :data:`REJECTED`)."""
    why = f": {reason}" if reason else ""
    return ToolMessage(
        content=f"The user rejected this call to {call['name']}{why}. It did not run and made "
        "nothing; do not call it again unless the user asks.",
        tool_call_id=call.get("id") or "",
        name=call["name"],
        status="error",
        additional_kwargs={REJECTED: True, **({REJECTION_REASON: reason} if reason else {})},
    )


def review(call: ToolCall, approve_before: Any, config: RunnableConfig) -> ToolCall | ToolMessage:
    """The call to run (as written, or with edited arguments), or the rejection to return.

    Pauses the run (``interrupt``) when ``call`` names a tool in ``approve_before`` and the run can
    be resumed. On resume the node runs again and ``interrupt`` returns the decision."""
    if call["name"] not in set(approve_before or ()) or not can_pause(config):
        return call
    decision = Decision.parse(interrupt(approval_request(call), response_schema=RESUME_SCHEMA))
    if decision.action == "approve":
        return call
    if decision.action == "edit":
        return {**call, "args": decision.args or {}}
    return rejection(call, decision.reason)


def pending_approvals(interrupts: Any) -> list[tuple[str, dict[str, Any]]]:
    """``(interrupt id, request)`` for each approval among a run's interrupts (as found in
    ``StateSnapshot.interrupts`` or an ``__interrupt__`` stream chunk)."""
    found = []
    for item in interrupts or ():
        value = getattr(item, "value", None)
        if isinstance(value, dict) and value.get("type") == APPROVAL:
            found.append((item.id, value))
    return found
