"""Text targets longer than Grounding DINO's text encoder are cut to fit, with a note, instead of
crashing the model (``The size of tensor a (1662) must match the size of tensor b (256)``)."""

from __future__ import annotations

import pytest
from PIL import Image

from vitron.tools.models.grounding_dino import fit_phrases, limit_phrases, prompt_text

LONG = ("the small striped cat sitting on the left side of the red sofa near the window " * 26)[
    :2000
]


@pytest.fixture(scope="module")
def engine(tiny_models):
    return tiny_models.get("grounding_dino")


def test_the_engine_reads_a_2000_character_instruction_without_crashing(engine):
    assert len(LONG) == 2000 and engine.max_text_tokens == 256
    detections = engine.detect(Image.new("RGB", (64, 48), "white"), [LONG], box_threshold=0.0)
    assert isinstance(detections, list)


def test_whole_phrases_are_kept_while_they_fit_and_the_note_says_what_was_left(engine):
    phrases = [f"object number {i}" for i in range(40)]
    kept, note = limit_phrases(engine, phrases)
    assert kept == phrases[: len(kept)] and 0 < len(kept) < 40
    assert len(engine.tokenizer(prompt_text(kept))["input_ids"]) <= 256
    assert f"first {len(kept)} of 40 phrases" in note and "256 tokens" in note


def test_one_long_phrase_is_cut_at_a_token_boundary(engine):
    kept, note = fit_phrases(engine.tokenizer, [LONG], 256)
    assert LONG.startswith(kept[0]) and len(engine.tokenizer(prompt_text(kept))["input_ids"]) <= 256
    assert len(kept[0]) > 200 and "characters" in note
    assert fit_phrases(engine.tokenizer, ["a dog"], 256) == (["a dog"], None)


@pytest.mark.parametrize(
    ("tool", "args"),
    [
        ("ground", {}),
        ("segment_image", {}),
        ("track_video", {}),
        ("edit_image", {"operation": "remove", "steps": 1}),
    ],
)
def test_every_text_target_tool_answers_a_long_instruction_with_a_note(invoke, photo, square_video,
                                                                       tool, args):  # fmt: skip
    media = {"track_video": {"video": square_video.handle}}.get(tool, {"image": photo.handle})
    result = invoke(tool, instruction=LONG, **media, **args)
    assert "size of tensor" not in result.content
    if result.status == "error":  # the random tiny model may find nothing: a clean answer
        assert "could not find" in result.content, result.content
    else:
        assert "longer than Grounding DINO reads (256 tokens)" in result.content
