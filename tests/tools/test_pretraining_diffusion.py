"""``vitron pretrain diffusion_vae / diffusion_text_to_image / diffusion_inpaint /
diffusion_instruct_pix2pix / diffusion_gligen / diffusion_text_to_video``: two steps each chain
into pipeline folders that the unchanged ``diffusion`` loader reads and samples from; the
inpainting and InstructPix2Pix UNets start as the text-to-image UNet, the video UNet as that UNet drawing each frame, and GLIGEN trains only the
layers it adds to it."""

from __future__ import annotations

import json
import types

import numpy as np
import pytest
import torch
from diffusers import UNet2DConditionModel
from PIL import Image

from vitron.apps.cli import main
from vitron.tools.models.diffusion import load_diffusion
from vitron.tools.models.diffusion_common import Prompt
from vitron.tools.pretraining.diffusion_data import (
    edit_example,
    generation_example,
    layout_example,
    restyle_example,
)
from vitron.tools.pretraining.diffusion_gligen import NEW_LAYERS, gligen_unet
from vitron.tools.pretraining.diffusion_grown import grown_unet
from vitron.tools.pretraining.diffusion_instruct_pix2pix import (
    DROP_BOTH,
    DROP_IMAGE,
    DROP_TEXT,
    dropped,
)
from vitron.tools.pretraining.diffusion_text_to_image import (
    OBJECTIVE,
    nano_tokenizer,
    nano_unet,
    prediction_target,
    training_scheduler,
)
from vitron.tools.pretraining.diffusion_text_to_video import video_unet
from vitron.tools.pretraining.loop import REPORT_NAME, RESUME_NAME
from vitron.tools.profiles import ComponentSpec

CPU = types.SimpleNamespace(device=torch.device("cpu"), dtype=torch.float32)


def _engine(path, kind: str):  # noqa: ANN001, ANN202
    spec = ComponentSpec(name=kind, loader="diffusion", checkpoint=str(path), profile="test",
                         options={"pipeline": kind, "width": 32, "height": 32, "steps": 2})  # fmt: skip
    return load_diffusion(spec, CPU)


def _report(folder) -> dict:  # noqa: ANN001
    report = json.loads((folder / REPORT_NAME).read_text())
    assert report["finished"] and report["steps"] == 2 and not (folder / RESUME_NAME).exists()
    return report


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> dict:
    """The three commands on a two-step budget, each building on the previous one's folder."""
    root = tmp_path_factory.mktemp("diffusion")
    folders = {name: root / name for name in ("vae", "t2i", "inpaint", "ip2p", "gligen", "t2v")}
    common = ["--seed", "1", "--steps", "2", "--eval-count", "2"]
    assert main(["pretrain", "diffusion_vae", "--out", str(folders["vae"]), *common]) == 0
    assert main(["pretrain", "diffusion_text_to_image", "--out", str(folders["t2i"]),
                 "--base", str(folders["vae"]), *common]) == 0  # fmt: skip
    assert main(["pretrain", "diffusion_inpaint", "--out", str(folders["inpaint"]),
                 "--base", str(folders["t2i"]), *common]) == 0  # fmt: skip
    assert main(["pretrain", "diffusion_instruct_pix2pix", "--out", str(folders["ip2p"]),
                 "--base", str(folders["t2i"]), *common]) == 0  # fmt: skip
    assert main(["pretrain", "diffusion_gligen", "--out", str(folders["gligen"]),
                 "--base", str(folders["t2i"]), *common]) == 0  # fmt: skip
    assert main(["pretrain", "diffusion_text_to_video", "--out", str(folders["t2v"]),
                 "--base", str(folders["t2i"]), *common]) == 0  # fmt: skip
    return folders


def test_the_commands_chain_into_pipeline_folders_the_diffusion_loader_samples_from(chain):
    vae = _report(chain["vae"])
    assert {"recon_shape", "recon_colour", "recon_position", "psnr_32", "psnr_64"} <= set(
        vae["metrics"]
    )
    t2i = _report(chain["t2i"])
    assert t2i["command"].endswith(f"--base {chain['vae']}")
    assert set(t2i["metrics"]) == {"gen_shape", "gen_colour", "gen_position", "gen_all"}
    inpaint = _report(chain["inpaint"])["metrics"]
    assert inpaint and all(k.endswith(("_psnr_in_mask", "_attr")) for k in inpaint)

    generator = _engine(chain["t2i"], "text_to_image")
    assert generator.pipe.unet.dtype == torch.float32  # fp16 on disk, the loader's dtype in memory
    assert generator.pipe.vae_scale_factor == 4 and generator.text_width == 64
    image = generator.generate(Prompt("a small red circle on the left on a white background"),
                               width=32, height=32, seed=0, steps=2, guidance=4.0,
                               progress=lambda event: None)  # fmt: skip
    assert image.pixels.shape == (32, 32, 3) and image.pixels.dtype == np.uint8

    inpainter = _engine(chain["inpaint"], "inpaint")
    assert inpainter.pipe.unet.config.in_channels == 9
    example = edit_example(np.random.default_rng(3))
    out = inpainter.inpaint(Prompt(example.text), Image.fromarray(example.source), example.mask,
                            seed=0, steps=2, guidance=4.0, progress=lambda event: None,
                            long_side=64)  # fmt: skip
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8


def test_the_instruct_pix2pix_folder_restyles_through_the_diffusion_loader(chain):
    metrics = _report(chain["ip2p"])["metrics"]
    assert set(metrics) == {"background_right", "objects_kept", "psnr_objects", "psnr_background"}
    engine = _engine(chain["ip2p"], "instruct_pix2pix")
    assert engine.pipe.unet.config.in_channels == 8
    example = restyle_example(np.random.default_rng(3))
    out = engine.edit(Prompt(example.text), Image.fromarray(example.source), seed=0, steps=2,
                      guidance=4.0, image_guidance=1.5, progress=lambda event: None,
                      long_side=64)  # fmt: skip
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8


def test_the_instruct_pix2pix_unet_starts_as_the_text_to_image_unet_and_continues_as_it_is(
    chain, tmp_path
):
    """``conv_in`` zero on the picture's channels: whatever the picture, the 8-channel UNet
    predicts what the 4-channel one does. ``--base`` a trained InstructPix2Pix folder goes on
    training its own UNet."""
    torch.manual_seed(0)
    unet = nano_unet().eval()
    grown = grown_unet(unet, 8).eval()
    latents, states, picture = (
        torch.randn(2, 4, 8, 8),
        torch.randn(2, 24, 64),
        torch.randn(2, 4, 8, 8),
    )
    t = torch.tensor([10, 700])
    with torch.no_grad():
        plain = unet(latents, t, encoder_hidden_states=states).sample
        conditioned = grown(
            torch.cat([latents, picture], 1), t, encoder_hidden_states=states
        ).sample
    assert torch.allclose(plain, conditioned, atol=1e-5)
    assert not grown.conv_in.weight[:, 4:].any()
    trained = UNet2DConditionModel.from_pretrained(chain["ip2p"], subfolder="unet")
    assert grown_unet(trained, 8) is trained
    out = tmp_path / "ip2p-more"
    assert main(["pretrain", "diffusion_instruct_pix2pix", "--out", str(out), "--base",
                 str(chain["ip2p"]), "--seed", "2", "--steps", "1", "--eval-count", "1"]) == 0  # fmt: skip
    assert UNet2DConditionModel.from_pretrained(out, subfolder="unet").config.in_channels == 8


def test_restyle_examples_change_the_background_only_and_drop_conditions_as_the_paper_does():
    from vitron.evals.restyle import background_tone

    tokenizer = nano_tokenizer()
    for i in range(20):
        example = restyle_example(np.random.default_rng(i))
        inside = example.objects
        assert np.array_equal(example.source[inside], example.target[inside])
        assert example.asked in example.text and len(example.boxes) >= 1
        assert len(tokenizer(example.text).input_ids) == len(example.text.split()) + 2
        assert background_tone(example.target, inside) == example.asked
        assert background_tone(example.source, inside) != example.asked
    no_text, no_image = dropped(np.random.default_rng(0), 100_000)
    assert no_text.mean() == pytest.approx(DROP_TEXT + DROP_BOTH, abs=0.005)
    assert no_image.mean() == pytest.approx(DROP_IMAGE + DROP_BOTH, abs=0.005)
    assert (no_text & no_image).mean() == pytest.approx(DROP_BOTH, abs=0.005)


def test_the_text_to_video_folder_makes_clips_through_the_diffusion_loader(chain):
    report = _report(chain["t2v"])
    assert set(report["metrics"]) == {"frames_right", "direction"}
    engine = _engine(chain["t2v"], "text_to_video")
    assert engine.pipe.unet.config.in_channels == 4 and engine.text_width == 64
    clip = engine.generate(Prompt("a small red circle moving left on a grey background"),
                           frames=8, width=32, height=32, seed=0, steps=2, guidance=4.0,
                           progress=lambda event: None)  # fmt: skip
    assert clip.shape == (8, 32, 32, 3) and clip.dtype == np.uint8


def test_a_text_to_video_run_continues_from_its_own_folder(chain, tmp_path):
    """``--base`` a folder this backend wrote: its UNet and text encoder go on training (not a
    new UNet grown from a text-to-image one)."""
    from vitron.tools.pretraining.diffusion_text_to_video import (
        TextToVideoPretrainer,
        is_video_pipeline,
    )

    assert is_video_pipeline(chain["t2v"]) and not is_video_pipeline(chain["t2i"])
    before = _engine(chain["t2v"], "text_to_video").pipe.unet.state_dict()
    continued = TextToVideoPretrainer(seed=2, base=chain["t2v"]).model["unet"].state_dict()
    assert all(torch.equal(before[k], continued[k]) for k in before)  # where it starts
    out = tmp_path / "t2v-more"
    assert main(["pretrain", "diffusion_text_to_video", "--out", str(out), "--base",
                 str(chain["t2v"]), "--seed", "2", "--steps", "1", "--eval-count", "1"]) == 0  # fmt: skip
    assert json.loads((out / REPORT_NAME).read_text())["command"].endswith(f"--base {chain['t2v']}")


def test_the_video_unet_starts_as_the_text_to_image_unet_on_each_frame():
    """Spatial weights copied, temporal layers the identity: before training, every frame of a
    clip is denoised as the 2-D UNet denoises that frame alone (for a 2-D UNet whose heads have
    one size on every level, as the 3-D UNet's must)."""
    torch.manual_seed(0)
    unet = UNet2DConditionModel.from_config({**nano_unet().config, "attention_head_dim": (4, 8)})
    for parameter in unet.parameters():  # a UNet that is not all zeros where diffusers zeroes
        parameter.data.add_(torch.randn_like(parameter) * 0.02)
    unet.eval()
    video = video_unet(unet).eval()
    latents, states, t = torch.randn(2, 4, 5, 8, 8), torch.randn(2, 24, 64), torch.tensor([300])
    with torch.no_grad():
        clip = video(latents, t, encoder_hidden_states=states).sample  # B x 4 x T x h x w
        frames = latents.permute(0, 2, 1, 3, 4).reshape(10, 4, 8, 8)
        alone = unet(frames, t, encoder_hidden_states=states.repeat_interleave(5, dim=0)).sample
    assert torch.allclose(clip.permute(0, 2, 1, 3, 4).reshape(10, 4, 8, 8), alone, atol=1e-4)


def test_gligen_trains_only_its_new_layers_and_reads_as_both_pipelines(chain):
    report = _report(chain["gligen"])
    assert set(report["metrics"]) == {"layout_kind", "layout_placed", "layout_hit"}
    base = _engine(chain["t2i"], "text_to_image").pipe.unet.state_dict()
    gligen = _engine(chain["gligen"], "gligen")
    grown = gligen.pipe.unet.state_dict()
    assert all(torch.equal(base[k], grown[k]) for k in base)  # the text-to-image UNet, frozen
    new = [k for k in grown if k not in base]
    assert new and all(any(part in k for part in NEW_LAYERS) for k in new)
    gates = [v for k, v in grown.items() if k.endswith("alpha_attn")]
    assert gates and any(g.abs().item() > 0 for g in gates)  # trained away from zero
    boxes = [[0.1, 0.3, 0.4, 0.6]]
    image = gligen.generate(Prompt("a small red circle on a white background"),
                            ["a small red circle"], boxes, width=32, height=32, seed=0, steps=2,
                            guidance=4.0, progress=lambda event: None)  # fmt: skip
    assert image.pixels.shape == (32, 32, 3)
    as_text_to_image = _engine(chain["gligen"], "text_to_image")  # the folder needs no copy
    assert as_text_to_image.pipe.unet.config.attention_type == "gated"


def test_the_gligen_unet_starts_as_the_text_to_image_unet():
    """Its gates start at zero, so with boxes it predicts what the text-to-image UNet does, and
    only the added layers require gradients."""
    torch.manual_seed(0)
    unet = nano_unet().eval()
    grown = gligen_unet(unet).eval()
    latents, states, t = torch.randn(1, 4, 8, 8), torch.randn(1, 24, 64), torch.tensor([300])
    gligen = {"boxes": torch.rand(1, 30, 4), "positive_embeddings": torch.randn(1, 30, 64),
              "masks": torch.ones(1, 30)}  # fmt: skip
    with torch.no_grad():
        plain = unet(latents, t, encoder_hidden_states=states).sample
        grounded = grown(latents, t, encoder_hidden_states=states,
                         cross_attention_kwargs={"gligen": gligen}).sample  # fmt: skip
    assert torch.allclose(plain, grounded, atol=1e-5)
    trained = {k for k, p in grown.named_parameters() if p.requires_grad}
    assert trained and all(any(part in k for part in NEW_LAYERS) for k in trained)


def test_layout_examples_box_every_object_they_name():
    example = layout_example(np.random.default_rng(4))
    assert example.image.shape == (32, 32, 3) and 1 <= len(example.phrases) <= 2
    assert len(example.boxes) == len(example.phrases)
    assert all(p.removeprefix("a ") in example.caption for p in example.phrases)
    for x1, y1, x2, y2 in example.boxes:
        assert 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1


def _objective(folder) -> dict:  # noqa: ANN001
    config = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    return {key: config[key] for key in OBJECTIVE}


def test_new_runs_train_for_velocity_at_zero_terminal_snr_and_sample_as_they_trained(chain):
    """The saved sampler carries the objective the UNet trained for: v-prediction, the schedule
    rescaled to zero terminal SNR, sampling from its last timestep. GLIGEN's layers train around
    the frozen text-to-image UNet, so they keep that UNet's objective."""
    assert OBJECTIVE == {"prediction_type": "v_prediction", "rescale_betas_zero_snr": True,
                         "timestep_spacing": "trailing"}  # fmt: skip
    for name in ("t2i", "inpaint", "ip2p", "gligen", "t2v"):
        assert _objective(chain[name]) == OBJECTIVE, name
    sampler = _engine(chain["t2i"], "text_to_image").pipe.scheduler
    sampler.set_timesteps(20)
    assert int(sampler.timesteps[0]) == 999  # where training's pure noise was


def test_gligen_keeps_the_objective_of_the_unet_it_grows_around(chain, tmp_path):
    import shutil

    from vitron.tools.pretraining.diffusion_gligen import GligenPretrainer

    epsilon = tmp_path / "epsilon_t2i"
    shutil.copytree(chain["t2i"], epsilon)
    config_path = epsilon / "scheduler" / "scheduler_config.json"
    config = json.loads(config_path.read_text())
    config.update(prediction_type="epsilon", rescale_betas_zero_snr=False,
                  timestep_spacing="linspace")  # fmt: skip
    config_path.write_text(json.dumps(config))
    trainer = GligenPretrainer(seed=0, base=epsilon)
    assert {k: trainer.noise.config[k] for k in OBJECTIVE} == {
        "prediction_type": "epsilon", "rescale_betas_zero_snr": False,
        "timestep_spacing": "linspace"}  # fmt: skip
    assert trainer.pipeline().scheduler.config.prediction_type == "epsilon"


def test_velocity_targets_and_weights_keep_the_noisiest_steps():
    """At zero terminal SNR the velocity is minus the clean latents and weighs 1 (Min-SNR's own
    v weight would give it 0); nearly clean steps are capped as Min-SNR caps them."""
    noise_schedule = training_scheduler()
    latents, noise = torch.randn(3, 4, 8, 8), torch.randn(3, 4, 8, 8)
    t = torch.tensor([999, 500, 5])
    target, weights = prediction_target(noise_schedule, latents, noise, t)
    assert torch.allclose(target[0], -latents[0], atol=1e-4)
    alphas = noise_schedule.alphas_cumprod[t]
    snr = alphas / (1 - alphas)
    assert weights[0] == pytest.approx(1.0)
    assert weights[2] == pytest.approx(6.0 / (snr[2].item() + 1), rel=1e-4) and weights[2] < 0.1
    epsilon = training_scheduler(like=types.SimpleNamespace(config={
        "prediction_type": "epsilon", "rescale_betas_zero_snr": False,
        "timestep_spacing": "linspace"}))  # fmt: skip
    target, weights = prediction_target(epsilon, latents[1:], noise[1:], t[1:])
    assert torch.equal(target, noise[1:]) and weights[0] == pytest.approx(1.0)


def test_a_text_to_image_folder_as_base_continues_its_unet_with_its_text_encoder_kept(
    chain, tmp_path
):
    """``--base`` a trained text-to-image pipeline: its UNet goes on training (under the current
    objective) while its text encoder stays as it was, so what was aligned to it still fits."""
    from transformers import CLIPTextModel

    out = tmp_path / "t2i-more"
    assert main(["pretrain", "diffusion_text_to_image", "--out", str(out), "--base",
                 str(chain["t2i"]), "--seed", "2", "--steps", "2", "--eval-count", "2"]) == 0  # fmt: skip
    assert _report(out)["command"].endswith(f"--base {chain['t2i']}")
    before = CLIPTextModel.from_pretrained(chain["t2i"], subfolder="text_encoder").state_dict()
    after = CLIPTextModel.from_pretrained(out, subfolder="text_encoder").state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    unet_before = UNet2DConditionModel.from_pretrained(chain["t2i"], subfolder="unet")
    unet_after = UNet2DConditionModel.from_pretrained(out, subfolder="unet")
    assert not torch.equal(unet_before.conv_in.weight, unet_after.conv_in.weight)
    assert _objective(out) == OBJECTIVE


def test_the_weights_are_stored_in_half_precision(chain):
    from safetensors import safe_open

    parts = [(chain["t2i"], "unet"), (chain["inpaint"], "unet"), (chain["t2i"], "vae"),
             (chain["ip2p"], "unet"), (chain["gligen"], "unet"), (chain["t2v"], "unet")]  # fmt: skip
    for folder, part in parts:
        (path,) = (folder / part).glob("*.safetensors")
        with safe_open(str(path), "pt") as weights:
            key = next(iter(weights.keys()))
            assert weights.get_tensor(key).dtype == torch.float16


def test_text_to_image_and_inpainting_need_their_base_folder(tmp_path, capsys):
    assert main(["pretrain", "diffusion_text_to_image", "--out", str(tmp_path / "a")]) != 0
    assert main(["pretrain", "diffusion_inpaint", "--out", str(tmp_path / "b"),
                 "--base", str(tmp_path)]) != 0  # fmt: skip
    assert main(["pretrain", "diffusion_gligen", "--out", str(tmp_path / "c")]) != 0
    assert main(["pretrain", "diffusion_instruct_pix2pix", "--out", str(tmp_path / "e")]) != 0
    assert main(["pretrain", "diffusion_text_to_video", "--out", str(tmp_path / "d")]) != 0
    assert "--base" in capsys.readouterr().err


def test_the_inpainting_unet_starts_as_the_text_to_image_unet():
    """With ``conv_in`` zero on the mask and masked-image channels, whatever those channels hold
    the 9-channel UNet predicts what the 4-channel one does."""
    torch.manual_seed(0)
    unet = nano_unet().eval()
    inpaint = grown_unet(unet, 9).eval()
    latents, states = torch.randn(2, 4, 8, 8), torch.randn(2, 24, 64)
    extra = torch.randn(2, 5, 8, 8)
    t = torch.tensor([10, 700])
    with torch.no_grad():
        plain = unet(latents, t, encoder_hidden_states=states).sample
        grown = inpaint(torch.cat([latents, extra], 1), t, encoder_hidden_states=states).sample
    assert torch.allclose(plain, grown, atol=1e-5)
    assert inpaint.conv_in.weight.shape[1] == 9 and not inpaint.conv_in.weight[:, 4:].any()


def test_an_inpainting_folder_as_base_continues_its_unet(chain, tmp_path):
    """``--base`` a trained inpainting pipeline: its 9-channel UNet goes on training as it is,
    mask channels included, rather than being grown again from a text-to-image UNet."""
    trained = UNet2DConditionModel.from_pretrained(chain["inpaint"], subfolder="unet")
    assert grown_unet(trained, 9) is trained
    out = tmp_path / "more"
    assert main(["pretrain", "diffusion_inpaint", "--out", str(out), "--base",
                 str(chain["inpaint"]), "--seed", "2", "--steps", "2", "--eval-count", "2"]) == 0  # fmt: skip
    assert _report(out)["command"].endswith(f"--base {chain['inpaint']}")
    continued = UNet2DConditionModel.from_pretrained(out, subfolder="unet")
    assert continued.config.in_channels == 9
    before, after = trained.conv_in.weight.float(), continued.conv_in.weight.float()
    assert after[:, 4:].abs().sum() > 0 and torch.allclose(before, after, atol=0.05)


def test_training_texts_are_the_tasks_texts_and_every_word_is_one_token():
    image, caption = generation_example(np.random.default_rng(0))
    assert image.shape == (32, 32, 3)
    assert caption.startswith("a ") and caption.endswith(" background")
    assert any(where in caption for where in ("on the left", "in the centre", "on the right"))
    tokenizer = nano_tokenizer()
    words = caption.split()
    assert len(tokenizer(caption).input_ids) == len(words) + 2  # start, one per word, end
    kinds = {edit_example(np.random.default_rng(i)).kind for i in range(30)}
    assert kinds == {"remove", "recolor", "repaint", "add"}
    example = edit_example(np.random.default_rng(1))
    outside = ~example.mask
    assert np.array_equal(example.source[outside], example.target[outside])


def test_add_examples_paint_the_phrase_into_the_box_edit_image_draws_into():
    from vitron.tools.compositing import grow
    from vitron.tools.geometry import box_mask
    from vitron.tools.placement import add_box
    from vitron.tools.pretraining.diffusion_data import ADD_GROW

    adds = [e for e in map(edit_example, map(np.random.default_rng, range(60))) if e.kind == "add"]
    assert adds
    for example in adds:
        changed = (example.source != example.target).any(axis=2)
        assert changed.any() and not changed[~example.mask].any()  # only inside the area
        boxes = [add_box(f"at the {c}", example.text).box for c in ("left", "centre", "right")]
        masks = [grow(box_mask(box, 64, 64), ADD_GROW) for box in boxes]
        assert any(np.array_equal(example.mask, mask) for mask in masks)
        assert example.text.startswith("a ") and example.text.split()[-1] in (
            "circle",
            "square",
            "triangle",
            "diamond",
            "star",
        )
