"""The run loop behind ``vitron train``: accelerate, accumulation, schedule, checkpoints, resume.

One run = one stage over one config. The loop is deterministic for a seed on CPU: the data order
of epoch ``e`` is a permutation drawn from ``seed + e``, and a checkpoint (written at optimizer
step boundaries, atomically: a temporary directory renamed into place) holds the trainable
weights, the optimizer and scheduler state, the RNG states and the position in the data, so a
resumed run continues with exactly the batches and random numbers the uninterrupted run would
have used. Ctrl-C writes a checkpoint of the last completed step before exiting.

Files of a run directory (``output_dir``)::

    train_config.json           the validated config
    metrics.jsonl               one line per logged step: every loss term, lr, synergy weight…
    checkpoints/step-000050/    trainable.safetensors, optimizer.pt, rng.safetensors,
                                trainer_state.json, train_config.json
    profile.toml, llm/, lora/, projectors/<name>/   the exported profile (see export.py)
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from vitron.agent.training.collate import Batch, Collator
from vitron.agent.training.config import TrainConfig
from vitron.agent.training.dataset import RecordDataset
from vitron.agent.training.decoders import Sam2Alignment, SamAlignment, can_denoise
from vitron.agent.training.losses import synergy_weight, weighted_total
from vitron.agent.training.objective import SignalAlignment, TrainModule
from vitron.agent.training.readers import read_source
from vitron.agent.training.stages import check_trainable, freeze_planner, prepare_stage

logger = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
METRICS_FILE = "metrics.jsonl"
STATE_FILE = "trainer_state.json"
GROUP_RUN = 8
"""Batches per sorted run when ``group_by_length`` is on."""


class Interrupted(Exception):
    """Ctrl-C during training; the checkpoint written before stopping is ``checkpoint``."""

    def __init__(self, checkpoint: Path) -> None:
        super().__init__(f"interrupted; checkpoint saved at {checkpoint}")
        self.checkpoint = checkpoint


@dataclass
class Position:
    """Where the run is: optimizer ``step``, ``epoch`` and the next ``batch`` of that epoch."""

    step: int = 0
    epoch: int = 0
    batch: int = 0


@dataclass
class RunResult:
    output_dir: Path
    steps: int
    history: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0
    profile: Path | None = None


# --------------------------------------------------------------------------------------------
# building the pieces


def load_model(source: str, seed: int = 0) -> tuple[Any, Any]:
    """``tiny`` (the tiny profile's LLM), a saved Vitron directory, or a run directory (its
    exported LLM, with a separate LoRA adapter merged) -> (VitronForCausalLM, processor)."""
    from vitron.agent.build import build_tiny_vitron, load_vitron

    if source == "tiny":
        model, processor = build_tiny_vitron(seed=seed)
        return model.float(), processor
    path = Path(source).expanduser()
    if (path / "profile.toml").is_file() and (path / "llm").is_dir():
        lora = path / "lora"
        return load_vitron(
            path / "llm", dtype="float32", lora=lora if lora.is_dir() else None, merge=True
        )
    return load_vitron(path, dtype="float32")


def cosine_schedule(warmup: int, total: int, min_ratio: float = 0.0):  # noqa: ANN201
    """LR multiplier: linear warm-up over ``warmup`` steps, then cosine decay to ``min_ratio``."""

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def read_data(sources: list[Any], *, max_frames: int) -> tuple[RecordDataset, int]:
    """All sources as one data set; returns it and the count of records skipped while reading.
    A source with no usable record is an error that names it (a mixture silently missing one of
    its parts trains on something else than was asked)."""
    records, roots, skipped = [], [], 0
    for source in sources:
        result = read_source(source.format, source.root, **source.options)
        chosen = result.records[: source.limit] if source.limit else result.records
        if not chosen:
            raise ValueError(
                f"data source {source.format!r} at {source.root} {source.options or ''} holds no "
                f"usable records ({len(result.skipped)} skipped; see the warnings above)"
            )
        records += chosen
        roots += [source.root] * len(chosen)
        skipped += len(result.skipped)
    if not records:
        raise ValueError("no data sources were given")
    return RecordDataset(records, roots, max_frames=max_frames), skipped


def build_alignment(
    config: TrainConfig, vitron: Any, device: torch.device | str = "cpu"
) -> tuple[SignalAlignment, dict[str, Any]]:
    """Frozen decoders and trainable projectors of the config's signal routes, from its profile.

    A projector starts from the profile's weights when it has them (``tiny``: seeded random;
    a path: a saved projector) unless its route asks for a ``fresh`` one, and is built fresh
    otherwise; its input width is the LLM's
    signal space and its output width the decoder's.
    """
    import copy

    from vitron.agent.invocation import MODULES
    from vitron.tools.errors import VitronToolError
    from vitron.tools.models.signal_projector import SignalProjector, SignalProjectorConfig
    from vitron.tools.profiles import load_profile
    from vitron.tools.registry import ModelRegistry

    registry = ModelRegistry(load_profile(config.profile), device=str(device))
    alignment = SignalAlignment(routes={})
    projectors: dict[str, Any] = {}
    spaces = vitron.config.signal_token_spaces
    for key, route in config.signal_routes.items():
        token = MODULES[key].signal_token if key in MODULES else key
        components = registry.profile.components
        if token not in spaces or route.decoder not in components:
            logger.info("no alignment for %s: no decoder %r in the profile", key, route.decoder)
            continue
        decoder = registry.get(route.decoder)
        if hasattr(decoder, "prompt_dim"):  # SAM (segment_image) or SAM 2 (track_video)
            if route.decoder not in alignment.mask_decoders:
                video = hasattr(decoder, "track")
                aligner = Sam2Alignment(decoder) if video else SamAlignment(decoder.model)
                alignment.mask_decoders[route.decoder] = aligner
            width, tokens = alignment.mask_decoders[route.decoder].prompt_dim, 1
        else:
            pipe = decoder.pipe
            for part in pipe.components.values():
                if isinstance(part, torch.nn.Module):
                    part.requires_grad_(False)
            alignment.text_encoders[route.decoder] = (pipe.tokenizer, pipe.text_encoder)
            if config.denoising and can_denoise(pipe):
                size = min(decoder.defaults.width, decoder.defaults.height)
                alignment.denoisers[route.decoder] = (pipe, size)
            width, tokens = int(pipe.text_encoder.config.hidden_size), 4
        name = route.projector or str(
            components[route.decoder].options.get("signal_projector", "diffusion_signal")
        )
        if name not in projectors:
            try:
                if route.fresh:
                    raise VitronToolError("the route asks for a fresh projector")
                loaded = registry.get(name)
                projector = copy.deepcopy(loaded).float().cpu().train()
            except VitronToolError as exc:
                logger.info("projector %s starts fresh (%s)", name, exc)
                in_dim = vitron.config.signal_spaces[spaces[token]]
                projector = SignalProjector(SignalProjectorConfig(in_dim, width, tokens)).train()
            projector.requires_grad_(True)
            projectors[name] = projector
        alignment.routes[key] = (route.decoder, name)
    return alignment, projectors


# --------------------------------------------------------------------------------------------
# the trainer


class Trainer:
    """One stage run; :meth:`run` trains (resuming when asked) and exports the profile."""

    def __init__(self, config: TrainConfig) -> None:
        from accelerate import Accelerator

        self.config = config
        self.output_dir = Path(config.output_dir)
        self.accelerator = Accelerator(
            mixed_precision=config.mixed_precision if torch.cuda.is_available() else "no",
            cpu=not torch.cuda.is_available(),
        )
        _seed_everything(config.seed)
        vitron, self.processor = load_model(config.model)
        synergy = config.synergy.enabled and config.stage != "align" and not config.signals_only
        self.synergy = synergy
        if config.signals_only:
            self.stage, self.trainable_names = freeze_planner(vitron), []
        else:
            self.stage = prepare_stage(
                vitron, config.stage, tokenizer=self.processor.tokenizer, lora=config.lora,
                synergy=synergy, vision=config.train_vision_tower,
            )  # fmt: skip
            self.trainable_names = check_trainable(
                self.stage, synergy=synergy, vision=config.train_vision_tower
            )
        alignment, projectors = None, {}
        if config.stage == "invoke" and config.signal_alignment:
            alignment, projectors = build_alignment(config, vitron, self.accelerator.device)
        self.module = TrainModule(self.stage.model, vitron, projectors, alignment)
        self.dataset, self.read_skipped = read_data(config.data, max_frames=config.max_frames)
        self.collator = Collator(
            self.processor,
            vitron.config.modules,
            vitron.config.signal_token_id_map,
            max_length=config.max_length,
        )
        world = self.accelerator.num_processes  # each process takes every world-th batch
        self.batches_per_epoch = math.ceil(math.ceil(len(self.dataset) / config.batch_size) / world)
        steps_per_epoch = math.ceil(self.batches_per_epoch / config.grad_accum)
        self.total_steps = config.max_steps or steps_per_epoch * config.epochs
        self.optimizer = torch.optim.AdamW(
            self._param_groups(), lr=config.lr, weight_decay=config.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            cosine_schedule(config.warmup_steps, self.total_steps, config.min_lr_ratio),
        )
        deepspeed = self.accelerator.state.deepspeed_plugin
        if deepspeed is not None:  # no data loader is prepared, so DeepSpeed is told the sizes
            deepspeed.deepspeed_config["train_micro_batch_size_per_gpu"] = config.batch_size
            deepspeed.deepspeed_config["gradient_accumulation_steps"] = config.grad_accum
        self.module, self.optimizer = self.accelerator.prepare(self.module, self.optimizer)
        self.position = Position()
        self.history: list[dict[str, Any]] = []

    def _param_groups(self) -> list[dict[str, Any]]:
        named = [(n, p) for n, p in self.module.named_parameters() if p.requires_grad]
        discriminator = [p for n, p in named if ".synergy.discriminator." in n]
        rest = [p for n, p in named if ".synergy.discriminator." not in n]
        groups = [{"params": rest}]
        if discriminator:
            scale = self.config.synergy.discriminator_lr_scale
            groups.append({"params": discriminator, "lr": self.config.lr * scale})
        return groups

    # ---- data order ----

    def epoch_order(self, epoch: int) -> list[list[int]]:
        """The batches (lists of record indices) of ``epoch``: a seeded permutation, chunked."""
        generator = torch.Generator().manual_seed(self.config.seed * 1000 + epoch)
        order = torch.randperm(len(self.dataset), generator=generator).tolist()
        # several processes: each takes every n-th batch (ranks see disjoint data)
        size = self.config.batch_size
        if self.config.group_by_length:
            run = size * GROUP_RUN
            order = [
                i
                for start in range(0, len(order), run)
                for i in sorted(order[start : start + run], key=self.dataset.length)
            ]
        batches = [order[i : i + size] for i in range(0, len(order), size)]
        if self.config.group_by_length:  # sorted runs, then the batches in a seeded order
            shuffled = torch.randperm(len(batches), generator=generator).tolist()
            batches = [batches[k] for k in shuffled]
        rank, world = self.accelerator.process_index, self.accelerator.num_processes
        return batches[rank::world] if world > 1 else batches

    def make_batch(self, indices: list[int]) -> Batch | None:
        batch = self.collator([self.dataset[i] for i in indices])
        return None if batch is None else batch.to(self.accelerator.device)

    # ---- the loop ----

    def run(self, *, resume: bool | str | Path = False) -> RunResult:
        """Train to the end (or ``max_steps``) and export the profile; ``resume`` continues from
        the latest checkpoint of ``output_dir`` (``True``) or from the given checkpoint."""
        from tqdm.auto import tqdm

        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.config.save(self.output_dir)
        if resume:
            checkpoint = latest_checkpoint(self.output_dir) if resume is True else Path(str(resume))
            if checkpoint is None:
                logger.info("no checkpoint in %s: starting from the beginning", self.output_dir)
            else:
                self.load_checkpoint(checkpoint)
        config, accelerator = self.config, self.accelerator
        bar = tqdm(
            total=self.total_steps,
            initial=self.position.step,
            desc=f"train {config.stage}",
            disable=not config.progress or not accelerator.is_main_process,
            dynamic_ncols=True,
        )
        boundary = Position(**vars(self.position))
        window: list[dict[str, float]] = []
        started = time.monotonic()
        try:
            while self.position.step < self.total_steps and self.position.epoch < config.epochs:
                batches = self.epoch_order(self.position.epoch)
                while self.position.batch < len(batches) and self.position.step < self.total_steps:
                    index = self.position.batch
                    last_in_epoch = index == len(batches) - 1
                    at_boundary = (index + 1) % config.grad_accum == 0 or last_in_epoch
                    batch = self.make_batch(batches[index])
                    if batch is not None:
                        window.append(self._micro_step(batch, at_boundary))
                    self.position.batch += 1
                    if at_boundary:
                        self._optimizer_step()
                        self.position.step += 1
                        if last_in_epoch:
                            self.position = Position(self.position.step, self.position.epoch + 1, 0)
                        boundary = Position(**vars(self.position))
                        record = self._log(window, started)
                        window = []
                        bar.update(1)
                        if record is not None:
                            bar.set_postfix(loss=f"{record['loss']:.4f}")
                        if self.position.step % config.checkpoint_every == 0:
                            self.save_checkpoint()
                        if last_in_epoch:
                            break
                if self.position.batch >= len(batches):
                    self.position = Position(self.position.step, self.position.epoch + 1, 0)
        except KeyboardInterrupt:
            bar.close()
            self.position = boundary
            path = self.save_checkpoint()
            raise Interrupted(path) from None
        bar.close()
        self.save_checkpoint()
        if config.eval_data and accelerator.is_main_process:
            scores = {f"eval_{k}": v for k, v in self.evaluate().items()}
            self._write_metrics({"step": self.position.step, **scores})
            self.history.append({"step": self.position.step, **scores})
        profile = None
        if accelerator.is_main_process:
            from vitron.agent.training.export import export_profile

            profile = export_profile(self, self.output_dir)
        skipped = self.dataset.skipped + self.read_skipped
        logger.info("finished %d steps; %d samples skipped", self.position.step, skipped)
        return RunResult(self.output_dir, self.position.step, self.history, skipped, profile)

    def _micro_step(self, batch: Batch, at_boundary: bool) -> dict[str, float]:
        config = self.config
        weight = synergy_weight(
            self.position.step,
            self.total_steps,
            config.synergy.weight,
            config.synergy.schedule,
            config.synergy.warmup_steps,
        )
        context = (
            self.accelerator.no_sync(self.module)
            if not at_boundary and self.accelerator.num_processes > 1
            else _null()
        )
        with context, self.accelerator.autocast():
            output = self.module(batch, synergy=self.synergy)
            weights = dict(config.loss_weights)
            for name in output.parts:
                if name.startswith("synergy_"):
                    weights[name] = weights.get(name, 1.0) * weight
            loss = weighted_total(output.parts, weights)
            # DeepSpeed divides by its own accumulation count; otherwise the window is averaged here
            scale = 1 if self.accelerator.state.deepspeed_plugin is not None else config.grad_accum
            reaches = loss.requires_grad  # False: no trainable part of this stage saw the batch
            if reaches:
                self.accelerator.backward(loss / scale)
        values = {name: float(v.detach()) for name, v in output.parts.items()}
        values |= output.metrics
        values["loss"] = float(loss.detach())
        if not reaches:  # e.g. stage 1 (projector, region encoder, video glue) on text-only records
            self._untrained()
        if self.synergy:
            values["synergy_weight"] = weight
        return values

    def _untrained(self) -> None:
        self.untrained_batches = getattr(self, "untrained_batches", 0) + 1
        if self.untrained_batches == 1:
            logger.warning(
                "a batch reached none of stage %s's trainable parts (for instance a text-only "
                "batch in a stage that trains only the vision parts); it adds no gradient and is "
                "counted (running total) as untrained_batches in metrics.jsonl",
                self.config.stage,
            )

    def _optimizer_step(self) -> None:
        if self.config.max_grad_norm is not None:
            params = [p for p in self.module.parameters() if p.requires_grad]
            self.accelerator.clip_grad_norm_(params, self.config.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)

    def _log(self, window: list[dict[str, float]], started: float) -> dict[str, Any] | None:
        if not window:
            return None
        keys = sorted({k for w in window for k in w})
        record: dict[str, Any] = {
            "step": self.position.step,
            "epoch": self.position.epoch,
            "lr": self.scheduler.get_last_lr()[0],
        }
        for key in keys:
            values = [w[key] for w in window if key in w]
            record[key] = sum(values) / len(values)
        record["skipped"] = self.dataset.skipped + self.read_skipped
        if getattr(self, "untrained_batches", 0):
            record["untrained_batches"] = self.untrained_batches
        record["elapsed_s"] = round(time.monotonic() - started, 3)
        self.history.append(record)
        if self.accelerator.is_main_process and (
            self.position.step % self.config.log_every == 0 or self.position.step == 1
        ):
            self._write_metrics(record)
        return record

    def _write_metrics(self, record: dict[str, Any]) -> None:
        with (self.output_dir / METRICS_FILE).open("a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")
        _tensorboard(self.output_dir, record)

    # ---- evaluation ----

    @torch.no_grad()
    def evaluate(self, dataset: RecordDataset | None = None) -> dict[str, float]:
        """Mean loss parts over ``dataset`` (default: the config's ``eval_data``), no updates."""
        if dataset is None:
            if not self.config.eval_data:
                return {}
            dataset, _ = read_data(self.config.eval_data, max_frames=self.config.max_frames)
        module = self.accelerator.unwrap_model(self.module)
        was_training = module.training
        module.eval()
        sums: dict[str, list[float]] = {}
        size = self.config.batch_size
        for start in range(0, len(dataset), size):
            batch = self.collator(
                [dataset[i] for i in range(start, min(len(dataset), start + size))]
            )
            if batch is None:
                continue
            output = module(batch.to(self.accelerator.device), synergy=False)
            for name, value in output.parts.items():
                sums.setdefault(name, []).append(float(value))
        module.train(was_training)
        return {name: sum(v) / len(v) for name, v in sums.items()}

    # ---- checkpoints ----

    def trainable_state(self) -> dict[str, torch.Tensor]:
        module = self.accelerator.unwrap_model(self.module)
        return {
            n: p.detach().cpu().contiguous()
            for n, p in module.named_parameters()
            if p.requires_grad
        }

    def _truncate_metrics(self, step: int) -> None:
        if self.accelerator.is_main_process:
            _keep_lines_until(self.output_dir / METRICS_FILE, step)

    def save_checkpoint(self) -> Path:
        """Write a checkpoint of the current position (atomically) and prune old ones."""
        folder = self.output_dir / CHECKPOINTS
        final = folder / f"step-{self.position.step:06d}"
        if not self.accelerator.is_main_process:
            return final
        tmp = folder / f".tmp-{final.name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        save_file(self.trainable_state(), str(tmp / "trainable.safetensors"))
        torch.save(
            {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()},
            tmp / "optimizer.pt",
        )
        save_file({"torch": torch.get_rng_state()}, str(tmp / "rng.safetensors"))
        py_state = random.getstate()
        np_state = np.random.get_state()
        state = {
            "position": vars(self.position),
            "python_rng": [py_state[0], list(py_state[1]), py_state[2]],
            "numpy_rng": [np_state[0], np_state[1].tolist(), *np_state[2:]],
            "skipped": self.dataset.skipped,
            "history": self.history,
        }
        (tmp / STATE_FILE).write_text(json.dumps(state))
        self.config.save(tmp)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        for old in sorted(folder.glob("step-*"))[: -self.config.keep_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)
        return final

    def load_checkpoint(self, path: Path) -> None:
        """Restore weights, optimizer, scheduler, RNG and data position from ``path``."""
        path = Path(path)
        if not (path / STATE_FILE).is_file():
            raise FileNotFoundError(f"{path} is not a complete checkpoint (no {STATE_FILE})")
        module = self.accelerator.unwrap_model(self.module)
        saved = load_file(str(path / "trainable.safetensors"))
        named = dict(module.named_parameters())
        unknown = sorted(set(saved) - set(named))
        absent = sorted(set(self.trainable_state()) - set(saved))
        if unknown or absent:
            raise ValueError(
                f"checkpoint {path} does not fit this run (a different stage or model?): "
                f"unknown {unknown[:3]}, absent {absent[:3]}"
            )
        with torch.no_grad():
            for name, value in saved.items():
                named[name].copy_(value)
        states = torch.load(path / "optimizer.pt", map_location="cpu", weights_only=True)
        self.optimizer.load_state_dict(states["optimizer"])
        self.scheduler.load_state_dict(states["scheduler"])
        torch.set_rng_state(load_file(str(path / "rng.safetensors"))["torch"])
        state = json.loads((path / STATE_FILE).read_text())
        py = state["python_rng"]
        random.setstate((py[0], tuple(py[1]), py[2]))
        np_state = state["numpy_rng"]
        np.random.set_state((np_state[0], np.asarray(np_state[1], dtype=np.uint32), *np_state[2:]))
        self.position = Position(**state["position"])
        self._truncate_metrics(self.position.step)
        self.dataset.skipped = int(state.get("skipped", 0))
        self.history = list(state.get("history", []))
        logger.info("resumed from %s at step %d", path, self.position.step)


def _keep_lines_until(path: Path, step: int) -> None:
    """Drop metrics lines of steps after ``step`` (an interrupted run logged them; the resumed
    run logs them again)."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if int(json.loads(line).get("step", 0)) <= step:
                kept.append(line)
        except (json.JSONDecodeError, ValueError, AttributeError):
            continue  # a line cut short by the interruption
    path.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest complete checkpoint under ``output_dir``, or ``None``."""
    found = sorted(
        p for p in (Path(output_dir) / CHECKPOINTS).glob("step-*") if (p / STATE_FILE).is_file()
    )
    return found[-1] if found else None


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_WRITERS: dict[str, Any] = {}


def _tensorboard(output_dir: Path, record: dict[str, Any]) -> None:
    """Mirror a metrics line to TensorBoard when the ``tensorboard`` package is installed."""
    key = str(output_dir)
    if key not in _WRITERS:
        try:
            from torch.utils.tensorboard import SummaryWriter

            _WRITERS[key] = SummaryWriter(str(output_dir / "tensorboard"))
        except ImportError:
            _WRITERS[key] = None
    writer = _WRITERS[key]
    if writer is None:
        return
    for name, value in record.items():
        if isinstance(value, int | float) and name != "step":
            writer.add_scalar(name, value, record["step"])
