"""Object tokens (``vitron.agent.objects``): which segmenter masks become objects, how a picture's
objects follow its image tokens as unmarked regions, and how a planner folder names its segmenter
so that loading it reads objects as training did."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vitron.agent.build import build_tiny_vitron, load_vitron, save_vitron
from vitron.agent.inputs import RegionInput, Turn
from vitron.agent.objects import (
    OBJECT_FINDER_FILE,
    ObjectFinder,
    ObjectFinderSettings,
    move_object_finder,
    sam_object_finder,
)
from vitron.tools.models.sam import build_tiny_sam, save_sam


def box(x1: int, y1: int, x2: int, y2: int, size: int = 32) -> np.ndarray:
    mask = np.zeros((size, size), dtype=bool)
    mask[y1:y2, x1:x2] = True
    return mask


class CountingSegmenter:
    """A segmenter that always finds ``masks`` and counts its calls."""

    def __init__(self, masks: list[np.ndarray]) -> None:
        self.masks, self.calls = masks, 0

    def __call__(self, picture) -> list[np.ndarray]:  # noqa: ANN001
        self.calls += 1
        return [m.copy() for m in self.masks]


def test_objects_are_the_masks_left_when_background_and_parts_are_dropped_left_to_right():
    background = np.ones((32, 32), dtype=bool)  # 100 % of the picture
    right, left, middle = box(24, 0, 32, 8), box(0, 0, 6, 6), box(12, 12, 20, 20)
    part_of_right = box(26, 2, 30, 6)  # wholly inside a larger kept mask
    finder = ObjectFinder(
        CountingSegmenter([right, part_of_right, background, left, middle]),
        ObjectFinderSettings(source="unused"),
    )
    found = finder(np.zeros((32, 32, 3), dtype=np.uint8))
    assert [m.sum() for m in found] == [36, 64, 64]
    assert all(np.array_equal(a, b) for a, b in zip(found, [left, middle, right], strict=True))
    capped = ObjectFinder(CountingSegmenter([right, left, middle]),
                          ObjectFinderSettings(source="unused", max_objects=2))  # fmt: skip
    # the two largest kept, then ordered left to right
    assert [m[:, :12].any() for m in capped(np.zeros((32, 32, 3), np.uint8))] == [False, False]


def test_each_picture_is_segmented_once_and_callers_get_copies():
    segmenter = CountingSegmenter([box(0, 0, 8, 8)])
    finder = ObjectFinder(segmenter, ObjectFinderSettings(source="unused"))
    picture = np.zeros((32, 32, 3), dtype=np.uint8)
    first = finder(picture)
    first[0][:] = False  # a caller changing its masks changes nobody else's
    assert finder(picture.copy())[0].sum() == 64 and segmenter.calls == 1
    other = picture.copy()
    other[0, 0] = 255
    finder(other)
    assert segmenter.calls == 2
    small = ObjectFinder(segmenter, ObjectFinderSettings(source="unused"), cache_bytes=1500)
    small(picture), small(other), small(other)  # one 32 x 32 mask (1024 bytes) fits
    assert segmenter.calls == 4
    small(picture)  # dropped for the other picture's masks: segmented again
    assert segmenter.calls == 5


@pytest.mark.parametrize("bad", [{"max_objects": 0}, {"max_area": 0.0}, {"inside": 1.5}])
def test_settings_out_of_range_are_refused(bad):
    with pytest.raises(ValueError):
        ObjectFinderSettings(source="x", **bad)


def test_a_settings_file_that_is_not_settings_names_the_file(tmp_path):
    (tmp_path / OBJECT_FINDER_FILE).write_text(json.dumps({"source": "x", "colour": "red"}))
    with pytest.raises(ValueError, match=OBJECT_FINDER_FILE):
        ObjectFinderSettings.read(tmp_path)
    assert ObjectFinderSettings.read(tmp_path / "absent") is None


def test_a_pictures_objects_follow_its_image_tokens_unmarked_and_a_sketch_stays_marked():
    model, processor = build_tiny_vitron()
    objects = [box(0, 0, 8, 8), box(16, 16, 30, 30)]
    processor.object_finder = ObjectFinder(CountingSegmenter(objects),
                                           ObjectFinderSettings(source="unused"))  # fmt: skip
    picture = np.zeros((32, 32, 3), dtype=np.uint8)
    sketch = box(4, 4, 12, 12)
    batch = processor.encode_chat([Turn("user", [picture, "what is ", RegionInput(sketch), "?"])])
    ids = processor.token_ids
    tokens = batch["input_ids"][0].tolist()
    first_region = tokens.index(ids.region)
    assert tokens[first_region - 1] == ids.image  # right after the picture's image tokens
    assert tokens.count(ids.region) == 3
    assert batch["region_marked"].tolist() == [False, False, True]
    assert batch["region_image_index"].tolist() == [0, 0, 0]
    assert torch.equal(batch["region_masks"][0], processor.preprocess_mask(objects[0]))
    assert model(**batch).logits.shape[1] == len(tokens)


def test_objects_lay_no_mark_on_the_picture(tmp_path):
    """With marks, a sketch changes its picture's image tokens; an object region does not."""
    model, processor = build_tiny_vitron(region_marks=2)
    with torch.no_grad():
        model.region_encoder.marks.normal_(0.0, 1.0)
    picture = torch.rand(1, 3, 64, 64)
    mask = torch.zeros(1, 64, 64)
    mask[0, :16, :16] = 1.0
    ids = torch.tensor([[processor.token_ids.image] * model.config.tokens_per_image
                        + [processor.token_ids.region]])  # fmt: skip
    embed = {
        marked: model.embed_inputs(
            ids, picture, None, mask, torch.tensor([0]), torch.tensor([marked])
        )  # fmt: skip
        for marked in (True, False)
    }
    plain = model.embed_inputs(ids[:, :-1], picture)
    images = slice(0, model.config.tokens_per_image)
    assert torch.equal(embed[False][:, images], plain)
    assert not torch.equal(embed[True][:, images], plain)
    assert torch.equal(embed[True][:, -1], embed[False][:, -1])  # the region token itself
    with pytest.raises(ValueError, match="region_marked"):
        model.embed_inputs(ids, picture, None, mask, torch.tensor([0]), torch.tensor([True, False]))


def test_a_planner_folder_names_its_segmenter_and_loading_it_reads_objects(tmp_path):
    sam_model, arch = build_tiny_sam()
    save_sam(sam_model, arch, tmp_path / "profile" / "sam")
    settings = ObjectFinderSettings(source=str(tmp_path / "profile" / "sam"),
                                    automatic={"points_per_side": 4})  # fmt: skip
    model, processor = build_tiny_vitron()
    processor.object_finder = sam_object_finder(settings, tmp_path)
    save_vitron(model, processor, tmp_path / "run" / "llm")
    saved = json.loads((tmp_path / "run" / "llm" / OBJECT_FINDER_FILE).read_text())
    assert saved["source"] == "../../profile/sam" and saved["automatic"] == {"points_per_side": 4}
    _, loaded = load_vitron(tmp_path / "run" / "llm")
    assert isinstance(loaded.object_finder, ObjectFinder)
    assert loaded.object_finder.settings == ObjectFinderSettings(**saved)
    picture = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert isinstance(loaded.object_finder(picture), list)  # the tiny SAM ran on it

    # copied into the profile beside its segmenter, as `publish` does
    import shutil

    shutil.copytree(tmp_path / "run" / "llm", tmp_path / "profile" / "vitron_llm")
    move_object_finder(tmp_path / "run" / "llm", tmp_path / "profile" / "vitron_llm")
    moved = json.loads((tmp_path / "profile" / "vitron_llm" / OBJECT_FINDER_FILE).read_text())
    assert moved["source"] == "../sam"
    # a segmenter that is not where the folder says: a clear error naming both
    moved_source = json.loads(
        (tmp_path / "profile" / "vitron_llm" / OBJECT_FINDER_FILE).read_text()
    )
    moved_source["source"] = "../gone"
    (tmp_path / "profile" / "vitron_llm" / OBJECT_FINDER_FILE).write_text(json.dumps(moved_source))
    with pytest.raises(
        FileNotFoundError, match=r"object_finder.json names the segmenter '../gone'"
    ):
        load_vitron(tmp_path / "profile" / "vitron_llm")
    # saved again without a finder: the folder no longer names one
    processor.object_finder = None
    save_vitron(model, processor, tmp_path / "run" / "llm")
    assert not (tmp_path / "run" / "llm" / OBJECT_FINDER_FILE).exists()
    assert load_vitron(tmp_path / "run" / "llm")[1].object_finder is None


def test_a_nano_run_reads_objects_through_the_profiles_sam_with_segment_images_settings():
    from vitron.agent.training.nano import object_finder_for
    from vitron.evals.shapes.dataset import make_sample
    from vitron.tools.profiles import load_profile

    finder = object_finder_for("nano")
    sam = load_profile("nano").component("sam")
    assert finder.settings.automatic == sam.options["automatic"]
    sample = make_sample("test", 0, tasks=["vqa"])
    found = finder(sample.media[0].pixels)
    assert 1 <= len(found) <= finder.settings.max_objects
    assert all(m.shape == (64, 64) and 0 < m.mean() <= 0.4 for m in found)
