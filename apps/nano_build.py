"""``vitron train --profile nano``: every trained part of the ``nano`` profile, from nothing, in one
command.

In order, each skipped when ``DIR/build.json`` says an earlier run of the same command finished
it (and resumed, through its own checkpoints, when one was interrupted):

1. the backends, each by ``vitron pretrain BACKEND --seed S --out DIR/BACKEND``: ``sam``, ``clip``,
   ``clip_tower`` (the planner's image tower), ``grounding_dino`` and ``sam2_video`` where
   :data:`vitron.tools.pretraining.BACKENDS` has it; ``sam2_video`` is trained in four stages
   (:data:`STAGES`), ``sam2_image`` into ``RUNS/sam2_image``, ``sam2_video --base
   RUNS/sam2_image`` into ``RUNS/sam2_video``, ``sam2_video_long --base RUNS/sam2_video`` into
   ``RUNS/sam2_video_long``, then ``sam2_video_finish --base RUNS/sam2_video_long`` into
   ``DIR/sam2_video`` (the earlier stages' ``pretrain.json`` kept beside it);
2. the nano Stable Diffusion (issue 14), chained by ``--base``: ``vitron pretrain diffusion_vae``
   into ``RUNS/diffusion_vae`` (an intermediate: the pipelines carry their own copy), then
   ``diffusion_text_to_image --base RUNS/diffusion_vae`` into ``DIR/text_to_image`` (the VAE's
   ``pretrain.json`` kept beside it as ``vae_pretrain.json``), then ``diffusion_inpaint --base
   DIR/text_to_image`` into ``DIR/inpaint`` and ``diffusion_text_to_video --base
   DIR/text_to_image`` into ``DIR/text_to_video``, then ``diffusion_image_to_video --base
   DIR/text_to_video`` into ``DIR/image_to_video`` (its frozen image encoder is the committed
   nano CLIP's vision half, as in the committed run, not the CLIP this build trains);
3. the planner: :func:`vitron.agent.training.nano.train_nano` (stages base -> align -> invoke ->
   ground) on the CLIP just trained, aligning ``[SEG]`` and ``[TRK]`` through the SAM and SAM 2
   just trained and ``[GEN]``/``[EDIT]`` through the two pipelines just trained, under
   ``DIR/runs/planner`` (``./vitron-nano-runs`` when DIR is the committed profile's folder), then
   :func:`~vitron.agent.training.nano.publish` into ``DIR`` (``vitron_llm/``, ``sam_signal/``,
   ``sam2_signal/``, ``image_signal/``).

A full build uses the step counts the committed parts were trained with (their ``pretrain.json``
and ``training.json``: :func:`committed_plan`), so it retraces the committed profile (a part whose
committed run stopped at its time cap is trained to the steps its command planned).
``DIR/nano.toml`` loads the result (``--profile DIR/nano.toml``): the committed ``nano.toml``'s
settings with each trained part's checkpoint pointing into ``DIR``; parts not trained here stay the
``tiny`` profile's random ones, as in the committed profile. ``DIR/build.json`` records each part's
command, wall time and final metrics. ``--quick`` shrinks every step count (a check of the
orchestration in well under a minute, not a usable profile).
"""

from __future__ import annotations

import json
import logging
import os
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from vitron.tools.profiles import toml_value

logger = logging.getLogger(__name__)

DEFAULT_OUT = "vitron-nano"
BACKEND_ORDER = ("sam", "clip", "clip_tower", "grounding_dino", "sam2_video")
"""Backends the planner's profile uses, in training order (those in ``BACKENDS`` are trained)."""
PLANNER_PARTS = ("sam_signal", "sam2_signal", "image_signal", "video_signal", "vitron_llm")
"""What :func:`~vitron.agent.training.nano.publish` writes: the planner and the projectors stage 2
aligns through SAM, SAM 2 and the diffusion pipelines."""
STAGES: dict[str, tuple[str, ...]] = {
    "sam2_video": ("sam2_image", "sam2_video", "sam2_video_long", "sam2_video_finish")
}
"""Parts trained in stages, each stage continuing the one before (``--base``): part -> its
``vitron pretrain`` backends in order. The earlier stages are intermediates trained into
``RUNS/<stage>`` (recorded as ``<part>/<stage>``, their ``pretrain.json`` kept in the part's folder
as ``<stage>_pretrain.json``); the last one trains the part's folder. SAM 2 learns to follow its
prompt on pictures, then to track on 8-frame clips, then on 12-frame ones, then on fresh 12-frame
ones at a third of that rate."""
DIFFUSION_PARTS: dict[str, tuple[str, str | None]] = {
    "diffusion_vae": ("diffusion_vae", None),
    "text_to_image": ("diffusion_text_to_image", "diffusion_vae"),
    "inpaint": ("diffusion_inpaint", "text_to_image"),
    "instruct_pix2pix": ("diffusion_instruct_pix2pix", "text_to_image"),
    "text_to_video": ("diffusion_text_to_video", "text_to_image"),
    "image_to_video": ("diffusion_image_to_video", "text_to_video"),
}
"""The diffusion parts in training order: part -> (its ``vitron pretrain`` backend, the part whose
folder is its ``--base``)."""
DIFFUSION_PROFILE_PARTS = ("text_to_image", "inpaint", "instruct_pix2pix", "text_to_video",
                           "image_to_video")  # fmt: skip
"""The diffusion parts the profile loads (the VAE is only their starting point)."""
VAE_REPORT = "vae_pretrain.json"
"""The VAE's ``pretrain.json``, kept in the text-to-image folder (its VAE is ``vae/`` there)."""
COMPANIONS: dict[str, tuple[str, ...]] = {
    "text_to_image": ("image_signal", "diffusion_signal", "gligen"),
    "inpaint": ("image_signal", "diffusion_signal"),
    "instruct_pix2pix": ("image_signal", "diffusion_signal"),
    "text_to_video": ("video_signal", "diffusion_signal", "video_to_video"),
    "image_to_video": ("diffusion_signal",),
}
"""Parts whose settings must follow a trained one, written with the committed ``nano.toml``'s
settings: the ``[GEN]``/``[EDIT]`` and ``[VID]`` projectors the nano pipelines name (no weights
until the planner's stage 2 aligns them; they make tokens of the nano text encoders' width, 64),
and the weightless default projector of tiny's random pipelines, so a signal they cannot take is
set aside rather than failing; and the box layouts (``gligen``), drawn as collages by the
text-to-image folder."""
READS_FROM = {"video_to_video": "text_to_video", "gligen": "text_to_image"}
"""Parts with no folder of their own: nano's video-to-video reads the text-to-video folder (as
``VideoToVideoSDPipeline``), its box layouts the text-to-image one (``pipeline = "collage"``)."""
BUILD_FILE = "build.json"
COMMITTED_RECORDS = 6000
"""Training conversations of the committed planner's run, for a ``training.json`` written before
:func:`~vitron.agent.training.nano.publish` recorded the count."""
PROFILE_FILE = "nano.toml"


@dataclass(frozen=True)
class Plan:
    """Step counts of one build; a part missing from a dict gets its own default."""

    backend_steps: dict[str, int] = field(default_factory=dict)
    eval_count: int = 200
    records: int = 960
    reading_records: int = 480
    """Extra conversations of the tasks answered by reading pictures (``train_nano``'s ``reading/``)."""
    region_records: int = 240
    """Region-caption conversations of ``train_nano``'s ``regions`` step (``regions_data/``)."""
    planner_steps: dict[str, int] = field(default_factory=dict)
    planner_recipe: dict[str, Any] = field(default_factory=dict)
    """The planner run's recipe beyond steps and sizes (``glue``, ``data_tasks``,
    ``reading_tasks``, ``vqa_answers``, ``media_labels``, ``base_media_labels``: ``train_nano``'s
    arguments), as its ``training.json`` recorded it."""
    corpus_samples: int | None = None
    """Samples the planner's tokenizer learns its merges from (``None``: ``train_nano``'s own)."""
    threads: int = 1
    """Torch intra-op threads of every part (``vitron pretrain --threads``; the planner's in this
    process)."""


def default_threads() -> int:
    """Two torch threads, or one on a one-core machine. Measured on a 2-core box (2026-12-06, 30
    steps of each from nothing): two threads train SAM 1.31, CLIP 1.41, the planner's tower 1.60,
    Grounding DINO 1.36, SAM 2 1.19 and the VAE 1.61 times as fast as one, the planner's `base`
    1.42 times; more threads were not measured."""
    return min(2, os.cpu_count() or 1)


QUICK = Plan(
    backend_steps=dict.fromkeys(BACKEND_ORDER, 2)
    | dict.fromkeys((stage for chain in STAGES.values() for stage in chain), 2)
    | dict.fromkeys((backend for backend, _ in DIFFUSION_PARTS.values()), 1),
    eval_count=2,
    records=12,
    reading_records=4,
    region_records=4,
    planner_steps={"base": 2, "regions": 1, "align": 1, "invoke": 1, "ground": 1},
    corpus_samples=12,
)


def committed_plan(folder: Path | None = None) -> Plan:
    """The step counts the committed ``nano`` parts (or those in ``folder``) were trained with
    (each part's ``pretrain.json``, the planner's ``training.json``), so a full build retraces the
    committed profile; a part without a record gets its own default."""
    folder = folder or Path(str(resources.files("vitron.tools.profiles"))) / "nano"
    reports = {stages(part)[-1]: folder / part / "pretrain.json" for part in BACKEND_ORDER}
    reports |= {
        backend: folder / part / "pretrain.json"
        for part, (backend, _) in DIFFUSION_PARTS.items()
        if part in DIFFUSION_PROFILE_PARTS
    }
    reports["diffusion_vae"] = folder / "text_to_image" / VAE_REPORT
    reports |= {stage: folder / part / kept_report(stage)
                for part in BACKEND_ORDER for stage in stages(part)[:-1]}  # fmt: skip
    backend_steps = {}
    for backend, path in reports.items():
        try:
            report = json.loads(path.read_text())
            # a part continued from an earlier run names the steps a build from nothing takes
            backend_steps[backend] = int(report.get("build_steps") or report["planned_steps"])
        except (OSError, ValueError, KeyError):
            continue
    planner_steps = {}
    try:
        training = json.loads((folder / "vitron_llm" / "training.json").read_text())
    except (OSError, ValueError):
        training = {}
    for stage, info in training.items():
        steps = info.get("config", {}).get("max_steps") if isinstance(info, dict) else None
        if steps:
            planner_steps[stage] = int(steps)
    from vitron.agent.training.nano import DEFAULT_READING_RECORDS, DEFAULT_REGION_RECORDS

    # a planner made by continuing an earlier one names the steps a build from nothing takes
    planner_steps |= {k: int(v) for k, v in training.get("build_steps", {}).items()}
    records = int(training.get("records") or COMMITTED_RECORDS)
    reading = int(training.get("reading_records", DEFAULT_READING_RECORDS))
    regions = int(training.get("region_records", DEFAULT_REGION_RECORDS))
    return Plan(backend_steps=backend_steps, planner_steps=planner_steps, records=records,
                reading_records=reading, region_records=regions,
                planner_recipe=dict(training.get("recipe") or {}))  # fmt: skip


def stages(part: str) -> tuple[str, ...]:
    """The ``vitron pretrain`` backends that train ``part``, in order (:data:`STAGES`)."""
    return STAGES.get(part, (part,))


def kept_report(stage: str) -> str:
    """The name an earlier stage's ``pretrain.json`` is kept under in its part's folder."""
    return f"{stage}_pretrain.json"


def backends() -> list[str]:
    """The backends this build trains: :data:`BACKEND_ORDER` filtered by what pre-training exists
    for now (looked up when the command runs)."""
    from vitron.tools.pretraining import BACKENDS

    return [name for name in BACKEND_ORDER if name in BACKENDS]


def shipped_profile() -> dict[str, Any]:
    """The committed ``nano.toml`` as data (its components' settings are reused)."""
    return tomllib.loads((resources.files("vitron.tools.profiles") / PROFILE_FILE).read_text())


def is_shipped_folder(out: Path) -> bool:
    """Whether ``out`` is the package's own ``tools/profiles/nano`` folder."""
    return out.resolve() == Path(str(resources.files("vitron.tools.profiles"))).resolve() / "nano"


# ------------------------------------------------------------------------------- the profile file


def profile_text(parts: list[str], description: str, folder: str = ".") -> str:
    """A profile that ``extends = "tiny"`` with ``parts`` loaded from ``folder`` (default: beside
    it, ``./<part>``), each with the committed ``nano.toml``'s settings for it (or ``tiny``'s
    loader)."""
    from vitron.tools.profiles import load_profile

    shipped = shipped_profile().get("components", {})
    tiny = load_profile("tiny")
    lines = ["# Written by `vitron train --profile nano` (vitron.apps.nano_build); build.json beside",
             "# it has each part's command, wall time and metrics.",
             'name = "nano"', f"description = {toml_value(description)}", 'extends = "tiny"']  # fmt: skip
    companions = [c for p in parts for c in COMPANIONS.get(p, ()) if c not in parts]
    for part in dict.fromkeys([*parts, *companions]):  # once each, in order
        table = dict(shipped.get(part) or {"loader": tiny.component(part).loader})
        table["checkpoint"] = f"{folder}/{READS_FROM.get(part, part)}"
        lines += ["", f"[components.{part}]"]
        lines += [f"{key} = {toml_value(value)}" for key, value in table.items()]
    return "\n".join(lines) + "\n"


def write_profile(out: Path, parts: list[str], description: str) -> Path:
    """``out/nano.toml`` loading ``parts`` from ``out``; returns its path."""
    path = out / PROFILE_FILE
    path.write_text(profile_text(parts, description))
    return path


# ------------------------------------------------------------------------------- the parts


def pretrain_argv(backend: str, folder: Path, seed: int, plan: Plan,
                  base: Path | None = None) -> list[str]:  # fmt: skip
    """The ``vitron pretrain`` arguments of ``backend`` trained into ``folder`` (from ``base``)."""
    argv = [backend, "--seed", str(seed), "--out", str(folder)]
    if backend in plan.backend_steps:
        argv += ["--steps", str(plan.backend_steps[backend])]
    if plan.threads != 1:
        argv += ["--threads", str(plan.threads)]
    return argv + (["--base", str(base)] if base is not None else [])


def pretrain(backend: str, folder: Path, seed: int, plan: Plan,
             base: Path | None = None) -> dict[str, Any]:  # fmt: skip
    """``vitron pretrain BACKEND`` into ``folder`` (resuming its checkpoint, if any), from the
    trained folder ``base`` where it builds on one; returns its ``pretrain.json`` (command, steps,
    wall time, held-out metrics)."""
    from vitron.tools.pretraining.command import main as pretrain_main
    from vitron.tools.pretraining.loop import REPORT_NAME

    pretrain_main([*pretrain_argv(backend, folder, seed, plan, base),
                   "--eval-count", str(plan.eval_count)])  # fmt: skip
    return json.loads((folder / REPORT_NAME).read_text())


def part_record(report: dict[str, Any]) -> dict[str, Any]:
    """What ``build.json`` keeps of a ``pretrain.json``."""
    return {"command": report["command"], "steps": report["steps"],
            "seconds": round(report["train_seconds"] + report["eval_seconds"], 1),
            "metrics": report["metrics"]}  # fmt: skip


def train_planner(out: Path, runs: Path, seed: int, plan: Plan, profile: Path) -> dict[str, Any]:
    """The nano Vitron LLM on ``out/clip_tower``'s tower and ``profile``'s SAM, trained under
    ``runs/planner`` (resuming what is there) and published into ``out``; returns the stages' wall
    times and last logged numbers (``training.json``)."""
    from vitron.agent.training.nano import publish, train_nano

    run = runs / "planner"
    if plan.corpus_samples is not None and not (run / "init" / "config.json").is_file():
        _init_planner(run / "init", out / "clip_tower", seed, plan.corpus_samples)
    train_nano(run, seed=seed, records=plan.records, profile=str(profile),
               steps=plan.planner_steps, clip=out / "clip_tower",
               reading_records=plan.reading_records, region_records=plan.region_records,
               **plan.planner_recipe)  # fmt: skip
    return publish(run, out)


def _init_planner(folder: Path, clip: Path, seed: int, corpus_samples: int) -> None:
    """The untrained planner with a tokenizer learnt from ``corpus_samples`` samples (``--quick``:
    the default 600 take half a minute to draw); ``train_nano`` then starts from it."""
    from vitron.agent.build import save_vitron
    from vitron.agent.training.nano import build_nano_vitron

    model, processor = build_nano_vitron(clip, seed=seed, corpus_samples=corpus_samples)
    save_vitron(model, processor, folder)


# ------------------------------------------------------------------------------- the build


def runs_folder(out: Path) -> Path:
    """Where the planner's stage runs (checkpoints, data) go: ``out/runs``, but never inside the
    package's own profile folder."""
    return Path(f"{DEFAULT_OUT}-runs").resolve() if is_shipped_folder(out) else out / "runs"


def load_record(out: Path, seed: int, quick: bool) -> dict[str, Any]:
    """The build record of ``out`` so far (``build.json``: the parts already finished), or a new
    one; a folder holding another seed's or mode's build is refused rather than mixed."""
    path = out / BUILD_FILE
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"seed": seed, "quick": quick, "parts": {}}
    if record.get("seed") != seed or bool(record.get("quick")) != quick:
        raise ValueError(
            f"{out} holds a build with seed {record.get('seed')}"
            + (" (--quick)" if record.get("quick") else "")
            + "; give another --out, or delete it to start over"
        )
    return record


def save_record(out: Path, record: dict[str, Any]) -> None:
    """``build.json``, rewritten after each finished part (so a stopped build resumes after it)."""
    record["seconds"] = round(sum(p["seconds"] for p in record["parts"].values()), 1)
    (out / BUILD_FILE).write_text(json.dumps(record, indent=2) + "\n")


def build(out: str | Path = DEFAULT_OUT, *, seed: int = 0, quick: bool = False, threads: int = 1,
          log: Callable[[str], None] = print) -> dict[str, Any]:  # fmt: skip
    """Train every part into ``out``, write ``nano.toml`` and ``build.json`` there; returns the
    build record ``{"seed", "quick", "parts": {part: {"seconds", "metrics", ...}}, "profile"}``.
    A part ``build.json`` lists as finished is skipped; an interrupted one resumes from its own
    checkpoints. Each ``vitron pretrain`` runs on ``threads`` torch threads (the planner on this
    process's); its ``threads`` in ``build.json`` are the last run's."""
    out = Path(out)
    if is_shipped_folder(out) and quick:
        raise ValueError("--quick would overwrite the committed nano profile with a useless one; "
                         "give another --out")  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    plan, runs = QUICK if quick else committed_plan(), runs_folder(out)
    plan = replace(plan, threads=threads)
    record = load_record(out, seed, quick)
    record["threads"] = threads
    trained = backends()
    missing = [b for b in BACKEND_ORDER if b not in trained]
    description = ("trained by `vitron train --profile nano` on the shapes world"
                   + (" (--quick: a few steps each, not a usable profile)" if quick else "")
                   + (f"; {', '.join(missing)} still tiny's random weights" if missing else ""))  # fmt: skip
    for part in trained:
        base = train_earlier_stages(part, out, runs, seed, plan, record, log)
        last = stages(part)[-1]
        command = "vitron pretrain " + " ".join(pretrain_argv(last, out / part, seed, plan, base))
        if part in record["parts"]:
            log(f"== {part}: {command} (finished before: skipped)")
            continue
        log(f"== {part}: {command}")
        record["parts"][part] = part_record(pretrain(last, out / part, seed, plan, base))
        for stage in stages(part)[:-1]:  # the earlier stages' records go with the part they made
            report = runs / stage / "pretrain.json"
            (out / part / kept_report(stage)).write_text(report.read_text())
        save_record(out, record)
    train_diffusion(out, runs, seed, plan, record, log)
    if "vitron_llm" in record["parts"]:
        log("== planner: finished before: skipped")
    else:  # trained against the parts above (its signals aligned through them), loaded from `out`
        runs.mkdir(parents=True, exist_ok=True)
        backends_toml = runs / "backends.toml"
        backends_toml.write_text(profile_text([*trained, *DIFFUSION_PROFILE_PARTS], description,
                                              folder=str(out.resolve())))  # fmt: skip
        log(f"== planner: vitron.agent.training.nano.train_nano in {runs / 'planner'} on "
            f"{out / 'clip_tower'}, then publish into {out}")  # fmt: skip
        start = time.monotonic()
        summary = train_planner(out, runs, seed, plan, backends_toml)
        stage_times = {k: round(v, 1) for k, v in summary.get("times_s", {}).items()}
        record["parts"]["vitron_llm"] = {
            "command": f"train_nano({runs / 'planner'}, seed={seed}, records={plan.records}, "
                       f"reading_records={plan.reading_records}, "
                       f"region_records={plan.region_records}, "
                       f"steps={plan.planner_steps}, clip={out / 'clip_tower'}"
                       + "".join(f", {k}={v!r}" for k, v in plan.planner_recipe.items())
                       + "); publish",
            "seconds": round(time.monotonic() - start, 1), "stage_seconds": stage_times,
            "metrics": {stage: summary[stage]["last_logged"] for stage in summary
                        if isinstance(summary[stage], dict) and "last_logged" in summary[stage]},
        }  # fmt: skip
    if is_shipped_folder(out):  # the committed nano.toml already loads this folder
        record["profile"] = "nano"
    else:
        parts = [*trained, *PLANNER_PARTS, *DIFFUSION_PROFILE_PARTS]
        record["profile"] = str(write_profile(out, parts, description))
    save_record(out, record)
    log(report_table(record))
    return record


def train_earlier_stages(part: str, out: Path, runs: Path, seed: int, plan: Plan,
                         record: dict[str, Any], log: Callable[[str], None]) -> Path | None:  # fmt: skip
    """The stages before the last of a part trained in several (:data:`STAGES`), each into
    ``runs/<stage>`` from the one before, recorded in ``record`` as ``<part>/<stage>``; returns the
    last one's folder (the part's ``--base``), or ``None`` for a part trained in one. A stage
    ``record`` lists is skipped, unless its folder is gone while the stage after it still needs
    it."""
    chain = stages(part)
    keys = [*(f"{part}/{stage}" for stage in chain[:-1]), part]
    base = None
    for k, stage in enumerate(chain[:-1]):
        folder, key = runs / stage, keys[k]
        command = "vitron pretrain " + " ".join(pretrain_argv(stage, folder, seed, plan, base))
        # a finished stage's folder is needed again while the stage after it is not finished
        needed_again = keys[k + 1] not in record["parts"] and not (folder / "config.json").is_file()
        if key in record["parts"] and not needed_again:
            log(f"== {key}: {command} (finished before: skipped)")
        else:
            log(f"== {key}: {command}")
            record["parts"][key] = part_record(pretrain(stage, folder, seed, plan, base))
            save_record(out, record)
        base = folder
    return base


def train_diffusion(out: Path, runs: Path, seed: int, plan: Plan, record: dict[str, Any],
                    log: Callable[[str], None]) -> None:  # fmt: skip
    """The nano Stable Diffusion, VAE -> text-to-image -> inpainting and text-to-video ->
    image-to-video, each from its base part's folder (:data:`DIFFUSION_PARTS`), recorded in
    ``record`` as each finishes; a part ``record`` lists is skipped, except a VAE whose folder is
    gone while text-to-image still needs it."""
    folders = {part: out / part for part in DIFFUSION_PARTS} | {
        "diffusion_vae": runs / "diffusion_vae"
    }
    for part, (backend, base_part) in DIFFUSION_PARTS.items():
        base = folders[base_part] if base_part else None
        command = "vitron pretrain " + " ".join(
            pretrain_argv(backend, folders[part], seed, plan, base)
        )
        needed_again = (part == "diffusion_vae" and "text_to_image" not in record["parts"]
                        and not (folders[part] / "config.json").is_file())  # fmt: skip
        if part in record["parts"] and not needed_again:
            log(f"== {part}: {command} (finished before: skipped)")
            continue
        log(f"== {part}: {command}")
        record["parts"][part] = part_record(pretrain(backend, folders[part], seed, plan, base))
        if part == "text_to_image":  # the VAE's record goes with the copy of it the pipeline holds
            vae_report = folders["diffusion_vae"] / "pretrain.json"
            (folders[part] / VAE_REPORT).write_text(vae_report.read_text())
        save_record(out, record)


def report_table(record: dict[str, Any]) -> str:
    """Each part's wall time and final metrics, one line each, and the total."""
    lines = ["", "part            seconds  final metrics"]
    for part, info in record["parts"].items():
        metrics = ", ".join(f"{k} {v}" for k, v in _flat(info["metrics"]).items())
        lines.append(f"{part:<15} {info['seconds']:>7.1f}  {metrics}")
    lines.append(f"{'total':<15} {record['seconds']:>7.1f}")
    lines.append(f"profile: {record['profile']} (use --profile {record['profile']})")
    return "\n".join(lines)


def _flat(metrics: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            flat |= _flat(value, f"{prefix}{key}.")
        elif key in ("loss", "lm_loss") or not prefix:
            flat[f"{prefix}{key}"] = round(value, 4) if isinstance(value, float) else value
    return flat
