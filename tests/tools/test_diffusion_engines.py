"""The diffusion engines below the tools: loading, sizes, video-to-video and per-frame inpainting
(the pieces edit_video builds on)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from PIL import Image

from vitron.tools.collage import Piece, compose, object_prompt
from vitron.tools.compositing import grow
from vitron.tools.errors import VitronToolError
from vitron.tools.generation import inpaint_frames
from vitron.tools.models.diffusion import load_diffusion
from vitron.tools.models.diffusion_common import (
    Defaults,
    DiffusionEngine,
    Prompt,
    effective_steps,
    fit_size,
)
from vitron.tools.models.diffusion_engines import (
    PIPELINES,
    CollageEngine,
    ImageToVideoEngine,
    TextToImageEngine,
)
from vitron.tools.profiles import ComponentSpec, load_profile
from vitron.tools.registry import _LoadContext


def quiet(_: dict) -> None:
    pass


def test_tiny_profile_has_every_pipeline_and_they_stay_small(tiny_models):
    profile = load_profile("tiny")
    kinds = {spec.options.get("pipeline") for spec in profile.components.values()}
    assert set(PIPELINES) - {"collage"} <= kinds  # the gligen role's other way: loaded below
    engine = tiny_models.get("text_to_image")
    assert isinstance(engine, DiffusionEngine)
    assert 1_000_000 < engine.nbytes < 50_000_000  # a few MB of float32 parameters
    assert engine.text_width == 32 and engine.signal_projector == "diffusion_signal"


def test_a_profile_entry_without_a_known_pipeline_is_an_error():
    spec = ComponentSpec(
        name="painter", loader="diffusion", checkpoint="tiny", profile="p",
        options={"pipeline": "oil_painting"},
    )  # fmt: skip
    context = _LoadContext(torch.device("cpu"), torch.float32, quiet)
    with pytest.raises(VitronToolError, match="'p'.*'painter'.*text_to_image"):
        load_diffusion(spec, context)


def test_a_deprecated_pipeline_loads_without_diffusers_warning_and_leaves_it_as_it_was(caplog):
    # diffusers logs "I2VGenXLPipeline has been deprecated" on every build; users saw it in the demo
    notices = logging.getLogger("diffusers.pipelines.pipeline_utils")
    seen: list[logging.LogRecord] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = seen.append  # type: ignore[method-assign]
    notices.addHandler(handler)
    level = notices.level
    spec = ComponentSpec(
        name="image_to_video", loader="diffusion", checkpoint="tiny", profile="p",
        options={"pipeline": "image_to_video"},
    )  # fmt: skip
    try:
        with caplog.at_level(logging.INFO, logger="vitron.tools.models.diffusion"):
            engine = load_diffusion(spec, _LoadContext(torch.device("cpu"), torch.float32, quiet))
        assert isinstance(engine, ImageToVideoEngine)
        assert not [r for r in seen if "deprecated" in r.getMessage()]
        assert notices.level == level  # other pipelines' notices still reach the user
        assert any("I2VGenXLPipeline" in r.getMessage() for r in caplog.records)
    finally:
        notices.removeHandler(handler)


def test_a_collage_is_each_phrase_drawn_alone_with_its_own_seed_then_put_in_its_box():
    spec = ComponentSpec(
        name="gligen", loader="diffusion", checkpoint="tiny", profile="p",
        options={"pipeline": "collage", "steps": 2},
    )  # fmt: skip
    engine = load_diffusion(spec, _LoadContext(torch.device("cpu"), torch.float32, quiet))
    assert isinstance(engine, CollageEngine) and not engine.reads_signal
    phrases, boxes = ["a red circle", "a blue star"], [[0, 0, 0.5, 0.5], [0.5, 0.25, 1, 0.75]]
    description = "a red circle and a blue star on a grey background"
    events: list[dict] = []
    result = engine.generate(
        Prompt(description), phrases, boxes, width=32, height=32, seed=5, steps=2, guidance=1.0,
        progress=events.append,
    )  # fmt: skip
    drawer = TextToImageEngine(engine.pipe, kind="text_to_image")
    drawings = [
        drawer.generate(Prompt(object_prompt(p, description)), width=32, height=32, seed=5 + i,
                        steps=2, guidance=1.0, progress=quiet).pixels
        for i, p in enumerate(phrases)
    ]  # fmt: skip
    expected, found = compose([Piece(d, b) for d, b in zip(drawings, boxes, strict=True)])
    np.testing.assert_array_equal(result.pixels, expected)
    assert bool(result.notes) == (not all(found))
    steps = [(e["step"], e["total"]) for e in events if e["event"] == "step"]
    assert steps == [(1, 4), (2, 4), (3, 4), (4, 4)]

    # drawn on another background: the pieces there, the picture's background from the first
    # phrase drawn on the asked one (its own seed), one more run counted in the progress
    beige = load_diffusion(
        ComponentSpec(name="gligen", loader="diffusion", checkpoint="tiny", profile="p",
                      options={"pipeline": "collage", "steps": 2, "collage_background": "beige"}),
        _LoadContext(torch.device("cpu"), torch.float32, quiet),
    )  # fmt: skip
    assert beige.defaults.collage_background == "beige"
    events.clear()
    result = beige.generate(
        Prompt(description), phrases, boxes, width=32, height=32, seed=5, steps=2, guidance=1.0,
        progress=events.append,
    )  # fmt: skip
    on_beige = [
        drawer.generate(Prompt(object_prompt(p, "on a beige background")), width=32, height=32,
                        seed=5 + i, steps=2, guidance=1.0, progress=quiet).pixels
        for i, p in enumerate(phrases)
    ]  # fmt: skip
    pieces = [Piece(d, b) for d, b in zip(on_beige, boxes, strict=True)]
    np.testing.assert_array_equal(result.pixels, compose(pieces, drawings[0])[0])
    assert [e["total"] for e in events if e["event"] == "step"] == [6] * 6


def test_defaults_sizes_and_steps():
    assert Defaults.from_options({"collage_background": "beige"}).collage_background == "beige"
    spec = ComponentSpec(
        name="gligen", loader="diffusion", checkpoint="tiny", profile="p",
        options={"pipeline": "collage", "collage_background": 3},
    )  # fmt: skip
    context = _LoadContext(torch.device("cpu"), torch.float32, quiet)
    with pytest.raises(VitronToolError, match="'gligen' has a default of the wrong kind.*string"):
        load_diffusion(spec, context)
    defaults = Defaults.from_options({"width": "64", "guidance": 5, "pipeline": "x"})
    assert (defaults.width, defaults.height, defaults.guidance) == (64, 512, 5.0)
    assert defaults.long_side == 512
    assert fit_size(512, 256, 64) == (64, 32)
    assert fit_size(100, 30, 32) == (32, 8)  # never below one multiple of 8
    assert effective_steps(5, 0.8) == (5, 4)
    assert effective_steps(2, 0.3) == (4, 1)  # at least one step runs


def test_video_to_video_keeps_length_and_size_and_is_seeded(tiny_models, workspace, square_video):
    engine = tiny_models.get("video_to_video")
    frames = workspace.get_video(square_video.handle).frames  # 6 x 48 x 64
    events: list[dict] = []
    out = engine.transform(
        Prompt("in the style of a watercolour"), frames, seed=1, steps=4, guidance=7.5,
        progress=events.append,
    )  # fmt: skip
    assert out.shape == frames.shape and out.dtype == np.uint8
    # profile strength 0.5: 2 of the 4 steps run
    assert [(e["step"], e["total"]) for e in events] == [(1, 2), (2, 2)]
    again = engine.transform(Prompt("in the style of a watercolour"), frames, seed=1, steps=4,
                             guidance=7.5, progress=quiet)  # fmt: skip
    other = engine.transform(Prompt("in the style of a watercolour"), frames, seed=2, steps=4,
                             guidance=7.5, progress=quiet)  # fmt: skip
    assert np.array_equal(out, again) and not np.array_equal(out, other)


def test_per_frame_inpainting_shares_noise_and_keeps_the_outside(
    tiny_models, workspace, square_video
):
    engine = tiny_models.get("inpaint")
    frames = workspace.get_video(square_video.handle).frames[:3]
    masks = [np.zeros((48, 64), dtype=bool) for _ in range(3)]
    masks[0][10:30, 5:25] = True
    masks[1][10:30, 5:25] = True  # frame 1 = frame 0 with the same mask: same noise, same result
    frames[1] = frames[0]
    events: list[dict] = []
    out = list(
        inpaint_frames(
            engine,
            Prompt("a blue ball"),
            iter(frames),
            iter(masks),
            seed=3,
            steps=2,
            guidance=7.5,
            progress=events.append,
            margin=4,
        )  # fmt: skip
    )
    assert len(out) == 3
    assert np.array_equal(out[0], out[1])
    assert np.array_equal(out[2], frames[2])  # empty mask: untouched, no model call
    outside = ~grow(masks[0], 4)
    assert np.array_equal(out[0][outside], frames[0][outside])
    assert not np.array_equal(out[0], frames[0])
    assert {e["frame"] for e in events} == {0, 1}


def test_initial_noise_is_what_the_seed_draws(tiny_models):
    engine = tiny_models.get("inpaint")
    noise = engine.initial_noise(128, 96, seed=5)
    assert noise.shape == (1, 4, 12, 16)  # 32 x 24 working size, VAE factor 2
    assert torch.equal(noise, engine.initial_noise(128, 96, seed=5))
    image = Image.new("RGB", (128, 96), (90, 90, 90))
    mask = np.zeros((96, 128), dtype=bool)
    mask[20:60, 30:90] = True
    args = {"seed": 5, "steps": 2, "guidance": 7.5, "progress": quiet}
    shared = engine.inpaint(Prompt("a cat"), image, mask, noise=noise, **args)
    assert shared.shape == (96, 128, 3)
    assert np.array_equal(shared, engine.inpaint(Prompt("a cat"), image, mask, noise=noise, **args))
    with pytest.raises(ValueError, match="strength 1"):
        engine.inpaint(Prompt("a cat"), image, mask, noise=noise, strength=0.5, **args)


def test_gligen_inpainting_returns_the_input_size(tiny_models):
    engine = tiny_models.get("gligen_inpaint")
    assert engine.native_size == 64
    image = Image.new("RGB", (100, 60), (10, 200, 10))
    out = engine.add(
        Prompt("a red hat"), image, ["a red hat"], [[0.1, 0.1, 0.4, 0.5]], seed=0, steps=2,
        guidance=7.5, progress=quiet,
    )  # fmt: skip
    assert out.shape == (60, 100, 3) and out.dtype == np.uint8


def test_holding_the_first_frame_makes_it_the_picture_whatever_the_text(tiny_models):
    """With ``hold_first_frame`` frame 0 ends as the picture's latents decoded, so two texts at
    one seed give the same first frame and different later ones; without it the text redraws
    frame 0 too. The scheduler is the class's own again afterwards."""
    tiny = tiny_models.get("image_to_video")
    pixels = np.zeros((32, 32, 3), np.uint8)
    pixels[:16, :16], pixels[16:, 16:] = (200, 40, 40), (40, 40, 200)
    picture = Image.fromarray(pixels)
    args = {"frames": 3, "width": 32, "height": 32, "fps": 4, "seed": 3, "steps": 3,
            "guidance": 4.0, "progress": quiet}  # fmt: skip
    for hold in (True, False):
        engine = ImageToVideoEngine(tiny.pipe, kind="image_to_video",
                                    defaults=Defaults(hold_first_frame=hold))  # fmt: skip
        cat = engine.animate(Prompt("a cat runs"), picture, **args)
        dog = engine.animate(Prompt("a dog sleeps"), picture, **args)
        assert not np.array_equal(cat[1:], dog[1:])
        assert np.array_equal(cat[0], dog[0]) == hold
        assert "step" not in vars(tiny.pipe.scheduler)


def test_a_carried_object_ends_where_its_path_puts_it_and_the_rest_stays_the_picture(
    tiny_models, monkeypatch
):
    """Carried for every step (``carry`` 1), frame t's band ends as the picture with the object's
    cell moved t cells right: in the latents the pipeline decodes, frame 0's object cell
    reappears shifted, the cell it left holds something else (the background), and every cell
    outside the band is frame 0's on every frame."""
    tiny = tiny_models.get("image_to_video")
    engine = ImageToVideoEngine(tiny.pipe, kind="image_to_video",
                                defaults=Defaults(hold_first_frame=True, carry=1.0))  # fmt: skip
    cell = tiny.pipe.vae_scale_factor  # pixels a latent cell covers
    pixels = np.full((32, 32, 3), 200, np.uint8)
    pixels[cell : 2 * cell, :cell] = (200, 30, 30)
    moving = np.zeros((32, 32), dtype=bool)
    moving[cell : 2 * cell] = True  # the object's row of cells, all the way right
    decoded = []
    decode = tiny.pipe.decode_latents

    def keep(latents, *args, **kwargs):
        decoded.append(latents.clone())
        return decode(latents, *args, **kwargs)

    monkeypatch.setattr(tiny.pipe, "decode_latents", keep)
    engine.animate(
        Prompt("a red square moves right"), Image.fromarray(pixels), frames=3, width=32,
        height=32, fps=4, seed=0, steps=3, guidance=4.0, progress=quiet, moving=moving,
        carried=([0.0, cell / 32, cell / 32, 2 * cell / 32], (cell / 32, 0.0)),
    )  # fmt: skip
    clip = decoded[0][0].permute(1, 0, 2, 3)  # frames x C x h x w
    first, band = clip[0], torch.zeros(clip.shape[-2:], dtype=torch.bool)
    band[1] = True
    for t in (1, 2):
        assert torch.allclose(clip[t][:, 1, t], first[:, 1, 0], atol=1e-3)
        assert torch.allclose(clip[t][:, ~band], first[:, ~band], atol=1e-3)
        assert not torch.allclose(clip[t][:, 1, 0], first[:, 1, 0], atol=1e-2)


def test_drifting_noise_is_one_noise_picture_rolled_frame_by_frame(tiny_models):
    """Frame t of the starting latents is frame 0's noise rolled t * drift of the grid (whole
    cells, wrapped round); the same seed gives the same noise, and a generated clip differs from
    one started from independent noise."""
    from vitron.tools.models.diffusion_engines import TextToVideoEngine

    engine = tiny_models.get("text_to_video")
    assert isinstance(engine, TextToVideoEngine)
    factor = engine.pipe.vae_scale_factor
    noise = engine._drifting_noise((-factor / 32, 0.0), frames=3, width=32, height=32, seed=5)
    rows = 32 // factor
    assert noise.shape == (1, engine.pipe.unet.config.in_channels, 3, rows, rows)
    for t in range(3):
        assert torch.equal(noise[:, :, t], torch.roll(noise[:, :, 0], -t, dims=3))
    assert torch.equal(noise, engine._drifting_noise((-factor / 32, 0.0), 3, 32, 32, seed=5))
    args = {"frames": 3, "width": 32, "height": 32, "seed": 5, "steps": 2, "guidance": 4.0,
            "progress": quiet}  # fmt: skip
    drifting = engine.generate(Prompt("a cat moving left"), drift=(-factor / 32, 0.0), **args)
    plain = engine.generate(Prompt("a cat moving left"), **args)
    assert drifting.shape == plain.shape == (3, 32, 32, 3)
    assert not np.array_equal(drifting, plain)
