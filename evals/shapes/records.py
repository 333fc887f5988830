"""The shapes world written as training data, in the record format of
:mod:`vitron.agent.training.records` (JSON lines; media as PNG files under the data set root).

Layout of a written split::

    root/<split>.jsonl
    root/<split>/<sample id>/media0.png          images
    root/<split>/<sample id>/media1/00000.png …  videos, as folders of frames (lossless)
    root/<split>/<sample id>/region0.png         region sketches
    root/<split>/<sample id>/signal0.png         target masks of [SEG] / [TRK]
    root/<split>/<sample id>/target0.png         wanted outputs (edited / generated images)

A sample becomes one conversation: the user message (``<image>``/``<video>`` placeholders, then
the instruction, then ``<region>`` for a drawn region), and the assistant's target reply in the
invocation grammar, one invocation per ground-truth call (a two-step request alternates assistant
invocations with a short tool message), or the answer in words for tasks answered in text. Each
signal token is supervised: ``[SEG]``/``[TRK]`` by the target's mask, ``[GEN]``/``[VID]``/
``[EDIT]`` by the call's instruction as caption (and the wanted image where the world knows it).
``task`` is the module of the first call (``None`` for answers in text); ``meta`` keeps the split,
the world's task name, the seed and index, the colour–shape combinations and the answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from vitron.agent.invocation import MODULES, format_invocation
from vitron.agent.training.records import Record, write_jsonl
from vitron.evals.sample import Sample
from vitron.evals.shapes.dataset import generate


def _png(root: Path, relative: str, array: np.ndarray) -> str:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    Image.fromarray(array).save(path, optimize=False, compress_level=6)
    return relative


def to_record(sample: Sample, root: str | Path) -> Record:
    """Write ``sample``'s files under ``root`` and return its record."""
    root = Path(root)
    folder = f"{sample.split}/{sample.id}"
    media = []
    for k, item in enumerate(sample.media):
        if item.kind == "image":
            media.append(
                {"kind": "image", "path": _png(root, f"{folder}/media{k}.png", item.pixels)}
            )
        else:
            for t, frame in enumerate(item.pixels):
                _png(root, f"{folder}/media{k}/{t:05d}.png", frame)
            media.append({"kind": "video", "path": f"{folder}/media{k}", "fps": item.fps})
    regions = []
    for k, region in enumerate(sample.regions):
        entry: dict[str, Any] = {"media": region.media, "box": list(region.box)}
        if region.mask is not None:
            entry["mask"] = _png(root, f"{folder}/region{k}.png", region.mask)
        regions.append(entry)
    placeholders = "".join("<image>" if m.kind == "image" else "<video>" for m in sample.media)
    user = (placeholders + "\n" if placeholders else "") + sample.instruction
    user += "".join(" <region>" for _ in sample.regions)
    messages = [{"role": "user", "text": user}]
    signals = []
    for k, call in enumerate(sample.calls):
        instruction = str(call.args.get("instruction", ""))
        messages.append({"role": "assistant", "text": format_invocation(call.name, instruction)})
        token = MODULES[call.name].signal_token
        if token is not None:
            signals.append(_signal(root, folder, sample, k, token, instruction))
        if k < len(sample.calls) - 1:
            messages.append({"role": "tool", "text": f"{call.name} finished."})
    if not sample.calls:
        messages.append({"role": "assistant", "text": sample.answer})
    meta = {"split": sample.split, "task": sample.task, **{k: v for k, v in sample.meta.items()}}
    meta["combinations"] = [list(c) for c in sample.meta.get("combinations", [])]
    meta["answer"] = sample.answer
    for key in ("box", "span", "options", "target", "expected"):
        if sample.gold.get(key) is not None:
            meta[key] = sample.gold[key]
    return Record.from_json({
        "id": sample.id, "source": sample.source,
        "task": sample.calls[0].name if sample.calls else None,
        "media": media, "regions": regions, "messages": messages, "signals": signals, "meta": meta,
    })  # fmt: skip


def _signal(root: Path, folder: str, sample: Sample, k: int, token: str, instruction: str) -> dict:
    entry: dict[str, Any] = {"token": token}
    gold = sample.gold
    if token == "[SEG]" and gold.get("mask") is not None and sample.media:
        entry |= {"media": 0, "mask": _png(root, f"{folder}/signal{k}.png", gold["mask"])}
    elif token == "[TRK]" and gold.get("masks") is not None:
        entry |= {"media": 0, "mask": _png(root, f"{folder}/signal{k}.png", gold["masks"][0])}
    elif token in ("[GEN]", "[VID]", "[EDIT]"):
        entry["caption"] = instruction
        wanted = gold.get("after") if token == "[EDIT]" else gold.get("reference")
        if wanted is not None and sample.calls[k].name in ("edit_image", "generate_image"):
            entry["target_media"] = _png(root, f"{folder}/target{k}.png", wanted)
    return entry


def write_split(root: str | Path, split: str, count: int, *, seed: int = 0,
                tasks: Iterable[str] | None = None, size: int = 64) -> Path:  # fmt: skip
    """Generate ``count`` samples of ``split`` and write them as ``root/<split>.jsonl``."""
    root = Path(root)
    samples = generate(split, count, seed=seed, tasks=list(tasks) if tasks else None, size=size)
    path = root / f"{split}.jsonl"
    write_jsonl(path, (to_record(s, root) for s in samples))
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m vitron.evals.shapes.records OUT --split train --count 1000 [--seed 0]``."""
    import argparse

    from vitron.evals.shapes.dataset import SPLITS

    parser = argparse.ArgumentParser(description="Write shapes-world samples as training records.")
    parser.add_argument("out", help="data set root (created)")
    parser.add_argument("--split", default="train", choices=list(SPLITS))
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=64, help="render size in pixels")
    args = parser.parse_args(argv)
    path = write_split(args.out, args.split, args.count, seed=args.seed, size=args.size)
    print(f"wrote {args.count} records to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
