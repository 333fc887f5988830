"""Shapes-world records for the nano planner read like the graph's prompts: the system prompt with
the media listing, the user's attached handles, a tool turn after every call and a final answer in
words (so a trained planner stops calling), at most ``ChatVitron.max_media`` media as pixels."""

from __future__ import annotations

from vitron.agent.chat_model import ChatVitron
from vitron.agent.invocation import MODULES
from vitron.agent.training.conversations import MAX_MEDIA, write_conversations
from vitron.agent.training.records import read_jsonl
from vitron.evals.shapes.dataset import make_sample


def test_records_hold_the_graphs_turns_and_end_with_an_answer(tmp_path):
    path = write_conversations(tmp_path, "train", 12)
    records, skipped = read_jsonl(path)
    assert not skipped
    assert len(records) == 12
    assert ChatVitron.model_fields["max_media"].default == MAX_MEDIA
    for index, record in enumerate(records):
        sample = make_sample("train", index)
        roles = [m.role for m in record.messages]
        assert (
            roles[0] == "system" and "media in this conversation" in record.messages[0].text.lower()
        )
        assert roles[1] == "user"
        if sample.media:
            assert "\n[attached " in record.messages[1].text
        assert roles[2:] == ["assistant", "tool"] * len(sample.calls) + ["assistant"]
        assert record.messages[-1].text == sample.answer  # the answer closes the turn
        for k, call in enumerate(sample.calls):
            reply, tool = record.messages[2 + 2 * k], record.messages[3 + 2 * k]
            assert reply.text.startswith(f"<Module>{call.name}</Module>")
            assert tool.text.startswith(f"{call.name} returned: ")
        assert record.task == (sample.calls[0].name if sample.calls else None)
        assert len(record.media) == min(len(sample.media), MAX_MEDIA)
        assert [s.token for s in record.signals] == record.signal_tokens()
        assert all(
            MODULES[c.name].signal_token in (None, *record.signal_tokens()) for c in sample.calls
        )


def test_the_nano_planner_reads_its_own_short_instructions_and_the_media_listing(tmp_path):
    from vitron.agent.inputs import ChatTemplate
    from vitron.agent.training.nano import NANO_PLANNER_PROMPT
    from vitron.prompts import load_prompt

    listing = "Media in this conversation:\n- img_0123456789abcdef 64x64 image, from the user"
    generic = f"{load_prompt('system')}\n\n{listing}"
    own = ChatTemplate(planner_prompt=NANO_PLANNER_PROMPT)
    text = own.render([("system", generic), ("user", "hi")], "</s>")
    assert text.startswith(f"{NANO_PLANNER_PROMPT}\n\n{listing} USER: hi")
    assert load_prompt("system") not in text
    custom = "You are a pirate.\n\n" + listing  # a system prompt of the user's own is kept
    assert own.render([("system", custom)], "</s>").startswith(custom)
    assert ChatTemplate().render([("system", generic)], "</s>").startswith(generic)


def test_the_same_seed_writes_the_same_conversations(tmp_path):
    """Tool results in the conversations carry made-up handles; drawn from the seed, not fresh
    randomness, so two runs of one ``--seed`` train the same planner (they trained different
    ones, and the micro pipeline's test passed or failed by chance)."""
    first = write_conversations(tmp_path / "a", "train", 24, seed=3).read_text()
    second = write_conversations(tmp_path / "b", "train", 24, seed=3).read_text()
    assert "mask_" in first and first == second
    assert write_conversations(tmp_path / "c", "train", 24, seed=4).read_text() != first
