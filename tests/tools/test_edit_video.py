"""edit_video on the tiny profile: tracked local edits and whole-video restyle on the `square_video` fixture
(6 frames, 64 x 48, 4 fps): outputs, the untouched area, streaming, seeds, signals, errors."""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch

from vitron.tools.backend import CallContext
from vitron.tools.backends.edit_video import EditVideoArgs, edit_video
from vitron.tools.compositing import grow
from vitron.tools.editing import infer_operation
from vitron.tools.generation import inpaint_frames
from vitron.tools.models.diffusion_common import Prompt
from vitron.tools.workspace import Workspace

BOX = [0.05, 0.25, 0.4, 0.75]  # around the square on frame 0 of the `square_video` fixture
SIGNAL_DIM = 32  # the tiny planner's "diffusion" signal space (diffusion_signal's in_dim)


@pytest.fixture
def frames(workspace, square_video) -> np.ndarray:
    """The square_video as decoded: T x H x W x 3 uint8, what the tool reads."""
    return workspace.get_video(square_video.handle).frames


@pytest.fixture
def square_masks(frames) -> np.ndarray:
    """T x H x W bool: the moving square of every frame (the square_video's red pixels)."""
    return (frames[..., 0] > 150) & (frames[..., 1] < 100)


@pytest.fixture
def mask_video(workspace, square_masks):
    return workspace.put_video(
        [m.astype(np.uint8) * 255 for m in square_masks], fps=4, lossless=True
    )


@pytest.fixture
def written(monkeypatch) -> dict[str, np.ndarray]:
    """The exact frames each ``put_video`` received (before MP4 encoding), by handle."""
    store: dict[str, np.ndarray] = {}
    put_video = Workspace.put_video

    def spy(self, frames, fps, **kwargs):
        kept: list[np.ndarray] = []

        def tee():
            for frame in frames:
                kept.append(np.array(frame))
                yield frame

        meta = put_video(self, tee(), fps, **kwargs)
        store[meta.handle] = np.stack(kept)
        return meta

    monkeypatch.setattr(Workspace, "put_video", spy)
    return store


def masks_of(workspace, handle: str) -> np.ndarray:
    return workspace.get_video(handle).frames[..., 0] > 127


def ok(message):
    assert message.status == "success", message.content
    return message


def quiet(_: dict) -> None:
    pass


# --------------------------------------------------------------------------- outputs


def test_a_tracked_local_edit_gives_a_video_and_its_mask_video(
    invoke, workspace, square_video, frames, written
):
    # random-weight SAM 2 masks are speckled over half the frame: any margin would cover it all
    message = ok(invoke("edit_video", video=square_video.handle, operation="remove",
                        instruction="remove the square", regions=[BOX], grow=0, seed=1))  # fmt: skip
    out, masks = message.artifact["video"], message.artifact["masks"]
    assert set(message.artifact["media"]) == {out, masks}
    edited = workspace.describe(out)
    assert (edited.frames, edited.width, edited.height, edited.fps) == (6, 64, 48, 4.0)
    assert edited.source == "edit_video" and edited.inputs == [square_video.handle, masks]
    assert edited.extra == {"operation": "remove", "seed": 1}
    tracked = workspace.describe(masks)
    assert (tracked.frames, tracked.width, tracked.height, tracked.fps) == (6, 64, 48, 4.0)
    grey = workspace.get_video(masks).frames[..., 0]
    assert set(np.unique(grey)) <= {0, 255}  # lossless: exact 0/255 frames
    assert workspace.get_video(out).frames.shape == (6, 48, 64, 3)  # both handles resolve
    assert out in message.content and masks in message.content
    assert "'the square' given on frame 0" in message.content
    inside = grey > 127
    assert inside.any(axis=(1, 2)).all() and (~inside).any(axis=(1, 2)).all()
    assert np.array_equal(written[out][~inside], frames[~inside])  # every frame, exact
    assert not np.array_equal(written[out][inside], frames[inside])


@pytest.mark.parametrize(
    ("operation", "args"),
    [
        ("remove", {"instruction": "remove the square"}),
        ("replace", {"instruction": "replace the square with a blue ball"}),
        ("recolor", {"instruction": "make the square green"}),
        ("restyle", {"instruction": "make it look like a watercolour", "target": "the square"}),
    ],
)
def test_only_the_grown_mask_changes_in_every_frame(
    invoke, square_video, frames, mask_video, square_masks, written, operation, args
):
    message = ok(invoke("edit_video", video=square_video.handle, operation=operation, grow=4, seed=2,
                        mask_video=mask_video.handle, **args))  # fmt: skip
    edited = written[message.artifact["video"]]
    assert edited.shape == frames.shape
    for index, (before, after, mask) in enumerate(zip(frames, edited, square_masks, strict=True)):
        outside = ~grow(mask, 4)
        assert np.array_equal(after[outside], before[outside]), f"frame {index} changed outside"
        assert not np.array_equal(after[mask], before[mask]), f"frame {index} not edited"


def test_a_lossless_result_keeps_the_outside_through_the_encoding(
    invoke, workspace, square_video, frames, mask_video, square_masks, written
):
    message = ok(invoke("edit_video", video=square_video.handle, operation="replace", prompt="a cat",
                        mask_video=mask_video.handle, grow=4, lossless=True, seed=3))  # fmt: skip
    outside = ~np.stack([grow(m, 4) for m in square_masks])
    margin = ~outside & ~square_masks
    edited = written[message.artifact["video"]]
    assert not np.array_equal(edited[margin], frames[margin])  # the margin blends
    stored = workspace.get_video(message.artifact["video"]).frames.astype(int)
    difference = np.abs(stored - frames.astype(int))
    assert difference[outside].max() <= 2  # RGB -> YUV 4:4:4 -> RGB rounding only
    assert difference[~outside].mean() > 10


def test_a_text_target_is_located_on_the_frame_then_tracked(invoke, square_video):
    message = ok(invoke("edit_video", video=square_video.handle, operation="replace",
                        instruction="replace the red square with a ball", frame=2,
                        box_threshold=0.0, seed=4))  # fmt: skip
    assert "located on frame 2 by Grounding DINO" in message.content
    assert "'the red square'" in message.content


def test_a_mask_on_a_frame_seeds_the_tracking(invoke, workspace, square_video, square_masks):
    mask = workspace.put_mask(square_masks[3])
    message = ok(invoke("edit_video", video=f"{square_video.handle}#3", operation="remove",
                        mask=mask.handle, seed=5))  # fmt: skip
    assert "given on frame 3" in message.content
    tracked = masks_of(workspace, message.artifact["masks"])[3]
    given = square_masks[3]
    assert (given & tracked).sum() / (given | tracked).sum() > 0.8  # SAM 2 keeps a mask prompt
    assert workspace.describe(message.artifact["video"]).inputs[:3] == [
        square_video.handle, message.artifact["masks"], mask.handle,
    ]  # fmt: skip


def test_a_mask_video_from_track_video_is_used_as_it_is(
    invoke, workspace, square_video, frames, written
):
    tracked = ok(invoke("track_video", video=square_video.handle, regions=[BOX]))
    masks = tracked.artifact["masks"]
    message = ok(invoke("edit_video", video=square_video.handle, operation="recolor",
                        instruction="make it blue", mask_video=masks, grow=0, seed=6))  # fmt: skip
    assert message.artifact["masks"] == masks
    assert list(message.artifact["media"]) == [message.artifact["video"]]  # nothing else new
    edited = written[message.artifact["video"]]
    inside = masks_of(workspace, masks)
    assert np.array_equal(edited[~inside], frames[~inside])


def test_whole_video_restyle_keeps_length_size_and_fps(invoke, workspace, square_video, frames):
    message = ok(invoke("edit_video", video=square_video.handle, operation="restyle",
                        instruction="make it look like a watercolour", seed=7))  # fmt: skip
    assert message.artifact["masks"] is None
    assert list(message.artifact["media"]) == [message.artifact["video"]]
    edited = workspace.describe(message.artifact["video"])
    assert (edited.frames, edited.width, edited.height, edited.fps) == (6, 64, 48, 4.0)
    assert "1 chunk(s) of up to 16 frames" in message.content
    chunked = ok(invoke("edit_video", video=square_video.handle, operation="restyle",
                        instruction="make it look like a watercolour", seed=7, chunk=4))  # fmt: skip
    assert "2 chunk(s) of up to 4 frames" in chunked.content
    assert workspace.describe(chunked.artifact["video"]).frames == 6  # a chunk of 4, one of 2
    assert not np.array_equal(workspace.get_video(message.artifact["video"]).frames, frames)


def test_a_background_change_restyles_only_what_sams_objects_leave_on_each_frame(
    invoke, workspace, square_video, frames, square_masks, monkeypatch
):
    """ "make the background white": a whole-video restyle (not a tracked recolour of "the
    background", which no detector boxes) whose pixels land only outside the objects SAM finds on
    each frame. Tiny's SAM finds noise, so here it finds the square."""
    from vitron.tools.backends import edit_video as module
    from vitron.tools.compositing import grow

    asked: list[str] = []

    def square_left(call, key, image, clear=0):  # noqa: ANN001, ANN202
        asked.append(key)
        red = np.asarray(image)[..., 0] > 150
        return ~grow(red, clear)

    monkeypatch.setattr(module, "background_mask", square_left)
    message = ok(invoke("edit_video", video=square_video.handle,
                        instruction="make the background white", grow=2, seed=3))  # fmt: skip
    assert "restyled the background: 'white background'" in message.content
    assert message.artifact["masks"] is None
    assert asked == [f"{square_video.handle}#{t}" for t in range(len(frames))]
    edited = workspace.get_video(message.artifact["video"]).frames
    assert edited.shape == frames.shape
    inner = np.stack([~grow(~m, 2) for m in square_masks])  # the square, away from its edges
    assert inner.any()
    assert np.abs(edited[inner].astype(int) - frames[inner]).max() <= 12  # MP4 of a kept square
    outside = ~np.stack([grow(m, 6) for m in square_masks])
    assert np.abs(edited[outside].astype(int) - frames[outside]).mean() > 12  # restyled


@pytest.mark.parametrize(
    ("instruction", "operation"),
    [
        ("Remove the dog.", "remove"),
        ("replace the dog with a blue ball", "replace"),
        ("turn the car into a tractor", "replace"),
        ("make the car dark blue", "recolor"),
        ("change the car to red", "recolor"),
        ("paint the fence in a warm tone", "recolor"),
        ("make it look like a watercolour", "restyle"),
        ("make the background white", "restyle"),  # the background: what the objects leave
        ("add snow", "restyle"),  # names no place: an add edit_video cannot do stays a restyle
        ("a red car; a snowy road", "restyle"),  # the released Vitron data's edit_video phrasing
    ],
)
def test_without_an_operation_the_wording_decides(instruction, operation):
    assert infer_operation(instruction) == operation


def test_a_planner_may_send_only_words(invoke, workspace, square_video, mask_video):
    message = ok(
        invoke("edit_video", video=square_video.handle, instruction="make it snowy", seed=0)
    )
    assert workspace.describe(message.artifact["video"]).extra["operation"] == "restyle"
    message = ok(invoke("edit_video", video=square_video.handle, instruction="remove the square",
                        mask_video=mask_video.handle, seed=0))  # fmt: skip
    assert workspace.describe(message.artifact["video"]).extra["operation"] == "remove"


# --------------------------------------------------------------------------- seeds and signals


def test_same_seed_same_video(invoke, square_video, mask_video):
    def run(seed: int) -> str:
        return ok(invoke("edit_video", video=square_video.handle, operation="recolor", prompt="green",
                         mask_video=mask_video.handle, seed=seed)).artifact["video"]  # fmt: skip

    assert run(8) == run(8) != run(9)


def test_no_signal_is_the_text_only_path_and_a_signal_changes_it(
    invoke, workspace, tiny_models, square_video, frames, mask_video, square_masks
):
    args = {"video": square_video.handle, "operation": "replace", "prompt": "a blue ball",
            "mask_video": mask_video.handle, "seed": 3}  # fmt: skip
    text_only = ok(invoke("edit_video", **args)).artifact["video"]
    engine = tiny_models.get("inpaint")
    expected = inpaint_frames(
        engine, Prompt("a blue ball"), iter(frames), iter(square_masks), seed=3,
        steps=engine.defaults.steps, guidance=engine.defaults.guidance, progress=quiet,
    )  # fmt: skip
    assert workspace.put_video(expected, fps=4).handle == text_only  # same pixels, same handle

    signal = workspace.put_embedding(torch.randn(SIGNAL_DIM, generator=torch.Generator().manual_seed(0)))  # fmt: skip
    hybrid = ok(invoke("edit_video", signal=signal.handle, **args))
    assert hybrid.artifact["video"] != text_only
    assert signal.handle in hybrid.content
    assert signal.handle in workspace.describe(hybrid.artifact["video"]).inputs


def test_restyle_without_signal_is_video_to_video_and_a_signal_changes_it(
    invoke, workspace, tiny_models, square_video, frames
):
    args = {"video": square_video.handle, "operation": "restyle", "instruction": "snowy", "seed": 4}
    text_only = ok(invoke("edit_video", **args)).artifact["video"]
    engine = tiny_models.get("video_to_video")
    expected = engine.transform(Prompt("snowy"), frames, seed=4, steps=engine.defaults.steps,
                                guidance=engine.defaults.guidance, progress=quiet)  # fmt: skip
    assert workspace.put_video(list(expected), fps=4).handle == text_only

    signal = workspace.put_embedding(torch.randn(2, SIGNAL_DIM))
    hybrid = ok(invoke("edit_video", signal=signal.handle, **args))
    assert hybrid.artifact["video"] != text_only


# --------------------------------------------------------------------------- progress, streaming


def test_progress_reports_tracking_steps_and_frames_done(services, workspace, square_video):
    events: list[dict] = []
    call = CallContext(workspace=workspace, models=services.models, progress=events.append)
    args = EditVideoArgs(video=square_video.handle, operation="remove", instruction="remove the square",
                         regions=[BOX], seed=0, steps=2)  # fmt: skip
    edit_video(args, call)
    tracked = [e["frames_done"] for e in events if e["event"] == "track"]
    assert tracked == [1, 2, 3, 4, 5, 6] and {e["stage"] for e in events if e["event"] == "track"} == {"track"}  # fmt: skip
    steps = [(e["frame"], e["step"]) for e in events if e["event"] == "step"]
    painted = sorted({frame for frame, _ in steps})
    assert steps == [(f, s) for f in painted for s in (1, 2)]  # 2 steps per repainted frame
    done = [(e["frames_done"], e["frames"]) for e in events if e["event"] == "frames"]
    assert done == [(k, 6) for k in range(1, 7)]

    events.clear()
    restyle = EditVideoArgs(video=square_video.handle, operation="restyle", instruction="snowy", seed=0,
                            steps=2, chunk=4)  # fmt: skip
    edit_video(restyle, call)
    steps = [(e["chunk"], e["step"]) for e in events if e["event"] == "step"]
    assert steps == [(0, 1), (1, 1)]  # profile strength 0.5: 1 of 2 steps per chunk
    done = [e["frames_done"] for e in events if e["event"] == "frames"]
    assert done == [1, 2, 3, 4, 5, 6]


def test_the_edit_pass_reads_and_writes_one_frame_at_a_time(
    services, workspace, square_video, mask_video, monkeypatch
):
    log: list[str] = []
    iter_frames, put_video = Workspace.iter_frames, Workspace.put_video

    def reading(self, handle):
        for frame in iter_frames(self, handle):
            log.append("mask" if handle == mask_video.handle else "frame")
            yield frame

    def writing(self, frames, fps, **kwargs):
        def logged():
            for frame in frames:
                log.append("write")
                yield frame

        return put_video(self, logged(), fps, **kwargs)

    monkeypatch.setattr(Workspace, "iter_frames", reading)
    monkeypatch.setattr(Workspace, "put_video", writing)
    call = CallContext(workspace=workspace, models=services.models, progress=quiet)
    args = EditVideoArgs(video=square_video.handle, operation="remove", mask_video=mask_video.handle,
                         seed=0)  # fmt: skip
    edit_video(args, call)
    edit_pass = log[log.index("frame") :]  # after the mask video was checked
    assert edit_pass == ["frame", "mask", "write"] * 6


# --------------------------------------------------------------------------- errors


def _empty_mp4(path) -> None:
    """A well-formed MP4 container that holds not a single frame."""
    container = av.open(str(path), mode="w", format="mp4")
    stream = container.add_stream("libx264", rate=4)
    stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
    container.start_encoding()
    container.close()


@pytest.mark.parametrize("damage", ["zero bytes", "no frames", "garbage"])
@pytest.mark.parametrize("operation", ["remove", "restyle"])
def test_an_unreadable_or_empty_video_is_an_error(invoke, workspace, damage, operation):
    video = workspace.put_video([np.full((48, 64, 3), v, np.uint8) for v in (50, 90)], fps=2)
    path = workspace.path(video.handle)
    if damage == "zero bytes":
        path.write_bytes(b"")
    elif damage == "no frames":
        _empty_mp4(path)
    else:
        path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 50)
    region = {"regions": [BOX]} if operation == "remove" else {}
    message = invoke("edit_video", video=video.handle, operation=operation,
                     instruction="make it snowy", **region)  # fmt: skip
    assert message.status == "error"
    assert video.handle in message.content
    assert any(s in message.content for s in ("cannot read", "no video stream", "no frames"))


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"operation": "explode", "instruction": "x"}, "operation"),
        ({"operation": "add", "instruction": "add a hat"}, "edit_video cannot add"),
        # worded moves and adds read as such (edit_image's), so they are refused, not restyled
        ({"instruction": "move the square to the left"}, "edit_video cannot move"),
        ({"instruction": "add a red star at the top left"}, "use edit_image on vid_"),
        ({"operation": "remove", "regions": [[0.1, 0.1, 1.3, 0.5]]}, "outside the media"),
        ({"operation": "remove", "regions": [BOX], "frame": 9}, "frame 9 does not exist"),
        ({"operation": "remove", "regions": [BOX], "frame": -1}, "frame"),
        ({"operation": "remove"}, "say what to remove"),
        ({}, "say what to do"),
        ({"operation": "restyle"}, "say what to restyle"),
        ({"operation": "remove", "regions": [BOX, BOX]}, "one target; give one region"),
        ({"operation": "remove", "points": [[0.5, 0.5]], "point_labels": [1, 1]}, "one label per point"),
        ({"operation": "replace", "instruction": "a cat", "video": "img_0123456789abcdef"}, "takes vid_"),
        ({"operation": "remove", "regions": [BOX], "mask": "mask_0123456789abcdef"}, "cannot be combined"),
        ({"operation": "replace", "target": "the square", "regions": [BOX]}, "say what to put there"),
    ],
)  # fmt: skip
def test_bad_requests_are_errors_that_say_why(invoke, square_video, args, expected):
    message = invoke("edit_video", **{"video": square_video.handle, **args})
    assert message.status == "error"
    assert expected in message.content


def test_frame_beyond_the_video_names_the_range(invoke, square_video):
    message = invoke(
        "edit_video", video=square_video.handle, operation="remove", regions=[BOX], frame=9
    )
    assert "has 6 frames (0–5); frame 9 does not exist" in message.content


def test_masks_of_the_wrong_size_are_errors(invoke, workspace, square_video):
    small = workspace.put_mask(np.ones((10, 10), dtype=bool))
    message = invoke("edit_video", video=square_video.handle, operation="remove", mask=small.handle)
    assert message.status == "error"
    assert "is 10x10 but" in message.content and "frames are 64x48" in message.content
    short = workspace.put_video([np.full((48, 64), 255, np.uint8)] * 3, fps=4, lossless=True)
    message = invoke(
        "edit_video", video=square_video.handle, operation="remove", mask_video=short.handle
    )
    assert message.status == "error"
    assert "with 3 frames" in message.content and "with 6" in message.content


def test_a_target_seen_nowhere_is_an_error_not_a_copy(invoke, workspace, square_video):
    empty = workspace.put_video([np.zeros((48, 64), np.uint8)] * 6, fps=4, lossless=True)
    message = invoke(
        "edit_video", video=square_video.handle, operation="remove", mask_video=empty.handle
    )
    assert message.status == "error" and "not visible in any frame" in message.content


def test_too_many_frames_for_tracking_is_an_error(invoke, square_video, tiny_models, monkeypatch):
    monkeypatch.setattr(tiny_models.get("sam2_video"), "max_frames", 4)
    message = invoke("edit_video", video=square_video.handle, operation="remove", regions=[BOX])
    assert message.status == "error" and "tracks at most 4" in message.content


def test_a_signal_of_the_wrong_size_is_an_error(invoke, workspace, square_video, mask_video):
    wrong = workspace.put_embedding(torch.randn(SIGNAL_DIM + 1))
    message = invoke("edit_video", video=square_video.handle, operation="recolor",
                     instruction="make the square green", mask_video=mask_video.handle,
                     signal=wrong.handle)  # fmt: skip
    assert message.status == "error" and "dimension 33" in message.content


def test_a_removal_paints_background_without_the_signal(invoke, workspace, square_video,
                                                         mask_video):  # fmt: skip
    """The signal stands for what the request wants painted; a removal paints background, so it
    runs on the text alone (its frames those of the same call without a signal)."""
    signal = workspace.put_embedding(torch.randn(SIGNAL_DIM))
    args = {"video": square_video.handle, "operation": "remove", "mask_video": mask_video.handle,
            "seed": 2}  # fmt: skip
    plain, hybrid = invoke("edit_video", **args), invoke("edit_video", signal=signal.handle, **args)
    assert plain.status == hybrid.status == "success", (plain.content, hybrid.content)
    assert signal.handle not in hybrid.content
    assert signal.handle not in workspace.describe(hybrid.artifact["video"]).inputs
    frames = [list(workspace.iter_frames(m.artifact["video"])) for m in (plain, hybrid)]
    assert all(np.array_equal(a, b) for a, b in zip(*frames, strict=True))
