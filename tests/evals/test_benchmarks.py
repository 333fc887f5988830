"""Benchmark loaders on small fixture files written in each benchmark's own format, and a run of
each through the graph with the oracle (the loaders' ground truth reaches the metrics intact)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.evals.oracle import oracle_planner, oracle_tools
from vitron.evals.benchmarks.davis import load_davis
from vitron.evals.benchmarks.magicbrush import load_magicbrush
from vitron.evals.benchmarks.refcoco import load_refcoco
from vitron.evals.benchmarks.ytvos import load_ref_youtube_vos
from vitron.evals.harness import Outcome
from vitron.evals.runner import EvalSettings, evaluate, load_suite
from vitron.evals.scoring import score

DAVIS = Path(__file__).parent / "fixtures" / "davis"
PALETTE = [0, 0, 0, 200, 0, 0, 0, 200, 0] + [0] * (253 * 3)


def _image(path: Path, array: np.ndarray, palette: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(array.astype(np.uint8), mode="P" if palette else None)
    if palette:
        image.putpalette(PALETTE)
    image.save(path)


@pytest.fixture
def refcoco(tmp_path) -> Path:
    """The refer layout: refs(unc).p (a protocol-2 pickle, as released), instances.json, images."""
    root = tmp_path / "refcoco"
    _image(root / "images" / "COCO_train2014_000000000001.jpg".replace(".jpg", ".png"),
           np.full((40, 60, 3), 90))  # fmt: skip
    rle_mask = np.zeros((40, 60), dtype=np.uint8)
    rle_mask[5:15, 30:50] = 1
    flat = rle_mask.T.reshape(-1)  # COCO runs go down the columns
    change = np.flatnonzero(np.diff(np.concatenate([[0], flat, [2]])) != 0)
    counts = np.diff(np.concatenate([[0], change])).tolist()
    counts = counts if flat[0] == 0 else [0, *counts]
    instances = {
        "images": [{"id": 1, "file_name": "COCO_train2014_000000000001.png", "width": 60, "height": 40}],
        "annotations": [
            {"id": 10, "image_id": 1, "bbox": [4, 20, 20, 12], "category_id": 1,
             "segmentation": [[4, 20, 24, 20, 24, 32, 4, 32]]},
            {"id": 11, "image_id": 1, "bbox": [30, 5, 20, 10], "category_id": 1,
             "segmentation": {"size": [40, 60], "counts": counts}},
        ],
        "categories": [{"id": 1, "name": "thing"}],
    }  # fmt: skip
    (root / "instances.json").write_text(json.dumps(instances))
    refs = [
        {"ref_id": 0, "ann_id": 10, "image_id": 1, "split": "val", "category_id": 1,
         "sentences": [{"sent": "the box on the left", "raw": "The box on the left"},
                       {"sent": "left thing"}]},
        {"ref_id": 1, "ann_id": 11, "image_id": 1, "split": "val", "category_id": 1,
         "sentences": [{"sent": "the right one"}]},
        {"ref_id": 2, "ann_id": 11, "image_id": 1, "split": "train", "sentences": [{"sent": "x"}]},
    ]  # fmt: skip
    (root / "refs(unc).p").write_bytes(pickle.dumps(refs, protocol=2))
    return root


def test_refcoco_loader_reads_polygons_rle_and_the_pickle_safely(refcoco):
    samples = list(load_refcoco(refcoco, split="val", split_by="unc"))
    assert [s.gold["expression"] for s in samples] == [
        "the box on the left",
        "left thing",
        "the right one",
    ]
    left, right = samples[0].gold["mask"], samples[2].gold["mask"]
    assert left[20:32, 4:24].all() and left.sum() == 12 * 20
    assert right[5:15, 30:50].all() and right.sum() == 200
    assert samples[0].gold["box"] == pytest.approx([4 / 60, 20 / 40, 24 / 60, 32 / 40])
    assert samples[0].calls[0].args["instruction"] == "the box on the left"
    assert len(list(load_refcoco(refcoco, split="val", limit=2))) == 2

    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    (refcoco / "refs(unc).p").write_bytes(pickle.dumps([Payload()], protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        list(load_refcoco(refcoco, split="val"))


@pytest.fixture
def ytvos(tmp_path) -> Path:
    root = tmp_path / "rytvos"
    names = ["00000", "00005", "00010"]
    for t, name in enumerate(names):
        ids = np.zeros((24, 32), dtype=np.uint8)
        ids[4:12, 2 + 4 * t : 10 + 4 * t] = 1
        ids[14:20, 20:28] = 2
        _image(root / "train" / "Annotations" / "vid1" / f"{name}.png", ids, palette=True)
        _image(root / "train" / "JPEGImages" / "vid1" / f"{name}.jpg", np.full((24, 32, 3), 60 + t))
    meta = {"videos": {"vid1": {"frames": names, "expressions": {
        "0": {"exp": "a square moving right", "obj_id": "1"}, "1": {"exp": "the still one", "obj_id": "2"}}}}}  # fmt: skip
    path = root / "meta_expressions" / "train" / "meta_expressions.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(meta))
    return root


def test_ref_youtube_vos_loader(ytvos):
    samples = list(load_ref_youtube_vos(ytvos, split="train"))
    assert [s.gold["expression"] for s in samples] == ["a square moving right", "the still one"]
    masks = samples[0].gold["masks"]
    assert masks.shape == (3, 24, 32) and masks[2, 4:12, 10:18].all() and masks.sum() == 3 * 64
    assert samples[0].media[0].pixels.shape == (3, 24, 32, 3) and not samples[0].gold["drop_ends"]


@pytest.fixture
def magicbrush(tmp_path) -> Path:
    root = tmp_path / "magicbrush"
    before = np.full((16, 16, 3), 100, dtype=np.uint8)
    after = before.copy()
    after[4:8, 4:8] = (250, 0, 0)
    folder = root / "images" / "327726"
    _image(folder / "327726-input.png", before)
    _image(folder / "327726-output1.png", after)
    mask = np.zeros((16, 16, 4), dtype=np.uint8)
    mask[..., 3] = 255
    mask[3:9, 3:9, 3] = 0  # DALL-E 2 style: transparent = the area to edit
    Image.fromarray(mask, mode="RGBA").save(folder / "327726-mask1.png")
    sessions = {"327726": [{"input": "327726-input.png", "mask": "327726-mask1.png",
                            "output": "327726-output1.png", "instruction": "make a red square"}]}  # fmt: skip
    (root / "edit_sessions.json").write_text(json.dumps(sessions))
    return root


def test_magicbrush_loader(magicbrush):
    (sample,) = load_magicbrush(magicbrush)
    assert sample.instruction == "make a red square" and sample.task == "editing"
    assert sample.gold["region"].sum() == 36 and sample.gold["region"][3:9, 3:9].all()
    assert tuple(sample.gold["after"][5, 5]) == (250, 0, 0)


def test_davis_loader_reads_objects_and_void():
    samples = list(load_davis(DAVIS))
    assert [s.gold["object"] for s in samples] == ["twoobj_1", "twoobj_2", "oneobj_1"]
    one = samples[2]
    assert one.regions[0].mask is not None and one.calls[0].args == {
        "video": "<media:0>",
        "mask": "<region:0>",
    }
    assert not one.gold["masks"][:, 0, :6].any()  # void (255) is background
    assert not one.gold["masks"][4].any()  # occluded in the ground truth


@pytest.mark.parametrize("suite", ["refcoco", "davis", "ref-youtube-vos", "magicbrush"])
def test_benchmarks_run_through_the_graph(tmp_path, suite, refcoco, ytvos, magicbrush):
    data = {"refcoco": refcoco, "davis": DAVIS, "ref-youtube-vos": ytvos, "magicbrush": magicbrush}[
        suite
    ]
    settings = EvalSettings(suite=suite, data=str(data), workspace=str(tmp_path / "ws"),
                            device="cpu", progress=False)  # fmt: skip
    report = evaluate(settings, load_suite(settings), planner=oracle_planner, tools=oracle_tools())
    (row,) = report["runs"][0]["tasks"].values()
    assert row["execution"] == row["module"] == row["arguments"] == 1.0
    metric = {"refcoco": "cIoU", "davis": "J&F", "ref-youtube-vos": "J&F", "magicbrush": "l1"}[
        suite
    ]
    assert row[metric] == pytest.approx(0.0 if metric == "l1" else 1.0)


def test_invocation_accuracy_ignores_arguments_the_grammar_cannot_write():
    sample = next(iter(load_davis(DAVIS)))  # its gold call passes the first-frame sketch as mask
    outcome = Outcome(sample=sample, media=["vid_0123456789ab"], regions=["mask_0123456789ab"],
                      calls=[{"name": "track_video", "args": {"video": "vid_0123456789ab",
                                                              "regions": [[0.1, 0.1, 0.5, 0.5]]}}],
                      results=[{"name": "track_video", "status": "success", "artifact": {}}])  # fmt: skip
    scores = score(outcome)
    assert scores["module"] == scores["arguments"] == scores["execution"] == 1.0
    assert scores["J&F"] < 1.0  # no mask video came back: the output, not the call, scores low


def test_a_benchmark_suite_without_data_is_a_clear_error():
    with pytest.raises(ValueError, match="--data"):
        load_suite(EvalSettings(suite="davis"))


def test_a_strided_track_fills_the_frames_it_covered(tmp_path):
    from vitron.evals.scoring import predicted_track
    from vitron.tools.workspace import Workspace

    workspace = Workspace(tmp_path / "ws").for_thread("t")
    frame = np.zeros((8, 8, 3), dtype=np.uint8)
    frame[2:5, 2:5] = 255
    video = workspace.put_video([frame, frame], 4.0, lossless=True)
    sample = next(iter(load_davis(DAVIS)))
    outcome = Outcome(sample=sample, workspace=workspace, results=[{
        "name": "track_video", "status": "success",
        "artifact": {"masks": video.handle, "frames": {"start": 1, "stride": 2, "count": 2}}}])  # fmt: skip
    track = predicted_track(outcome, (5, 8, 8))
    assert [bool(m.any()) for m in track] == [False, True, False, True, False]
    assert track[1].sum() == 9
