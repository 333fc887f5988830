"""``user_words``: what the user said, apart from the notes the graph adds about what they sent."""

from __future__ import annotations

from langchain_core.messages import HumanMessage

from vitron.agent.chat_model import ChatVitron
from vitron.graphs.messages import user_message, user_words
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
