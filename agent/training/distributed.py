"""The shipped accelerate configs (DeepSpeed ZeRO-2/3, FSDP) and a dry run that checks them.

``accelerate launch --config_file $(python -m vitron.agent.training.distributed zero2) -m
vitron.apps.cli train --config STAGE.toml`` runs a stage on several GPUs; :func:`config_path`
names the shipped files. :func:`dry_run` reads one of them the way ``accelerate launch`` does
(its own config loader), builds the plugin, and prepares the tiny Vitron model and an optimizer
in a one-process group on this machine: for DeepSpeed that builds the real ``DeepSpeedEngine``
on CPU (DeepSpeed's CPU accelerator, gloo); accelerate enables FSDP only with CUDA, so for FSDP it
builds the plugin and checks that the layer class it wraps exists in the model.
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

CONFIGS = ("zero2", "zero3", "fsdp")


def config_path(name: str) -> Path:
    """The shipped accelerate config ``name`` (one of :data:`CONFIGS`)."""
    if name not in CONFIGS:
        raise ValueError(f"unknown accelerate config {name!r}; shipped: {', '.join(CONFIGS)}")
    return Path(str(resources.files("vitron.agent.training") / "accelerate" / f"{name}.yaml"))


@dataclass(frozen=True)
class DryRun:
    config: str
    distributed_type: str
    engine: str
    """Class of the prepared model (``DeepSpeedEngine`` for DeepSpeed)."""
    optimizer: str
    detail: str = ""


def _single_process_group() -> None:
    """Environment of a one-process group on localhost (what a launcher would set)."""
    if "MASTER_PORT" not in os.environ:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    for key, value in (("RANK", "0"), ("WORLD_SIZE", "1"), ("LOCAL_RANK", "0")):
        os.environ.setdefault(key, value)


def dry_run(path: str | Path, micro_batch: int = 2) -> DryRun:
    """Build the engine ``path`` describes around the tiny model; see the module docstring.

    Raises ``ImportError`` when DeepSpeed is needed but not installed (``pip install
    vitron-langgraph[distributed]``).
    """
    import torch
    from accelerate import Accelerator
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.state import AcceleratorState
    from accelerate.utils import DeepSpeedPlugin, FullyShardedDataParallelPlugin

    from vitron.agent.build import build_tiny_vitron

    config = load_config_from_file(str(path))
    kind = str(config.distributed_type)
    model, _ = build_tiny_vitron()
    if "FSDP" in kind:
        options: dict[str, Any] = dict(config.fsdp_config)
        layers = str(options["fsdp_transformer_layer_cls_to_wrap"]).split(",")
        plugin = FullyShardedDataParallelPlugin(
            fsdp_version=int(options.get("fsdp_version", 1)),
            auto_wrap_policy=str(options["fsdp_auto_wrap_policy"]).lower(),
            transformer_cls_names_to_wrap=layers,
            state_dict_type=options.get("fsdp_state_dict_type", "FULL_STATE_DICT"),
        )
        present = {type(m).__name__ for m in model.modules()}
        missing = [name for name in layers if name not in present]
        if missing:
            raise ValueError(f"{path}: the model has no {missing} layers to wrap")
        return DryRun(
            str(path), kind, "FullyShardedDataParallelPlugin", "-",
            f"wraps {layers}; accelerate enables FSDP only with CUDA, so no engine on CPU",
        )  # fmt: skip
    try:
        import deepspeed  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"{path} needs DeepSpeed: pip install 'vitron-langgraph[distributed]'"
        ) from exc

    options = dict(config.deepspeed_config)
    plugin = DeepSpeedPlugin(
        zero_stage=int(options["zero_stage"]),
        gradient_clipping=float(options.get("gradient_clipping", 1.0)),
        gradient_accumulation_steps=int(options.get("gradient_accumulation_steps", 1)),
        offload_optimizer_device=options.get("offload_optimizer_device", "none"),
        offload_param_device=options.get("offload_param_device", "none"),
        zero3_init_flag=False,
    )
    _single_process_group()
    AcceleratorState._reset_state(True)
    accelerator = Accelerator(deepspeed_plugin=plugin)
    accelerator.state.deepspeed_plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = (
        micro_batch
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    engine, wrapped = accelerator.prepare(model, optimizer)
    stage = engine.zero_optimization_stage()
    report = DryRun(
        str(path), str(accelerator.distributed_type), type(engine).__name__,
        type(wrapped).__name__, f"ZeRO stage {stage}",
    )  # fmt: skip
    accelerator.free_memory()
    return report


def main(argv: list[str] | None = None) -> int:
    """``python -m vitron.agent.training.distributed NAME`` prints the shipped config's path;
    ``--dry-run NAME…`` dry-runs them."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "--dry-run":
        for name in args[1:] or CONFIGS:
            result = dry_run(config_path(name) if name in CONFIGS else Path(name))
            print(f"{name}: {result.distributed_type} {result.engine} {result.optimizer} "
                  f"{result.detail}")  # fmt: skip
        return 0
    for name in args or CONFIGS:
        print(config_path(name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
