"""A nano planner run's recipe beyond step counts and sizes (how a clip is read, the tasks of its
conversations, how their questions are answered): it reaches the data and the untrained model,
and stays with the run (a resume with another is refused). ``publish`` carries it into a build
from nothing (tests/training/test_nano_publish.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vitron.agent.training.conversations import write_conversations
from vitron.agent.training.nano import (
    NANO_GLUE,
    READING_TASKS,
    RECIPE_FILE,
    main,
    relabelled_suffix,
    run_recipe,
    stage_configs,
    train_nano,
)
from vitron.evals.shapes.dataset import generate

GLUE = {"video_num_frames": 16, "video_tokens_per_frame": 16}
DATA_TASKS = ["multi_step", "grounding", "multi_step"]


def test_the_recipe_reaches_the_conversations_and_the_untrained_model(tmp_path):
    run = tmp_path / "run"
    reading = ["temporal_grounding", "vqa"]
    steps = dict.fromkeys(("base", "regions", "align", "invoke", "ground"), 0)
    train_nano(run, records=6, reading_records=4, corpus_samples=8, steps=steps, glue=GLUE,
               data_tasks=DATA_TASKS, reading_tasks=reading)  # fmt: skip

    def tasks(part: str) -> list[str]:
        lines = (run / part / "train.jsonl").read_text().splitlines()
        return [json.loads(line)["meta"]["task"] for line in lines]

    assert tasks("data") == DATA_TASKS * 2 and tasks("reading") == reading * 2
    config = json.loads((run / "init" / "config.json").read_text())
    assert (config["video_num_frames"], config["video_tokens_per_frame"]) == (16, 16)
    assert json.loads((run / RECIPE_FILE).read_text()) == {
        "glue": GLUE, "data_tasks": DATA_TASKS, "reading_tasks": reading,
    }  # fmt: skip


def test_a_run_is_resumed_only_with_the_recipe_it_was_started_with(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.jsonl").write_text("{}\n")
    with pytest.raises(ValueError, match="started with the default recipe.*video_num_frames"):
        run_recipe(tmp_path, GLUE, None, None)
    assert run_recipe(tmp_path, None, None, READING_TASKS) == {}  # the defaults, named or not
    (tmp_path / RECIPE_FILE).write_text(json.dumps({"glue": GLUE}))
    assert run_recipe(tmp_path, GLUE, None, None) == {"glue": GLUE}
    with pytest.raises(ValueError, match="resume it as it was started"):
        run_recipe(tmp_path, None, None, None)


def test_unknown_glue_and_tasks_are_refused_before_anything_is_written(tmp_path, capsys):
    with pytest.raises(ValueError, match="unknown glue \\['video_fps'\\]"):
        run_recipe(tmp_path, {"video_fps": 4}, None, None)
    with pytest.raises(ValueError, match="unknown shapes tasks \\['segmentation'\\]"):
        run_recipe(tmp_path, None, ["segmentation"], None)
    assert list(tmp_path.iterdir()) == []
    for argv, message in (
        (["--data-tasks", "vqa,segmentation"], "--data-tasks: unknown shapes tasks"),
        (["--reading-tasks", ","], "--reading-tasks: no shapes task named"),
        (["--video-tokens-per-frame", "8"], "must be a square number"),
        (["--video-frames", str(NANO_GLUE["video_max_frames"] + 1)], "--video-frames must be"),
    ):
        with pytest.raises(SystemExit):
            main([str(tmp_path / "run"), *argv])
        assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_questions_are_answered_the_recipes_way_and_a_resume_keeps_it(tmp_path):
    assert run_recipe(tmp_path, None, None, None, "named-first") == {"vqa_answers": "named-first"}
    path = write_conversations(tmp_path / "data", "train", 40, seed=1, tasks=["vqa"],
                               vqa_answers="named-first")  # fmt: skip
    answers = [json.loads(line)["messages"][-1]["text"] for line in path.read_text().splitlines()]
    samples = list(generate("train", 40, seed=1, tasks=["vqa"]))
    assert answers == [s.gold.get("named_first", s.answer) for s in samples]
    assert sum("named_first" in s.gold for s in samples) >= 5  # the count and "is there" ones
    with pytest.raises(ValueError, match="started with {'vqa_answers': 'named-first'}"):
        run_recipe(tmp_path, None, None, None)  # a resume with the word answers
    with pytest.raises(ValueError, match="unknown VQA answer form 'rationale'"):
        write_conversations(tmp_path / "other", "train", 4, vqa_answers="rationale")
    assert not (tmp_path / "other").exists()


def test_media_are_labelled_the_recipes_way(tmp_path):
    assert run_recipe(tmp_path, None, None, None, media_labels="names") == {"media_labels": "names"}
    path = write_conversations(tmp_path / "data", "train", 24, seed=1, media_labels="names")
    world = write_conversations(tmp_path / "world", "train", 24, seed=1)
    named, plain = (path.read_text().splitlines(), world.read_text().splitlines())

    def listings(lines: list[str]) -> list[str]:
        return [json.loads(line)["messages"][0]["text"].split("Media in this conversation")[-1]
                for line in lines]  # fmt: skip

    assert "'before'" in "".join(listings(plain))  # the world's edits give their task away
    changed = [a != b for a, b in zip(listings(named), listings(plain), strict=True)]
    assert sum(changed) >= 15, changed  # every medium of a user is relabelled
    # the rest of each conversation is the world's: the same requests, calls and answers
    rest = [[m["text"] for m in json.loads(line)["messages"][1:]] for line in named]
    assert rest == [[m["text"] for m in json.loads(line)["messages"][1:]] for line in plain]
    with pytest.raises(ValueError, match="started with {'media_labels': 'names'}"):
        run_recipe(tmp_path, None, None, None)


def test_base_can_read_the_worlds_labels_and_the_steps_after_it_file_like_names(tmp_path):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    assert run_recipe(tmp_path / "a", None, None, None, media_labels="names",
                      base_media_labels="world") == {"media_labels": "names",
                                                     "base_media_labels": "world"}  # fmt: skip
    assert run_recipe(tmp_path / "b", None, None, None, media_labels="names",
                      base_media_labels="names") == {"media_labels": "names"}  # fmt: skip
    run = tmp_path / "run"
    steps = dict.fromkeys(("base", "regions", "align", "invoke", "ground"), 0)
    train_nano(run, records=12, reading_records=4, corpus_samples=8, steps=steps,
               media_labels="names", base_media_labels="world")  # fmt: skip
    assert relabelled_suffix(json.loads((run / RECIPE_FILE).read_text())) == "_names"

    def lines(part: str) -> list[dict]:
        return [json.loads(line) for line in (run / part / "train.jsonl").read_text().splitlines()]

    for part in ("data", "reading"):  # the same conversations, labelled two ways
        world, named = lines(part), lines(f"{part}_names")
        assert [r["id"] for r in world] == [r["id"] for r in named]
        assert [r["messages"][1:] for r in world] == [r["messages"][1:] for r in named]
    listings = [r["messages"][0]["text"] for r in lines("data") + lines("data_names")]
    assert "'scene'" in "".join(listings[:12]) and listings[:12] != listings[12:]

    configs = stage_configs(run, seed=0, profile="nano", steps=dict.fromkeys(steps, 1),
                            relabelled="_names")  # fmt: skip
    roots = {stage: [Path(d["root"]).name for d in c["data"]] for stage, c in configs.items()}
    assert roots["base"] == ["data", "reading"]  # base reads the world's labels
    for stage in ("align", "invoke", "ground"):
        assert roots[stage] == ["data_names", "reading_names"], stage
    with pytest.raises(ValueError, match="started with .*'base_media_labels': 'world'"):
        run_recipe(run, None, None, None, media_labels="names")  # a resume without it
