"""The nano planner's image tower: a transformers ``CLIPVisionModel`` pretrained on dense labels.

The planner reads 64 image tokens per picture (8 x 8 patches of a 64 px scene), so that its
sequences stay short on a CPU, and it can only name what those tokens carry. The contrastive nano
CLIP (:mod:`.clip`) learnt from whole-image contrast: its patch features told colours apart
(0.98 on mask-pooled patches) but hardly shapes (0.36-0.50), and the planner answered "what
shape" questions near chance. A released tower had that from pretraining at scale; here each
patch of a scene is labelled with the colour, shape, size and texture of the object covering it
(background when none covers a fifth of it), and linear heads on the features the planner reads
(the last layer, ``vision_feature_layer = -1``) train with the tower. The heads are thrown away;
the saved folder is the bare ``CLIPVisionModel`` that ``vitron.agent.training.nano`` builds a
planner on (``load_vision_tower``).

Measured on one core (2026-12-05, 3000 steps of 32 scenes): the 3-layer 64-wide tower of the
contrastive CLIP, trained so, reached object shape 0.62; this 4-layer 128-wide one 0.92
(``nano/README.md``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import CLIPVisionConfig, CLIPVisionModel
from transformers.utils.constants import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

from vitron.evals.shapes.scene import Scene
from vitron.evals.shapes.vocab import COLOURS, SHAPES, SIZES, TEXTURES
from vitron.tools.pretraining.data import RenderedScene, ScenePool, pool_size, rendered_scene
from vitron.tools.pretraining.loop import seeded, step_rng

SIZE = 64
TOWER_CONFIG: dict[str, Any] = {
    "image_size": SIZE, "patch_size": 8, "hidden_size": 128, "intermediate_size": 256,
    "num_hidden_layers": 4, "num_attention_heads": 4, "hidden_act": "quick_gelu",
}  # fmt: skip
"""8 px patches: 64 tokens a picture, what the planner reads."""
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "colour": tuple(COLOURS), "shape": SHAPES, "size": tuple(SIZES), "texture": TEXTURES,
}  # fmt: skip
"""Per labelled attribute, its values; class 0 is the background, value ``i`` is class ``i + 1``."""
COVERED = 0.2
"""A patch is labelled with an object when that object covers at least this share of it."""
HELD_OUT_STREAM = 201
"""Seed key of the held-out scenes (the training pool uses ``data.STREAM``, 100)."""


def patch_labels(
    scene: Scene, masks: np.ndarray | list[np.ndarray], grid: tuple[int, int]
) -> dict[str, torch.Tensor]:
    """Per attribute, (rows * cols,) class ids in row-major patch order: 0 background, else 1 +
    the index of the value of the object covering most of the patch (``masks``: K x S x S)."""
    patches = grid[0] * grid[1]
    if len(masks) == 0:
        return {k: torch.zeros(patches, dtype=torch.long) for k in ATTRIBUTES}
    stacked = torch.as_tensor(np.stack(list(masks)), dtype=torch.float32)[:, None]
    coverage = F.adaptive_avg_pool2d(stacked, grid).flatten(1)  # (objects, patches)
    share, best = coverage.max(dim=0)
    labels = {}
    for attribute in ATTRIBUTES:
        ids = class_ids(scene, attribute)
        labels[attribute] = torch.where(share >= COVERED, ids[best], torch.zeros_like(best))
    return labels


def class_ids(scene: Scene, attribute: str) -> torch.Tensor:
    """(K,) the class of each of ``scene``'s objects for ``attribute`` (1 + its value's index)."""
    values = ATTRIBUTES[attribute]
    return torch.tensor([values.index(getattr(o, attribute)) + 1 for o in scene.objects])


def object_weights(masks: np.ndarray, grid: tuple[int, int]) -> torch.Tensor:
    """(K, rows * cols) weights that average each object's patches by how much it covers them."""
    coverage = F.adaptive_avg_pool2d(torch.as_tensor(masks, dtype=torch.float32)[:, None], grid)
    coverage = coverage.flatten(1)
    return coverage / coverage.sum(1, keepdim=True).clamp_min(1e-6)


class DenseTower(nn.Module):
    """The tower and one linear head per attribute on its last layer's patch features."""

    def __init__(self, config: CLIPVisionConfig) -> None:
        super().__init__()
        self.tower = CLIPVisionModel(config)
        self.grid = (config.image_size // config.patch_size,) * 2
        self.heads = nn.ModuleDict(
            {k: nn.Linear(config.hidden_size, len(v) + 1) for k, v in ATTRIBUTES.items()}
        )

    def features(self, pixels: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) CLIP-normalised pixels -> (N, rows * cols, hidden) patch features (the
        class token dropped), as ``ImageEncoder`` gives the planner."""
        return self.tower(pixel_values=pixels).last_hidden_state[:, 1:]


class ClipTowerPretrainer:
    name = "clip_tower"
    default_steps = 3000
    learning_rate = 1e-3
    batch_size = 32

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.model = seeded(seed, lambda: DenseTower(CLIPVisionConfig(**TOWER_CONFIG)))
        self.mean = torch.tensor(OPENAI_CLIP_MEAN).view(1, 3, 1, 1)
        self.std = torch.tensor(OPENAI_CLIP_STD).view(1, 3, 1, 1)
        self.pool: ScenePool[RenderedScene] | None = None

    def pixels(self, scenes: list[RenderedScene]) -> torch.Tensor:
        """(N, 3, S, S) normalised as the planner's processor does (CLIP's mean and std)."""
        images = torch.from_numpy(np.stack([s.image for s in scenes])).permute(0, 3, 1, 2)
        return (images.float() / 255 - self.mean) / self.std

    def start(self, step: int, total: int) -> None:
        refresh = self.batch_size // 2
        self.pool = ScenePool(rendered_scene, seed=self.seed, step=step, refresh=refresh,
                              capacity=pool_size(self.batch_size, total, refresh))  # fmt: skip

    def loss(self, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        assert self.pool is not None, "call start() first"
        scenes = self.pool.batch(step_rng(self.seed, 0, step), self.batch_size)
        self.pool.advance()
        features = self.model.features(self.pixels(scenes))
        labels = [patch_labels(s.scene, s.masks, self.model.grid) for s in scenes]
        losses = {}
        for attribute, head in self.model.heads.items():
            target = torch.stack([label[attribute] for label in labels])
            losses[attribute] = F.cross_entropy(head(features).flatten(0, 1), target.flatten())
        return sum(losses.values()), {f"{k}_loss": float(v.detach()) for k, v in losses.items()}

    def evaluate(self, count: int) -> dict[str, float]:
        """On ``count`` held-out scenes: each head's accuracy on the patches an object covers
        (``patch_*``), and on each object's coverage-weighted mean feature (``object_*``: what
        a region or a question about one object needs)."""
        scenes = [rendered_scene(np.random.default_rng([self.seed, HELD_OUT_STREAM, i]))
                  for i in range(count)]  # fmt: skip
        features = self.model.features(self.pixels(scenes))
        right: dict[str, list[bool]] = {f"{p}_{k}": [] for p in ("patch", "object")
                                        for k in ATTRIBUTES}  # fmt: skip
        for scene, feature in zip(scenes, features, strict=True):
            labels = patch_labels(scene.scene, scene.masks, self.model.grid)
            covered = labels["shape"] > 0
            pooled = object_weights(scene.masks, self.model.grid) @ feature
            for attribute, head in self.model.heads.items():
                hits = head(feature).argmax(-1)[covered] == labels[attribute][covered]
                right[f"patch_{attribute}"] += hits.tolist()
                wanted = class_ids(scene.scene, attribute)
                right[f"object_{attribute}"] += (head(pooled).argmax(-1) == wanted).tolist()
        return {k: float(np.mean(v)) if v else 0.0 for k, v in right.items()}

    def save(self, directory: Path) -> None:
        self.model.tower.save_pretrained(directory)


def make_pretrainer(seed: int) -> ClipTowerPretrainer:
    return ClipTowerPretrainer(seed)
