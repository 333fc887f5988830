"""The colour-histogram check on tracked masks (``vitron.tools.appearance``) and its place in
``Sam2VideoEngine.track``: a mask on an object of other colours than the prompt frame's target is
emptied, a part of a mask on such an object is removed, a mask on the target is kept, and without
the option nothing changes."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch

from vitron.tools.appearance import AppearanceCheck, colour_histogram, histogram_overlap
from vitron.tools.errors import VitronToolError
from vitron.tools.models.sam2_video import Sam2VideoEngine, VideoPrompt, load_sam2_video
from vitron.tools.profiles import ComponentSpec

RED, BLUE, GREY = (220, 30, 30), (30, 40, 210), (128, 128, 128)


def scene(squares: dict[tuple[int, int], tuple[int, int, int]]) -> np.ndarray:
    """A 32 x 32 grey frame with an 8 x 8 square of the given colour at each ``(x, y)``."""
    frame = np.full((32, 32, 3), GREY, dtype=np.uint8)
    for (x, y), colour in squares.items():
        frame[y : y + 8, x : x + 8] = colour
    return frame


def square(x: int, y: int) -> np.ndarray:
    mask = np.zeros((32, 32), dtype=bool)
    mask[y : y + 8, x : x + 8] = True
    return mask


def test_histograms_are_shares_and_overlap_is_one_for_the_same_colours():
    frame = scene({(2, 2): RED, (20, 20): BLUE})
    red = colour_histogram(frame, square(2, 2))
    assert red is not None and red.shape == (64,) and red.sum() == pytest.approx(1.0)
    assert histogram_overlap(red, colour_histogram(frame, square(2, 2))) == pytest.approx(1.0)
    assert histogram_overlap(red, colour_histogram(frame, square(20, 20))) == 0.0
    half = square(2, 2) | square(20, 20)  # half red, half blue
    assert histogram_overlap(red, colour_histogram(frame, half)) == pytest.approx(0.5)
    assert colour_histogram(frame, np.zeros((32, 32), dtype=bool)) is None


def test_the_check_empties_a_mask_on_other_colours_and_keeps_the_target():
    first = scene({(2, 2): RED, (20, 20): BLUE})
    later = scene({(6, 4): RED, (20, 20): BLUE})  # the red square moved
    check = AppearanceCheck(0.3)
    check.set_reference(first, square(2, 2))
    assert check.check(later, square(6, 4)).sum() == 64  # the target, moved: kept
    assert not check.check(later, square(20, 20)).any()  # the blue neighbour: emptied
    empty = np.zeros((32, 32), dtype=bool)
    assert not check.check(later, empty).any()  # an empty mask stays empty, not counted
    assert check.dropped == 1
    off = AppearanceCheck(0.0)
    off.set_reference(first, square(2, 2))
    assert off.check(later, square(20, 20)).sum() == 64  # threshold 0: every mask kept


def test_each_connected_part_is_judged_on_its_own():
    """A mask on the target that also spills onto a neighbour (as SAM 2 does after the two have
    touched) loses the neighbour's part only; judged whole, the target's pixels would keep it."""
    first = scene({(2, 2): RED, (20, 20): BLUE})
    check = AppearanceCheck(0.3)
    check.set_reference(first, square(2, 2))
    later = scene({(4, 2): RED, (20, 20): BLUE})
    spilled = square(4, 2) | square(20, 20)
    assert histogram_overlap(check.reference, colour_histogram(later, spilled)) >= 0.3
    assert np.array_equal(check.check(later, spilled), square(4, 2))
    assert (check.dropped, check.trimmed) == (0, 1)
    split = scene({(2, 2): RED, (20, 20): RED})  # the target seen in two parts: both kept
    both = square(2, 2) | square(20, 20)
    assert np.array_equal(check.check(split, both), both)
    assert not check.check(later, square(20, 20)).any()  # the neighbour alone: emptied
    assert (check.dropped, check.trimmed) == (1, 1)


def test_without_a_reference_every_mask_is_kept():
    check = AppearanceCheck(0.9)
    check.set_reference(scene({}), np.zeros((32, 32), dtype=bool))  # an empty prompt mask
    assert check.check(scene({(20, 20): BLUE}), square(20, 20)).sum() == 64


@pytest.mark.parametrize("threshold", [-0.1, 1.5])
def test_a_threshold_outside_zero_to_one_is_refused(threshold):
    with pytest.raises(ValueError, match="between 0 and 1"):
        AppearanceCheck(threshold)


class ScriptedMasks(Sam2VideoEngine):
    """The engine's streaming and checking, with SAM 2's decoding replaced by given masks (the
    prompt frame's on the red square, later ones on the blue square), so that what ``track``
    does with a tracker that jumps to a neighbour can be seen exactly."""

    def __init__(self, masks: list[np.ndarray], appearance_check: float) -> None:
        self.masks, self.max_frames, self.appearance_check = masks, 10, appearance_check

    @property
    def memory_window(self) -> int:
        return 7

    def _add_prompt(self, session, frame_idx, prompt, size) -> None:  # noqa: ANN001
        pass

    def _step(self, session, frame_idx, frame, size, reverse=False) -> np.ndarray:  # noqa: ANN001
        return self.masks[frame_idx]

    @property
    def processor(self) -> types.SimpleNamespace:  # sessions with nothing in them
        def session(**kwargs: object) -> types.SimpleNamespace:
            return types.SimpleNamespace(output_dict_per_obj={}, frames_tracked_per_obj={})

        return types.SimpleNamespace(init_video_session=session)

    @property
    def _device(self) -> str:
        return "cpu"

    @property
    def _dtype(self) -> str:
        return "float32"


@pytest.mark.parametrize("prompt_frame", [0, 2])
def test_track_empties_the_frames_where_the_mask_jumps_to_a_neighbour(prompt_frame):
    frames = [scene({(2 + 2 * t, 2): RED, (20, 20): BLUE}) for t in range(4)]
    on_red = [square(2 + 2 * t, 2) for t in range(4)]
    jumped = [on_red[t] if t <= prompt_frame else square(20, 20) for t in range(4)]
    jumped[0] = square(20, 20) if prompt_frame else on_red[0]  # backwards, too
    prompt = VideoPrompt(box=[2, 2, 10, 10])
    checked = list(ScriptedMasks(jumped, 0.3).track(iter(frames), prompt_frame, prompt))
    for t in range(4):
        expected = jumped[t] if np.array_equal(jumped[t], on_red[t]) else np.zeros((32, 32), bool)
        assert np.array_equal(checked[t], expected), t
    unchecked = list(ScriptedMasks(jumped, 0.0).track(iter(frames), prompt_frame, prompt))
    assert all(np.array_equal(a, b) for a, b in zip(unchecked, jumped, strict=True))


def test_the_profile_option_reaches_the_engine_and_a_bad_one_fails_at_load():
    cpu = types.SimpleNamespace(device=torch.device("cpu"), dtype=torch.float32)

    def spec(value: object) -> ComponentSpec:
        return ComponentSpec(name="sam2_video", loader="sam2_video", checkpoint="tiny",
                             profile="mine", options={"appearance_check": value})  # fmt: skip

    assert load_sam2_video(spec(0.4), cpu).appearance_check == 0.4
    for bad in (2, "high"):
        with pytest.raises(VitronToolError, match="'mine'.*'sam2_video'.*appearance_check"):
            load_sam2_video(spec(bad), cpu)
