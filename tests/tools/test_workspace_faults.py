"""Faults a new user meets in the workspace and the media decoders: thread isolation, odd images,
damaged stored files, leaked internals in errors, stale temporary files, non-ASCII frame digits."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from vitron.tools.errors import InvalidHandleError, MediaError, UnknownHandleError
from vitron.tools.handles import find_handles, is_handle, parse_handle
from vitron.tools.media import MediaLimits, decode_image
from vitron.tools.workspace import TEMP_DIR, Workspace, namespace_dir


def png_bytes(image: Image.Image, **save: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=save.pop("format", "PNG"), **save)
    return buffer.getvalue()


# ----------------------------------------------------------------------------- isolation


def test_a_thread_named_like_anothers_hashed_directory_gets_its_own(tmp_path):
    root = Workspace(tmp_path)
    first = root.for_thread("a/b")  # unsafe: stored under t_<hash>
    secret = first.put_image(np.full((4, 4, 3), 7, dtype=np.uint8))
    impostor = root.for_thread(first.dir.name)  # the id is literally that directory's name
    assert impostor.dir != first.dir
    with pytest.raises(UnknownHandleError):
        impostor.get_image(secret.handle)


def test_thread_ids_differing_only_in_case_never_share_a_directory(tmp_path):
    root = Workspace(tmp_path)
    names = {namespace_dir(t) for t in ("Thread", "thread", "THREAD", "tHREAD")}
    assert len(names) == 4
    assert root.for_thread("thread").dir.name == "thread"  # lower-case ids stay readable


# ----------------------------------------------------------------------------- odd images


def test_16_bit_grey_images_are_scaled_not_clipped(workspace, tmp_path):
    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (8, 1))
    path = tmp_path / "depth16.png"
    Image.fromarray(ramp).save(path)
    pixels = np.asarray(workspace.get_image(workspace.import_file(path).handle))
    assert pixels[0, 0, 0] == 0 and pixels[0, -1, 0] == 255
    assert 120 <= pixels[0, 32, 0] <= 135  # the middle of the ramp is mid-grey, not white


def test_exif_orientation_is_applied_on_import(workspace, tmp_path):
    """A portrait phone photo: pixels stored landscape, EXIF orientation 6 (rotate 90° clockwise)."""
    stored = np.zeros((40, 60, 3), dtype=np.uint8)
    stored[:10, :, 0] = 255  # a red band along the top of the stored pixels
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "portrait.jpg"
    Image.fromarray(stored).save(path, exif=exif, quality=95)
    image = workspace.get_image(workspace.import_file(path).handle)
    assert image.size == (40, 60)  # upright: portrait
    pixels = np.asarray(image)
    assert pixels[30, -5, 0] > 200 and pixels[30, 5, 0] < 60  # the band is now on the right


@pytest.mark.parametrize("mode", ["CMYK", "P", "LA", "1", "I", "F", "RGBA"])
def test_images_of_every_common_mode_become_rgb(mode, workspace):
    image = Image.fromarray(np.full((12, 16, 3), 200, dtype=np.uint8)).convert(mode)
    if mode == "P":
        image.info["transparency"] = 0
    fmt = "TIFF" if mode in ("CMYK", "I", "F") else "PNG"
    info = workspace.import_bytes(png_bytes(image, format=fmt))
    assert np.asarray(workspace.get_image(info.handle)).shape == (12, 16, 3)


# ----------------------------------------------------------------------------- damaged files


def test_damaged_stored_files_give_clear_errors(workspace, photo):
    mask = workspace.put_mask(np.eye(32, dtype=bool))
    emb = workspace.put_embedding(torch.ones(8))
    boxes = workspace.put_boxes([[0.1, 0.1, 0.5, 0.5]], ["cat"], [0.9])
    for handle in (mask.handle, emb.handle, photo.handle):
        path = workspace.path(handle)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    workspace.path(boxes.handle).write_text("{not json")
    calls = {
        mask.handle: workspace.get_mask,
        emb.handle: workspace.get_embedding,
        photo.handle: workspace.get_image,
        boxes.handle: workspace.get_boxes,
    }
    for handle, read in calls.items():
        with pytest.raises(MediaError) as caught:
            read(handle)
        message = str(caught.value)
        assert handle in message and ("damaged" in message or "cannot read" in message)
        assert str(workspace.root) not in message and "object at 0x" not in message


def test_a_garbage_record_gives_a_clear_error(workspace, photo):
    meta = workspace.path(photo.handle).with_name(f"{photo.handle}.meta.json")
    for garbage in ("{oops", "[1, 2]", '{"kind": "img", "colour": 3}', '{"kind": "vid"}'):
        meta.write_text(garbage)
        with pytest.raises(MediaError, match="stored record of .* is damaged"):
            workspace.describe(photo.handle)
    # storing the same pixels again rewrites the damaged record
    again = workspace.put_image(np.asarray(Image.open(workspace.path(photo.handle))))
    assert workspace.describe(again.handle).kind == "img"


def test_errors_never_show_object_reprs_temporary_names_or_directories(workspace, tmp_path):
    fake_video = b"\x00\x00\x00\x18ftypmp42" + os.urandom(200)
    for data in (b"not an image at all", png_bytes(Image.new("RGB", (9, 9)))[:30], fake_video):
        with pytest.raises(MediaError) as caught:
            workspace.import_bytes(data)
        message = str(caught.value)
        assert "object at 0x" not in message and ".upload" not in message
        assert "tmp" not in message and str(tmp_path) not in message
    for name, data in (("bad.png", b"garbage"), ("bad.mp4", fake_video)):
        path = tmp_path / "user folder" / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        with pytest.raises(MediaError) as caught:
            workspace.import_file(path)
        assert name in str(caught.value) and str(path.parent) not in str(caught.value)


# ----------------------------------------------------------------------------- temp files


def test_temporary_files_of_dead_processes_are_swept_when_a_workspace_opens(tmp_path):
    root = Workspace(tmp_path)
    root.put_image(np.zeros((4, 4, 3), dtype=np.uint8))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    host = root._temp_file(".png")  # this process: alive, kept
    prefix = os.path.basename(host).split(".")[0]
    folder = tmp_path / TEMP_DIR
    orphan = folder / f"{prefix}.{dead}.abc123.mp4"
    orphan.write_bytes(b"half a video")
    elsewhere = folder / "otherhost.12.xyz.png"  # another host's writer: kept until it is old
    elsewhere.write_bytes(b"x")
    Workspace(tmp_path)
    assert not orphan.exists() and os.path.exists(host) and elsewhere.exists()
    os.utime(elsewhere, (0, 0))
    Workspace(tmp_path).for_thread("t")
    assert not elsewhere.exists()


# ----------------------------------------------------------------------------- small holes


@pytest.mark.parametrize(
    "text", ["vid_0123456789abcdef#٣", "vid_0123456789abcdef#３", "img_0123456789abcdef\n"]
)
def test_handles_take_ascii_digits_only(text):
    if text.endswith("\n"):  # surrounding white space is stripped by the parser, not by is_handle
        assert not is_handle(text)
        return
    with pytest.raises(InvalidHandleError):
        parse_handle(text)
    assert not is_handle(text)
    assert find_handles(f"see {text}") == ["vid_0123456789abcdef"]


def test_an_image_above_the_pixel_cap_is_refused_before_decoding():
    huge = png_bytes(Image.new("L", (3000, 3000)))
    with pytest.raises(MediaError, match="above the cap"):
        decode_image(huge, MediaLimits(max_image_pixels=1_000_000))


def test_content_hashes_are_unchanged_by_the_refactor(workspace):
    """Handles of stored content must stay stable across versions (threads refer to them)."""
    array = np.zeros((2, 3, 3), dtype=np.uint8)
    expected = hashlib.sha256(b"img" + str(array.shape).encode() + array.tobytes()).hexdigest()
    assert workspace.put_image(array).handle == "img_" + expected[:16]
