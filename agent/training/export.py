"""A finished run as a profile directory that ``--profile RUN_DIR`` loads.

Layout (all weights safetensors)::

    profile.toml                 extends the run's base profile; overrides what the run trained
    llm/                         the Vitron LLM (save_vitron layout), LoRA merged when
                                 ``lora.merge`` (default), else the base weights ...
    lora/                        ... and the PEFT adapter beside them
    projectors/<component>/      one signal projector per backend it trained
                                 (projector_config.json + model.safetensors)

The signal heads and synergy module are part of the LLM's weights (``signal_heads.*`` in
``llm/model.safetensors``) and load with it. The base profile's other components (SAM, SAM 2,
diffusion, Grounding DINO…) are inherited unchanged, so the graph runs with the new planner and
projectors against the same backends they were aligned with.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from vitron.agent.build import save_vitron

if TYPE_CHECKING:
    from vitron.agent.training.trainer import Trainer

PROFILE_FILE = "profile.toml"


def export_profile(trainer: Trainer, output_dir: str | Path) -> Path:
    """Write the run's profile directory; returns the ``profile.toml`` path."""
    output_dir = Path(output_dir)
    config = trainer.config
    module = trainer.accelerator.unwrap_model(trainer.module)
    model = module.model
    llm_options: dict[str, Any] = {"checkpoint": "./llm"} | _decoding_options(config.profile)
    if trainer.stage.lora:
        if config.lora.merge:
            model = model.merge_and_unload()
        else:
            model.save_pretrained(output_dir / "lora")
            model = model.unload()
            llm_options |= {"lora": "./lora", "merge": False}
        module.model = model
    save_vitron(model, trainer.processor, output_dir / "llm")
    projectors = {}
    for name, projector in module.projectors.items():
        projector.save_pretrained(output_dir / "projectors" / name)
        projectors[name] = f"./projectors/{name}"
    lines = [
        f"# Written by `vitron train` (stage {config.stage}); load with --profile {output_dir}",
        f"name = {_q(output_dir.name)}",
        f"description = {_q(f'trained by vitron train, stage {config.stage}, on {config.profile}')}",
        f"extends = {_q(_base(config.profile))}",
        "",
        "[components.vitron_llm]",
        'loader = "vitron.agent.loading:load_vitron_llm"',
        'format = "vitron"',
        *[f"{k} = {_toml(v)}" for k, v in llm_options.items()],
    ]
    for name, path in projectors.items():
        lines += [
            "",
            f"[components.{name}]",
            'loader = "signal_projector"',
            f"checkpoint = {_q(path)}",
        ]
    path = output_dir / PROFILE_FILE
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _decoding_options(profile: str) -> dict[str, Any]:
    """The base profile's planner decoding options (constrained decoding, copied instructions,
    history turns): a run evaluated as a profile decodes as the profile it will be published
    into does (before, ``vitron eval --profile RUN`` of a nano run lost ``copy_instructions``)."""
    from vitron.agent.loading import DECODING_OPTIONS
    from vitron.tools.profiles import load_profile

    base = load_profile(profile).components.get("vitron_llm")
    options = base.options if base is not None else {}
    return {k: options[k] for k in DECODING_OPTIONS if k in options}


def _base(profile: str) -> str:
    """The base profile as ``extends`` names it: a built-in name, or an absolute path."""
    candidate = Path(profile).expanduser()
    return str(candidate.resolve()) if candidate.exists() else profile


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return _q(str(value))
