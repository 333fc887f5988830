"""edit_image on the tiny profile: every operation, the untouched area, masks, seeds, errors."""

from __future__ import annotations

import re

import numpy as np
import pytest

from tests.conftest import THREAD
from vitron.tools.backend import CallContext
from vitron.tools.backends.edit_image import EditImageArgs, edit_image, read_instruction
from vitron.tools.compositing import blend_weights, composite, grow, paste
from vitron.tools.geometry import box_mask, fmt_box, region_to_pixels
from vitron.tools.placement import add_box


@pytest.fixture
def square(workspace):
    """A 96 x 128 image with a red square (rows 30–60, columns 40–80) on grey, and its mask."""
    image = np.full((96, 128, 3), 90, dtype=np.uint8)
    image[30:60, 40:80] = (220, 30, 30)
    mask = np.zeros((96, 128), dtype=bool)
    mask[30:60, 40:80] = True
    return workspace.put_image(image), workspace.put_mask(mask), image, mask


def result(workspace, message):
    assert message.status == "success", message.content
    edited = np.asarray(workspace.get_image(message.artifact["image"]))
    area = workspace.get_mask(message.artifact["mask"]) if message.artifact["mask"] else None
    return edited, area


def assert_untouched_outside(original, edited, area):
    assert edited.shape == original.shape
    assert np.array_equal(edited[~area], original[~area]), "pixels outside the edit area changed"
    assert not np.array_equal(edited[area], original[area]), "nothing inside the area changed"


@pytest.mark.parametrize(
    ("operation", "args"),
    [
        ("remove", {"instruction": "remove the square"}),
        ("replace", {"instruction": "replace the square with a blue ball"}),
        ("recolor", {"instruction": "make the square green"}),
        ("restyle", {"instruction": "make it look like a watercolour"}),
    ],
)
def test_local_edits_change_only_the_grown_mask(invoke, workspace, square, operation, args):
    image, mask, original, inside = square
    message = invoke(
        "edit_image", image=image.handle, operation=operation, mask=mask.handle, seed=1, **args
    )
    edited, area = result(workspace, message)
    assert_untouched_outside(original, edited, area)
    assert np.array_equal(area, grow(inside, 8))  # the default margin of 8 px
    assert message.artifact["mask"] in message.content


@pytest.mark.parametrize(
    ("instruction", "operation"),
    [("remove the square", "remove"), ("make the square green", "recolor"),
     ("replace the square with a ball", "replace")],
)  # fmt: skip
def test_the_operation_is_read_from_the_instruction_when_not_given(
    invoke, workspace, square, instruction, operation
):
    """Vitron's grammar sends only an instruction; the wording picks the operation."""
    image, mask, original, _ = square
    message = invoke(
        "edit_image", image=image.handle, mask=mask.handle, instruction=instruction, seed=1
    )
    edited, area = result(workspace, message)
    assert_untouched_outside(original, edited, area)
    assert workspace.describe(message.artifact["image"]).extra["operation"] == operation


def test_add_paints_into_the_region_with_gligen(invoke, workspace, square):
    image, _, original, _ = square
    region = [0.05, 0.1, 0.3, 0.5]
    message = invoke(
        "edit_image", image=image.handle, operation="add", instruction="add a yellow star",
        regions=[region], seed=2, grow=4,
    )  # fmt: skip
    edited, area = result(workspace, message)
    assert "GLIGEN" in message.content
    assert_untouched_outside(original, edited, area)
    assert np.array_equal(area, grow(box_mask(region, 128, 96), 4))


def test_move_clears_the_source_and_draws_at_the_destination(invoke, workspace, square):
    image, mask, original, inside = square
    destination = [0.7, 0.6, 0.95, 0.95]
    message = invoke(
        "edit_image", image=image.handle, operation="move", instruction="move the red square",
        mask=mask.handle, regions=[destination], seed=3, grow=0,
    )  # fmt: skip
    edited, area = result(workspace, message)
    assert np.array_equal(area, inside | box_mask(destination, 128, 96))
    assert_untouched_outside(original, edited, area)
    assert not np.array_equal(edited[inside], original[inside])


def test_a_worded_add_draws_into_the_place_the_words_name(invoke, workspace, square):
    """No operation, no regions: 'add a large yellow star at the top left' is an add into a large
    box centred on the top-left quarter, square in pixels, and the result says where."""
    image, _, original, _ = square
    instruction = "add a large yellow star at the top left"
    message = invoke("edit_image", image=image.handle, instruction=instruction, seed=2, grow=4)
    edited, area = result(workspace, message)
    box = add_box("at the top left", "a large yellow star", aspect=128 / 96).box
    assert np.array_equal(area, grow(box_mask(box, 128, 96), 4))
    assert_untouched_outside(original, edited, area)
    assert f"added 'a large yellow star' (GLIGEN) at the top left {fmt_box(box)}" in message.text
    assert workspace.describe(message.artifact["image"]).extra["operation"] == "add"


def test_a_worded_move_shifts_the_located_object_by_a_quarter_of_the_image(
    invoke, workspace, square
):
    """'move the red square up': the square (rows 30-60, columns 40-80 of 96 x 128) is cleared
    and its own pixels put a quarter of the height (24 rows) higher, rows 6-36; nothing outside
    the two areas changes."""
    image, mask, original, inside = square
    message = invoke(
        "edit_image", image=image.handle, instruction="move the red square up", mask=mask.handle,
        seed=3, grow=0,
    )  # fmt: skip
    edited, area = result(workspace, message)
    destination = np.zeros_like(inside)
    destination[6:36, 40:80] = True
    assert np.array_equal(area, inside | destination)
    assert_untouched_outside(original, edited, area)
    box = fmt_box([40 / 128, 6 / 96, 80 / 128, 36 / 96])
    assert f"moved the area of {mask.handle} up to {box} in" in message.text
    assert np.array_equal(edited[6:36, 40:80], original[30:60, 40:80])  # the square itself


def test_a_worded_move_locates_its_target_by_words(invoke, workspace, square):
    """Words only, as a planner sends them: Grounding DINO and SAM find the target (the tiny
    profile's random SAM masks nearly the whole image, so it moves a little), and the edit stays
    inside the located mask and where it is pasted, in the box the result names."""
    image, _, original, _ = square
    message = invoke(
        "edit_image", image=image.handle, instruction="move the red square right",
        box_threshold=0.0, seed=5, steps=2, grow=0,
    )  # fmt: skip
    edited, area = result(workspace, message)
    assert np.array_equal(edited[~area], original[~area])
    said = re.search(
        r"moved 'the red square' \(located by Grounding DINO as .*\) right to (\[.*?\]) in",
        message.text,
    )
    assert said, message.text
    drawn = box_mask([float(v) for v in said[1].strip("[]").split(", ")], 128, 96)
    assert area[drawn].any()  # the located mask, pasted into its box, is edited
    assert workspace.describe(message.artifact["image"]).extra["operation"] == "move"


def test_a_move_already_where_the_words_say_is_an_error(invoke, workspace):
    image = np.full((64, 64, 3), 90, dtype=np.uint8)
    image[0:20, 10:30] = (220, 30, 30)
    mask = workspace.put_mask(image[..., 0] == 220).handle
    handle = workspace.put_image(image).handle
    up = invoke("edit_image", image=handle, instruction="move the square up", mask=mask)
    assert up.status == "error" and "already as far up as it fits" in up.content
    assert "nothing to move" in up.content


@pytest.mark.parametrize(
    ("instruction", "expected"),
    [("add a hat", "add needs `regions`"), ("move the square", "destination box")],
)
def test_an_add_or_move_without_a_place_asks_for_one(invoke, square, instruction, expected):
    operation = instruction.split()[0]
    message = invoke("edit_image", image=square[0].handle, operation=operation,
                     instruction=instruction)  # fmt: skip
    assert message.status == "error"
    assert expected in message.content and "in the instruction" in message.content


def test_regions_are_refined_by_sam(invoke, workspace, square):
    image, _, original, _ = square
    message = invoke(
        "edit_image", image=image.handle, operation="replace", instruction="a cat",
        regions=[[0.25, 0.25, 0.7, 0.7]], seed=4,
    )  # fmt: skip
    edited, area = result(workspace, message)
    assert_untouched_outside(original, edited, area)


def test_a_text_target_is_found_with_grounding_dino_and_sam(invoke, workspace, photo):
    message = invoke(
        "edit_image", image=photo.handle, operation="remove", instruction="remove the helmet",
        box_threshold=0.0, seed=5,
    )  # fmt: skip
    original = np.asarray(workspace.get_image(photo.handle))
    if message.status == "error":  # random weights: SAM may return an empty mask for the box
        assert "empty" in message.content
        return
    edited, area = result(workspace, message)
    assert "located by Grounding DINO" in message.content and "'the helmet'" in message.content
    assert np.array_equal(edited[~area], original[~area])


def test_the_background_is_what_sams_objects_leave_not_a_detector_box(
    invoke, workspace, square, tiny_models
):
    handle, _, image, _ = square
    message = invoke("edit_image", image=handle.handle, instruction="make the background white",
                     grow=2)  # fmt: skip
    assert "the background (outside every object SAM finds)" in message.content
    edited, area = result(workspace, message)
    from PIL import Image

    found = [m.mask for m in tiny_models.get("sam").automatic(Image.fromarray(image))
             if m.mask.mean() < 0.5]  # fmt: skip
    objects = np.logical_or.reduce(found) if found else np.zeros(image.shape[:2], dtype=bool)
    assert np.array_equal(area, grow(~grow(objects, 2), 2))  # stops where the objects start
    assert np.array_equal(edited[~area], image[~area])


def test_global_restyle_changes_the_whole_image_at_its_size(invoke, workspace, square):
    image, _, original, _ = square
    message = invoke(
        "edit_image", image=image.handle, operation="restyle", instruction="make it snowy", seed=6
    )
    edited, area = result(workspace, message)
    assert area is None and message.artifact["mask"] is None
    assert edited.shape == original.shape and not np.array_equal(edited, original)


def test_same_seed_same_edit(invoke, square):
    image, mask, _, _ = square

    def run(seed: int) -> str:
        return invoke(
            "edit_image", image=image.handle, operation="replace", instruction="a cat",
            mask=mask.handle, seed=seed,
        ).artifact["image"]  # fmt: skip

    assert run(9) == run(9) != run(10)


def test_progress_counts_the_steps_that_run(services, workspace, square):
    image, mask, _, _ = square
    events: list[dict] = []
    call = CallContext(workspace=workspace, models=services.models, progress=events.append)
    # recolor keeps shapes with strength 0.8: of 5 steps, int(5 * 0.8) = 4 run
    args = EditImageArgs(
        image=image.handle, operation="recolor", instruction="make the square blue",
        mask=mask.handle, seed=0, steps=5,
    )  # fmt: skip
    edit_image(args, call)
    steps = [e for e in events if e["event"] == "step"]
    assert [(e["step"], e["total"]) for e in steps] == [(1, 4), (2, 4), (3, 4), (4, 4)]

    events.clear()
    move = EditImageArgs(
        image=image.handle, operation="move", target="the square", mask=mask.handle,
        regions=[[0.0, 0.0, 0.2, 0.2]], seed=0, steps=2,
    )  # fmt: skip
    edit_image(move, call)
    stages = [e["stage"] for e in events if e["event"] == "step"]
    assert stages == ["remove", "remove"]  # then its own pixels are pasted: no steps

    events.clear()
    redrawn = move.model_copy(update={"prompt": "a blue square"})  # said how: GLIGEN redraws it
    edit_image(redrawn, call)
    stages = [e["stage"] for e in events if e["event"] == "step"]
    assert stages == ["remove", "remove", "add", "add"]

    events.clear()
    restyle = EditImageArgs(
        image=image.handle, operation="restyle", instruction="make it pink", seed=0, steps=2
    )
    edit_image(restyle, call)
    steps = [e for e in events if e["event"] == "step"]
    assert [(e["step"], e["pipeline"]) for e in steps] == [
        (1, "instruct_pix2pix"),
        (2, "instruct_pix2pix"),
    ]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"operation": "explode", "instruction": "explode it"}, "operation"),
        ({"operation": "add", "instruction": "add a hat"}, "add needs `regions`"),
        ({"operation": "move", "instruction": "move the square"}, "destination box"),
        ({"operation": "restyle"}, "say what to restyle"),
        ({"operation": "remove"}, "say what to remove"),
        (
            {"operation": "add", "instruction": "add a hat", "regions": [[0.1, 0.2, 1.3, 0.5]]},
            "outside the media",
        ),
        ({"operation": "remove", "instruction": "x", "grow": -1}, "grow"),
        ({}, "say what to do: an `operation` or an `instruction`"),
    ],
)
def test_bad_arguments_are_error_messages(invoke, square, args, expected):
    message = invoke("edit_image", image=square[0].handle, **args)
    assert message.status == "error"
    assert expected in message.content


def test_runtime_errors_are_error_messages(invoke, workspace, square):
    image, _, _, _ = square
    small = workspace.put_mask(np.ones((10, 10), dtype=bool))
    wrong_size = invoke("edit_image", image=image.handle, operation="remove", mask=small.handle)
    assert wrong_size.status == "error" and "10x10" in wrong_size.content
    empty = workspace.put_mask(np.zeros((96, 128), dtype=bool))
    nothing = invoke("edit_image", image=image.handle, operation="remove", mask=empty.handle)
    assert nothing.status == "error" and "empty" in nothing.content
    no_colour = invoke(
        "edit_image", image=image.handle, operation="replace", target="the square", prompt=""
    )
    assert no_colour.status == "error" and "say what to put there" in no_colour.content


def test_reading_instructions():
    assert read_instruction("remove", "Remove the dog from the picture.").target == "the dog"
    replace = read_instruction("replace", "replace the dog with a cat")
    assert (replace.target, replace.content) == ("the dog", "a cat")
    recolor = read_instruction("recolor", "make the car red")
    assert (recolor.target, recolor.content) == ("the car", "red")
    recolor = read_instruction("recolor", "recolor the old car to dark blue")
    assert (recolor.target, recolor.content) == ("the old car", "dark blue")
    assert read_instruction("add", "add a hat on the man").content == "a hat"
    assert read_instruction("move", "move the ball to the left").target == "the ball"
    assert read_instruction("restyle", "make it look like winter").content == (
        "make it look like winter"
    )
    assert read_instruction("remove", "the lamp").target == "the lamp"  # no verb: all of it


def test_composite_is_exact_outside_the_grown_mask():
    rng = np.random.default_rng(0)
    original = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    edited = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    mask = np.zeros((40, 50), dtype=bool)
    mask[10:20, 15:30] = True
    weights = blend_weights(mask, 5)
    out = composite(original, edited, weights)
    grown = grow(mask, 5)
    assert np.array_equal(out[~grown], original[~grown])
    assert np.array_equal(out[mask], edited[mask])
    assert (weights[grown & ~mask] > 0).all() and (weights[grown & ~mask] < 1).all()


def test_a_profile_can_have_its_inpainting_draw_added_objects(
    services, workspace, square, adds_models
):
    """With the inpainting entry's ``draws_added_objects`` (nano: its GLIGEN inpainting is
    untrained), an add paints the phrase into its grown box with the inpainting pipeline; the
    result says so, nothing outside the box changes, and GLIGEN inpainting is never loaded."""
    from vitron.tools.backend import Services, build_tools

    models = adds_models
    adds = Services(workspace=services.workspace, models=models)
    tool = {t.name: t for t in build_tools(adds)}["edit_image"]
    image, _, original, _ = square
    args = {"image": image.handle, "instruction": "add a large yellow star at the top left",
            "seed": 2, "grow": 4}  # fmt: skip
    call = {"type": "tool_call", "id": "c1", "name": "edit_image", "args": args}
    message = tool.invoke(call, {"configurable": {"thread_id": THREAD}})
    edited, area = result(workspace, message)
    box = add_box("at the top left", "a large yellow star", aspect=128 / 96).box
    assert area.any() and not (area & ~grow(box_mask(box, 128, 96), 4 + 4)).any()
    assert_untouched_outside(original, edited, area)
    assert (
        f"added 'a large yellow star' (inpainting) at the top left {fmt_box(box)}" in message.text
    )
    assert "gligen_inpaint" not in models.loaded()


@pytest.mark.parametrize("found", ["disc", "nothing"])
def test_an_inpainted_add_keeps_only_the_object_sam_finds_in_its_box(
    services, workspace, square, adds_models, monkeypatch, found
):
    """Inpainting repaints its whole box, and the background it paints around the object is not
    the picture's own: only SAM's mask of what it drew (prompted with the box, grown by 2 px and
    blended across 2 more) is kept; the rest of the box is the input's pixels. A box where SAM
    finds nothing is kept whole."""
    from vitron.tools.backend import Services, build_tools
    from vitron.tools.models.sam import SamMask

    image, _, original, _ = square
    height, width = original.shape[:2]
    box = add_box("at the top left", "a large yellow star", aspect=width / height).box
    x1, y1, x2, y2 = region_to_pixels(box, width, height)
    rows, cols = np.mgrid[:height, :width]
    disc = (rows - (y1 + y2) / 2) ** 2 + (cols - (x1 + x2) / 2) ** 2 <= 5**2
    prompts = []

    def segment(key, image, *, box=None, **_):
        prompts.append(box)
        return SamMask(disc if found == "disc" else np.zeros_like(disc), 0.9)

    monkeypatch.setattr(adds_models.get("sam"), "segment", segment)
    tool = {t.name: t for t in build_tools(Services(workspace=services.workspace,
                                                    models=adds_models))}["edit_image"]  # fmt: skip
    args = {"image": image.handle, "instruction": "add a large yellow star at the top left",
            "seed": 2, "grow": 4}  # fmt: skip
    call = {"type": "tool_call", "id": "c1", "name": "edit_image", "args": args}
    message = tool.invoke(call, {"configurable": {"thread_id": THREAD}})
    edited, _ = result(workspace, message)
    assert [list(p) for p in prompts] == [list(region_to_pixels(box, width, height))]
    changed = (edited != original).any(axis=2)
    kept = grow(disc, 2 + 2) if found == "disc" else grow(box_mask(box, width, height), 4 + 4)
    assert changed.any() and not (changed & ~kept).any()


def test_paste_moves_an_objects_own_pixels_and_scales_them_to_a_new_box():
    """A 4 x 6 red block with a dotted texture at rows 2-6, columns 1-7 of a 16 x 16 grey picture:
    pasted unscaled it is the same pixels elsewhere; into a box twice its size it is scaled."""
    source = np.full((16, 16, 3), 90, dtype=np.uint8)
    source[2:6, 1:7] = (200, 20, 20)
    source[2:6:2, 1:7:2] = (100, 10, 10)
    mask = np.zeros((16, 16), dtype=bool)
    mask[2:6, 1:7] = True
    base = np.full_like(source, 50)
    moved, pasted = paste(base, source, mask, [8 / 16, 10 / 16, 14 / 16, 14 / 16])
    assert np.array_equal(moved[10:14, 8:14], source[2:6, 1:7])
    assert pasted.sum() == mask.sum() and pasted[10:14, 8:14].all()
    assert np.array_equal(moved[~pasted], base[~pasted])
    bigger, pasted = paste(base, source, mask, [0.0, 0.5, 12 / 16, 1.0])
    assert pasted[8:16, 0:12].all() and pasted.sum() == 8 * 12
    red, green = bigger[8:16, 0:12, 0].astype(int), bigger[8:16, 0:12, 1].astype(int)
    assert (red > green + 50).all()  # the block's reds, scaled, not the base's grey
    empty, nothing = paste(base, source, np.zeros_like(mask), [0, 0, 0.5, 0.5])
    assert np.array_equal(empty, base) and not nothing.any()
