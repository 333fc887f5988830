"""Whole-clip restyles on the shapes world (``edit_video``'s restyle, video-to-video): requests
and their judge, shared by ``benchmarks/bench_nano_restyle.py`` and the nano profile's tests.

A request is one object moving on one background tone and a caption that asks for another tone
("a large red circle moving left on a black background"); a restyle is right where the background
takes the asked tone and the object stays what it was.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vitron.evals.metrics import AttributeClassifier
from vitron.evals.shapes.scene import Obj
from vitron.evals.shapes.video import RenderedVideo

SEED = 2026
"""Requests are drawn from ``[SEED, index]``, apart from every split of the world's tasks."""


@dataclass(frozen=True)
class RestyleRequest:
    obj: Obj
    asked: str
    """The background tone the caption asks for (a key of ``BACKGROUNDS``)."""
    prompt: str
    clip: RenderedVideo
    """The input: T x 32 x 32 x 3 frames and the object's mask per frame."""


def restyle_requests(count: int, start: int = 0) -> list[RestyleRequest]:
    """Requests ``start`` .. ``start + count - 1``, each fixed by its index."""
    from vitron.evals.shapes.language import moving_caption
    from vitron.evals.shapes.tasks import pick
    from vitron.evals.shapes.video import DIRECTIONS, moving_video, render_video
    from vitron.evals.shapes.vocab import BACKGROUNDS, COLOURS, SHAPES, TEXTURES

    tones = list(BACKGROUNDS)
    made = []
    for index in range(start, start + count):
        rng = np.random.default_rng([SEED, index])
        obj = Obj(pick(rng, SHAPES), pick(rng, list(COLOURS)), "large", pick(rng, TEXTURES),
                  0.5, 0.5)  # fmt: skip
        before = pick(rng, tones)
        asked = pick(rng, [t for t in tones if t != before])
        direction = pick(rng, list(DIRECTIONS))
        clip = render_video(moving_video(rng, obj, direction, before), 32)
        made.append(RestyleRequest(obj, asked, moving_caption(obj.name, direction, asked), clip))
    return made


def background_tone(image: np.ndarray, objects: np.ndarray) -> str:
    """The world's background tone (a key of ``BACKGROUNDS``) nearest the mean colour of
    ``image`` (S x S x 3) outside ``objects`` (S x S bool)."""
    from vitron.evals.shapes.vocab import BACKGROUNDS

    outside = np.asarray(image)[..., :3][~objects].astype(float).mean(axis=0)
    return min(BACKGROUNDS, key=lambda name: float(np.linalg.norm(outside - BACKGROUNDS[name])))


def judge_restyle(
    frames: np.ndarray, request: RestyleRequest, classifier: AttributeClassifier
) -> tuple[float, float]:
    """``(background_right, object_kept)`` over ``frames`` (T x 32 x 32 x 3 uint8, the input's
    size): the share of frames whose pixels outside the object's mask are nearest the asked tone,
    and the share the attribute classifier reads as the object's shape and colour."""
    mask, obj = request.clip.masks[0], request.obj
    background, kept = [], []
    for t, frame in enumerate(np.asarray(frames)[..., :3]):
        background.append(background_tone(frame, mask[t]) == request.asked)
        seen = classifier.predict(frame)
        kept.append(seen["shape"] == obj.shape and seen["colour"] == obj.colour)
    return float(np.mean(background)), float(np.mean(kept))


__all__ = ["RestyleRequest", "background_tone", "judge_restyle", "restyle_requests"]
