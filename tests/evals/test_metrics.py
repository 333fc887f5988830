"""Metrics on hand-computed cases, masks against pycocotools, J&F against the official DAVIS code."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from vitron.evals import metrics
from vitron.evals.benchmarks.davis import load_davis, read_result_masks
from vitron.evals.benchmarks.masks import polygons_to_mask, rle_decode

DAVIS = Path(__file__).parent / "fixtures" / "davis"


def square(size=10, box=(2, 2, 6, 6)) -> np.ndarray:
    mask = np.zeros((size, size), dtype=bool)
    x1, y1, x2, y2 = box
    mask[y1:y2, x1:x2] = True
    return mask


def test_ciou_and_giou_by_hand():
    a, b = square(box=(0, 0, 4, 4)), square(box=(2, 0, 6, 4))  # 16 px each, 8 shared, union 24
    assert metrics.mask_iou(a, b) == pytest.approx(8 / 24)
    c, d = square(box=(0, 0, 2, 2)), square(box=(0, 0, 2, 2))  # 4 px, identical
    assert metrics.giou([a, c], [b, d]) == pytest.approx((8 / 24 + 1) / 2)
    assert metrics.ciou([a, c], [b, d]) == pytest.approx((8 + 4) / (24 + 4))
    empty = np.zeros((10, 10), dtype=bool)
    assert metrics.mask_iou(empty, empty) == 1.0 and metrics.mask_iou(empty, a) == 0.0
    assert metrics.ciou([], []) == 0.0
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.mask_iou(a, np.zeros((5, 5), dtype=bool))


def test_box_accuracy_at_half():
    gold = [0.0, 0.0, 0.5, 0.5]
    assert metrics.box_iou(gold, [0.0, 0.0, 0.5, 0.25]) == pytest.approx(0.5)
    assert metrics.box_iou(gold, None) == 0.0
    preds = [[0.0, 0.0, 0.5, 0.25], [0.0, 0.0, 0.5, 0.24], None]
    assert metrics.box_accuracy(preds, [gold] * 3) == pytest.approx(1 / 3)


def test_masks_against_pycocotools():
    coco = pytest.importorskip("pycocotools.mask")
    rng = np.random.default_rng(3)
    masks = [rng.random((37, 53)) > t for t in (0.3, 0.6, 0.9)] + [square(size=20)[:, :15]]
    for mask in masks:  # compressed RLE strings decode exactly as pycocotools does
        rle = coco.encode(np.asfortranarray(mask.astype(np.uint8)))
        assert np.array_equal(rle_decode(rle), coco.decode(rle).astype(bool))
        ours = {"size": rle["size"], "counts": rle["counts"].decode()}
        assert np.array_equal(rle_decode(ours), mask)
    a, b = masks[0], masks[1]
    ra, rb = (coco.encode(np.asfortranarray(m.astype(np.uint8))) for m in (a, b))
    assert metrics.mask_iou(a, b) == pytest.approx(float(coco.iou([ra], [rb], [0])[0][0]))
    polygon = [[4.0, 3.0, 30.5, 5.0, 26.0, 28.5, 6.5, 22.0]]
    theirs = coco.decode(coco.merge(coco.frPyObjects(polygon, 32, 40))).astype(bool)
    ours = polygons_to_mask(polygon, 32, 40)
    assert metrics.mask_iou(ours, theirs) > 0.93  # rasterisers differ only on boundary pixels
    assert abs(int(ours.sum()) - int(theirs.sum())) < 0.06 * theirs.sum()


def test_boundary_f_by_hand():
    gold = square(size=40, box=(10, 10, 30, 30))
    assert metrics.boundary_f(gold, gold) == 1.0
    # a shift by one pixel stays within the tolerance (ceil(0.008 * diagonal 56.6) = 1 px)
    assert metrics.boundary_f(np.roll(gold, 1, axis=1), gold) == 1.0
    far = np.roll(gold, 5, axis=1)
    assert metrics.boundary_f(far, gold) < 0.6
    empty = np.zeros_like(gold)
    assert metrics.boundary_f(empty, empty) == 1.0 and metrics.boundary_f(empty, gold) == 0.0


def test_j_and_f_matches_the_official_davis_2017_evaluation():
    official = json.loads((DAVIS / "official_scores.json").read_text())
    per_object = []
    for sample in load_davis(DAVIS, subset="val"):
        gold = sample.gold["masks"]
        seq, k = sample.gold["object"].rsplit("_", 1)
        objects = int(
            max(o.rsplit("_", 1)[1] for o in official["J_per_object"] if o.startswith(seq + "_"))
        )
        pred = read_result_masks(DAVIS / "results", seq, len(gold), objects)[int(k) - 1]
        scores = metrics.j_and_f(pred, gold)
        assert scores["J"] == pytest.approx(
            official["J_per_object"][sample.gold["object"]], abs=1e-9
        )
        assert scores["F"] == pytest.approx(
            official["F_per_object"][sample.gold["object"]], abs=1e-9
        )
        per_object.append(scores)
    assert len(per_object) == 3
    summary = metrics.davis_summary(per_object)
    assert summary["J"] == pytest.approx(official["J-Mean"], abs=1e-9)
    assert summary["F"] == pytest.approx(official["F-Mean"], abs=1e-9)
    assert summary["J&F"] == pytest.approx(official["J&F-Mean"], abs=1e-9)


def test_invocation_scores():
    gold = [{"name": "segment_image", "args": {"image": "img_a", "instruction": "the red circle"}}]
    right = [{"name": "segment_image",
              "args": {"image": "img_a", "instruction": "The red  circle.", "signal": "emb_x"}}]  # fmt: skip
    assert metrics.invocation_scores(right, gold, ["success"]) == {
        "module": 1.0, "arguments": 1.0, "execution": 1.0}  # fmt: skip
    wrong_args = [{"name": "segment_image", "args": {"image": "img_a", "instruction": "a circle"}}]
    assert metrics.invocation_scores(wrong_args, gold, ["error"]) == {
        "module": 1.0, "arguments": 0.0, "execution": 0.0}  # fmt: skip
    assert metrics.invocation_scores([], gold, [])["module"] == 0.0
    assert metrics.invocation_scores([], [], [])["execution"] == 1.0
    two = [*right, {"name": "ground", "args": {}}]
    assert metrics.invocation_scores(two, gold, ["success", "success"])["module"] == 0.0
    regions = {"regions": [[0.1, 0.2, 0.5, 0.9]]}
    assert metrics.argument_match({"regions": [[0.1001, 0.2002, 0.5005, 0.8999]]}, regions)
    assert not metrics.argument_match({"regions": [[0.12, 0.2, 0.5, 0.9]]}, regions)


def test_answers_in_text():
    colours = ["red", "green", "blue"]
    assert metrics.vqa_correct("It is red.", "red", colours)
    assert not metrics.vqa_correct("red or blue", "red", colours)
    assert metrics.vqa_correct("There are three.", "3", ["0", "1", "2", "3", "4"])
    assert not metrics.vqa_correct("", "yes", ["yes", "no"])
    vocab = {"colour": colours, "shape": ["circle", "square"]}
    assert metrics.mentions_exactly(
        "a small striped red circle", {"colour": "red", "shape": "circle"}, vocab
    )
    assert not metrics.mentions_exactly(
        "a red circle and a square", {"colour": "red", "shape": "circle"}, vocab
    )
    assert metrics.parse_span("From frame 3 to 7.") == [3, 7]
    assert metrics.parse_span("frames 2-5") == [2, 5]
    assert metrics.parse_span("frames seven to four") == [4, 7]
    assert metrics.parse_span("at 5") == [5, 5] and metrics.parse_span("never") is None
    assert metrics.span_iou([3, 7], [5, 9]) == pytest.approx(3 / 7)
    assert metrics.span_iou(None, [1, 2]) == 0.0
    assert metrics.retrieval_at_1(["b", "a"], "b") == 1.0 and metrics.retrieval_at_1([], "a") == 0.0
    assert metrics.names_picture("The best match is picture 7: a red star.", 7) == 1.0
    assert metrics.names_picture("Picture 7 shows it", 7) == 1.0  # any case, any wording
    assert metrics.names_picture("Picture 1 shows a red star.", 7) == 0.0
    assert metrics.names_picture("picture 7, or picture 2", 7) == 0.0  # one picture, not a list
    assert (
        metrics.names_picture("It is picture 17.", 7) == 0.0 and metrics.names_picture("", 7) == 0.0
    )
    assert metrics.same_sentence(
        "here is the mask of the square", "Here is the mask of the square."
    )
    assert not metrics.same_sentence(
        "Here is the mask of the square square.", "Here is the mask of the square."
    )


def test_psnr_outside_the_mask():
    gold = np.zeros((4, 4, 3), dtype=np.uint8)
    pred = gold.copy()
    pred[0, 0] = 255  # changed inside the mask: ignored
    mask = np.zeros((4, 4), dtype=bool)
    mask[0, 0] = True
    assert math.isinf(metrics.psnr_outside(pred, gold, mask))
    pred[3, 3] = 10  # one of 15 outside pixels off by 10 in each channel: MSE = 100 / 15
    assert metrics.psnr_outside(pred, gold, mask) == pytest.approx(
        10 * math.log10(255**2 * 15 / 100)
    )
    with pytest.raises(ValueError, match="whole image"):
        metrics.psnr_outside(pred, gold, np.ones((4, 4), dtype=bool))


def test_attribute_accuracy_through_the_classifier_hook():
    class NearestColour:  # a stand-in judge: reads the colour at the box centre
        def predict(self, image, box=None):
            h, w = image.shape[:2]
            x = int((box[0] + box[2]) / 2 * w) if box else w // 2
            y = int((box[1] + box[3]) / 2 * h) if box else h // 2
            return {"colour": "red" if image[y, x, 0] > 128 else "blue"}

    red = np.zeros((8, 8, 3), dtype=np.uint8)
    red[..., 0] = 200
    blue = np.zeros((8, 8, 3), dtype=np.uint8)
    blue[..., 2] = 200
    scores = metrics.attribute_accuracy(NearestColour(), [red, blue, blue],
                                        [{"colour": "red"}, {"colour": "blue"}, {"colour": "red"}])  # fmt: skip
    assert scores == {"colour": pytest.approx(2 / 3), "all": pytest.approx(2 / 3)}
    assert metrics.attribute_accuracy(NearestColour(), [], []) == {}
