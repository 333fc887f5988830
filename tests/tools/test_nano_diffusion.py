"""The committed nano diffusion pipelines, called through ``generate_image``, ``generate_video``,
``image_to_video`` and ``edit_image`` (and ``edit_video``'s restyles) as a user (or the planner)
calls them: they load with the unchanged ``diffusion`` loader, make pictures
of the asked size, and follow the text far better than chance on held-out shapes-world samples."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from langchain_core.messages import ToolMessage

from vitron.evals.classifier import load_classifier
from vitron.evals.restyle import judge_restyle, restyle_requests
from vitron.evals.shapes.dataset import make_sample
from vitron.tools.backend import Services, build_tools
from vitron.tools.models.diffusion_engines import (
    CollageEngine,
    InpaintEngine,
    TextToImageEngine,
    VideoToVideoEngine,
)
from vitron.tools.profiles import load_profile
from vitron.tools.registry import ModelRegistry
from vitron.tools.workspace import Workspace

GENERATIONS = range(300, 312)
"""Held-out ``test``-split generation samples (seed 0); training never draws from the splits."""
VIDEOS = range(100, 106)
"""Held-out ``test``-split ``video_generation`` requests (seed 0)."""
RECOLOURS = 8
"""Held-out ``test``-split recolour edits judged (the first ones from index 1)."""
RESTYLES = 6
"""Whole-clip restyle requests judged (:func:`~vitron.evals.restyle.restyle_requests`)."""
ANIMATIONS = range(4)
"""Held-out ``test``-split ``image_to_video`` requests (seed 0)."""
LAYOUTS = range(8)
"""Held-out ``test``-split ``layout`` requests (seed 0)."""


@pytest.fixture(scope="module")
def models() -> ModelRegistry:
    return ModelRegistry(load_profile("nano"), device="cpu")


@pytest.fixture
def tools(models, tmp_path) -> tuple[Callable[..., ToolMessage], Workspace]:
    services = Services(workspace=Workspace(tmp_path / "workspace"), models=models)
    by_name = {tool.name: tool for tool in build_tools(services)}

    def call(name: str, **args: Any) -> ToolMessage:
        message = {"type": "tool_call", "id": f"call_{name}", "name": name, "args": args}
        return by_name[name].invoke(message, {"configurable": {"thread_id": "nano"}})

    return call, services.workspace.for_thread("nano")


def test_the_committed_pipelines_load_with_the_diffusion_loader(models):
    generator, inpainter = models.get("text_to_image"), models.get("inpaint")
    assert isinstance(generator, TextToImageEngine) and isinstance(inpainter, InpaintEngine)
    assert generator.pipe.unet.dtype == torch.float32  # fp16 on disk
    assert generator.pipe.vae_scale_factor == 4 and generator.text_width == 64
    assert inpainter.pipe.unet.config.in_channels == 9
    assert (generator.defaults.width, inpainter.defaults.long_side) == (32, 64)


def test_generate_image_draws_what_held_out_descriptions_ask_for(tools):
    invoke, workspace = tools
    judge = load_classifier()
    hits = {"shape": 0, "colour": 0, "position": 0}
    for index in GENERATIONS:
        sample = make_sample("test", index, tasks=["generation"])
        result = invoke("generate_image", instruction=sample.calls[0].args["instruction"], seed=0)
        assert result.status == "success", result.content
        image = np.asarray(workspace.get_image(result.artifact["image"]).convert("RGB"))
        assert image.shape == (32, 32, 3)
        seen = judge.predict(image)
        for key, want in sample.gold["expected"].items():
            hits[key] += seen[key] == want
    rates = {k: v / len(GENERATIONS) for k, v in hits.items()}
    # chance: shape 0.2, colour 0.17, position 0.33; tiny's random pipeline draws noise. The
    # committed one gets colour (0.96 on 150 test samples), shape (0.83) and position (0.83) right;
    # here, every request starting from seed 0's noise, 12, 9 and 8 of 12 (the UNet before it put
    # the object in the asked place 4 times of 12 from this noise: nano/README.md).
    assert rates["colour"] >= 0.75 and rates["shape"] >= 0.5, rates
    assert rates["position"] >= 0.5, rates


def test_generate_image_puts_each_phrase_of_a_layout_in_its_box(tools, models):
    """nano's GLIGEN does not place, so its layouts are collages of text-to-image drawings
    (``pipeline = "collage"``): an object of the asked shape and colour in its box (IoU >= 0.5
    for its colour's region) for 0.86 of the 160 objects of 100 test requests through the graph;
    nano's trained GLIGEN, 0.03 (nano/README.md). The placement is the tool's; the kind is the model's."""
    from vitron.evals.scoring import judge_layout

    assert isinstance(models.get("gligen"), CollageEngine)
    invoke, workspace = tools
    judge = load_classifier()
    judged = []
    for index in LAYOUTS:
        sample = make_sample("test", index, tasks=["layout"])
        result = invoke("generate_image", **sample.calls[0].args, seed=0)
        assert result.status == "success", result.content
        assert "collage" in result.content and "layout: " in result.content
        image = np.asarray(workspace.get_image(result.artifact["image"]).convert("RGB"))
        assert image.shape == (32, 32, 3)
        judged += judge_layout(judge, image, sample.gold["objects"])
    assert np.mean([j["placed"] for j in judged]) >= 0.8, judged
    assert np.mean([j["hit"] for j in judged]) >= 0.6, judged


def test_generate_video_draws_the_asked_object_on_most_frames_moving_the_asked_way(tools):
    """Eight 32 px frames of held-out requests ("a small red circle moving left on …"): the asked
    shape and colour on 0.75 of the frames over 60 requests (nano/README.md); tiny's random
    pipeline, 0.006. The model alone moves the object any way (0.28, chance 0.25); started from
    noise that drifts the asked way (``drift_noise``), it follows the noise."""
    from vitron.evals.metrics import motion_direction
    from vitron.evals.shapes.vocab import COLOURS

    invoke, workspace = tools
    judge = load_classifier()
    rates, ways = [], []
    for index in VIDEOS:
        sample = make_sample("test", index, tasks=["video_generation"])
        result = invoke("generate_video", instruction=sample.calls[0].args["instruction"], seed=0)
        assert result.status == "success", result.content
        assert result.artifact["noise_drift"] == sample.gold["direction"]
        frames = np.stack(list(workspace.iter_frames(result.artifact["video"])))
        assert frames.shape == (8, 32, 32, 3)
        want = sample.gold["expected"]
        rates.append(np.mean([all(judge.predict(f)[k] == v for k, v in want.items())
                              for f in frames]))  # fmt: skip
        ways.append(motion_direction(frames, want["colour"], COLOURS) == sample.gold["direction"])
    assert np.mean(rates) >= 0.5, rates
    assert np.mean(ways) >= 0.5, ways  # chance 0.25


def test_edit_video_restyles_clips_with_the_text_to_video_weights(tools, models):
    """nano's ``video_to_video`` is the nano text-to-video folder read as diffusers'
    ``VideoToVideoSDPipeline``: a restyle whose caption asks for another background tone repaints
    the background on most frames and keeps the object (over 32 requests at the profile's strength
    0.8, nano/README.md); leaving the clip as it was scores 0 on the background."""
    engine = models.get("video_to_video")
    assert isinstance(engine, VideoToVideoEngine) and engine.defaults.strength == 0.8
    assert (
        engine.pipe.unet.config.sample_size
        == models.get("text_to_video").pipe.unet.config.sample_size
    )
    invoke, workspace = tools
    judge = load_classifier()
    scores = []
    for request in restyle_requests(RESTYLES):
        video = workspace.put_video(list(request.clip.frames), fps=4, lossless=True)
        result = invoke("edit_video", video=video.handle, operation="restyle",
                        instruction=request.prompt, prompt=request.prompt, seed=0)  # fmt: skip
        assert result.status == "success", result.content
        frames = np.stack(list(workspace.iter_frames(result.artifact["video"])))
        assert frames.shape == request.clip.frames.shape
        scores.append(judge_restyle(frames, request, judge))
    background, kept = np.mean(scores, axis=0)
    assert background >= 0.75 and kept >= 0.5, scores


def test_image_to_video_starts_from_the_picture_and_moves_only_the_named_object(tools, models):
    """Eight 64 px frames of held-out requests ("the small red circle moves left"): frame 0 is
    the picture (held to it: 27.8 dB through the stored MP4 over 40 requests, nano/README.md);
    only the named object, boxed by Grounding DINO, and its path may change (``hold_still``), so
    most of every later frame is frame 0 and the other objects stay; the object is carried the
    asked way for half the steps (``carry``) and the model draws it. Objects kept here: 0.29,
    0.33, 0.86 and 0.76 with the whole picture redrawn; 0.71, 1.00, 1.00 and 0.62 now, each
    moved the asked way. The way is the tool's (read from the words), not the model's."""
    from vitron.evals.scoring import judge_animation
    from vitron.tools.models.diffusion_engines import ImageToVideoEngine

    engine = models.get("image_to_video")
    assert isinstance(engine, ImageToVideoEngine)
    assert engine.defaults.hold_first_frame and engine.defaults.hold_still
    assert engine.defaults.carry > 0
    invoke, workspace = tools
    judge = load_classifier()
    judged, unchanged = [], []
    for index in ANIMATIONS:
        sample = make_sample("test", index, tasks=["image_to_video"])
        picture = workspace.put_image(sample.media[0].pixels)
        result = invoke("image_to_video", image=picture.handle,
                        instruction=sample.calls[0].args["instruction"], seed=0)  # fmt: skip
        assert result.status == "success", result.content
        assert " fps, the rest held still (seed 0," in result.content, result.content
        frames = np.stack(list(workspace.iter_frames(result.artifact["video"])))
        assert frames.shape == (8, 64, 64, 3)
        judged.append(judge_animation(frames, sample.gold, judge))
        change = np.abs(frames[1:].astype(int) - frames[0].astype(int)).max(axis=-1)
        unchanged.append(float((change <= 8).mean()))  # the stored MP4 moves a few levels
    assert min(j["psnr_first"] for j in judged) >= 20, judged  # issue 14's floor; noise: 8 dB
    assert min(unchanged) >= 0.3, unchanged
    assert np.mean([j["objects_kept"] for j in judged]) >= 0.6, judged
    assert np.mean([j["direction"] for j in judged]) >= 0.5, judged  # chance 0.25


def _edits(operation: str, count: int) -> list:
    found = []
    for index in range(1, 400):
        sample = make_sample("test", index, tasks=["editing"])
        if sample.gold["operation"] == operation:
            found.append(sample)
        if len(found) == count:
            return found
    raise AssertionError(f"too few {operation} samples")


def test_edit_image_repaints_held_out_objects_and_keeps_the_rest(tools):
    """The editing task's own words ("make the red circle blue") through ``edit_image``: Grounding
    DINO and SAM find the object, the nano inpainting pipeline repaints it, the picture changes
    there and nothing outside the reported area changes, and the classifier reads the asked colour
    and the object's shape inside its box well above chance."""
    invoke, workspace = tools
    judge, right = load_classifier(), 0
    for sample in _edits("recolor", RECOLOURS):
        before = sample.media[0].pixels
        handle = workspace.put_image(before).handle
        result = invoke("edit_image", image=handle, instruction=sample.gold["edit"], seed=0)
        assert result.status == "success", result.content
        after = np.asarray(workspace.get_image(result.artifact["image"]).convert("RGB"))
        assert after.shape == before.shape and not np.array_equal(after, before)
        edited = np.asarray(workspace.get_mask(result.artifact["mask"]), dtype=bool)
        assert edited.any() and not edited.all()
        assert np.array_equal(after[~edited], before[~edited])
        seen = judge.predict(after, sample.gold["box"])
        right += all(seen[k] == v for k, v in sample.gold["expected"].items())
    print(f"recolours right: {right} of {RECOLOURS}")
    # chance (colour and shape right inside the box): about 0.2 for an edit that keeps the shape;
    # the committed pipeline gets 0.49 of 60 held-out recolours right (nano/README.md)
    assert right >= 3, right


def test_a_background_change_restyles_the_background_and_keeps_every_object(tools, models):
    """ "make the background beige" through ``edit_image``: the nano InstructPix2Pix restyles the
    picture and only what SAM's objects leave takes its pixels. The background takes the asked
    tone (100 held-out restyles: 1.00, nano/README.md; left as it was: 0, as the tone asked is
    another) and nothing outside the reported area changes."""
    from vitron.evals.restyle import background_tone

    assert models.get("instruct_pix2pix").pipe.unet.config.in_channels == 8
    invoke, workspace = tools
    right = 0
    for sample in _edits("restyle", 6):
        before = sample.media[0].pixels
        handle = workspace.put_image(before).handle
        result = invoke("edit_image", image=handle, instruction=sample.gold["edit"], seed=0)
        assert result.status == "success", result.content
        assert "restyled the background" in result.content
        after = np.asarray(workspace.get_image(result.artifact["image"]).convert("RGB"))
        edited = np.asarray(workspace.get_mask(result.artifact["mask"]), dtype=bool)
        assert np.array_equal(after[~edited], before[~edited])
        right += background_tone(after, ~sample.gold["region"]) == sample.gold["background"]
    assert right >= 5, right


@pytest.mark.parametrize(("operation", "least"), [("add", 3), ("move", 4)])
def test_adds_and_moves_put_the_object_where_the_words_say(tools, operation, least):
    """ "add a small red circle at the left" is inpainted into the box the words name (nano's
    inpainting draws added objects); "move the red circle up" clears the object and pastes its
    own pixels one own height higher. The classifier reads the object's shape and colour in the
    gold box (where the world puts it) well above chance (about 0.03 for both)."""
    invoke, workspace = tools
    judge, right, ran = load_classifier(), 0, 0
    for sample in _edits(operation, 8):
        before = sample.media[0].pixels
        handle = workspace.put_image(before).handle
        result = invoke("edit_image", image=handle, instruction=sample.gold["edit"], seed=0)
        if result.status != "success":  # a move whose object the detector misses: a clear error
            assert "could not find" in result.content, result.content
            continue
        ran += 1
        after = np.asarray(workspace.get_image(result.artifact["image"]).convert("RGB"))
        edited = np.asarray(workspace.get_mask(result.artifact["mask"]), dtype=bool)
        assert np.array_equal(after[~edited], before[~edited])
        seen = judge.predict(after, sample.gold["box"])
        right += all(seen[k] == v for k, v in sample.gold["expected"].items())
    print(f"{operation}: {right} of 8 right ({ran} ran)")
    assert ran >= 6 and right >= least, (ran, right)
