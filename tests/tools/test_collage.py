"""The collage a layout is drawn as where GLIGEN does not place (:mod:`vitron.tools.collage`):
reading the background, cutting the drawn object out, and putting each into its box."""

from __future__ import annotations

import numpy as np
import pytest

from vitron.tools.collage import (
    Piece,
    background_words,
    cleared,
    compose,
    cut_out,
    object_prompt,
)
from vitron.tools.geometry import mask_box

GREY, RED, DARK_RED, BLUE = (128, 128, 128), (220, 30, 30), (120, 10, 10), (30, 40, 220)


def drawing(colour=RED, top=12, left=10, size=8, stripes=False) -> np.ndarray:
    """A 32 x 32 grey picture with one square object, striped in a darker shade if asked."""
    image = np.full((32, 32, 3), GREY, dtype=np.uint8)
    image[top : top + size, left : left + size] = colour
    if stripes:
        image[top + 1 : top + size - 1 : 2, left + 1 : left + size - 1] = DARK_RED
    return image


def test_the_background_clause_is_read_and_each_phrase_drawn_alone_on_it():
    assert background_words("a red circle and a blue star on a grey background") == (
        "on a grey background"
    )
    assert background_words("a cat on a dark green background, at dusk") == (
        "on a dark green background"
    )
    assert background_words("a cat and a dog") == ""
    assert background_words("a cat on a sofa and a dog on a plain white background") == (
        "on a plain white background"
    )  # the clause that names the background, not the first "on"
    assert object_prompt(
        " a small red circle ", "a small red circle and a star on a white background"
    ) == (
        "a large red circle in the centre on a white background"
    )  # the box sets the size: drawn large, for the detail
    assert object_prompt("a cat", "a cat and a dog") == "a cat in the centre"
    assert object_prompt("a big dog", "a big dog") == "a large dog in the centre"


def test_the_cut_out_is_the_largest_region_that_stands_out_with_its_holes_filled():
    image = drawing(stripes=True)
    image[2, 2] = BLUE  # a speck: a smaller region that also stands out
    image[14, 12] = GREY  # a hole of the background's colour inside the object
    mask = cut_out(image)
    assert mask_box(mask) == pytest.approx([10 / 32, 12 / 32, 18 / 32, 20 / 32])
    assert mask.sum() == 64 and not mask[2, 2]


def test_a_picture_where_nothing_stands_out_has_no_cut_out():
    flat = np.full((32, 32, 3), GREY, dtype=np.uint8)
    flat[5, 5] = (140, 130, 125)  # closer to the background than the threshold
    assert not cut_out(flat).any()


def test_clearing_paints_the_object_and_its_rim_in_the_background_colour():
    image = drawing()
    empty = cleared(image, cut_out(image))
    assert (empty == GREY).all()


def test_each_object_lands_scaled_in_its_box_on_the_first_drawings_background():
    boxes = [[0.0, 0.0, 0.5, 0.5], [0.75, 0.5, 1.0, 1.0]]
    pieces = [Piece(drawing(RED, stripes=True), boxes[0]), Piece(drawing(BLUE, 4, 20, 6), boxes[1])]
    canvas, found = compose(pieces)
    assert found == [True, True]
    drawn = (canvas != GREY).any(axis=2)
    left = np.zeros_like(drawn)
    left[:, :16] = True
    assert mask_box(drawn & left) == pytest.approx(boxes[0])
    assert mask_box(drawn & ~left) == pytest.approx(boxes[1])
    assert (canvas[20:, 24:] == BLUE).all()
    red = canvas[:16, :16].astype(int)
    assert (red[..., 0] > 200).any() and (red[..., 0] < 150).any()  # the stripes came along


def test_a_later_piece_covers_an_earlier_one_and_an_empty_drawing_leaves_its_box_empty():
    flat = np.full((32, 32, 3), GREY, dtype=np.uint8)
    pieces = [Piece(drawing(RED), [0.0, 0.0, 0.5, 0.5]), Piece(drawing(BLUE), [0.25, 0.25, 0.75, 0.75]),
              Piece(flat, [0.5, 0.0, 1.0, 0.25])]  # fmt: skip
    canvas, found = compose(pieces)
    assert found == [True, True, False]
    assert (canvas[12, 12] == BLUE).all() and (canvas[4, 4] == RED).all()
    assert (canvas[:8, 16:] == GREY).all()
    with pytest.raises(ValueError, match="at least one"):
        compose([])


def test_a_backdrop_gives_the_picture_its_background_and_the_pieces_only_their_objects():
    """Pieces drawn on another background (a profile's ``collage_background``) bring only their
    objects; the backdrop, a drawing on the asked background, gives the rest."""
    beige, black = (200, 190, 160), (20, 20, 25)
    on_beige = np.full((32, 32, 3), beige, dtype=np.uint8)
    on_beige[12:20, 10:18] = RED
    backdrop = np.full((32, 32, 3), black, dtype=np.uint8)
    backdrop[4:10, 20:26] = BLUE  # its own object is painted out
    canvas, found = compose([Piece(on_beige, [0.5, 0.5, 1.0, 1.0])], backdrop)
    assert found == [True]
    assert (canvas[16:, 16:] == RED).all()
    assert (canvas[:16] == black).all() and (canvas[:, :16] == black).all()
