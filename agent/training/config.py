"""Training configs: data files (TOML or JSON), validated, saved beside every checkpoint.

A minimal stage-2 config::

    stage = "invoke"
    model = "tiny"              # "tiny", a saved Vitron directory, or an earlier run's directory
    profile = "tiny"            # where the frozen decoders (SAM, diffusion) and projectors come from
    output_dir = "runs/invoke"

    [[data]]
    format = "records"          # a reader of vitron.agent.training.readers
    root = "data/shapes"
    options = { files = ["train.jsonl"] }

    [synergy]
    enabled = true
    weight = 0.1
    schedule = "dann"

Unknown keys are errors (a typo must not silently fall back to a default). Relative paths in a
config file are relative to that file's directory.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

STAGES = ("base", "align", "invoke", "ground")
CONFIG_FILE = "train_config.json"


class ConfigError(ValueError):
    """A config that does not parse or validate; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataSource(_Strict):
    """One data set: a reader ``format``, its ``root`` and the reader's keyword ``options``."""

    format: str = "records"
    root: str
    options: dict[str, Any] = Field(default_factory=dict)
    limit: int | None = Field(default=None, gt=0)
    """Keep only the first ``limit`` records (quick runs)."""


class LoraSettings(_Strict):
    r: int = Field(default=8, gt=0)
    alpha: int = Field(default=16, gt=0)
    dropout: float = Field(default=0.0, ge=0, lt=1)
    targets: list[str] = Field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    merge: bool = True
    """Export the LLM with LoRA merged into its weights (``False``: a separate adapter)."""


class SynergySettings(_Strict):
    enabled: bool = True
    """Off for the ablation: no synergy term is computed at all."""
    weight: float = Field(default=0.1, ge=0)
    schedule: Literal["constant", "linear", "dann"] = "dann"
    warmup_steps: int = Field(default=0, ge=0)
    """Steps of the ``linear`` ramp."""
    discriminator_lr_scale: float = Field(default=1.0, gt=0)


class SignalRoute(_Strict):
    """Which frozen decoder a signal is aligned against, through which projector."""

    decoder: str
    """Profile component: ``sam`` / ``sam2_video`` (mask loss) or a diffusion pipeline
    (caption regression)."""
    projector: str | None = None
    """Profile component of the backend's signal projector (one file per backend on export);
    ``None``: the decoder's own ``signal_projector`` option (diffusion pipelines name theirs,
    e.g. ``video_signal`` in vitron-7b), else ``diffusion_signal``."""
    fresh: bool = False
    """Start the projector from scratch even when the profile has weights for it (a rebuild from
    nothing, such as ``make nano``, must not depend on what an earlier build left in the profile);
    ``False``: continue from the profile's projector when it has one."""


def default_routes() -> dict[str, SignalRoute]:
    """Each module's backend pairing, as the tools pair them at inference: ``segment_image`` —
    SAM + ``sam_signal``; ``track_video`` — SAM 2 + ``sam2_signal``; the diffusion tools — the
    pipeline they run and that pipeline's projector. Keys are modules; a signal token as key
    (``"[SEG]"``) routes every module that emits it."""
    return {
        "segment_image": SignalRoute(decoder="sam", projector="sam_signal"),
        "track_video": SignalRoute(decoder="sam2_video", projector="sam2_signal"),
        "generate_image": SignalRoute(decoder="text_to_image"),
        "generate_video": SignalRoute(decoder="text_to_video"),
        "image_to_video": SignalRoute(decoder="image_to_video"),
        "edit_image": SignalRoute(decoder="inpaint"),
        "edit_video": SignalRoute(decoder="video_to_video"),
    }


class TrainConfig(_Strict):
    """Everything one ``vitron train`` run needs; see the module docstring."""

    stage: Literal["base", "align", "invoke", "ground"]
    model: str = "tiny"
    profile: str = "tiny"
    output_dir: str
    data: list[DataSource] = Field(min_length=1)
    eval_data: list[DataSource] = Field(default_factory=list)

    seed: int = 0
    epochs: int = Field(default=1, gt=0)
    max_steps: int | None = Field(default=None, gt=0)
    """Optimizer steps to stop after (default: all epochs)."""
    batch_size: int = Field(default=2, gt=0)
    grad_accum: int = Field(default=1, gt=0)
    lr: float = Field(default=2e-4, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    warmup_steps: int = Field(default=0, ge=0)
    min_lr_ratio: float = Field(default=0.0, ge=0, le=1)
    max_grad_norm: float | None = Field(default=1.0, gt=0)
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    max_length: int | None = Field(default=None, gt=0)
    max_frames: int = Field(default=16, gt=0)
    group_by_length: bool = False
    """Batch records of similar length (less padding), as LLaVA's ``group_by_modality_length``:
    each epoch's seeded permutation is cut into runs of 8 batches, each run sorted by length
    and cut into batches, and the batches shuffled; on short-and-long mixtures (one image vs
    four) a step costs about what its own records need."""

    checkpoint_every: int = Field(default=50, gt=0)
    """Optimizer steps between checkpoints (one is always written at the end)."""
    keep_checkpoints: int = Field(default=2, gt=0)
    log_every: int = Field(default=1, gt=0)
    progress: bool = True

    lora: LoraSettings = Field(default_factory=LoraSettings)
    synergy: SynergySettings = Field(default_factory=SynergySettings)
    train_vision_tower: bool = False
    """``base`` only: train the vision tower with the LLM. For a tower built here (``nano``'s
    small CLIP) that is the pretraining a released tower already had; the paper's stages (and
    every other stage here) keep it frozen."""
    loss_weights: dict[str, float] = Field(default_factory=dict)
    """Weight per loss term name (``lm``, ``mask_bce``, ``mask_dice``, ``caption_mse``,
    ``caption_cos``, ``synergy_*``); a term not named weighs 1 (synergy terms: the schedule)."""
    signal_routes: dict[str, SignalRoute] = Field(default_factory=default_routes)
    signal_alignment: bool = True
    """Stage 2 only: train signal heads and projectors through the frozen decoders."""
    denoising: bool = True
    """Stage 2: for signals whose target names a wanted image, add the denoising loss through the
    frozen UNet of a text-to-image pipeline (``denoise_mse``)."""
    signals_only: bool = False
    """Stage 2 only: train the signal projectors alone, the whole LLM frozen (no LoRA, no signal
    heads, no synergy). It re-aligns a trained planner's signals to decoders retrained after it
    (a longer-trained SAM, a new VAE and UNet) without changing a word the planner says."""

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        from vitron.agent.invocation import MODULES, SIGNAL_TOKENS

        if self.train_vision_tower and self.stage != "base":
            raise ValueError(f"train_vision_tower is for the base stage, not {self.stage!r}")
        if self.signals_only and (self.stage != "invoke" or not self.signal_alignment):
            raise ValueError(
                "signals_only trains the projectors of stage 2: it needs stage "
                f"'invoke' with signal_alignment, not stage {self.stage!r}"
            )
        unknown = [k for k in self.signal_routes if k not in MODULES and k not in SIGNAL_TOKENS]
        if unknown:
            raise ValueError(f"signal_routes keys {unknown} are neither modules nor signal tokens")
        return self

    # ---- files ----

    @classmethod
    def load(cls, path: str | Path, **overrides: Any) -> TrainConfig:
        """Read a ``.toml`` or ``.json`` config; ``overrides`` (command-line flags) win."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
            data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        except (OSError, tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read config {path}: {exc}") from exc
        data = _merge(data, {k: v for k, v in overrides.items() if v is not None})
        config = cls.from_dict(data, source=str(path))
        return config.resolved(path.parent)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> TrainConfig:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']}"
                for e in exc.errors()[:5]
            )
            raise ConfigError(f"{source}: {problems}") from None

    def resolved(self, base: Path) -> TrainConfig:
        """Relative data roots, output and model paths made relative to ``base``."""

        def fix(value: str) -> str:
            path = Path(value).expanduser()
            return value if path.is_absolute() else str((base / path).resolve())

        data = [d.model_copy(update={"root": fix(d.root)}) for d in self.data]
        evals = [d.model_copy(update={"root": fix(d.root)}) for d in self.eval_data]
        update: dict[str, Any] = {
            "data": data,
            "eval_data": evals,
            "output_dir": fix(self.output_dir),
        }
        if self.model != "tiny":
            update["model"] = fix(self.model)
        if self.profile.endswith(".toml") or (base / self.profile).exists():
            update["profile"] = fix(self.profile)
        return self.model_copy(update=update)

    def save(self, directory: str | Path) -> Path:
        """Write ``train_config.json`` into ``directory`` (beside a checkpoint)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / CONFIG_FILE
        path.write_text(self.model_dump_json(indent=2))
        return path


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``overrides`` on top of ``base``; dotted keys (``synergy.enabled``) reach into tables."""
    out = json.loads(json.dumps(base))
    for key, value in overrides.items():
        target = out
        *parents, leaf = key.split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    return out
