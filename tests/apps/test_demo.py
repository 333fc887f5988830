"""``vitron demo``: planned by the committed nano profile's Vitron LLM (no script), every turn run
and written; ``nano`` is the commands' default profile. Answers are not judged here: ``vitron
eval`` measures quality."""

from __future__ import annotations

import json

import pytest

from vitron.apps.cli import build_parser, main
from vitron.apps.demo import DEMO_TASKS, demo_samples, describe_profile


def test_planned_demo_runs_every_turn_with_the_nano_planner(tmp_path, capsys):
    out = tmp_path / "demo"
    stale = out / "01-vqa" / "07_mask_from-an-earlier-run.png"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"")
    argv = ["demo", "--out", str(out), "--workspace", str(tmp_path / "ws"), "--device", "cpu",
            "--no-progress"]  # fmt: skip
    assert main(argv) == 0  # no --profile: the default, nano
    printed = capsys.readouterr().out
    assert "planned by the 'nano' profile's Vitron LLM (ChatVitron), no script" in printed
    assert "FIXED BY A SCRIPT" not in printed
    record = json.loads((out / "demo.json").read_text())
    assert record["planner"] == "ChatVitron" and record["profile"] == "nano"
    assert [t["task"] for t in record["turns"]] == list(DEMO_TASKS)
    samples = demo_samples()
    for number, (turn, sample) in enumerate(zip(record["turns"], samples, strict=True), start=1):
        assert turn["request"] == sample.instruction and f"you> {sample.instruction}" in printed
        assert turn["error"] is None, turn  # the planner ran; whether it was right is the eval's
        assert turn["calls"] or turn["answer"], turn
        assert turn["expected"] and turn["measured"] and f"expected: {turn['expected']}" in printed
        folder = out / f"{number:02d}-{turn['task']}"
        inputs = len(sample.media) + len(sample.regions)  # the request's media and sketch
        assert len(turn["files"]) >= inputs
        assert all(
            (out / path).is_file() and (out / path).parent == folder for path in turn["files"]
        )
        pictured = turn["task"] not in ("vqa", "region_caption", "tracking")
        assert (folder / "expected.png").is_file() == pictured  # the world's answer, to compare
    assert not stale.exists()  # a turn's folder holds this run's files only
    tools = {c["name"] for t in record["turns"] for c in t["calls"]}
    assert tools, "the planner called no tool in the demo's requests"
    transcript = (out / "transcript.md").read_text()
    assert transcript.count("**you:**") == len(DEMO_TASKS) and "measured:" in transcript
    assert f"--thread {record['thread']}" in printed


def test_demo_samples_are_the_worlds_own_test_samples():
    samples = demo_samples()
    assert [s.task for s in samples] == list(DEMO_TASKS)
    assert all(s.split == "test" and s.id.startswith("shapes-test-0-") for s in samples)
    region = samples[DEMO_TASKS.index("region_caption")]
    assert len(region.regions) == 1 and region.regions[0].mask is not None
    assert [s.instruction for s in demo_samples()] == [s.instruction for s in samples]


def test_demo_banner_names_the_trained_and_the_random_parts():
    text = describe_profile("nano")
    trained, random = text.split("Still random weights")
    trained, absent = trained.split("No weights yet")
    assert "vitron_llm" in trained and "sam" in trained and "clip" in trained
    assert "sam2_video" in trained and "text_to_image" in trained and "vitron_llm" not in random
    assert "diffusion_signal" in absent and "diffusion_signal" not in trained
    assert "gligen_inpaint" in random and "instruct_pix2pix" in trained
    assert "gligen," in trained  # a collage of the text-to-image weights
    assert "Weights from checkpoints" not in describe_profile("tiny")


@pytest.mark.parametrize("command", [["chat"], ["run", "hi"], ["demo"]])
def test_nano_is_the_default_profile_and_vitron_profile_overrides_it(command, monkeypatch):
    monkeypatch.delenv("VITRON_PROFILE", raising=False)
    assert build_parser().parse_args(command).profile == "nano"
    monkeypatch.setenv("VITRON_PROFILE", "tiny")
    assert build_parser().parse_args(command).profile == "tiny"


def test_studio_graph_runs_default_to_nano(monkeypatch):
    from vitron.graphs import Context

    monkeypatch.delenv("VITRON_PROFILE", raising=False)
    assert Context().profile == "nano"
    monkeypatch.setenv("VITRON_PROFILE", "tiny")
    assert Context().profile == "tiny"


@pytest.mark.parametrize("separate", [False, True])
def test_demo_turns_share_one_conversation_unless_separate(tmp_path, separate, capsys):
    from tests.apps.scripted_planners import answer_only
    from vitron.apps.demo import run_demo
    from vitron.apps.session import Session
    from vitron.graphs import Context

    context = Context(profile="tiny", workspace=str(tmp_path / "ws"), device="cpu")
    samples = demo_samples()[:2]
    assert run_demo(context, tmp_path / "out", planner=answer_only(), samples=samples,
                    separate=separate, progress=False) == 0  # fmt: skip
    assert "ScriptedChatModel (--planner)" in capsys.readouterr().out  # says who planned
    threads = json.loads((tmp_path / "out" / "demo.json").read_text())["thread"].split()
    assert len(threads) == (2 if separate else 1)
    humans = [
        [m for m in Session(answer_only(), context, thread_id=t).history() if m.type == "human"]
        for t in threads
    ]
    assert [len(h) for h in humans] == ([1, 1] if separate else [2])


def test_retrieval_score_says_when_earlier_media_were_ranked_too():
    from vitron.apps.demo import measured_text
    from vitron.evals.harness import Outcome

    sample = demo_samples()[DEMO_TASKS.index("retrieval")]
    media = [f"img_{i:016x}" for i in range(len(sample.media))]
    outcome = Outcome(sample=sample, media=media)
    ranking = [{"handle": h} for h in [*media, "img_00000000000000aa"]]
    outcome.results.append({"name": "retrieve", "status": "success", "content": "",
                            "artifact": {"ranking": ranking}})  # fmt: skip
    text = measured_text("retrieval", outcome, {"r1": 0.0, "chance": 0.1})
    assert f"ranked {len(media) + 1} media: this request's {len(media)}" in text
    outcome.results[0]["artifact"]["ranking"] = ranking[:-1]
    assert "ranked" not in measured_text("retrieval", outcome, {"r1": 1.0, "chance": 0.1})


def test_retrieval_score_says_whether_the_answer_names_the_expected_picture():
    from vitron.apps.demo import measured_text
    from vitron.evals.harness import Outcome

    sample = demo_samples()[DEMO_TASKS.index("retrieval")]
    outcome = Outcome(sample=sample, media=[f"img_{i:016x}" for i in range(len(sample.media))])
    number = sample.gold["target"] + 1
    named = measured_text("retrieval", outcome, {"r1": 1.0, "chance": 0.1, "named": 1.0})
    assert f"the answer names picture {number}" in named
    missed = measured_text("retrieval", outcome, {"r1": 1.0, "chance": 0.1, "named": 0.0})
    assert f"the answer does not name picture {number}" in missed


def test_demo_approves_only_the_tool_its_request_asked_for(capsys):
    from vitron.apps.demo import approve_asked

    editing = demo_samples()[DEMO_TASKS.index("editing")]
    assert editing.gold["operation"] == "recolor"  # what the nano inpainting model was trained for
    decide = approve_asked(editing)
    assert decide({"tool": "edit_image", "question": "Run edit_image(...)?"}) == {
        "action": "approve"
    }
    refused = decide({"tool": "generate_video", "question": "Run generate_video(...)?"})
    assert refused["action"] == "reject" and refused["reason"]
    assert "approved" in capsys.readouterr().out
