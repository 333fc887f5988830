"""The shapes world: deterministic, disjoint splits, a compositional split that training never
sees, unique references, sizes for the nano models, and records in the training format."""

from __future__ import annotations

import numpy as np
import pytest

from vitron.agent.training.dataset import load_sample
from vitron.agent.training.records import read_jsonl
from vitron.evals.metrics import vqa_correct
from vitron.evals.shapes.dataset import EVAL_TASKS, fingerprint, generate, make_sample
from vitron.evals.shapes.language import ATTRIBUTE_ORDER, attribute_descriptions, fits, refer
from vitron.evals.shapes.records import main as records_main
from vitron.evals.shapes.scene import DEFAULT_SIZE, Obj, Scene, render, sample_scene
from vitron.evals.shapes.tasks import BUILDERS, named_first
from vitron.evals.shapes.video import render_video, sample_video
from vitron.evals.shapes.vocab import COLOURS, HELD_OUT, SHAPES

PER_TASK = 3
COUNT = PER_TASK * len(BUILDERS)


def test_same_seed_same_bytes_and_another_seed_differs():
    first = [fingerprint(s) for s in generate("train", COUNT, seed=5)]
    again = [fingerprint(s) for s in generate("train", COUNT, seed=5)]
    other = [fingerprint(s) for s in generate("train", COUNT, seed=6)]
    assert first == again
    assert not set(first) & set(other)
    # any sample can be made alone, out of order, with the same bytes
    assert fingerprint(make_sample("train", 7, seed=5)) == first[7]


def test_splits_are_disjoint():
    prints = {split: {fingerprint(s) for s in generate(split, COUNT)}
              for split in ("train", "validation", "test", "compositional")}  # fmt: skip
    names = list(prints)
    for i, a in enumerate(names):
        assert len(prints[a]) == COUNT  # no repeats inside a split either
        for b in names[i + 1 :]:
            assert not prints[a] & prints[b], f"{a} and {b} share samples"


def test_compositional_split_holds_no_training_combination():
    assert len(HELD_OUT) == len(SHAPES)  # one per shape; every colour and shape still trains
    assert {c for c, _ in HELD_OUT} < set(COLOURS) and {s for _, s in HELD_OUT} == set(SHAPES)
    for split in ("train", "validation", "test"):
        for sample in generate(split, 2 * COUNT):
            shown = {tuple(c) for c in sample.meta["combinations"]}
            assert not shown & HELD_OUT, f"{sample.id} ({sample.task}) shows {shown & HELD_OUT}"
    for sample in generate("compositional", COUNT):
        shown = {tuple(c) for c in sample.meta["combinations"]}
        assert shown & HELD_OUT, f"{sample.id} ({sample.task}) has no held-out combination"


def test_every_task_and_module_is_generated_with_varied_phrasing():
    samples = list(generate("train", 8 * len(BUILDERS)))
    assert {s.task for s in samples} == set(BUILDERS)
    modules = {c.name for s in samples for c in s.calls}
    assert modules == {"segment_image", "ground", "track_video", "retrieve", "edit_image",
                       "generate_image", "generate_video", "image_to_video", "edit_video"}  # fmt: skip
    segment = [s.instruction for s in samples if s.task == "referring_segmentation"]
    assert len({i.split(" the ")[0] for i in segment}) >= 3  # several templates
    assert any(len(s.calls) == 2 for s in samples if s.task == "multi_step")
    assert set(EVAL_TASKS) == set(BUILDERS) - {"caption"}


def test_referring_expressions_pick_out_exactly_one_object():
    rng = np.random.default_rng(0)
    relational = 0
    for _ in range(150):
        scene = sample_scene(rng)
        for index in range(len(scene.objects)):
            expression = refer(scene, index, rng)
            if expression is None:
                continue
            for description in attribute_descriptions(scene, index):
                keys = [k for k in ATTRIBUTE_ORDER if any(w == getattr(scene.objects[index], k)
                                                          for w in description.split())]  # fmt: skip
                assert sum(fits(o, scene.objects[index], keys) for o in scene.objects) == 1
            relational += " of the " in expression or expression.split()[1].endswith("most")
    assert relational > 0  # duplicated objects force relations and extremes


def test_relation_reference_by_hand():
    twin = dict(shape="circle", colour="red", size="small", texture="plain", y=0.5)
    scene = Scene((Obj(x=0.2, **twin), Obj(x=0.8, **twin),
                   Obj("square", "blue", "large", "plain", 0.5, 0.5)))  # fmt: skip
    expression = refer(scene, 0, np.random.default_rng(0))
    assert expression in ("the small red circle left of the square",
                          "the small red circle left of the blue square",
                          "the small red circle left of the large square")  # fmt: skip


def test_rendering_sizes_masks_and_occlusion():
    back = Obj("square", "red", "large", "plain", 0.5, 0.5)
    front = Obj("circle", "blue", "small", "striped", 0.55, 0.5)
    scene = Scene((back, front))
    rendered = render(scene)
    assert rendered.image.shape == (DEFAULT_SIZE, DEFAULT_SIZE, 3) == (64, 64, 3)
    assert not (rendered.masks[0] & rendered.masks[1]).any()  # the front object hides the back
    assert tuple(rendered.image[rendered.masks[0]][0]) == COLOURS["red"]
    striped = rendered.image[rendered.masks[1]]
    assert len({tuple(p) for p in striped}) == 2  # colour and its darker stripe
    small = render(scene, 32)
    assert small.image.shape == (32, 32, 3) and small.masks[0].shape == (32, 32)
    x1, y1, x2, y2 = rendered.boxes[0]
    assert 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1


def test_videos_move_objects_and_let_them_leave():
    rng = np.random.default_rng(2)
    left = 0
    for _ in range(20):
        video = sample_video(rng)
        assert 8 <= video.frames <= 16
        rendered = render_video(video)
        assert rendered.frames.shape == (video.frames, 64, 64, 3)
        assert rendered.masks[0].shape == (video.frames, 64, 64) and rendered.masks[0][0].any()
        left += not rendered.masks[0][-1].any()
    assert left > 0


def test_samples_are_written_in_the_training_record_format(tmp_path, capsys):
    assert records_main([str(tmp_path), "--split", "train", "--count", str(len(BUILDERS))]) == 0
    path = tmp_path / "train.jsonl"
    assert str(path) in capsys.readouterr().out
    records, skipped = read_jsonl(path)
    assert not skipped and len(records) == len(BUILDERS)
    by_task = {r.meta["task"]: r for r in records}
    seg = by_task["referring_segmentation"]
    assert seg.task == "segment_image" and seg.signals[0].token == "[SEG]" and seg.signals[0].mask
    assert seg.messages[1].text.startswith("<Module>segment_image</Module><Instruction>the ")
    assert (
        by_task["vqa"].task is None
        and by_task["vqa"].messages[-1].text == by_task["vqa"].meta["answer"]
    )
    assert by_task["region_caption"].regions[0].mask
    two = by_task["multi_step"]
    assert [m.role for m in two.messages] == ["user", "assistant", "tool", "assistant"]
    for record in records:
        loaded = load_sample(record, tmp_path)  # the training loader reads every file back
        assert len(loaded.media) == len(record.media)
    again = tmp_path / "again"
    records_main([str(again), "--split", "train", "--count", str(len(BUILDERS))])
    files = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()
                   and again not in p.parents)  # fmt: skip
    assert files and all((tmp_path / f).read_bytes() == (again / f).read_bytes() for f in files)


@pytest.mark.parametrize("split", ["nope"])
def test_unknown_split_and_task_are_clear_errors(split):
    with pytest.raises(ValueError, match="unknown split"):
        make_sample(split, 0)
    with pytest.raises(ValueError, match="unknown shapes tasks"):
        make_sample("train", 0, tasks=["juggling"])


def test_an_added_object_stands_where_its_place_words_put_it():
    """'add a small red circle at the left': the world's after-picture has the new object at the
    middle of the left side, the centre ``edit_image`` reads from those words, so the judge's
    box (``gold["box"]``) is where the tool was asked to draw."""
    from vitron.tools.placement import read_place

    adds = [s for i in range(300) if (s := make_sample("test", i, tasks=["editing"])).gold["operation"] == "add"]  # fmt: skip
    assert adds
    for sample in adds:
        edit = sample.gold["edit"]
        place = read_place(edit[edit.rindex(" at the ") :])
        x1, y1, x2, y2 = sample.gold["box"]
        assert abs((x1 + x2) / 2 - place.x) <= 0.03 and abs((y1 + y2) / 2 - place.y) <= 0.03, edit


def test_count_and_is_there_answers_name_the_asked_objects_first_left_to_right():
    blue = Obj("circle", "blue", "large", "plain", 0.7, 0.5)
    red = Obj("circle", "red", "small", "plain", 0.2, 0.5)
    assert named_first([blue, red], "2", none="none") == "red circle, blue circle: 2"
    assert named_first([], "no", none="nothing green") == "nothing green: no"
    said = {}
    for sample in generate("train", 200, tasks=["vqa"]):
        gold = sample.gold
        said[gold["kind"]] = said.get(gold["kind"], 0) + ("named_first" in gold)
        if "named_first" in gold:  # the word after the colon, no option word before it
            names, word = gold["named_first"].rsplit(": ", 1)
            assert word == gold["answer"] == sample.answer  # the eval's answer is unchanged
            assert vqa_correct(gold["named_first"], gold["answer"], gold["options"])
            if gold["kind"] == "count":
                assert (0 if names == "none" else len(names.split(", "))) == int(word)
    assert said["count"] > 0 and said["exist"] > 0
    assert said["colour"] == said["shape"] == said["relation"] == 0
