"""Dense shapes-world pretraining of the nano planner's vision tower.

The nano CLIP (``tools/profiles/nano/clip``) learnt from whole-image contrast; its patch features
tell colours apart (a probe on mask-pooled patches: 0.98) but hardly shapes (0.36-0.50), and the
planner cannot name what its tower does not see. A released tower had that from pretraining at
scale; here each patch of a 64 px scene is labelled with the colour, shape, size and texture of the
object covering most of it (background when no object covers a fifth of it), and linear heads on
the features the planner reads (``ImageEncoder``'s layer) are trained with the tower. The heads are
thrown away; the tower goes on training with the LLM in ``base``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ATTRIBUTES = ("colour", "shape", "size", "texture")
COVERED = 0.2
"""A patch is labelled with an object when that object covers at least this share of it."""


def attribute_names() -> dict[str, list[str]]:
    from vitron.evals.shapes.vocab import COLOURS, SHAPES, SIZES, TEXTURES

    return {"colour": list(COLOURS), "shape": list(SHAPES), "size": list(SIZES),
            "texture": list(TEXTURES)}  # fmt: skip


def patch_labels(
    scene: Any, masks: list[np.ndarray], grid: tuple[int, int]
) -> dict[str, torch.Tensor]:
    """Per attribute, (rows * cols,) class ids in row-major patch order: 0 background, else 1 +
    the index of the covering object's value in :func:`attribute_names`."""
    names = attribute_names()
    patches = grid[0] * grid[1]
    if not masks:
        return {k: torch.zeros(patches, dtype=torch.long) for k in ATTRIBUTES}
    stacked = torch.as_tensor(np.stack(masks), dtype=torch.float32)[:, None]
    coverage = F.adaptive_avg_pool2d(stacked, grid).flatten(1)  # (objects, patches)
    share, best = coverage.max(dim=0)
    labels = {}
    for attribute in ATTRIBUTES:
        values = torch.tensor([names[attribute].index(getattr(o, attribute)) + 1
                               for o in scene.objects])  # fmt: skip
        labels[attribute] = torch.where(share >= COVERED, values[best], torch.zeros_like(best))
    return labels


def scene_batch(
    rng: np.random.Generator, count: int, processor: Any, grid: tuple[int, int]
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``count`` training-combination scenes: (count, 3, S, S) pixels and per-attribute
    (count, patches) labels."""
    from vitron.evals.shapes.scene import render, sample_scene

    pixels, labels = [], {k: [] for k in ATTRIBUTES}
    for _ in range(count):
        scene = sample_scene(rng)
        rendered = render(scene, 64)
        pixels.append(processor.preprocess_image(rendered.image))
        for k, v in patch_labels(scene, rendered.masks, grid).items():
            labels[k].append(v)
    return torch.stack(pixels), {k: torch.stack(v) for k, v in labels.items()}


def patch_accuracy(
    encoder: nn.Module, heads: nn.ModuleDict, pixels: torch.Tensor, labels: dict[str, torch.Tensor]
) -> dict[str, float]:
    """Per attribute, the heads' accuracy on the patches an object covers."""
    with torch.no_grad():
        features = encoder(pixels).features
        covered = labels["shape"] > 0
        return {k: float((head(features).argmax(-1)[covered] == labels[k][covered]).float().mean())
                for k, head in heads.items()}  # fmt: skip


def pretrain_tower(
    model: Any, processor: Any, *, steps: int, seed: int = 0, batch_size: int = 32,
    lr: float = 1e-3, log_every: int = 100, held_out: int = 256,
) -> dict[str, Any]:  # fmt: skip
    """Train ``model``'s vision tower in place for ``steps`` steps; returns the held-out patch
    accuracies (patches an object covers), the wall time and the last loss.
    Scenes come from the training stream (seed key 100), held-out ones from key 200."""
    import logging

    log = logging.getLogger(__name__)
    encoder = model.image_encoder
    torch.manual_seed(seed)
    sizes = {k: len(v) + 1 for k, v in attribute_names().items()}
    heads = nn.ModuleDict({k: nn.Linear(encoder.hidden_size, n) for k, n in sizes.items()})
    encoder.requires_grad_(True)
    encoder.train()
    parameters = [*encoder.parameters(), *heads.parameters()]
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=0.01)
    rng = np.random.default_rng([100, seed])
    test = scene_batch(np.random.default_rng([200, seed]), held_out, processor, encoder.grid)
    start, loss = time.monotonic(), torch.tensor(float("nan"))
    for step in range(1, steps + 1):
        pixels, labels = scene_batch(rng, batch_size, processor, encoder.grid)
        features = encoder(pixels).features
        loss = sum(F.cross_entropy(head(features).flatten(0, 1), labels[k].flatten())
                   for k, head in heads.items())  # fmt: skip
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        if step % log_every == 0 or step == steps:
            log.info("tower step %d/%d loss %.3f (%.0f s)", step, steps, float(loss.detach()),
                     time.monotonic() - start)  # fmt: skip
    encoder.requires_grad_(False)
    encoder.eval()
    return {"steps": steps, "seconds": round(time.monotonic() - start, 1),
            "last_loss": float(loss.detach()), "held_out_patch_accuracy": patch_accuracy(encoder, heads, *test),
            "batch_size": batch_size, "lr": lr, "seed": seed}  # fmt: skip
