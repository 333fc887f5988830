"""Readers: public data set layouts on local disk -> :class:`~vitron.agent.training.records.Record`.

Every reader takes the data set ``root`` (media paths in the records are relative to it) and
returns a :class:`ReadResult`: the records and what was skipped, each skip naming the file (and
entry) and the reason. A sample whose media file is missing is skipped here; one whose file turns
out to be corrupt is skipped when it is loaded (:mod:`vitron.agent.training.dataset`). Nothing is
downloaded.

Formats:

- ``records``: this project's JSON lines (:mod:`~vitron.agent.training.records`);
- ``vitron``: the released Vitron instruction data (a JSON list of ``{"id", "image" | "video",
  "bbox"?, "conversations": [{"from": "human" | "gpt", "value"}]}``, invocations written
  ``<module>B</module><instruction>segmentation: …</instruction>`` with letters A–G), rewritten
  into this project's grammar;
- ``refcoco``: the refer layout of RefCOCO/+/g (``refs(<split_by>).p`` or ``.json`` and
  ``instances.json``, COCO images in ``image_dir``); the pickle is read with an unpickler that
  refuses every class, so it can only build plain lists, dicts and strings;
- ``coco_captions``: ``captions_*.json`` of COCO;
- ``magicbrush``: the MagicBrush release (``edit_sessions.json``, ``images/<img_id>/…``,
  optionally ``local_descriptions.json``);
- ``webvid``: a WebVid-style CSV (``videoid``, ``name``, ``page_dir``; videos at
  ``<video_dir>/<page_dir>/<videoid>.mp4``).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import pickle
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vitron.agent.invocation import format_invocation, format_region
from vitron.agent.parsing import parse_reply
from vitron.agent.training.records import (
    Record,
    RecordError,
    Skipped,
    iter_jsonl,
)

logger = logging.getLogger(__name__)


@dataclass
class ReadResult:
    """Records read from one source and the samples skipped (with where and why)."""

    records: list[Record] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def skip(self, where: str, reason: str) -> None:
        item = Skipped(where, reason)
        logger.warning("skipped %s", item)
        self.skipped.append(item)

    def add(self, where: str, build: Callable[[], Record]) -> None:
        """Append ``build()``; a :class:`RecordError` or a missing file becomes a skip."""
        try:
            self.records.append(build())
        except (RecordError, MissingMedia) as exc:
            self.skip(where, str(exc))


class MissingMedia(Exception):
    """A record names a file that is not under the root."""


def _require(root: Path, relative: str) -> str:
    if not (root / relative).exists():
        raise MissingMedia(f"missing file {root / relative}")
    return relative


def _load_json(path: Path, result: ReadResult) -> Any | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        result.skip(str(path), f"cannot read: {exc}")
        return None


# --------------------------------------------------------------------------------------------
# this project's records


def read_records(root: str | Path, files: Iterable[str] = ("train.jsonl",)) -> ReadResult:
    """Records from JSON-lines ``files`` under ``root``; records naming missing files skipped."""
    root = Path(root)
    result = ReadResult()
    for name in files:
        for item in iter_jsonl(root / name):
            if isinstance(item, Skipped):
                result.skip(item.where, item.reason)
                continue
            absent = [p for p in item.media_paths() if not (root / p).exists()]
            if absent:
                result.skip(f"{root / name} record {item.id}", f"missing file {root / absent[0]}")
            else:
                result.records.append(item)
    return result


# --------------------------------------------------------------------------------------------
# released Vitron instruction data

_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}


def to_grammar(text: str) -> tuple[str, list[str]]:
    """A released-format reply rewritten in this project's grammar, and its modules in order.

    Each parsed invocation (``<module>B</module>…``) is replaced by
    :func:`~vitron.agent.invocation.format_invocation` of the same module, instruction and
    regions, with the module's signal token; text around it is kept. Malformed invocations raise
    :class:`RecordError` (training on them would teach the malformation).
    """
    parsed = parse_reply(text)
    if parsed.errors:
        raise RecordError(f"invocation does not parse: {parsed.errors[0]}")
    out, position, modules = [], 0, []
    for invocation in parsed.invocations:
        start, end = invocation.span
        out.append(text[position:start])
        out.append(format_invocation(invocation.module, invocation.instruction, invocation.regions))
        modules.append(invocation.module)
        position = end
    out.append(text[position:])
    return "".join(out).strip(), modules


def read_vitron(
    root: str | Path, annotation: str = "vitron.json", *, media_dir: str = ""
) -> ReadResult:
    """The released Vitron invocation JSON (see the module docstring); media under ``media_dir``."""
    root = Path(root)
    result = ReadResult()
    path = root / annotation
    data = _load_json(path, result)
    if data is None:
        return result
    if not isinstance(data, list):
        result.skip(str(path), "expected a JSON list of samples")
        return result
    for index, sample in enumerate(data):
        where = f"{path} item {index}"
        if not isinstance(sample, Mapping):
            result.skip(where, "not an object")
            continue
        result.add(where, lambda s=sample, i=index: _vitron_record(root, media_dir, s, i))
    return result


def _vitron_record(root: Path, media_dir: str, sample: Mapping[str, Any], index: int) -> Record:
    media: list[dict[str, Any]] = []
    kind = "image" if sample.get("image") else "video" if sample.get("video") else None
    if kind is not None:
        relative = str(Path(media_dir, str(sample[kind])).as_posix())
        media.append({"kind": kind, "path": _require(root, relative)})
    messages, modules = [], []
    for turn in sample.get("conversations") or []:
        role = _ROLES.get(str(turn.get("from", "")).lower())
        if role is None:
            raise RecordError(f"unknown speaker {turn.get('from')!r}")
        text = str(turn.get("value", ""))
        if role == "assistant":
            text, found = to_grammar(text)
            modules += found
        messages.append({"role": role, "text": text})
    placeholder = f"<{kind}>"
    if kind is not None and not any(placeholder in m["text"] for m in messages):
        first = next((m for m in messages if m["role"] == "user"), None)
        if first is None:
            raise RecordError("no user turn to attach the media to")
        first["text"] = f"{placeholder}\n{first['text']}"
    regions = []
    box = sample.get("bbox")
    if box and any("<region>" in m["text"] for m in messages):
        regions.append({"media": 0, "box": _normalise_box(root, media[0]["path"], box)})
    return Record.from_json(
        {
            "id": str(sample.get("id", index)),
            "source": "vitron",
            "task": modules[0] if modules else None,
            "media": media,
            "regions": regions,
            "messages": messages,
        }
    )


def _normalise_box(root: Path, image: str, box: list[float]) -> list[float]:
    """A released ``bbox`` (normalised, or pixels of the image) as a normalised box."""
    values = [float(v) for v in box]
    if max(values) <= 1.0:
        return values
    from PIL import Image

    with Image.open(root / image) as im:  # reads the header only
        width, height = im.size
    return [values[0] / width, values[1] / height, values[2] / width, values[3] / height]


# --------------------------------------------------------------------------------------------
# RefCOCO / RefCOCO+ / RefCOCOg (refer layout)


class _NoClasses(pickle.Unpickler):
    """Unpickler for data-only pickles: any class or function reference is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data pickle")


def load_data_pickle(path: Path) -> Any:
    """Plain data (lists, dicts, strings, numbers) from a pickle, never running its code."""
    return _NoClasses(io.BytesIO(path.read_bytes()), encoding="latin1").load()


def read_refcoco(
    root: str | Path,
    *,
    split_by: str = "unc",
    split: str = "train",
    image_dir: str = "images",
    mode: str = "segment",
) -> ReadResult:
    """One record per referring sentence of ``split``.

    ``mode="segment"``: the reply invokes ``segment_image`` with the sentence and ``[SEG]``,
    supervised by the referred object's polygons; ``mode="ground"``: the reply states the box as
    text (``<Region>(x1, y1, x2, y2)</Region>``, 0–999), the stage-3 "boxes as text" data.
    """
    if mode not in ("segment", "ground"):
        raise ValueError(f"refcoco mode must be 'segment' or 'ground', got {mode!r}")
    root = Path(root)
    result = ReadResult()
    refs_path = root / f"refs({split_by}).json"
    if not refs_path.exists():
        refs_path = root / f"refs({split_by}).p"
    try:
        refs = (
            load_data_pickle(refs_path)
            if refs_path.suffix == ".p"
            else json.loads(refs_path.read_text(encoding="utf-8"))
        )
    except (OSError, pickle.UnpicklingError, json.JSONDecodeError, EOFError) as exc:
        result.skip(str(refs_path), f"cannot read: {exc}")
        return result
    instances = _load_json(root / "instances.json", result)
    if instances is None:
        return result
    images = {img["id"]: img for img in instances.get("images", [])}
    annotations = {ann["id"]: ann for ann in instances.get("annotations", [])}
    for ref in refs:
        if ref.get("split") != split:
            continue
        image = images.get(ref.get("image_id"))
        annotation = annotations.get(ref.get("ann_id"))
        for k, sentence in enumerate(ref.get("sentences") or []):
            where = f"{refs_path} ref {ref.get('ref_id')} sentence {k}"
            if image is None or annotation is None:
                result.skip(where, "its image or annotation is not in instances.json")
                continue
            text = str(sentence.get("sent") or sentence.get("raw") or "").strip()
            result.add(
                where,
                lambda r=ref, k=k, t=text, im=image, a=annotation: _refcoco_record(
                    root, image_dir, r, k, t, im, a, mode
                ),
            )
    return result


def _refcoco_record(
    root: Path,
    image_dir: str,
    ref: Mapping[str, Any],
    k: int,
    text: str,
    image: Mapping[str, Any],
    annotation: Mapping[str, Any],
    mode: str,
) -> Record:
    path = _require(root, str(Path(image_dir, image["file_name"]).as_posix()))
    width, height = float(image["width"]), float(image["height"])
    x, y, w, h = (float(v) for v in annotation["bbox"])
    box = [x / width, y / height, min(1.0, (x + w) / width), min(1.0, (y + h) / height)]
    base = {
        "id": f"refcoco-{ref.get('ref_id')}-{k}",
        "source": "refcoco",
        "media": [{"kind": "image", "path": path}],
    }
    if mode == "ground":
        return Record.from_json(
            base
            | {
                "messages": [
                    {"role": "user", "text": f"<image>\nWhere is {text}? Answer with a box."},
                    {"role": "assistant", "text": f"<Region>{format_region(box)}</Region>"},
                ]
            }
        )
    segmentation = annotation.get("segmentation")
    if not isinstance(segmentation, list) or not segmentation:
        raise RecordError("the annotation has no polygon segmentation (RLE is not supported)")
    polygons = [
        [min(1.0, max(0.0, v / (width if j % 2 == 0 else height))) for j, v in enumerate(poly)]
        for poly in segmentation
    ]
    return Record.from_json(
        base
        | {
            "task": "segment_image",
            "messages": [
                {"role": "user", "text": f"<image>\nPlease segment {text}."},
                {"role": "assistant", "text": format_invocation("segment_image", text)},
            ],
            "signals": [{"token": "[SEG]", "media": 0, "mask_polygons": polygons}],
        }
    )


# --------------------------------------------------------------------------------------------
# COCO captions


def read_coco_captions(
    root: str | Path,
    annotation: str = "annotations/captions_train2017.json",
    *,
    image_dir: str = "train2017",
    prompt: str = "Describe the image briefly.",
) -> ReadResult:
    """One record per caption: ``<image>`` + ``prompt`` -> the caption (stage 1 alignment)."""
    root = Path(root)
    result = ReadResult()
    path = root / annotation
    data = _load_json(path, result)
    if data is None:
        return result
    images = {img["id"]: img for img in data.get("images", [])}
    for ann in data.get("annotations", []):
        where = f"{path} annotation {ann.get('id')}"
        image = images.get(ann.get("image_id"))
        if image is None:
            result.skip(where, f"image {ann.get('image_id')} is not listed")
            continue
        result.add(
            where,
            lambda a=ann, im=image: Record.from_json(
                {
                    "id": f"coco-{a.get('id')}",
                    "source": "coco_captions",
                    "media": [
                        {
                            "kind": "image",
                            "path": _require(root, f"{image_dir}/{im['file_name']}"),
                        }
                    ],
                    "messages": [
                        {"role": "user", "text": f"<image>\n{prompt}"},
                        {"role": "assistant", "text": str(a.get("caption", "")).strip()},
                    ],
                }
            ),
        )
    return result


# --------------------------------------------------------------------------------------------
# MagicBrush


def read_magicbrush(
    root: str | Path, sessions: str = "edit_sessions.json", *, image_dir: str = "images"
) -> ReadResult:
    """One ``edit_image`` record per edit turn; ``[EDIT]`` is supervised by the output's local
    description (``local_descriptions.json``) when present, else by the instruction."""
    root = Path(root)
    result = ReadResult()
    path = root / sessions
    data = _load_json(path, result)
    if data is None:
        return result
    descriptions: dict[str, str] = {}
    if (root / "local_descriptions.json").exists():
        descriptions = _load_json(root / "local_descriptions.json", result) or {}
    for image_id, turns in data.items():
        for k, turn in enumerate(turns):
            where = f"{path} {image_id} turn {k}"
            result.add(
                where,
                lambda i=image_id, k=k, t=turn: _magicbrush_record(
                    root, image_dir, i, k, t, descriptions
                ),
            )
    return result


def _magicbrush_record(
    root: Path,
    image_dir: str,
    image_id: str,
    k: int,
    turn: Mapping[str, Any],
    descriptions: Mapping[str, str],
) -> Record:
    folder = f"{image_dir}/{image_id}"
    source = _require(root, f"{folder}/{turn['input']}")
    output = _require(root, f"{folder}/{turn['output']}")
    instruction = str(turn.get("instruction", "")).strip()
    caption = descriptions.get(str(turn["output"])) or instruction
    return Record.from_json(
        {
            "id": f"magicbrush-{image_id}-{k}",
            "source": "magicbrush",
            "task": "edit_image",
            "media": [{"kind": "image", "path": source}],
            "messages": [
                {"role": "user", "text": f"<image>\n{instruction}"},
                {"role": "assistant", "text": format_invocation("edit_image", instruction)},
            ],
            "signals": [{"token": "[EDIT]", "caption": caption, "target_media": output}],
        }
    )


# --------------------------------------------------------------------------------------------
# WebVid-style video lists


def read_webvid(
    root: str | Path,
    csv_file: str = "results.csv",
    *,
    video_dir: str = "videos",
    mode: str = "generate",
) -> ReadResult:
    """One record per CSV row. ``mode="generate"``: text -> ``generate_video`` with ``[VID]``
    supervised by the caption (no video file needed); ``mode="caption"``: ``<video>`` -> caption."""
    if mode not in ("generate", "caption"):
        raise ValueError(f"webvid mode must be 'generate' or 'caption', got {mode!r}")
    root = Path(root)
    result = ReadResult()
    path = root / csv_file
    try:
        rows = list(csv.DictReader(path.read_text(encoding="utf-8").splitlines()))
    except (OSError, csv.Error) as exc:
        result.skip(str(path), f"cannot read: {exc}")
        return result
    for number, row in enumerate(rows, start=2):
        where = f"{path}:{number}"
        if not row.get("videoid") or not (row.get("name") or "").strip():
            result.skip(where, "row lacks videoid or name")
            continue
        result.add(where, lambda r=row: _webvid_record(root, video_dir, r, mode))
    return result


def _webvid_record(root: Path, video_dir: str, row: Mapping[str, str], mode: str) -> Record:
    caption = row["name"].strip()
    base = {"id": f"webvid-{row['videoid']}", "source": "webvid"}
    if mode == "generate":
        return Record.from_json(
            base
            | {
                "task": "generate_video",
                "messages": [
                    {"role": "user", "text": f"Make a video of {caption}"},
                    {"role": "assistant", "text": format_invocation("generate_video", caption)},
                ],
                "signals": [{"token": "[VID]", "caption": caption}],
            }
        )
    folder = f"{video_dir}/{row['page_dir']}" if row.get("page_dir") else video_dir
    video = _require(root, f"{folder}/{row['videoid']}.mp4")
    return Record.from_json(
        base
        | {
            "media": [{"kind": "video", "path": video}],
            "messages": [
                {"role": "user", "text": "<video>\nDescribe the video briefly."},
                {"role": "assistant", "text": caption},
            ],
        }
    )


# --------------------------------------------------------------------------------------------

READERS: dict[str, Callable[..., ReadResult]] = {
    "records": read_records,
    "vitron": read_vitron,
    "refcoco": read_refcoco,
    "coco_captions": read_coco_captions,
    "magicbrush": read_magicbrush,
    "webvid": read_webvid,
}
"""Reader by format name, as data set entries of a training config name them."""


def read_source(fmt: str, root: str | Path, **options: Any) -> ReadResult:
    """Read one source; an unknown format is a ``ValueError`` listing the known ones."""
    if fmt not in READERS:
        raise ValueError(f"unknown data format {fmt!r}; known: {', '.join(READERS)}")
    result = READERS[fmt](root, **options)
    logger.info(
        "%s at %s: %d records, %d skipped", fmt, root, len(result.records), len(result.skipped)
    )
    return result
