"""``user_words``: what the user said, apart from the notes the graph adds about what they sent."""

from __future__ import annotations

from langchain_core.messages import HumanMessage

from vitron.agent.chat_model import ChatVitron
from vitron.agent.messages import finish_request, finished_request, user_message, user_words
from vitron.tools.workspace import MediaInfo

IMAGE = MediaInfo(handle="img_0123456789abcdef", kind="img", width=64, height=64)


def test_the_notes_on_attachments_and_regions_are_left_out():
    regions = [{"media": IMAGE.handle, "box": [0.1, 0.2, 0.3, 0.4]},
               {"media": IMAGE.handle, "box": [0.5, 0.5, 0.9, 0.9], "mask": "mask_0123456789ab"}]  # fmt: skip
    message = user_message("Make it look like a painting.", [IMAGE], regions)
    assert "[attached img_0123456789abcdef 64x64 image]" in message.content
    assert user_words(message.content) == "Make it look like a painting."
    # the ingest step's notes, in blocks joined without a separator
    assert user_words(f"[attached {IMAGE.summary()}]make the star red") == "make the star red"
    assert user_words("[attachment not usable: not an image]\nsegment it") == "segment it"
    assert user_words("[draft] make it red [attached]") == "[draft] make it red [attached]"


def test_the_planner_copies_instructions_from_the_users_words_only(tmp_path, monkeypatch):
    """Asked "make it look like a painting", the nano planner wrote
    ``edit_image("make a Attached 64x64")``: the attachment's note was copyable."""
    import vitron.agent.chat_model as chat_model

    requests = []
    steer = chat_model.logits_processors
    monkeypatch.setattr(chat_model, "logits_processors",
                        lambda *a, **kw: requests.append(kw["request"]) or steer(*a, **kw))  # fmt: skip
    planner = ChatVitron(profile="tiny", workspace=str(tmp_path / "ws"), device="cpu",
                         max_new_tokens=2)  # fmt: skip
    text = user_message("make the star red", [IMAGE]).content
    blocks = [{"type": "text", "text": f"[attached {IMAGE.summary()}]"},
              {"type": "text", "text": "make the star red"}]  # fmt: skip
    only_media = user_message("", [IMAGE]).content
    for content in (text, blocks, only_media):
        planner.invoke([HumanMessage(content=content)])
    assert requests == ["make the star red", "make the star red", None]


def test_a_request_gets_the_final_mark_its_user_left_off():
    assert finish_request("move the small star up") == "move the small star up."
    assert finish_request("what shape is the red object") == "what shape is the red object?"
    assert finish_request("Can you make the star red") == "Can you make the star red?"
    assert finish_request("Among these, which one has a red star") == (
        "Among these, which one has a red star?"
    )
    assert (
        finish_request("Where does the square go? track it")
        == "Where does the square go? track it."
    )
    for done in (
        "Segment the star.",
        "Is it red?",
        "Stop!",
        'Say "hi."',
        "(segment it.)",
        "",
        "  ",
    ):
        assert finish_request(done) == done
    # the mark goes after the user's words, not after the notes on what they sent
    text = user_message("segment the star", [IMAGE]).content
    assert finish_request(text) == "segment the star.\n[attached img_0123456789abcdef 64x64 image]"
    assert finish_request(user_message("", [IMAGE]).content) == user_message("", [IMAGE]).content


def test_a_message_in_blocks_gets_it_on_its_last_text_block_of_words():
    blocks = [{"type": "text", "text": "segment the star"},
              {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
              {"type": "text", "text": f"[attached {IMAGE.summary()}]"}]  # fmt: skip
    message = HumanMessage(content=blocks, id="m1")
    finished = finished_request(message)
    assert finished.content[0]["text"] == "segment the star." and finished.id == "m1"
    assert finished.content[1:] == blocks[1:] and blocks[0]["text"] == "segment the star"
    asked = HumanMessage(content=["is there a red star"])
    assert finished_request(asked).content == ["is there a red star?"]
    plain = HumanMessage(content="Segment the star.")
    assert finished_request(plain) is plain
    only_notes = HumanMessage(content=[{"type": "text", "text": f"[attached {IMAGE.summary()}]"}])
    assert finished_request(only_notes) is only_notes


def test_the_profile_option_shows_the_planner_the_finished_request(tmp_path):
    profile = tmp_path / "ends.toml"
    profile.write_text('extends = "tiny"\n[components.vitron_llm]\n'
                       'loader = "vitron.agent.loading:load_vitron_llm"\n'
                       'checkpoint = "tiny"\nend_requests = true\n')  # fmt: skip
    messages = [HumanMessage(content="segment the odd one out")]
    ends = ChatVitron(profile=str(profile), workspace=str(tmp_path / "ws"), device="cpu",
                      max_new_tokens=2)  # fmt: skip
    assert "segment the odd one out." in ends.prompt_text(messages)
    plain = ends.model_copy(update={"profile": "tiny"})
    assert "segment the odd one out." not in plain.prompt_text(messages)
    assert messages[0].content == "segment the odd one out"  # the conversation is not changed
