"""track_video on the tiny profile (SAM 2 video, 256 px, random weights): mask and overlay videos,
per-frame boxes, prompts of every kind, tracking both ways, the memory bound, signal conditioning,
and errors."""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch

from vitron.tools.backend import Services, build_tools
from vitron.tools.models.sam2_video import Sam2VideoEngine, VideoPrompt, build_tiny_sam2_video
from vitron.tools.profiles import load_profile
from vitron.tools.registry import ModelRegistry

BOX = [0.05, 0.25, 0.4, 0.75]  # around the square on frame 0 of the `square_video` fixture


@pytest.fixture
def engine(tiny_models) -> Sam2VideoEngine:
    return tiny_models.get("sam2_video")


@pytest.fixture
def frames(workspace, square_video) -> list[np.ndarray]:
    return list(workspace.get_video(square_video.handle).frames)


def _mask_frames(workspace, handle: str) -> np.ndarray:
    return workspace.get_video(handle).frames[..., 0]


# --------------------------------------------------------------------------- the tool


def test_box_prompt_gives_mask_video_boxes_and_overlay(invoke, square_video, workspace):
    result = invoke("track_video", video=square_video.handle, regions=[BOX])
    assert result.status == "success", result.content
    masks = workspace.describe(result.artifact["masks"])
    assert (masks.frames, masks.width, masks.height, masks.fps) == (6, 64, 48, 4.0)
    assert masks.source == "track_video" and masks.inputs == [square_video.handle]
    grey = _mask_frames(workspace, masks.handle)
    assert set(np.unique(grey)) <= {0, 255}  # stored losslessly: exact 0/255 frames
    boxes = result.artifact["boxes"]
    assert len(boxes) == 6
    for box, frame in zip(boxes, grey, strict=True):
        if box is None:
            assert not frame.any()
        else:
            assert all(0 <= v <= 1 for v in box) and box[0] < box[2] and box[1] < box[3]
    overlay = workspace.describe(result.artifact["overlay"])
    assert (overlay.frames, overlay.width, overlay.height) == (6, 64, 48)
    assert overlay.inputs == [square_video.handle, masks.handle]
    assert result.artifact["frames"] == {"start": 0, "stride": 1, "count": 6}


def test_text_target_is_grounded_on_the_prompt_frame(invoke, square_video):
    result = invoke("track_video", video=square_video.handle, instruction="the red square", frame=2)
    assert result.status == "success", result.content
    assert "located on frame 2 by Grounding DINO" in result.content
    assert len(result.artifact["boxes"]) == 6


def test_a_mask_from_segment_image_can_seed_tracking(invoke, square_video, workspace):
    seeded = invoke(
        "segment_image", image=f"{square_video.handle}#3", regions=[[0.3, 0.25, 0.8, 0.75]]
    )
    assert seeded.status == "success", seeded.content
    mask = seeded.artifact["masks"][0]
    result = invoke("track_video", video=f"{square_video.handle}#3", mask=mask)
    assert result.status == "success", result.content
    assert "prompt frame 3" in result.content
    grey = _mask_frames(workspace, result.artifact["masks"])
    # SAM 2 takes a mask prompt as the prompt frame's output (resampled through its 256 px grid)
    given, tracked = workspace.get_mask(mask), grey[3] > 127
    assert (given & tracked).sum() / (given | tracked).sum() > 0.8
    assert workspace.describe(result.artifact["masks"]).inputs == [square_video.handle, mask]


def test_points_and_stride(invoke, square_video, workspace):
    result = invoke("track_video", video=square_video.handle, points=[[0.2, 0.5], [0.9, 0.1]],
                    point_labels=[1, 0], frame=3, stride=2)  # fmt: skip
    assert result.status == "success", result.content
    masks = workspace.describe(result.artifact["masks"])
    assert masks.frames == 3 and masks.fps == 2.0  # frames 1, 3, 5
    assert result.artifact["frames"] == {"start": 1, "stride": 2, "count": 3}
    assert "one in 2 from frame 1" in result.content


# --------------------------------------------------------------------------- the engine


def test_engine_without_signal_equals_the_documented_streaming_flow(engine, frames):
    ours = list(engine.track(frames, 0, VideoPrompt(box=[4, 12, 26, 36])))
    model, processor = engine.model, engine.processor
    session = processor.init_video_session(inference_device="cpu")
    reference = []
    for index, frame in enumerate(frames):
        inputs = processor(images=frame, return_tensors="pt")
        if index == 0:
            processor.add_inputs_to_inference_session(
                session, frame_idx=0, obj_ids=1, input_boxes=[[[4, 12, 26, 36]]],
                original_size=inputs.original_sizes[0],
            )  # fmt: skip
        with torch.inference_mode():
            output = model(inference_session=session, frame=inputs.pixel_values[0])
        masks = processor.post_process_masks(
            [output.pred_masks], original_sizes=inputs.original_sizes, binarize=True
        )
        reference.append(masks[0][0, 0].numpy())
    assert all(np.array_equal(a, b) for a, b in zip(ours, reference, strict=True))


def test_forward_part_does_not_depend_on_the_backward_part(engine, frames):
    prompt = VideoPrompt(box=[20, 12, 44, 36])
    from_middle = list(engine.track(frames, 2, prompt))
    cut = list(engine.track(frames[2:], 0, prompt))
    assert len(from_middle) == 6
    assert all(np.array_equal(a, b) for a, b in zip(from_middle[2:], cut, strict=True))


def test_forgetting_beyond_the_memory_window_changes_nothing(frames):
    model, processor = build_tiny_sam2_video(num_maskmem=2, max_object_pointers_in_encoder=2)
    engine = Sam2VideoEngine(model, processor)
    assert engine.memory_window == 2  # 6 frames, so frames really are forgotten
    sessions = []
    init = processor.init_video_session

    def spy(**kwargs):
        sessions.append(init(**kwargs))
        return sessions[-1]

    processor.init_video_session = spy
    prompt = VideoPrompt(box=[4, 12, 26, 36])
    bounded = list(engine.track(frames, 1, prompt))
    unbounded = list(engine.track(frames, 1, prompt, memory_window=None))
    assert all(np.array_equal(a, b) for a, b in zip(bounded, unbounded, strict=True))
    kept, everything = (s.output_dict_per_obj[0]["non_cond_frame_outputs"] for s in sessions)
    assert sorted(kept) == [4, 5] and sorted(everything) == [2, 3, 4, 5]
    assert not sessions[0].processed_frames  # no frame's pixels outlive its step


def test_only_frames_up_to_the_prompt_are_held(engine, frames):
    read = []

    def stream():
        for index, frame in enumerate(frames):
            read.append(index)
            yield frame

    masks = engine.track(stream(), 2, VideoPrompt(box=[4, 12, 26, 36]))
    for _ in range(4):  # frames 0, 1, 2 and the first forward frame
        next(masks)
    assert read == [0, 1, 2, 3]


# --------------------------------------------------------------------------- signal conditioning


def test_a_signal_changes_the_tracking_and_none_leaves_it(invoke, square_video, workspace):
    plain = invoke("track_video", video=square_video.handle, regions=[BOX])
    signal = workspace.put_embedding(torch.randn(64, generator=torch.Generator().manual_seed(3)))
    hybrid = invoke("track_video", video=square_video.handle, regions=[BOX], signal=signal.handle)
    assert plain.status == hybrid.status == "success", hybrid.content
    assert plain.artifact["masks"] != hybrid.artifact["masks"]
    again = invoke("track_video", video=square_video.handle, regions=[BOX])
    assert again.artifact["masks"] == plain.artifact["masks"]  # reproducible; the hook left nothing
    assert again.artifact["boxes"] == plain.artifact["boxes"]


def test_a_signal_of_the_wrong_size_is_refused(invoke, square_video, workspace):
    signal = workspace.put_embedding(torch.randn(16))
    result = invoke("track_video", video=square_video.handle, regions=[BOX], signal=signal.handle)
    assert result.status == "error" and "dimension 16" in result.content


def test_a_projector_of_the_wrong_width_names_both_widths(tmp_path, services, square_video,
                                                           workspace):  # fmt: skip
    profile = tmp_path / "narrow.toml"
    profile.write_text(
        'name = "narrow"\n[components.sam2_video]\nloader = "sam2_video"\ncheckpoint = "tiny"\n'
        '[components.sam2_signal]\nloader = "signal_projector"\ncheckpoint = "tiny"\n'
        "in_dim = 64\nout_dim = 64\n"
    )
    narrow = Services(services.workspace, ModelRegistry(load_profile(profile), device="cpu"))
    tool = {t.name: t for t in build_tools(narrow)}["track_video"]
    signal = workspace.put_embedding(torch.randn(64))
    result = tool.invoke(
        {"type": "tool_call", "id": "c1", "name": "track_video",
         "args": {"video": square_video.handle, "regions": [BOX], "signal": signal.handle}},
        {"configurable": {"thread_id": "test-thread"}},
    )  # fmt: skip
    assert result.status == "error"
    assert "'sam2_signal' makes tokens of width 64, but SAM 2's width is 256" in result.content


# --------------------------------------------------------------------------- errors


def test_frame_beyond_the_video(invoke, square_video):
    result = invoke("track_video", video=square_video.handle, regions=[BOX], frame=9)
    assert result.status == "error"
    assert "has 6 frames (0–5); frame 9 does not exist" in result.content


def test_mask_of_the_wrong_size(invoke, square_video, workspace):
    small = workspace.put_mask(np.ones((10, 10), dtype=bool))
    result = invoke("track_video", video=square_video.handle, mask=small.handle)
    assert result.status == "error"
    assert "is 10x10 but" in result.content and "frames are 64x48" in result.content


def test_too_many_frames_for_the_cap_suggests_a_stride(invoke, square_video, engine, monkeypatch):
    monkeypatch.setattr(engine, "max_frames", 4)
    result = invoke("track_video", video=square_video.handle, regions=[BOX])
    assert result.status == "error"
    assert "at most 4" in result.content and "stride=2" in result.content
    assert (
        invoke("track_video", video=square_video.handle, regions=[BOX], stride=2).status
        == "success"
    )


def _empty_mp4(path) -> None:
    """A well-formed MP4 container that holds not a single frame."""
    container = av.open(str(path), mode="w", format="mp4")
    stream = container.add_stream("libx264", rate=4)
    stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
    container.start_encoding()
    container.close()


@pytest.mark.parametrize("damage", ["zero bytes", "no frames", "garbage"])
def test_unreadable_or_empty_video_is_an_error(invoke, workspace, damage):
    video = workspace.put_video([np.full((48, 64, 3), v, np.uint8) for v in (50, 90)], fps=2)
    path = workspace.path(video.handle)
    if damage == "zero bytes":
        path.write_bytes(b"")
    elif damage == "no frames":
        _empty_mp4(path)
    else:
        path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 50)
    result = invoke("track_video", video=video.handle, regions=[BOX])
    assert result.status == "error"
    assert video.handle in result.content
    assert "cannot read" in result.content or "no video stream" in result.content


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({}, "say what to track"),
        ({"regions": [[0.1, 0.1, 1.3, 0.5]]}, "outside the media"),
        ({"regions": [BOX, BOX]}, "one target; give one region"),
        ({"regions": [BOX], "mask": "mask_0123456789abcdef"}, "cannot be combined"),
        ({"points": [[0.5, 0.5]], "point_labels": [1, 1]}, "one label per point"),
        ({"regions": [BOX], "frame": -1}, "frame"),
        ({"regions": [BOX], "video": "img_0123456789abcdef"}, "takes vid_"),
    ],
)
def test_bad_requests_are_errors_that_say_why(invoke, square_video, args, expected):
    result = invoke("track_video", **{"video": square_video.handle, **args})
    assert result.status == "error"
    assert expected in result.content
