"""Studio shows the state's media registry: each entry starts with one readable line."""

from __future__ import annotations

from vitron.graphs.state import about, merge_media


def test_each_registry_entry_says_kind_size_frames_and_what_made_it():
    left = {"img_aaaaaaaaaaaa": {"kind": "img", "source": "user", "width": 640, "height": 480,
                                 "label": "cat.jpg"}}  # fmt: skip
    right = {
        "mask_bbbbbbbbbbbb": {"kind": "mask", "source": "segment_image", "width": 640,
                              "height": 480, "inputs": ["img_aaaaaaaaaaaa"]},
        "vid_cccccccccccc": {"kind": "vid", "source": "image_to_video", "width": 64, "height": 48,
                             "frames": 16, "fps": 8.0, "inputs": ["img_aaaaaaaaaaaa"]},
        "emb_dddddddddddd": {"kind": "emb", "source": "vitron_llm"},
    }  # fmt: skip
    registry = merge_media(merge_media({}, left), right)  # as updates reach the state
    lines = {h: e["about"] for h, e in registry.items()}
    assert lines == {
        "img_aaaaaaaaaaaa": "640x480 image 'cat.jpg', from the user",
        "mask_bbbbbbbbbbbb": "640x480 mask, made by segment_image from img_aaaaaaaaaaaa",
        "vid_cccccccccccc": "64x48 video, 16 frames at 8 fps, made by image_to_video from img_aaaaaaaaaaaa",
        "emb_dddddddddddd": "embedding, made by vitron_llm",
    }
    assert next(iter(registry["mask_bbbbbbbbbbbb"])) == "about"  # first in Studio's tree
    # merged again (as every later update is), the line is recomputed, not nested or stale
    again = merge_media(registry, {"mask_bbbbbbbbbbbb": {"label": "the cat"}})
    assert again["mask_bbbbbbbbbbbb"]["about"].startswith("640x480 mask 'the cat', made by")
    assert about("box_eeeeeeeeeeee", {"source": "ground"}) == "boxes, made by ground"
