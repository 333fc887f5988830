"""Tool results for training conversations, worded as the tools word them.

The planner reads each tool's result before it decides to call again or answer, and a nano
planner keys on the result's wording: trained on short made-up results ("{mask} 64x64 mask of
…"), it met the real ``segment_image`` text ("mask_…: 'the square' covers 1.8% of img_…, box
[…], SAM score …") in the graph and never made the second call of a two-step request (module
match 0 of 16; 13 of 16 with the training wording). So these follow the backends' own formats
(``tools/backends/*.py``; ``tests/training/test_tool_results.py`` checks that they still agree),
with fresh handles and random numbers; what varies between real calls (how a target was
located, whether a signal was used) varies here too.

Boxes are ``[x1, y1, x2, y2]`` fractions of the image, origin top-left, as the tools print them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from vitron.tools.backends.image_to_video import HELD
from vitron.tools.backends.retrieve import candidate_places
from vitron.tools.editing import infer_operation, read_instruction
from vitron.tools.geometry import fmt_box
from vitron.tools.motion_area import read_motion
from vitron.tools.placement import add_box, move_box

SIGNAL_NOTE = (
    " Note: the signal embedding was not used: the signal projector {component!r} of profile "
    "'nano' has no checkpoint yet (signal projectors come from training), so this ran on the "
    "text instruction alone."
)
"""What a tool appends when the planner's signal has no trained projector (``tools/signals.py``)."""


class _Draw:
    """Random parts of one result: handles, boxes, scores, sampling settings, the signal phrase.
    Every one comes from ``rng``, so a seed gives the same conversations (fresh random handles made
    two runs of the same ``--seed`` train different planners). ``conversation``: the images and
    videos the user attached, oldest first (retrieve names each by its place, ``picture 3``)."""

    def __init__(self, rng: np.random.Generator, conversation: Sequence[str] = ()) -> None:
        self.rng = rng
        self.conversation = conversation

    def handle(self, kind: str) -> str:
        """A fresh workspace handle (``img_…``, ``mask_…``, ``vid_…``, ``box_…``, ``emb_…``)."""
        return f"{kind}_{self.rng.bytes(8).hex()}"

    def box_values(self) -> list[float]:
        x1, y1 = self.rng.uniform(0, 0.6, size=2)
        w, h = self.rng.uniform(0.1, 0.4, size=2)
        return [float(x1), float(y1), min(1.0, float(x1 + w)), min(1.0, float(y1 + h))]

    def box(self) -> str:
        return fmt_box(self.box_values())

    def score(self, low: float = 0.3) -> str:
        return f"{self.rng.uniform(low, 1.0):.2f}"

    def share(self, low: float = 0.01, high: float = 0.3) -> str:
        return f"{self.rng.uniform(low, high):.1%}"

    def settings(self) -> str:
        steps = int(self.rng.choice([2, 10, 20, 25]))
        guidance = float(self.rng.choice([4.0, 5.0, 7.5]))
        signal = f", with signal {self.handle('emb')}" if self.rng.random() < 0.7 else ""
        return (
            f"seed {int(self.rng.integers(0, 2**32))}, {steps} steps, guidance {guidance:g}{signal}"
        )

    def located(self, label: str, frame: int | None = None) -> str:
        if self.rng.random() < 0.15:  # a box, point or mask prompt: nothing to locate
            return ""
        where = "" if frame is None else f" on frame {frame}"
        return f" (located{where} by Grounding DINO as {label!r}, score {self.score()})"


def _segment(d: _Draw, instruction: str, media: str, _: Sequence[str]) -> str:
    return (
        f"{d.handle('mask')}: {instruction!r} covers {d.share()} of {media}, box {d.box()}, "
        f"SAM score {d.score(0.5)}{d.located(instruction)}. Overlay: {d.handle('img')}"
    )


def _ground(d: _Draw, instruction: str, media: str, _: Sequence[str]) -> str:
    return (
        f"{d.handle('box')}: 1 box(es) in {media}, best first: {instruction} {d.box()} score "
        f"{d.score()}. Overlay: {d.handle('img')}"
    )


def _track(d: _Draw, instruction: str, media: str, _: Sequence[str]) -> str:
    frames = int(d.rng.integers(8, 17))
    seen = int(d.rng.integers(frames // 2, frames + 1))
    note = SIGNAL_NOTE.format(component="sam2_signal") if d.rng.random() < 0.5 else ""
    return (
        f"{d.handle('vid')}: mask video of {instruction!r} in {media} ({frames} frames), visible in "
        f"{seen} of {frames} frames (mean coverage {d.share()}); on prompt frame 0 box {d.box()}"
        f"{d.located(instruction, frame=0)}. Overlay: {d.handle('vid')}{note}"
    )


def _retrieve(d: _Draw, instruction: str, _: str, ranked: Sequence[str]) -> str:
    scores = np.sort(d.rng.uniform(-0.3, 0.7, size=len(ranked)))[::-1]
    places = candidate_places(list(d.conversation or ranked))
    listed = "; ".join(
        f"{k + 1}. {h} ({places[h]}) score {s:.3f}"
        for k, (h, s) in enumerate(zip(ranked, scores, strict=True))
    )
    return (
        f"{len(ranked)} of {len(ranked)} media ranked against {instruction.strip()!r} (CLIP cosine "
        f"similarity, best first): {listed}"
    )


def _edit_summary(d: _Draw, instruction: str) -> str:
    """What ``edit_image`` says it did, from the shapes world's five edit phrasings, read as the
    tool reads them (:mod:`vitron.tools.editing`): a worded add or move names the box it drew in,
    computed as the tool computes it (:mod:`vitron.tools.placement`, square images)."""
    operation = infer_operation(instruction)
    reading = read_instruction(operation, instruction)
    if operation == "remove":
        return f"removed {reading.target!r}{d.located(reading.target)}"
    if operation == "recolor":
        target = reading.target
        return f"recoloured {target!r}{d.located(target)} to {reading.content!r}"
    if operation == "add" and reading.where:
        placed = add_box(reading.where, f"{instruction} {reading.content}")
        if placed is not None:
            # GLIGEN inpainting draws it, or plain inpainting where a profile's GLIGEN is
            # untrained (nano's `draws_added_objects`): the tool names which
            method = "GLIGEN" if d.rng.random() < 0.5 else "inpainting"
            return f"added {reading.content!r} ({method}) {placed.words} {fmt_box(placed.box)}"
    if operation == "move" and reading.where:
        placed = move_box(reading.where, d.box_values())
        if placed is not None:
            to = "" if placed.words.startswith("to ") else " to"
            target = reading.target
            return f"moved {target!r}{d.located(target)} {placed.words}{to} {fmt_box(placed.box)}"
    return f"restyled the whole image: {instruction!r}"


def _edit_image(d: _Draw, instruction: str, media: str, _: Sequence[str]) -> str:
    summary = _edit_summary(d, instruction)
    where = (
        "the whole image changed"
        if summary.startswith("restyled the whole")
        else f"only {d.handle('mask')} ({d.share()} of the image, the area grown by 8 px) changed"
    )
    return f"{d.handle('img')}: {summary} in {media}; {where} ({d.settings()})"


def _edit_video(d: _Draw, instruction: str, media: str, _: Sequence[str]) -> str:
    summary = _edit_summary(d, instruction).replace("(located by", "(located on frame 0 by")
    frames = int(d.rng.integers(8, 17))
    return (
        f"{d.handle('vid')}: {summary} in {media} ({frames} frames, 64x64 at 4 fps); only the area of "
        f"{d.handle('vid')} (the target, seen in {int(d.rng.integers(1, frames + 1))} of {frames} "
        f"frames) grown by 8 px changed ({d.settings()})"
    )


def _generate_image(d: _Draw, instruction: str, _: str, __: Sequence[str]) -> str:
    return f"{d.handle('img')}: 32x32 image of {instruction!r} (Stable Diffusion, {d.settings()})."


def _generate_video(d: _Draw, instruction: str, _: str, __: Sequence[str]) -> str:
    return f"{d.handle('vid')}: 32x32 video of {instruction!r}, 4 frames at 4 fps ({d.settings()})"


def _image_to_video(d: _Draw, instruction: str, media: str, _: Sequence[str]) -> str:
    """Half the animations whose words name what moves ("the diamond moves down") say the rest
    was held still, as a profile with ``hold_still`` (nano's) says when it finds the object."""
    said = f" as {instruction!r}" if instruction else ""
    held = HELD if read_motion(instruction) is not None and d.rng.random() < 0.5 else ""
    return (
        f"{d.handle('vid')}: {media} animated{said}, 32x32, 4 frames at 4 fps{held} "
        f"({d.settings()})"
    )


RESULTS: dict[str, Callable[[_Draw, str, str, Sequence[str]], str]] = {
    "segment_image": _segment,
    "ground": _ground,
    "track_video": _track,
    "retrieve": _retrieve,
    "edit_image": _edit_image,
    "edit_video": _edit_video,
    "generate_image": _generate_image,
    "generate_video": _generate_video,
    "image_to_video": _image_to_video,
}
"""A result writer per tool."""


def tool_result(
    name: str, instruction: str, media: str, rng: np.random.Generator,
    ranked: Sequence[str] = (), conversation: Sequence[str] = (),
) -> str:  # fmt: skip
    """A result text of tool ``name`` called with ``instruction`` on ``media`` (a handle, or ""
    for the tools that make media from words); ``ranked``: retrieve's handles, best first;
    ``conversation``: the user's images and videos, oldest first (default: ``ranked``)."""
    if name not in RESULTS:
        raise KeyError(f"no result format for tool {name!r}; known: {', '.join(RESULTS)}")
    draw = _Draw(rng, conversation)
    return RESULTS[name](draw, instruction, media or draw.handle("img"), ranked)
