"""A saved Vitron LLM that names its image tower instead of carrying a copy.

LLaVA-style checkpoints name their CLIP (``mm_vision_tower``) rather than store it, because the
tower stays frozen. A planner folder does the same here when its tower is bit-identical to a
tower folder beside it (the ``nano`` planners and their ablation twin are trained on the frozen
``clip_tower``): :func:`share_tower` drops the tower's tensors from ``model.safetensors`` and
writes :data:`TOWER_FILE`, ``{"source": "../clip_tower"}`` (relative to the planner folder);
:func:`shared_tower` reads that tower back for :func:`~vitron.agent.build.load_vitron`.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel

logger = logging.getLogger(__name__)

TOWER_FILE = "vision_tower.json"
TOWER_PREFIX = "image_encoder.tower."
"""Where ``VitronForCausalLM``'s state dict keeps the image tower's tensors."""
WEIGHTS = "model.safetensors"


def share_tower(folder: str | Path, tower: str | Path) -> bool:
    """Leave the image tower out of ``folder``'s weights and name ``tower`` instead, when the
    two hold exactly the same tensors; returns whether it did (a fine-tuned tower stays)."""
    from safetensors.torch import load_file, save_file

    from vitron.agent.modeling.image_encoder import load_vision_tower

    folder, tower = Path(folder), Path(tower)
    weights = load_file(folder / WEIGHTS)
    own = {k[len(TOWER_PREFIX) :]: v for k, v in weights.items() if k.startswith(TOWER_PREFIX)}
    reference = load_vision_tower(tower, torch.float32).state_dict()
    if not own or set(own) != set(reference):
        return False
    if not all(torch.equal(own[k].float(), reference[k]) for k in own):
        return False
    kept = {k: v for k, v in weights.items() if not k.startswith(TOWER_PREFIX)}
    save_file(kept, folder / WEIGHTS, metadata={"format": "pt"})
    source = Path(os.path.relpath(tower.resolve(), folder.resolve())).as_posix()
    (folder / TOWER_FILE).write_text(json.dumps({"source": source}, indent=2) + "\n")
    return True


class _NoLoadReport(logging.Filter):
    """Drops transformers' table of missing weights (checked by :func:`load_with_tower`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "LOAD REPORT" not in record.getMessage()


def load_with_tower(
    model_class: type[PreTrainedModel], folder: str | Path, tower: PreTrainedModel, **kwargs: Any
) -> PreTrainedModel:
    """``model_class.from_pretrained(folder)`` whose weights leave the image tower out, with
    ``tower``'s weights put in its place. The tower is built from the config as usual (so its
    buffers are right) and its "missing" weights are not reported; any other missing weight is."""
    checkpoint_logger = logging.getLogger("transformers.modeling_utils")
    report = _NoLoadReport()  # a filter, not a level: transformers acts on its logger's level
    checkpoint_logger.addFilter(report)
    try:
        model, info = model_class.from_pretrained(folder, output_loading_info=True, **kwargs)
    finally:
        checkpoint_logger.removeFilter(report)
    others = sorted(k for k in info["missing_keys"] if not k.startswith(TOWER_PREFIX))
    if others:
        logger.warning("%s lacks %d weights, newly initialised: %s", folder, len(others),
                       ", ".join(others[:8]))  # fmt: skip
    model.image_encoder.tower.load_state_dict(tower.state_dict())
    return model


def shared_tower(folder: str | Path, dtype: torch.dtype | None = None) -> PreTrainedModel | None:
    """The tower ``folder`` names in :data:`TOWER_FILE`, loaded; ``None`` when it names none (its
    weights hold the tower, or ``folder`` is a hub id)."""
    from vitron.agent.modeling.image_encoder import load_vision_tower

    note = Path(folder) / TOWER_FILE
    if not note.is_file():
        return None
    source = json.loads(note.read_text()).get("source")
    if not source:
        raise ValueError(f"{note} names no tower: expected {{'source': 'PATH'}}")
    path = (Path(folder) / source).resolve()
    if not path.is_dir():
        raise FileNotFoundError(
            f"{folder} leaves its image tower out and names {source} ({path}), which is missing; "
            "keep the tower folder beside it, or save the model with its tower"
        )
    return load_vision_tower(path, dtype)


__all__ = ["TOWER_FILE", "TOWER_PREFIX", "load_with_tower", "share_tower", "shared_tower"]
