"""Shapes-world pictures and texts for the nano diffusion parts (VAE, text-to-image, inpainting).

Three kinds of picture, all drawn from training colour–shape combinations only:

- :func:`generation_example`: what ``vitron eval``'s ``generation`` task asks for — one object at
  32 px on a plain background, left / centre / right, with the task's own caption
  (``"a small striped red circle on the left on a white background"``);
- :func:`moving_example`: what the ``video_generation`` task asks for — an 8-frame 32 px clip
  of one object moving in a named direction, with its text;
- :func:`edit_example`: a 64 px multi-object scene and one masked edit of it (remove, recolour or
  repaint an object as it is), with the text the ``edit_image`` tool sends its inpainting pipeline
  for that edit;
- :func:`restyle_example`: a 64 px multi-object scene and the same scene on another background
  tone, with the instruction ``edit_image`` sends InstructPix2Pix for it
  (``"make the background beige"``);
- :func:`animation_example`: what ``image_to_video`` is asked for — a 64 px multi-object scene
  and an 8-frame 32 px clip of it where one named object moves left, right, up or down, with the
  request's text (``"the red circle moves left"``).

Images are S x S x 3 uint8; masks S x S bool; every draw is a function of the generator alone.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from vitron.evals.shapes.language import (
    horizontal_position,
    layout_caption,
    moving_caption,
    refer,
)
from vitron.evals.shapes.scene import (
    Scene,
    layout_scene,
    random_object,
    render,
    sample_scene,
    training_combination,
)
from vitron.evals.shapes.tasks import animation_request, animation_text
from vitron.evals.shapes.video import (
    DIRECTIONS,
    GENERATED_FRAMES,
    MOVING_SPEED,
    animate_object,
    moving_video,
    render_video,
    room,
    shrink,
)
from vitron.evals.shapes.vocab import BACKGROUNDS, COLOURS
from vitron.tools.compositing import grow
from vitron.tools.editing import REMOVE_PROMPT

GENERATION_SIZE = 32
"""The ``generation`` task's picture side (``vitron.evals.shapes.tasks.GENERATION_SIZE``)."""
EDIT_SIZE = 64
"""The editing task's picture side (the shapes world's default)."""
COLUMNS = (0.2, 0.5, 0.8)
"""Object centres the generation task places objects at (x, as a fraction of the side)."""


def generation_caption(obj_name: str, x: float, background: str) -> str:
    """The generation task's description of a one-object picture."""
    position = horizontal_position(x)
    where = "in the centre" if position == "centre" else f"on the {position}"
    return f"a {obj_name} {where} on a {background} background"


def generation_example(rng: np.random.Generator, jitter: float = 0.05) -> tuple[np.ndarray, str]:
    """One 32 px picture of the generation task's kind and its caption (x jittered a little
    around the task's column, so the model learns thirds, not three exact places)."""
    obj = random_object(rng, training_combination)
    x = float(rng.choice(COLUMNS) + rng.uniform(-jitter, jitter))
    obj = replace(obj, x=x)
    background = list(BACKGROUNDS)[int(rng.integers(len(BACKGROUNDS)))]
    image = render(Scene((obj,), background), GENERATION_SIZE).image
    return image, generation_caption(obj.name, x, background)


def moving_example(rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """One clip of what ``generate_video`` is asked for (``vitron eval``'s ``video_generation``
    task): T x 32 x 32 x 3 uint8, one object moving left, right, up or down, and its text ("a
    small red circle moving left on a grey background")."""
    obj = random_object(rng, training_combination)
    direction = list(DIRECTIONS)[int(rng.integers(len(DIRECTIONS)))]
    background = list(BACKGROUNDS)[int(rng.integers(len(BACKGROUNDS)))]
    clip = render_video(moving_video(rng, obj, direction, background), GENERATION_SIZE)
    return clip.frames, moving_caption(obj.name, direction, background)


@dataclass
class LayoutExample:
    """A 32 px picture of 1–2 objects with its GLIGEN inputs: one phrase and one normalised
    ``[x1, y1, x2, y2]`` box (top-left origin, the object's visible extent) per object, and the
    caption of the whole."""

    image: np.ndarray
    boxes: list[list[float]]
    phrases: list[str]
    caption: str


def layout_example(rng: np.random.Generator) -> LayoutExample:
    """One layout-to-image training picture. A one-object picture is captioned half the time as
    the generation task words it (with its place: what ``generate_image`` turns into a box),
    otherwise by :func:`layout_caption`."""
    scene = layout_scene(rng)
    rendered = render(scene, GENERATION_SIZE)
    phrases = [f"a {o.name}" for o in scene.objects]
    caption = layout_caption(phrases, scene.background)
    if len(phrases) == 1 and rng.random() < 0.5:
        caption = generation_caption(scene.objects[0].name, scene.objects[0].x, scene.background)
    boxes = [list(b) for b in rendered.boxes if b is not None]
    return LayoutExample(rendered.image, boxes, phrases, caption)


@dataclass
class EditExample:
    """A masked edit of a 64 px scene: the inpainting pipeline sees ``source`` with ``mask``
    blanked and ``text``; ``target`` is what it should paint (equal to ``source`` outside the
    mask)."""

    source: np.ndarray
    target: np.ndarray
    mask: np.ndarray
    text: str
    kind: str


EDIT_KINDS = (("remove", 0.25), ("recolor", 0.4), ("repaint", 0.15), ("add", 0.2))
ADD_GROW = 8
"""An add's area is its box grown by this many pixels: ``edit_image``'s default ``grow``."""


def edit_example(rng: np.random.Generator, grow_px: int = 8) -> EditExample:
    """A scene of 1–3 objects and one edit of object ``i``, its area grown as ``edit_image`` grows
    it (by ``grow_px``, before the tool's own SAM mask is perfect):

    - remove (scenes of 2+ objects): the scene without the object, text ``REMOVE_PROMPT``;
    - recolor: the object in a new colour, text ``"<expression> in <new colour>"`` with a
      referring expression of the object as the editing task writes it (what ``edit_image``
      sends for "make the red circle blue": ``"the red circle in blue"``);
    - repaint: the scene as it is, text the object's name (``"a small red circle"``);
    - add: the scene without the object before, with it after at the middle of its side (what
      "add a small red circle at the left" means), inside the box ``edit_image`` draws an added
      object into (:func:`~vitron.tools.placement.add_box`, grown by :data:`ADD_GROW`), text its
      phrase (``"a small red circle"``).
    """
    draw, kind = rng.random(), "repaint"
    for name, share in EDIT_KINDS:
        if draw < share:
            kind = name
            break
        draw -= share
    scene = sample_scene(rng, objects=(2, 3) if kind == "remove" else (1, 3), size=EDIT_SIZE)
    objects = list(scene.objects)
    index = int(rng.integers(len(objects)))
    obj = objects[index]
    if kind == "add":
        return _add_example(scene, index)
    before = render(scene, EDIT_SIZE)
    if kind == "remove":
        after = scene.with_objects(tuple(o for i, o in enumerate(objects) if i != index))
        text = REMOVE_PROMPT
    elif kind == "recolor":
        choices = [c for c in COLOURS if c != obj.colour and training_combination(c, obj.shape)]
        colour = choices[int(rng.integers(len(choices)))]
        objects[index] = replace(obj, colour=colour)
        after = scene.with_objects(tuple(objects))
        expression = refer(scene, index, rng) or f"the {obj.colour} {obj.shape}"
        text = f"{expression} in {colour}"
    else:
        after = scene
        text = f"a {obj.name}"
    target = render(after, EDIT_SIZE)
    area = before.masks[index] | (target.image != before.image).any(axis=2)
    mask = grow(area, int(rng.integers(grow_px // 2, grow_px + 1)))
    return EditExample(before.image, target.image, mask, text, kind)


def _add_example(scene: Scene, index: int) -> EditExample:
    """Object ``index`` of ``scene`` added at the middle of its side (see :func:`edit_example`)."""
    from vitron.tools.geometry import box_mask
    from vitron.tools.placement import add_box

    obj = scene.objects[index]
    where = f"at the {horizontal_position(obj.x)}"
    placed = add_box(where, obj.name)
    assert placed is not None  # a column is always a place
    centre = ((placed.box[0] + placed.box[2]) / 2, (placed.box[1] + placed.box[3]) / 2)
    others = tuple(o for i, o in enumerate(scene.objects) if i != index)
    before = render(scene.with_objects(others), EDIT_SIZE)
    after = render(scene.with_objects((*others, replace(obj, x=centre[0], y=centre[1]))), EDIT_SIZE)
    mask = grow(box_mask(placed.box, EDIT_SIZE, EDIT_SIZE), ADD_GROW)
    return EditExample(before.image, after.image, mask, f"a {obj.name}", "add")


@dataclass
class RestyleExample:
    """A whole-picture edit of a 64 px scene: InstructPix2Pix sees ``source`` and ``text`` and
    should give ``target``, the same objects on the ``asked`` background tone."""

    source: np.ndarray
    target: np.ndarray
    objects: np.ndarray
    """S x S bool: the objects' pixels (equal in ``source`` and ``target``)."""
    boxes: list[tuple[int, int, int, int]]
    """Each visible object's box, x0 y0 x1 y1 in pixels."""
    text: str
    asked: str


RESTYLE_TEXTS = ("make the background {b}", "make the background {b}", "a {b} background")
"""How a background change is worded: the editing task's instruction (twice as often) and the
bare look a user may give as ``prompt`` instead."""


def restyle_example(rng: np.random.Generator) -> RestyleExample:
    """A scene of 1–4 objects as the editing task draws them, and the same scene on another of
    the world's background tones (what "make the background beige" asks for)."""
    scene = sample_scene(rng, size=EDIT_SIZE)
    others = [b for b in BACKGROUNDS if b != scene.background]
    asked = others[int(rng.integers(len(others)))]
    before, after = render(scene, EDIT_SIZE), render(replace(scene, background=asked), EDIT_SIZE)
    objects = np.logical_or.reduce(before.masks)  # a scene has at least one visible object
    text = RESTYLE_TEXTS[int(rng.integers(len(RESTYLE_TEXTS)))].format(b=asked)
    boxes = [tuple(int(v) for v in box) for box in before.boxes if box is not None]
    return RestyleExample(before.image, after.image, objects, boxes, text, asked)


def scene_crop(rng: np.random.Generator, side: int = GENERATION_SIZE) -> np.ndarray:
    """A random ``side``-px crop of a 64 px multi-object training scene (for the VAE)."""
    image = render(sample_scene(rng, objects=(1, 4), size=EDIT_SIZE), EDIT_SIZE).image
    top, left = (int(v) for v in rng.integers(0, EDIT_SIZE - side + 1, size=2))
    return image[top : top + side, left : left + side]


@dataclass
class AnimationExample:
    """An image-to-video request: the still ``picture`` (64 x 64 x 3 uint8, what the tool is
    given), the ``clip`` it should become (T x S x S x 3 uint8, S the side it is animated at;
    frame 0 is the picture shrunk as the I2VGen-XL pipeline shrinks it, or the picture itself at
    64 px) and the ``text`` (``"the red circle moves left"``)."""

    picture: np.ndarray
    clip: np.ndarray
    text: str


def animation_example(rng: np.random.Generator, side: int = GENERATION_SIZE) -> AnimationExample:
    """One image-to-video training example, its clip ``side`` px: a 1–4 object training scene
    (never a held-out colour–shape pair), one object named as ``video_tools`` names it, moving in
    a direction it has room for (so every clip shows the motion its text asks for), the others
    still."""
    while True:
        direction = list(DIRECTIONS)[int(rng.integers(len(DIRECTIONS)))]
        request = animation_request(rng, False, EDIT_SIZE)
        if request is None:
            continue
        scene, index, expression = request
        travel = MOVING_SPEED[0] * (GENERATED_FRAMES - 1)
        roomy = [d for d in DIRECTIONS if room(scene.objects[index], d) >= travel]
        if roomy:
            break
    if direction not in roomy:  # ask for a way it can go, named as the request names it
        direction = roomy[int(rng.integers(len(roomy)))]
    text = animation_text(expression, direction)
    frames = render_video(animate_object(rng, scene, index, direction), EDIT_SIZE).frames
    clip = frames if side == EDIT_SIZE else shrink(frames, side)
    return AnimationExample(frames[0], clip, text)
