"""An oracle for the evaluation harness: a scripted planner that makes each sample's ground-truth
calls and gives its reference answer, and tools of the same names that return the ground truth.

Run through the real graph, they must score 1.0 wherever a metric measures correctness; anything
less is a harness or metric bug. The tools read the sample being run from :data:`CURRENT`, which the
planner factory sets (the harness runs samples one at a time).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from vitron.evals.sample import Sample, resolve
from vitron.graphs.scripted import ScriptedChatModel, tool_call
from vitron.tools.backend import Backend, CallContext, ToolOutput, VitronTool, registered_backends
from vitron.tools.handles import find_handles

CURRENT: dict[str, Sample] = {}


def _context(messages) -> tuple[list[str], list[str | None], list[dict[str, Any]]]:
    human = [m for m in messages if isinstance(m, HumanMessage)][-1]
    regions = human.additional_kwargs.get("regions") or []
    sketches = {r.get("mask") for r in regions}
    media = [h for h in find_handles(human.text) if h not in sketches]
    results = [m.artifact for m in messages if isinstance(m, ToolMessage)]
    return list(dict.fromkeys(media)), [r.get("mask") for r in regions], results


def oracle_planner(sample: Sample) -> ScriptedChatModel:
    """Calls ``sample.calls`` in turn (placeholders resolved), then answers ``sample.answer``."""
    CURRENT["sample"] = sample

    def step(k: int):
        def call(messages):
            media, regions, results = _context(messages)
            target = sample.calls[k]
            return tool_call(target.name, **resolve(target.args, media, results, regions))

        return call

    steps = [step(k) for k in range(len(sample.calls))]
    return ScriptedChatModel(steps=[*steps, AIMessage(content=sample.answer or "Done.")])


# ------------------------------------------------------------------------------- tools


def _store_video(call: CallContext, frames: np.ndarray) -> str:
    return call.workspace.put_video(list(frames), 4.0, lossless=True, source="oracle").handle


def _segment(args, call: CallContext) -> ToolOutput:
    gold = CURRENT["sample"].gold
    mask = gold.get("mask")
    if mask is None:  # e.g. segmenting a generated image: any plausible mask
        image = np.asarray(call.workspace.get_image(args.image))
        mask = np.zeros(image.shape[:2], dtype=bool)
        mask[: mask.shape[0] // 2] = True
    stored = call.workspace.put_mask(mask, source="segment_image")
    from vitron.tools.geometry import mask_box

    return ToolOutput(content=f"{stored.handle}", created=[stored],
                      data={"masks": [stored.handle], "segments": [{"box": mask_box(mask)}]})  # fmt: skip


def _ground(args, call: CallContext) -> ToolOutput:
    box = CURRENT["sample"].gold["box"]
    return ToolOutput(content=f"box {box}", data={"boxes": [box], "labels": ["x"], "scores": [1.0]})


def _track(args, call: CallContext) -> ToolOutput:
    masks = CURRENT["sample"].gold["masks"]
    grey = np.repeat((masks.astype(np.uint8) * 255)[..., None], 3, axis=-1)
    handle = _store_video(call, grey)
    return ToolOutput(content=handle, data={"masks": handle, "frames": {"start": 0}})


def _retrieve(args, call: CallContext) -> ToolOutput:
    sample = CURRENT["sample"]
    target = sample.media[sample.gold["target"]].pixels
    handle = call.workspace.put_image(target).handle  # content-addressed: the user's own handle
    return ToolOutput(content=handle, data={"ranking": [{"handle": handle, "score": 1.0}]})


def _image(key: str):
    def run(args, call: CallContext) -> ToolOutput:
        gold = CURRENT["sample"].gold
        pixels = gold.get(key)
        if pixels is None:
            pixels = np.full((32, 32, 3), 128, dtype=np.uint8)
        stored = call.workspace.put_image(pixels, source="oracle")
        return ToolOutput(content=stored.handle, created=[stored], data={"image": stored.handle})

    return run


def _video(args, call: CallContext) -> ToolOutput:
    """The gold clip where the sample has one (``video_editing``'s edited clip,
    ``video_generation``'s reference), else four black frames."""
    gold = CURRENT["sample"].gold
    frames = gold.get("after", gold.get("reference"))
    if frames is None or np.ndim(frames) != 4:
        frames = np.zeros((4, 32, 32, 3), dtype=np.uint8)
    handle = _store_video(call, frames)
    return ToolOutput(content=handle, data={"video": handle})


RUNS = {
    "segment_image": _segment, "ground": _ground, "track_video": _track, "retrieve": _retrieve,
    "edit_image": _image("after"), "generate_image": _image("reference"),
    "generate_video": _video, "image_to_video": _video, "edit_video": _video,
}  # fmt: skip


def oracle_tools() -> list[VitronTool]:
    """Tools with the real backends' names and argument schemas that return the ground truth."""
    real = registered_backends()
    return [VitronTool(Backend(name, real[name].args_schema, run, f"oracle {name}"))
            for name, run in RUNS.items()]  # fmt: skip


class ColourJudge:
    """A stand-in attribute classifier for tests: the palette colour nearest the median of the
    image's strongly coloured pixels (within ``box`` when given; backgrounds are near-neutral). It
    knows no shapes or positions."""

    def predict(self, image: np.ndarray, box=None) -> dict[str, str]:
        from vitron.evals.shapes.vocab import COLOURS

        h, w = image.shape[:2]
        if box is not None:
            x1, y1, x2, y2 = box
            image = image[int(y1 * h) : max(int(y1 * h) + 1, int(y2 * h)),
                          int(x1 * w) : max(int(x1 * w) + 1, int(x2 * w))]  # fmt: skip
        pixels = image.reshape(-1, 3).astype(int)
        coloured = pixels[pixels.max(axis=1) - pixels.min(axis=1) > 100]
        pixel = np.median(coloured if len(coloured) else pixels, axis=0)
        nearest = min(COLOURS, key=lambda c: float(((pixel - np.array(COLOURS[c])) ** 2).sum()))
        return {"colour": nearest, "shape": "unknown", "position": "unknown"}
