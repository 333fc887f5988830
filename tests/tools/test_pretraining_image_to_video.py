"""``vitron pretrain diffusion_image_to_video``: the I2VGen-XL UNet grown from a text-to-video
UNet, its training clips, and two steps that save a folder the unchanged ``diffusion`` loader reads
as an ``I2VGenXLPipeline`` and animates with. Clips T x S x S x 3 uint8."""

from __future__ import annotations

import itertools
import json
import re
import types
from pathlib import Path

import numpy as np
import torch
from diffusers import I2VGenXLPipeline
from PIL import Image

from vitron.apps.cli import main
from vitron.evals.shapes.video import DIRECTIONS, GENERATED_FRAMES, shrink
from vitron.tools.models.diffusion import load_diffusion
from vitron.tools.models.diffusion_common import Prompt
from vitron.tools.models.diffusion_tiny import tiny_unet3d
from vitron.tools.pretraining import BACKENDS, CONTINUABLE
from vitron.tools.pretraining.diffusion_data import animation_example
from vitron.tools.pretraining.diffusion_image_to_video import (
    ANIMATION_SIZE,
    condition_latents,
    i2v_unet,
    nano_image_encoder,
)
from vitron.tools.pretraining.loop import REPORT_NAME, RESUME_NAME
from vitron.tools.profiles import ComponentSpec

NANO_T2V = Path(__file__).resolve().parents[2] / "tools" / "profiles" / "nano" / "text_to_video"
CPU = types.SimpleNamespace(device=torch.device("cpu"), dtype=torch.float32)


def test_growing_copies_the_video_unet_and_starts_the_new_inputs_at_zero():
    torch.manual_seed(0)
    video = tiny_unet3d()
    with torch.no_grad():  # random temporal weights too, so a copy cannot pass by chance
        for p in video.parameters():
            p.normal_()
    grown = i2v_unet(video)
    source, target = video.state_dict(), grown.state_dict()
    shared = [k for k in source if k != "conv_in.weight"]
    assert len(shared) > 50
    assert all(torch.equal(target[k], source[k]) for k in shared)
    conv = grown.conv_in.weight
    assert conv.shape[1] == 8
    assert torch.equal(conv[:, :4], source["conv_in.weight"]) and not conv[:, 4:].any()
    for last in (grown.fps_embedding[-1], grown.context_embedding[-1],
                 grown.image_latents_context_embedding[-1]):  # fmt: skip
        assert not last.weight.any() and not last.bias.any()
    assert grown.image_latents_proj_in[0].weight.any()  # the rest of the new path is not dead


def test_image_latents_hold_the_picture_then_the_frame_position():
    first = torch.randn(2, 4, 8, 8)
    latents = condition_latents(first, 5)
    assert latents.shape == (2, 4, 5, 8, 8)
    assert torch.equal(latents[:, :, 0], first)
    assert torch.allclose(latents[0, 0, :, 0, 0][1:], torch.tensor([0.25, 0.5, 0.75, 1.0]))


def test_the_image_encoder_is_the_nano_clips_vision_half_at_the_text_width():
    encoder, processor = nano_image_encoder()
    assert encoder.config.projection_dim == 64  # the nano text width, I2VGen-XL's context width
    assert processor.crop_size == {"height": 64, "width": 64}
    pixels = torch.zeros(1, 3, 64, 64)
    assert encoder(pixels).image_embeds.shape == (1, 64)


def test_training_clips_move_the_named_object_from_the_picture():
    for seed, side in itertools.product(range(4), (32, ANIMATION_SIZE)):
        example = animation_example(np.random.default_rng(seed), side)
        assert example.picture.shape == (64, 64, 3)
        assert example.clip.shape == (GENERATED_FRAMES, side, side, 3)
        assert np.array_equal(example.clip[0], shrink(example.picture, side))
        assert (example.clip[-1] != example.clip[0]).any()  # something moved
        direction = re.fullmatch(r"the .+ moves (\w+)", example.text)
        assert direction and direction.group(1) in DIRECTIONS


def test_two_steps_save_a_pipeline_the_diffusion_loader_animates_with(tmp_path):
    assert "diffusion_image_to_video" in BACKENDS and "diffusion_image_to_video" in CONTINUABLE
    out = tmp_path / "i2v"
    assert main(["pretrain", "diffusion_image_to_video", "--seed", "1", "--steps", "2",
                 "--eval-count", "1", "--base", str(NANO_T2V), "--out", str(out)]) == 0  # fmt: skip
    report = json.loads((out / REPORT_NAME).read_text())
    assert report["finished"] and report["steps"] == 2 and not (out / RESUME_NAME).exists()
    assert set(report["metrics"]) == {"psnr_first", "objects_kept", "direction"}
    assert json.loads((out / "model_index.json").read_text())["_class_name"] == "I2VGenXLPipeline"

    spec = ComponentSpec(name="image_to_video", loader="diffusion", checkpoint=str(out),
                         profile="test", options={"pipeline": "image_to_video", "width": 32,
                                                  "height": 32, "frames": 4, "steps": 2})  # fmt: skip
    engine = load_diffusion(spec, CPU)
    assert isinstance(engine.pipe, I2VGenXLPipeline)
    assert engine.pipe.unet.dtype == torch.float32  # fp16 on disk, the loader's dtype in memory
    assert engine.pipe.unet.conv_in.in_channels == 8
    picture = Image.fromarray(animation_example(np.random.default_rng(0)).picture)
    clip = engine.animate(Prompt("the red circle moves left"), picture, frames=4, width=32,
                          height=32, fps=4, seed=0, steps=2, guidance=4.0,
                          progress=lambda event: None)  # fmt: skip
    assert clip.shape == (4, 32, 32, 3) and clip.dtype == np.uint8
