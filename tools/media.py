"""Decoding and encoding of images and videos, with the size caps applied before pixels are decoded.

Images are read with Pillow, videos with PyAV (whose wheels ship their own FFmpeg). Everything here
raises :class:`~vitron.tools.errors.MediaError` with a message naming the problem, never a codec
traceback.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import re
import struct
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from vitron.tools.errors import MediaError, MediaTooLargeError

DEFAULT_MAX_IMAGE_PIXELS = 50_000_000
DEFAULT_MAX_VIDEO_FRAMES = 600
DEFAULT_MAX_FRAME_PIXELS = 4_000_000


@dataclass(frozen=True)
class MediaLimits:
    """Caps that protect memory: checked from headers before any pixels are decoded."""

    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    max_video_frames: int = DEFAULT_MAX_VIDEO_FRAMES
    max_frame_pixels: int = DEFAULT_MAX_FRAME_PIXELS

    def check_image_size(self, width: int, height: int, what: str = "image") -> None:
        if width <= 0 or height <= 0:
            raise MediaError(f"{what} has no pixels ({width}x{height})")
        if width * height > self.max_image_pixels:
            raise MediaTooLargeError(
                f"{what} is {width}x{height} = {width * height / 1e6:.1f} MP, above the cap of "
                f"{self.max_image_pixels / 1e6:.1f} MP; downscale it or raise max_image_pixels"
            )

    def check_frame_size(self, width: int, height: int) -> None:
        if width * height > self.max_frame_pixels:
            raise MediaTooLargeError(
                f"video frames are {width}x{height}, above the cap of "
                f"{self.max_frame_pixels / 1e6:.1f} MP per frame; raise max_frame_pixels to allow it"
            )

    def check_frame_count(self, frames: int) -> None:
        if frames > self.max_video_frames:
            raise MediaTooLargeError(
                f"video has more than {self.max_video_frames} frames (the cap); trim it or raise "
                "max_video_frames"
            )


def looks_like_video(head: bytes) -> bool:
    """Sniff the first bytes of a file: MP4/MOV, Matroska/WebM or AVI."""
    is_mp4 = head[4:8] == b"ftyp"
    is_matroska = head[:4] == b"\x1aE\xdf\xa3"
    is_avi = head[:4] == b"RIFF" and head[8:11] == b"AVI"
    return is_mp4 or is_matroska or is_avi


def inline_bytes(block: Mapping[str, Any]) -> bytes:
    """The bytes of an inline (base64) image/video content block, in the LangChain layout
    (``base64``/``data``) or the OpenAI one (a ``data:`` URL); media behind URLs are not fetched."""
    data = block.get("base64") or block.get("data")
    url = block.get("url") or (block.get("image_url") or {}).get("url")
    if data is None and isinstance(url, str) and url.startswith("data:"):
        data = url.split(",", 1)[1] if "," in url else ""
    if data is None:
        raise MediaError(
            "only inline (base64) media can be read; media behind a URL are not fetched (store "
            "the file in the workspace and mention its handle)"
        )
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MediaError(f"attachment is not valid base64: {exc}") from exc


def decode_image(
    source: bytes | str | Path | BinaryIO, limits: MediaLimits, *, name: str | None = None
) -> Image.Image:
    """Read an image as RGB, refusing it before decoding when it is above the pixel cap.

    ``name`` is how errors call the image (default: the file's name, never its directory, or
    "the attachment" for bytes). The EXIF orientation is applied, so pixels are upright as a viewer
    shows them and regions drawn on the image land where they were drawn; 16-bit and float grey
    images are scaled into 0-255 (not clipped), CMYK and palette images converted to RGB.
    """
    if name is None:
        name = Path(source).name if isinstance(source, str | Path) else "the attachment"
    try:
        fp = io.BytesIO(source) if isinstance(source, bytes) else source
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            warnings.simplefilter("ignore", UserWarning)  # palette transparency notes
            image = Image.open(fp)
            limits.check_image_size(*image.size, what=f"image {name}")
            image.load()
            return to_rgb(image)
    except MediaError:
        raise
    except FileNotFoundError as exc:
        raise MediaError(f"no such file: {name}") from exc
    except UnidentifiedImageError as exc:
        raise MediaError(
            f"cannot read {name} as an image: not a format Pillow recognises (PNG, JPEG, WebP, "
            "GIF, BMP, TIFF…)"
        ) from exc
    except (
        OSError,
        ValueError,
        SyntaxError,
        TypeError,
        struct.error,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ) as exc:
        raise MediaError(f"cannot read {name} as an image: {_clean(exc, source)}") from exc


def to_rgb(image: Image.Image) -> Image.Image:
    """An upright 8-bit RGB copy of a loaded image of any mode (see :func:`decode_image`)."""
    with contextlib.suppress(Exception):  # a garbled EXIF block must not make pixels unreadable
        image = ImageOps.exif_transpose(image)
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        grey = _scale_to_byte(np.asarray(image), image.mode)
        return Image.fromarray(np.repeat(grey[..., None], 3, axis=2))
    if image.mode in ("P", "PA", "LA", "La", "RGBa"):
        image = image.convert("RGBA")  # keeps palette transparency right before it is dropped
    return image.convert("RGB")


def _scale_to_byte(array: np.ndarray, mode: str) -> np.ndarray:
    """High-depth grey pixels to uint8 by their format's range (16-bit: / 257), or by the data's
    own range when the format does not say (32-bit integers, floats outside 0-1)."""
    values = np.nan_to_num(array.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if mode.startswith("I;16") or (mode == "I" and low >= 0 and 255 < high <= 65535):
        scaled = values / 257.0
    elif mode == "F" and low >= 0 and high <= 1:
        scaled = values * 255.0
    elif low >= 0 and high <= 255:
        scaled = values
    else:
        scaled = (values - low) * (255.0 / (high - low)) if high > low else values * 0
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def encode_png(array: np.ndarray) -> bytes:
    """PNG bytes of an HxW (grey) or HxWx3 (RGB) uint8 array."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


@dataclass(frozen=True)
class VideoProbe:
    """What a video container says about itself, read without decoding every frame."""

    width: int
    height: int
    fps: float
    frames: int | None


def probe_video(path: str | Path, *, name: str | None = None) -> VideoProbe:
    """Read a video's size, rate and (when the container knows it) frame count; ``name`` is how
    errors call it (default: the file's name)."""
    av = _import_av()
    name = name or Path(path).name
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError(f"{name} has no video stream")
            stream = container.streams.video[0]
            ctx = _codec_context(stream, name)
            fps = float(stream.average_rate or stream.guessed_rate or 0) or 0.0
            frames = stream.frames or None
            return VideoProbe(width=ctx.width, height=ctx.height, fps=fps, frames=frames)
    except MediaError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise MediaError(f"cannot read {name} as a video: {_clean(exc, path)}") from exc


def iter_video_frames(
    path: str | Path, limits: MediaLimits, *, name: str | None = None
) -> Iterator[np.ndarray]:
    """Yield HxWx3 uint8 RGB frames one by one, so long videos never sit in memory whole;
    ``name`` is how errors call the video (default: the file's name)."""
    av = _import_av()
    name = name or Path(path).name
    count = 0
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError(f"{name} has no video stream")
            stream = container.streams.video[0]
            ctx = _codec_context(stream, name)
            limits.check_frame_size(ctx.width, ctx.height)
            for frame in container.decode(stream):
                count += 1
                limits.check_frame_count(count)
                yield frame.to_ndarray(format="rgb24")
    except MediaError:
        raise
    except av.error.DecoderNotFoundError as exc:
        raise MediaError(f"{name} uses a video codec this build of FFmpeg cannot decode") from exc
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise MediaError(f"cannot read {name} as a video: {_clean(exc, path)}") from exc
    if count == 0:
        raise MediaError(f"{name} is a video with no frames")


def _codec_context(stream: Any, name: str) -> Any:
    """The stream's decoder settings; a damaged header can leave a stream without any."""
    if stream.codec_context is None:
        raise MediaError(f"cannot read {name} as a video: its video stream has no codec settings")
    return stream.codec_context


def write_video(
    frames: Iterable[np.ndarray], target: str | Path, fps: float, *, lossless: bool = False
) -> tuple[int, int, int]:
    """Encode RGB (HxWx3) or grey (HxW) uint8 frames to H.264 MP4; returns (frames, width, height).

    ``lossless`` uses QP 0 so that mask videos survive a round trip bit-exact in the luma plane.
    """
    av = _import_av()
    count, width, height = 0, 0, 0
    container = av.open(str(target), mode="w", format="mp4")
    try:
        stream = None
        for frame in frames:
            rgb = np.repeat(frame[..., None], 3, axis=2) if frame.ndim == 2 else frame
            if stream is None:
                height, width = rgb.shape[:2]
                stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
                # H.264 with 4:2:0 needs even sizes; odd sizes are padded by one pixel.
                stream.width, stream.height = width + width % 2, height + height % 2
                stream.pix_fmt = "yuv444p" if lossless else "yuv420p"
                stream.options = {"qp": "0"} if lossless else {"crf": "18"}
            if rgb.shape[:2] != (height, width):
                raise MediaError(
                    f"frame {count} is {rgb.shape[1]}x{rgb.shape[0]}, not {width}x{height}"
                )
            padded = np.pad(rgb, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
            video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(padded), format="rgb24")
            container.mux(stream.encode(video_frame))
            count += 1
        if stream is None:
            raise MediaError("cannot write a video with no frames")
        container.mux(stream.encode(None))
    finally:
        container.close()
    return count, width, height


_OBJECT_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>")
_ERRNO = re.compile(r"^\[Errno -?\d+\]\s*")
"""PyAV's ``[Errno 1094995529]`` before FFmpeg's message: FFmpeg's error code, not the user's."""
_C_FUNCTION = re.compile(r":\s*'\w+\(\)'$")
"""PyAV's ``: 'avcodec_send_packet()'`` after it: the C function that failed."""


def _clean(exc: BaseException, source: object) -> str:
    """The library's message without internals: no object reprs (``<_io.BytesIO object at 0x…>``),
    no directories (the workspace layout and a user's folders are not the planner's business), no
    error numbers or C function names (:data:`_ERRNO`, :data:`_C_FUNCTION`)."""
    text = _OBJECT_REPR.sub("the data", str(exc))
    if isinstance(source, str | Path):
        text = text.replace(f"'{source}'", "").replace(str(source), Path(source).name)
    text = _C_FUNCTION.sub("", _ERRNO.sub("", text.strip(" :")))
    return text.strip(" :") or type(exc).__name__


def _import_av():  # noqa: ANN202 - module type
    try:
        import av
    except ImportError as exc:  # pragma: no cover - av is a hard dependency
        raise MediaError("video support needs PyAV: pip install av") from exc
    return av
