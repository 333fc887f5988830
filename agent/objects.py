"""Object tokens: the objects a class-agnostic segmenter finds in a picture, read as regions.

A planner that reads a picture only through its patch tokens has to count and look things up by
attending over 64 of them; at nano size it does neither (VQA counts and "is there" sit at their
priors: ``tools/profiles/nano/README.md``, "Reading pictures"). Read one token per object instead
(the patch features pooled under the object's mask, with its box: what the region encoder already
computes for a sketch) and a planner-sized reader counts ("bottom-up" VQA models read detector
regions the same way; ``benchmarks/bench_reading_tokens.py`` measures it).

:class:`ObjectFinder` wraps SAM's automatic mask generator (the nano SAM in the nano profile): the
masks it finds, the background and masks mostly inside a kept one left out, at most
``max_objects``, ordered left to right. The processor puts one ``<region>`` token per object right
after a picture's image tokens (:class:`~vitron.agent.processing.VitronProcessor`); object regions
carry no region mark, so a user's sketch stays the one region marked on the picture.

Masks are ``H x W`` bool at the picture's size. A planner folder that reads objects names its
segmenter in ``object_finder.json`` (``{"source": "../sam", ...}``), as it names its tower.
``python -m vitron.agent.training.nano RUN --objects`` trains such a planner; the committed nano
planner does not read objects (tried: ``tools/profiles/nano/README.md``, "Object tokens in the
planner").
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

OBJECT_FINDER_FILE = "object_finder.json"


@dataclass(frozen=True)
class ObjectFinderSettings:
    """What a planner was trained with; saved beside it, so it reads objects as it learnt them.

    ``source``: the segmenter's folder (relative to the planner's folder, or absolute);
    ``max_objects``: tokens per picture at most; ``max_area``: a mask covering more of the picture
    than this is the background; ``inside``: a mask with more than this share of its pixels in a
    kept (larger) mask is a part of it; ``automatic``: ``SamAutomaticMaskGenerator`` settings
    (with ``max_side``, as a profile's ``automatic`` table gives them to ``segment_image``)."""

    source: str
    max_objects: int = 6
    max_area: float = 0.4
    inside: float = 0.5
    automatic: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.max_objects < 1:
            raise ValueError(f"max_objects must be 1 or more, not {self.max_objects}")
        for name in ("max_area", "inside"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], not {getattr(self, name)}")

    def save(self, folder: str | Path) -> None:
        Path(folder, OBJECT_FINDER_FILE).write_text(json.dumps(asdict(self), indent=2) + "\n")

    def save_relative(self, source: Path, folder: str | Path) -> None:
        """Save into ``folder`` with ``source`` (absolute) named relative to it."""
        relative = os.path.relpath(source, Path(folder).resolve())
        replace(self, source=relative).save(folder)

    @classmethod
    def read(cls, folder: str | Path) -> ObjectFinderSettings | None:
        """The settings saved in ``folder``; ``None`` when the planner reads no objects. A file
        that is not valid settings raises ``ValueError`` naming it."""
        path = Path(folder, OBJECT_FINDER_FILE)
        if not path.is_file():
            return None
        try:
            return cls(**json.loads(path.read_text()))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: not object finder settings ({exc})") from exc

    def source_path(self, folder: str | Path) -> Path:
        """The segmenter's folder, a relative ``source`` read from the planner's ``folder``."""
        source = Path(self.source)
        return source if source.is_absolute() else (Path(folder) / source).resolve()


Segment = Callable[[Image.Image], Sequence[np.ndarray]]
"""A picture -> the masks a class-agnostic segmenter finds (``H x W`` bool each)."""


class ObjectFinder:
    """``finder(image)``: the objects in a picture as ``H x W`` bool masks, left to right.

    Results are cached by the picture's pixels (a training run reads each picture many times;
    a conversation, on every turn), the least recently used dropped once the masks take more than
    ``cache_bytes`` (256 MB: every picture of a nano training run at 64 px, a few hundred large
    ones)."""

    def __init__(
        self,
        segment: Segment,
        settings: ObjectFinderSettings,
        cache_bytes: int = 256 * 2**20,
        source: Path | None = None,
    ) -> None:
        self.segment = segment
        self.settings = settings
        self.source = source
        """The segmenter's folder, absolute (``None``: not loaded from one)."""
        self.cache_bytes = cache_bytes
        self._cache: OrderedDict[str, list[np.ndarray]] = OrderedDict()
        self._cached_bytes = 0

    def __call__(self, image: Any) -> list[np.ndarray]:
        picture = _as_image(image)
        key = hashlib.blake2b(
            picture.tobytes() + repr(picture.size).encode(), digest_size=16
        ).hexdigest()
        found = self._cache.get(key)
        if found is None:
            found = self.select(list(self.segment(picture)))
            self._cache[key] = found
            self._cached_bytes += sum(m.nbytes for m in found)
            while self._cached_bytes > self.cache_bytes and len(self._cache) > 1:
                _, dropped = self._cache.popitem(last=False)
                self._cached_bytes -= sum(m.nbytes for m in dropped)
        self._cache.move_to_end(key)
        return [m.copy() for m in found]

    def select(self, masks: list[np.ndarray]) -> list[np.ndarray]:
        """Largest first: drop the background (above ``max_area``) and parts of kept masks
        (``inside``), keep ``max_objects``, then order them left to right (by the box's centre)."""
        settings = self.settings
        kept: list[np.ndarray] = []
        for mask in sorted((np.asarray(m, dtype=bool) for m in masks), key=lambda m: -m.sum()):
            area = int(mask.sum())
            if not area or area > settings.max_area * mask.size:
                continue
            if any((mask & k).sum() > settings.inside * area for k in kept):
                continue
            kept.append(mask)
            if len(kept) == settings.max_objects:
                break
        return sorted(kept, key=_centre_x)


def _centre_x(mask: np.ndarray) -> float:
    """The horizontal centre of ``mask``'s box (normalised; the mask is not empty)."""
    from vitron.tools.geometry import mask_box

    x1, _, x2, _ = mask_box(mask)
    return (x1 + x2) / 2.0


def _as_image(image: Any) -> Image.Image:
    """Any image the processor takes (PIL, ``H x W (x 3)`` array, ``3 x H x W`` tensor), read
    as the processor reads it (:func:`~vitron.agent.processing._to_chw_float`) -> RGB PIL."""
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    from vitron.agent.processing import _to_chw_float

    pixels = _to_chw_float(image).clamp(0.0, 1.0).permute(1, 2, 0).numpy()
    return Image.fromarray(np.round(pixels * 255.0).astype(np.uint8))


def sam_object_finder(
    settings: ObjectFinderSettings, planner_folder: str | Path, device: str = "cpu"
) -> ObjectFinder:
    """An :class:`ObjectFinder` over the SAM checkpoint ``settings.source`` names (a folder
    ``vitron.tools``' ``sam`` loader reads), loaded by that loader."""
    import types

    import torch

    from vitron.tools.models.sam import load_sam
    from vitron.tools.profiles import ComponentSpec

    source = settings.source_path(planner_folder)
    if not source.exists():
        raise FileNotFoundError(
            f"{Path(planner_folder) / OBJECT_FINDER_FILE} names the segmenter {settings.source!r}, "
            f"which is not there ({source}): put the SAM folder there or fix the file's source"
        )
    spec = ComponentSpec(name="object_finder", loader="sam", profile="planner",
                         checkpoint=str(source),
                         options={"automatic": dict(settings.automatic)})  # fmt: skip
    context = types.SimpleNamespace(device=torch.device(device), dtype=torch.float32)
    engine = load_sam(spec, context)
    return ObjectFinder(lambda picture: [m.mask for m in engine.automatic(picture)], settings,
                        source=Path(spec.checkpoint))  # fmt: skip


def save_object_finder(finder: Any, folder: str | Path) -> None:
    """Write ``finder``'s settings into a planner ``folder``, its segmenter named relative to the
    folder; nothing for a processor without a finder loaded from a folder."""
    if not isinstance(finder, ObjectFinder) or finder.source is None:
        Path(folder, OBJECT_FINDER_FILE).unlink(missing_ok=True)
        return
    finder.settings.save_relative(finder.source, folder)


def move_object_finder(old_folder: str | Path, new_folder: str | Path) -> None:
    """After a planner folder is copied from ``old_folder`` to ``new_folder``: name its segmenter
    relative to the new place."""
    settings = ObjectFinderSettings.read(new_folder)
    if settings is not None:
        settings.save_relative(settings.source_path(old_folder), new_folder)
