"""Samples of every task the shapes world teaches and tests, built from one random generator.

Each builder takes ``(rng, compositional, size)`` and returns a :class:`~vitron.evals.sample.Sample`
(without id and split: :mod:`vitron.evals.shapes.dataset` sets them) or ``None`` when the drawn
scene allows no valid example (e.g. no unique reference); the caller then draws again. Phrasing
varies over templates; the tool-call ``instruction`` is the part a backend needs (a referring
expression, a query, an edit), written the same way every time so an invocation can be checked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from vitron.evals.sample import Media, RegionInput, Sample, TargetCall
from vitron.evals.shapes.language import (
    RELATIONS,
    attribute_descriptions,
    caption,
    fits,
    holds,
    horizontal_position,
    layout_caption,
    moving_caption,
    refer,
)
from vitron.evals.shapes.scene import (
    Obj,
    Scene,
    layout_scene,
    random_object,
    render,
    sample_scene,
)
from vitron.evals.shapes.video import (
    DIRECTIONS,
    VideoScene,
    animate_object,
    inside,
    moving_video,
    render_video,
    sample_video,
    shrink,
    visible_frames,
)
from vitron.evals.shapes.vocab import BACKGROUNDS, COLOURS, SHAPES, is_held_out, plural
from vitron.tools.geometry import mask_box
from vitron.tools.placement import read_place

GENERATION_SIZE = 32
"""Side of the reference images of generation samples (the ``nano`` generators' size)."""

Builder = Callable[[np.random.Generator, bool, int], Sample | None]


def pick(rng: np.random.Generator, options: list[str] | tuple[str, ...]) -> str:
    """One of ``options``, drawn with ``rng`` (one integer draw, so streams stay reproducible)."""
    return options[int(rng.integers(len(options)))]


def _image(scene: Scene, size: int, label: str = "scene") -> tuple[Media, object]:
    rendered = render(scene, size)
    return Media("image", rendered.image, label=label), rendered


def _target(rng: np.random.Generator, scene: Scene, compositional: bool) -> int:
    """The object a sample is about: in the compositional split, a held-out combination."""
    if compositional:
        held = [i for i, o in enumerate(scene.objects) if is_held_out(o.colour, o.shape)]
        return held[int(rng.integers(len(held)))]
    return int(rng.integers(len(scene.objects)))


def _new_colour(rng: np.random.Generator, target: Obj, compositional: bool) -> str:
    """A colour to repaint ``target`` with; outside the compositional split never one that would
    make a held-out combination (a recoloured object is shown, or named, in that colour)."""
    return pick(rng, [c for c in COLOURS if c != target.colour
                       and (compositional or not is_held_out(c, target.shape))])  # fmt: skip


# ------------------------------------------------------------------------------- perception

SEGMENT = ("Segment {re}.", "Please segment {re}.", "Can you give me a mask of {re}?",
           "Cut out {re}.", "Show me exactly which pixels belong to {re}.",
           "I need a segmentation mask for {re}.")  # fmt: skip
GROUND = ("Find {re}.", "Where is {re}? Give me a box.", "Draw a box around {re}.",
          "Locate {re} in the picture.", "Put a bounding box on {re}.")  # fmt: skip


def referring_segmentation(
    rng: np.random.Generator, compositional: bool, size: int
) -> Sample | None:
    scene = sample_scene(rng, compositional=compositional, size=size)
    index = _target(rng, scene, compositional)
    expression = refer(scene, index, rng)
    if expression is None:
        return None
    media, rendered = _image(scene, size)
    return Sample(
        id="", task="referring_segmentation",
        instruction=pick(rng, SEGMENT).format(re=expression), media=[media],
        calls=[TargetCall("segment_image", {"image": "<media:0>", "instruction": expression})],
        answer=f"Here is the mask of {expression}.",
        gold={"mask": rendered.masks[index], "box": rendered.boxes[index], "expression": expression},
    )  # fmt: skip


def grounding(rng: np.random.Generator, compositional: bool, size: int) -> Sample | None:
    scene = sample_scene(rng, compositional=compositional, size=size)
    index = _target(rng, scene, compositional)
    expression = refer(scene, index, rng)
    if expression is None:
        return None
    media, rendered = _image(scene, size)
    return Sample(
        id="", task="grounding", instruction=pick(rng, GROUND).format(re=expression),
        media=[media],
        calls=[TargetCall("ground", {"image": "<media:0>", "instruction": expression})],
        answer=f"{expression[0].upper()}{expression[1:]} is in the box shown.",
        gold={"box": rendered.boxes[index], "mask": rendered.masks[index], "expression": expression,
              "objects": len(scene.objects)},
    )  # fmt: skip


TRACK = ("Track {re} through the video.", "Follow {re} in this clip.",
         "Segment {re} in every frame.", "Where does {re} go? Track it.")  # fmt: skip


def _video_reference(rng, video, compositional) -> tuple[int, str] | None:
    index = _target(rng, video.scene, compositional)
    options = attribute_descriptions(video.scene, index)
    if not options:
        return None
    return index, "the " + options[int(rng.integers(min(2, len(options))))]


def tracking(rng: np.random.Generator, compositional: bool, size: int) -> Sample | None:
    video = sample_video(rng, compositional=compositional, size=size)
    found = _video_reference(rng, video, compositional)
    if found is None:
        return None
    index, expression = found
    rendered = render_video(video, size)
    return Sample(
        id="", task="tracking", instruction=pick(rng, TRACK).format(re=expression),
        media=[Media("video", rendered.frames, fps=4.0, label="clip")],
        calls=[TargetCall("track_video", {"video": "<media:0>", "instruction": expression})],
        answer=f"I tracked {expression} through the video.",
        gold={"masks": rendered.masks[index], "expression": expression},
    )  # fmt: skip


# ------------------------------------------------------------------------------- retrieval

RETRIEVE = ("Which picture shows {q}?", "Find the image with {q}.",
            "Among these images, which one has {q}?", "Retrieve the picture of {q}.")  # fmt: skip
CANDIDATES = 10


def retrieval(rng: np.random.Generator, compositional: bool, size: int) -> Sample | None:
    scenes = [sample_scene(rng, compositional=compositional, objects=(1, 2), size=size)]
    target_obj = scenes[0].objects[_target(rng, scenes[0], compositional)]
    keys = ("colour", "shape") if rng.random() < 0.6 else ("size", "colour", "shape")
    query = "a " + " ".join(getattr(target_obj, k) for k in keys)
    while len(scenes) < CANDIDATES:
        other = sample_scene(rng, objects=(1, 2), size=size)
        if not any(fits(o, target_obj, keys) for o in other.objects):
            scenes.append(other)
    order = [int(i) for i in rng.permutation(CANDIDATES)]
    media = [Media("image", render(scenes[i], size).image, label=f"candidate {n}")
             for n, i in enumerate(order)]  # fmt: skip
    target = order.index(0)
    return Sample(
        id="", task="retrieval", instruction=pick(rng, RETRIEVE).format(q=query), media=media,
        calls=[TargetCall("retrieve", {"instruction": query})],
        answer=f"Picture {target + 1} shows {query}.",
        gold={"target": target, "query": query},
    )  # fmt: skip


# ------------------------------------------------------------------------------- editing


def _moved(obj: Obj, direction: str, distance: float = 0.25) -> Obj:
    dx, dy = DIRECTIONS[direction]
    return replace(obj, x=round(min(0.85, max(0.15, obj.x + dx * distance)), 3),
                   y=round(min(0.85, max(0.15, obj.y + dy * distance)), 3))  # fmt: skip


def editing(rng: np.random.Generator, compositional: bool, size: int) -> Sample | None:
    """Remove, recolour, move or add an object, or restyle the background; the gold ``after``
    image is the scene rendered with the edit made, ``region`` the pixels the edit may change."""
    scene = sample_scene(rng, compositional=compositional, size=size)
    operation = pick(rng, ("remove", "recolor", "move", "add", "restyle"))
    objects = list(scene.objects)
    index = _target(rng, scene, compositional)
    expression = refer(scene, index, rng)
    if expression is None:
        return None
    target = objects[index]
    expected: dict[str, str] | None = None
    if operation == "remove":
        if len(objects) < 2:
            return None
        after = scene.with_objects(tuple(o for i, o in enumerate(objects) if i != index))
        edit = f"remove {expression}"
    elif operation == "recolor":
        colour = _new_colour(rng, target, compositional)
        objects[index] = replace(target, colour=colour)
        after = scene.with_objects(tuple(objects))
        edit = f"make {expression} {colour}"
        expected = {"colour": colour, "shape": target.shape}
    elif operation == "move":
        direction = pick(rng, tuple(DIRECTIONS))
        objects[index] = _moved(target, direction)
        if objects[index] == target:
            return None
        after = scene.with_objects(tuple(objects))
        edit = f"move {expression} {direction}"
        expected = {"colour": target.colour, "shape": target.shape}
    elif operation == "add":
        allow = (lambda c, s: True) if compositional else (lambda c, s: not is_held_out(c, s))
        new = random_object(rng, allow)
        edit = f"add a {new.name} at the {horizontal_position(new.x)}"
        # where those words put it (the middle of that side), not the draw's own height
        place = read_place(edit[edit.rindex(" at the ") :])
        if place is None:
            return None
        new = replace(new, x=place.x, y=place.y)
        after = scene.with_objects((*objects, new))
        expected = {"colour": new.colour, "shape": new.shape}
        target = new
    else:
        background = pick(rng, [b for b in BACKGROUNDS if b != scene.background])
        after = replace(scene, background=background)
        edit = f"make the background {background}"
    before_r, after_r = render(scene, size), render(after, size)
    if operation == "restyle":
        region = ~np.logical_or.reduce(before_r.masks)
        changed_box = None
    else:
        changed = before_r.image.astype(int) != after_r.image.astype(int)
        region = changed.any(axis=2)
        moved_index = len(after.objects) - 1 if operation == "add" else index
        changed_box = after_r.boxes[moved_index] if operation != "remove" else None
    instruction = pick(
        rng, ("{e}.", "Please {e}.", "Can you {e}?", "Edit the picture: {e}.")
    ).format(e=edit)
    return Sample(
        id="", task="editing", instruction=instruction,
        media=[Media("image", before_r.image, label="before")],
        calls=[TargetCall("edit_image", {"image": "<media:0>", "instruction": edit})],
        answer=f"Done: I {_past(edit)}.",
        gold={"after": after_r.image, "region": region, "operation": operation,
              "expected": expected, "box": changed_box, "edit": edit,
              "background": after.background if operation == "restyle" else None},
    )  # fmt: skip


_PAST = {"make": "made", "remove": "removed", "move": "moved", "add": "added"}


def _past(edit: str) -> str:
    """The edit as done: "remove the red circle" -> "removed the red circle"."""
    verb, _, rest = edit.partition(" ")
    return f"{_PAST.get(verb, verb)} {rest}"


# ------------------------------------------------------------------------------- generation

GENERATE = ("Draw {d}.", "Generate an image of {d}.", "Make a picture of {d}.",
            "Create {d}.", "Paint {d}.")  # fmt: skip


def generation(rng: np.random.Generator, compositional: bool, size: int) -> Sample | None:
    allow = is_held_out if compositional else (lambda c, s: not is_held_out(c, s))
    obj = random_object(rng, allow)
    x = float(pick(rng, ("0.2", "0.5", "0.8")))
    obj = replace(obj, x=x)
    background = pick(rng, tuple(BACKGROUNDS))
    return generation_sample(obj, background, pick(rng, GENERATE))


def generation_sample(obj: Obj, background: str, template: str = "{d}") -> Sample:
    """The generation sample asking for ``obj`` alone on ``background``, worded by ``template``
    (``{d}`` is the description); also what ``vitron gallery`` builds its fixed prompt grid from."""
    position = horizontal_position(obj.x)
    where = "in the centre" if position == "centre" else f"on the {position}"
    description = f"a {obj.name} {where} on a {background} background"
    reference = render(Scene((obj,), background), GENERATION_SIZE).image
    return Sample(
        id="", task="generation", instruction=template.format(d=description),
        calls=[TargetCall("generate_image", {"instruction": description})],
        answer=f"Here is {description}.",
        gold={"expected": {"shape": obj.shape, "colour": obj.colour, "position": position},
              "reference": reference},
    )  # fmt: skip


LAYOUT = ("Draw {d}, with {p}.", "Generate an image of {d}, with {p}.",
          "Make a picture of {d}, with {p}.")  # fmt: skip


def layout(rng: np.random.Generator, compositional: bool, size: int) -> Sample | None:
    """Layout-to-image: 1–2 objects, each with its own box, at the generation task's 32 px. The
    call sends GLIGEN the description, one phrase and one normalised box per object; the gold
    keeps each object's box and attributes (the world's own render is the reference)."""
    from vitron.tools.geometry import fmt_box

    allow = (lambda c, s: True) if compositional else (lambda c, s: not is_held_out(c, s))
    scene = layout_scene(rng, allow=allow)
    rendered = render(scene, GENERATION_SIZE)
    if any(b is None for b in rendered.boxes):
        return None
    boxes = [[round(v, 4) for v in b] for b in rendered.boxes if b is not None]
    phrases = [f"a {o.name}" for o in scene.objects]
    description = layout_caption(phrases, scene.background)
    placed = " and ".join(
        f"{p} in the box {fmt_box(b)}" for p, b in zip(phrases, boxes, strict=True)
    )
    return Sample(
        id="", task="layout", instruction=pick(rng, LAYOUT).format(d=description, p=placed),
        calls=[TargetCall("generate_image", {"instruction": description, "regions": boxes,
                                             "phrases": phrases})],
        answer=f"Here is {description}.",
        gold={"objects": [{"box": b, "expected": {"shape": o.shape, "colour": o.colour}}
                          for o, b in zip(scene.objects, boxes, strict=True)],
              "reference": rendered.image},
    )  # fmt: skip


# ------------------------------------------------------------------------------- answers in text


def vqa(rng: np.random.Generator, compositional: bool, size: int) -> Sample | None:
    """Count, colour, shape, existence or relation questions; the answer is one word. For count
    and "is there" questions ``gold["named_first"]`` also says it as :func:`named_first` does
    (the answer a planner may be trained to give instead: ``--vqa-answers named-first``)."""
    scene = sample_scene(rng, compositional=compositional, size=size)
    objects = scene.objects
    kind = pick(rng, ("count", "colour", "shape", "exist", "relation"))
    index = _target(rng, scene, compositional)
    target = objects[index]
    spoken = None  # the answer naming the asked objects first, for count and "is there"
    if kind == "count":
        if rng.random() < 0.5:
            asked = [o for o in objects if o.shape == target.shape]
            question = f"How many {plural(target.shape)} are there?"
        else:
            asked = [o for o in objects if o.colour == target.colour]
            question = f"How many {target.colour} shapes are there?"
        answer, options = str(len(asked)), [str(i) for i in range(5)]
        spoken = named_first(asked, answer, none="none")
    elif kind == "colour":
        names = [d for d in attribute_descriptions(scene, index) if target.colour not in d.split()]
        if not names:
            return None
        question, answer, options = f"What colour is the {names[0]}?", target.colour, list(COLOURS)
    elif kind == "shape":
        unique = [o for o in objects if o.colour == target.colour and o.size == target.size]
        if len(unique) != 1:
            return None
        question = f"What shape is the {target.size} {target.colour} object?"
        answer, options = target.shape, list(SHAPES)
    elif kind == "exist":
        colour, shape = pick(rng, tuple(COLOURS)), pick(rng, SHAPES)
        if rng.random() < 0.5 or (not compositional and is_held_out(colour, shape)):
            colour, shape = target.colour, target.shape
        present = any(o.colour == colour and o.shape == shape for o in objects)
        question = f"Is there a {colour} {shape}?"
        answer, options = ("yes" if present else "no"), ["yes", "no"]
        asked = [o for o in objects if o.colour == colour]
        spoken = named_first(asked, answer, none=f"nothing {colour}")
    else:
        others = [j for j in range(len(objects)) if j != index]
        if not others:
            return None
        j = others[int(rng.integers(len(others)))]
        a, b = attribute_descriptions(scene, index), attribute_descriptions(scene, j)
        if not a or not b:
            return None
        relation = pick(rng, tuple(RELATIONS))
        question = f"Is the {a[0]} {relation} the {b[0]}?"
        answer, options = ("yes" if holds(target, objects[j], relation) else "no"), ["yes", "no"]
    media, _ = _image(scene, size)
    return Sample(
        id="", task="vqa", instruction=question, media=[media], answer=answer,
        gold={"answer": answer, "options": options, "kind": kind}
        | ({"named_first": spoken} if spoken else {}),
    )  # fmt: skip


def named_first(asked: list[Obj], answer: str, *, none: str) -> str:
    """``"red circle, blue circle: 2"``: the asked objects by colour and shape, left to right
    (``none`` when there are none), then the one-word answer. No option word comes before the
    colon, so :func:`~vitron.evals.metrics.vqa_correct` scores it as the word alone. Why: a
    3-layer planner taught the word alone answered counts and "is there" at their priors ("1",
    "yes"); naming the objects first makes the lookup it does learn (colour and shape) do the
    reading (tools/profiles/nano/README.md, "Rationale answers")."""
    names = [f"{o.colour} {o.shape}" for o in sorted(asked, key=lambda o: o.x)]
    return f"{', '.join(names) or none}: {answer}"


REGION_CAPTION = ("What is in this region?", "Describe the object I marked.",
                  "What did I draw around?", "Tell me what this region shows.")  # fmt: skip


def region_caption(rng: np.random.Generator, compositional: bool, size: int) -> Sample | None:
    """A free-form sketch over one object (its visible mask, grown and roughened) → its name."""
    from vitron.tools.compositing import grow
    from vitron.tools.geometry import mask_box

    scene = sample_scene(rng, compositional=compositional, size=size)
    index = _target(rng, scene, compositional)
    media, rendered = _image(scene, size)
    sketch = grow(rendered.masks[index], 1 + int(rng.integers(2)))
    sketch &= rng.random(sketch.shape) > 0.15  # a hand-drawn scribble misses some pixels
    sketch |= rendered.masks[index] & (rng.random(sketch.shape) > 0.5)
    box = mask_box(sketch)
    if box is None:
        return None
    target = scene.objects[index]
    return Sample(
        id="", task="region_caption", instruction=pick(rng, REGION_CAPTION), media=[media],
        regions=[RegionInput(0, box, sketch)], answer=f"a {target.name}",
        gold={"colour": target.colour, "shape": target.shape, "name": target.name},
    )  # fmt: skip


def temporal_grounding(rng: np.random.Generator, compositional: bool, size: int) -> Sample | None:
    """ "When is X in view?" or "When does X leave?" → an inclusive frame span."""
    video = sample_video(rng, compositional=compositional, size=size)
    found = _video_reference(rng, video, compositional)
    if found is None:
        return None
    index, expression = found
    rendered = render_video(video, size)
    seen = visible_frames(rendered, index)
    if not seen:
        return None
    leaving = [t for t in seen if not inside(video, index, t)]
    if leaving and seen[-1] < video.frames - 1 and rng.random() < 0.6:
        inside_frames = [t for t in seen if inside(video, index, t)]
        start = (inside_frames[-1] + 1) if inside_frames else seen[0]
        span, question = [start, seen[-1]], f"When does {expression} leave the frame?"
    else:
        span, question = [seen[0], seen[-1]], f"When is {expression} in view?"
    return Sample(
        id="", task="temporal_grounding", instruction=question,
        media=[Media("video", rendered.frames, fps=4.0, label="clip")],
        answer=f"frames {span[0]} to {span[1]}", gold={"span": span, "frames": video.frames},
    )  # fmt: skip


def captioning(rng: np.random.Generator, compositional: bool, size: int) -> Sample | None:
    scene = sample_scene(rng, compositional=compositional, size=size)
    media, _ = _image(scene, size)
    text = caption(scene)
    return Sample(id="", task="caption", instruction=pick(rng, ("Describe this image.",
                  "What do you see?", "Caption this picture.")), media=[media],
                  answer=text[0].upper() + text[1:] + ".", gold={"caption": text})  # fmt: skip


# ------------------------------------------------------------------------------- other modules


ANIMATE = ("Animate this picture so that {t}.", "Bring this image to life: {t}.",
           "Turn this into a video where {t}.")  # fmt: skip
GENERATE_VIDEO = ("Make a short video of {t}.", "Generate a clip of {t}.", "I want a video: {t}.")
EDIT_VIDEO = ("In this video, {e}.", "Edit the clip: {e}.", "Please {e} in the video.")
SEGMENT_THEN_EDIT = ("First segment {re}, then make it {c}.",
                     "Find the mask of {re} and recolour it {c}.")  # fmt: skip


def animation_request(
    rng: np.random.Generator, compositional: bool, size: int
) -> tuple[Scene, int, str] | None:
    """An image-to-video request's picture and object: a scene, the index of the object to
    animate and its referring expression (``None`` when the scene allows none)."""
    scene = sample_scene(rng, compositional=compositional, size=size)
    index = _target(rng, scene, compositional)
    expression = refer(scene, index, rng)
    return None if expression is None else (scene, index, expression)


def animation_text(expression: str, direction: str) -> str:
    """The instruction ``image_to_video`` is called with: ``"the red circle moves left"``."""
    return f"{expression} moves {direction}"


def video_tools(rng: np.random.Generator, compositional: bool, size: int) -> Sample | None:
    """Instruction → invocation for generate_video, image_to_video and edit_video."""
    module = pick(rng, ("generate_video", "image_to_video", "edit_video"))
    direction = pick(rng, tuple(DIRECTIONS))
    if module == "generate_video":
        allow = is_held_out if compositional else (lambda c, s: not is_held_out(c, s))
        obj = random_object(rng, allow)
        text = moving_caption(obj.name, direction, pick(rng, tuple(BACKGROUNDS)))
        return Sample(
            id="",
            task="video_tools",
            instruction=pick(rng, GENERATE_VIDEO).format(t=text),
            calls=[TargetCall("generate_video", {"instruction": text})],
            answer=f"Here is a video of {text}.",
            gold={"module": module},
        )
    if module == "image_to_video":
        request = animation_request(rng, compositional, size)
        if request is None:
            return None
        scene, _, expression = request
        media, _ = _image(scene, size)
        text = animation_text(expression, direction)
        return Sample(
            id="", task="video_tools",
            instruction=pick(rng, ANIMATE).format(t=text), media=[media],
            calls=[TargetCall("image_to_video", {"image": "<media:0>", "instruction": text})],
            answer="Here is the animation.", gold={"module": module},
        )  # fmt: skip
    drawn = _video_edit(rng, compositional, size)
    if drawn is None:
        return None
    return Sample(
        id="", task="video_tools",
        instruction=pick(rng, EDIT_VIDEO).format(e=drawn.edit),
        media=[Media("video", render_video(drawn.video, size).frames, fps=4.0, label="clip")],
        calls=[TargetCall("edit_video", {"video": "<media:0>", "instruction": drawn.edit})],
        answer="Here is the edited video.", gold={"module": module},
    )  # fmt: skip


@dataclass(frozen=True)
class _VideoEdit:
    """A clip, the object an edit names and the edit in words; ``colour`` is the new colour of a
    recolour, ``None`` for a removal."""

    video: VideoScene
    index: int
    edit: str
    colour: str | None

    def after(self) -> VideoScene:
        """The clip with the edit made: the object recoloured, or gone (with its velocity)."""
        objects, velocities = list(self.video.scene.objects), list(self.video.velocities)
        if self.colour is not None:
            objects[self.index] = replace(objects[self.index], colour=self.colour)
        else:
            del objects[self.index], velocities[self.index]
        return replace(self.video, scene=self.video.scene.with_objects(tuple(objects)),
                       velocities=tuple(velocities))  # fmt: skip


def _video_edit(rng: np.random.Generator, compositional: bool, size: int) -> _VideoEdit | None:
    """Recolour ("make the red circle blue") or remove an object of a new clip."""
    video = sample_video(rng, compositional=compositional, size=size)
    found = _video_reference(rng, video, compositional)
    if found is None:
        return None
    index, expression = found
    colour = _new_colour(rng, video.scene.objects[index], compositional)
    edit = pick(rng, (f"make {expression} {colour}", f"remove {expression}"))
    return _VideoEdit(video, index, edit, colour if edit.startswith("make ") else None)


def video_generation(rng: np.random.Generator, compositional: bool, size: int) -> Sample | None:
    """Text-to-video, judged on the output (issue 14): one object moving in a named direction, the
    request ``video_tools`` trains the planner to pass on to ``generate_video``. Gold: the
    ``expected`` shape and colour, the ``direction``, and the world's own clip of the request
    (``reference``, T x 32 x 32 x 3 uint8: the object wholly inside on every frame)."""
    allow = is_held_out if compositional else (lambda c, s: not is_held_out(c, s))
    obj = random_object(rng, allow)
    direction = pick(rng, tuple(DIRECTIONS))
    background = pick(rng, tuple(BACKGROUNDS))
    return video_generation_sample(rng, obj, direction, background, pick(rng, GENERATE_VIDEO))


def video_generation_sample(
    rng: np.random.Generator, obj: Obj, direction: str, background: str, template: str = "{t}"
) -> Sample:
    """The ``video_generation`` sample asking for ``obj`` moving ``direction`` on ``background``,
    worded by ``template`` (``{t}`` is the request's text); the world's clip of it is drawn with
    ``rng`` (its speed and start). Also what ``vitron gallery`` builds its video prompts from."""
    text = moving_caption(obj.name, direction, background)
    clip = render_video(moving_video(rng, obj, direction, background), GENERATION_SIZE)
    return Sample(
        id="", task="video_generation", instruction=template.format(t=text),
        calls=[TargetCall("generate_video", {"instruction": text})],
        answer=f"Here is a video of {text}.",
        gold={"expected": {"shape": obj.shape, "colour": obj.colour}, "direction": direction,
              "reference": clip.frames},
    )  # fmt: skip


def video_editing(rng: np.random.Generator, compositional: bool, size: int) -> Sample | None:
    """Recolour or remove an object through a clip, judged on the output (issue 14's video
    editing). Gold: ``after`` (T x S x S x 3 uint8, the clip rendered with the edit made),
    ``region`` (T x S x S bool, the pixels the edit changes on each frame), and the frames the
    object lies wholly inside (``frames``) with its normalised box there (``boxes``), where the
    output is judged: a recolour by the ``expected`` colour and shape in that box, a removal by
    no region of the object's old ``colour`` there."""
    drawn = _video_edit(rng, compositional, size)
    if drawn is None:
        return None
    before, after = render_video(drawn.video, size), render_video(drawn.after(), size)
    masks = before.masks[drawn.index]
    frames = [t for t in range(drawn.video.frames)
              if inside(drawn.video, drawn.index, t) and masks[t].any()]  # fmt: skip
    if not frames:
        return None
    target = drawn.video.scene.objects[drawn.index]
    recolour = drawn.colour is not None
    return Sample(
        id="", task="video_editing", instruction=pick(rng, EDIT_VIDEO).format(e=drawn.edit),
        media=[Media("video", before.frames, fps=4.0, label="clip")],
        calls=[TargetCall("edit_video", {"video": "<media:0>", "instruction": drawn.edit})],
        answer="Here is the edited video.",
        gold={"after": after.frames, "region": (before.frames != after.frames).any(axis=3),
              "operation": "recolor" if recolour else "remove", "colour": target.colour,
              "expected": {"colour": drawn.colour, "shape": target.shape} if recolour else None,
              "frames": frames, "boxes": [mask_box(masks[t]) for t in frames],
              "edit": drawn.edit},
    )  # fmt: skip


def image_to_video(rng: np.random.Generator, compositional: bool, size: int) -> Sample | None:
    """Image-to-video, judged on the output: a scene and "<expression> moves <direction>", the
    request ``video_tools`` trains the planner to pass on to ``image_to_video``. Gold: the input
    ``picture`` (S x S x 3 uint8), the scene's ``objects`` (shape and colour each), the named
    object's ``colour``, the ``direction``, and the world's own clip of the request
    (``reference``, T x 32 x 32 x 3 uint8: the picture box-filtered to 32 px as the pipeline
    shrinks it, the object moving at a speed that keeps it wholly inside, the others still)."""
    direction = pick(rng, tuple(DIRECTIONS))
    request = animation_request(rng, compositional, size)
    if request is None:
        return None
    scene, index, expression = request
    text = animation_text(expression, direction)
    media, _ = _image(scene, size)
    clip = render_video(animate_object(rng, scene, index, direction), size).frames
    return Sample(
        id="", task="image_to_video", instruction=pick(rng, ANIMATE).format(t=text),
        media=[media],
        calls=[TargetCall("image_to_video", {"image": "<media:0>", "instruction": text})],
        answer="Here is the animation.",
        gold={"picture": media.pixels, "direction": direction,
              "colour": scene.objects[index].colour,
              "objects": [{"shape": o.shape, "colour": o.colour} for o in scene.objects],
              "reference": shrink(clip, GENERATION_SIZE)},
    )  # fmt: skip


def multi_step(rng: np.random.Generator, compositional: bool, size: int) -> Sample | None:
    """Requests that need two tools in turn: find then edit, or generate then segment."""
    kind = pick(rng, ("segment_then_edit", "generate_then_segment"))
    if kind == "segment_then_edit":
        scene = sample_scene(rng, compositional=compositional, size=size)
        index = _target(rng, scene, compositional)
        expression = refer(scene, index, rng)
        if expression is None:
            return None
        target = scene.objects[index]
        colour = _new_colour(rng, target, compositional)
        media, rendered = _image(scene, size)
        edit = f"make {expression} {colour}"
        return Sample(
            id="", task="multi_step",
            instruction=pick(rng, SEGMENT_THEN_EDIT).format(re=expression, c=colour),
            media=[media],
            calls=[TargetCall("segment_image", {"image": "<media:0>", "instruction": expression}),
                   TargetCall("edit_image", {"image": "<media:0>", "instruction": edit,
                                             "mask": "<result:0:masks.0>"},
                              match=("image", "instruction"))],
            answer=f"I segmented {expression} and made it {colour}.",
            gold={"modules": ["segment_image", "edit_image"], "mask": rendered.masks[index]},
        )  # fmt: skip
    allow = is_held_out if compositional else (lambda c, s: not is_held_out(c, s))
    obj = random_object(rng, allow)
    text = f"a {obj.name} on a {pick(rng, tuple(BACKGROUNDS))} background"
    return Sample(
        id="", task="multi_step",
        instruction=f"Generate {text}, then segment the {obj.shape} in it.",
        calls=[TargetCall("generate_image", {"instruction": text}),
               TargetCall("segment_image", {"image": "<result:0:image>",
                                            "instruction": f"the {obj.shape}"})],
        answer=f"I generated {text} and segmented the {obj.shape}.",
        gold={"modules": ["generate_image", "segment_image"]},
    )  # fmt: skip


BUILDERS: dict[str, Builder] = {
    "referring_segmentation": referring_segmentation,
    "grounding": grounding,
    "tracking": tracking,
    "retrieval": retrieval,
    "editing": editing,
    "generation": generation,
    "vqa": vqa,
    "region_caption": region_caption,
    "temporal_grounding": temporal_grounding,
    "video_tools": video_tools,
    "multi_step": multi_step,
    "caption": captioning,
}
"""Every task of the world, in the order the evaluation suite interleaves them."""
ON_REQUEST: dict[str, Builder] = {
    "layout": layout,
    "video_generation": video_generation,
    "video_editing": video_editing,
    "image_to_video": image_to_video,
}
"""Tasks scored only when named (``vitron eval --tasks layout``), each from its own stream of
indices, so adding one changes no other sample. ``layout``'s calls carry boxes the grammar's
planner never learnt to write, so it measures a backend through the graph with the gold calls
(``--planner gold``); ``video_generation``, ``video_editing`` and ``image_to_video`` ask what
``video_tools`` teaches the planner to invoke and judge the clip it makes, which takes seconds a
sample."""
