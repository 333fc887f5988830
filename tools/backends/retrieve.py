"""``retrieve``: rank the conversation's images and videos against a text with CLIP.

Candidates are the handles given in ``media``, or else every image and video stored in the
thread's workspace except what only shows other media (the tools' overlays and tracked-mask
videos, marked :data:`~vitron.tools.workspace.DERIVED`), which would otherwise outrank the pictures
they were drawn on. An image (or a video frame ``vid_…#n``) is scored by the cosine similarity of
its CLIP feature with the text's; a video by the mean of the normalised features of a few frames
sampled evenly over its length. Features are cached per handle in the engine, so ranking the same
media against a new query only encodes the text. ``probability`` is CLIP's softmax over the
candidates (its learned temperature), for a planner that wants one choice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image
from pydantic import Field, model_validator

from vitron.tools.backend import CallContext, ToolOutput, backend
from vitron.tools.errors import MediaError, VitronToolError
from vitron.tools.handles import parse_handle
from vitron.tools.schemas import MediaHandle, ToolArgs
from vitron.tools.workspace import DERIVED, Workspace

if TYPE_CHECKING:
    import torch

    from vitron.tools.models.clip import ClipEngine

logger = logging.getLogger(__name__)

MAX_LISTED = 10
"""Ranked media listed one by one in the text for the planner; all are in the artifact."""


class RetrieveArgs(ToolArgs):
    media: list[MediaHandle] | None = Field(
        default=None,
        max_length=256,
        description="the images and videos to rank; default: every one in the conversation "
        "(the tools' overlays and mask videos left out)",
    )
    top_k: int | None = Field(default=None, ge=1, le=256, description="return only the best k")
    frames_per_video: int = Field(
        default=4, ge=1, le=32, description="frames sampled evenly from each video and pooled"
    )

    @model_validator(mode="after")
    def _needs_a_query(self) -> RetrieveArgs:
        if not self.instruction.strip():
            raise ValueError("say what to look for in `instruction`, e.g. 'a dog on a beach'")
        if self.regions:
            raise ValueError("retrieve ranks whole images and videos; it takes no regions")
        return self


@dataclass(frozen=True)
class Ranked:
    handle: str
    kind: str
    """``image``, ``video`` or ``frame``."""
    score: float
    """Cosine similarity of the CLIP features, in [-1, 1]."""
    probability: float


def candidates_of(args: RetrieveArgs, session: list[str]) -> list[str]:
    """What a call ranks, in order and once each: ``args.media``, else ``session`` (the
    conversation's media, oldest first)."""
    return list(dict.fromkeys(args.media or session))


def rank(
    args: RetrieveArgs, call: CallContext, candidates: list[str]
) -> tuple[list[Ranked], list[str]]:
    """Every one of ``candidates`` (:func:`candidates_of`) ranked best first, and the session
    media that could not be read (skipped with the reason; a handle the caller named explicitly
    fails the call instead)."""
    import torch

    if not candidates:
        raise VitronToolError(
            "there are no images or videos in this conversation to rank; attach some first"
        )
    engine: ClipEngine = call.models.get("clip", call.progress)
    query = engine.text_features(args.instruction.strip())
    kept, features, skipped = [], [], []
    for handle in candidates:
        try:
            features.append(_feature(engine, call.workspace, handle, args.frames_per_video))
        except MediaError as exc:
            if args.media:
                raise
            skipped.append(f"{handle} ({exc})")
            logger.warning("retrieve skipped %s: %s", handle, exc)
            continue
        kept.append(handle)
    if not kept:
        raise VitronToolError(
            "none of the conversation's media could be read: " + "; ".join(skipped)
        )
    scores = torch.stack(features) @ query
    probabilities = torch.softmax(scores * engine.logit_scale, dim=0)
    ranked = [
        Ranked(handle, _kind(handle), round(float(s), 4), round(float(p), 4))
        for handle, s, p in zip(kept, scores, probabilities, strict=True)
    ]
    ranked.sort(key=lambda r: r.score, reverse=True)
    return ranked, skipped


@backend("retrieve", RetrieveArgs, components=("clip",))
def retrieve(args: RetrieveArgs, call: CallContext) -> ToolOutput:
    """Rank the conversation's images and videos by how well they match a text."""
    candidates = candidates_of(args, _session_media(call.workspace))
    ranked, skipped = rank(args, call, candidates)
    shown = ranked[: args.top_k] if args.top_k else ranked
    places = candidate_places(candidates)
    listed = "; ".join(
        f"{i}. {r.handle} ({places.get(r.handle, r.kind)}) score {r.score:.3f}"
        for i, r in enumerate(shown[:MAX_LISTED], start=1)
    )
    more = f"; and {len(shown) - MAX_LISTED} more" if len(shown) > MAX_LISTED else ""
    notes = ""
    if skipped:
        notes += f". Skipped (unreadable): {'; '.join(skipped)}"
    if args.signal:
        notes += ". The signal embedding is not used by retrieve"
    return ToolOutput(
        content=f"{len(shown)} of {len(ranked)} media ranked against {args.instruction.strip()!r} "
        f"(CLIP cosine similarity, best first): {listed}{more}{notes}",
        data={
            "query": args.instruction.strip(),
            "ranking": [
                {
                    "handle": r.handle,
                    "kind": r.kind,
                    "place": places.get(r.handle),
                    "score": r.score,
                    "probability": r.probability,
                }
                for r in shown
            ],  # fmt: skip
            "skipped": skipped,
        },
    )


def candidate_places(media: list[str]) -> dict[str, str]:
    """Each image and video by its place among the candidates, as a user names it: ``picture 3``,
    ``video 1`` (counted from 1 in the order given, images and videos apart). The ranking names
    them so, so that an answer can say which picture won without looking its handle up.

    The candidates a call names are the pictures the request is about ("which of these ten shows
    a star?": picture 9 is the ninth of them, as the user counts and as ``vitron eval`` scores
    it), so their places count among them. Without named media the candidates are the whole
    conversation's, oldest first, and a place is the medium's place in the conversation. (Counted
    conversation-wide in both cases, the demo's retrieval, its tenth turn, ranked pictures 9 to
    18, places the nano planner never saw in training, and it wrote "Picture 17 and made…".) A
    video's frame (``vid_…#n``) has no place."""
    images = [h for h in media if h.startswith("img_")]
    videos = [h for h in media if h.startswith("vid_") and parse_handle(h).frame is None]
    return {h: f"picture {i}" for i, h in enumerate(images, start=1)} | {
        h: f"video {i}" for i, h in enumerate(videos, start=1)
    }


def _session_media(workspace: Workspace) -> list[str]:
    """The conversation's images and videos, oldest first, without derived ones (overlays)."""
    handles = workspace.handles("img") + workspace.handles("vid")
    return [h for h in handles if not workspace.describe(h).extra.get(DERIVED)]


def _kind(handle: str) -> str:
    parsed = parse_handle(handle)
    if parsed.kind == "img":
        return "image"
    return "frame" if parsed.frame is not None else "video"


def _feature(engine: ClipEngine, workspace: Workspace, handle: str, frames: int) -> torch.Tensor:
    """The cached (or newly computed) normalised feature of an image, frame or video."""
    from vitron.tools.models.clip import pooled_video_feature

    parsed = parse_handle(handle, kinds=("img", "vid"))
    workspace.describe(parsed.base)  # this conversation must hold it, cached feature or not
    video = parsed.kind == "vid" and parsed.frame is None
    key = f"{handle}@{frames}" if video else handle
    feature = engine.cached(key)
    if feature is None:
        if video:
            feature = pooled_video_feature(
                engine.image_features(_sample_frames(workspace, handle, frames))
            )
        else:
            feature = engine.image_features([workspace.get_image(handle)])[0]
        engine.remember(key, feature)
    return feature


def _sample_frames(workspace: Workspace, handle: str, count: int) -> list[Image.Image]:
    """``count`` frames spread evenly from first to last, decoded in one streaming pass."""
    meta = workspace.describe(handle, kinds=("vid",))
    total = meta.frames or 1
    wanted = set(np.linspace(0, total - 1, num=min(count, total)).round().astype(int).tolist())
    picked = []
    for index, frame in enumerate(workspace.iter_frames(handle)):
        if index in wanted:
            picked.append(Image.fromarray(frame))
        if len(picked) == len(wanted):
            break
    if not picked:
        raise MediaError(f"{handle} has no frames to look at")
    return picked
