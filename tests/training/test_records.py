"""The dataset record format: round trip, the checks that keep records usable, JSONL skipping."""

from __future__ import annotations

import json

import pytest

from vitron.agent.training.records import Record, RecordError, read_jsonl, write_jsonl

SEG = {
    "id": "s1",
    "source": "shapes",
    "task": "segment_image",
    "media": [{"kind": "image", "path": "images/1.png"}],
    "regions": [{"media": 0, "box": [0.1, 0.2, 0.5, 0.6]}],
    "messages": [
        {"role": "user", "text": "<image>\nSegment the shape inside <region>."},
        {
            "role": "assistant",
            "text": "<Module>segment_image</Module><Instruction>the red circle</Instruction>[SEG]",
        },
    ],
    "signals": [{"token": "[SEG]", "media": 0, "mask": "masks/1.png"}],
    "meta": {"split": "train"},
}


def _with(**changes):
    return json.loads(json.dumps(SEG)) | changes


def test_round_trip_through_a_line():
    record = Record.from_json(SEG)
    assert Record.from_json(json.loads(record.to_line())) == record
    assert record.signal_tokens() == ["[SEG]"]
    assert record.media_paths() == ["images/1.png", "masks/1.png"]


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"media": []}, "placeholders are ['image'] but media are []"),
        ({"media": [{"kind": "image", "path": "../x.png"}]}, "without .."),
        ({"media": [{"kind": "image", "path": "/abs.png"}]}, "relative"),
        ({"regions": []}, "1 <region> placeholder(s) but 0 regions"),
        ({"regions": [{"media": 0, "box": [0.5, 0.2, 0.1, 0.6]}]}, "0 <= x1 < x2"),
        ({"regions": [{"media": 0}]}, "needs a box or a mask"),
        ({"signals": [{"token": "[GEN]", "caption": "a cat"}]}, "do not match"),
        ({"signals": [{"token": "[SEG]", "caption": "a cat"}]}, "not a caption"),
        ({"signals": [{"token": "[SEG]", "mask": "m.png"}]}, "needs `media`"),
        ({"signals": [{"token": "[SEG]", "media": 0, "mask_polygons": [[0.1, 0.2]]}]}, "3 norm"),
        ({"task": "paint"}, "is not a module"),
        ({"messages": [{"role": "user", "text": "<image> <region> [SEG]"}]}, "no assistant"),
        ({"colour": "red"}, "Extra inputs"),
    ],
)
def test_bad_records_say_why(changes, needle):
    with pytest.raises(RecordError, match="s1") as info:
        Record.from_json(_with(**changes))
    assert needle in str(info.value)


def test_jsonl_skips_bad_lines_with_their_place(tmp_path):
    path = tmp_path / "data.jsonl"
    write_jsonl(path, [Record.from_json(SEG)])
    with path.open("a") as out:
        out.write("{not json\n\n")
        out.write(json.dumps(_with(task="paint")) + "\n")
    records, skipped = read_jsonl(path)
    assert [r.id for r in records] == ["s1"]
    assert [s.where for s in skipped] == [f"{path}:2", f"{path}:4"]
    missing, skipped = read_jsonl(tmp_path / "absent.jsonl")
    assert missing == [] and "absent.jsonl" in skipped[0].where
