"""generate_image on the tiny profile: Stable Diffusion and GLIGEN, seeds, progress, errors."""

from __future__ import annotations

import numpy as np
import pytest
from langgraph.graph import START, StateGraph
from typing_extensions import TypedDict

from vitron.tools.backend import CallContext, Services, build_tools
from vitron.tools.backends.generate_image import GenerateImageArgs, generate_image
from vitron.tools.profiles import load_profile
from vitron.tools.registry import ModelRegistry
from vitron.tools.workspace import Workspace


def pixels(workspace, handle: str) -> np.ndarray:
    return np.asarray(workspace.get_image(handle))


def test_makes_an_image_of_the_asked_size(invoke, workspace):
    message = invoke(
        "generate_image", instruction="a red ball on grass", seed=1, width=48, height=32
    )
    assert message.status == "success", message.content
    handle = message.artifact["image"]
    assert handle.startswith("img_") and handle in message.content
    info = workspace.describe(handle)
    assert (info.width, info.height, info.source) == (48, 32, "generate_image")
    assert info.extra["seed"] == 1
    assert pixels(workspace, handle).shape == (32, 48, 3)


def test_default_size_comes_from_the_profile_and_sizes_snap_to_multiples_of_8(invoke, workspace):
    default = invoke("generate_image", instruction="a cat", seed=0)
    assert workspace.describe(default.artifact["image"]).width == 32  # tiny profile default
    odd = invoke("generate_image", instruction="a cat", seed=0, width=35, height=29)
    info = workspace.describe(odd.artifact["image"])
    assert (info.width, info.height) == (32, 32)


def test_same_seed_same_pixels_other_seed_other_pixels(invoke, workspace):
    first = invoke("generate_image", instruction="a cat", seed=7).artifact["image"]
    again = invoke("generate_image", instruction="a cat", seed=7).artifact["image"]
    other = invoke("generate_image", instruction="a cat", seed=8).artifact["image"]
    assert first == again
    assert not np.array_equal(pixels(workspace, first), pixels(workspace, other))


def test_seed_is_chosen_and_reported_when_not_given(invoke, workspace):
    message = invoke("generate_image", instruction="a cat")
    seed = message.artifact["seed"]
    assert f"seed {seed}" in message.content
    again = invoke("generate_image", instruction="a cat", seed=seed)
    assert again.artifact["image"] == message.artifact["image"]


def test_regions_with_phrases_use_gligen(invoke, workspace):
    boxes = [[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]]
    grounded = invoke(
        "generate_image", instruction="a cat and a dog", regions=boxes,
        phrases=["a cat", "a dog"], seed=3,
    )  # fmt: skip
    assert grounded.status == "success", grounded.content
    assert (
        "GLIGEN" in grounded.content
        and "'a dog' in [0.500, 0.500, 1.000, 1.000]" in grounded.content
    )
    moved = invoke(
        "generate_image", instruction="a cat and a dog", regions=boxes[::-1],
        phrases=["a cat", "a dog"], seed=3,
    )  # fmt: skip
    plain = invoke("generate_image", instruction="a cat and a dog", seed=3)
    images = [pixels(workspace, m.artifact["image"]) for m in (grounded, moved, plain)]
    assert images[0].shape == (32, 32, 3)
    assert not np.array_equal(images[0], images[1])  # the boxes steer the result
    assert not np.array_equal(images[0], images[2])


def test_a_profile_can_draw_layouts_as_collages_at_any_size(tmp_path):
    """``pipeline = "collage"`` in the gligen role (what nano sets, since its GLIGEN does not
    place): the same call, drawn phrase by phrase by text-to-image and put in the boxes."""
    profile = tmp_path / "collage.toml"
    profile.write_text('name = "collage"\nextends = "tiny"\n[components.gligen]\n'
                       'loader = "diffusion"\npipeline = "collage"\ncheckpoint = "tiny"\n'
                       "steps = 2\n")  # fmt: skip
    services = Services(workspace=Workspace(tmp_path / "ws"),
                        models=ModelRegistry(load_profile(str(profile)), device="cpu"))  # fmt: skip
    tool = {t.name: t for t in build_tools(services)}["generate_image"]
    args = {"instruction": "a cat and a dog on a grey background", "phrases": ["a cat", "a dog"],
            "regions": [[0.0, 0.0, 0.5, 0.5], [0.5, 0.25, 1.0, 1.0]], "seed": 2, "width": 48, "height": 32}  # fmt: skip
    message = tool.invoke({"type": "tool_call", "id": "c", "name": "generate_image", "args": args},
                          {"configurable": {"thread_id": "t"}})  # fmt: skip
    assert message.status == "success", message.content
    assert "(a Stable Diffusion collage, each phrase drawn alone, seed 2" in message.content
    assert "'a dog' in [0.500, 0.250, 1.000, 1.000]" in message.content
    image = services.workspace.for_thread("t").get_image(message.artifact["image"])
    assert image.size == (48, 32)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"regions": [[0.1, 0.1, 0.5, 0.5]]}, "one phrase per region"),
        ({"phrases": ["a cat"]}, "regions and phrases go together"),
        ({"regions": [[0.1, 0.1, 0.5, 0.5]], "phrases": ["a", "b"]}, "1 regions but 2 phrases"),
        ({"regions": [[0.5, 0.5, 1.2, 0.9]], "phrases": ["a cat"]}, "outside the media"),
        ({"regions": [[0.5, 0.5, 0.2, 0.9]], "phrases": ["a cat"]}, "inverted"),
        ({"width": 4096}, "width"),
        ({"steps": 0}, "steps"),
        ({"instruction": "  "}, "describe the image"),
    ],
)
def test_bad_arguments_are_error_messages(invoke, args, expected):
    message = invoke("generate_image", **{"instruction": "a cat", **args})
    assert message.status == "error"
    assert expected in message.content


def test_each_denoising_step_reports_progress(services, workspace):
    events: list[dict] = []
    call = CallContext(workspace=workspace, models=services.models, progress=events.append)
    generate_image(GenerateImageArgs(instruction="a cat", seed=0, steps=3), call)
    steps = [e for e in events if e["event"] == "step"]
    assert [e["step"] for e in steps] == [1, 2, 3]
    assert all(e["total"] == 3 and e["pipeline"] == "text_to_image" for e in steps)

    events.clear()
    grounded = GenerateImageArgs(
        instruction="a cat", regions=[[0.2, 0.2, 0.8, 0.8]], phrases=["a cat"], seed=0, steps=2
    )
    generate_image(grounded, call)
    assert [e["step"] for e in events if e["event"] == "step"] == [1, 2]


def test_progress_streams_as_langgraph_custom_events(services):
    """Inside a graph, step events reach the custom stream (what the CLI and Studio show)."""
    tool = {t.name: t for t in build_tools(services)}["generate_image"]

    class State(TypedDict):
        handle: str

    def node(state: State) -> dict:
        message = tool.invoke(
            {"type": "tool_call", "id": "c1", "name": "generate_image",
             "args": {"instruction": "a cat", "seed": 0, "steps": 2}},
        )  # fmt: skip
        return {"handle": message.artifact["image"]}

    graph = StateGraph(State).add_node("generate", node).add_edge(START, "generate").compile()
    custom = [chunk for chunk in graph.stream({"handle": ""}, stream_mode="custom")]
    steps = [c for c in custom if c.get("event") == "step"]
    assert [c["step"] for c in steps] == [1, 2]
    assert all(c["tool"] == "generate_image" for c in steps)


def test_missing_checkpoint_names_profile_and_file(tmp_path, services):
    missing = tmp_path / "no-such-sd15"
    profile = tmp_path / "local-sd.toml"
    profile.write_text(
        'name = "local-sd"\n[components.text_to_image]\nloader = "diffusion"\n'
        f'pipeline = "text_to_image"\ncheckpoint = "{missing}"\n'
    )
    broken = Services(
        workspace=services.workspace,
        models=ModelRegistry(load_profile(profile), device="cpu"),
    )
    tool = {t.name: t for t in build_tools(broken)}["generate_image"]
    message = tool.invoke(
        {
            "type": "tool_call",
            "id": "c1",
            "name": "generate_image",
            "args": {"instruction": "a cat"},
        }
    )
    assert message.status == "error"
    assert "'local-sd'" in message.content and str(missing) in message.content
    assert "'text_to_image'" in message.content


def _worded_tool(tmp_path, services, layout_from_words: bool):  # noqa: ANN001, ANN202
    """generate_image on tiny, with the text-to-image entry's ``layout_from_words`` set."""
    profile = tmp_path / "worded.toml"
    profile.write_text(
        'name = "worded"\nextends = "tiny"\n[components.text_to_image]\nloader = "diffusion"\n'
        'pipeline = "text_to_image"\ncheckpoint = "tiny"\nwidth = 32\nheight = 32\nsteps = 2\n'
        f"layout_from_words = {str(layout_from_words).lower()}\n"
    )
    worded = Services(
        workspace=services.workspace, models=ModelRegistry(load_profile(profile), device="cpu")
    )
    return {t.name: t for t in build_tools(worded)}["generate_image"]


def _generate(tool, instruction: str):  # noqa: ANN001, ANN202
    args = {"instruction": instruction, "seed": 5}
    return tool.invoke({"type": "tool_call", "id": "c1", "name": "generate_image", "args": args})


def test_a_worded_place_goes_to_gligen_in_its_box_when_the_profile_asks(tmp_path, services):
    tool = _worded_tool(tmp_path, services, layout_from_words=True)
    left = _generate(tool, "a small red circle on the left on a white background")
    assert left.status == "success", left.content
    assert "GLIGEN" in left.content and "(from 'on the left')" in left.content
    assert "'a small red circle' in [0.160, 0.410, 0.340, 0.590]" in left.content
    right = _generate(tool, "a small red circle on the right on a white background")
    images = [pixels(services.workspace, m.artifact["image"]) for m in (left, right)]
    assert not np.array_equal(images[0], images[1])
    unplaced = _generate(tool, "a small red circle on a white background")  # no place: plain
    assert "Stable Diffusion" in unplaced.content and "GLIGEN" not in unplaced.content


def test_worded_places_stay_words_by_default(tmp_path, services):
    tool = _worded_tool(tmp_path, services, layout_from_words=False)
    message = _generate(tool, "a small red circle on the left on a white background")
    assert "Stable Diffusion" in message.content and "GLIGEN" not in message.content


def test_a_layout_setting_that_is_not_true_or_false_is_a_clear_error(tmp_path, services):
    profile = tmp_path / "bad.toml"
    profile.write_text(
        'name = "bad"\nextends = "tiny"\n[components.text_to_image]\nloader = "diffusion"\n'
        'pipeline = "text_to_image"\ncheckpoint = "tiny"\nlayout_from_words = "yes"\n'
    )
    bad = Services(
        workspace=services.workspace, models=ModelRegistry(load_profile(profile), device="cpu")
    )
    message = _generate({t.name: t for t in build_tools(bad)}["generate_image"], "a red circle")
    assert message.status == "error"
    assert "layout_from_words must be true or false" in message.content
