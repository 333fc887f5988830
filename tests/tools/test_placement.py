"""Words to boxes for worded add / move (``vitron.tools.placement``), and the reading of
instructions that use them (``vitron.tools.editing``). Boxes: normalised [x1, y1, x2, y2], top-left
origin."""

from __future__ import annotations

import pytest

from vitron.evals.shapes.dataset import EVAL_TASKS, make_sample
from vitron.tools.editing import infer_operation, read_instruction
from vitron.tools.geometry import box_iou, mask_box
from vitron.tools.placement import (
    SIDES,
    add_box,
    clamp_box,
    move_box,
    placed_object,
    read_direction,
    read_place,
    size_of,
)


def approx(box: list[float]) -> list[float]:
    return pytest.approx(box, abs=1e-3)


@pytest.mark.parametrize(
    ("words", "centre", "name"),
    [
        ("at the centre", (0.5, 0.5), "the centre"),
        ("in the center", (0.5, 0.5), "the centre"),
        ("in the middle of the image", (0.5, 0.5), "the centre"),
        ("on the left", (0.25, 0.5), "the left"),
        ("at the right side", (0.75, 0.5), "the right"),
        ("at the top", (0.5, 0.25), "the top"),
        ("at the bottom", (0.5, 0.75), "the bottom"),
        ("top left", (0.25, 0.25), "the top left"),
        ("in the bottom right corner", (0.75, 0.75), "the bottom right"),
        ("at the top-right", (0.75, 0.25), "the top right"),
        ("in the lower left-hand corner", (0.25, 0.75), "the bottom left"),
        ("at the middle left", (0.25, 0.5), "the left"),
        ("at the very top of the picture", (0.5, 0.25), "the top"),
    ],
)
def test_places_read_as_centres(words, centre, name):
    place = read_place(words)
    assert place is not None and (place.x, place.y) == centre and place.name == name


@pytest.mark.parametrize(
    "words", ["on the dog", "to the sky", "at the left right", "top bottom", "the", "corner", ""]
)
def test_words_that_name_no_place_are_none(words):
    assert read_place(words) is None


def test_directions_are_unit_steps_with_y_down():
    assert read_direction("up") == read_direction("upwards")
    assert (read_direction("up").dx, read_direction("up").dy) == (0.0, -1.0)
    assert (read_direction("down").dx, read_direction("down").dy) == (0.0, 1.0)
    left = read_direction("to the left")
    assert (left.dx, left.dy, left.name) == (-1.0, 0.0, "left")
    both = read_direction("down and to the right")
    assert (both.dx, both.dy, both.name) == (1.0, 1.0, "down and right")
    for words in ("to the top", "up down", "left right", "sideways", "to the left side"):
        assert read_direction(words) is None


def test_slightly_is_half_a_step():
    for words in ("slightly left", "a bit to the left", "to the left a little"):
        step = read_direction(words)
        assert (step.dx, step.dy, step.name) == (-0.5, 0.0, "slightly left")
    assert read_direction("slightly") is None
    box = [0.4, 0.5, 0.6, 0.8]
    assert move_box("a bit up", box).box == approx([0.4, 0.375, 0.6, 0.675])  # an eighth
    move = read_instruction("move", "move the cat slightly to the left")
    assert (move.target, move.where) == ("the cat", "slightly to the left")


def test_an_added_object_is_sized_by_its_words_and_centred_on_the_place():
    large = add_box("at the centre", "a large purple triangle")
    assert large.words == "at the centre"
    assert large.box == approx([0.345, 0.345, 0.655, 0.655])
    small = add_box("in the top left corner", "a small green square")
    assert small.box == approx([0.16, 0.16, 0.34, 0.34]) and small.words == "at the top left"
    plain = add_box("on the right", "a cat")
    assert plain.box == approx([0.625, 0.375, 0.875, 0.625])
    assert size_of("a big dog") == SIDES["large"] and size_of("a tiny dog") == SIDES["small"]
    assert add_box("on the dog", "a hat") is None


def test_an_added_box_is_square_in_pixels_on_a_wide_image():
    box = add_box("at the centre", "a cat", aspect=2.0).box
    width, height = (box[2] - box[0]) * 200, (box[3] - box[1]) * 100
    assert width == pytest.approx(height) == pytest.approx(25.0)
    tall = add_box("at the centre", "a cat", aspect=0.5).box
    assert (tall[2] - tall[0]) * 100 == pytest.approx((tall[3] - tall[1]) * 200)


def test_a_move_shifts_by_a_quarter_of_the_image_whatever_the_size_and_stays_inside():
    box = [0.4, 0.5, 0.6, 0.8]  # 0.2 wide, 0.3 high
    up = move_box("up", box)
    assert up.box == approx([0.4, 0.25, 0.6, 0.55]) and up.words == "up"
    assert move_box("to the left", box).box == approx([0.15, 0.5, 0.35, 0.8])
    assert move_box("right", box).box == approx([0.65, 0.5, 0.85, 0.8])
    assert move_box("down", box).box == approx([0.4, 0.7, 0.6, 1.0])  # clamped: 0.8 + 0.25 > 1
    tiny = move_box("left", [0.5, 0.5, 0.52, 0.52])
    assert tiny.box == approx([0.25, 0.5, 0.27, 0.52])  # not 0.02: its own width
    corner = move_box("to the top right corner", box)
    assert corner.words == "to the top right" and corner.box == approx([0.65, 0.1, 0.85, 0.4])
    assert move_box("to the sky", box) is None


def test_clamping_slides_without_shrinking():
    assert clamp_box([-0.1, 0.9, 0.2, 1.2]) == approx([0.0, 0.7, 0.3, 1.0])
    assert clamp_box([-0.5, 0.0, 1.5, 0.5]) == approx([0.0, 0.0, 1.0, 0.5])


@pytest.mark.parametrize(
    ("instruction", "operation"),
    [
        ("add a large purple triangle at the centre", "add"),
        ("put a cat on the left", "add"),
        ("place a cat on the left side of the image.", "add"),
        ("insert a red star in the bottom right corner", "add"),
        ("draw a circle at the top", "add"),
        ("move the triangle up", "move"),
        ("move the large square down", "move"),
        ("move the ball to the left", "move"),
        ("shift the cat to the top right", "move"),
        ("drag the box up and to the left", "move"),
        # the existing readings are kept
        ("remove the dog", "remove"),
        ("replace the dog with a cat", "replace"),
        ("make the car red", "recolor"),
        # the background is no thing a detector finds: the whole picture is restyled
        ("make the background beige", "restyle"),
        ("change the background to black", "restyle"),
        ("replace the background with a beach", "restyle"),
        ("make the background's star red", "recolor"),
        ("make it look like winter", "restyle"),
        # an add or move that names no place in the image stays an InstructPix2Pix restyle
        ("add snow", "restyle"),
        ("add fireworks to the sky", "restyle"),
        ("add a hat on the dog", "restyle"),
        ("move the square", "restyle"),
        ("shift the colours to warmer tones", "restyle"),
    ],
)
def test_the_wording_decides_add_and_move(instruction, operation):
    assert infer_operation(instruction) == operation


def test_reading_an_add_or_move_splits_off_the_place_words():
    add = read_instruction("add", "Add a large purple triangle at the centre.")
    assert (add.content, add.where) == ("a large purple triangle", "at the centre")
    move = read_instruction("move", "move the left square to the right")
    assert (move.target, move.where) == ("the left square", "to the right")
    long = read_instruction("move", "move the small star right of the small circle down")
    assert (long.target, long.where) == ("the small star right of the small circle", "down")
    # no place: as before (the content / target before a preposition), with no place words
    hat = read_instruction("add", "add a hat on the man")
    assert (hat.content, hat.where) == ("a hat", None)
    assert read_instruction("remove", "remove the left square").where is None


def _box_before(gold: dict, direction: str) -> list[float]:
    """The moved object's box before the edit: the changed pixels span it and the gold box after
    it, so it is the gold box slid to the far end of that span."""
    span, after = mask_box(gold["region"]), gold["box"]
    width, height = after[2] - after[0], after[3] - after[1]
    return {
        "up": [after[0], span[3] - height, after[2], span[3]],
        "down": [after[0], span[1], after[2], span[1] + height],
        "left": [span[2] - width, after[1], span[2], after[3]],
        "right": [span[0], after[1], span[0] + width, after[3]],
    }[direction]


def test_the_shapes_worlds_add_and_move_edits_land_near_their_gold_boxes():
    """Every add / move edit of the world's test split reads as its operation. An add lands in
    the gold box's third of the image at about its size; a move of the object's box before the
    edit lands on the gold box after it (both move by a quarter of the image; the world keeps
    centres 0.15 from the edges, the tool keeps the box inside the image)."""
    seen = {"add": 0, "move": 0}
    overlaps = []
    for index in range(480):
        sample = make_sample("test", index, seed=0, tasks=EVAL_TASKS)
        gold = sample.gold
        if sample.task != "editing" or gold["operation"] not in seen:
            continue
        edit, operation = gold["edit"], gold["operation"]
        assert infer_operation(edit) == operation
        reading = read_instruction(operation, edit)
        seen[operation] += 1
        if operation == "add":
            placed = add_box(reading.where, reading.content)
            gold_x = (gold["box"][0] + gold["box"][2]) / 2
            drawn_x = (placed.box[0] + placed.box[2]) / 2
            assert min(2, int(drawn_x * 3)) == min(2, int(gold_x * 3)), edit  # the same third
            side = placed.box[2] - placed.box[0]
            assert abs(side - (gold["box"][2] - gold["box"][0])) < 0.06, edit
        else:
            placed = move_box(reading.where, _box_before(gold, reading.where))
            overlaps.append(box_iou(placed.box, gold["box"]))
            assert overlaps[-1] >= 0.45, edit
    assert seen["add"] >= 3 and seen["move"] >= 3
    assert sum(overlaps) / len(overlaps) >= 0.75  # 0.80 (the object's own size as the step: 0.71)


@pytest.mark.parametrize(
    ("description", "phrase", "words", "centre"),
    [
        ("a small striped red circle on the left on a white background", "a small striped red circle",
         "on the left", (0.25, 0.5)),
        ("a large blue star in the centre on a black background", "a large blue star",
         "in the centre", (0.5, 0.5)),
        ("an owl in the top right corner of the image.", "an owl", "in the top right corner of the image",
         (0.75, 0.25)),
        ("one red square at the bottom", "one red square", "at the bottom", (0.5, 0.75)),
    ],
)  # fmt: skip
def test_a_description_that_places_its_one_object_names_its_box(description, phrase, words, centre):
    placed = placed_object(description)
    assert placed is not None and (placed.phrase, placed.words) == (phrase, words)
    box = placed.box
    assert ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2) == pytest.approx(centre, abs=1e-3)
    assert box[2] - box[0] == pytest.approx(size_of(phrase), abs=1e-3)


@pytest.mark.parametrize(
    "description",
    [
        "a red circle on a white background",  # no place
        "the red circle on the left",  # not one new object
        "a cat on a sofa in the top left corner",  # its first preposition names no place
        "a red circle",
        "on the left",
    ],
)
def test_descriptions_that_place_no_single_object_are_left_to_words(description):
    assert placed_object(description) is None


def test_a_placed_object_is_square_in_pixels_of_a_wide_image():
    box = placed_object("a large red circle on the left", aspect=2.0).box
    assert (box[2] - box[0]) * 2 == pytest.approx(box[3] - box[1], abs=1e-3)
