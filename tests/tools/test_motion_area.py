"""Reading what an animation request moves, and the area it may move in (pure functions)."""

from __future__ import annotations

import numpy as np
import pytest

from vitron.tools.motion_area import (
    MARGIN,
    SPEED,
    TRAVEL,
    drift_per_frame,
    moving_direction,
    path_step,
    read_motion,
    regions_area,
    swept_area,
)


@pytest.mark.parametrize(
    ("instruction", "subject", "way"),
    [
        ("the small striped red circle moves left", "the small striped red circle", "left"),
        ("the star left of the circle moves up", "the star left of the circle", "up"),
        ("The car is moving to the right.", "The car", "right"),
        ("a red ball rolling downwards", "a red ball", "down"),
        ("move the triangle right", "the triangle", "right"),
        ("the boat drifts", "the boat", None),
    ],
)
def test_the_subject_and_the_way_are_read(instruction, subject, way):
    motion = read_motion(instruction)
    assert motion is not None and motion.subject == subject
    assert (motion.direction.name if motion.direction else None) == way


@pytest.mark.parametrize("instruction", ["", "the astronaut waves", "make it rain", "animate"])
def test_requests_without_a_moving_verb_name_nothing(instruction):
    assert read_motion(instruction) is None


def test_a_left_move_frees_the_box_and_everything_left_of_it():
    box = [0.5, 0.4, 0.7, 0.6]  # x1, y1, x2, y2, fractions, y down
    area = swept_area(box, read_motion("it moves left").direction, width=100, height=50)
    assert area.shape == (50, 100)
    rows, cols = np.nonzero(area)
    right = int(np.ceil((0.7 + MARGIN) * 100))
    top, bottom = int(np.floor((0.4 - MARGIN) * 50)), int(np.ceil((0.6 + MARGIN) * 50))
    assert cols.min() == 0 and cols.max() == right - 1
    assert rows.min() == top and rows.max() == bottom - 1
    assert area[top:bottom, :right].all()  # a rectangle: the path, nothing else


def test_a_downward_move_reaches_the_bottom_edge_and_no_direction_only_grows_the_box():
    box = [0.2, 0.2, 0.4, 0.4]
    down = swept_area(box, read_motion("it moves down").direction, 40, 40)
    assert down[-1, 10] and not down[0, 10] and not down[30, 35]
    still = swept_area(box, None, 40, 40)  # grown by half its size on each side: 0.1 .. 0.5
    assert still[4:20, 4:20].all() and not still[25:, :].any() and not still[:, 25:].any()


def test_regions_are_the_area_as_given_or_swept():
    regions = [[0.0, 0.0, 0.25, 0.25], [0.75, 0.75, 1.0, 1.0]]
    given = regions_area(regions, None, 20, 20)
    assert given.sum() == 2 * 25
    right = regions_area(regions, read_motion("they move right").direction, 20, 20)
    assert right[0:5, :].all() and not right[10, 10]


def test_a_path_moves_at_the_set_speed_unless_the_box_would_leave_the_picture():
    left, down = read_motion("x moves left").direction, read_motion("x moves down").direction
    assert path_step([0.6, 0.4, 0.8, 0.6], left, frames=8) == (-SPEED, 0.0)
    dx, dy = path_step([0.1, 0.4, 0.3, 0.6], left, frames=8)  # 0.1 of room over 7 moves
    assert dx == pytest.approx(-0.1 / 7) and dy == 0.0
    assert path_step([0.1, 0.8, 0.3, 1.0], down, frames=8) == (0.0, 0.0)  # at the edge already


@pytest.mark.parametrize(
    ("description", "way"),
    [
        ("a small striped red star moving right on a grey background", "right"),
        ("a blue circle moves to the left on white", "left"),
        ("a car driving, then moving upwards", "up"),
        ("a red circle on the left on a white background", None),
        ("a ball moving fast", None),
    ],
)
def test_the_way_a_described_object_moves(description, way):
    found = moving_direction(description)
    assert (found.name if found else None) == way


def test_a_drift_goes_the_set_speed_and_a_long_clip_slower():
    assert drift_per_frame(moving_direction("x moving up"), frames=8) == (0.0, -SPEED)
    dx, dy = drift_per_frame(moving_direction("x moving right"), frames=64)
    assert dx == pytest.approx(TRAVEL / 63) and dy == 0.0
