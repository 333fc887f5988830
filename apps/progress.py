"""Terminal rendering of a running turn: progress bars for model loading and denoising steps, and
one line per tool call and result."""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from langchain_core.messages import AIMessage, ToolMessage
from tqdm import tqdm


class TerminalRenderer:
    """Receives :meth:`vitron.apps.session.Session.send` events and prints them for a person."""

    def __init__(self, out: TextIO | None = None, bars: bool = True) -> None:
        self.out = out or sys.stdout
        self.bars = bars and self.out.isatty()  # bars redraw in place: only on a terminal
        self._bars: dict[str, tqdm] = {}

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "message":
            self._message(event["message"])
        elif kind == "load":
            self._load(event)
        elif kind == "step":
            self._step(event)

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()

    def _load(self, event: dict[str, Any]) -> None:
        key = f"load:{event['component']}"
        if event["status"] == "start":
            self._bars[key] = tqdm(
                total=1, desc=f"loading {event['component']}", file=self.out, disable=not self.bars,
                bar_format="{desc}: {elapsed}", leave=False,
            )  # fmt: skip
        elif key in self._bars:
            self._bars.pop(key).close()
            self._print(f"  loaded {event['component']} in {event.get('seconds', 0):.1f}s")

    def _step(self, event: dict[str, Any]) -> None:
        key = f"steps:{event.get('tool', '')}"
        bar = self._bars.get(key)
        if bar is None:
            bar = tqdm(total=event["total"], desc=event.get("tool", "steps"), file=self.out,
                       disable=not self.bars, leave=False)  # fmt: skip
            self._bars[key] = bar
        bar.n = event["step"]
        bar.refresh()
        if event["step"] >= event["total"]:
            self._bars.pop(key).close()

    def _message(self, message: AIMessage | ToolMessage) -> None:
        if isinstance(message, ToolMessage):
            mark = "✗" if message.status == "error" else "←"
            self._print(f"  {mark} {message.name}: {message.text}")
            return
        for call in message.tool_calls:
            args = ", ".join(f"{k}={json.dumps(v)}" for k, v in call["args"].items())
            self._print(f"  → {call['name']}({args})")
        if message.text:
            self._print(f"vitron: {message.text}")

    def _print(self, text: str) -> None:
        tqdm.write(text, file=self.out)
