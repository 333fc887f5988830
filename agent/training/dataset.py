"""Loading a record's files: images, videos, region sketches and target masks, as pixels.

:func:`load_sample` turns a :class:`~vitron.agent.training.records.Record` into a
:class:`LoadedSample` the collator can encode. Any unreadable file (missing, corrupt, above the
media caps) raises :class:`SampleError` naming the file; :class:`RecordDataset` catches it,
logs the path, counts the skip and returns ``None``, which the collator drops — a run never dies
on one bad sample.

Conventions: images are RGB ``PIL.Image``; masks are (H, W) float32 arrays in [0, 1] at the size
of the image they are drawn on (a mask file of another size is resampled, nearest neighbour).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from vitron.agent.inputs import RegionInput, VideoInput
from vitron.agent.training.records import Record, SignalTarget
from vitron.tools.errors import MediaError
from vitron.tools.geometry import box_mask
from vitron.tools.media import MediaLimits, decode_image, iter_video_frames, probe_video

logger = logging.getLogger(__name__)

FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


class SampleError(Exception):
    """A sample whose files cannot be used; the message names the file."""


@dataclass
class LoadedSample:
    """A record with its media decoded, in the record's order.

    ``media`` holds a ``PIL.Image`` per image entry and a :class:`VideoInput` per video entry;
    ``regions`` one :class:`RegionInput` per ``<region>``; ``target_masks`` one (H, W) float mask
    (or ``None``) per signal target, on its image or on its video's first frame.
    """

    record: Record
    media: list[Image.Image | VideoInput]
    regions: list[RegionInput] = field(default_factory=list)
    target_masks: list[np.ndarray | None] = field(default_factory=list)
    target_images: list[Image.Image | None] = field(default_factory=list)
    """Per signal target: its ``target_media`` when that is an image (the wanted output)."""


def load_sample(
    record: Record, root: str | Path, *, limits: MediaLimits | None = None, max_frames: int = 64
) -> LoadedSample:
    """Decode every file ``record`` names (relative to ``root``); :class:`SampleError` if one
    cannot be read. Videos keep at most ``max_frames`` frames, sampled uniformly."""
    root = Path(root)
    limits = limits or MediaLimits()
    media: list[Image.Image | VideoInput] = []
    for ref in record.media:
        path = root / ref.path
        if ref.kind == "image":
            media.append(_image(path, limits))
        else:
            media.append(_video(path, limits, ref.fps, max_frames))
    regions = []
    for region in record.regions:
        image = media[region.media]
        assert isinstance(image, Image.Image)  # Record.check guarantees it
        if region.mask is not None:
            mask = _mask(root / region.mask, image.size, limits)
        else:
            mask = box_mask(list(region.box), *image.size).astype(np.float32)
        if not mask.any():
            raise SampleError(f"region mask {root / (region.mask or '')} is empty")
        regions.append(RegionInput(mask, image=_image_index(record, region.media)))
    targets = [_target_mask(t, media, root, limits) for t in record.signals]
    wanted = [
        _image(root / t.target_media, limits)
        if t.target_media and Path(t.target_media).suffix.lower() in FRAME_SUFFIXES
        else None
        for t in record.signals
    ]
    return LoadedSample(record, media, regions, targets, wanted)


def _image_index(record: Record, media_index: int) -> int:
    """Index of ``media[media_index]`` among the record's images (the processor counts images)."""
    return sum(1 for m in record.media[:media_index] if m.kind == "image")


def _image(path: Path, limits: MediaLimits) -> Image.Image:
    try:
        return decode_image(path, limits)
    except MediaError as exc:
        raise SampleError(f"{path}: {exc}") from exc


def _mask(path: Path, size: tuple[int, int], limits: MediaLimits) -> np.ndarray:
    """(H, W) float mask in [0, 1] from a PNG, resampled (nearest) to ``size`` = (W, H)."""
    grey = _image(path, limits).convert("L")
    if grey.size != size:
        grey = grey.resize(size, Image.NEAREST)
    return (np.asarray(grey, dtype=np.float32) / 255.0 > 0.5).astype(np.float32)


def _video(path: Path, limits: MediaLimits, fps: float | None, max_frames: int) -> VideoInput:
    try:
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in FRAME_SUFFIXES)
            if not files:
                raise SampleError(f"{path}: a frame directory without image files")
            limits.check_frame_count(len(files))
            frames = [np.asarray(decode_image(p, limits)) for p in _pick(files, max_frames)]
            rate = fps
        else:
            rate = fps or probe_video(path).fps or None
            decoded = list(iter_video_frames(path, limits))
            frames = _pick(decoded, max_frames)
    except MediaError as exc:
        raise SampleError(f"{path}: {exc}") from exc
    return VideoInput(np.stack(frames), fps=rate)


def _pick(items: list, count: int) -> list:
    if len(items) <= count:
        return items
    return [items[min(len(items) - 1, int((k + 0.5) * len(items) / count))] for k in range(count)]


def _target_mask(
    target: SignalTarget, media: list[Image.Image | VideoInput], root: Path, limits: MediaLimits
) -> np.ndarray | None:
    if not target.has_mask:
        return None
    assert target.media is not None
    item = media[target.media]
    if isinstance(item, VideoInput):
        first = item.frames[0]
        height, width = np.asarray(first).shape[:2]
    else:
        width, height = item.size
    if target.mask is not None:
        return _mask(root / target.mask, (width, height), limits)
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    for polygon in target.mask_polygons or []:
        points = [(polygon[j] * width, polygon[j + 1] * height) for j in range(0, len(polygon), 2)]
        draw.polygon(points, fill=255)
    return (np.asarray(canvas, dtype=np.float32) > 127).astype(np.float32)


MEDIA_LENGTH = 256
"""Characters an image or video counts as in :meth:`RecordDataset.length` (about its tokens)."""


class RecordDataset:
    """Records + root as a map-style data set of :class:`LoadedSample` (``None`` when skipped).

    ``skipped`` counts samples whose files could not be read, ``skipped_paths`` names them; the
    trainer logs both.
    """

    def __init__(
        self,
        records: list[Record],
        root: str | Path | list[str | Path],
        *,
        limits: MediaLimits | None = None,
        max_frames: int = 64,
    ) -> None:
        roots = root if isinstance(root, list) else [root] * len(records)
        if len(roots) != len(records):
            raise ValueError(f"{len(records)} records but {len(roots)} roots")
        self.records = records
        self.roots = [Path(r) for r in roots]
        self.limits = limits or MediaLimits()
        self.max_frames = max_frames
        self.skipped = 0
        self.skipped_paths: list[str] = []

    def __len__(self) -> int:
        return len(self.records)

    def length(self, index: int) -> int:
        """A cheap size estimate of record ``index`` for length grouping: characters of text plus
        a fixed share per medium (no file is read)."""
        record = self.records[index]
        return sum(len(m.text) for m in record.messages) + MEDIA_LENGTH * len(record.media)

    def __getitem__(self, index: int) -> LoadedSample | None:
        try:
            return load_sample(
                self.records[index],
                self.roots[index],
                limits=self.limits,
                max_frames=self.max_frames,
            )
        except SampleError as exc:
            self.skipped += 1
            self.skipped_paths.append(str(exc))
            logger.warning("skipped sample %s: %s", self.records[index].id, exc)
            return None
