"""The collator labels only assistant replies and finds signal tokens where inference reads them;
bad samples are skipped and counted; Ctrl-C leaves a checkpoint a resume continues from."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.training.conftest import tiny_config
from vitron.agent.build import build_tiny_vitron
from vitron.agent.training.collate import IGNORE_INDEX, Collator
from vitron.agent.training.dataset import load_sample
from vitron.agent.training.records import Record, read_jsonl, write_jsonl
from vitron.agent.training.trainer import Interrupted, Trainer, latest_checkpoint


@pytest.fixture(scope="module")
def tiny():
    return build_tiny_vitron()


def _collator(tiny) -> Collator:
    model, processor = tiny
    return Collator(processor, model.config.modules, model.config.signal_token_id_map)


def test_labels_cover_exactly_the_assistant_replies(squares, tiny):
    model, processor = tiny
    records, _ = read_jsonl(squares / "train.jsonl")
    samples = [load_sample(r, squares) for r in records[:4]]
    batch = _collator(tiny)(samples)
    for row, sample in enumerate(samples):
        labelled = batch.labels[row][batch.labels[row] != IGNORE_INDEX]
        reply = sample.record.messages[-1].text
        assert processor.decode(labelled).strip() == reply
        assert int(labelled[-1]) == processor.tokenizer.eos_token_id  # it learns to stop
    # the image placeholders were expanded by the processor (64 tokens per tiny image)
    image_id = processor.token_ids.image
    assert int((batch.inputs["input_ids"][0] == image_id).sum()) == 64
    # signal positions are those the inference extraction finds, supervision in the same order
    output = model(**batch.inputs)
    found = model.signal_embeddings(output.last_hidden_state, batch.inputs["input_ids"])
    assert [(s.batch_index, s.position) for s in found] == [
        (b, p) for b, p, _ in batch.signal_positions
    ]
    assert [s.token for s in batch.signals] == [s.token for s in found] == ["[SEG]", "[GEN]"]
    assert batch.signals[0].mask.shape == (32, 32) and batch.signals[0].box is not None
    assert batch.signals[1].caption.startswith("a ")
    assert batch.task_ids.tolist()[:2] == [
        model.config.modules.index("segment_image"),
        model.config.modules.index("generate_image"),
    ]
    assert batch.task_ids.tolist()[2:] == [-1, -1]


def test_multi_turn_video_and_region_samples_collate(tmp_path, tiny):
    frames = tmp_path / "clip"
    frames.mkdir()
    for t in range(5):
        Image.fromarray(np.full((16, 16, 3), 40 * t, np.uint8)).save(frames / f"{t:03d}.png")
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.full((20, 30), 255, np.uint8)).save(tmp_path / "sketch.png")
    record = Record.from_json(
        {
            "id": "multi",
            "task": "track_video",
            "media": [
                {"kind": "video", "path": "clip", "fps": 2.0},
                {"kind": "image", "path": "a.png"},
            ],
            "regions": [{"media": 1, "mask": "sketch.png"}],
            "messages": [
                {"role": "user", "text": "<video>\nWhen does it get bright?"},
                {"role": "assistant", "text": "From 1.5s to 2.0s."},
                {"role": "user", "text": "<image>\nWhat is <region>? Then track it."},
                {
                    "role": "assistant",
                    "text": "A box. <Module>track_video</Module>"
                    "<Instruction>the box</Instruction>[TRK]",
                },
            ],
        }  # fmt: skip
    )
    batch = _collator(tiny)([load_sample(record, tmp_path)])
    _, processor = tiny
    text = processor.decode(batch.labels[0][batch.labels[0] != IGNORE_INDEX])
    assert "From 1.5s to 2.0s." in text and "[TRK]" in text and "When does" not in text
    assert batch.inputs["pixel_values_videos"].shape[:2] == (1, 5)
    assert batch.inputs["region_image_index"].tolist() == [0]
    assert [s.token for s in batch.signals] == ["[TRK]"]


def test_corrupt_and_missing_files_are_skipped_counted_and_named(squares, tmp_path, caplog):
    root = tmp_path / "data"
    shutil.copytree(squares, root)
    (root / "images/0-0.png").write_bytes(b"not a png")  # corrupt
    (root / "images/0-2.png").unlink()  # vanished after the list was written
    trainer = Trainer(tiny_config(root, tmp_path / "run", "align", epochs=1))
    with caplog.at_level(logging.WARNING):
        result = trainer.run()
    assert result.skipped == 2 and result.steps == 3
    assert "0-0.png" in caplog.text and "0-2.png" in caplog.text
    last = json.loads((tmp_path / "run/metrics.jsonl").read_text().splitlines()[-1])
    assert last["skipped"] == 2


def test_ctrl_c_saves_a_checkpoint_and_resume_finishes_the_same(squares, tmp_path, monkeypatch):
    def config(name):
        return tiny_config(squares, tmp_path / name, "invoke", batch_size=2, epochs=2)

    Trainer(config("whole")).run()
    trainer = Trainer(config("interrupted"))
    make_batch = trainer.make_batch
    calls = []

    def interrupt_at_the_fifth(indices):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return make_batch(indices)

    monkeypatch.setattr(trainer, "make_batch", interrupt_at_the_fifth)
    with pytest.raises(Interrupted) as info:
        trainer.run()
    assert info.value.checkpoint.name == "step-000004"
    Trainer(config("interrupted")).run(resume=True)
    from safetensors.torch import load_file

    whole = load_file(str(latest_checkpoint(tmp_path / "whole") / "trainable.safetensors"))
    resumed = load_file(str(latest_checkpoint(tmp_path / "interrupted") / "trainable.safetensors"))
    for name, value in whole.items():
        torch.testing.assert_close(resumed[name], value, atol=1e-6, rtol=0)
    lines = (tmp_path / "interrupted/metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == list(range(1, 13))  # no step twice


def test_records_written_with_write_jsonl_round_trip_through_the_reader(squares, tmp_path):
    records, _ = read_jsonl(squares / "train.jsonl")
    write_jsonl(tmp_path / "copy.jsonl", records)
    again, skipped = read_jsonl(tmp_path / "copy.jsonl")
    assert again == records and skipped == []
    assert Path(squares / "train.jsonl").read_text() == (tmp_path / "copy.jsonl").read_text()


def test_a_failed_write_leaves_no_file_a_resumed_pipeline_could_take_for_data(squares, tmp_path):
    records, _ = read_jsonl(squares / "train.jsonl")

    def broken():
        yield records[0]
        raise RuntimeError("the generator failed half way")

    path = tmp_path / "data" / "train.jsonl"
    with pytest.raises(RuntimeError, match="half way"):
        write_jsonl(path, broken())
    assert not path.exists() and not list(path.parent.iterdir())


def test_a_data_source_with_no_usable_record_is_named_not_silently_dropped(squares, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty/train.jsonl").write_text("")
    config = tiny_config(squares, tmp_path / "run", "align", epochs=1)
    config.data.append(config.data[0].model_copy(update={"root": str(tmp_path / "empty")}))
    with pytest.raises(ValueError, match=f"at {tmp_path / 'empty'} .*holds no usable records"):
        Trainer(config)
