"""The evaluation harness runs the real graph: an oracle (ground-truth calls on ground-truth tools)
scores 1.0, the random-weight ``tiny`` planner scores near chance, and the table tells them apart."""

from __future__ import annotations

import re

import pytest
from langchain_core.messages import AIMessage

from tests.evals.oracle import _context, oracle_planner, oracle_tools
from vitron.evals import ablations
from vitron.evals.report import markdown, to_json
from vitron.evals.runner import EvalSettings, evaluate, load_suite
from vitron.evals.shapes.dataset import EVAL_TASKS
from vitron.graphs.scripted import ScriptedChatModel, tool_call
from vitron.tools.profiles import load_profile

PER_TASK = 2


@pytest.fixture(scope="module")
def samples():
    return load_suite(EvalSettings(limit=PER_TASK * len(EVAL_TASKS)))


def settings(tmp_path, **kwargs) -> EvalSettings:
    return EvalSettings(workspace=str(tmp_path / "ws"), device="cpu", progress=False, **kwargs)


def full(report) -> dict:
    (run,) = [r for r in report["runs"] if r["name"] == "full"]
    return run["tasks"]


def test_the_oracle_scores_one_wherever_it_should(tmp_path, samples):
    report = evaluate(settings(tmp_path), samples, planner=oracle_planner, tools=oracle_tools())
    tasks = full(report)
    assert set(tasks) == set(EVAL_TASKS)
    for task, row in tasks.items():
        assert row["n"] == PER_TASK
        assert row["execution"] == 1.0, task
        if task not in ("vqa", "region_caption", "temporal_grounding"):
            assert row["module"] == row["arguments"] == 1.0, task
    expected = {"cIoU": 1.0, "gIoU": 1.0, "Acc@0.5": 1.0, "J&F": 1.0, "R@1": 1.0, "named": 1.0,
                "closing": 1.0, "accuracy": 1.0, "span_iou": 1.0, "l1": 0.0}  # fmt: skip
    for task, row in tasks.items():
        for metric, value in expected.items():
            if metric in row:
                assert row[metric] == pytest.approx(value), (task, metric)
    assert tasks["editing"]["psnr_outside"] == pytest.approx(100.0)  # identical outside: capped
    assert tasks["generation"]["attribute_accuracy"] is None  # no classifier given: n/a, not 0
    table = markdown(report)
    assert "| full | referring_segmentation | 2 | 1.000 |" in table and "n/a" in table
    assert '"suite": "shapes"' in to_json(report)


def test_tiny_scores_near_chance_and_the_table_tells_it_from_the_oracle(tmp_path, samples):
    tiny = full(evaluate(settings(tmp_path, max_new_tokens=24), samples))
    oracle = full(
        evaluate(settings(tmp_path), samples, planner=oracle_planner, tools=oracle_tools())
    )
    for task in EVAL_TASKS:
        if "module" in tiny[task]:
            assert tiny[task]["module"] <= 0.5 < oracle[task]["module"]
    primary = {"referring_segmentation": "cIoU", "grounding": "Acc@0.5", "retrieval": "R@1",
               "vqa": "accuracy", "region_caption": "accuracy", "temporal_grounding": "accuracy"}  # fmt: skip
    for task, metric in primary.items():
        chance = (tiny[task].get("chance") or {}).get(metric, 0.0)
        assert tiny[task][metric] <= chance + 0.5, (task, tiny[task][metric])
        assert oracle[task][metric] - tiny[task][metric] >= 0.5
    # tracking's floor is an empty mask's score (objects leave the frame); the oracle is above it
    assert oracle["tracking"]["J&F"] > tiny["tracking"]["chance"]["J&F"] - 1e-9
    assert tiny["tracking"]["J&F"] <= oracle["tracking"]["J&F"]


def blind_planner(sample):
    """Answers a temporal question without looking: the whole clip as the span."""
    if sample.task == "temporal_grounding":
        last = sample.gold["frames"] - 1
        return ScriptedChatModel(steps=[AIMessage(content=f"In frames 0 to {last}.")])
    return oracle_planner(sample)


def test_the_chance_rows_are_what_a_blind_guess_scores(tmp_path, samples):
    tasks = full(evaluate(settings(tmp_path), samples, planner=blind_planner, tools=oracle_tools()))
    temporal = tasks["temporal_grounding"]
    assert temporal["accuracy"] == pytest.approx(temporal["chance"]["accuracy"])
    # the whole picture as the mask: its cIoU is the targets' share of the pixels
    seg = [s for s in samples if s.task == "referring_segmentation"]
    whole = sum(int(s.gold["mask"].sum()) for s in seg) / sum(s.gold["mask"].size for s in seg)
    assert tasks["referring_segmentation"]["chance"]["cIoU"] == pytest.approx(whole)
    assert 0 < whole < 0.5
    # one of the scene's objects' boxes, drawn at random
    grounding = [s for s in samples if s.task == "grounding"]
    expected = sum(1 / s.gold["objects"] for s in grounding) / len(grounding)
    assert tasks["grounding"]["chance"]["Acc@0.5"] == pytest.approx(expected)
    assert all(s.gold["objects"] >= 2 for s in grounding)  # a referring expression picks one


def test_a_crashing_planner_is_a_failed_sample_not_a_failed_run(tmp_path, samples):
    class Exploding(ScriptedChatModel):
        def _generate(self, *args, **kwargs):
            raise RuntimeError("planner fell over")

    report = evaluate(settings(tmp_path), samples[:3], planner=Exploding(steps=[]),
                      tools=oracle_tools())  # fmt: skip
    assert all(r["error"] and "planner fell over" in r["error"] for r in report["records"])
    assert all(row["execution"] == 0.0 for row in full(report).values())


def test_signals_ablation_strips_signals_and_synergy_needs_a_checkpoint(tmp_path, samples):
    tiny = load_profile("tiny")
    assert ablations.provides(tiny, "signals")[0]
    ok, why = ablations.provides(tiny, "synergy")
    assert not ok and "provides no synergy ablation" in why
    call = AIMessage(content="", tool_calls=[{"name": "segment_image", "id": "a",
                                              "args": {"image": "img_1", "signal": "emb_2"}}])  # fmt: skip
    assert ablations.strip_signals(call).tool_calls[0]["args"] == {"image": "img_1"}
    report = evaluate(settings(tmp_path, ablate=["signals", "synergy"]), samples[:2],
                      planner=oracle_planner, tools=oracle_tools())  # fmt: skip
    assert [r["name"] for r in report["runs"]] == ["full", "no signals"]
    assert any("no synergy ablation" in n and "no row" in n for n in report["notes"])
    assert "| no signals | referring_segmentation |" in markdown(report)


def test_a_profile_with_a_no_synergy_planner_gets_a_derived_profile(tmp_path, samples):
    profile = tmp_path / "mine.toml"
    profile.write_text('extends = "tiny"\nname = "mine"\n[components.vitron_llm_no_synergy]\n'
                       'loader = "vitron.agent.loading:load_vitron_llm"\ncheckpoint = "tiny"\n'
                       'constrained = false\n[components.sam_signal_no_synergy]\n'
                       'loader = "signal_projector"\ncheckpoint = "tiny"\nin_dim = 64\n'
                       'out_dim = 64\ntokens = 2\n')  # fmt: skip
    assert ablations.provides(load_profile(str(profile)), "synergy")[0]
    derived = load_profile(ablations.no_synergy_profile(str(profile), tmp_path))
    llm = derived.component("vitron_llm")
    assert derived.name == "mine-no-synergy" and llm.checkpoint == "tiny"
    assert llm.options == {"constrained": False} and "sam" in derived.components
    assert derived.component("sam_signal").options["tokens"] == 2  # its own projector
    assert load_profile("tiny").component("sam_signal").options["tokens"] == 1
    report = evaluate(settings(tmp_path, profile=str(profile), ablate=["synergy"]), samples[:1],
                      planner=oracle_planner, tools=oracle_tools())  # fmt: skip
    assert [r["name"] for r in report["runs"]] == ["full", "no synergy"]
    assert report["runs"][1]["profile"].endswith("mine-no-synergy.toml")


def test_ground_truth_calls_execute_on_the_real_backends(tmp_path, samples):
    """The world's target invocations are valid calls of the real tools (tiny weights): every one
    executes; the scores then measure the random tools, not the planner."""
    one_each = samples[: len(EVAL_TASKS)]
    report = evaluate(settings(tmp_path), one_each, planner=oracle_planner)
    for task, row in full(report).items():
        assert row["execution"] == 1.0, (task, [r for r in report["records"] if r["task"] == task])
        if "module" in row:
            assert row["module"] == row["arguments"] == 1.0, task


def test_generation_is_scored_per_attribute_as_well_as_all_together(tmp_path, samples):
    """Issue 14 asks for shape and colour; the shapes world's prompts name a position too. A judge
    that reads colours and no shape gives colour 1, shape 0, and 0 for both together."""
    from tests.evals.oracle import ColourJudge

    report = evaluate(settings(tmp_path), samples, planner=oracle_planner, tools=oracle_tools(),
                      classifier=ColourJudge())  # fmt: skip
    row = full(report)["generation"]
    assert row["per_attribute"]["colour"] == 1.0 and row["per_attribute"]["shape"] == 0.0
    assert row["shape_colour"] == 0.0 and row["attribute_accuracy"] == 0.0
    table = markdown(report)
    assert "shape+colour" in table
    assert "full generation, each attribute right: shape 0.000, colour 1.000" in table


def copying_planner(sample):
    """Asks retrieve to rank the request's pictures (in the order attached, as ChatVitron passes
    them), then answers with the place the result gives the gold target ("img_… (picture 7)
    score …"), wherever it ranked."""

    def call(messages):
        media, _, _ = _context(messages)
        return tool_call("retrieve", instruction=sample.gold["query"], media=media)

    def answer(messages):
        media, _, _ = _context(messages)
        target = re.escape(media[sample.gold["target"]])
        place = re.search(rf"{target} \((picture \d+)\)", messages[-1].text)
        return AIMessage(content=f"The best match is {place.group(1) if place else 'unknown'}.")

    return ScriptedChatModel(steps=[call, answer])


def test_the_tool_and_the_gold_number_the_pictures_alike(tmp_path):
    """retrieve names each picture by its place among the media the call names ("picture 7": the
    7th image the user attached); the gold's target counts the sample's media. An answer copying
    the place the tool gives the target must name the picture the scoring expects."""
    retrieval = load_suite(EvalSettings(limit=4, tasks=["retrieval"]))
    report = evaluate(settings(tmp_path), retrieval, planner=copying_planner)
    records = [r for r in report["records"] if r["run"] == "full"]
    assert len(records) == 4
    assert all(r["scores"]["named"] == 1.0 for r in records), records
    assert {s.gold["target"] for s in retrieval} != {0}  # not only the first picture
