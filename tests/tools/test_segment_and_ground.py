"""The first two real backends on the tiny profile: output kinds, shapes, handles, errors."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from vitron.tools.registry import ModelRegistry
from vitron.tools.steps.detection import phrases


def test_segment_by_text_goes_through_grounding_dino_and_returns_a_mask(invoke, photo, workspace):
    result = invoke("segment_image", image=photo.handle, instruction="the astronaut")
    assert result.status == "success", result.content
    (mask_handle,) = result.artifact["masks"]
    mask = workspace.get_mask(mask_handle)
    assert mask.shape == (512, 512) and mask.dtype == bool
    assert "located by Grounding DINO" in result.content and mask_handle in result.content
    media = result.artifact["media"]
    assert media[mask_handle]["source"] == "segment_image"
    assert media[mask_handle]["inputs"] == [photo.handle]
    overlay = workspace.get_image(result.artifact["overlay"])
    assert overlay.size == (512, 512)


@pytest.mark.parametrize("words", ["the background", "The picture's background"])
def test_the_background_is_what_sams_objects_leave(invoke, workspace, tiny_models, words):
    """No detector boxes "the background" (nano's finds nothing): segment_image, like
    edit_image, takes it as the pixels outside every object SAM's automatic generator finds."""
    from PIL import Image

    image = np.full((96, 128, 3), 90, dtype=np.uint8)
    image[30:60, 40:80] = (220, 30, 30)
    handle = workspace.put_image(image)
    result = invoke("segment_image", image=handle.handle, instruction=words)
    assert result.status == "success", result.content
    assert "the background: outside every object SAM finds" in result.content
    assert "Grounding DINO" not in result.content
    (mask,) = result.artifact["masks"]
    found = [m.mask for m in tiny_models.get("sam").automatic(Image.fromarray(image))
             if m.mask.mean() < 0.5]  # fmt: skip
    objects = np.logical_or.reduce(found) if found else np.zeros(image.shape[:2], dtype=bool)
    assert np.array_equal(workspace.get_mask(mask), ~objects)


def test_one_mask_per_region_and_points_and_mask_prompts(invoke, photo, workspace):
    boxes = invoke(
        "segment_image", image=photo.handle, regions=[[0.1, 0.1, 0.5, 0.9], [0.5, 0.0, 1.0, 0.5]]
    )
    assert boxes.status == "success" and len(boxes.artifact["masks"]) == 2
    clicks = invoke(
        "segment_image", image=photo.handle, points=[[0.3, 0.3], [0.8, 0.8]], point_labels=[1, 0]
    )
    assert clicks.status == "success"
    refined = invoke("segment_image", image=photo.handle, mask=clicks.artifact["masks"][0])
    assert refined.status == "success"
    assert refined.artifact["media"][refined.artifact["masks"][0]]["inputs"] == [
        photo.handle,
        clicks.artifact["masks"][0],
    ]


def test_image_embedding_is_computed_once_per_image(invoke, workspace, tiny_models):
    image = workspace.put_image(np.asarray(data.coffee())[::-1])  # an image no other test uses
    sam = tiny_models.get("sam")
    before = sam.embeddings_computed
    for x in (0.2, 0.4, 0.6):
        assert invoke("segment_image", image=image.handle, points=[[x, 0.5]]).status == "success"
    assert sam.embeddings_computed == before + 1


def test_video_frames_can_be_segmented(invoke, square_video):
    result = invoke(
        "segment_image", image=f"{square_video.handle}#2", regions=[[0.1, 0.2, 0.6, 0.8]]
    )
    assert result.status == "success", result.content


def test_ground_returns_normalised_boxes_best_first(invoke, photo, workspace):
    result = invoke("ground", image=photo.handle, instruction="a person. a flag.", max_boxes=4)
    assert result.status == "success", result.content
    data = result.artifact
    assert 1 <= len(data["boxes"]) <= 4
    assert all(0 <= v <= 1 for box in data["boxes"] for v in box)
    assert all(label in ("a person", "a flag") for label in data["labels"])
    assert data["scores"] == sorted(data["scores"], reverse=True)
    box_handle = next(h for h in data["media"] if h.startswith("box_"))
    assert workspace.get_boxes(box_handle)["boxes"] == data["boxes"]


def test_ground_near_a_mask_leaves_the_object_itself_out(invoke, photo, workspace):
    mask = np.zeros((512, 512), dtype=bool)
    mask[100:300, 100:300] = True
    near = workspace.put_mask(mask)
    result = invoke("ground", image=photo.handle, instruction="object", near=near.handle)
    assert result.status == "success", result.content
    assert f"nearest to {near.handle}" in result.content


def test_thresholds_filter_everything_out_with_a_clear_answer(invoke, photo):
    result = invoke("ground", image=photo.handle, instruction="a dog", box_threshold=1.0)
    assert result.status == "success" and "no boxes" in result.content


def test_phrases_split_on_periods():
    assert phrases("a dog. a red ball;\nthe sky.") == ["a dog", "a red ball", "the sky"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"image": "../../etc/passwd", "instruction": "x"}, "is not a media handle"),
        ({"image": "img_0123456789abcdef", "instruction": "x"}, "not in this conversation"),
        ({"regions": [[0.5, 0.2, 0.1, 0.9]]}, "inverted"),
        ({"regions": [[0.1, 0.2, 1.5, 0.9]]}, "outside the media"),
        ({"regions": [[0.1, 0.2, 0.3]]}, "got 3 numbers"),
        ({"points": [[0.5, 2.0]]}, "each between 0 and 1"),
        ({"points": [[0.5, 0.5]], "point_labels": [1, 0]}, "one label per point"),
        ({}, "say what to segment"),
        ({"instruction": "x", "colour": "red"}, "colour: is not an argument"),
        ({"instruction": "x", "mask": "img_0123456789abcdef"}, "takes mask_"),
    ],
)
def test_bad_arguments_become_error_messages_that_name_the_problem(invoke, photo, args, expected):
    args = {"image": photo.handle, **args}
    result = invoke("segment_image", **args)
    assert result.status == "error"
    assert expected in result.content


def test_mask_of_another_size_is_refused(invoke, photo, workspace):
    small = workspace.put_mask(np.ones((10, 10), dtype=bool))
    result = invoke("segment_image", image=photo.handle, mask=small.handle)
    assert result.status == "error" and "is 10x10 but" in result.content


def test_a_backend_crash_becomes_an_error_message(invoke, photo, services, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("CUDA error: device-side assert")

    monkeypatch.setattr(ModelRegistry, "get", broken)
    result = invoke("ground", image=photo.handle, instruction="a dog")
    assert result.status == "error"
    assert "ground failed: RuntimeError: CUDA error" in result.content
