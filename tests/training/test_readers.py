"""Each reader on a tiny fixture written in its source's own layout; bad samples are skipped with
their path and reason, never fatal."""

from __future__ import annotations

import csv
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vitron.agent.training.readers import load_data_pickle, read_source, to_grammar


def _png(path: Path, size=(40, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((size[1], size[0], 3), np.uint8)).save(path)


def test_released_vitron_json_becomes_our_grammar(tmp_path):
    _png(tmp_path / "media/a.png")
    samples = [
        {
            "id": "v1",
            "image": "a.png",
            "bbox": [4, 3, 20, 15],
            "conversations": [
                {"from": "human", "value": "Segment the dog in <region>."},
                {
                    "from": "gpt",
                    "value": "Sure. <module>B</module><instruction>segmentation: the dog"
                    "</instruction>",
                },
            ],
        },
        {"id": "v2", "image": "gone.png", "conversations": [{"from": "human", "value": "hi"}]},
        {
            "id": "v3",
            "conversations": [
                {"from": "human", "value": "Draw a cat"},
                {"from": "gpt", "value": "<module>Z</module><instruction>x</instruction>"},
            ],
        },
    ]
    (tmp_path / "vitron.json").write_text(json.dumps(samples))
    result = read_source("vitron", tmp_path, media_dir="media")
    [record] = result.records
    assert record.task == "segment_image"
    assert record.messages[0].text.startswith("<image>\n")
    assert record.messages[1].text == (
        "Sure. <Module>segment_image</Module><Instruction>the dog</Instruction>[SEG]"
    )
    assert record.regions[0].box == pytest.approx((0.1, 0.1, 0.5, 0.5))
    reasons = {s.where.rsplit(" ", 1)[-1]: s.reason for s in result.skipped}
    assert "missing file" in reasons["1"] and "gone.png" in reasons["1"]
    assert "unknown module" in reasons["2"]


def test_to_grammar_keeps_letters_a_to_g():
    text = "".join(
        f"<module>{letter}</module><instruction>task: thing</instruction>" for letter in "ABCDEFG"
    )
    rewritten, modules = to_grammar(text)
    assert modules == [
        "generate_image",
        "segment_image",
        "edit_image",
        "generate_video",
        "track_video",
        "edit_video",
        "image_to_video",
    ]
    assert rewritten.count("[VID]") == 2 and "[TRK]" in rewritten and "[EDIT]" in rewritten


def _refer_fixture(root: Path, *, as_pickle: bool) -> None:
    _png(root / "images/COCO_1.jpg", (100, 50))
    refs = [
        {"ref_id": 7, "ann_id": 70, "image_id": 1, "split": "train",
         "sentences": [{"sent": "left cat"}, {"sent": "the cat"}]},
        {"ref_id": 8, "ann_id": 80, "image_id": 2, "split": "train",
         "sentences": [{"sent": "ghost"}]},
        {"ref_id": 9, "ann_id": 70, "image_id": 1, "split": "val", "sentences": [{"sent": "v"}]},
    ]  # fmt: skip
    if as_pickle:
        (root / "refs(unc).p").write_bytes(pickle.dumps(refs, protocol=2))
    else:
        (root / "refs(unc).json").write_text(json.dumps(refs))
    instances = {
        "images": [{"id": 1, "file_name": "COCO_1.jpg", "width": 100, "height": 50}],
        "annotations": [
            {"id": 70, "image_id": 1, "bbox": [10, 5, 40, 20],
             "segmentation": [[10, 5, 50, 5, 50, 25, 10, 25]]}
        ],
    }  # fmt: skip
    (root / "instances.json").write_text(json.dumps(instances))


@pytest.mark.parametrize("as_pickle", [False, True])
def test_refcoco_refer_layout(tmp_path, as_pickle):
    _refer_fixture(tmp_path, as_pickle=as_pickle)
    result = read_source("refcoco", tmp_path)
    assert [r.id for r in result.records] == ["refcoco-7-0", "refcoco-7-1"]
    signal = result.records[0].signals[0]
    assert signal.token == "[SEG]" and signal.mask_polygons[0][:4] == [0.1, 0.1, 0.5, 0.1]
    assert len(result.skipped) == 1 and "ref 8" in result.skipped[0].where
    ground = read_source("refcoco", tmp_path, mode="ground").records[0]
    assert ground.messages[1].text == "<Region>(100, 100, 500, 500)</Region>"


def test_data_pickle_refuses_code(tmp_path):
    path = tmp_path / "evil.p"
    path.write_bytes(pickle.dumps(Path("x")))
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        load_data_pickle(path)


def test_coco_captions(tmp_path):
    _png(tmp_path / "train2017/1.jpg")
    data = {
        "images": [{"id": 1, "file_name": "1.jpg"}, {"id": 2, "file_name": "2.jpg"}],
        "annotations": [
            {"id": 10, "image_id": 1, "caption": "A red ball. "},
            {"id": 11, "image_id": 2, "caption": "missing image"},
            {"id": 12, "image_id": 3, "caption": "unknown image"},
        ],
    }
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations/captions_train2017.json").write_text(json.dumps(data))
    result = read_source("coco_captions", tmp_path)
    assert [r.messages[1].text for r in result.records] == ["A red ball."]
    assert len(result.skipped) == 2


def test_magicbrush(tmp_path):
    for name in ("1-input.png", "1-output1.png"):
        _png(tmp_path / "images/1" / name)
    sessions = {
        "1": [
            {"input": "1-input.png", "output": "1-output1.png", "instruction": "make it blue"},
            {"input": "1-input.png", "output": "1-output2.png", "instruction": "add a hat"},
        ]
    }
    (tmp_path / "edit_sessions.json").write_text(json.dumps(sessions))
    (tmp_path / "local_descriptions.json").write_text(json.dumps({"1-output1.png": "a blue car"}))
    result = read_source("magicbrush", tmp_path)
    [record] = result.records
    assert record.task == "edit_image" and record.signals[0].caption == "a blue car"
    assert record.signals[0].target_media == "images/1/1-output1.png"
    assert "1-output2.png" in result.skipped[0].reason


def test_webvid_csv(tmp_path):
    with (tmp_path / "results.csv").open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["videoid", "name", "page_dir", "duration"])
        writer.writerow(["11", "waves at sunset", "000", "PT10S"])
        writer.writerow(["12", "", "000", "PT5S"])
    generate = read_source("webvid", tmp_path)
    assert [r.signals[0].caption for r in generate.records] == ["waves at sunset"]
    assert generate.skipped[0].where.endswith("results.csv:3")
    caption = read_source("webvid", tmp_path, mode="caption")
    assert caption.records == [] and "000/11.mp4" in caption.skipped[0].reason


def test_records_reader_and_unknown_format(tmp_path):
    _png(tmp_path / "a.png")
    lines = [
        {"id": "ok", "media": [{"kind": "image", "path": "a.png"}],
         "messages": [{"role": "user", "text": "<image>"}, {"role": "assistant", "text": "x"}]},
        {"id": "gone", "media": [{"kind": "image", "path": "b.png"}],
         "messages": [{"role": "user", "text": "<image>"}, {"role": "assistant", "text": "x"}]},
    ]  # fmt: skip
    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps(x) for x in lines))
    result = read_source("records", tmp_path)
    assert [r.id for r in result.records] == ["ok"] and "b.png" in result.skipped[0].reason
    with pytest.raises(ValueError, match="known: records"):
        read_source("laion", tmp_path)
