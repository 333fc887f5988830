"""``vitron eval``: load a suite, run it through the graph (and each requested ablation), score,
and write the table.

Suites: ``shapes`` (generated, splits ``train``/``validation``/``test``/``compositional``) and the
real benchmarks from a local ``--data`` folder: ``refcoco``, ``refcoco+``, ``refcocog``, ``davis``,
``ref-youtube-vos``, ``magicbrush``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from vitron.evals.sample import Sample

SUITES = ("shapes", "refcoco", "refcoco+", "refcocog", "davis", "ref-youtube-vos", "magicbrush")
DEFAULT_SPLITS = {"shapes": "test", "refcoco": "val", "refcoco+": "val", "refcocog": "val",
                  "davis": "val", "ref-youtube-vos": "train", "magicbrush": "test"}  # fmt: skip
SHAPES_DEFAULT_PER_TASK = 10


@dataclass
class EvalSettings:
    suite: str = "shapes"
    split: str | None = None
    limit: int | None = None
    seed: int = 0
    data: str | None = None
    """Folder of a real benchmark (not used by ``shapes``)."""
    profile: str = "tiny"
    workspace: str = ""
    device: str = "auto"
    step_limit: int = 4
    planner_spec: str | None = None
    max_new_tokens: int = 64
    ablate: list[str] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    """shapes only: score just these tasks (default: every scored task). The samples are the ones
    the whole suite gives those tasks, so a filtered run's rows match a full run's."""
    out: str = "vitron-eval"
    progress: bool = True
    media_labels: str = "world"
    """shapes only: ``names`` labels each sample's media with a file-like name drawn regardless of
    the task (``IMG_0412``, ``holiday photo``; :mod:`vitron.evals.shapes.labels`), as a user's
    files are, instead of the world's ``scene``, ``clip``, ``before``."""


def load_suite(settings: EvalSettings) -> list[Sample]:
    """The samples of the suite's split, at most ``limit``."""
    suite, split, limit = (
        settings.suite,
        settings.split or DEFAULT_SPLITS.get(settings.suite),
        settings.limit,
    )
    if suite == "shapes":
        samples = _shapes_samples(split, limit, settings.seed, settings.tasks)
        return _labelled(samples, settings.media_labels, settings.seed)
    if settings.media_labels != "world":
        raise ValueError(f"--media-labels relabels shapes-world media; suite {suite} has its own")
    if settings.tasks:
        raise ValueError(f"--tasks picks shapes-world tasks; suite {suite} has its own task")
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; suites: {', '.join(SUITES)}")
    if not settings.data:
        raise ValueError(f"suite {suite} reads a local copy of the benchmark: give --data FOLDER")
    samples: Iterable[Sample]
    if suite.startswith("ref") and suite != "ref-youtube-vos":
        from vitron.evals.benchmarks.refcoco import SPLIT_BY, load_refcoco

        samples = load_refcoco(
            settings.data, split=split, split_by=SPLIT_BY[suite], limit=limit, name=suite
        )
    elif suite == "davis":
        from vitron.evals.benchmarks.davis import load_davis

        samples = load_davis(settings.data, subset=split, limit=limit)
    elif suite == "ref-youtube-vos":
        from vitron.evals.benchmarks.ytvos import load_ref_youtube_vos

        samples = load_ref_youtube_vos(settings.data, split=split, limit=limit)
    else:
        from vitron.evals.benchmarks.magicbrush import load_magicbrush

        samples = load_magicbrush(settings.data, limit=limit)
    return list(samples)


def _labelled(samples: list[Sample], form: str, seed: int) -> list[Sample]:
    """``samples`` with their media labelled the ``form`` way, the names drawn from ``seed``."""
    import numpy as np

    from vitron.evals.shapes.labels import check_media_labels, relabel_media

    if check_media_labels(form) == "world":
        return samples
    rng = np.random.default_rng([seed, 2])
    return [relabel_media(sample, rng, form) for sample in samples]


def _shapes_samples(split: str, limit: int | None, seed: int, tasks: Sequence[str]) -> list[Sample]:
    """The shapes suite's samples: sample ``i`` has task ``EVAL_TASKS[i % len(EVAL_TASKS)]``;
    with ``tasks``, only the indices of those tasks, in order, until ``limit``. A task scored
    only on request (:data:`~vitron.evals.shapes.tasks.ON_REQUEST`) draws from its own indices,
    taken in turn with the suite's."""
    from vitron.evals.shapes.dataset import EVAL_TASKS, check_split, make_sample
    from vitron.evals.shapes.tasks import ON_REQUEST

    check_split(split)
    unknown = sorted(set(tasks) - set(EVAL_TASKS) - set(ON_REQUEST))
    if unknown:
        raise ValueError(f"unknown shapes tasks {unknown}; scored tasks: "
                         f"{', '.join(EVAL_TASKS)}; on request: {', '.join(ON_REQUEST)}")  # fmt: skip
    wanted = set(tasks or EVAL_TASKS)
    count = limit if limit is not None else SHAPES_DEFAULT_PER_TASK * len(wanted)

    def stream(indices: Iterable[int], tasks: Sequence[str]) -> Iterator[Sample]:
        # a function, so each stream keeps its own tasks (a generator expression in the loop
        # below would read the loop's last task when it runs)
        return (make_sample(split, i, seed=seed, tasks=tasks) for i in indices)

    streams = [stream(itertools.count(), [task]) for task in ON_REQUEST if task in wanted]
    if wanted - set(ON_REQUEST):
        indices = (i for i in itertools.count() if EVAL_TASKS[i % len(EVAL_TASKS)] in wanted)
        streams.insert(0, stream(indices, EVAL_TASKS))
    in_turn = (next(s) for _ in itertools.count() for s in streams)
    return list(itertools.islice(in_turn, count))


def evaluate(
    settings: EvalSettings,
    samples: Sequence[Sample] | None = None,
    *,
    planner: Any = None,
    tools: Sequence[Any] | None = None,
    classifier: Any = None,
) -> dict[str, Any]:
    """Run ``samples`` (default: the suite's) through the graph for the full system and each
    ablation the profile provides; returns the report (see :mod:`vitron.evals.report`).

    ``planner``: a chat model or a per-sample factory (default: ``--planner`` or the profile's
    ``ChatVitron``); ``tools``: the graph's tools (default: every backend); ``classifier``: the
    attribute judge of generated and edited images."""
    from langchain_core.language_models import BaseChatModel
    from tqdm import tqdm

    from vitron.evals import ablations, scoring
    from vitron.evals.harness import run_samples
    from vitron.graphs import Context
    from vitron.tools.profiles import load_profile

    samples = list(samples if samples is not None else load_suite(settings))
    profile = load_profile(settings.profile)
    context = Context(profile=settings.profile, workspace=settings.workspace or Context().workspace,
                      device=settings.device, step_limit=settings.step_limit,
                      seed=settings.seed)  # fmt: skip
    base = planner if planner is not None else _default_planner(settings)
    notes = []
    if settings.media_labels != "world":
        notes.append(f"media labelled with file-like names (--media-labels "
                     f"{settings.media_labels}), not the world's")  # fmt: skip
    runs: list[tuple[str, Any, Any]] = [("full", base, context)]
    for ablation in settings.ablate:
        ok, why = ablations.provides(profile, ablation)
        notes.append(f"ablation {ablation}: {why}" + ("" if ok else " — no row"))
        if not ok:
            continue
        if ablation == "signals":
            wrapped = (
                ablations.TextOnlyInvocations(inner=base)
                if isinstance(base, BaseChatModel)
                else (lambda s, f=base: ablations.TextOnlyInvocations(inner=f(s)))
            )
            runs.append(("no signals", wrapped, context))
        else:
            derived = ablations.no_synergy_profile(settings.profile)
            runs.append(("no synergy", base, replace(context, profile=derived)))
    classifier_accuracy = None
    if classifier is not None:
        classifier_accuracy = classifier_self_check(classifier, samples)
        if classifier_accuracy:
            notes.append("attribute classifier's own accuracy on the ground-truth images: "
                         + ", ".join(f"{k} {v:.3f}" for k, v in classifier_accuracy.items()))  # fmt: skip
    else:
        notes.append("attribute accuracy (generation, editing): n/a — no attribute classifier "
                     "trained on the world was given")  # fmt: skip
    options = scoring.Options(classifier=classifier)
    report_runs, records_all = [], []
    with tqdm(total=len(samples) * len(runs), desc=f"eval {settings.suite}", unit="sample",
              file=sys.stderr, disable=not settings.progress) as bar:  # fmt: skip
        for name, run_planner, run_context in runs:
            records = run_samples(samples, run_planner, run_context, tools=tools,
                                  score=lambda o: scoring.score(o, options), progress=bar.update)  # fmt: skip
            tasks: dict[str, list] = {}
            for record in records:
                tasks.setdefault(record["task"], []).append(record)
            report_runs.append({"name": name, "profile": run_context.profile,
                                "tasks": {t: scoring.aggregate(t, rs) for t, rs in tasks.items()}})  # fmt: skip
            records_all += [{"run": name, **r} for r in records]
    return {
        "suite": settings.suite, "split": settings.split or DEFAULT_SPLITS.get(settings.suite),
        "profile": settings.profile, "seed": settings.seed, "samples": len(samples),
        "tasks": list(settings.tasks) or None,
        "planner": settings.planner_spec or (type(base).__name__ if planner is not None else
                                             f"ChatVitron (max_new_tokens {settings.max_new_tokens})"),
        "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "runs": report_runs, "notes": notes, "records": records_all,
        "classifier_accuracy": classifier_accuracy,
    }  # fmt: skip


def classifier_self_check(classifier: Any, samples: Sequence[Sample]) -> dict[str, float]:
    """The attribute classifier's accuracy on the samples' own ground-truth images (generation
    references, edited-image targets), so its judgements of outputs can be weighed."""
    from vitron.evals.metrics import attribute_accuracy

    images, expected, boxes = [], [], []
    for sample in samples:
        gold = sample.gold
        for obj in gold.get("objects", []) if sample.task == "layout" else []:
            images.append(gold["reference"])
            expected.append(obj["expected"])
            boxes.append(obj["box"])
        if sample.task == "video_generation":  # each frame of the world's clip
            images.extend(gold["reference"])
            expected.extend([gold["expected"]] * len(gold["reference"]))
            boxes.extend([None] * len(gold["reference"]))
            continue
        if sample.task == "video_editing":  # each judged frame of the edited clip
            if gold.get("expected"):
                images.extend(gold["after"][t] for t in gold["frames"])
                expected.extend([gold["expected"]] * len(gold["frames"]))
                boxes.extend(gold["boxes"])
            continue
        image = gold.get("reference") if sample.task == "generation" else gold.get("after")
        if image is not None and gold.get("expected"):
            images.append(image)
            expected.append(gold["expected"])
            boxes.append(gold.get("box"))
    return attribute_accuracy(classifier, images, expected, boxes)


GOLD = "gold"
"""``--planner gold``: every sample's ground-truth calls (a per-sample scripted planner), so the
tools are scored through the graph without the planner's mistakes."""


def _default_planner(settings: EvalSettings) -> Any:
    from vitron.graphs.planner import planner_from_spec

    if settings.planner_spec == GOLD:
        from vitron.evals.gold_planner import gold_planner

        return gold_planner
    if settings.planner_spec:
        return planner_from_spec(settings.planner_spec)
    from vitron.agent.chat_model import ChatVitron

    return ChatVitron(max_new_tokens=settings.max_new_tokens, seed=settings.seed)


def write_report(report: dict[str, Any], out: str | Path) -> tuple[Path, Path]:
    """Write ``eval-<suite>-<split>.md`` and ``.json`` under ``out``."""
    from vitron.evals.report import markdown, to_json

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"eval-{report['suite']}-{report['split']}".replace("+", "plus")
    md, js = folder / f"{stem}.md", folder / f"{stem}.json"
    md.write_text(markdown(report))
    js.write_text(to_json(report))
    return md, js
