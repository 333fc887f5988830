"""Shared fixtures: a generated data set and a config factory for tiny runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.training.data import make_dataset
from vitron.agent.training.config import TrainConfig


@pytest.fixture(scope="package")
def squares(tmp_path_factory) -> Path:
    """12 records of every kind (segment, generate, region QA, boxes as text) and their media."""
    root = tmp_path_factory.mktemp("squares")
    make_dataset(root, 12)
    return root


def tiny_config(root: Path, output: Path, stage: str, **changes) -> TrainConfig:
    data = {
        "stage": stage,
        "output_dir": str(output),
        "data": [{"root": str(root)}],
        "batch_size": 4,
        "epochs": 2,
        "lr": 5e-3,
        "progress": False,
        "signal_alignment": False,
        "checkpoint_every": 100,
    }
    return TrainConfig.from_dict(data | changes)
