"""Training data drawn on the fly from the shapes world, deterministic from a seed.

A thin adapter over :mod:`vitron.evals.shapes` (its public ``sample_scene`` and ``render``): it
keeps a ring buffer of rendered scenes and replaces ``refresh`` of them per step, so a step costs a
few renders instead of a whole batch of them (rendering a 64 px scene takes several milliseconds,
as long as a nano model's step). Scene ``j`` is always drawn from ``default_rng([seed, STREAM, j])``
and the buffer's content at step ``s`` is a function of ``(seed, s)`` alone, so a resumed run sees
the same data as an uninterrupted one. Training streams never use the evaluation splits' seeds
(``vitron.evals.shapes.dataset`` keys its splits 0–3 under the seed; this module uses key 100).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

from vitron.evals.shapes.scene import DEFAULT_SIZE, Scene, render, sample_scene

STREAM = 100
"""The key of the training stream in a scene's seed (disjoint from the shapes world's splits)."""

T = TypeVar("T")


@dataclass
class RenderedScene:
    """A scene with its ``image`` (S x S x 3 uint8), visible ``masks`` (K x S x S bool) and
    normalised ``boxes`` (K x 4, ``[x1, y1, x2, y2]``; every object of a sampled scene shows)."""

    scene: Scene
    image: np.ndarray
    masks: np.ndarray
    boxes: np.ndarray


def rendered_scene(
    rng: np.random.Generator, objects: tuple[int, int] = (1, 4), size: int = DEFAULT_SIZE
) -> RenderedScene:
    """One training scene (never a held-out colour–shape combination), rendered."""
    scene = sample_scene(rng, objects=objects, size=size)
    out = render(scene, size)
    return RenderedScene(
        scene=scene,
        image=out.image,
        masks=np.stack(out.masks),
        boxes=np.array(out.boxes, dtype=np.float32),
    )


class ScenePool(Generic[T]):
    """A ring buffer of ``capacity`` items made by ``make(rng)``; :meth:`advance` replaces the
    ``refresh`` oldest. Item ``j`` comes from ``default_rng([seed, STREAM, j])``."""

    def __init__(
        self,
        make: Callable[[np.random.Generator], T],
        *,
        seed: int,
        capacity: int,
        refresh: int,
        step: int = 0,
    ) -> None:
        if not 0 < refresh <= capacity:
            raise ValueError("refresh must be between 1 and capacity")
        self.make, self.seed, self.capacity, self.refresh = make, seed, capacity, refresh
        self.made = capacity + step * refresh
        """How many items have been drawn so far (the next one's index)."""
        first = self.made - capacity
        self.items: list[T] = [self._item(j) for j in range(first, self.made)]

    def _item(self, index: int) -> T:
        return self.make(np.random.default_rng([self.seed, STREAM, index]))

    def advance(self) -> None:
        """Replace the ``refresh`` oldest items with new ones (one training step's worth)."""
        new = [self._item(j) for j in range(self.made, self.made + self.refresh)]
        self.items = self.items[self.refresh :] + new
        self.made += self.refresh

    def batch(self, rng: np.random.Generator, size: int) -> list[T]:
        """``size`` items drawn without replacement (with, if the pool is smaller)."""
        picks = rng.choice(len(self.items), size=size, replace=size > len(self.items))
        return [self.items[int(i)] for i in picks]


def pool_size(batch: int, steps: int, refresh: int, largest: int = 1024) -> int:
    """Buffer size for a run: ``largest`` scenes, fewer for a run too short to use them (a smoke
    test need not render a thousand scenes), never fewer than one batch."""
    return max(batch, min(largest, steps * refresh))
