"""The results table: task × metric, per run (the full system and each ablation), as markdown for
people and JSON for programs."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from vitron.evals.scoring import METRIC_LABELS


def _cell(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return "inf" if math.isinf(value) else f"{value:.3f}"
    return str(value)


def markdown(report: Mapping[str, Any]) -> str:
    """The report as a markdown document: header facts, one table, notes."""
    head = [f"# vitron eval — suite {report['suite']}, split {report['split']}", "",
            f"- profile: `{report['profile']}`; planner: {report['planner']}",
            f"- seed: {report['seed']}; samples: {report['samples']}"
            + (f" of tasks {', '.join(report['tasks'])}" if report.get("tasks") else "")
            + f"; created {report['created']}",
            ""]  # fmt: skip
    runs: Sequence[Mapping[str, Any]] = report["runs"]
    used = [
        m for m in METRIC_LABELS if any(m in row for run in runs for row in run["tasks"].values())
    ]
    columns = ["run", "task", "n", *[METRIC_LABELS[m] for m in used], "s/turn"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for run in runs:
        for task, row in run["tasks"].items():
            cells = [run["name"], task, str(row["n"]), *[_cell(row.get(m)) if m in row else "–" for m in used],
                     _cell(row.get("latency"))]  # fmt: skip
            lines.append("| " + " | ".join(cells) + " |")
    notes = ["", "exec: execution success rate (every call succeeded; for text tasks, an answer "
             "without calls). module / args: invocation exact match of tool names / of arguments "
             "too. closing: the sentence after the calls is the reference's, word for word. "
             "named: the retrieval answer names the right picture, and no other. s/turn: "
             "mean seconds per user turn. n/a: not computable here; –: not a metric of that "
             "task."]  # fmt: skip
    chances = []
    for task, row in runs[0]["tasks"].items() if runs else []:
        for metric, value in (row.get("chance") or {}).items():
            if value is not None:
                chances.append(f"{task} {METRIC_LABELS.get(metric, metric)} {value:.3f}")
    if chances:
        notes.append("Chance (referring segmentation: the whole picture as the mask; grounding: "
                     "one of the scene's objects at random; tracking: an empty mask, objects leave "
                     "the frame; temporal grounding: the whole clip as the span): "
                     + "; ".join(chances) + ".")  # fmt: skip
    for run in runs:
        for task, row in run["tasks"].items():
            if row.get("placed") is not None:
                notes.append(f"{run['name']} {task}: objects drawn in their box (a region of "
                             f"their colour whose box has IoU ≥ 0.5 with it) {_cell(row['placed'])} "
                             f"(the world's own renders: {_cell(row.get('placed_reference'))}); "
                             "in box: that, and the asked shape and colour read inside the box "
                             "(attr acc: the shape and colour alone).")  # fmt: skip
            if row.get("per_operation"):
                parts = "; ".join(
                    f"{op} {_cell(v['attribute_accuracy'])} / {_cell(v['psnr_outside'])} dB"
                    for op, v in row["per_operation"].items()
                )
                notes.append(f"{run['name']} {task}, per operation (attr acc / PSNR out): "
                             f"{parts} (a restyle's attribute: the background in the asked "
                             "tone).")  # fmt: skip
            if row.get("per_attribute"):
                rates = ", ".join(f"{k} {_cell(v)}" for k, v in row["per_attribute"].items())
                notes.append(f"{run['name']} {task}, each attribute right: {rates}.")
    for note in report.get("notes", []):
        notes.append(f"- {note}")
    return "\n".join(head + lines + notes) + "\n"


def to_json(report: Mapping[str, Any]) -> str:
    def clean(value: Any) -> Any:
        if isinstance(value, float) and (math.isinf(value) or math.isnan(value)):
            return None
        if isinstance(value, Mapping):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        return value

    return json.dumps(clean(report), indent=2)
