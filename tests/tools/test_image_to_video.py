"""image_to_video on the tiny profile: I2VGen-XL from an image (or a video frame) to MP4."""

from __future__ import annotations

import numpy as np

from vitron.tools.backend import CallContext
from vitron.tools.backends.image_to_video import ImageToVideoArgs, image_to_video


def test_animates_a_photo_into_an_mp4(invoke, workspace, photo):
    message = invoke(
        "image_to_video", image=photo.handle, instruction="the astronaut waves", seed=1
    )
    assert message.status == "success", message.content
    handle = message.artifact["video"]
    info = workspace.describe(handle)
    # the 512 x 512 photo keeps its aspect at the tiny model's 32 px; 4 frames at 4 fps by default
    assert (info.width, info.height, info.frames, info.fps) == (32, 32, 4, 4.0)
    assert info.source == "image_to_video" and info.inputs == [photo.handle]
    assert workspace.get_video(handle).frames.shape == (4, 32, 32, 3)


def test_size_follows_the_image_aspect_or_the_arguments(invoke, workspace):
    wide = workspace.put_image(np.full((30, 60, 3), 128, dtype=np.uint8))
    fitted = invoke("image_to_video", image=wide.handle, seed=0, frames=2).artifact["video"]
    assert (workspace.describe(fitted).width, workspace.describe(fitted).height) == (32, 16)
    asked = invoke(
        "image_to_video", image=wide.handle, seed=0, frames=3, width=24, height=24, fps=6
    ).artifact["video"]
    info = workspace.describe(asked)
    assert (info.width, info.height, info.frames, info.fps) == (24, 24, 3, 6.0)


def test_a_video_frame_can_be_the_image(invoke, workspace, square_video):
    message = invoke("image_to_video", image=f"{square_video.handle}#2", seed=0, frames=2)
    assert message.status == "success", message.content
    assert workspace.describe(message.artifact["video"]).frames == 2


def test_same_seed_same_frames_other_seed_other_frames(invoke, photo):
    def run(seed: int) -> str:
        return invoke("image_to_video", image=photo.handle, seed=seed, frames=2).artifact["video"]

    assert run(4) == run(4) != run(5)


def test_each_step_reports_progress(services, workspace, photo):
    # I2VGen-XL has no step callback: progress comes from counting UNet calls
    events: list[dict] = []
    call = CallContext(workspace=workspace, models=services.models, progress=events.append)
    image_to_video(ImageToVideoArgs(image=photo.handle, seed=0, steps=3, frames=2), call)
    steps = [e for e in events if e["event"] == "step"]
    assert [(e["step"], e["total"]) for e in steps] == [(1, 3), (2, 3), (3, 3)]


def test_errors_are_messages(invoke, photo):
    unknown = invoke("image_to_video", image="img_0123456789abcdef")
    assert unknown.status == "error" and "not in this conversation" in unknown.content
    half = invoke("image_to_video", image=photo.handle, width=64)
    assert half.status == "error" and "both width and height" in half.content
    outside = invoke("image_to_video", image=photo.handle, regions=[[0, 0, 1.5, 0.5]])
    assert outside.status == "error" and "regions" in outside.content


def test_regions_say_what_moves_and_the_rest_of_every_frame_stays_the_picture(invoke, workspace):
    """Given a region, only it may change: the latents elsewhere are held to the picture's on
    every frame, so away from the region (past the VAE decoder's reach) the frames are frame 0;
    without one, tiny's random model redraws everything."""
    pixels = np.zeros((64, 64, 3), np.uint8)
    pixels[:32, :32], pixels[32:, 32:] = (200, 40, 40), (40, 40, 200)
    picture = workspace.put_image(pixels)
    common = {"image": picture.handle, "seed": 2, "steps": 3, "frames": 3, "width": 64,
              "height": 64, "instruction": "the red square moves left"}  # fmt: skip
    held = invoke("image_to_video", regions=[[0.0, 0.0, 0.25, 0.25]], **common)
    assert held.status == "success", held.content
    assert "only the given region(s) moving (the rest held still)" in held.content
    free = invoke("image_to_video", **common)
    assert "held still" not in free.content

    def frames(message) -> np.ndarray:
        return np.stack(list(workspace.iter_frames(message.artifact["video"]))).astype(float)

    kept, redrawn = frames(held), frames(free)
    far = (slice(40, 64), slice(32, 64))  # right of and below the region's path to the left edge
    assert np.abs(kept[1:][:, far[0], far[1]] - kept[0][far]).mean() < 3
    assert np.abs(redrawn[1:][:, far[0], far[1]] - redrawn[0][far]).mean() > 10
    assert np.abs(kept[1:, :8, :8] - kept[0, :8, :8]).mean() > 3  # inside the region: drawn


def test_a_region_on_a_wide_picture_cropped_square_holds_the_rest(invoke, workspace):
    """The region is cropped as the picture is (the centre square of a 2:1 picture): a region
    in the part cropped away leaves nothing that may move, so every frame is frame 0."""
    wide = workspace.put_image(np.full((32, 64, 3), 90, dtype=np.uint8))
    common = {"image": wide.handle, "seed": 0, "steps": 2, "frames": 3, "width": 32, "height": 32}
    message = invoke("image_to_video", regions=[[0.0, 0.0, 0.2, 1.0]], **common)
    assert message.status == "success", message.content
    frames = np.stack(list(workspace.iter_frames(message.artifact["video"]))).astype(float)
    assert frames.shape == (3, 32, 32, 3)
    assert np.abs(frames[1:] - frames[0]).max() <= 3
    inside = invoke("image_to_video", regions=[[0.4, 0.0, 0.6, 1.0]], **common)
    drawn = np.stack(list(workspace.iter_frames(inside.artifact["video"]))).astype(float)
    assert np.abs(drawn[1:, :, 10:22] - drawn[0, :, 10:22]).mean() > 3
