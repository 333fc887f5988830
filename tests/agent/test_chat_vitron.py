"""ChatVitron on its own: binding tools, what the model reads, decoding (constrained, streamed,
stopped), signal handles, parse errors, and loading through the model registry."""

from __future__ import annotations

import base64
import io
import logging
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.runnables import RunnableBinding
from langchain_core.tools import tool
from PIL import Image

from vitron.agent.build import build_tiny_vitron, save_vitron
from vitron.agent.chat_model import ChatVitron
from vitron.agent.inputs import RegionInput, VideoInput
from vitron.agent.invocation import MODULES
from vitron.agent.rendering import PARSE_ERROR_NOTE, box_mask
from vitron.agent.reply import ReplyText
from vitron.graphs import build_graph, user_message
from vitron.tools.backend import ServiceSettings, build_tools, get_services
from vitron.tools.errors import MissingCheckpointError

THREAD = "test-thread"  # conftest's workspace fixture namespace


@pytest.fixture(scope="module")
def tiny():
    return build_tiny_vitron(seed=0)


@pytest.fixture
def chat(tiny, services):
    """A ChatVitron around the random tiny model, storing into the test's workspace."""
    model, processor = tiny
    return ChatVitron.from_model(
        model, processor, workspace=str(services.workspace.root), device="cpu", max_new_tokens=24
    )


@tool
def count_things(text: str) -> int:
    """A tool the Vitron grammar cannot name."""
    return len(text)


# ---------------------------------------------------------------------------- binding tools


def test_bind_tools_maps_modules_and_rejects_unknown_tools_by_name(chat):
    tools = build_tools(names=["segment_image", "ground"])
    bound = chat.bind_tools(tools)
    assert isinstance(bound, RunnableBinding)
    assert [t["function"]["name"] for t in bound.kwargs["tools"]] == ["segment_image", "ground"]
    assert bound.kwargs["tool_choice"] == "auto"

    with pytest.raises(ValueError, match="count_things") as error:
        chat.bind_tools([*tools, count_things])
    assert all(name in str(error.value) for name in MODULES)
    assert "unknown_tools='ignore'" in str(error.value)

    with pytest.raises(ValueError, match="not bound"):
        chat.bind_tools(tools, tool_choice="track_video")
    assert chat.bind_tools(tools, tool_choice="required").kwargs["tool_choice"] == "any"
    named = {"type": "function", "function": {"name": "ground"}}
    assert chat.bind_tools(tools, tool_choice=named).kwargs["tool_choice"] == "ground"


def test_unknown_tools_can_be_ignored_and_the_graph_does_so_for_plug_ins(chat, caplog):
    with caplog.at_level(logging.WARNING):
        bound = chat.bind_tools(
            [count_things, *build_tools(names=["ground"])], unknown_tools="ignore"
        )
    assert [t["function"]["name"] for t in bound.kwargs["tools"]] == ["ground"]
    assert "count_things" in caplog.text
    # the graph binds every tool; the plug-in keeps its node for other planners
    graph = build_graph(ChatVitron(), [count_things, *build_tools(names=["ground"])])
    assert {"count_things", "ground", "vitron_llm"} <= set(graph.nodes)


def test_per_call_settings_are_checked(chat):
    with pytest.raises(ValueError, match="temprature"):
        chat.invoke("hi", temprature=0.5)
    with pytest.raises(ValueError, match="top_p"):
        chat.invoke("hi", top_p=0.0)


# ---------------------------------------------------------------------------- what the model reads


def test_rendering_loads_handles_regions_blocks_and_escapes_placeholders(
    chat, workspace, photo, square_video
):
    sketch = np.zeros((512, 512), dtype=bool)
    sketch[100:300, 150:200] = True
    sketch[250:300, 150:400] = True  # an L shape: not its bounding box
    stored = workspace.put_mask(sketch)
    buffer = io.BytesIO()
    Image.fromarray(np.full((20, 30, 3), 50, dtype=np.uint8)).save(buffer, format="PNG")
    inline = {"type": "image", "base64": base64.b64encode(buffer.getvalue()).decode()}
    messages = [
        SystemMessage("be brief"),
        user_message(
            "what is <image> here?",
            media=[photo],
            regions=[
                {"media": photo.handle, "box": [0.25, 0.5, 0.5, 1.0]},
                {"media": photo.handle, "box": [0.29, 0.19, 0.79, 0.59], "mask": stored.handle},
            ],
        ),
        HumanMessage(
            content=[
                {"type": "text", "text": f"and {square_video.handle}#2, {square_video.handle}"},
                inline,
            ]
        ),
    ]
    rendered = chat.render(messages, thread_id=THREAD)
    assert (rendered.images, rendered.videos, rendered.regions) == (3, 1, 2)
    assert rendered.media == {"image": f"{square_video.handle}#2", "video": square_video.handle}
    system, first, second = rendered.turns
    assert system.role == "system" and system.content == "be brief"

    image, text, _, box, _, sketched = first.content
    assert isinstance(image, Image.Image) and image.size == (512, 512)
    assert "what is \u2039image\u203a here?" in text and photo.handle in text
    assert isinstance(box, RegionInput) and box.image == 0
    assert np.array_equal(box.mask, box_mask([0.25, 0.5, 0.5, 1.0], 512, 512))
    assert box.mask[256:, 128:256].all() and box.mask.sum() == 256 * 128
    assert np.array_equal(sketched.mask, sketch)  # the sketch keeps its shape

    block, frame, video, _ = second.content
    assert isinstance(block, Image.Image) and block.size == (30, 20)
    assert isinstance(frame, Image.Image) and frame.size == (64, 48)
    assert isinstance(video, VideoInput) and len(video.frames) == 6
    assert video.timestamps == pytest.approx([t / 4 for t in range(6)])

    prompt = chat.prompt_text(messages, thread_id=THREAD)  # encodes: placeholder counts agree
    assert prompt.count("<image>") == 3 and prompt.count("<region>") == 2
    batch = chat._engine.processor.encode_chat(rendered.turns)
    assert batch["pixel_values"].shape[0] == 3 and batch["region_masks"].shape[0] == 2


def test_prompts_show_only_the_latest_media_as_pixels_older_ones_as_handles(
    chat, workspace, photo, square_video
):
    pictures = [workspace.put_image(np.full((16, 16, 3), 20 * k, dtype=np.uint8)) for k in range(5)]
    messages = [user_message(f"look at {p.handle}") for p in pictures]
    messages.append(user_message("and this", media=[square_video]))
    messages.append(
        user_message(
            "this region", regions=[{"media": pictures[0].handle, "box": [0, 0, 0.5, 0.5]}]
        )
    )
    everything = chat.model_copy(update={"max_media": None}).render(messages, thread_id=THREAD)
    assert (everything.images, everything.videos) == (5, 1)

    capped = chat.model_copy(update={"max_media": 2})
    rendered = capped.render(messages, thread_id=THREAD)
    # the last two media (picture 4 and the video) plus the image the last region is drawn on
    assert (rendered.images, rendered.videos, rendered.regions) == (2, 1, 1)
    text = " ".join(str(p) for turn in rendered.turns for p in turn.content if isinstance(p, str))
    for older in pictures[1:4]:  # no pixels, but still named where the user named them
        assert older.handle in text
    shown = [p for turn in rendered.turns for p in turn.content if isinstance(p, Image.Image)]
    assert [im.getpixel((0, 0))[0] for im in shown] == [0, 80]  # pictures 0 (region) and 4
    region = next(p for turn in rendered.turns for p in turn.content if isinstance(p, RegionInput))
    assert region.image == 0  # picture 0 is now the first image shown
    prompt = capped.prompt_text(messages, thread_id=THREAD)  # encodes: counts agree
    assert prompt.count("<image>") == 2 and prompt.count("<video>") == 1
    full = chat.model_copy(update={"max_media": None})
    processor = chat._engine.processor
    shorter = processor.encode_chat(rendered.turns)["input_ids"].shape[1]
    longer = processor.encode_chat(full.render(messages, thread_id=THREAD).turns)
    assert shorter < longer["input_ids"].shape[1]


def test_rendering_writes_tool_calls_in_the_grammar_and_shows_results(chat, workspace, photo):
    call = {
        "name": "segment_image",
        "args": {"image": photo.handle, "instruction": "the face", "regions": [[0.2, 0.1, 0.6, 0.5]],
                 "signal": "emb_0123456789abcdef"},
        "id": "c1",
    }  # fmt: skip
    foreign = {"name": "count_things", "args": {"text": "abc"}, "id": "c2"}
    messages = [
        user_message("segment the face", media=[photo]),
        AIMessage(content="On it.", tool_calls=[call, foreign]),
        ToolMessage("mask_00112233445566ff covers 3.0%", tool_call_id="c1", name="segment_image",
                    artifact={"masks": ["mask_00112233445566ff"], "image": "img_aaaaaaaaaaaaaaaa"}),
        ToolMessage("no such tool", tool_call_id="c2", name="count_things", status="error"),
    ]  # fmt: skip
    rendered = chat.render(messages, thread_id=THREAD)
    _, assistant, result, failure = rendered.turns
    assert assistant.content == (
        "On it. <Module>segment_image</Module><Instruction>the face</Instruction>"
        "<Region>(200, 100, 599, 500)</Region>[SEG] (called count_things(text='abc'))"
    )
    assert result.content == "segment_image returned: mask_00112233445566ff covers 3.0%"
    assert failure.content == "count_things failed: no such tool"
    assert rendered.media["image"] == "img_aaaaaaaaaaaaaaaa"  # a tool's main output is "it" now


# ---------------------------------------------------------------------------- decoding


def test_streamed_text_holds_back_markup_stop_sequences_and_trailing_space():
    pieces = {1: "Sure", 2: ",", 3: " the", 4: " EN", 5: "D", 6: " <Module>", 7: "x", 8: "[SEG]"}

    def decode(ids):
        return "".join(pieces[i] for i in ids)

    reply = ReplyText(decode, stop=["END"])
    assert [reply.add(i) for i in (1, 2, 3, 4, 5)] == ["Sure", ",", " the", "", ""]
    assert reply.stopped and reply.finish().text == "Sure, the "

    reply = ReplyText(decode, signal_ids={8: "[SEG]"})
    assert [reply.add(i) for i in (1, 6, 7, 8, 2, 8)] == ["Sure", "", "", "", "", ""]
    finished = reply.finish()
    assert finished.text == "Sure <Module>x[SEG],[SEG]" and finished.signal_steps == [3, 5]
    assert reply.rest("Sure <Module>x[SEG],[SEG]") == " <Module>x[SEG],[SEG]"


def test_invoke_fills_usage_and_stream_adds_up_to_invoke_token_by_token(chat, workspace, photo):
    bound = chat.bind_tools(build_tools(names=["segment_image", "ground"]), tool_choice="any")
    messages = [user_message("segment the astronaut", media=[photo])]
    settings = {"temperature": 1.0, "seed": 3, "constrained": True, "max_new_tokens": 40,
                "thread_id": THREAD}  # fmt: skip
    message = bound.invoke(messages, **settings)
    chunks = list(bound.stream(messages, **settings))

    usage = message.usage_metadata
    assert 0 < usage["output_tokens"] <= 40 and usage["input_tokens"] > 64
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert len(chunks) == usage["output_tokens"] + 1  # one per token, then the calls
    assert all(not c.tool_call_chunks for c in chunks[:-1])
    streamed = chunks[0]
    for chunk in chunks[1:]:
        streamed += chunk
    assert streamed.content == message.content
    assert streamed.usage_metadata == usage
    assert [(c["name"], c["args"]) for c in streamed.tool_calls] == [
        (c["name"], c["args"]) for c in message.tool_calls
    ]
    assert message.tool_calls and message.tool_calls[0]["args"]["image"] == photo.handle
    assert message.response_metadata["parse_errors"] == []


def test_constrained_decoding_through_chat_vitron_only_gives_calls_that_parse(
    chat, workspace, photo, square_video
):
    bound_names = ["segment_image", "ground", "generate_image", "track_video"]
    bound = chat.bind_tools(build_tools(names=bound_names), tool_choice="any")
    messages = [user_message("do something", media=[photo, square_video])]
    calls = 0
    for seed in range(24):
        message = bound.invoke(messages, temperature=1.0, seed=seed, constrained=True,
                               max_new_tokens=40, thread_id=THREAD)  # fmt: skip
        assert message.response_metadata["parse_errors"] == [], message.content
        assert message.tool_calls
        for call in message.tool_calls:
            calls += 1
            name, args = call["name"], call["args"]
            assert name in bound_names and args["instruction"]
            assert all(0.0 <= v <= 1.0 for box in args.get("regions", []) for v in box)
            media = MODULES[name].media
            assert (
                media is None
                or args[media] == {"image": photo.handle, "video": square_video.handle}[media]
            )
            if MODULES[name].signal_token is None:
                assert "signal" not in args
                continue
            if "signal" not in args:  # optional; test_vitron_7b_path covers signals end to end
                continue
            embedding = workspace.get_embedding(args["signal"])
            assert embedding.shape == ({"generate_image": 32}.get(name, 64),)
    assert calls >= 24


def test_malformed_output_is_kept_with_parse_errors_and_shown_next_turn(chat, workspace, photo):
    bound = chat.bind_tools(build_tools(names=["segment_image"]), tool_choice="segment_image")
    messages = [user_message("segment it", media=[photo])]
    message = bound.invoke(messages, temperature=1.0, seed=0, constrained=False, thread_id=THREAD)
    errors = message.response_metadata["parse_errors"]
    assert errors and not message.tool_calls
    assert message.content.startswith("<Module>segment_image</Module>")  # the text is kept

    follow_up = [*messages, message, HumanMessage("try again")]
    prompt = chat.prompt_text(follow_up, thread_id=THREAD)
    note = PARSE_ERROR_NOTE.format(errors="; ".join(errors))
    assert f"TOOL: {note}" in prompt
    assert prompt.index(note) < prompt.index("USER: try again")


def test_stop_sequences_end_the_reply(chat):
    settings = {"temperature": 1.0, "seed": 5, "max_new_tokens": 24}
    full = chat.invoke("tell me", **settings)
    stop = next(
        full.content[i : i + 3]
        for i in range(4, len(full.content) - 3)
        if full.content[i : i + 3].isalpha() and full.content[i : i + 3].isascii()
    )
    cut = chat.invoke("tell me", stop=[stop], **settings)
    assert cut.content == full.content[: full.content.index(stop)].strip()
    assert cut.response_metadata["finish_reason"] == "stop"
    assert cut.usage_metadata["output_tokens"] < full.usage_metadata["output_tokens"]


def test_without_tools_the_model_cannot_open_an_invocation(chat):
    message = chat.invoke("segment the cat", temperature=1.0, seed=1, max_new_tokens=30)
    assert "<Module>" not in message.content and not message.tool_calls


# ---------------------------------------------------------------------------- loading


def test_the_model_loads_lazily_through_the_profile_registry(tmp_path):
    settings = ServiceSettings(profile="tiny", workspace=str(tmp_path / "ws"), device="cpu")
    registry = get_services(settings).models
    chat = ChatVitron(profile="tiny", workspace=settings.workspace, device="cpu", max_new_tokens=3)
    assert "vitron_llm" not in registry.loaded()
    message = chat.invoke("hello")
    assert "vitron_llm" in registry.loaded()
    engine = registry.get("vitron_llm")
    assert registry.used_bytes() >= engine.nbytes > 0
    assert message.response_metadata["model_name"] == "tiny"
    assert engine.constrained is False  # tiny.toml's default


def test_a_saved_checkpoint_loads_from_a_profile_and_a_missing_one_is_named(tmp_path, tiny):
    model, processor = tiny
    save_vitron(model, processor, tmp_path / "llm")
    entry = '[components.vitron_llm]\nloader = "vitron.agent.loading:load_vitron_llm"\n'
    mine, broken = tmp_path / "mine.toml", tmp_path / "broken.toml"
    mine.write_text(
        f'extends = "tiny"\n{entry}checkpoint = "{tmp_path / "llm"}"\nconstrained = true\n'
    )
    broken.write_text(f'extends = "tiny"\n{entry}checkpoint = "{tmp_path / "nowhere"}"\n')
    workspace = str(tmp_path / "ws")

    chat = ChatVitron(profile=str(mine), workspace=workspace, device="cpu", max_new_tokens=2)
    chat.invoke("hello")
    settings = ServiceSettings(profile=str(mine), workspace=workspace, device="cpu")
    engine = get_services(settings).models.get("vitron_llm")
    assert engine.constrained is True and engine.name == str(tmp_path / "llm")
    loaded = dict(engine.model.named_parameters())
    assert all(torch.equal(p, loaded[n]) for n, p in model.named_parameters())

    with pytest.raises(MissingCheckpointError, match="'vitron_llm' of profile 'broken'"):
        ChatVitron(profile=str(broken), workspace=workspace, device="cpu").invoke("hello")


def test_studio_graph_builds_with_chat_vitron_and_loads_nothing():
    code = (
        "import sys\n"
        "import vitron.graphs.studio as studio\n"
        "from vitron.tools import backend\n"
        "assert 'vitron_llm' in studio.graph.nodes\n"
        "assert 'vitron.agent.modeling' not in sys.modules, 'model code imported'\n"
        "assert not backend._services_cache, 'services created at import'\n"
        "print('ok')\n"
    )
    env = {**os.environ, "VITRON_PROFILE": "tiny", "HF_HUB_OFFLINE": "1"}
    env.pop("VITRON_PLANNER", None)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
    from vitron.graphs.planner import default_planner

    assert isinstance(default_planner(), ChatVitron)


def test_outside_a_graph_the_model_is_the_default_profiles_unless_named(monkeypatch, tmp_path):
    from vitron.tools.defaults import DEFAULT_PROFILE

    monkeypatch.delenv("VITRON_PROFILE", raising=False)
    workspace = str(tmp_path / "ws")
    assert ChatVitron(workspace=workspace)._services().models.profile.name == DEFAULT_PROFILE
    monkeypatch.setenv("VITRON_PROFILE", "tiny")
    assert ChatVitron(workspace=workspace)._services().models.profile.name == "tiny"
    named = ChatVitron(profile="tiny", workspace=workspace)
    assert named._services().models.profile.name == "tiny"


def test_retrieve_ranks_the_media_the_request_attached(chat, workspace):
    """Without a media list ``retrieve`` ranks the whole conversation; ChatVitron fills the list
    with what the request attached (the demo's "find the image with …" ranked its ten pictures
    and the ten of earlier turns), and leaves a request with nothing attached alone."""
    pictures = [workspace.put_image(np.full((16, 16, 3), 40 * k, dtype=np.uint8)) for k in range(3)]
    bound = chat.bind_tools(build_tools(names=["retrieve"]), tool_choice="retrieve")
    settings = {"temperature": 1.0, "seed": 0, "constrained": True, "thread_id": THREAD}
    earlier = [user_message("a picture", media=[pictures[0]]), AIMessage("Got it.")]
    asked = [*earlier, user_message("find the darkest one", media=pictures[1:])]
    (call,) = bound.invoke(asked, **settings).tool_calls
    assert call["name"] == "retrieve" and call["args"]["media"] == [p.handle for p in pictures[1:]]
    (call,) = bound.invoke([*earlier, HumanMessage("find the darkest one")], **settings).tool_calls
    assert "media" not in call["args"]  # the whole conversation, as retrieve's default


def test_a_reply_caught_in_a_loop_is_stopped_there():
    """Out of its depth the nano planner wrote "I generated a video ofsegment_imagesegment_image…"
    up to its 256-token limit; a run repeated four times in a row now ends the reply."""
    reply = ReplyText(lambda ids: "".join(f"<{i}>" for i in ids))
    for token in (1, 2, 3, 7, 8, 9, 7, 8, 9, 7, 8):
        reply.add(token)
    assert not reply.looping()  # three runs of (7, 8, 9) and a part: not yet
    reply.add(9)
    reply.add(7)
    assert not reply.looping()
    for token in (8, 9):
        reply.add(token)
    assert reply.looping()  # four in a row
    same = ReplyText(lambda ids: "x" * len(ids))
    for _ in range(7):
        same.add(5)
    assert not same.looping()  # seven of one token: a digit run such as 1111111 is not a loop
    same.add(5)
    assert same.looping()


def test_chat_vitron_ends_a_looping_reply_with_finish_reason_loop(chat, monkeypatch):
    import vitron.agent.decoding as decoding

    def looping_tokens(model, batch, settings, processors, eos):
        word = chat._load_engine(chat._services()).processor.tokenizer.encode(
            " segment", add_special_tokens=False
        )
        for k in range(settings.max_new_tokens):
            yield decoding.TokenStep(word[k % len(word)], torch.zeros(8))

    monkeypatch.setattr(decoding, "generate_tokens", looping_tokens)
    message = chat.invoke("hello", max_new_tokens=200)
    assert message.response_metadata["finish_reason"] == "loop"
    assert message.usage_metadata["output_tokens"] <= 8 * 4
