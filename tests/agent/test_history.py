"""What part of a long conversation ChatVitron shows its model: the last ``history_turns``
exchanges (set per call or by the profile), and never more than the backbone's positions hold,
dropping the oldest exchanges first and never the current one."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from vitron.agent.build import build_tiny_vitron, save_vitron
from vitron.agent.chat_model import ChatVitron
from vitron.agent.history import exchange_starts, last_exchanges
from vitron.tools.backend import ServiceSettings, get_services

THREAD = "test-thread"


def conversation(requests: int) -> list:
    """A system message, then ``requests`` exchanges: a request, a call, its result, an answer."""
    messages = [SystemMessage(content="Media in this conversation: none.")]
    for k in range(requests):
        messages += [
            HumanMessage(content=f"request number {k} about the blue circle"),
            AIMessage(
                content="",
                tool_calls=[
                    {"name": "ground", "args": {"instruction": f"c{k}"}, "id": f"call_{k}"}
                ],
            ),  # fmt: skip
            ToolMessage(content=f"box_{k} boxes", name="ground", tool_call_id=f"call_{k}"),
            AIMessage(content=f"answer number {k}"),
        ]
    return messages


@pytest.fixture(scope="module")
def tiny():
    return build_tiny_vitron(seed=0)


@pytest.fixture
def chat(tiny, services):
    model, processor = tiny
    return ChatVitron.from_model(model, processor, workspace=str(services.workspace.root),
                                 device="cpu", max_new_tokens=8)  # fmt: skip


def test_last_exchanges_keeps_system_messages_and_whole_exchanges():
    messages = conversation(3)
    assert exchange_starts(messages) == [1, 5, 9]
    kept = last_exchanges(messages, 1)
    assert kept == [messages[0], *messages[9:]]  # the request with its call, result and answer
    assert last_exchanges(messages, 3) == messages and last_exchanges(messages, None) == messages
    late_system = [*messages[:5], SystemMessage(content="note"), *messages[5:]]
    assert SystemMessage(content="note") in last_exchanges(late_system, 1)


def test_history_turns_shows_only_the_latest_requests(chat):
    messages = conversation(3)
    everything = chat.prompt_text(messages, thread_id=THREAD)
    assert all(f"request number {k}" in everything for k in range(3))
    one = chat.model_copy(update={"history_turns": 1}).prompt_text(messages, thread_id=THREAD)
    assert "request number 2" in one and "answer number 2" in one
    assert "request number 0" not in one and "request number 1" not in one
    assert "Media in this conversation" in one  # the system message stays


def test_the_oldest_exchanges_are_dropped_to_fit_the_context_never_the_current(chat):
    messages = conversation(6)
    processor, positions = chat._engine.processor, chat._engine.max_positions
    last_two = chat.model_copy(update={"history_turns": 2}).render(messages, thread_id=THREAD)
    room = positions - processor.encode_chat(last_two.turns)["input_ids"].shape[1]
    fitted = chat.model_copy(update={"max_new_tokens": room})  # the last two exchanges just fit
    text = fitted.prompt_text(messages, thread_id=THREAD)
    assert "request number 4" in text and "request number 5" in text
    assert "request number 3" not in text
    no_room = chat.model_copy(update={"max_new_tokens": positions})  # not even the current fits
    text = no_room.prompt_text(messages, thread_id=THREAD)
    assert "request number 5" in text and "request number 4" not in text


def test_the_profile_sets_the_default_window(tmp_path, tiny):
    model, processor = tiny
    save_vitron(model, processor, tmp_path / "llm")
    profile = tmp_path / "windowed.toml"
    profile.write_text('extends = "tiny"\n[components.vitron_llm]\n'
                       'loader = "vitron.agent.loading:load_vitron_llm"\n'
                       f'checkpoint = "{tmp_path / "llm"}"\nhistory_turns = 1\n')  # fmt: skip
    workspace = str(tmp_path / "ws")
    chat = ChatVitron(profile=str(profile), workspace=workspace, device="cpu", max_new_tokens=2)
    text = chat.prompt_text(conversation(2), thread_id=THREAD)
    assert "request number 1" in text and "request number 0" not in text
    engine = get_services(ServiceSettings(profile=str(profile), workspace=workspace,
                                          device="cpu")).models.get("vitron_llm")  # fmt: skip
    assert engine.history_turns == 1
    wider = chat.model_copy(update={"history_turns": 2})  # the model's own setting wins
    assert "request number 0" in wider.prompt_text(conversation(2), thread_id=THREAD)


def test_a_windowed_prompt_lists_only_the_media_its_window_names(chat):
    old, new, made = "img_" + "a" * 16, "img_" + "b" * 16, "mask_" + "c" * 16
    listing = (f"Media in this conversation:\n- {old} 64x64 image, from the user\n"
               f"- {new} 64x64 image, from the user\n- {made} 64x64 mask, made by segment_image")  # fmt: skip
    messages = [
        SystemMessage(content=f"Use the tools.\n\n{listing}"),
        HumanMessage(content=f"segment the circle\n[attached {old} 64x64 image]"),
        AIMessage(content="done"),
        HumanMessage(content="segment the star", additional_kwargs={"regions": [{"media": new}]}),
        AIMessage(
            content="",
            tool_calls=[{"name": "segment_image", "args": {"image": new}, "id": "call_1"}],
        ),  # fmt: skip
        ToolMessage(
            content=f"{made} 64x64 mask of the star", name="segment_image", tool_call_id="call_1"
        ),  # fmt: skip
    ]
    one = chat.model_copy(update={"history_turns": 1}).prompt_text(messages, thread_id=THREAD)
    assert f"- {new} " in one and f"- {old} " not in one
    # what the request's own call made is named by its result, not listed (nor counted)
    assert f"- {made} " not in one and f"{made} 64x64 mask of the star" in one
    assert "Media in this conversation (1 older not shown):" in one
    everything = chat.prompt_text(messages, thread_id=THREAD)  # no window: the whole listing
    assert listing in everything


def test_a_windowed_prompt_keeps_the_listing_the_request_was_made_with(chat):
    """A planner trained on single requests saw, at every step, the listing written before the
    request's first call; with the generated picture listed before its second call, nano planners
    called generate_image again for half of "generate …, then segment … in it"."""
    made, signal = "img_" + "d" * 16, "emb_" + "e" * 16
    request = HumanMessage(content="Generate a red star, then segment the star in it.")
    call = AIMessage(
        content="",
        tool_calls=[{"name": "generate_image", "args": {"instruction": "a red star"}, "id": "c1"}],
    )  # fmt: skip
    result = ToolMessage(content=f"{made}: 32x32 image of 'a red star' (with signal {signal}).",
                         name="generate_image", tool_call_id="c1")  # fmt: skip
    windowed = chat.model_copy(update={"history_turns": 1})
    first = windowed.prompt_text(
        [SystemMessage(content="Use the tools.\n\nNo media in this conversation yet."), request],
        thread_id=THREAD,
    )
    listing = (f"Media in this conversation:\n- {made} 32x32 image 'a red star', made by "
               f"generate_image from {signal}")  # fmt: skip
    second = windowed.prompt_text(
        [SystemMessage(content=f"Use the tools.\n\n{listing}"), request, call, result],
        thread_id=THREAD,
    )
    assert (
        "No media in this conversation yet." in first
        and "No media in this conversation yet." in second
    )
    assert second.startswith(first.split("USER:")[0]) and "made by generate_image" not in second
    assert f"{made}: 32x32 image of 'a red star'" in second  # the result still names it
    assert listing in chat.prompt_text([SystemMessage(content=listing), request, call, result],
                                       thread_id=THREAD)  # no window: every medium listed  # fmt: skip
