"""Tokenizer set-up, prompt rendering, video timestamps and processor persistence."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vitron.agent.build import build_tiny_vitron
from vitron.agent.inputs import RegionInput, SampledVideo, Turn, VideoInput
from vitron.agent.invocation import GRAMMAR_TAGS, SIGNAL_TOKENS
from vitron.agent.processing import VitronProcessor
from vitron.agent.tokens import build_tiny_tokenizer, vitron_token_ids

TOKENIZER = build_tiny_tokenizer()


def test_tiny_tokenizer_is_deterministic_and_has_single_vitron_tokens():
    other = build_tiny_tokenizer()
    assert TOKENIZER.get_vocab() == other.get_vocab()
    ids = vitron_token_ids(TOKENIZER)
    assert len({ids.image, ids.video, ids.region, *ids.tags.values(), *ids.signals.values()}) == 14
    text = "ok <Module>segment_image</Module><Instruction>x</Instruction><Region>(1, 2, 3, 4)</Region>[SEG]"
    assert TOKENIZER.decode(TOKENIZER.encode(text), skip_special_tokens=True) == text
    assert (
        TOKENIZER.decode(TOKENIZER.encode("<image><video><region>"), skip_special_tokens=True) == ""
    )
    assert set(GRAMMAR_TAGS) | set(SIGNAL_TOKENS) <= set(TOKENIZER.get_vocab())


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=80))
def test_tiny_tokenizer_covers_arbitrary_text(text):
    assert (
        TOKENIZER.decode(TOKENIZER.encode(text), skip_special_tokens=False).removeprefix("<s>")
        == text
    )


def test_prompt_rendering_roles_and_media_order():
    _, processor = build_tiny_vitron()
    image = np.zeros((30, 40, 3), dtype=np.uint8)
    turns = [
        Turn("system", "Be brief."),
        Turn("user", [image, "What is at ", RegionInput(np.ones((30, 40))), "?"]),
        Turn("assistant", "A box."),
        Turn("tool", "mask_0123456789ab covers 12.4% of img_0123456789ab"),
    ]
    prompt = processor.render(turns)
    assert prompt.text == (
        "Be brief. USER: <image>\nWhat is at <region>? ASSISTANT: A box.</s>"
        "TOOL: mask_0123456789ab covers 12.4% of img_0123456789ab ASSISTANT:"
    )
    assert len(prompt.images) == 1 and len(prompt.regions) == 1
    batch = processor(prompt.text, prompt.images, prompt.videos, prompt.regions)
    assert batch["region_image_index"].tolist() == [0]
    assert batch["region_masks"].shape == (1, 64, 64)
    with pytest.raises(ValueError, match="no image"):
        processor("<region> alone", regions=[RegionInput(np.ones((4, 4)))])


def test_video_prompt_lists_frame_timestamps_in_seconds():
    _, processor = build_tiny_vitron()
    frames = np.zeros((16, 20, 20, 3), dtype=np.uint8)
    sampled = processor.sample_video(VideoInput(frames, fps=2.0))
    assert sampled.indices == [1, 3, 5, 7, 9, 11, 13, 15]
    assert sampled.describe() == "8 frames evenly spaced from 0.5s to 7.5s."
    uneven = SampledVideo(sampled.pixels[:3], [0, 1, 9], [0.0, 0.5, 4.5])
    assert uneven.describe() == "Frame times (s): 0.0 0.5 4.5."
    explicit = processor.sample_video(VideoInput(frames[:4], timestamps=[0.0, 0.25, 0.5, 0.75]))
    assert explicit.timestamps == [0.0, 0.25, 0.5, 0.75]  # fewer frames than the budget: all kept
    untimed = processor.sample_video(VideoInput(frames[:2]))
    assert untimed.describe() == "2 video frames."
    batch = processor(
        ["<video> when?", "<video> and?"],
        videos=[VideoInput(frames, fps=2.0), VideoInput(frames[:3], fps=1.0)],
    )
    assert isinstance(batch["pixel_values_videos"], list)  # different frame counts
    assert [v.shape[0] for v in batch["pixel_values_videos"]] == [8, 3]


def test_processor_save_and_load(tmp_path):
    _, processor = build_tiny_vitron()
    processor.save_pretrained(tmp_path)
    loaded = VitronProcessor.from_pretrained(tmp_path)
    text = processor.render([Turn("user", ["see ", np.zeros((8, 8, 3), dtype=np.uint8)])]).text
    image = np.full((8, 8, 3), 200, dtype=np.uint8)
    a = processor(text, images=[image])
    b = loaded(text, images=[image])
    assert torch.equal(a["input_ids"], b["input_ids"]) and torch.equal(
        a["pixel_values"], b["pixel_values"]
    )
    assert loaded.to_dict() == processor.to_dict()
