"""A nano transformers ``CLIPModel`` trained contrastively on shapes-world images and texts.

Texts are what ``retrieve`` is asked for (``a red circle``, ``a small red circle`` — the shapes
world's retrieval queries) and whole captions. A query fits every image with an object it
describes, not just the one it was drawn from, so the loss has soft targets: a text's probability
mass is spread over every image in the batch it fits (and an image's over every text), which keeps
"a red circle" from being pushed away from a second image that also has a red circle. Images come
in minimal pairs (one object's colour or shape changed, :func:`minimal_pair`) and most texts are
about that object, so the model must bind colours to shapes: without them it learnt the words but
ranked "an orange diamond" below an image with an orange circle and a blue diamond.

The tokenizer is CLIP's byte-level BPE (``CLIPTokenizer``) with a vocabulary of every byte plus the
shapes world's words, each made one token by a chain of merges, so any text still encodes. Saved
with ``save_pretrained`` (model and ``CLIPProcessor``), as the ``clip`` loader reads a hub folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer
from transformers.convert_slow_tokenizer import bytes_to_unicode

from vitron.evals.shapes.dataset import make_sample
from vitron.evals.shapes.language import caption, fits, phrase
from vitron.evals.shapes.scene import render, training_combination
from vitron.evals.shapes.vocab import (
    BACKGROUND_STYLES,
    BACKGROUNDS,
    COLOURS,
    NUMBER_WORDS,
    SHAPES,
    SIZES,
    TEXTURES,
    plural,
)
from vitron.tools.models.clip import TEXT_LENGTH, ClipEngine
from vitron.tools.pretraining.data import RenderedScene, ScenePool, pool_size, rendered_scene
from vitron.tools.pretraining.loop import seeded, step_rng

SIZE = 64
WORDS: tuple[str, ...] = (
    *SHAPES, *(plural(s) for s in SHAPES), *COLOURS, *SIZES, *TEXTURES, *BACKGROUNDS,
    *BACKGROUND_STYLES, *NUMBER_WORDS, "a", "an", "the", "and", "on", "of", "with", "in", "shape",
    "shapes", "background", "picture", "image", "photo",
)  # fmt: skip
"""Words that get a token of their own; anything else is spelled in bytes."""
QUERY_KEYS: tuple[tuple[tuple[str, ...], float], ...] = (
    (("colour", "shape"), 0.40),
    (("size", "colour", "shape"), 0.25),
    (("size", "texture", "colour", "shape"), 0.05),
    (("shape",), 0.05),
    (("colour",), 0.05),
)
"""Which attributes a query names, with its probability; the rest of the texts are captions."""


def shapes_tokenizer(words: Sequence[str] = WORDS, length: int = TEXT_LENGTH) -> CLIPTokenizer:
    """CLIP's byte-level BPE over every byte, plus one token per word of ``words`` (default
    :data:`WORDS`), with a context of ``length`` tokens.

    Word by word, the merges made so far split the word into pieces (see :func:`_bpe`); merges
    joining those pieces left to right are appended, so they rank after every earlier merge and
    cannot change how an earlier word is split."""
    symbols = list(bytes_to_unicode().values())
    tokens = ["<|startoftext|>", "<|endoftext|>", *symbols, *(s + "</w>" for s in symbols)]
    merges: list[tuple[str, str]] = []
    for word in dict.fromkeys(words):
        pieces = _bpe(word, {m: r for r, m in enumerate(merges)})
        left = pieces[0]
        for right in pieces[1:]:
            merges.append((left, right))
            left += right
            tokens.append(left)
    return CLIPTokenizer(
        vocab={t: i for i, t in enumerate(dict.fromkeys(tokens))}, merges=merges,
        model_max_length=length,
    )  # fmt: skip


def _bpe(word: str, ranks: dict[tuple[str, str], int]) -> list[str]:
    """``word`` split as CLIP's BPE splits it under merges of the given ranks."""
    pieces = [*word[:-1], word[-1] + "</w>"]
    while len(pieces) > 1:
        pairs = [
            (ranks.get(pair, len(ranks)), i)
            for i, pair in enumerate(zip(pieces, pieces[1:], strict=False))
        ]
        rank, i = min(pairs)
        if rank == len(ranks):
            break
        pieces[i : i + 2] = [pieces[i] + pieces[i + 1]]
    return pieces


def nano_config(tokenizer: CLIPTokenizer, patch_size: int) -> CLIPConfig:
    """64 px images in ``patch_size`` px patches; 64-wide, 3-layer towers; a 64-d joint space."""
    return CLIPConfig(
        text_config=dict(
            hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=4,
            vocab_size=len(tokenizer), max_position_embeddings=TEXT_LENGTH,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        ),
        vision_config=dict(
            hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=4,
            image_size=SIZE, patch_size=patch_size,
        ),
        projection_dim=64,
    )  # fmt: skip


def query_for(
    scene: RenderedScene, rng: np.random.Generator
) -> tuple[str, tuple[str, ...] | None, int]:
    """A text about ``scene``: ``(text, attribute keys or None for a caption, object index)``."""
    draw = rng.random()
    index = int(rng.integers(len(scene.scene.objects)))
    for keys, share in QUERY_KEYS:
        if draw < share:
            return "a " + phrase(scene.scene.objects[index], keys), keys, index
        draw -= share
    return caption(scene.scene), None, index


PAIRED_QUERIES = 0.6
"""Share of texts about the object a minimal pair changes (the rest follow :data:`QUERY_KEYS`)."""
BINDING_KEYS: tuple[tuple[str, ...], ...] = (("colour", "shape"), ("colour", "shape"),
                                              ("size", "colour", "shape"))  # fmt: skip


def minimal_pair(rng: np.random.Generator) -> tuple[RenderedScene, RenderedScene, int]:
    """A 1–2 object scene, the same scene with one object's colour or shape changed, and that
    object's index: "a red circle" must pick the first over the second, which teaches which colour
    goes with which shape (the confusion retrieval's ten candidates test)."""
    original = rendered_scene(rng, objects=(1, 2), size=SIZE)
    index = int(rng.integers(len(original.scene.objects)))
    obj = original.scene.objects[index]
    while True:
        if rng.random() < 0.5:
            colour, shape = list(COLOURS)[int(rng.integers(len(COLOURS)))], obj.shape
        else:
            colour, shape = obj.colour, SHAPES[int(rng.integers(len(SHAPES)))]
        if (colour, shape) != (obj.colour, obj.shape) and training_combination(colour, shape):
            break
    objects = list(original.scene.objects)
    objects[index] = replace(obj, colour=colour, shape=shape)
    scene = original.scene.with_objects(tuple(objects))
    out = render(scene, SIZE)
    counterpart = RenderedScene(scene=scene, image=out.image, masks=np.stack(out.masks),
                                boxes=np.array([b or [0, 0, 0, 0] for b in out.boxes], np.float32))  # fmt: skip
    return original, counterpart, index


class ClipPretrainer:
    name = "clip"
    default_steps = 6000
    """R@1 of 10 through the graph 0.950 on 400 ``test`` samples; 0.877 after 3000 steps."""
    learning_rate = 1e-3
    batch_size = 64
    patch_size = 4
    """4 px patches (16 x 16 of them): with 8 px ones (:mod:`.clip_tower`) the retriever read
    colours but not shapes (R@1 of 10 0.765 against 0.905, 200 ``test`` samples)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        tokenizer = shapes_tokenizer()
        self.model = seeded(seed, lambda: CLIPModel(nano_config(tokenizer, self.patch_size)))
        image_processor = CLIPImageProcessor(
            size={"shortest_edge": SIZE}, crop_size={"height": SIZE, "width": SIZE}
        )
        self.processor = CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)
        self.mean = torch.tensor(image_processor.image_mean).view(1, 3, 1, 1)
        self.std = torch.tensor(image_processor.image_std).view(1, 3, 1, 1)
        self.pool: ScenePool[tuple[RenderedScene, RenderedScene, int]] | None = None

    def start(self, step: int, total: int) -> None:
        self.pool = ScenePool(minimal_pair, seed=self.seed,
                              capacity=pool_size(self.batch_size // 2, total, 4), refresh=4,
                              step=step)  # fmt: skip

    def loss(self, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        assert self.pool is not None, "call start() first"
        rng = step_rng(self.seed, 2, step)
        pairs = self.pool.batch(rng, self.batch_size // 2)
        self.pool.advance()
        scenes = [scene for pair in pairs for scene in pair[:2]]
        changed = [pair[2] for pair in pairs for _ in range(2)]
        texts, fit = [], np.zeros((len(scenes), len(scenes)), dtype=bool)  # text x image
        for t, scene in enumerate(scenes):
            if rng.random() < PAIRED_QUERIES:  # about the object that differs between the pair
                keys = BINDING_KEYS[int(rng.integers(len(BINDING_KEYS)))]
                index = changed[t]
                text = "a " + phrase(scene.scene.objects[index], keys)
            else:
                text, keys, index = query_for(scene, rng)
            texts.append(text)
            fit[t, t] = True
            if keys is not None:
                target = scene.scene.objects[index]
                for i, other in enumerate(scenes):
                    fit[t, i] |= any(fits(o, target, keys) for o in other.scene.objects)
            else:
                fit[t] |= np.array([texts[t] == caption(o.scene) for o in scenes])
        pixels = torch.from_numpy(np.stack([s.image for s in scenes])).permute(0, 3, 1, 2)
        pixels = (pixels.float() / 255 - self.mean) / self.std
        tokens = self.processor.tokenizer(texts, padding=True, truncation=True,
                                          max_length=TEXT_LENGTH, return_tensors="pt")  # fmt: skip
        out = self.model(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"],
                         pixel_values=pixels)  # fmt: skip
        logits = out.logits_per_text  # text x image, already scaled
        target = torch.from_numpy(fit).float()
        text_loss = -(F.log_softmax(logits, dim=1) * target / target.sum(1, keepdim=True)).sum(1)
        image_loss = -(
            F.log_softmax(logits.T, dim=1) * target.T / target.T.sum(1, keepdim=True)
        ).sum(1)
        loss = (text_loss.mean() + image_loss.mean()) / 2
        with torch.no_grad():
            right = target.gather(1, logits.argmax(1, keepdim=True)).mean()
        return loss, {
            "text_top1_fits": float(right),
            "scale": float(self.model.logit_scale.detach().exp()),
        }

    def evaluate(self, count: int) -> dict[str, float]:
        """R@1 of 10 on the shapes world's ``test`` retrieval samples (seed 0), through
        ``ClipEngine`` and the processor as saved (what ``retrieve`` uses)."""
        return evaluate_engine(ClipEngine(self.model.eval(), self.processor), count)

    def save(self, directory: Path) -> None:
        self.model.save_pretrained(directory)
        self.processor.save_pretrained(directory)


def evaluate_engine(engine: ClipEngine, count: int, seed: int = 0) -> dict[str, float]:
    """Share of ``count`` held-out retrieval samples whose right image ranks first of ten."""
    hits = 0
    for i in range(count):
        sample = make_sample("test", i, seed=seed, tasks=["retrieval"])
        images = [Image.fromarray(m.pixels) for m in sample.media]
        scores = engine.image_features(images) @ engine.text_features(sample.gold["query"])
        hits += int(int(torch.argmax(scores)) == sample.gold["target"])
    return {"r_at_1_of_10": hits / max(count, 1)}


def make_pretrainer(seed: int) -> ClipPretrainer:
    return ClipPretrainer(seed)
