"""Which image tokens let a planner-sized model answer shapes-world questions: patches or objects?

The nano planner answers VQA at 0.64 (issue 13's floor: 0.85), counts and "is there" near their
priors. This measures the reading alone, apart from the planner's language modelling and its other
tasks: a causal transformer of the planner's size (3 layers, 128 wide, 4 heads; image tokens, then
the question's words, then one answer slot classified over every answer word) trained on the
world's VQA questions from the frozen nano ``clip_tower`` features, given either

- ``patches``: the tower's 64 patch tokens, as the planner reads a picture; or
- ``objects``: one token per object, the patch features pooled under its visible mask (weighted
  by how much of each 8 px patch it covers) with its box ``[x1, y1, x2, y2]`` (0-1) beside them,
  as "bottom-up" VQA models read detector regions. Trained on the world's own masks; ``--sam``
  also scores the trained model on masks that the nano SAM's automatic generator finds (masks
  over 40 % of the picture, the background, left out; one mostly inside a kept one dropped).

    python benchmarks/bench_reading_tokens.py [--steps 2000] [--train 8000] [--test 800] [--sam]
        [--order drawn|left-to-right] [--fourier] [--only relation]

``--order left-to-right`` gives the objects by their boxes' centres instead of as drawn,
``--fourier`` adds sines and cosines of each box coordinate at 6 frequencies, ``--only KIND``
keeps the training questions of one kind (drawn from five times ``--train``).

Questions are drawn as ``vitron eval``'s ``vqa`` task draws them (``evals/shapes/tasks.py``),
from streams of their own (seeds 1 and 2 here, not the splits'). Accuracy per question kind and
in all, as JSON. A benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

TOWER = "tools/profiles/nano/clip_tower"
PATCH = 8  # the tower's patch side at 64 px: an 8 x 8 grid
MAX_OBJECTS = 6
QUESTION_LENGTH = 14


@dataclass
class Question:
    image: np.ndarray  # 64 x 64 x 3 uint8
    masks: list[np.ndarray]  # visible masks, 64 x 64 bool
    text: str
    answer: str
    kind: str


def draw_questions(seed: int, count: int) -> list[Question]:
    """``count`` VQA questions with their scenes' visible masks: the scene is drawn again from a
    copy of the generator's state, as ``vqa`` draws it first."""
    from vitron.evals.shapes.scene import render, sample_scene
    from vitron.evals.shapes.tasks import vqa

    rng, out = np.random.default_rng(seed), []
    while len(out) < count:
        state = copy.deepcopy(rng.bit_generator.state)
        sample = vqa(rng, False, 64)
        if sample is None:
            continue
        twin = np.random.default_rng()
        twin.bit_generator.state = state
        rendered = render(sample_scene(twin, compositional=False, size=64), 64)
        assert np.array_equal(rendered.image, sample.media[0].pixels)
        masks = [m for m in rendered.masks if m.any()]
        out.append(Question(rendered.image, masks, sample.instruction, sample.answer,
                            sample.gold["kind"]))  # fmt: skip
    return out


def patch_features(tower: nn.Module, images: list[np.ndarray]) -> torch.Tensor:
    """``(N, 64, 128)`` last-layer patch features of the frozen tower (CLIP normalisation)."""
    from transformers.utils.constants import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

    mean = torch.tensor(OPENAI_CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(OPENAI_CLIP_STD).view(1, 3, 1, 1)
    chunks = []
    for start in range(0, len(images), 256):
        pixels = torch.from_numpy(np.stack(images[start : start + 256])).permute(0, 3, 1, 2)
        with torch.no_grad():
            hidden = tower(pixel_values=(pixels.float() / 255 - mean) / std).last_hidden_state
        chunks.append(hidden[:, 1:])
    return torch.cat(chunks)


def left_to_right(masks: list[np.ndarray]) -> list[np.ndarray]:
    """``masks`` ordered by their columns' mean (left first)."""
    return sorted(masks, key=lambda m: float(np.nonzero(m.any(axis=0))[0].mean()))


def with_fourier_boxes(tokens: torch.Tensor, frequencies: int = 6) -> torch.Tensor:
    """``tokens`` (..., C + 4, the box last) with ``sin`` and ``cos`` of each box coordinate at
    ``2^k pi``, k < ``frequencies``, appended (scaled by 10, near the features' size)."""
    angles = tokens[..., -4:, None] * (2.0 ** torch.arange(frequencies).float() * np.pi)
    return torch.cat([tokens, 10 * angles.sin().flatten(-2), 10 * angles.cos().flatten(-2)], -1)


def object_tokens(
    masks: list[list[np.ndarray]], patches: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(N, MAX_OBJECTS, 132)`` tokens (pooled features, then the box) and their validity."""
    from vitron.tools.geometry import mask_box

    tokens = torch.zeros(len(masks), MAX_OBJECTS, patches.shape[-1] + 4)
    valid = torch.zeros(len(masks), MAX_OBJECTS, dtype=torch.bool)
    for n, scene in enumerate(masks):
        for k, mask in enumerate(scene[:MAX_OBJECTS]):
            side = mask.shape[0] // PATCH
            cover = mask.reshape(PATCH, side, PATCH, side).mean(axis=(1, 3)).reshape(-1)
            weights = torch.from_numpy(cover).float()
            tokens[n, k, :-4] = (weights[:, None] * patches[n]).sum(0) / weights.sum()
            tokens[n, k, -4:] = torch.tensor(mask_box(mask), dtype=torch.float32)
            valid[n, k] = True
    return tokens, valid


def sam_masks(images: list[np.ndarray]) -> list[list[np.ndarray]]:
    """Objects the nano SAM's automatic generator finds, as ``segment_image`` runs it."""
    from PIL import Image

    from vitron.tools.profiles import load_profile
    from vitron.tools.registry import ModelRegistry

    sam = ModelRegistry(load_profile("nano"), device="cpu").get("sam")
    found = []
    for image in images:
        kept: list[np.ndarray] = []
        for item in sam.automatic(Image.fromarray(image)):
            mask = item.mask
            if mask.mean() < 0.4 and all((mask & k).sum() < 0.5 * mask.sum() for k in kept):
                kept.append(mask)
        found.append(kept)
    return found


class Reader(nn.Module):
    """Image tokens, question words, an answer slot; causal, as the planner reads them."""

    def __init__(self, token_width: int, words: int, answers: int, width: int = 128,
                 layers: int = 3) -> None:  # fmt: skip
        super().__init__()
        self.image = nn.Sequential(
            nn.Linear(token_width, width), nn.GELU(), nn.Linear(width, width)
        )
        self.words = nn.Embedding(words + 1, width)  # 0: padding
        self.positions = nn.Parameter(torch.randn(128, width) * 0.02)
        self.slot = nn.Parameter(torch.randn(width) * 0.02)
        layer = nn.TransformerEncoderLayer(width, 4, 4 * width, 0.0, batch_first=True,
                                           norm_first=True)  # fmt: skip
        self.layers = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(width, answers)

    def forward(
        self, image: torch.Tensor, valid: torch.Tensor, words: torch.Tensor
    ) -> torch.Tensor:
        batch = words.shape[0]
        x = torch.cat([self.image(image), self.words(words), self.slot.expand(batch, 1, -1)], 1)
        x = x + self.positions[: x.shape[1]]
        padding = torch.cat([~valid, words == 0, torch.zeros(batch, 1, dtype=torch.bool)], 1)
        causal = torch.triu(torch.ones(x.shape[1], x.shape[1], dtype=torch.bool), 1)
        return self.head(self.layers(x, mask=causal, src_key_padding_mask=padding)[:, -1])


def accuracy(right: np.ndarray, kinds: np.ndarray) -> dict[str, float]:
    scores = {kind: round(float(right[kinds == kind].mean()), 3) for kind in sorted(set(kinds))}
    return {"all": round(float(right.mean()), 3)} | scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="AdamW steps of 64 questions")
    parser.add_argument("--train", type=int, default=8000)
    parser.add_argument("--test", type=int, default=800)
    parser.add_argument("--tokens", default="patches,objects")
    parser.add_argument("--sam", action="store_true", help="also score objects on nano SAM masks")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--layers", type=int, default=3, help="the planner's: 3")
    parser.add_argument("--order", choices=("drawn", "left-to-right"), default="drawn",
                        help="the object tokens' order")  # fmt: skip
    parser.add_argument(
        "--fourier", action="store_true", help="object boxes as Fourier features too"
    )
    parser.add_argument("--only", help="train on the questions of this kind alone")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from transformers import CLIPVisionModel

    started = time.perf_counter()
    if args.only:
        drawn = draw_questions(1, 5 * args.train)
        train = [q for q in drawn if q.kind == args.only][: args.train]
    else:
        train = draw_questions(1, args.train)
    test = draw_questions(2, args.test)
    ordered = left_to_right if args.order == "left-to-right" else list
    tower = CLIPVisionModel.from_pretrained(TOWER).eval()
    features = {name: patch_features(tower, [q.image for q in data])
                for name, data in (("train", train), ("test", test))}  # fmt: skip
    vocabulary = sorted(
        {w for q in train + test for w in q.text.lower().replace("?", " ?").split()}
    )
    word_ids = {w: i + 1 for i, w in enumerate(vocabulary)}
    answer_ids = {a: i for i, a in enumerate(sorted({q.answer for q in train + test}))}

    def words(data: list[Question]) -> torch.Tensor:
        ids = torch.zeros(len(data), QUESTION_LENGTH, dtype=torch.long)
        for n, q in enumerate(data):
            row = [word_ids[w] for w in q.text.lower().replace("?", " ?").split()]
            ids[n, : len(row)] = torch.tensor(row[:QUESTION_LENGTH])
        return ids

    inputs = {"patches": {name: (features[name], torch.ones(len(data), 64, dtype=torch.bool))
                          for name, data in (("train", train), ("test", test))},
              "objects": {name: object_tokens([ordered(q.masks) for q in data], features[name])
                          for name, data in (("train", train), ("test", test))}}  # fmt: skip
    if args.sam:
        inputs["objects"]["sam"] = object_tokens(
            [ordered(m) for m in sam_masks([q.image for q in test])], features["test"]
        )
    if args.fourier:
        inputs["objects"] = {
            split: (with_fourier_boxes(tokens), valid)
            for split, (tokens, valid) in inputs["objects"].items()
        }
    questions = {"train": words(train), "test": words(test)}
    answers = torch.tensor([answer_ids[q.answer] for q in train])
    expected = np.array([answer_ids[q.answer] for q in test])
    kinds = np.array([q.kind for q in test])
    report: dict[str, object] = {"args": vars(args), "data_s": round(time.perf_counter() - started)}
    for name in args.tokens.split(","):
        torch.manual_seed(0)
        tokens, valid = inputs[name]["train"]
        model = Reader(tokens.shape[-1], len(word_ids), len(answer_ids), layers=args.layers)
        optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
        began = time.perf_counter()
        for _ in range(args.steps):
            batch = torch.randint(0, len(train), (64,))
            logits = model(tokens[batch], valid[batch], questions["train"][batch])
            loss = F.cross_entropy(logits, answers[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        model.eval()
        row: dict[str, object] = {"train_s": round(time.perf_counter() - began)}
        for split in [s for s in ("test", "sam") if s in inputs[name]]:
            with torch.no_grad():
                predicted = model(*inputs[name][split], questions["test"]).argmax(-1).numpy()
            row[split] = accuracy(predicted == expected, kinds)
        report[name] = row
        print(json.dumps({name: row}), flush=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
