"""Property tests of the invocation parser, both grammars: whatever the model writes, the parser
returns calls, text and errors without failing internally, and what the formatter writes comes back
as it was written."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from vitron.agent.invocation import MODULES, RELEASED_LETTERS, format_invocation, sanitize_text
from vitron.agent.parsing import parse_reply
from vitron.tools.backend import format_validation_error, registered_backends

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FRAGMENTS = ["<Module>", "</Module>", "<Instruction>", "</Instruction>", "<Region>", "</Region>",
             "<module>", "</module>", "<instruction>", "</instruction>", "[SEG]", "[TRK]", "[GEN]",
             "[VID]", "[EDIT]", "(1, 2, 3, 4)", "(0.1, 0.2, 0.9, 0.8)", "999", "-5", ",", " ",
             *MODULES, *RELEASED_LETTERS, "segmentation:", "\n"]  # fmt: skip
model_text = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=12), max_size=30).map("".join)
boxes = st.tuples(*[st.integers(0, 999)] * 4).filter(lambda b: b[0] != b[2] and b[1] != b[3])
HANDLES = {"image": "img_0123456789abcdef", "video": "vid_0123456789abcdef"}


@FAST
@given(model_text)
def test_any_model_text_parses_without_an_internal_failure(text):
    reply = parse_reply(text, media=HANDLES)
    assert not any(e.startswith("parser failure") for e in reply.errors), reply.errors
    assert isinstance(reply.content, str)
    assert len(reply.calls) == len(reply.invocations)
    schemas = registered_backends()
    for call in reply.calls:  # every call is a known tool; its arguments validate or say why
        assert call["name"] in MODULES
        try:
            schemas[call["name"]].args_schema.model_validate(call["args"])
        except ValidationError as exc:
            assert format_validation_error(exc).startswith("invalid arguments")


@FAST
@given(
    module=st.sampled_from(sorted(MODULES)),
    instruction=st.text(max_size=80),
    regions=st.lists(boxes, max_size=3),
    signal=st.booleans(),
    before=st.text(max_size=20).map(sanitize_text),
)
def test_what_the_vitron_grammar_writes_parses_back(module, instruction, regions, signal, before):
    normalised = [[v / 999 for v in box] for box in regions]
    text = f"{before} {format_invocation(module, instruction, normalised, signal=signal)}"
    reply = parse_reply(text)
    assert reply.errors == [] and len(reply.calls) == 1, reply.errors
    call = reply.calls[0]
    assert call["name"] == module and call["args"]["instruction"] == sanitize_text(instruction)
    parsed = call["args"].get("regions", [])
    assert len(parsed) == len(regions)
    for got, box in zip(parsed, regions, strict=True):
        x1, x2 = sorted((box[0], box[2]))
        y1, y2 = sorted((box[1], box[3]))
        assert [round(v * 999) for v in got] == [x1, y1, x2, y2]


@FAST
@given(
    letter=st.sampled_from(sorted(RELEASED_LETTERS)),
    prefix=st.sampled_from(["segmentation: ", "generation: ", "", "video editing: "]),
    instruction=st.text(max_size=60).map(sanitize_text),
    case=st.sampled_from([str.lower, str.upper, str.title]),
)
def test_what_the_released_format_writes_parses_back(letter, prefix, instruction, case):
    module = RELEASED_LETTERS[letter]
    token = MODULES[module].signal_token
    text = (f"{case('<module>')}{letter}{case('</module>')} {case('<instruction>')}{prefix}"
            f"{instruction}{case('</instruction>')}{token or ''}")  # fmt: skip
    reply = parse_reply(text)
    assert reply.errors == [] and [c["name"] for c in reply.calls] == [module], reply.errors
    expected = instruction.strip()
    if not prefix and ":" in expected:  # the released prefix rule may take a leading "word:"
        return
    assert reply.calls[0]["args"]["instruction"] == expected
