"""File-like media labels (``--media-labels names``): drawn regardless of the task, so neither a
planner trained on them nor an eval run with them can read the task from a label, and the rest of
each sample (pixels, words, gold) is the world's."""

from __future__ import annotations

import dataclasses
from collections import defaultdict

import numpy as np
import pytest

from vitron.evals.runner import EvalSettings, load_suite
from vitron.evals.shapes.dataset import generate
from vitron.evals.shapes.labels import WORLD_LABELS, relabel_media

TASKS = ["referring_segmentation", "editing", "tracking", "retrieval", "vqa"]


def test_names_are_drawn_regardless_of_the_task():
    samples = list(generate("train", 200, tasks=TASKS))
    rng = np.random.default_rng(0)
    labels: dict[str, set[str]] = defaultdict(set)
    for sample in samples:
        relabelled = relabel_media(sample, rng)
        assert [m.kind for m in relabelled.media] == [m.kind for m in sample.media]
        assert all(
            a.pixels is b.pixels for a, b in zip(relabelled.media, sample.media, strict=True)
        )
        assert dataclasses.replace(relabelled, media=sample.media) == sample  # nothing else moves
        for medium in relabelled.media:
            labels[sample.task].add(medium.label)
    world = {sample.media[0].label for sample in samples if sample.task == "editing"}
    assert world == {"before"}  # what the world gives away, and names take away:
    assert all(len(names) > 10 for names in labels.values()), labels
    assert "before" in set.union(*(labels[t] for t in TASKS if t != "editing"))
    assert any(not name.startswith("candidate") for name in labels["retrieval"])
    assert relabel_media(samples[0], rng, "world") is samples[0]
    with pytest.raises(ValueError, match="unknown media labels 'files'; known: world, names"):
        relabel_media(samples[0], rng, "files")


def test_an_eval_can_run_the_same_samples_with_file_like_names():
    settings = EvalSettings(split="test", limit=12, tasks=TASKS)
    world = load_suite(settings)
    named = load_suite(dataclasses.replace(settings, media_labels="names"))
    again = load_suite(dataclasses.replace(settings, media_labels="names"))
    assert [s.id for s in named] == [s.id for s in world]
    assert [s.instruction for s in named] == [s.instruction for s in world]
    assert [m.label for s in named for m in s.media] == [m.label for s in again for m in s.media]
    labels = {m.label for s in named for m in s.media}
    assert labels - {t.format(n=n) for t in WORLD_LABELS for n in range(1, 13)}, labels
    with pytest.raises(ValueError, match="--media-labels relabels shapes-world media"):
        load_suite(EvalSettings(suite="refcoco", data="x", media_labels="names"))
