"""segment_image's modes (instance, semantic, panoptic, everything) and signal conditioning, on
the tiny profile: output kinds and sizes, labels and scores, reproducibility, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from segment_anything import SamPredictor
from skimage import data

from vitron.tools.backend import Services, build_tools
from vitron.tools.models.sam import SamEngine
from vitron.tools.profiles import load_profile
from vitron.tools.registry import ModelRegistry


@pytest.fixture
def small(workspace):
    """A 128 x 128 photo: the vocabulary modes write one PNG per segment, so keep them small."""
    return workspace.put_image(np.ascontiguousarray(data.astronaut()[::4, ::4]))


@pytest.fixture
def sam(tiny_models) -> SamEngine:
    return tiny_models.get("sam")


def _masks(result, workspace) -> list[np.ndarray]:
    return [workspace.get_mask(h) for h in result.artifact["masks"]]


# --------------------------------------------------------------------------- the SAM engine


@pytest.mark.parametrize(
    "prompt",
    [
        {"box": np.array([40.0, 60.0, 300.0, 420.0])},
        {"points": np.array([[100.0, 120.0], [300.0, 200.0]]), "point_labels": np.array([1, 0])},
        {"mask": "prior", "box": np.array([50.0, 100.0, 200.0, 300.0])},
    ],
    ids=["box", "points", "mask"],
)
def test_engine_equals_sam_predictor_without_extra_tokens(sam, prompt):
    image = Image.fromarray(data.astronaut())
    if isinstance(prompt.get("mask"), str):
        prior = np.zeros((512, 512), dtype=bool)
        prior[100:300, 50:200] = True
        prompt = {**prompt, "mask": prior}
    ours = sam.segment("engine-test", image, **prompt)

    predictor = SamPredictor(sam.model)
    predictor.set_image(np.asarray(image))
    mask = prompt.get("mask")
    masks, scores, _ = predictor.predict(
        point_coords=prompt.get("points"),
        point_labels=prompt.get("point_labels"),
        box=prompt.get("box"),
        mask_input=sam._mask_prompt(predictor, mask) if mask is not None else None,
        multimask_output="box" not in prompt,
    )
    best = int(np.argmax(scores))
    assert np.array_equal(ours.mask, masks[best])
    assert ours.score == pytest.approx(float(scores[best]), abs=1e-6)

    tokens = torch.randn(2, sam.prompt_dim, generator=torch.Generator().manual_seed(0))
    conditioned = sam.segment("engine-test", image, extra_tokens=tokens, **prompt)
    assert not np.array_equal(conditioned.mask, ours.mask)


def test_batched_boxes_equal_one_box_at_a_time(sam):
    image = Image.fromarray(data.astronaut())
    boxes = np.array([[10, 20, 300, 400], [100, 100, 200, 200], [0, 0, 512, 512]], np.float32)
    batched = sam.segment_boxes("engine-test", image, boxes, batch_size=2)
    for box, result in zip(boxes, batched, strict=True):
        single = sam.segment("engine-test", image, box=box)
        assert np.array_equal(single.mask, result.mask)
        assert single.score == pytest.approx(result.score, abs=1e-5)


def test_automatic_generator_settings_come_from_the_profile(sam):
    assert sam.automatic_settings["points_per_side"] == 4
    regions = sam.automatic(Image.fromarray(data.astronaut()))
    assert regions and all(r.mask.shape == (512, 512) for r in regions)
    assert [r.mask.sum() for r in regions] == sorted((r.mask.sum() for r in regions), reverse=True)


# --------------------------------------------------------------------------- the modes


def test_instance_mode_gives_one_labelled_mask_per_object(invoke, small, workspace):
    result = invoke(
        "segment_image", image=small.handle, mode="instance", vocabulary=["person", "flag"],
        max_segments=4,
    )  # fmt: skip
    assert result.status == "success", result.content
    assert result.content.startswith("instance segmentation")
    handles = result.artifact["masks"]
    assert 1 <= len(handles) <= 4
    media = result.artifact["media"]
    for handle, segment in zip(handles, result.artifact["segments"], strict=True):
        assert workspace.get_mask(handle).shape == (128, 128)
        assert (
            media[handle]["label"] in ("person", "flag")
            and segment["label"] == media[handle]["label"]
        )
        assert media[handle]["extra"]["mode"] == "instance"
        assert 0 <= media[handle]["extra"]["score"] <= 1 and "sam_score" in media[handle]["extra"]
        assert segment["colour"].startswith("#") and len(segment["colour"]) == 7
    scores = [s["score"] for s in result.artifact["segments"]]
    assert scores == sorted(scores, reverse=True)
    overlay = workspace.get_image(result.artifact["overlay"])
    assert overlay.size == (128, 128)


def test_vocabulary_defaults_to_the_instruction_phrases(invoke, small):
    result = invoke("segment_image", image=small.handle, mode="instance",
                    instruction="person. flag.", max_segments=2)  # fmt: skip
    assert result.status == "success", result.content
    assert {s["label"] for s in result.artifact["segments"]} <= {"person", "flag"}


def test_regions_keep_only_objects_centred_inside(invoke, small):
    region = [0.0, 0.0, 0.6, 0.6]
    result = invoke("segment_image", image=small.handle, mode="instance", vocabulary=["person"],
                    regions=[region], box_threshold=0.0, max_segments=5)  # fmt: skip
    assert result.status == "success", result.content
    assert result.artifact["segments"]
    for segment in result.artifact["segments"]:
        x1, y1, x2, y2 = segment["detection"]  # the Grounding DINO box that prompted SAM
        assert 0 <= (x1 + x2) / 2 <= 0.6 and 0 <= (y1 + y2) / 2 <= 0.6
        assert segment["label"] == "person"


def test_semantic_is_the_union_of_each_class_instances(invoke, small, workspace):
    args = {"image": small.handle, "vocabulary": ["person"], "max_segments": 256}
    instances = invoke("segment_image", mode="instance", **args)
    semantic = invoke("segment_image", mode="semantic", **args)
    assert instances.status == semantic.status == "success", semantic.content
    by_class: dict[str, np.ndarray] = {}
    for handle, segment in zip(
        instances.artifact["masks"], instances.artifact["segments"], strict=True
    ):
        mask = workspace.get_mask(handle)
        by_class[segment["label"]] = by_class.get(segment["label"], np.zeros_like(mask)) | mask
    labels = [s["label"] for s in semantic.artifact["segments"]]
    assert labels == ["person"] == list(by_class)
    assert semantic.artifact["segments"][0]["instances"] == len(instances.artifact["masks"])
    for handle, label in zip(semantic.artifact["masks"], labels, strict=True):
        assert np.array_equal(workspace.get_mask(handle), by_class[label])


def test_panoptic_segments_do_not_overlap_and_are_labelled(invoke, small, workspace):
    result = invoke("segment_image", image=small.handle, mode="panoptic",
                    vocabulary=["person"], max_segments=8)  # fmt: skip
    assert result.status == "success", result.content
    masks = _masks(result, workspace)
    assert masks
    total = np.sum(masks, axis=0)
    assert total.max() <= 1, "panoptic segments must be disjoint"
    for segment in result.artifact["segments"]:
        if segment["kind"] == "thing":
            assert segment["label"] == "person"
        else:
            assert segment["kind"] == "stuff" and segment["label"].startswith("stuff ")


def test_everything_mode_uses_the_automatic_generator(invoke, photo, workspace):
    result = invoke("segment_image", image=photo.handle, mode="everything")
    assert result.status == "success", result.content
    masks = _masks(result, workspace)
    assert masks and all(m.shape == (512, 512) for m in masks)
    assert all(s["label"] == "segment" for s in result.artifact["segments"])
    areas = [m.sum() for m in masks]
    assert areas == sorted(areas, reverse=True)


def test_modes_reproduce(invoke, small):
    for mode in ("instance", "everything"):
        args = {"image": small.handle, "mode": mode, "max_segments": 3}
        if mode == "instance":
            args["vocabulary"] = ["person"]
        first, second = invoke("segment_image", **args), invoke("segment_image", **args)
        assert first.artifact["masks"] == second.artifact["masks"]
        assert first.artifact["overlay"] == second.artifact["overlay"]


def test_nothing_found_is_an_answer_not_an_error(invoke, small):
    result = invoke("segment_image", image=small.handle, mode="semantic", vocabulary=["dog"],
                    box_threshold=1.0)  # fmt: skip
    assert result.status == "success"
    assert "no 'dog' found" in result.content and result.artifact["masks"] == []


# --------------------------------------------------------------------------- signal conditioning


def test_no_signal_equals_plain_sam_and_a_signal_changes_the_mask(invoke, photo, workspace, sam):
    region = [0.2, 0.1, 0.7, 0.9]
    plain = invoke("segment_image", image=photo.handle, regions=[region])
    assert plain.status == "success", plain.content
    predictor = SamPredictor(sam.model)
    predictor.set_image(data.astronaut())
    masks, scores, _ = predictor.predict(
        box=np.array([0.2 * 512, 0.1 * 512, 0.7 * 512, 0.9 * 512]), multimask_output=False
    )
    assert np.array_equal(workspace.get_mask(plain.artifact["masks"][0]), masks[0])

    signal = workspace.put_embedding(torch.randn(64, generator=torch.Generator().manual_seed(1)))
    hybrid = invoke("segment_image", image=photo.handle, regions=[region], signal=signal.handle)
    assert hybrid.status == "success", hybrid.content
    assert hybrid.artifact["masks"] != plain.artifact["masks"]


def test_signal_conditions_the_vocabulary_modes_too(invoke, small, workspace):
    signal = workspace.put_embedding(torch.randn(1, 64, generator=torch.Generator().manual_seed(2)))
    args = {"image": small.handle, "mode": "instance", "vocabulary": ["person"], "max_segments": 2}
    plain = invoke("segment_image", **args)
    hybrid = invoke("segment_image", signal=signal.handle, **args)
    assert plain.status == hybrid.status == "success"
    assert plain.artifact["masks"] != hybrid.artifact["masks"]


def test_a_signal_of_the_wrong_size_is_refused(invoke, photo, workspace):
    signal = workspace.put_embedding(torch.randn(32))
    result = invoke("segment_image", image=photo.handle, regions=[[0.1, 0.1, 0.5, 0.5]],
                    signal=signal.handle)  # fmt: skip
    assert result.status == "error"
    assert "dimension 32" in result.content and "takes 64" in result.content


def test_a_projector_of_the_wrong_width_names_both_widths(tmp_path, services, photo, workspace):
    profile = tmp_path / "narrow.toml"
    profile.write_text(
        'name = "narrow"\n[components.sam]\nloader = "sam"\ncheckpoint = "tiny"\n'
        '[components.sam_signal]\nloader = "signal_projector"\ncheckpoint = "tiny"\n'
        "in_dim = 64\nout_dim = 32\n"
    )
    narrow = Services(services.workspace, ModelRegistry(load_profile(profile), device="cpu"))
    tool = {t.name: t for t in build_tools(narrow)}["segment_image"]
    signal = workspace.put_embedding(torch.randn(64))
    result = tool.invoke(
        {"type": "tool_call", "id": "c1", "name": "segment_image",
         "args": {"image": photo.handle, "regions": [[0.1, 0.1, 0.5, 0.5]],
                  "signal": signal.handle}},
        {"configurable": {"thread_id": "test-thread"}},
    )  # fmt: skip
    assert result.status == "error"
    assert "'sam_signal' makes tokens of width 32, but SAM's width is 64" in result.content


# --------------------------------------------------------------------------- bad requests


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"mode": "instance"}, "needs class names"),
        ({"mode": "semantic", "vocabulary": [" ", "."]}, "vocabulary has no class names"),
        (
            {"mode": "instance", "vocabulary": ["a"], "points": [[0.5, 0.5]]},
            "are for mode 'referring'",
        ),
        ({"mode": "everything", "regions": [[0.1, 0.1, 0.5, 0.5]]}, "takes no regions"),
        ({"mode": "everything", "vocabulary": ["dog"]}, "takes no vocabulary"),
        ({"instruction": "the dog", "vocabulary": ["dog"]}, "set `mode`"),
        ({"mode": "cartoon"}, "mode: Input should be"),
        (
            {"mode": "instance", "vocabulary": ["x"], "regions": [[0.1, 0.1, 1.2, 0.5]]},
            "outside the media",
        ),
        ({"mode": "everything", "max_segments": 0}, "max_segments"),
    ],
)
def test_bad_mode_arguments_are_errors_that_say_why(invoke, photo, args, expected):
    result = invoke("segment_image", image=photo.handle, **args)
    assert result.status == "error"
    assert expected in result.content
