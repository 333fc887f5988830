"""Property tests: every input to the handle parser, the tool argument schemas and the media
decoders gives a result or a clear error (``InvalidHandleError``, ``ValidationError``,
``MediaError``), never another exception — including truncated, oversized, zero-frame, wrong-kind,
16-bit, EXIF-rotated, CMYK and palette media."""

from __future__ import annotations

import io
import json
import warnings
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image
from pydantic import ValidationError

from vitron.tools.backend import format_validation_error, registered_backends
from vitron.tools.errors import InvalidHandleError, MediaError, UnknownHandleError
from vitron.tools.handles import HANDLE_PATTERN, parse_handle
from vitron.tools.media import MediaLimits, decode_image, iter_video_frames, write_video
from vitron.tools.workspace import Workspace

FAST = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
LIMITS = MediaLimits(max_image_pixels=40_000, max_video_frames=8, max_frame_pixels=40_000)


# ----------------------------------------------------------------------------- handles

handle_like = st.one_of(
    st.text(max_size=40),
    st.from_regex(HANDLE_PATTERN, fullmatch=True),
    st.builds(
        lambda a, b: a + b, st.from_regex(HANDLE_PATTERN, fullmatch=True), st.text(max_size=5)
    ),
)


@FAST
@given(text=handle_like)
def test_the_handle_parser_accepts_or_rejects_clearly(text):
    try:
        handle = parse_handle(text)
    except InvalidHandleError as exc:
        assert "handle" in str(exc)
        return
    assert HANDLE_PATTERN.fullmatch(str(handle)) and str(handle).isascii()
    assert handle.base == text.strip().split("#")[0]


@FAST
@given(text=handle_like)
def test_no_handle_reaches_outside_its_namespace(tmp_path_factory, text):
    workspace = Workspace(tmp_path_factory.mktemp("ws")).for_thread("t")
    try:
        workspace.path(text)
    except (InvalidHandleError, UnknownHandleError):
        return
    raise AssertionError(f"{text!r} named a file in an empty workspace")


# ----------------------------------------------------------------------------- tool arguments

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True)
    | st.text(max_size=30) | st.sampled_from(["img_0123456789abcdef", "vid_0123456789abcdef#2",
                                               "mask_0123456789abcdef", "emb_0123456789abcdef"]),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip
BACKENDS = registered_backends()


@FAST
@given(
    name=st.sampled_from(sorted(BACKENDS)),
    data=st.data(),
)
def test_tool_arguments_validate_or_say_which_argument_is_wrong(name, data):
    schema = BACKENDS[name].args_schema
    keys = st.sampled_from([*schema.model_fields, "junk"])
    args = data.draw(st.dictionaries(keys, json_values, max_size=6))
    try:
        parsed = schema.model_validate(args)
    except ValidationError as exc:
        message = format_validation_error(exc)
        assert message.startswith("invalid arguments for") and len(message) < 5000
        return
    json.dumps(parsed.model_dump())  # what a tool receives is JSON-clean


# ----------------------------------------------------------------------------- media decoders

MODES = ["RGB", "L", "I;16", "I", "F", "CMYK", "P", "LA", "RGBA", "1"]
FORMATS = ["PNG", "JPEG", "TIFF", "GIF", "BMP", "WEBP"]


def encoded(mode: str, fmt: str, width: int, height: int, orientation: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))
    if mode == "I;16":
        image = Image.fromarray(rng.integers(0, 65535, (height, width), dtype=np.uint16))
    else:
        image = image.convert(mode)
    buffer = io.BytesIO()
    extra = {}
    if orientation != 1:
        exif = Image.Exif()
        exif[0x0112] = orientation
        extra["exif"] = exif
    try:
        with warnings.catch_warnings():  # e.g. Pillow's deprecation of 32-bit grey PNGs
            warnings.simplefilter("ignore", DeprecationWarning)
            image.save(buffer, format=fmt, **extra)
    except (OSError, ValueError, KeyError):
        assume(False)  # this format cannot hold this mode
    return buffer.getvalue()


@FAST
@given(
    mode=st.sampled_from(MODES),
    fmt=st.sampled_from(FORMATS),
    size=st.tuples(st.integers(1, 300), st.integers(1, 300)),
    orientation=st.integers(1, 8),
    cut=st.none() | st.floats(0.0, 1.0),
    seed=st.integers(0, 3),
)
def test_images_decode_or_fail_clearly(mode, fmt, size, orientation, cut, seed):
    data = encoded(mode, fmt, *size, orientation, seed)
    if cut is not None:
        data = data[: int(len(data) * cut)]
    try:
        image = decode_image(data, LIMITS)
    except MediaError as exc:
        message = str(exc)
        assert "object at 0x" not in message and message
        if cut is None:  # a whole file fails only for being too large
            assert size[0] * size[1] > LIMITS.max_image_pixels, message
        return
    assert image.mode == "RGB" and image.width * image.height == size[0] * size[1]
    if orientation in (5, 6, 7, 8) and cut is None and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        assert image.size == (size[1], size[0])  # rotated upright


@FAST
@given(data=st.binary(max_size=300))
def test_any_bytes_are_an_image_or_a_clear_error(data):
    try:
        decode_image(data, LIMITS)
    except MediaError as exc:
        assert "object at 0x" not in str(exc)


def _mp4(folder: Path, frames: int, size: tuple[int, int] = (24, 16)) -> bytes:
    """An H.264 MP4 of ``frames`` frames; 0 gives a container with a video stream and no frames."""
    path = folder / f"{frames}.mp4"
    if frames == 0:
        buffer = io.BytesIO()
        with av.open(buffer, mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=Fraction(4))
            stream.width, stream.height, stream.pix_fmt = *size, "yuv420p"
            container.start_encoding()  # the header, then no frames at all
            container.mux(stream.encode(None))
        path.write_bytes(buffer.getvalue())
    else:
        shade = [
            np.full((size[1], size[0], 3), 40 * i % 255, dtype=np.uint8) for i in range(frames)
        ]
        write_video(shade, path, 4.0)
    return path.read_bytes()


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("videos")
    return {"ok": _mp4(folder, 3), "zero": _mp4(folder, 0), "long": _mp4(folder, 12)}


@FAST
@given(
    which=st.sampled_from(["ok", "zero", "long", "image"]),
    cut=st.none() | st.floats(0.0, 1.0),
)
def test_videos_import_or_fail_clearly(tmp_path_factory, videos, which, cut):
    data = videos.get(which) or encoded("RGB", "PNG", 20, 20, 1, 0)
    if cut is not None:
        data = data[: int(len(data) * cut)]
    root = tmp_path_factory.mktemp("ws")
    workspace = Workspace(root, limits=LIMITS).for_thread("t")
    path = root / "upload.mp4"
    path.write_bytes(data)
    if which != "image":
        with pytest.raises(MediaError, match="cannot read the attachment as an image"):
            decode_image(data, LIMITS)  # a video (or nothing) given as an image
    for attempt in (lambda: workspace.import_bytes(data), lambda: workspace.import_file(path),
                    lambda: list(iter_video_frames(path, LIMITS))):  # fmt: skip
        try:
            attempt()
        except MediaError as exc:
            message = str(exc)
            assert "object at 0x" not in message and str(root) not in message
            assert ".tmp" not in message and ".upload" not in message
            if which == "zero" and cut is None:
                assert any(s in message for s in ("no frames", "no video stream", "cannot read"))
            if which == "long" and cut is None:
                assert "more than 8 frames" in message
        else:
            assert which in ("ok", "image") or cut is not None  # zero and long never pass
    assert not list((root / ".tmp").glob("*")) if (root / ".tmp").exists() else True
