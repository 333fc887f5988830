"""The shapes world's attribute classifier: the judge of generated and edited images.

``vitron eval`` scores text-to-image and editing by what a small CNN trained on the world reads in
the output: an object's ``shape`` and ``colour`` (inside a box when one is given, else over the
whole picture) and its horizontal ``position`` (left / centre / right third). Its own accuracy on
ground-truth renders is reported beside its judgements, so a low score can be told apart from a
poor judge. The shipped weights (``evals/weights/``) are made by::

    python -m vitron.evals.classifier --seed 0 --steps 1500 --out evals/weights

Images are H x W x 3 uint8; boxes ``[x1, y1, x2, y2]`` normalised to [0, 1], top-left origin.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from vitron.evals.shapes.language import horizontal_position
from vitron.evals.shapes.scene import Scene, random_object, render, sample_scene
from vitron.evals.shapes.vocab import BACKGROUNDS, COLOURS, SHAPES

logger = logging.getLogger(__name__)

SIDE = 32
"""Every input is resized to SIDE x SIDE before the network sees it."""
POSITIONS = ("left", "centre", "right")
HEADS: dict[str, tuple[str, ...]] = {
    "shape": SHAPES,
    "colour": tuple(COLOURS),
    "position": POSITIONS,
}
SHIPPED = Path(__file__).parent / "weights"
CROP_MARGIN = 0.15
"""A box is widened by this fraction of its side on each edge before cropping, as renders of the
object keep a little background around it."""


def _network() -> Any:
    from torch import nn

    def block(cin: int, cout: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.GroupNorm(8, cout), nn.GELU())

    class AttributeNet(nn.Module):
        """(B, 3, 32, 32) in [0, 1] -> one logit vector per head."""

        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(
                block(3, 32), nn.MaxPool2d(2), block(32, 64), nn.MaxPool2d(2), block(64, 64)
            )
            # position needs where the object is, so pooling keeps a coarse 3-column layout
            self.pool = nn.AdaptiveAvgPool2d((1, 3))
            self.heads = nn.ModuleDict({k: nn.Linear(64 * 3, len(v)) for k, v in HEADS.items()})

        def forward(self, x: Any) -> dict[str, Any]:
            features = self.pool(self.body(x)).flatten(1)
            return {name: head(features) for name, head in self.heads.items()}

    return AttributeNet()


def crop(image: np.ndarray, box: Sequence[float] | None) -> np.ndarray:
    """The SIDE x SIDE input for ``image``: the widened ``box`` region, or the whole picture."""
    from PIL import Image

    if box is not None:
        h, w = image.shape[:2]
        x1, y1, x2, y2 = (float(v) for v in box)
        mx, my = (x2 - x1) * CROP_MARGIN, (y2 - y1) * CROP_MARGIN
        left, top = max(0, int((x1 - mx) * w)), max(0, int((y1 - my) * h))
        right, bottom = min(w, int(np.ceil((x2 + mx) * w))), min(h, int(np.ceil((y2 + my) * h)))
        if right > left and bottom > top:
            image = image[top:bottom, left:right]
    picture = Image.fromarray(np.ascontiguousarray(image[..., :3]).astype(np.uint8))
    return np.array(picture.resize((SIDE, SIDE), Image.BILINEAR))


@dataclass
class AttributeClassifier:
    """Implements :class:`vitron.evals.metrics.AttributeClassifier` over a trained network."""

    network: Any

    def predict(self, image: np.ndarray, box: Sequence[float] | None = None) -> dict[str, str]:
        import torch

        x = torch.from_numpy(crop(image, box)).permute(2, 0, 1)[None].float() / 255.0
        with torch.inference_mode():
            logits = self.network(x)
        return {name: HEADS[name][int(v.argmax())] for name, v in logits.items()}


def load_classifier(folder: str | Path = SHIPPED) -> AttributeClassifier:
    """The classifier saved in ``folder`` (default: the weights shipped with the package)."""
    from safetensors.torch import load_file

    path = Path(folder) / "attribute_classifier.safetensors"
    if not path.is_file():
        raise FileNotFoundError(
            f"no attribute classifier at {path}; make one with "
            "`python -m vitron.evals.classifier --out FOLDER`"
        )
    network = _network()
    network.load_state_dict(load_file(str(path)))
    return AttributeClassifier(network.eval())


# ------------------------------------------------------------------------------------ training


def training_example(rng: np.random.Generator) -> tuple[np.ndarray, dict[str, int]]:
    """One input and its labels, as the judge meets them: half the time a generation-style
    picture (one object at 32 px, judged whole, position labelled), half an object cropped from a
    64 px scene by its box (position not labelled: -1). Every colour–shape pair is shown,
    the compositional ones included: the judge is not the system under test."""
    if rng.random() < 0.5:
        obj = random_object(rng, lambda c, s: True)
        x = float(rng.choice((0.2, 0.5, 0.8)) + rng.uniform(-0.06, 0.06))
        obj = replace(obj, x=float(np.clip(x, 0.15, 0.85)))
        background = list(BACKGROUNDS)[rng.integers(len(BACKGROUNDS))]
        image = render(Scene((obj,), background), SIDE).image
        labels = {"position": POSITIONS.index(horizontal_position(obj.x))}
        box = None
    else:
        scene = sample_scene(rng, compositional=bool(rng.random() < 0.3))
        rendered = render(scene)
        index = int(rng.integers(len(scene.objects)))
        obj, box = scene.objects[index], rendered.boxes[index]
        image, labels = rendered.image, {"position": -1}
        if box is not None:  # jitter the box as a generated object's box would differ
            box = [float(np.clip(v + rng.uniform(-0.03, 0.03), 0, 1)) for v in box]
    labels |= {"shape": SHAPES.index(obj.shape), "colour": list(COLOURS).index(obj.colour)}
    picture = crop(image, box).astype(np.float32)
    picture += rng.normal(0, rng.uniform(0, 8), picture.shape)  # generated images are noisy
    return np.clip(picture, 0, 255), labels


def batch(rng: np.random.Generator, size: int) -> tuple[Any, dict[str, Any]]:
    import torch

    examples = [training_example(rng) for _ in range(size)]
    x = torch.from_numpy(np.stack([e[0] for e in examples])).permute(0, 3, 1, 2) / 255.0
    y = {k: torch.tensor([e[1][k] for e in examples]) for k in HEADS}
    return x, y


def train(seed: int, steps: int, batch_size: int = 64, log_every: int = 100) -> Any:
    """Train from scratch; returns the network. Cross-entropy per head, position where labelled."""
    import torch
    from torch.nn import functional as F

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    network = _network()
    optimizer = torch.optim.AdamW(network.parameters(), lr=3e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=steps)
    start = time.monotonic()
    for step in range(1, steps + 1):
        x, y = batch(rng, batch_size)
        logits = network(x)
        losses = {k: F.cross_entropy(logits[k], y[k], ignore_index=-1) for k in HEADS}
        loss = sum(losses.values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % log_every == 0 or step == steps:
            parts = " ".join(f"{k} {v.item():.3f}" for k, v in losses.items())
            logger.info("step %d/%d  %s  (%.0f s)", step, steps, parts, time.monotonic() - start)
    return network.eval()


def held_out_accuracy(classifier: AttributeClassifier, seed: int, count: int) -> dict[str, float]:
    """Accuracy per head on fresh examples from a seed the training never used."""
    rng = np.random.default_rng(seed)
    hits: dict[str, list[bool]] = {k: [] for k in HEADS}
    for _ in range(count):
        picture, labels = training_example(rng)
        seen = classifier.predict(picture.astype(np.uint8))
        for k, v in labels.items():
            if v >= 0:
                hits[k].append(seen[k] == HEADS[k][v])
    return {k: float(np.mean(v)) for k, v in hits.items()}


def main(argv: list[str] | None = None) -> int:
    import torch
    from safetensors.torch import save_file

    parser = argparse.ArgumentParser(description="train the shapes world's attribute classifier")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--out", type=Path, default=SHIPPED)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)
    start = time.monotonic()
    network = train(args.seed, args.steps)
    seconds = time.monotonic() - start
    args.out.mkdir(parents=True, exist_ok=True)
    save_file(network.state_dict(), str(args.out / "attribute_classifier.safetensors"))
    accuracy = held_out_accuracy(AttributeClassifier(network), seed=10_000 + args.seed, count=1000)
    card = {"command": f"python -m vitron.evals.classifier --seed {args.seed} --steps {args.steps}",
            "seed": args.seed, "steps": args.steps, "train_seconds": round(seconds, 1),
            "held_out_accuracy": accuracy}  # fmt: skip
    (args.out / "attribute_classifier.json").write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps(card, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
