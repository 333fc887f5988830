"""Shipped configs: the stage examples validate; the accelerate configs build their engines."""

from __future__ import annotations

import subprocess
import sys
from importlib import resources

import pytest

from vitron.agent.training.config import ConfigError, TrainConfig
from vitron.agent.training.distributed import CONFIGS, config_path


@pytest.mark.parametrize("stage", ["align", "invoke", "ground"])
def test_example_stage_configs_validate(stage):
    path = resources.files("vitron.agent.training") / "configs" / f"{stage}.toml"
    config = TrainConfig.load(str(path))
    assert config.stage == stage and config.data
    assert config.output_dir.endswith(f"runs/{stage}")  # made relative to the file


def test_overrides_reach_nested_tables_and_typos_fail(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('stage = "invoke"\noutput_dir = "o"\n[[data]]\nroot = "d"\n')
    config = TrainConfig.load(path, **{"synergy.enabled": False, "max_steps": 3})
    assert config.synergy.enabled is False and config.max_steps == 3
    path.write_text('stage = "invoke"\noutput_dir = "o"\n[synergy]\nenabeld = false\n')
    with pytest.raises(ConfigError, match="synergy.enabeld"):
        TrainConfig.load(path)


def test_accelerate_configs_are_shipped():
    for name in CONFIGS:
        assert config_path(name).is_file()


@pytest.mark.heavy
def test_deepspeed_zero2_zero3_engines_build_on_cpu_and_fsdp_plugin_parses():
    pytest.importorskip("deepspeed", reason="the `distributed` extra (deepspeed) is not installed")
    done = subprocess.run(
        [sys.executable, "-m", "vitron.agent.training.distributed", "--dry-run"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    lines = dict(line.split(": ", 1) for line in done.stdout.splitlines() if ": " in line)
    assert "DeepSpeedEngine" in lines["zero2"] and "ZeRO stage 2" in lines["zero2"]
    assert "DeepSpeedEngine" in lines["zero3"] and "ZeRO stage 3" in lines["zero3"]
    assert "LlamaDecoderLayer" in lines["fsdp"]


def test_only_the_base_stage_may_train_the_vision_tower(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(
        'stage = "base"\noutput_dir = "o"\ntrain_vision_tower = true\n[[data]]\nroot = "d"\n'
    )
    assert TrainConfig.load(path).train_vision_tower is True
    with pytest.raises(ConfigError, match="train_vision_tower is for the base stage"):
        TrainConfig.load(path, stage="ground")
