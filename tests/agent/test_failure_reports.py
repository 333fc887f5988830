"""After a failed call ChatVitron answers with the tool's error, not with a generated sentence: the
nano planner, never trained on a failure, answered "Here is the mask of the circle." beside
segment_image's "could not find 'the circle'"."""

from __future__ import annotations

import numpy as np
import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from vitron.agent.build import build_tiny_vitron
from vitron.agent.chat_model import ChatVitron
from vitron.agent.failures import failure_report, unresolved_failures
from vitron.agent.messages import REJECTED
from vitron.graphs.approval import rejection
from vitron.tools.backend import NOTHING_FOUND

NOT_FOUND = "could not find 'the circle' in img_0123456789abcdef (no Grounding DINO box above 0.3)"


def call(name: str, call_id: str) -> dict:
    return {"name": name, "args": {"instruction": "the circle"}, "id": call_id, "type": "tool_call"}


def result(name: str, call_id: str, text: str, failed: bool) -> ToolMessage:
    status = "error" if failed else "success"
    return ToolMessage(content=text, tool_call_id=call_id, name=name, status=status)


def turn_with(*results: ToolMessage) -> list:
    calls = [call(r.name, r.tool_call_id) for r in results]
    return [HumanMessage("segment the circle"), AIMessage("", tool_calls=calls), *results]


def test_a_failure_stands_until_a_later_call_of_that_tool_succeeds():
    failed = result("segment_image", "a", NOT_FOUND, failed=True)
    other = result("ground", "b", "box (0.1, 0.1, 0.5, 0.5)", failed=False)
    again = result("segment_image", "c", "mask_0123456789abcdef", failed=False)
    assert unresolved_failures([failed, other]) == [failed]
    assert unresolved_failures([failed, other, again]) == []
    assert unresolved_failures([again, failed]) == [failed]
    assert unresolved_failures([HumanMessage("hi")]) == []


def test_a_search_that_found_nothing_counts_until_one_finds_something():
    empty = ToolMessage(content="no boxes for 'the circle' in img_0123456789abcdef above "
                        "box_threshold 0.35; try a lower threshold or other words",
                        tool_call_id="a", name="ground", artifact={NOTHING_FOUND: True})  # fmt: skip
    found = result("ground", "b", "box_0123456789abcdef: 1 box(es)", failed=False)
    assert unresolved_failures([empty]) == [empty]
    assert unresolved_failures([empty, found]) == []
    assert failure_report([empty], anything_done=False) == (
        "ground found nothing: no boxes for 'the circle' in img_0123456789abcdef above "
        "box_threshold 0.35; try a lower threshold or other words."
    )


def test_the_report_gives_each_failure_in_the_tools_words():
    failed = result("segment_image", "a", NOT_FOUND + ".", failed=True)
    crashed = result("ground", "b", "ground failed: RuntimeError: out of memory", failed=True)
    assert failure_report([failed], anything_done=False) == (
        f"That did not work. segment_image: {NOT_FOUND}."
    )
    assert failure_report([failed, crashed], anything_done=True) == (
        f"Part of that did not work. segment_image: {NOT_FOUND}. "
        "ground failed: RuntimeError: out of memory."
    )
    rejected = rejection(call("edit_image", "c"))
    assert rejected.additional_kwargs[REJECTED]
    assert failure_report([rejected], anything_done=False) == (
        "I did not run edit_image, as you decided."
    )
    unanswered = rejection(call("generate_video", "d"), "nobody answered the approval prompt")
    assert failure_report([unanswered, failed], anything_done=False) == (
        "That did not work. I did not run generate_video: nobody answered the approval prompt. "
        f"segment_image: {NOT_FOUND}."
    )


@pytest.fixture(scope="module")
def chat(tmp_path_factory):
    model, processor = build_tiny_vitron(seed=0)
    workspace = tmp_path_factory.mktemp("ws")
    return ChatVitron.from_model(model, processor, workspace=str(workspace), device="cpu",
                                 max_new_tokens=12, temperature=1.0, seed=1)  # fmt: skip


def test_after_a_failed_call_the_reply_is_the_failure_streamed_or_not(chat):
    messages = turn_with(result("segment_image", "a", NOT_FOUND, failed=True))
    message = chat.invoke(messages)
    assert message.content == f"That did not work. segment_image: {NOT_FOUND}."
    assert not message.tool_calls
    assert message.response_metadata["reported_failures"] == ["a"]
    assert message.usage_metadata["output_tokens"] > 0  # the model did generate, unshown
    chunks = list(chat.stream(messages))
    assert all(c.content == "" for c in chunks[:-1])  # nothing generated is shown
    assert "".join(c.content for c in chunks) == message.content


def test_without_a_failure_or_with_reports_off_the_reply_is_generated(chat):
    failed = turn_with(result("segment_image", "a", NOT_FOUND, failed=True))
    made_good = turn_with(
        result("segment_image", "a", NOT_FOUND, failed=True),
        result("segment_image", "b", "mask_0123456789abcdef covers 12% of the image", failed=False),
    )
    generated = chat.model_copy(update={"report_failures": False}).invoke(failed)
    assert "did not work" not in generated.content
    assert generated.response_metadata["reported_failures"] == []
    assert "did not work" not in chat.invoke(made_good).content


def test_through_the_graph_the_nano_planner_reports_what_it_could_not_find(tmp_path):
    """The nano planner calls segment_image for a circle on a blank picture; Grounding DINO finds
    no box, and the answer says so instead of presenting a mask."""
    from vitron.graphs import Context, build_graph, user_message

    context = Context(profile="nano", workspace=str(tmp_path / "ws"), device="cpu")
    white = np.full((64, 64, 3), 255, np.uint8)
    blank = context.services().workspace.for_thread("t").put_image(white)
    inputs = {"messages": [user_message("Segment the circle.", media=[blank])],
              "media": {blank.handle: blank.to_state()}}  # fmt: skip
    graph = build_graph(ChatVitron())
    out = graph.invoke(inputs, {"configurable": {"thread_id": "t"}}, context=context)
    failed = [m for m in out["messages"] if isinstance(m, ToolMessage) and m.status == "error"]
    assert [m.name for m in failed] == ["segment_image"], out["messages"]
    answer = out["messages"][-1]
    assert isinstance(answer, AIMessage) and not answer.tool_calls
    assert answer.content.startswith("That did not work. segment_image: could not find"), answer


def test_through_the_graph_a_box_that_was_not_found_is_not_presented(tmp_path):
    """After ground found no box, the nano planner answered "The circle is in the box shown."."""
    from vitron.graphs import Context, build_graph, user_message

    context = Context(profile="nano", workspace=str(tmp_path / "ws"), device="cpu")
    white = np.full((64, 64, 3), 255, np.uint8)
    blank = context.services().workspace.for_thread("t").put_image(white)
    inputs = {"messages": [user_message("Put a bounding box on the circle.", media=[blank])],
              "media": {blank.handle: blank.to_state()}}  # fmt: skip
    out = build_graph(ChatVitron()).invoke(inputs, {"configurable": {"thread_id": "t"}},
                                           context=context)  # fmt: skip
    results = [m for m in out["messages"] if isinstance(m, ToolMessage)]
    assert [(m.name, m.status) for m in results] == [("ground", "success")], out["messages"]
    assert results[0].artifact[NOTHING_FOUND]
    answer = out["messages"][-1]
    assert answer.content.startswith("ground found nothing: no boxes for 'the circle'"), answer
