"""The shared pre-training loop: seeded, step-counted, time-capped, resumable.

A run is fixed by ``(backend, seed, steps)``: the model's initialisation, every batch and the
learning-rate schedule (linear warm-up, cosine decay to a tenth over ``steps``) follow from them, so
on the same machine the same command gives the same weights. ``minutes`` caps the wall time: a run
that reaches it stops early, saves, and says so. Every ``checkpoint_every`` steps the model,
optimiser and step go to ``<out>/resume.pt`` (plain tensors, read back with
``torch.load(weights_only=True)``), and again when the time cap stops a run; running the same
command again resumes from it, and a finished run removes it, leaving only the backend's own files and ``pretrain.json`` (command, seed, steps,
wall time, held-out metrics).
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np
import torch

RESUME_NAME = "resume.pt"
REPORT_NAME = "pretrain.json"

T = TypeVar("T")


class Pretrainer(Protocol):
    """What one backend provides to the loop."""

    name: str
    model: torch.nn.Module
    default_steps: int
    learning_rate: float

    def start(self, step: int, total: int) -> None:
        """Prepare the data stream of a ``total``-step run so the next batch is step ``step``'s."""

    def loss(self, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        """Step ``step``'s loss (and numbers to log) on its batch."""

    def evaluate(self, count: int) -> dict[str, float]:
        """Held-out metrics on ``count`` samples, through the tool's own inference path."""

    def save(self, directory: Path) -> None:
        """Write the model in the format its loader reads."""


@dataclass
class RunSettings:
    seed: int
    out: Path
    steps: int | None = None
    """Optimiser steps; ``None``: the backend's default."""
    minutes: float | None = None
    """Wall-time cap of this invocation (training only; the final evaluation comes on top)."""
    eval_count: int = 200
    learning_rate: float | None = None
    """AdamW's peak rate; ``None``: the backend's own (``Pretrainer.learning_rate``)."""
    log_every: int = 25
    checkpoint_every: int = 100
    warmup: int = 50
    command: str = ""
    log: Callable[[str], None] = field(default=lambda line: print(line, flush=True))


@dataclass
class RunReport:
    backend: str
    seed: int
    steps: int
    planned_steps: int
    finished: bool
    """False when the time cap stopped training before ``planned_steps``."""
    train_seconds: float
    eval_seconds: float
    parameters: int
    metrics: dict[str, float]
    command: str
    torch_threads: int
    learning_rate: float


def learning_rate(step: int, total: int, base: float, warmup: int) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay from ``base`` to ``base / 10``."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def train(trainer: Pretrainer, settings: RunSettings) -> RunReport:
    """Train ``trainer`` as ``settings`` say, save it under ``settings.out`` and report."""
    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    total = settings.steps or trainer.default_steps
    model = trainer.model
    # what requires grad (GLIGEN trains only its new layers)
    trained = [p for p in model.parameters() if p.requires_grad]
    peak = settings.learning_rate if settings.learning_rate is not None else trainer.learning_rate
    optimiser = torch.optim.AdamW(trained, lr=peak, weight_decay=0.01)
    step, elapsed = 0, 0.0
    resume = out / RESUME_NAME
    if resume.is_file():
        state = torch.load(resume, map_location="cpu", weights_only=True)
        saved_peak = float(state.get("learning_rate", trainer.learning_rate))
        if (int(state["seed"]), int(state["total"]), saved_peak) != (settings.seed, total, peak):
            raise ValueError(
                f"{resume} belongs to a run with seed {int(state['seed'])}, "
                f"{int(state['total'])} steps and learning rate {saved_peak:g}; delete it or run "
                "that command again"
            )
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        step, elapsed = int(state["step"]), float(state["elapsed"])
        settings.log(f"{trainer.name}: resuming at step {step} ({elapsed:.0f} s trained)")
    parameters = sum(p.numel() for p in trained)
    settings.log(f"{trainer.name}: {parameters / 1e6:.2f} M parameters, {total} steps, "
                 f"seed {settings.seed}, learning rate {peak:g}, "
                 f"torch threads {torch.get_num_threads()}")  # fmt: skip
    trainer.start(step, total)
    model.train()
    session = window = time.perf_counter()
    started = session - elapsed  # wall time counts every session of the run
    cap = settings.minutes * 60 if settings.minutes else math.inf  # this session's cap
    seen: dict[str, list[float]] = {}  # logged numbers since the last log line, averaged
    while step < total and time.perf_counter() - session < cap:
        for group in optimiser.param_groups:
            group["lr"] = learning_rate(step, total, peak, settings.warmup)
        loss, logged = trainer.loss(step)
        for key, value in {"loss": loss.item(), **logged}.items():
            seen.setdefault(key, []).append(value)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained, 1.0)
        optimiser.step()
        step += 1
        if step % settings.log_every == 0 or step == total:
            now = time.perf_counter()
            per_step = (now - window) / (step % settings.log_every or settings.log_every)
            window = now
            numbers = " ".join(f"{k} {sum(v) / len(v):.4f}" for k, v in seen.items())
            seen.clear()
            settings.log(f"{trainer.name} step {step}/{total} {numbers} "
                         f"({per_step:.2f} s/step, {now - started:.0f} s)")  # fmt: skip
        if step % settings.checkpoint_every == 0 and step < total:
            _checkpoint(resume, model, optimiser, step, time.perf_counter() - started,
                        settings.seed, total, peak)  # fmt: skip
    train_seconds = time.perf_counter() - started
    if step < total:  # keep the resume state: the same command carries on from here
        _checkpoint(resume, model, optimiser, step, train_seconds, settings.seed, total, peak)
        settings.log(f"{trainer.name}: time cap reached at step {step} of {total}; "
                     "run the same command again to go on")  # fmt: skip
    model.eval()
    trainer.save(out)
    evaluated = time.perf_counter()
    with torch.no_grad():
        metrics = trainer.evaluate(settings.eval_count)
    report = RunReport(
        backend=trainer.name, seed=settings.seed, steps=step, planned_steps=total,
        finished=step >= total, train_seconds=round(train_seconds, 1),
        eval_seconds=round(time.perf_counter() - evaluated, 1), parameters=parameters,
        metrics={k: round(float(v), 4) for k, v in metrics.items()},
        command=settings.command or " ".join(sys.argv), torch_threads=torch.get_num_threads(),
        learning_rate=peak,
    )  # fmt: skip
    (out / REPORT_NAME).write_text(json.dumps(asdict(report), indent=2) + "\n")
    if report.finished:
        resume.unlink(missing_ok=True)
    settings.log(f"{trainer.name}: {json.dumps(report.metrics)} after {step} steps, "
                 f"{train_seconds:.0f} s; saved to {out}")  # fmt: skip
    return report


def _checkpoint(
    path: Path, model, optimiser, step: int, elapsed: float, seed: int, total: int, peak: float
) -> None:  # noqa: ANN001
    """Write the resume state atomically (a crash mid-write leaves the previous one)."""
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "optimiser": optimiser.state_dict(), "step": step,
                "elapsed": elapsed, "seed": seed, "total": total, "learning_rate": peak},
               tmp)  # fmt: skip
    tmp.replace(path)


def step_rng(seed: int, stream: int, step: int) -> np.random.Generator:
    """The generator of step ``step``'s batch choices (independent of how the run got there)."""
    return np.random.default_rng([seed, stream, step])


def seeded(seed: int, build: Callable[[], T]) -> T:
    """``build()`` with torch's CPU generator seeded by ``seed`` (a model's initial weights), the
    global generator left as it was: a run's initialisation follows from its seed alone, whatever
    ran before, and building a model does not shift anything drawn after it."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()
