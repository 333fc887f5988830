"""Splits of the shapes world: which samples exist, deterministically, for a seed.

Sample ``i`` of a split is built from a generator seeded with ``(seed, split, i, attempt)``, so any
sample can be made alone, in any order, on the fly or to disk, and the same seed gives the same
bytes. Tasks are interleaved (sample ``i`` is of task ``tasks[i % len(tasks)]``), so the first N
samples of a split cover every task. ``train``, ``validation`` and ``test`` never show or name a
held-out colour–shape combination (:data:`~vitron.evals.shapes.vocab.HELD_OUT`); every
``compositional`` sample is about one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence

import numpy as np

from vitron.evals.sample import Sample
from vitron.evals.shapes.scene import DEFAULT_SIZE, record_combinations
from vitron.evals.shapes.tasks import BUILDERS, ON_REQUEST

SPLITS: dict[str, int] = {"train": 0, "validation": 1, "test": 2, "compositional": 3}
"""Split name -> its key in the seed (so splits draw from disjoint random streams)."""
EVAL_TASKS: tuple[str, ...] = tuple(t for t in BUILDERS if t != "caption")
"""Tasks ``vitron eval --suite shapes`` scores (captions are taught, not scored)."""
MAX_ATTEMPTS = 64


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; the shapes world has {', '.join(SPLITS)}")
    return split


def check_tasks(tasks: Sequence[str]) -> list[str]:
    """``tasks`` as a list, or a ValueError naming the unknown ones and every known task."""
    builders = BUILDERS | ON_REQUEST
    unknown = sorted(set(tasks) - set(builders))
    if unknown:
        raise ValueError(f"unknown shapes tasks {unknown}; known: {', '.join(builders)}")
    if not tasks:
        raise ValueError(f"no shapes task named; known: {', '.join(builders)}")
    return list(tasks)


def make_sample(
    split: str, index: int, *, seed: int = 0, tasks: Sequence[str] | None = None,
    size: int = DEFAULT_SIZE,
) -> Sample:  # fmt: skip
    """Sample ``index`` of ``split``: its task is ``tasks[index % len(tasks)]`` (default: every
    task the world teaches, :data:`~vitron.evals.shapes.tasks.BUILDERS`)."""
    tasks = check_tasks(tasks or list(BUILDERS))
    builders = BUILDERS | ON_REQUEST
    task = tasks[index % len(tasks)]
    compositional = check_split(split) == "compositional"
    for attempt in range(MAX_ATTEMPTS):
        rng = np.random.default_rng([seed, SPLITS[split], index, attempt])
        with record_combinations() as seen:
            sample = builders[task](rng, compositional, size)
        if sample is not None:
            stream = f"{task}-" if task in ON_REQUEST else ""  # its own indices, its own ids
            sample.id = f"shapes-{split}-{seed}-{stream}{index:06d}"
            sample.split = split
            sample.meta = {"seed": seed, "index": index, "attempt": attempt,
                           "combinations": sorted(seen)}  # fmt: skip
            return sample
    raise RuntimeError(f"no valid {task} sample for {split} #{index} in {MAX_ATTEMPTS} attempts")


def generate(
    split: str, count: int, *, seed: int = 0, tasks: Sequence[str] | None = None,
    size: int = DEFAULT_SIZE, start: int = 0,
) -> Iterator[Sample]:  # fmt: skip
    """Samples ``start .. start + count - 1`` of ``split``, made one at a time."""
    for index in range(start, start + count):
        yield make_sample(split, index, seed=seed, tasks=tasks, size=size)


def fingerprint(sample: Sample) -> str:
    """A hash of a sample's instruction, media bytes and answer (for determinism and overlap
    checks)."""
    digest = hashlib.sha256(sample.instruction.encode())
    for media in sample.media:
        digest.update(media.kind.encode())
        digest.update(str(media.pixels.shape).encode())
        digest.update(np.ascontiguousarray(media.pixels).tobytes())
    digest.update(sample.answer.encode())
    return digest.hexdigest()
