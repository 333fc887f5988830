"""From a turn's final outputs to the numbers of the results table.

:func:`score` turns one :class:`~vitron.evals.harness.Outcome` into per-sample values (the raw
material: an IoU, intersection and union counts, a hit, a PSNR); :func:`aggregate` turns a task's
per-sample values into the table's metrics. Every task with ground-truth tool calls also gets the
invocation metrics (module exact match, argument match, execution success) and, where the sample
has a reference answer, whether the closing sentence is it; every task gets the execution success
rate. A value is ``None`` where a metric does not apply or cannot be computed
(e.g. attribute accuracy without a trained classifier).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vitron.evals import metrics
from vitron.evals.harness import Outcome
from vitron.evals.sample import resolve
from vitron.evals.shapes.vocab import COLOURS, SHAPES

PSNR_CAP = 100.0
"""PSNR of identical pixels (infinite) counts as this many dB in means."""
EDIT_BAND = 2
"""Pixels the ground-truth edit region is grown by before PSNR outside it is taken (an inpainter
may blend a band around the area it changed)."""
WORDS = {"colour": tuple(COLOURS), "shape": SHAPES}

METRIC_LABELS: dict[str, str] = {
    "execution": "exec",
    "module": "module",
    "arguments": "args",
    "closing": "closing",
    "cIoU": "cIoU",
    "gIoU": "gIoU",
    "Acc@0.5": "Acc@0.5",
    "J&F": "J&F",
    "R@1": "R@1",
    "named": "named",
    "accuracy": "acc",
    "span_iou": "span IoU",
    "psnr_outside": "PSNR out",
    "l1": "L1",
    "frames_right": "frames right",
    "psnr_first": "PSNR first",
    "objects_kept": "objects kept",
    "direction": "direction",
    "attribute_accuracy": "attr acc",
    "shape_colour": "shape+colour",
    "in_box": "in box",
}
"""Metric key -> column heading, in column order."""
LAYOUT_IOU = 0.5
"""Layout-to-image: an object is where it was asked for when a drawn object's box overlaps its
box this much (issue 14's floor)."""


@dataclass
class Options:
    """What scoring may use besides the outcome."""

    classifier: metrics.AttributeClassifier | None = None
    """Judge of generated and edited images; ``None``: attribute accuracy is not computed."""


def _resize_mask(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if mask.shape == shape:
        return mask
    from PIL import Image

    image = Image.fromarray(mask.astype(np.uint8) * 255).resize(
        (shape[1], shape[0]), Image.Resampling.NEAREST
    )
    return np.asarray(image) > 127


def _resize_image(image: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if image.shape == shape:
        return image
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((shape[1], shape[0]), Image.Resampling.BICUBIC))


# ------------------------------------------------------------------------------- final outputs


def predicted_mask(outcome: Outcome, shape: tuple[int, ...]) -> np.ndarray:
    """The final mask: the first mask of the latest successful ``segment_image`` (empty if none)."""
    result = outcome.last_result("segment_image")
    masks = (result or {}).get("artifact", {}).get("masks") or []
    if not masks or outcome.workspace is None:
        return np.zeros(shape, dtype=bool)
    return _resize_mask(outcome.workspace.get_mask(masks[0]), shape)


def predicted_box(outcome: Outcome) -> list[float] | None:
    """The final box: the best box of the latest successful ``ground``, else the box of the final
    ``segment_image`` mask."""
    result = outcome.last_result("ground")
    boxes = (result or {}).get("artifact", {}).get("boxes") or []
    if boxes:
        return list(boxes[0])
    segments = ((outcome.last_result("segment_image") or {}).get("artifact", {})
                .get("segments") or [])  # fmt: skip
    return segments[0].get("box") if segments else None


def predicted_track(outcome: Outcome, shape: tuple[int, ...]) -> np.ndarray:
    """The final mask video of ``track_video`` as T x H x W bool (empty frames where missing)."""
    empty = np.zeros(shape, dtype=bool)
    result = outcome.last_result("track_video")
    handle = (result or {}).get("artifact", {}).get("masks")
    if not handle or outcome.workspace is None:
        return empty
    frames = [
        _resize_mask(f[..., 0] > 127, shape[1:]) for f in outcome.workspace.iter_frames(handle)
    ]
    info = (result or {}).get("artifact", {}).get("frames") or {}
    start, stride = int(info.get("start", 0)), max(1, int(info.get("stride", 1)))
    for t, frame in enumerate(frames):  # a strided track fills only the frames it covered
        if start + t * stride < shape[0]:
            empty[start + t * stride] = frame
    return empty


def predicted_image(outcome: Outcome, tool: str) -> np.ndarray | None:
    result = outcome.last_result(tool)
    handle = (result or {}).get("artifact", {}).get("image")
    if not handle or outcome.workspace is None:
        return None
    return np.asarray(outcome.workspace.get_image(handle).convert("RGB"))


def predicted_video(outcome: Outcome, tool: str) -> np.ndarray | None:
    """The frames of ``tool``'s latest successful video, T x H x W x 3 uint8 (``None``: none)."""
    result = outcome.last_result(tool)
    handle = (result or {}).get("artifact", {}).get("video")
    if not handle or outcome.workspace is None:
        return None
    frames = [np.asarray(f)[..., :3] for f in outcome.workspace.iter_frames(handle)]
    return np.stack(frames) if frames else None


# ------------------------------------------------------------------------------- per sample


def _invocation(outcome: Outcome) -> dict[str, float]:
    sample = outcome.sample
    gold = []
    results = [r["artifact"] for r in outcome.results]
    for call in sample.calls:
        try:
            args = resolve(call.matched_args(), outcome.media, results, outcome.regions)
        except (LookupError, KeyError, IndexError, TypeError):  # the result it names is missing
            args = {k: v for k, v in call.matched_args().items() if not str(v).startswith("<")}
        gold.append({"name": call.name, "args": args})
    statuses = [r["status"] for r in outcome.results]
    scores = metrics.invocation_scores(outcome.calls, gold, statuses)
    if not sample.calls:  # a text answer: executed when the turn ended with one, untroubled
        scores = {"execution": float(bool(outcome.answer.strip()) and not outcome.calls)}
    elif sample.answer:  # the sentence the user reads after the calls, as the reference words it
        scores["closing"] = metrics.same_sentence(outcome.answer, sample.answer)
    if outcome.error:
        scores["execution"] = 0.0
    return scores


def _segmentation(outcome: Outcome) -> dict[str, Any]:
    gold = outcome.sample.gold["mask"]
    pred = predicted_mask(outcome, gold.shape)
    inter = int(np.logical_and(pred, gold).sum())
    union = int(np.logical_or(pred, gold).sum())
    box = metrics.mask_box_of(pred)
    return {"inter": inter, "union": union, "iou": metrics.mask_iou(pred, gold),
            "box_hit": float(metrics.box_iou(box, outcome.sample.gold.get("box")) >= 0.5),
            "area": int(gold.sum()), "pixels": int(gold.size)}  # fmt: skip


def _grounding(outcome: Outcome) -> dict[str, Any]:
    gold = outcome.sample.gold
    objects = gold.get("objects")  # chance: one of the scene's objects' boxes, drawn at random
    return {"box_hit": float(metrics.box_iou(predicted_box(outcome), gold["box"]) >= 0.5),
            "chance": 1.0 / objects if objects else None}  # fmt: skip


def _tracking(outcome: Outcome) -> dict[str, Any]:
    gold = outcome.sample.gold["masks"]
    pred = predicted_track(outcome, gold.shape)
    drop = outcome.sample.gold.get("drop_ends", True)
    empty = metrics.j_and_f(np.zeros_like(gold), gold, drop_ends=drop)["J&F"]
    return {**metrics.j_and_f(pred, gold, drop_ends=drop), "floor": empty}


def _retrieval(outcome: Outcome) -> dict[str, Any]:
    ranking = (outcome.last_result("retrieve") or {}).get("artifact", {}).get("ranking") or []
    target = outcome.media[outcome.sample.gold["target"]]
    number = outcome.sample.gold["target"] + 1  # the user's "picture N": its place in the turn
    return {"r1": metrics.retrieval_at_1([r["handle"] for r in ranking], target),
            "named": metrics.names_picture(outcome.answer, number),
            "chance": 1.0 / len(outcome.media)}  # fmt: skip


def _editing(outcome: Outcome, options: Options) -> dict[str, Any]:
    gold = outcome.sample.gold
    pred = predicted_image(outcome, "edit_image")
    # a background change is judged by the tone around the objects, other edits by the classifier
    asked_background = gold.get("background")
    judged = bool(asked_background) or (
        options.classifier is not None and bool(gold.get("expected"))
    )
    operation = gold.get("operation") or "edit"  # a benchmark's edits (MagicBrush) name none
    values: dict[str, Any] = {"operation": operation, "psnr": None, "l1": None,
                              "attr": 0.0 if judged else None}  # fmt: skip
    if pred is None:  # no edited image: nothing to compare, and no attribute right
        return values
    pred = _resize_image(pred, gold["after"].shape)
    if gold.get("region") is not None:
        from vitron.tools.compositing import grow

        region = grow(np.asarray(gold["region"], dtype=bool), EDIT_BAND)
        if not region.all():
            values["psnr"] = min(PSNR_CAP, metrics.psnr_outside(pred, gold["after"], region))
    values["l1"] = float(np.abs(pred.astype(np.float64) - gold["after"]).mean() / 255.0)
    if asked_background:
        from vitron.evals.restyle import background_tone

        objects = ~np.asarray(gold["region"], dtype=bool)  # a restyle may change all but them
        values["attr"] = float(background_tone(pred, objects) == asked_background)
    elif judged:
        seen = options.classifier.predict(pred, gold.get("box"))
        values["attr"] = float(all(seen.get(k) == v for k, v in gold["expected"].items()))
    return values


VIDEO_FRAMES_RIGHT = 0.8
"""Video editing: a clip is edited right when the edit shows on this share of its judged frames
(issue 14's "target attribute in ≥ 80% of frames")."""


def _video_frame_right(
    frame: np.ndarray, gold: Mapping[str, Any], box: Sequence[float], options: Options
) -> float | None:
    """A recolour shows when the classifier reads the expected colour and shape in the object's
    box; a removal, when no region of the object's old colour lies there (box IoU < 0.5)."""
    if gold["operation"] == "remove":
        found = metrics.colour_boxes(frame, gold["colour"], COLOURS)
        return float(metrics.best_box_iou(found, box) < LAYOUT_IOU)
    if options.classifier is None:
        return None
    seen = options.classifier.predict(frame, box)
    return float(all(seen.get(k) == v for k, v in gold["expected"].items()))


def _video_editing(outcome: Outcome, options: Options) -> dict[str, Any]:
    """``psnr``: the mean over frames of the PSNR outside the pixels the edit changes (grown by
    :data:`EDIT_BAND`); ``frames_right``: the share of judged frames where the edit shows;
    ``attr``: 1 when that share reaches :data:`VIDEO_FRAMES_RIGHT`. A missing frame is wrong."""
    from vitron.tools.compositing import grow

    gold = outcome.sample.gold
    judged = gold["operation"] == "remove" or options.classifier is not None
    values: dict[str, Any] = {"operation": gold["operation"], "psnr": None,
                              "frames_right": 0.0 if judged else None,
                              "attr": 0.0 if judged else None}  # fmt: skip
    pred = predicted_video(outcome, "edit_video")
    if pred is None:
        return values
    after = gold["after"]
    frames = [_resize_image(f, after.shape[1:]) for f in pred[: len(after)]]
    psnrs = []
    for frame, want, region in zip(frames, after, gold["region"], strict=False):
        region = grow(np.asarray(region, dtype=bool), EDIT_BAND)
        if not region.all():
            psnrs.append(min(PSNR_CAP, metrics.psnr_outside(frame, want, region)))
    values["psnr"] = _mean(psnrs)
    if judged:
        right = [_video_frame_right(frames[t], gold, box, options) if t < len(frames) else 0.0
                 for t, box in zip(gold["frames"], gold["boxes"], strict=True)]  # fmt: skip
        values["frames_right"] = float(np.mean(right))
        values["attr"] = float(values["frames_right"] >= VIDEO_FRAMES_RIGHT)
    return values


def _video_generation(outcome: Outcome, options: Options) -> dict[str, Any]:
    """``frames_right``: the share of the clip's frames where the classifier reads the asked shape
    and colour (issue 14's per-frame attribute accuracy; ``None`` without a classifier);
    ``direction``: whether the object of the asked colour moved the asked way, ``moved``: the way
    it went (:func:`~vitron.evals.metrics.motion_direction`; ``None``: nowhere). No clip: both 0."""
    gold = outcome.sample.gold
    pred = predicted_video(outcome, "generate_video")
    values: dict[str, Any] = {"frames_right": None if options.classifier is None else 0.0,
                              "direction": 0.0}  # fmt: skip
    if pred is None:
        return values
    if options.classifier is not None:
        hits = [all(options.classifier.predict(frame, None).get(k) == v
                    for k, v in gold["expected"].items()) for frame in pred]  # fmt: skip
        values["frames_right"] = float(np.mean(hits))
    values["moved"] = metrics.motion_direction(pred, gold["expected"]["colour"], COLOURS)
    values["direction"] = float(values["moved"] == gold["direction"])
    return values


def judge_animation(
    frames: np.ndarray, gold: Mapping[str, Any], classifier: metrics.AttributeClassifier | None
) -> dict[str, Any]:
    """An animated picture's clip (T x H x W x 3 uint8) against an ``image_to_video`` sample's
    gold: ``psnr_first``, the PSNR of frame 0 against the input picture box-filtered to the
    clip's size (as the pipeline shrinks it); ``objects_kept``, over frames 1..T-1 and the
    scene's objects, the share :func:`~vitron.evals.metrics.objects_found` still finds (``None``
    without a classifier or a later frame); ``moved``, the way the named object's colour went
    (:func:`~vitron.evals.metrics.motion_direction`), and ``direction``, whether that is the
    asked one."""
    from vitron.evals.shapes.video import shrink

    frames = np.asarray(frames)[..., :3]
    height, width = frames.shape[1:3]
    picture = np.asarray(gold["picture"])
    if picture.shape[:2] != (height, width):
        picture = (shrink(picture, width) if height == width
                   else _resize_image(picture, (height, width, 3)))  # fmt: skip
    values: dict[str, Any] = {
        "psnr_first": min(
            PSNR_CAP, metrics.psnr_outside(frames[0], picture, np.zeros((height, width)))
        ),
        "objects_kept": None,
    }
    if classifier is not None and len(frames) > 1:
        found = [metrics.objects_found(f, gold["objects"], classifier, COLOURS) for f in frames[1:]]
        values["objects_kept"] = float(np.mean(found))
    values["moved"] = metrics.motion_direction(frames, gold["colour"], COLOURS)
    values["direction"] = float(values["moved"] == gold["direction"])
    return values


def _image_to_video(outcome: Outcome, options: Options) -> dict[str, Any]:
    """:func:`judge_animation` of ``image_to_video``'s clip, and ``reference_kept``: the same
    objects-kept share of the world's own clip (what the judge allows at 32 px). No clip: PSNR
    ``None``, nothing kept, no direction."""
    gold = outcome.sample.gold
    values: dict[str, Any] = {"psnr_first": None, "direction": 0.0,
                              "objects_kept": None if options.classifier is None else 0.0}  # fmt: skip
    if options.classifier is not None:
        reference = judge_animation(gold["reference"], gold, options.classifier)
        values["reference_kept"] = reference["objects_kept"]
    pred = predicted_video(outcome, "image_to_video")
    if pred is None:
        return values
    values.update(judge_animation(pred, gold, options.classifier))
    return values


def _generation(outcome: Outcome, options: Options) -> dict[str, Any]:
    """``attr``: every expected attribute right; ``attr_by``: each one (shape, colour, position)."""
    if options.classifier is None:
        return {"attr": None}
    expected = outcome.sample.gold["expected"]
    pred = predicted_image(outcome, "generate_image")
    seen = options.classifier.predict(pred, None) if pred is not None else {}
    hits = {k: float(seen.get(k) == v) for k, v in expected.items()}
    return {"attr": float(all(hits.values())), "attr_by": hits}


def judge_layout(
    classifier: metrics.AttributeClassifier,
    image: np.ndarray | None,
    objects: Sequence[Mapping[str, Any]],
    reference: np.ndarray | None = None,
) -> list[dict[str, float]]:
    """Per object asked for (``{"box", "expected": {"shape", "colour"}}``): ``kind`` (the
    classifier reads its shape and colour inside its box), ``placed`` (a region of its colour
    was drawn whose box has IoU ≥ 0.5 with it), ``hit`` (both), and with a ``reference`` (the
    world's own render) whether that render passes the placement check (it misses where two
    objects of one colour touch). ``image`` ``None``: nothing was drawn, every object missed."""
    judged = []
    for obj in objects:
        want, box = obj["expected"], obj["box"]
        seen = classifier.predict(image, box) if image is not None else {}
        kind = all(seen.get(k) == v for k, v in want.items())
        found = metrics.colour_boxes(image, want["colour"], COLOURS) if image is not None else []
        placed = metrics.best_box_iou(found, box) >= LAYOUT_IOU
        scores = {"kind": float(kind), "placed": float(placed), "hit": float(kind and placed)}
        if reference is not None:
            drawn = metrics.colour_boxes(reference, want["colour"], COLOURS)
            scores["reference"] = float(metrics.best_box_iou(drawn, box) >= LAYOUT_IOU)
        judged.append(scores)
    return judged


def _layout(outcome: Outcome, options: Options) -> dict[str, Any]:
    """:func:`judge_layout` of the generated picture, against the sample's render."""
    if options.classifier is None:
        return {"objects": None}
    gold = outcome.sample.gold
    pred = predicted_image(outcome, "generate_image")
    return {"objects": judge_layout(options.classifier, pred, gold["objects"], gold["reference"])}


def _vqa(outcome: Outcome) -> dict[str, Any]:
    gold = outcome.sample.gold
    return {"hit": float(metrics.vqa_correct(outcome.answer, gold["answer"], gold["options"])),
            "chance": 1.0 / len(gold["options"])}  # fmt: skip


def _region_caption(outcome: Outcome) -> dict[str, Any]:
    gold = outcome.sample.gold
    expected = {"colour": gold["colour"], "shape": gold["shape"]}
    return {"hit": float(metrics.mentions_exactly(outcome.answer, expected, WORDS)),
            "chance": 1.0 / (len(COLOURS) * len(SHAPES))}  # fmt: skip


def _temporal(outcome: Outcome) -> dict[str, Any]:
    gold = outcome.sample.gold
    iou = metrics.span_iou(metrics.parse_span(outcome.answer), gold["span"])
    whole = (0, gold["frames"] - 1) if gold.get("frames") else None  # chance: the whole clip
    chance = float(metrics.span_iou(whole, gold["span"]) >= 0.5) if whole else None
    return {"span_iou": iou, "hit": float(iou >= 0.5), "chance": chance}


TASK_SCORERS: dict[str, Callable[[Outcome, Options], dict[str, Any]]] = {
    "referring_segmentation": lambda o, _: _segmentation(o),
    "grounding": lambda o, _: _grounding(o),
    "tracking": lambda o, _: _tracking(o),
    "retrieval": lambda o, _: _retrieval(o),
    "editing": _editing,
    "generation": _generation,
    "layout": _layout,
    "vqa": lambda o, _: _vqa(o),
    "region_caption": lambda o, _: _region_caption(o),
    "temporal_grounding": lambda o, _: _temporal(o),
    "video_generation": _video_generation,
    "video_editing": _video_editing,
    "image_to_video": _image_to_video,
    "video_tools": lambda o, _: {},
    "multi_step": lambda o, _: {},
    "caption": lambda o, _: {},
}


def score(outcome: Outcome, options: Options | None = None) -> dict[str, Any]:
    """Per-sample values of ``outcome``: the invocation metrics plus the task's own."""
    options = options or Options()
    values = _invocation(outcome)
    values.update(TASK_SCORERS[outcome.sample.task](outcome, options))
    return values


# ------------------------------------------------------------------------------- per task


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return float(np.mean(kept)) if kept else None


def _per_operation(values: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """An editing task's attribute accuracy and PSNR outside, per operation (recolour, remove, …)."""
    return {
        op: {k: _mean([v[key] for v in values if v["operation"] == op])
             for k, key in (("attribute_accuracy", "attr"), ("psnr_outside", "psnr"))}
        for op in sorted({v["operation"] for v in values})
    }  # fmt: skip


def aggregate(task: str, records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The table row of ``task`` from its per-sample records: metric -> value (``None``: n/a),
    plus ``n``, ``latency`` (mean seconds per turn) and ``chance`` where one is known."""
    values = [r["scores"] for r in records]
    row: dict[str, Any] = {"n": len(records), "latency": _mean([r["latency"] for r in records])}
    row["execution"] = _mean([v.get("execution") for v in values])
    if any("module" in v for v in values):
        row["module"] = _mean([v.get("module") for v in values])
        row["arguments"] = _mean([v.get("arguments") for v in values])
    if any("closing" in v for v in values):
        row["closing"] = _mean([v.get("closing") for v in values])
    if task == "referring_segmentation":
        union = sum(v["union"] for v in values)
        row["cIoU"] = sum(v["inter"] for v in values) / union if union else 0.0
        row["gIoU"] = _mean([v["iou"] for v in values])
        row["Acc@0.5"] = _mean([v["box_hit"] for v in values])
        pixels = sum(v.get("pixels", 0) for v in values)  # chance: the whole picture as the mask
        row["chance"] = {"cIoU": sum(v.get("area", 0) for v in values) / pixels if pixels else None}
    elif task == "grounding":
        row["Acc@0.5"] = _mean([v["box_hit"] for v in values])
        row["chance"] = {"Acc@0.5": _mean([v.get("chance") for v in values])}
    elif task == "tracking":
        row.update({k: v for k, v in metrics.davis_summary(values).items() if k == "J&F"})
        row["J"] = _mean([v["J"] for v in values])
        row["F"] = _mean([v["F"] for v in values])
        row["chance"] = {"J&F": _mean([v["floor"] for v in values])}  # an empty mask's score
    elif task == "retrieval":
        row["R@1"] = _mean([v["r1"] for v in values])
        row["named"] = _mean([v.get("named") for v in values])
        row["chance"] = {"R@1": _mean([v["chance"] for v in values]),
                         "named": _mean([v["chance"] for v in values])}  # fmt: skip
    elif task == "editing":
        row["psnr_outside"] = _mean([v["psnr"] for v in values])
        row["l1"] = _mean([v["l1"] for v in values])
        row["attribute_accuracy"] = _mean([v["attr"] for v in values])
        row["per_operation"] = _per_operation(values)
    elif task == "video_generation":
        row["frames_right"] = _mean([v["frames_right"] for v in values])
        row["direction"] = _mean([v["direction"] for v in values])
        row["chance"] = {"direction": 1.0 / 4}  # one of four directions
    elif task == "image_to_video":
        row["psnr_first"] = _mean([v["psnr_first"] for v in values])
        row["objects_kept"] = _mean([v["objects_kept"] for v in values])
        row["objects_kept_reference"] = _mean([v.get("reference_kept") for v in values])
        row["direction"] = _mean([v["direction"] for v in values])
        row["chance"] = {"direction": 1.0 / 4}  # one of four directions
    elif task == "video_editing":
        row["psnr_outside"] = _mean([v["psnr"] for v in values])
        row["frames_right"] = _mean([v["frames_right"] for v in values])
        row["attribute_accuracy"] = _mean([v["attr"] for v in values])
        row["per_operation"] = _per_operation(values)
    elif task == "generation":
        row["attribute_accuracy"] = _mean([v["attr"] for v in values])
        judged = [v["attr_by"] for v in values if v.get("attr_by")]
        if judged:  # issue 14 asks for shape and colour (and count: one object is asked for)
            row["shape_colour"] = _mean([b.get("shape", 0) * b.get("colour", 0) for b in judged])
            row["per_attribute"] = {k: _mean([b.get(k) for b in judged]) for k in judged[0]}
    elif task == "layout":  # pooled over every object asked for
        objects = [o for v in values for o in v.get("objects") or []]
        row["attribute_accuracy"] = _mean([o["kind"] for o in objects])
        row["in_box"] = _mean([o["hit"] for o in objects])
        row["placed"] = _mean([o["placed"] for o in objects])
        row["placed_reference"] = _mean([o["reference"] for o in objects])
    elif task in ("vqa", "region_caption"):
        row["accuracy"] = _mean([v["hit"] for v in values])
        row["chance"] = {"accuracy": _mean([v["chance"] for v in values])}
    elif task == "temporal_grounding":
        row["accuracy"] = _mean([v["hit"] for v in values])
        row["span_iou"] = _mean([v["span_iou"] for v in values])
        row["chance"] = {"accuracy": _mean([v.get("chance") for v in values])}
    return row
