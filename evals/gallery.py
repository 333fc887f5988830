"""What ``vitron gallery`` shows: a fixed grid of shapes-world prompts, video requests, pictures to
animate and edits, each run through the real ``generate_image`` / ``generate_video`` /
``image_to_video`` / ``edit_image`` tools of a profile and judged as ``vitron eval`` judges them.

Text-to-image prompts cover every shape at every horizontal position (the generation task's
three x values), colours and backgrounds taken in turn, worded by the generation task itself
(:func:`~vitron.evals.shapes.tasks.generation_sample`); video requests one per direction, worded
by the ``video_generation`` task. Box layouts are the first ``layout`` requests of the ``test``
split; pictures to animate the first ``image_to_video`` request of each direction there; edits
the first recolour, removal, add and move samples. Each call gets the same fixed ``seed``, so a page is
reproducible.
Images are H x W x 3 uint8; boxes ``[x1, y1, x2, y2]`` normalised to [0, 1], top-left origin.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vitron.evals.harness import Outcome, read_turn, store_media
from vitron.evals.sample import Sample, resolve
from vitron.evals.shapes.scene import Obj
from vitron.evals.shapes.vocab import BACKGROUNDS, COLOURS, SHAPES, is_held_out

GRID_X: dict[str, float] = {"left": 0.2, "centre": 0.5, "right": 0.8}
"""Position word -> the object's centre x, as the generation task places objects."""
EDIT_OPERATIONS: tuple[str, ...] = ("recolor", "remove", "add", "move", "restyle")
"""The edit operations shown: the ones ``edit_image`` runs through the inpainting pipeline (a move
also pastes the object itself; nano's adds are inpainted too)."""
EDIT_SEARCH = 400
"""How many ``test``-split samples are searched for the wanted edit operations and directions."""


def prompt_grid(limit: int | None = None) -> list[Sample]:
    """Generation samples for every shape x position (15), in that order, each a large plain
    object at mid height; colours run through the vocabulary in turn (skipping the held-out
    colour-shape pairs, which the ``test`` split never asks for), backgrounds likewise."""
    from vitron.evals.shapes.tasks import generation_sample

    colours, backgrounds = list(COLOURS), list(BACKGROUNDS)
    samples: list[Sample] = []
    turn = 0
    for shape in SHAPES:
        for x in GRID_X.values():
            while is_held_out(colours[turn % len(colours)], shape):
                turn += 1
            obj = Obj(shape, colours[turn % len(colours)], "large", "plain", x, 0.5)
            sample = generation_sample(obj, backgrounds[len(samples) % len(backgrounds)])
            sample.id = f"gallery-t2i-{len(samples) + 1:02d}"
            samples.append(sample)
            turn += 1
    return samples[:limit] if limit is not None else samples


def video_prompts(limit: int | None = None) -> list[Sample]:
    """Text-to-video requests, one per direction (left, right, up, down, in that order), each a
    large plain object; shapes, colours and backgrounds in turn (skipping held-out colour-shape
    pairs). The world's clip of prompt ``i`` is drawn from ``default_rng(i)``."""
    from vitron.evals.shapes.tasks import video_generation_sample
    from vitron.evals.shapes.video import DIRECTIONS

    colours, backgrounds = list(COLOURS), list(BACKGROUNDS)
    samples: list[Sample] = []
    for i, direction in enumerate(DIRECTIONS):
        shape = SHAPES[i % len(SHAPES)]
        colour = next(c for c in colours[i:] + colours[:i] if not is_held_out(c, shape))
        obj = Obj(shape, colour, "large", "plain", 0.5, 0.5)
        sample = video_generation_sample(np.random.default_rng(i), obj, direction,
                                         backgrounds[i % len(backgrounds)])  # fmt: skip
        sample.id = f"gallery-t2v-{i + 1:02d}"
        samples.append(sample)
    return samples[:limit] if limit is not None else samples


def layout_samples(count: int, seed: int = 0) -> list[Sample]:
    """The first ``count`` ``test``-split ``layout`` requests: 1–2 objects, each with its box."""
    from vitron.evals.shapes.dataset import make_sample

    return [make_sample("test", index, seed=seed, tasks=["layout"]) for index in range(count)]


def animation_samples(limit: int | None = None, seed: int = 0) -> list[Sample]:
    """The first ``test``-split ``image_to_video`` request of each direction (left, right, up,
    down, in that order)."""
    from vitron.evals.shapes.dataset import make_sample
    from vitron.evals.shapes.video import DIRECTIONS

    first: dict[str, Sample] = {}
    for index in range(EDIT_SEARCH):
        if len(first) == len(DIRECTIONS):
            break
        sample = make_sample("test", index, seed=seed, tasks=["image_to_video"])
        first.setdefault(sample.gold["direction"], sample)
    samples = [first[d] for d in DIRECTIONS if d in first]
    return samples[:limit] if limit is not None else samples


def edit_samples(per_operation: int, seed: int = 0) -> list[Sample]:
    """The first ``per_operation`` ``test``-split editing samples of each of
    :data:`EDIT_OPERATIONS`, grouped by operation in that order."""
    from vitron.evals.shapes.dataset import make_sample

    found: dict[str, list[Sample]] = {op: [] for op in EDIT_OPERATIONS}
    for index in range(EDIT_SEARCH):
        if all(len(v) >= per_operation for v in found.values()):
            break
        sample = make_sample("test", index, seed=seed, tasks=["editing"])
        chosen = found.get(sample.gold["operation"])
        if chosen is not None and len(chosen) < per_operation:
            chosen.append(sample)
    return [s for op in EDIT_OPERATIONS for s in found[op]]


@dataclass
class Shown:
    """One gallery row: the sample, what the tool made, and how the world's judge reads it."""

    sample: Sample
    outcome: Outcome
    inputs: list[np.ndarray] = field(default_factory=list)
    output: np.ndarray | None = None
    area: np.ndarray | None = None
    """The mask of what ``edit_image`` changed (H x W bool), when it reports one."""
    reads: dict[str, str] = field(default_factory=dict)
    """The classifier's reading of the output (inside the target's box for edits)."""
    objects: list[dict[str, float]] = field(default_factory=list)
    """A layout's objects as :func:`vitron.evals.scoring.judge_layout` judges them, in order."""
    expected: np.ndarray | None = None
    """What the world itself draws for the sample (the generation reference, the edit's after)."""
    expected_reads: dict[str, str] = field(default_factory=dict)
    """The classifier's reading of ``expected``: where it is wrong, so is its reading of outputs."""
    values: dict[str, Any] = field(default_factory=dict)
    """:func:`vitron.evals.scoring.score`'s per-sample values (``attr``, ``psnr``, ``l1``…)."""
    seconds: float = 0.0

    @property
    def error(self) -> str | None:
        """The tool's error text when it made nothing."""
        failed = [r for r in self.outcome.results if r["status"] != "success"]
        return failed[-1]["content"] if failed and self.output is None else None


def run_gallery(
    samples: Sequence[Sample], profile: str, *, seed: int = 0, device: str = "cpu",
    classifier: Any = None,
) -> Iterator[Shown]:  # fmt: skip
    """Run each sample's ground-truth call (with ``seed``) through the profile's tools, one
    workspace thread per sample in a temporary workspace, and judge the output with
    ``classifier`` (the shapes-world one by default). A tool failure is a row with its error."""
    from langchain_core.messages import AIMessage

    from vitron.evals import scoring
    from vitron.evals.classifier import load_classifier
    from vitron.tools.backend import Services, build_tools
    from vitron.tools.profiles import load_profile
    from vitron.tools.registry import ModelRegistry
    from vitron.tools.workspace import Workspace

    judge = classifier if classifier is not None else load_classifier()
    options = scoring.Options(classifier=judge)
    names = sorted({call.name for s in samples for call in s.calls})
    with tempfile.TemporaryDirectory(prefix="vitron-gallery-") as root:
        services = Services(workspace=Workspace(root), models=ModelRegistry(load_profile(profile),
                                                                            device=device))  # fmt: skip
        tools = {tool.name: tool for tool in build_tools(services, names=names)}
        for number, sample in enumerate(samples):
            thread = f"gallery-{number:03d}"
            workspace = services.workspace.for_thread(thread)
            outcome = Outcome(sample=sample, workspace=workspace)
            outcome.media = [info.handle for info in store_media(workspace, sample)[0]]
            started = time.perf_counter()
            for k, target in enumerate(sample.calls):
                args = {**resolve(target.args, outcome.media, [r["artifact"] for r in outcome.results]),
                        "seed": seed}  # fmt: skip
                call = {"type": "tool_call", "id": f"call_{k}", "name": target.name, "args": args}
                message = tools[target.name].invoke(call, {"configurable": {"thread_id": thread}})
                read_turn(outcome, [AIMessage("", tool_calls=[call]), message])
            shown = Shown(sample=sample, outcome=outcome, seconds=time.perf_counter() - started,
                          inputs=[m.pixels for m in sample.media])  # fmt: skip
            _judge(shown, judge, options)
            yield shown


def frame_strip(frames: np.ndarray) -> np.ndarray:
    """T x H x W x 3 frames side by side: H x (T * W) x 3."""
    return np.concatenate(list(frames), axis=1)


def _judge(shown: Shown, judge: Any, options: Any) -> None:
    """Fill ``shown``'s output, edited area, classifier reading and scores."""
    from vitron.evals import scoring

    sample, outcome = shown.sample, shown.outcome
    tool = sample.calls[-1].name
    shown.values = scoring.score(outcome, options)
    if sample.task in ("video_generation", "image_to_video"):  # clips: strips of their frames
        clip = scoring.predicted_video(outcome, tool)
        shown.expected = frame_strip(sample.gold["reference"])
        if clip is not None:
            shown.output = frame_strip(clip)
            shown.reads = {"moved": shown.values.get("moved") or "nowhere"}
        return
    shown.output = scoring.predicted_image(outcome, tool)
    if sample.task == "layout":
        shown.expected = sample.gold["reference"]
        shown.objects = shown.values.get("objects") or []
        return
    result = outcome.last_result(tool)
    mask = (result or {}).get("artifact", {}).get("mask")
    if mask and outcome.workspace is not None:
        shown.area = np.asarray(outcome.workspace.get_mask(mask), dtype=bool)
    generation = sample.task == "generation"
    shown.expected = sample.gold["reference" if generation else "after"]
    box = None if generation else sample.gold.get("box")
    if sample.gold.get("background"):  # a background change: the tone around the objects
        from vitron.evals.restyle import background_tone

        objects = ~np.asarray(sample.gold["region"], dtype=bool)
        shown.expected_reads = {"background": background_tone(shown.expected, objects)}
        if shown.output is not None:
            shown.reads = {"background": background_tone(shown.output, objects)}
        return
    if not generation and not sample.gold.get("expected"):  # a removal names no attribute
        return
    shown.expected_reads = judge.predict(shown.expected, box)
    if shown.output is not None:
        shown.reads = judge.predict(shown.output, box)
