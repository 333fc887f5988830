"""The invocation grammar: format <-> parse, released format, errors, and property tests."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vitron.agent.invocation import (
    GRAMMAR_TAGS,
    MODULES,
    RELEASED_LETTERS,
    SIGNAL_TOKENS,
    dequantize_coordinate,
    format_invocation,
    format_region,
    format_reply,
    parse_region,
    quantize_coordinate,
    sanitize_text,
)
from vitron.agent.parsing import parse_reply

IMAGE = "img_0123456789abcdef"
VIDEO = "vid_fedcba9876543210"


def test_design_example_parses_into_a_tool_call():
    text = (
        "Sure, I'll find it. <Module>segment_image</Module><Instruction>the zebra farthest away"
        "</Instruction><Region>(102, 211, 498, 903)</Region>[SEG]"
    )
    parsed = parse_reply(text, media={"image": IMAGE, "video": VIDEO})
    assert parsed.errors == []
    assert parsed.content == "Sure, I'll find it."
    [call] = parsed.calls
    assert call["name"] == "segment_image"
    assert call["type"] == "tool_call" and call["id"]
    assert call["args"] == {
        "instruction": "the zebra farthest away",
        "regions": [[0.1021, 0.2112, 0.4985, 0.9039]],
        "image": IMAGE,
    }
    assert parsed.signal_count == 1
    assert parsed.invocations[0].signal_token == "[SEG]"


def test_several_invocations_media_and_signals_fill_in_afterwards():
    text = (
        "First <Module>track_video</Module><Instruction>the dog</Instruction>[TRK] then "
        "<Module>ground</Module><Instruction>cups</Instruction> and finally "
        "<Module>generate_image</Module><Instruction>a red cube</Instruction>[GEN]"
    )
    parsed = parse_reply(text, media={"image": IMAGE, "video": VIDEO})
    assert parsed.errors == []
    assert [c["name"] for c in parsed.calls] == ["track_video", "ground", "generate_image"]
    assert parsed.content == "First then and finally"
    assert parsed.calls[0]["args"]["video"] == VIDEO
    assert parsed.calls[1]["args"]["image"] == IMAGE
    assert "image" not in parsed.calls[2]["args"]  # generation takes no input media
    filled = parsed.with_signals(["emb_aaaaaaaaaaaa", "emb_bbbbbbbbbbbb"])
    assert filled[0]["args"]["signal"] == "emb_aaaaaaaaaaaa"
    assert "signal" not in filled[1]["args"]
    assert filled[2]["args"]["signal"] == "emb_bbbbbbbbbbbb"
    assert [c["id"] for c in filled] == [c["id"] for c in parsed.calls]


def test_with_signals_checks_the_count():
    parsed = parse_reply("<Module>edit_image</Module><Instruction>make it blue</Instruction>[EDIT]")
    try:
        parsed.with_signals([])
    except ValueError as error:
        assert "0 signal handle(s)" in str(error) and "1 signal token(s)" in str(error)
    else:
        raise AssertionError("a count mismatch must raise")


def test_released_format_letters_and_task_prefix():
    text = (
        "Sure, I'll focus on the zebra that is the farthest from us. <module>B</module> "
        "<instruction>segmentation: zebra farthest from you</instruction>"
    )
    parsed = parse_reply(text, media={"image": IMAGE})
    assert parsed.errors == []
    [call] = parsed.calls
    assert call["name"] == "segment_image"
    assert call["args"] == {"instruction": "zebra farthest from you", "image": IMAGE}
    assert parsed.content == "Sure, I'll focus on the zebra that is the farthest from us."
    assert parsed.invocations[0].style == "released"


def test_released_letters_follow_the_public_vitron_mapping():
    assert RELEASED_LETTERS == {
        "A": "generate_image",
        "B": "segment_image",
        "C": "edit_image",
        "D": "generate_video",
        "E": "track_video",
        "F": "edit_video",
        "G": "image_to_video",
    }
    two = parse_reply(
        "<module>F</module><instruction>foreground: a red car</instruction>"
        "<instruction>background: a snowy road</instruction>"
    )
    assert two.errors == []
    assert two.calls[0]["name"] == "edit_video"
    assert two.calls[0]["args"]["instruction"] == "a red car; a snowy road"


def test_malformed_text_is_kept_and_explained():
    cases = {
        "<Module>teleport</Module><Instruction>x</Instruction>": "unknown module 'teleport'",
        "<Module>segment_image</Module><Instruction>the cat": "not closed by </Instruction>",
        "<Module>segment_image</Module><Instruction>x</Instruction><Region>(1000, 2, 3, 4)</Region>[SEG]": "1000 is not an integer in 0-999",
        "<Module>segment_image</Module><Instruction>x</Instruction><Region>(1, 2, 3)</Region>": "not four numbers",
        "<Module>segment_image</Module><Instruction>x</Instruction>[GEN]": "takes the signal token [SEG], got [GEN]",
        "<Module>ground</Module><Instruction>x</Instruction>[SEG]": "takes no signal token",
        "<Module>segment_image</Module> oops": "missing <Instruction>",
        "lonely [SEG] token": "does not end an invocation",
        "a stray </Region> tag": "stray </Region>",
        "<Module>": "not followed by a module name",
    }
    for text, message in cases.items():
        parsed = parse_reply(text)
        assert parsed.calls == [], text
        assert any(message in e for e in parsed.errors), (text, parsed.errors)
        assert parsed.content == text.strip()  # nothing the model said is lost


def test_unbound_module_is_an_error():
    parsed = parse_reply(
        "<Module>edit_image</Module><Instruction>x</Instruction>[EDIT]",
        modules=["segment_image", "ground"],
    )
    assert parsed.calls == []
    assert "not available here" in parsed.errors[0] and "segment_image" in parsed.errors[0]


def test_a_good_call_survives_next_to_a_bad_one():
    parsed = parse_reply(
        "<Module>segment_image</Module><Instruction>x</Instruction>[GEN] ok "
        "<Module>ground</Module><Instruction>y</Instruction>"
    )
    assert [c["name"] for c in parsed.calls] == ["ground"]
    assert len(parsed.errors) == 1
    assert parsed.signal_count == 1


def test_region_quantisation_is_stable():
    for q in range(1000):
        assert quantize_coordinate(dequantize_coordinate(q)) == q
    assert format_region([0.0, 0.0, 1.0, 1.0]) == "(0, 0, 999, 999)"
    assert format_region([0.5, 0.9, 0.1, 0.2]) == "(100, 200, 500, 899)"  # corners sorted
    assert parse_region("(500, 10, 100, 20)") == ((0.1001, 0.01, 0.5005, 0.02), None)
    box, error = parse_region("[0.1, 0.2, 0.5, 0.75]")  # released-style normalised floats
    assert error is None and box == (0.1, 0.2, 0.5, 0.75)


def test_format_sanitises_grammar_out_of_text():
    assert sanitize_text("a <Mod<Module>ule> b [SEG] c") == "a  b  c"
    text = format_invocation("edit_video", "<instruction>recolour</instruction> the car")
    assert text == "<Module>edit_video</Module><Instruction>recolour the car</Instruction>[EDIT]"
    assert format_invocation("ground", "cups", signal=True).endswith("</Instruction>")


# ---- property-based tests ----

boxes = st.lists(st.floats(min_value=0.0, max_value=1.0, allow_nan=False), min_size=4, max_size=4)
calls = st.builds(
    lambda name, instruction, regions: {
        "name": name,
        "args": {"instruction": instruction, "regions": regions},
    },
    st.sampled_from(sorted(MODULES)),
    st.text(min_size=0, max_size=40),
    st.lists(boxes, max_size=3),
)
fragments = st.sampled_from(
    [*GRAMMAR_TAGS, *SIGNAL_TOKENS, "<module>", "</module>", "<instruction>", "</region>"]
    + sorted(MODULES)
    + sorted(RELEASED_LETTERS)
    + [
        "(",
        ")",
        ", ",
        "102",
        "999",
        "1000",
        "-3",
        "0.5",
        ":",
        "segmentation: ",
        " ",
        "\n",
        "<",
        ">",
        "[",
        "]",
    ]
)


def expected_box(box: list[float]) -> list[float]:
    q = [quantize_coordinate(v) for v in box]
    x1, x2 = sorted((q[0], q[2]))
    y1, y2 = sorted((q[1], q[3]))
    return [dequantize_coordinate(v) for v in (x1, y1, x2, y2)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=st.text(max_size=60), chosen=st.lists(calls, max_size=4))
def test_format_then_parse_round_trips(content, chosen):
    text = format_reply(content, chosen)
    parsed = parse_reply(text)
    assert parsed.errors == []
    assert parsed.content == sanitize_text(content)
    assert [c["name"] for c in parsed.calls] == [c["name"] for c in chosen]
    for got, want in zip(parsed.calls, chosen, strict=True):
        assert got["args"]["instruction"] == sanitize_text(want["args"]["instruction"])
        assert got["args"].get("regions", []) == [expected_box(b) for b in want["args"]["regions"]]
    with_signal = [c for c in chosen if MODULES[c["name"]].signal_token]
    assert parsed.signal_count == len(with_signal)
    # parse -> format -> parse is a fixed point
    again = parse_reply(format_reply(parsed.content, parsed.calls))
    assert again.content == parsed.content
    assert [(c["name"], c["args"]) for c in again.calls] == [
        (c["name"], c["args"]) for c in parsed.calls
    ]


@settings(max_examples=300, deadline=None)
@given(
    text=st.one_of(
        st.text(max_size=200),
        st.lists(st.one_of(fragments, st.text(max_size=8)), max_size=40).map("".join),
    )
)
def test_arbitrary_text_never_crashes_the_parser(text):
    parsed = parse_reply(text, modules=["segment_image", "ground"], media={"image": IMAGE})
    assert isinstance(parsed.content, str)
    assert all(isinstance(e, str) and e for e in parsed.errors)
    assert len(parsed.calls) == len(parsed.invocations)
    for call in parsed.calls:
        assert call["name"] in {"segment_image", "ground"}
        for box in call["args"].get("regions", []):
            assert all(0.0 <= v <= 1.0 for v in box) and box[0] <= box[2] and box[1] <= box[3]
    indices = [inv.signal_index for inv in parsed.invocations if inv.signal_index is not None]
    assert indices == sorted(set(indices)) and all(i < parsed.signal_count for i in indices)
    if not parsed.errors:  # a clean parse is stable under re-formatting
        again = parse_reply(
            format_reply(parsed.content, parsed.calls), modules=["segment_image", "ground"]
        )
        assert [c["name"] for c in again.calls] == [c["name"] for c in parsed.calls]
