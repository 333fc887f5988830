"""Short videos of the shapes world: objects moving in straight lines, passing over one another and
leaving the frame, with every object's visible mask in every frame.

Velocities are fractions of the image side per frame; frame ``t`` shows each object at
``(x + vx * t, y + vy * t)``. An object is *visible* in a frame when any of its pixels shows, and
*inside* when its whole extent lies within the image.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from vitron.evals.shapes.scene import DEFAULT_SIZE, Obj, Scene, render, sample_scene
from vitron.evals.shapes.vocab import SIZES

DIRECTIONS: dict[str, tuple[float, float]] = {
    "left": (-1.0, 0.0),
    "right": (1.0, 0.0),
    "up": (0.0, -1.0),
    "down": (0.0, 1.0),
}


@dataclass(frozen=True)
class VideoScene:
    """A first-frame scene, one velocity per object, and the number of frames."""

    scene: Scene
    velocities: tuple[tuple[float, float], ...]
    frames: int

    def at(self, t: int) -> Scene:
        """The scene of frame ``t``."""
        moved = tuple(
            replace(o, x=round(o.x + vx * t, 4), y=round(o.y + vy * t, 4))
            for o, (vx, vy) in zip(self.scene.objects, self.velocities, strict=True)
        )
        return self.scene.with_objects(moved)


@dataclass
class RenderedVideo:
    """``frames`` T x S x S x 3 uint8; ``masks[i]`` T x S x S bool, object ``i``'s visible mask."""

    frames: np.ndarray
    masks: list[np.ndarray]


def render_video(video: VideoScene, size: int = DEFAULT_SIZE) -> RenderedVideo:
    frames, masks = [], []
    for t in range(video.frames):
        rendered = render(video.at(t), size)
        frames.append(rendered.image)
        masks.append(rendered.masks)
    per_object = [np.stack([m[i] for m in masks]) for i in range(len(video.scene.objects))]
    return RenderedVideo(frames=np.stack(frames), masks=per_object)


def inside(video: VideoScene, index: int, t: int) -> bool:
    """Whether object ``index`` lies wholly within the image in frame ``t``."""
    obj = video.at(t).objects[index]
    half = SIZES[obj.size]
    return half <= obj.x <= 1 - half and half <= obj.y <= 1 - half


def visible_frames(rendered: RenderedVideo, index: int) -> list[int]:
    return [t for t, m in enumerate(rendered.masks[index]) if m.any()]


def sample_video(
    rng: np.random.Generator,
    *,
    compositional: bool = False,
    frames: tuple[int, int] = (8, 16),
    size: int = DEFAULT_SIZE,
) -> VideoScene:
    """1–3 objects; each moves in one of four directions at 0–0.06 of the side per frame, the
    first one fast enough (half of the time) to leave the frame before the end."""
    scene = sample_scene(rng, compositional=compositional, objects=(1, 3), size=size)
    count = int(rng.integers(frames[0], frames[1] + 1))
    velocities = []
    for i in range(len(scene.objects)):
        dx, dy = list(DIRECTIONS.values())[int(rng.integers(len(DIRECTIONS)))]
        speed = float(rng.uniform(0.0, 0.06))
        if i == 0 and rng.random() < 0.5:
            speed = float(rng.uniform(0.09, 0.14))
        velocities.append((round(dx * speed, 4), round(dy * speed, 4)))
    return VideoScene(scene=scene, velocities=tuple(velocities), frames=count)


GENERATED_FRAMES = 8
"""Frames of a text-to-video clip of the shapes world (the ``nano`` text-to-video's length)."""
MOVING_SPEED = (0.04, 0.08)
"""Speeds (side per frame) of a generated clip's object: over 8 frames it crosses 0.28-0.56 of
the picture, enough to read its direction, and never leaves it."""


def moving_video(
    rng: np.random.Generator, obj: Obj, direction: str, background: str,
    frames: int = GENERATED_FRAMES,
) -> VideoScene:  # fmt: skip
    """``obj`` alone on ``background``, moving in ``direction`` (a key of :data:`DIRECTIONS`) at a
    speed of :data:`MOVING_SPEED`, wholly inside the picture on every frame: what a text-to-video
    request "a small red circle moving left on a grey background" asks for."""
    half = SIZES[obj.size] + 0.01
    dx, dy = DIRECTIONS[direction]
    room = 1.0 - 2 * half  # where its centre may go
    speed = float(rng.uniform(MOVING_SPEED[0], min(MOVING_SPEED[1], room / max(frames - 1, 1))))
    travel = speed * (frames - 1)
    along = float(rng.uniform(half, 1.0 - half - travel))  # its start, moving towards +
    across = float(rng.uniform(half, 1.0 - half))
    start = along if dx + dy > 0 else 1.0 - along
    x, y = (start, across) if dx else (across, start)
    moved = replace(obj, x=round(x, 4), y=round(y, 4))
    velocity = (round(dx * speed, 4), round(dy * speed, 4))
    return VideoScene(scene=Scene((moved,), background), velocities=(velocity,), frames=frames)


def direction_of(velocity: tuple[float, float]) -> str | None:
    """The direction word of a velocity, or ``None`` when the object barely moves."""
    vx, vy = velocity
    if max(abs(vx), abs(vy)) < 0.01:
        return None
    if abs(vx) >= abs(vy):
        return "right" if vx > 0 else "left"
    return "down" if vy > 0 else "up"


def room(obj: Obj, direction: str) -> float:
    """How far (fraction of the side) ``obj``'s centre may go in ``direction`` with the object
    staying wholly inside the picture (0 when it already touches that edge)."""
    half = SIZES[obj.size]
    dx, dy = DIRECTIONS[direction]
    position = obj.x if dx else obj.y
    ahead = 1.0 - half - position if dx + dy > 0 else position - half
    return max(0.0, ahead)


def animate_object(
    rng: np.random.Generator, scene: Scene, index: int, direction: str,
    frames: int = GENERATED_FRAMES,
) -> VideoScene:  # fmt: skip
    """``scene`` with object ``index`` moving in ``direction`` at a speed of
    :data:`MOVING_SPEED` and the others still: what an image-to-video request "the red circle
    moves left" asks for. The speed is capped so the object stays wholly inside the picture (it
    barely moves, or not at all, when it already touches that edge)."""
    dx, dy = DIRECTIONS[direction]
    cap = np.floor(room(scene.objects[index], direction) / max(frames - 1, 1) * 1e4) / 1e4
    speed = min(float(rng.uniform(*MOVING_SPEED)), float(cap))
    velocities = [(0.0, 0.0)] * len(scene.objects)
    velocities[index] = (round(dx * speed, 4), round(dy * speed, 4))
    return VideoScene(scene=scene, velocities=tuple(velocities), frames=frames)


def shrink(frames: np.ndarray, side: int) -> np.ndarray:
    """``... x S x S x 3`` uint8 pictures box-filtered to ``side`` px: what diffusers' I2VGen-XL
    pipeline does to the picture it animates (``_center_crop_wide``: a PIL ``BOX`` resize)."""
    from PIL import Image

    frames = np.asarray(frames)
    flat = frames.reshape(-1, *frames.shape[-3:])
    small = [np.asarray(Image.fromarray(f).resize((side, side), Image.BOX)) for f in flat]
    return np.stack(small).reshape(*frames.shape[:-3], side, side, 3)
