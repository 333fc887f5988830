"""The committed ``nano`` Vitron LLM plans: given held-out shapes-world requests to segment, ground,
track or retrieve, it calls the right tool through the real graph (nano profile backends,
constrained invocation decoding as the profile sets it), for segmentation and tracking with the
referring expression copied word for word, and the call executes; its retrieval answers name the
picture retrieve ranked first; a random planner would pick one of nine modules and could not copy. What
it does not do yet (see tools/profiles/nano/README.md): copy attributes on text-only requests,
make a second call after a tool result, answer VQA as often as issue 13 asks."""

from __future__ import annotations

import pytest

from vitron.evals.runner import EvalSettings, evaluate
from vitron.evals.shapes.dataset import make_sample
from vitron.tools.profiles import load_profile

INVOKING = {"referring_segmentation": 0, "grounding": 1, "tracking": 2, "retrieval": 3}
"""Tasks answered by one tool call -> their position in the test split's task cycle (12 tasks)."""
HELD_OUT = [INVOKING[task] + 12 * k for task in INVOKING for k in (40, 41)]
"""Test-split samples (seed 0) far from any training draw (training uses the train split)."""


def settings(tmp_path) -> EvalSettings:
    return EvalSettings(profile="nano", workspace=str(tmp_path / "ws"), device="cpu",
                        progress=False, max_new_tokens=48)  # fmt: skip


def test_nano_profile_names_a_trained_planner():
    spec = load_profile("nano").component("vitron_llm")
    assert not spec.is_tiny and spec.checkpoint.endswith("vitron_llm")


def test_nano_planner_calls_the_right_tool_with_the_referring_expression(tmp_path):
    samples = [make_sample("test", i) for i in HELD_OUT]
    report = evaluate(settings(tmp_path), samples)
    (run,) = [r for r in report["runs"] if r["name"] == "full"]
    records = report["records"]
    tasks = run["tasks"]
    for task in INVOKING:
        row = tasks[task]
        assert row["n"] == 2
        assert row["module"] == pytest.approx(1.0), (task, row, records)
        if task != "grounding":  # its expression is copied about half the time (README)
            assert row["arguments"] == pytest.approx(1.0), (task, row, records)
        assert row["execution"] == pytest.approx(1.0), (task, row)
    # the closing names the picture retrieve ranked first (best_match_places), here the right one
    assert tasks["retrieval"]["R@1"] == tasks["retrieval"]["named"] == 1.0, records
    assert all(
        r["calls"][:1] == ["segment_image"]
        for r in records
        if r["task"] == "referring_segmentation"
    )


def test_a_request_without_its_final_mark_still_gets_the_right_tool(tmp_path):
    """Every request the planner was trained on ends in ".", "?" or "!"; without one it answered
    "move the small star up" with "star" and called no tool for grounding requests. The profile's
    ``end_requests`` shows it the request with the mark a user left off."""
    import dataclasses

    samples = [make_sample("test", i) for i in HELD_OUT[:4]]  # referring and grounding
    bare = [dataclasses.replace(s, instruction=s.instruction.rstrip(".?!")) for s in samples]
    assert all(not s.instruction.endswith((".", "?", "!")) for s in bare)
    report = evaluate(settings(tmp_path), bare)
    (run,) = [r for r in report["runs"] if r["name"] == "full"]
    for task in ("referring_segmentation", "grounding"):
        assert run["tasks"][task]["module"] == pytest.approx(1.0), report["records"]


def test_the_tool_comes_from_the_request_not_from_how_the_media_are_named(tmp_path):
    """A user's files are named ``IMG_0412.jpg`` or ``holiday photo``, not by their part in the
    task as the world names them (``before`` for every edit's picture). The planner before the
    committed one read the task from those labels: with file-like names it sent 35 of 44 edit
    requests to another tool. The committed one was trained on such names after ``base``
    (tools/profiles/nano/README.md, "Media labels"): module 0.994 over 350 calls with them."""
    tasks = ["editing", "referring_segmentation", "grounding"]
    report = evaluate(EvalSettings(profile="nano", workspace=str(tmp_path / "ws"), device="cpu",
                                   progress=False, split="test", limit=18, tasks=tasks,
                                   media_labels="names"))  # fmt: skip
    (full,) = [run["tasks"] for run in report["runs"] if run["name"] == "full"]
    assert all(full[task]["n"] == 6 for task in tasks), full
    assert full["editing"]["module"] >= 5 / 6, report["records"]
    for task in ("referring_segmentation", "grounding"):
        assert full[task]["module"] == pytest.approx(1.0), report["records"]


def test_nano_planner_reads_pictures_sketched_regions_and_clips_better_than_chance(tmp_path):
    """The reading tasks, answered in words with no tool: through the graph, on the first 30
    test samples of each). On 400 each (tools/profiles/nano/README.md): VQA 0.755 against chance
    0.317 (issue 13's floor 0.85, missed), region captions 0.887 against 0.033, temporal
    grounding 0.785 (the whole clip: 0.740), so only its floor (0.70) is held here. The micro
    pipeline's planner does not learn these in its minutes (tests/training/test_micro_pipeline.py),
    so this is what guards their scoring and decoding with a trained planner."""
    tasks = ["vqa", "region_caption", "temporal_grounding"]
    report = evaluate(EvalSettings(profile="nano", workspace=str(tmp_path / "ws"), device="cpu",
                                   progress=False, split="test", limit=90, tasks=tasks))  # fmt: skip
    (full,) = [run["tasks"] for run in report["runs"] if run["name"] == "full"]
    assert all(full[task]["n"] == 30 and full[task]["execution"] == 1.0 for task in tasks), full
    assert full["vqa"]["accuracy"] > full["vqa"]["chance"]["accuracy"] + 0.15, full["vqa"]
    caption = full["region_caption"]
    assert caption["accuracy"] > caption["chance"]["accuracy"] + 0.5, caption
    assert full["temporal_grounding"]["accuracy"] >= 0.7, full["temporal_grounding"]
