"""The workspace: content addressing, namespaces, atomic writes, caps, and handle validation."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from vitron.tools.errors import InvalidHandleError, MediaError, UnknownHandleError
from vitron.tools.handles import find_handles, parse_handle
from vitron.tools.media import MediaLimits
from vitron.tools.workspace import Workspace


def test_same_pixels_get_the_same_handle_and_different_pixels_another(workspace):
    image = np.zeros((20, 30, 3), dtype=np.uint8)
    first = workspace.put_image(image)
    again = workspace.put_image(image.copy())
    image[0, 0] = 1
    other = workspace.put_image(image)
    assert first.handle == again.handle != other.handle
    assert first.handle.startswith("img_") and len(first.handle) == 4 + 16
    assert workspace.get_image(first.handle).size == (30, 20)


def test_each_kind_round_trips(workspace):
    mask = np.zeros((10, 12), dtype=bool)
    mask[2:5, 3:9] = True
    assert (workspace.get_mask(workspace.put_mask(mask).handle) == mask).all()

    tensor = torch.randn(3, 7)
    emb = workspace.put_embedding(tensor, extra={"space": "sam"})
    assert torch.equal(workspace.get_embedding(emb.handle), tensor)
    assert workspace.describe(emb.handle).shape == [3, 7]

    boxes = workspace.put_boxes([[0.1, 0.2, 0.3, 0.4]], ["cat"], [0.9])
    assert workspace.get_boxes(boxes.handle)["labels"] == ["cat"]


def test_video_round_trip_streams_frames_and_addresses_single_frames(workspace, square_video):
    info = workspace.describe(square_video.handle)
    assert (info.frames, info.width, info.height, info.fps) == (6, 64, 48, 4.0)
    frames = list(workspace.iter_frames(square_video.handle))
    assert len(frames) == 6 and frames[0].shape == (48, 64, 3)
    # the red square moves right: its centre of mass in frame 5 is right of frame 0's
    red = [np.nonzero(f[..., 0] > 150)[1].mean() for f in (frames[0], frames[5])]
    assert red[1] > red[0] + 30
    assert workspace.get_frame(f"{square_video.handle}#5").shape == (48, 64, 3)
    with pytest.raises(MediaError, match="has 6 frames"):
        workspace.get_frame(f"{square_video.handle}#6")


def test_lossy_and_lossless_copies_of_the_same_frames_are_different_handles(workspace):
    frames = [np.full((8, 8, 3), 100, dtype=np.uint8)] * 2
    assert (
        workspace.put_video(frames, fps=4).handle
        != workspace.put_video(frames, fps=4, lossless=True).handle
    )


def test_lossless_mask_video_survives_exactly_with_odd_sizes(workspace):
    rng = np.random.default_rng(0)
    frames = [(rng.random((17, 23)) > 0.5).astype(np.uint8) * 255 for _ in range(3)]
    stored = workspace.put_video(frames, fps=5, lossless=True)
    back = list(workspace.iter_frames(stored.handle))
    assert all(
        (b[..., 0] > 127).tolist() == (f > 127).tolist() for b, f in zip(back, frames, strict=True)
    )


@pytest.mark.parametrize(
    "bad",
    [
        "../etc/passwd",
        "img_../../x",
        "IMG_0123456789AB",
        "img_0123456789ab/..",
        "mask_12",
        "",
        "img_0123456789ab#1",
    ],
)
def test_malformed_handles_are_rejected_before_any_file_access(workspace, bad):
    with pytest.raises(InvalidHandleError):
        workspace.path(bad)


def test_handle_kind_is_checked(photo):
    with pytest.raises(InvalidHandleError, match="takes mask_"):
        parse_handle(photo.handle, kinds=("mask",))
    assert str(parse_handle("vid_0123456789abcdef#12")) == "vid_0123456789abcdef#12"
    assert find_handles(f"see {photo.handle} and mask_0123456789abcdef.") == [
        photo.handle,
        "mask_0123456789abcdef",
    ]


def test_threads_cannot_see_each_others_media(workspace, photo):
    other = workspace.for_thread("someone-else")
    with pytest.raises(UnknownHandleError, match="not in this conversation"):
        other.get_image(photo.handle)
    assert workspace.exists(photo.handle) and not other.exists(photo.handle)


def test_unsafe_thread_ids_become_hashed_directory_names(tmp_path):
    root = Workspace(tmp_path)
    for thread in ("../../etc", "a/b", "..", "x" * 300):
        scoped = root.for_thread(thread)
        assert scoped.dir.parent == root.root
        scoped.put_image(np.zeros((2, 2, 3), dtype=np.uint8))


def test_pixel_cap_refuses_large_images_before_decoding(tmp_path):
    small_cap = Workspace(tmp_path, limits=MediaLimits(max_image_pixels=10_000))
    big = tmp_path / "big.png"
    Image.new("RGB", (200, 100)).save(big)
    with pytest.raises(MediaError, match="above the cap"):
        small_cap.import_file(big)
    with pytest.raises(MediaError, match="above the cap"):
        small_cap.put_image(np.zeros((100, 200, 3), dtype=np.uint8))


def test_frame_cap_and_empty_and_corrupt_media_give_clear_errors(tmp_path, square_video, workspace):
    capped = Workspace(tmp_path / "workspace", limits=MediaLimits(max_video_frames=3)).for_thread(
        workspace.namespace
    )
    with pytest.raises(MediaError, match="more than 3 frames"):
        list(capped.iter_frames(square_video.handle))
    with pytest.raises(MediaError, match="no frames"):
        workspace.put_video(iter([]), fps=4)
    corrupt = tmp_path / "corrupt.png"
    buffer = io.BytesIO()
    Image.new("RGB", (20, 20)).save(buffer, format="PNG")
    corrupt.write_bytes(buffer.getvalue()[:40])
    with pytest.raises(MediaError, match="cannot read"):
        workspace.import_file(corrupt)
    broken_video = tmp_path / "broken.mp4"
    broken_video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64)
    with pytest.raises(MediaError, match="cannot read|no frames|no video") as caught:
        workspace.import_file(broken_video)
    assert str(tmp_path) not in str(caught.value)  # no directory names reach the planner


def test_writes_are_atomic_no_temporary_files_remain(workspace, photo, square_video):
    leftovers = [p for p in workspace.dir.rglob("*") if p.is_file() and ".tmp" in p.name]
    assert leftovers == []
    assert set(workspace.handles()) == {photo.handle, square_video.handle}


def test_a_file_given_as_a_video_is_read_as_one(tmp_path, workspace, square_video):
    """``kind="video"`` (``--video``, ``/video``): read by FFmpeg whatever its first bytes say, so
    a file that will not read is reported as a video, in FFmpeg's words without its error number
    or C function; sniffed, the same bytes are reported as an image."""
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"not a video at all, nor an image")
    with pytest.raises(MediaError, match=r"^cannot read clip\.mp4 as a video: \w") as caught:
        workspace.import_file(clip, "video")
    assert "Errno" not in str(caught.value) and "()" not in str(caught.value)
    with pytest.raises(MediaError, match="as an image"):
        workspace.import_file(clip)
    stored = workspace.import_file(workspace.path(square_video.handle), "video")
    assert stored.kind == "vid" and stored.frames == square_video.frames
