"""Training conversations word tool results as the tools do (a nano planner keys on the wording:
trained on made-up results it never made a two-step request's second call in the graph).

Each test calls the real tool on the tiny profile and compares the result's skeleton (handles,
quoted text and numbers blanked; the parts that vary between calls dropped) with the training
writer's for the same instruction."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import THREAD
from vitron.agent.training.tool_results import RESULTS, tool_result

OPTIONAL = (
    re.compile(r" \(located (?:on frame N )?by Grounding DINO as Q, score N\)"),
    re.compile(r", with signal H"),
    re.compile(r" Note: .*$"),
    re.compile(r"(; N\. H \(picture N\) score N)+"),  # retrieve: however many are ranked
    re.compile(r"(; [^;\[]+ \[N, N, N, N\] score N)+"),  # ground: however many boxes
)


def skeleton(text: str) -> str:
    """``text`` with handles -> H, quoted text -> Q, numbers -> N, and the optional parts gone."""
    text = re.sub(r"\b(?:img|mask|vid|box|emb)_[0-9a-f]{16}\b", "H", text)
    text = re.sub(r"'[^']*'", "Q", text)
    text = re.sub(r"-?\d+(?:\.\d+)?", "N", text)
    for pattern in OPTIONAL:
        text = pattern.sub("", text)
    return text


def written(name: str, instruction: str, media: str, ranked: tuple[str, ...] = ()) -> set[str]:
    """The skeletons of the training writer's results over a few random draws."""
    return {
        skeleton(tool_result(name, instruction, media, np.random.default_rng(seed), ranked))
        for seed in range(8)
    }


CASES = [
    ("segment_image", "the man", {"box_threshold": 0.0}, "photo"),
    ("ground", "the man", {"box_threshold": 0.0}, "photo"),
    ("edit_image", "make the man red", {"box_threshold": 0.0, "steps": 2}, "photo"),
    ("edit_image", "remove the man", {"box_threshold": 0.0, "steps": 2}, "photo"),
    # the world's worded add and move: GLIGEN into the box the words give, named in the result
    ("edit_image", "add a large purple triangle at the centre", {"steps": 2}, "square"),
    ("edit_image", "move the red square right", {"box_threshold": 0.0, "steps": 2}, "square"),
    ("generate_image", "a red circle on the left", {"steps": 2}, None),
    ("image_to_video", "the man waves", {"steps": 2}, "photo"),
    ("generate_video", "a red circle moving up", {"steps": 2}, None),
    ("track_video", "the square", {"box_threshold": 0.0}, "video"),
    ("edit_video", "make the square blue", {"box_threshold": 0.0, "steps": 2}, "video"),
]


@pytest.fixture
def square(workspace):
    """A red square on grey (96 x 128): on the tiny profile's random SAM its located mask leaves
    room to move right (on the photo it covers everything, so a move has nowhere to go)."""
    image = np.full((96, 128, 3), 90, dtype=np.uint8)
    image[30:60, 40:80] = (220, 30, 30)
    return workspace.put_image(image)


@pytest.mark.parametrize(("name", "instruction", "options", "media"), CASES)
def test_a_training_result_reads_like_the_tools_own(
    invoke, photo, square, square_video, name, instruction, options, media
):
    media_handles = {"photo": photo.handle, "square": square.handle, "video": square_video.handle}
    handle = media_handles.get(media, "")
    key = "video" if media == "video" else "image"
    args = {"instruction": instruction, **options} | ({key: handle} if handle else {})
    message = invoke(name, **args)
    assert message.status == "success", message.content
    assert skeleton(message.text) in written(name, instruction, handle)


def test_an_add_drawn_by_plain_inpainting_reads_like_the_tools_own(services, square, adds_models):
    """nano's inpainting draws added objects (``draws_added_objects``) and the result says
    "(inpainting)" where GLIGEN's says "(GLIGEN)": training words adds both ways."""
    from vitron.tools.backend import Services, build_tools

    services = Services(services.workspace, adds_models)
    tool = {t.name: t for t in build_tools(services)}["edit_image"]
    instruction = "add a large purple triangle at the centre"
    args = {"image": square.handle, "instruction": instruction, "steps": 2}
    call = {"type": "tool_call", "id": "c1", "name": "edit_image", "args": args}
    message = tool.invoke(call, {"configurable": {"thread_id": THREAD}})
    assert message.status == "success", message.content
    assert "(inpainting)" in message.text
    assert skeleton(message.text) in written("edit_image", instruction, square.handle)


def test_a_held_animation_reads_like_the_tools_own(tmp_path, workspace, square, monkeypatch):
    """With ``hold_still`` (nano's), an animation whose object the detector finds says the rest
    was held still; training words half of such animations that way."""
    from vitron.tools.backend import Services, build_tools
    from vitron.tools.backends import image_to_video
    from vitron.tools.models.grounding_dino import Detection
    from vitron.tools.profiles import load_profile
    from vitron.tools.registry import ModelRegistry

    profile = tmp_path / "held.toml"
    profile.write_text(
        'name = "held"\nextends = "tiny"\n[components.image_to_video]\nloader = "diffusion"\n'
        'pipeline = "image_to_video"\ncheckpoint = "tiny"\nwidth = 32\nheight = 32\n'
        "frames = 4\nfps = 4\nsteps = 2\nhold_first_frame = true\nhold_still = true\n"
    )
    found = [Detection(box=[0.3, 0.3, 0.6, 0.6], label="the red square", score=0.9)]
    monkeypatch.setattr(image_to_video, "detect", lambda *args, **kwargs: found)
    models = ModelRegistry(load_profile(profile), device="cpu")
    tool = {t.name: t for t in build_tools(Services(workspace, models))}["image_to_video"]
    instruction = "the red square moves right"
    args = {"image": square.handle, "instruction": instruction, "steps": 2}
    call = {"type": "tool_call", "id": "c1", "name": "image_to_video", "args": args}
    message = tool.invoke(call, {"configurable": {"thread_id": THREAD}})
    assert message.status == "success", message.content
    assert ", the rest held still (" in message.text
    assert skeleton(message.text) in written("image_to_video", instruction, square.handle)


def test_retrieve_lists_the_ranking_best_first_as_the_tool_does(invoke, workspace, photo):
    other = workspace.put_image(np.zeros((32, 32, 3), dtype=np.uint8))
    message = invoke("retrieve", instruction="a man")
    assert message.status == "success", message.content
    ranked = (photo.handle, other.handle)
    assert skeleton(message.text) in written("retrieve", "a man", "", ranked)
    text = tool_result("retrieve", "a man", "", np.random.default_rng(0), ranked)
    assert text.index(photo.handle) < text.index(other.handle)


def test_every_tool_has_a_writer_and_an_unknown_one_is_refused():
    import vitron.tools.backends as built_in

    names = {p.stem for p in Path(built_in.__file__).parent.glob("*.py") if p.stem != "__init__"}
    assert len(names) == 9 and names == set(RESULTS)
    with pytest.raises(KeyError, match="no result format"):
        tool_result("paint_fence", "x", "", np.random.default_rng(0))


def test_a_two_step_conversation_works_on_what_the_first_call_made(tmp_path):
    """generate, then a call on the picture: its result names the generated image as its input."""
    from vitron.agent.training.conversations import conversation
    from vitron.evals.shapes.dataset import generate
    from vitron.tools.workspace import Workspace

    samples = generate("train", 24, seed=0, tasks=["multi_step"])
    sample = next(s for s in samples if s.calls[0].name == "generate_image" and not s.media)
    space = Workspace(tmp_path).for_thread(sample.id)
    messages, _ = conversation(sample, space, np.random.default_rng(0))
    first, second = (m.content for m in messages if m.type == "tool")
    made = first.split(":", 1)[0]
    assert made.startswith("img_") and made in second
