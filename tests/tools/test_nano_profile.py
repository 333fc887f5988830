"""The ``nano`` profile's committed weights are trained: through the tools, as a user calls them,
SAM segments held-out shapes-world objects from a box or a click, CLIP ranks the right image
first of ten, and Grounding DINO boxes the object a referring expression names. Random weights
score near zero on each (see the thresholds' comments)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from langchain_core.messages import ToolMessage

from vitron.evals.shapes.dataset import make_sample
from vitron.tools.backend import Services, build_tools
from vitron.tools.pretraining.sam import interior_point
from vitron.tools.profiles import load_profile
from vitron.tools.registry import ModelRegistry
from vitron.tools.workspace import Workspace

SCENES = range(500, 512)
"""Held-out ``test``-split samples (seed 0); training never draws from the splits' streams."""


@pytest.fixture(scope="module")
def nano_models() -> ModelRegistry:
    return ModelRegistry(load_profile("nano"), device="cpu")


@pytest.fixture
def nano(tmp_path, nano_models) -> tuple[Callable[..., ToolMessage], Workspace]:
    services = Services(workspace=Workspace(tmp_path / "workspace"), models=nano_models)
    tools = {tool.name: tool for tool in build_tools(services)}

    def call(name: str, **args: Any) -> ToolMessage:
        message = {"type": "tool_call", "id": f"call_{name}", "name": name, "args": args}
        return tools[name].invoke(message, {"configurable": {"thread_id": "nano"}})

    return call, services.workspace.for_thread("nano")


def test_nano_profile_names_what_is_trained_and_what_is_not():
    profile = load_profile("nano")
    assert profile.component("sam").options["automatic"]["pred_iou_thresh"] > 0
    for name in ("sam", "clip", "grounding_dino"):
        assert not profile.component(name).is_tiny
    assert not profile.component("sam2_video").is_tiny  # trained (nano/README.md has its J&F)
    assert profile.component("sam2_signal").options["out_dim"] == 128  # nano SAM 2 prompt width
    assert not profile.component("vitron_llm").is_tiny
    assert "random" in profile.description and "SAM, CLIP, Grounding DINO" in profile.description
    assert "Vitron LLM planner" in profile.description


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def test_segment_image_with_a_box_or_a_click_finds_held_out_shapes(nano):
    invoke, workspace = nano
    box_ious, point_ious = [], []
    for index in SCENES:
        sample = make_sample("test", index, tasks=["referring_segmentation"])
        gold = np.asarray(sample.gold["mask"], dtype=bool)
        image = workspace.put_image(sample.media[0].pixels)
        boxed = invoke("segment_image", image=image.handle, regions=[sample.gold["box"]])
        clicked = invoke("segment_image", image=image.handle, points=[list(interior_point(gold))])
        assert boxed.status == "success" and clicked.status == "success", boxed.content
        box_ious.append(_iou(workspace.get_mask(boxed.artifact["masks"][0]), gold))
        point_ious.append(_iou(workspace.get_mask(clicked.artifact["masks"][0]), gold))
    # random weights: about 0.05 on both
    assert np.mean(box_ious) >= 0.75, box_ious
    assert np.mean(point_ious) >= 0.6, point_ious


def test_retrieve_ranks_the_described_image_first_on_held_out_sets(nano):
    invoke, workspace = nano
    hits = 0
    for index in range(300, 310):
        sample = make_sample("test", index, tasks=["retrieval"])
        handles = [workspace.put_image(m.pixels).handle for m in sample.media]
        result = invoke("retrieve", instruction=sample.gold["query"], media=handles)
        assert result.status == "success", result.content
        hits += result.artifact["ranking"][0]["handle"] == handles[sample.gold["target"]]
    assert hits >= 6  # random weights: one in ten


def test_ground_boxes_the_referred_object_on_held_out_scenes(nano):
    from vitron.tools.geometry import box_iou

    invoke, workspace = nano
    hits = 0
    for index in range(600, 620):
        sample = make_sample("test", index, tasks=["grounding"])
        image = workspace.put_image(sample.media[0].pixels)
        result = invoke("ground", image=image.handle, instruction=sample.gold["expression"])
        assert result.status == "success", result.content
        boxes = result.artifact["boxes"]
        hits += bool(boxes) and box_iou(boxes[0], list(sample.gold["box"])) >= 0.5
    assert hits >= 12  # random weights: none (0.77 on 200 held-out samples)


def test_every_trained_diffusion_pipeline_takes_the_planners_signal_through_a_trained_projector():
    """A planner signal reaches each trained nano pipeline rather than being set aside (only
    GLIGEN's and video-to-video's are): the projector it names has weights and makes tokens of
    that pipeline's text-encoder width (nano/README.md: which encoder each was aligned through)."""
    import json
    from pathlib import Path

    profile = load_profile("nano")
    expected = {"text_to_image": "image_signal", "inpaint": "image_signal",
                "instruct_pix2pix": "image_signal", "text_to_video": "video_signal",
                "image_to_video": "video_signal"}  # fmt: skip
    for part, projector in expected.items():
        pipeline = profile.component(part)
        assert pipeline.options["signal_projector"] == projector, part
        component = profile.component(projector)
        assert not component.is_tiny, projector
        config = json.loads((Path(component.checkpoint) / "projector_config.json").read_text())
        encoder = Path(pipeline.checkpoint) / "text_encoder" / "config.json"
        assert config["out_dim"] == json.loads(encoder.read_text())["hidden_size"], part
