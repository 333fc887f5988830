"""Metrics of the paper's tables, on plain arrays and strings.

Masks are H x W bool arrays (a video: T x H x W), boxes ``[x1, y1, x2, y2]`` normalised with
exclusive right/bottom edges, spans inclusive frame ranges ``[first, last]``. Every function says
what an empty input scores; none hides a missing prediction (pass an empty mask / ``None``).

- cIoU (cumulative IoU): total intersection over total union across samples; gIoU: mean per-sample
  IoU (both as in the referring-segmentation literature, LAVT/ReLA).
- J&F: the DAVIS 2017 protocol (``davis2017-evaluation``): J is region Jaccard; F the boundary
  F-measure with boundaries matched within ``ceil(0.008 * image diagonal)`` pixels; semi-supervised
  sequences drop their first and last frames; a video's J&F is the mean of J and F over its objects.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

BOUNDARY_TOLERANCE = 0.008
"""DAVIS boundary tolerance, as a fraction of the image diagonal."""

# ------------------------------------------------------------------------------- masks and boxes


def _pair(pred: np.ndarray, gold: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, gold = np.asarray(pred, dtype=bool), np.asarray(gold, dtype=bool)
    if pred.shape != gold.shape:
        raise ValueError(f"mask shapes differ: prediction {pred.shape}, ground truth {gold.shape}")
    return pred, gold


def mask_iou(pred: np.ndarray, gold: np.ndarray) -> float:
    """IoU of two masks; two empty masks score 1 (nothing to find, nothing found)."""
    pred, gold = _pair(pred, gold)
    union = np.logical_or(pred, gold).sum()
    return 1.0 if union == 0 else float(np.logical_and(pred, gold).sum() / union)


def ciou(preds: Sequence[np.ndarray], golds: Sequence[np.ndarray]) -> float:
    """Cumulative IoU: sum of intersections over sum of unions (empty set: 0)."""
    inter = union = 0
    for pred, gold in zip(preds, golds, strict=True):
        pred, gold = _pair(pred, gold)
        inter += int(np.logical_and(pred, gold).sum())
        union += int(np.logical_or(pred, gold).sum())
    return float(inter / union) if union else 0.0


def giou(preds: Sequence[np.ndarray], golds: Sequence[np.ndarray]) -> float:
    """Mean per-sample IoU (empty set: 0)."""
    scores = [mask_iou(p, g) for p, g in zip(preds, golds, strict=True)]
    return float(np.mean(scores)) if scores else 0.0


def box_iou(a: Sequence[float] | None, b: Sequence[float] | None) -> float:
    """IoU of two boxes; a missing box scores 0."""
    if a is None or b is None:
        return 0.0
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / area) if area > 0 else 0.0


def mask_box_of(mask: np.ndarray) -> list[float] | None:
    """The normalised box of a mask (``None`` when empty), as the tools report boxes."""
    from vitron.tools.geometry import mask_box

    return mask_box(np.asarray(mask, dtype=bool))


def box_accuracy(preds: Sequence[Sequence[float] | None], golds: Sequence[Sequence[float]],
                 threshold: float = 0.5) -> float:  # fmt: skip
    """Acc@threshold: the fraction of predicted boxes with IoU ≥ ``threshold`` (empty set: 0)."""
    hits = [box_iou(p, g) >= threshold for p, g in zip(preds, golds, strict=True)]
    return float(np.mean(hits)) if hits else 0.0


# ------------------------------------------------------------------------------- DAVIS J&F


def _seg2bmap(seg: np.ndarray) -> np.ndarray:
    """One-pixel boundaries of a mask, as DAVIS's ``_seg2bmap`` at native size."""
    seg = seg.astype(bool)
    e, s, se = np.zeros_like(seg), np.zeros_like(seg), np.zeros_like(seg)
    e[:, :-1] = seg[:, 1:]
    s[:-1, :] = seg[1:, :]
    se[:-1, :-1] = seg[1:, 1:]
    b = (seg ^ e) | (seg ^ s) | (seg ^ se)
    b[-1, :] = seg[-1, :] ^ e[-1, :]
    b[:, -1] = seg[:, -1] ^ s[:, -1]
    b[-1, -1] = False
    return b


def boundary_f(pred: np.ndarray, gold: np.ndarray, tolerance: float = BOUNDARY_TOLERANCE) -> float:
    """DAVIS boundary F-measure of one frame (both empty: 1; one empty: 0)."""
    from skimage.morphology import dilation, disk

    pred, gold = _pair(pred, gold)
    radius = tolerance if tolerance >= 1 else math.ceil(tolerance * np.linalg.norm(pred.shape))
    footprint = disk(radius)
    fg, gt = _seg2bmap(pred), _seg2bmap(gold)
    fg_dil = dilation(fg.astype(np.uint8), footprint).astype(bool)
    gt_dil = dilation(gt.astype(np.uint8), footprint).astype(bool)
    n_fg, n_gt = int(fg.sum()), int(gt.sum())
    if n_fg == 0 and n_gt > 0:
        precision, recall = 1.0, 0.0
    elif n_fg > 0 and n_gt == 0:
        precision, recall = 0.0, 1.0
    elif n_fg == 0 and n_gt == 0:
        precision, recall = 1.0, 1.0
    else:
        precision = float((fg & gt_dil).sum() / n_fg)
        recall = float((gt & fg_dil).sum() / n_gt)
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def j_and_f(pred: np.ndarray, gold: np.ndarray, *, drop_ends: bool = True) -> dict[str, float]:
    """J, F and their mean for one object over a video (T x H x W masks).

    ``drop_ends`` leaves out the first frame (given to the tracker) and the last, as the DAVIS
    semi-supervised protocol does; a video of two frames or fewer keeps them all."""
    pred, gold = _pair(pred, gold)
    if pred.ndim != 3:
        raise ValueError(f"J&F needs T x H x W masks, got shape {pred.shape}")
    if drop_ends and len(gold) > 2:
        pred, gold = pred[1:-1], gold[1:-1]
    j = float(np.mean([mask_iou(p, g) for p, g in zip(pred, gold, strict=True)]))
    f = float(np.mean([boundary_f(p, g) for p, g in zip(pred, gold, strict=True)]))
    return {"J": j, "F": f, "J&F": (j + f) / 2}


def davis_summary(per_object: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Global J&F over objects, as ``davis2017-evaluation`` reports it: J-Mean and F-Mean are means
    over every object of every sequence, J&F-Mean their average (empty set: zeros)."""
    if not per_object:
        return {"J": 0.0, "F": 0.0, "J&F": 0.0}
    j = float(np.mean([o["J"] for o in per_object]))
    f = float(np.mean([o["F"] for o in per_object]))
    return {"J": j, "F": f, "J&F": (j + f) / 2}


# ------------------------------------------------------------------------------- invocations

_SPACE = re.compile(r"\s+")
_PUNCT = re.compile(r"[^\w\s]")


def normalise_text(text: str) -> str:
    """Lower case, punctuation dropped, whitespace collapsed."""
    return _SPACE.sub(" ", _PUNCT.sub(" ", text.lower())).strip()


def same_sentence(reply: str, reference: str) -> float:
    """1 when ``reply`` says ``reference`` word for word (:func:`normalise_text`): a closing
    sentence after tool calls ("Here is the mask of the square.") that adds, drops or repeats
    words is 0; the calls themselves are judged by :func:`invocation_scores`."""
    return float(normalise_text(reply) == normalise_text(reference))


def argument_match(pred: Mapping[str, Any], gold: Mapping[str, Any], *,
                   tolerance: float = 2e-3) -> bool:  # fmt: skip
    """Whether ``pred`` has every argument of ``gold`` with an equal value: strings equal after
    :func:`normalise_text`, numbers within ``tolerance`` (a region quantised to the grammar's
    0–999 grid still matches), lists element-wise. Extra predicted arguments (a ``signal``,
    options) are allowed."""

    def same(p: Any, g: Any) -> bool:
        if isinstance(g, str):
            return isinstance(p, str) and normalise_text(p) == normalise_text(g)
        if isinstance(g, bool) or g is None:
            return p == g
        if isinstance(g, int | float):
            return isinstance(p, int | float) and abs(float(p) - float(g)) <= tolerance
        if isinstance(g, Sequence):
            return (isinstance(p, Sequence) and not isinstance(p, str) and len(p) == len(g)
                    and all(same(a, b) for a, b in zip(p, g, strict=True)))  # fmt: skip
        if isinstance(g, Mapping):
            return isinstance(p, Mapping) and argument_match(p, g, tolerance=tolerance)
        return p == g

    return all(key in pred and same(pred[key], value) for key, value in gold.items())


def invocation_scores(
    pred: Sequence[Mapping[str, Any]], gold: Sequence[Mapping[str, Any]],
    statuses: Sequence[str] = (),
) -> dict[str, float]:  # fmt: skip
    """One sample's invocation accuracy: ``module`` (1 when the predicted tool names, in order,
    equal the gold ones), ``arguments`` (1 when, besides, every call's arguments match) and
    ``execution`` (1 when at least one call was made and every call's result has status
    ``success``; for a sample with no gold call: 1 when no call was made). Calls are
    ``{"name", "args"}``."""
    names = [c["name"] for c in pred]
    module = float(names == [c["name"] for c in gold])
    arguments = float(bool(module) and all(
        argument_match(p.get("args") or {}, g.get("args") or {})
        for p, g in zip(pred, gold, strict=True)
    ))  # fmt: skip
    if gold:
        execution = float(bool(statuses) and all(s == "success" for s in statuses))
    else:
        execution = float(not pred)
    return {"module": module, "arguments": arguments, "execution": execution}


# ------------------------------------------------------------------------------- answers in text

NUMBERS = {w: str(i) for i, w in enumerate(
    ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"))}  # fmt: skip


def answer_tokens(text: str) -> list[str]:
    """Normalised words of a reply, number words as digits, ``colour``/``grey`` spellings unified."""
    words = normalise_text(text).split()
    return [NUMBERS.get(w, {"gray": "grey", "color": "colour"}.get(w, w)) for w in words]


def vqa_correct(reply: str, answer: str, options: Sequence[str]) -> bool:
    """Whether ``reply`` gives ``answer``: it says the answer and no other option (so "yes or no"
    or listing every colour is not an answer)."""
    words = set(answer_tokens(reply))
    said = {o for o in options if answer_tokens(o)[0] in words}
    return said == {answer}


def mentions_exactly(
    reply: str, expected: Mapping[str, str], vocab: Mapping[str, Sequence[str]]
) -> bool:
    """Whether ``reply`` names each expected attribute value and no other value of that attribute
    (region captions: ``{"colour": "red", "shape": "circle"}`` against the world's words;
    plurals count)."""
    words = set(answer_tokens(reply))
    words |= {w[:-2] if w.endswith("es") and w[:-2] in vocab.get("shape", ()) else w.rstrip("s")
              for w in words}  # fmt: skip
    for attribute, value in expected.items():
        said = {v for v in vocab[attribute] if v in words}
        if said != {value}:
            return False
    return True


_NUMBER_WORD = re.compile(r"\b(" + "|".join(NUMBERS) + r")\b", re.IGNORECASE)
_SPAN = re.compile(r"(-?\d+)\s*(?:-|–|to|through|until|and)\s*(-?\d+)")


def parse_span(reply: str) -> list[int] | None:
    """The first ``A to B`` (or ``A-B``, ``A through B``…) frame span in a reply, or a single frame
    ``A`` as ``[A, A]``; ``None`` when the reply has no number."""
    text = _NUMBER_WORD.sub(lambda m: NUMBERS[m.group().lower()], reply.lower())
    if match := _SPAN.search(text):
        a, b = int(match.group(1)), int(match.group(2))
        return [min(a, b), max(a, b)]
    if match := re.search(r"-?\d+", text):
        return [int(match.group()), int(match.group())]
    return None


def span_iou(pred: Sequence[int] | None, gold: Sequence[int]) -> float:
    """IoU of two inclusive frame spans (a missing prediction: 0)."""
    if pred is None:
        return 0.0
    inter = max(0, min(pred[1], gold[1]) - max(pred[0], gold[0]) + 1)
    union = (pred[1] - pred[0] + 1) + (gold[1] - gold[0] + 1) - inter
    return inter / union if union > 0 else 0.0


def retrieval_at_1(ranking: Sequence[str], target: str) -> float:
    """R@1: 1 when the best-ranked item is the target (an empty ranking: 0)."""
    return float(bool(ranking) and ranking[0] == target)


_PICTURE_NUMBER = re.compile(r"\bpicture\s+(\d+)\b", re.IGNORECASE)


def names_picture(reply: str, number: int) -> float:
    """1 when ``reply`` names picture ``number`` (counted from 1) and no other picture: the
    answer of a retrieval turn says which picture won ("The best match is picture 7: …"), which
    R@1, read from the tool's ranking, does not check."""
    named = {int(n) for n in _PICTURE_NUMBER.findall(reply or "")}
    return float(named == {number})


# ------------------------------------------------------------------------------- images


def psnr_outside(
    pred: np.ndarray, gold: np.ndarray, mask: np.ndarray, peak: float = 255.0
) -> float:
    """PSNR (dB) of ``pred`` against ``gold`` over the pixels *outside* ``mask`` (the region an edit
    may change, taken from the ground truth). Identical pixels give ``inf``; shapes must agree."""
    pred = np.asarray(pred, dtype=np.float64)
    gold = np.asarray(gold, dtype=np.float64)
    if pred.shape != gold.shape:
        raise ValueError(f"image shapes differ: {pred.shape} vs {gold.shape}")
    keep = ~np.asarray(mask, dtype=bool)
    if not keep.any():
        raise ValueError("the mask covers the whole image: nothing outside it to compare")
    mse = float(np.mean((pred[keep] - gold[keep]) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(peak**2 / mse)


MIN_OBJECT_PIXELS = 4
"""Specks smaller than this are noise, not objects."""
DARK_SHADE = 0.55
"""A texture's darker pixels are the object's colour times this (the shapes world's renderer)."""


def colour_mask(
    image: np.ndarray, colour: str, palette: Mapping[str, Sequence[float]]
) -> np.ndarray:
    """H x W bool: the pixels of ``image`` (H x W x 3 uint8, a plain background) drawn in
    ``colour``. Each pixel takes the nearest of the ``palette``'s colours, their textures' darker
    shades and the background (the median colour of the picture's border)."""
    pixels = np.asarray(image, dtype=np.float64)
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    names = [*palette, *palette, "background"]
    tones = [*palette.values(), *(np.asarray(v) * DARK_SHADE for v in palette.values()),
             np.median(border, axis=0)]  # fmt: skip
    distances = np.stack([np.linalg.norm(pixels - np.asarray(t), axis=2) for t in tones])
    nearest = distances.argmin(axis=0)
    return np.isin(nearest, [i for i, n in enumerate(names) if n == colour])


def colour_boxes(
    image: np.ndarray, colour: str, palette: Mapping[str, Sequence[float]]
) -> list[list[float]]:
    """Normalised boxes of the regions of ``image`` drawn in ``colour`` (:func:`colour_mask`):
    the connected regions of ``colour`` or its shade. Where layout-to-image put an object of the
    asked colour (touching objects of one colour count as one)."""
    from scipy.ndimage import find_objects, label

    mine = colour_mask(image, colour, palette)
    regions, _ = label(mine)
    height, width = mine.shape
    boxes = []
    for index, found in enumerate(find_objects(regions), start=1):
        if found is None or (regions[found] == index).sum() < MIN_OBJECT_PIXELS:
            continue
        rows, cols = found
        boxes.append([cols.start / width, rows.start / height, cols.stop / width,
                      rows.stop / height])  # fmt: skip
    return boxes


MIN_MOTION = 0.1
"""A clip's object has moved when its centre travelled this share of the picture's side."""


def motion_direction(
    frames: np.ndarray, colour: str, palette: Mapping[str, Sequence[float]]
) -> str | None:
    """Which way the ``colour`` object of ``frames`` (T x H x W x 3 uint8) went: ``left``,
    ``right``, ``up`` or ``down`` by the larger component of its centre's shift from the first
    frame it shows on to the last (centres of :func:`colour_mask`; image y grows downwards), or
    ``None`` when it shows on fewer than two frames or moved less than :data:`MIN_MOTION`."""
    centres = []
    for frame in frames:
        mask = colour_mask(frame, colour, palette)
        if mask.sum() >= MIN_OBJECT_PIXELS:
            rows, cols = np.nonzero(mask)
            centres.append((cols.mean() / mask.shape[1], rows.mean() / mask.shape[0]))
    if len(centres) < 2:
        return None
    dx, dy = np.subtract(centres[-1], centres[0])
    if max(abs(dx), abs(dy)) < MIN_MOTION:
        return None
    if abs(dx) >= abs(dy):
        return "right" if dx > 0 else "left"
    return "down" if dy > 0 else "up"


def objects_found(
    frame: np.ndarray,
    objects: Sequence[Mapping[str, str]],
    classifier: AttributeClassifier,
    palette: Mapping[str, Sequence[float]],
) -> list[bool]:
    """Per object (``{"shape", "colour"}``): whether ``frame`` (H x W x 3 uint8) still shows it,
    i.e. some region of its colour (:func:`colour_boxes`) is read by ``classifier`` as its shape.
    Where an animated picture kept its objects."""
    found = []
    for obj in objects:
        boxes = colour_boxes(frame, obj["colour"], palette)
        found.append(any(classifier.predict(frame, b).get("shape") == obj["shape"] for b in boxes))
    return found


def best_box_iou(found: Sequence[Sequence[float]], box: Sequence[float]) -> float:
    """The IoU of ``box`` with the found box that overlaps it most (0 when none is found)."""
    return max((box_iou(f, box) for f in found), default=0.0)


class AttributeClassifier(Protocol):
    """Judges generated and edited images: the attributes (``shape``, ``colour``, ``position``…)
    it sees in ``image`` (H x W x 3 uint8), optionally within a normalised ``box``. A classifier
    trained on the shapes world implements this; its own accuracy is reported beside its
    judgements (see :func:`attribute_accuracy`)."""

    def predict(self, image: np.ndarray, box: Sequence[float] | None = None) -> dict[str, str]: ...


def attribute_accuracy(
    classifier: AttributeClassifier,
    images: Sequence[np.ndarray],
    expected: Sequence[Mapping[str, str]],
    boxes: Sequence[Sequence[float] | None] | None = None,
) -> dict[str, float]:
    """Per-attribute accuracy of ``classifier``'s reading of ``images`` against ``expected``, and
    ``all`` (every expected attribute right). Empty input: an empty dict."""
    if not images:
        return {}
    boxes = boxes or [None] * len(images)
    hits: dict[str, list[bool]] = {}
    whole = []
    for image, want, box in zip(images, expected, boxes, strict=True):
        seen = classifier.predict(image, box)
        right = {k: seen.get(k) == v for k, v in want.items()}
        for k, ok in right.items():
            hits.setdefault(k, []).append(ok)
        whole.append(all(right.values()))
    return {**{k: float(np.mean(v)) for k, v in hits.items()}, "all": float(np.mean(whole))}
