"""The signal path learns: a short stage-2 run trains the [SEG] signal head and the sam_signal
projector through the frozen SAM decoder, so held-out mask loss falls and ``segment_image``,
given the emb_ handle the trained planner produces, returns a mask closer to the target.

The decoder must be one that listens to prompt tokens (a random SAM does not: its masks barely
move whatever the tokens), so the fixture pre-trains a small SAM's prompt encoder and mask
decoder, with a random token per colour standing in for "which object", on scenes with a red and
a blue square and a whole-image box — the box says nothing, so only the token can choose. This is
the part the upstream SAM checkpoint plays for the real model. The Vitron signal path never sees
those tokens: it must find its own way into the decoder's prompt space from the instruction.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.training.conftest import tiny_config
from vitron.agent.invocation import format_invocation
from vitron.agent.training.decoders import SamAlignment, denoising_pair
from vitron.agent.training.losses import denoising_loss, mask_loss
from vitron.agent.training.records import Record, write_jsonl
from vitron.agent.training.trainer import Trainer
from vitron.tools.geometry import mask_box
from vitron.tools.models.sam import SamArchitecture, save_sam

COLOURS = {"red": (220, 30, 30), "blue": (40, 60, 220)}
WHOLE = (0.0, 0.0, 1.0, 1.0)
SMALL_SAM = SamArchitecture(
    encoder_embed_dim=32, encoder_depth=1, encoder_num_heads=2, encoder_global_attn_indexes=(0,),
    encoder_window_size=0, image_size=64, patch_size=8, prompt_embed_dim=32, mask_in_chans=4,
    decoder_depth=1, decoder_mlp_dim=64, decoder_num_heads=2, iou_head_depth=1,
    iou_head_hidden_dim=16,
)  # fmt: skip


def scene(rng: np.random.Generator) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """32 x 32: a red and a blue square that do not overlap; their masks by colour."""
    while True:
        boxes = []
        for _ in COLOURS:
            x, y = (int(v) for v in rng.integers(0, 20, 2))
            side = int(rng.integers(8, 12))
            boxes.append((x, y, x + side, y + side))
        (a, b) = boxes
        if a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]:
            break
    pixels = np.full((32, 32, 3), 245, np.uint8)
    masks = {}
    for (name, colour), (x1, y1, x2, y2) in zip(COLOURS.items(), boxes, strict=True):
        pixels[y1:y2, x1:x2] = colour
        masks[name] = np.zeros((32, 32), np.float32)
        masks[name][y1:y2, x1:x2] = 1
    return pixels, masks


@pytest.fixture(scope="module")
def profile(tmp_path_factory) -> Path:
    """A profile: tiny, but with the pre-trained small SAM and a sam_signal of its width."""
    folder = tmp_path_factory.mktemp("signal-profile")
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    sam = SMALL_SAM.build()
    scenes = [scene(rng) for _ in range(32)]
    images = [Image.fromarray(p) for p, _ in scenes]
    align = SamAlignment(sam)
    parts = [*sam.mask_decoder.parameters(), *sam.prompt_encoder.parameters()]
    for p in parts:
        p.requires_grad_(True)
    tokens = torch.randn(len(COLOURS), SMALL_SAM.prompt_embed_dim)
    optimizer = torch.optim.Adam(parts, lr=1e-2)
    for _ in range(70):
        total = 0.0
        for k in rng.choice(len(scenes), 4, replace=False):
            for c, name in enumerate(COLOURS):
                logits = align.mask_logits(images[k], tokens[c : c + 1], WHOLE)
                terms = mask_loss(logits, torch.tensor(scenes[k][1][name])[None])
                total = total + terms["mask_bce"] + terms["mask_dice"]
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    save_sam(sam.eval(), SMALL_SAM, folder / "sam")
    (folder / "profile.toml").write_text(
        'extends = "tiny"\n[components.sam]\nloader = "sam"\ncheckpoint = "./sam"\n'
        '[components.sam_signal]\nloader = "signal_projector"\ncheckpoint = "tiny"\n'
        "in_dim = 64\nout_dim = 32\ntokens = 1\n"
    )
    return folder / "profile.toml"


def records(root: Path, name: str, count: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    out = []
    for k in range(count):
        pixels, masks = scene(rng)
        colour = list(COLOURS)[k % 2]
        image, mask = f"{name}/{k}.png", f"{name}/{k}-mask.png"
        (root / name).mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(root / image)
        Image.fromarray((masks[colour] * 255).astype(np.uint8)).save(root / mask)
        invocation = format_invocation("segment_image", f"the {colour} square", [WHOLE])
        out.append(
            Record.from_json(
                {
                    "id": f"{name}-{k}",
                    "task": "segment_image",
                    "media": [{"kind": "image", "path": image}],
                    "messages": [
                        {"role": "user", "text": f"<image>\nSegment the {colour} square."},
                        {"role": "assistant", "text": invocation},
                    ],
                    "signals": [{"token": "[SEG]", "media": 0, "mask": mask}],
                }
            )
        )
    write_jsonl(root / f"{name}.jsonl", out)


def segment_with_signal(trainer: Trainer, profile: Path, workspace: Path) -> float:
    """Mean IoU of segment_image's masks on the held-out scenes, each called with the emb_
    handle of the planner's [SEG] state (teacher-forced on the reference reply)."""
    from vitron.tools.backend import Services, build_tools
    from vitron.tools.profiles import load_profile
    from vitron.tools.registry import ModelRegistry
    from vitron.tools.workspace import Workspace

    services = Services(Workspace(workspace), ModelRegistry(load_profile(profile), device="cpu"))
    tool = next(t for t in build_tools(services) if t.name == "segment_image")
    store = services.workspace.for_thread("t")
    data = trainer.eval_dataset
    module = trainer.module
    module.eval()
    ious = []
    for k in range(len(data)):
        sample = data[k]
        batch = trainer.collator([sample])
        with torch.no_grad():
            hidden = module.model(**batch.inputs).last_hidden_state
            (signal,) = module.vitron.signal_embeddings(hidden, batch.inputs["input_ids"])
        handle = store.put_embedding(
            signal.embedding, extra={"space": "sam", "token": "[SEG]"}
        ).handle
        image = store.put_image(np.asarray(sample.media[0])).handle
        message = tool.invoke(
            {"type": "tool_call", "id": "c", "name": "segment_image",
             "args": {"image": image, "instruction": "the square", "regions": [list(WHOLE)],
                      "signal": handle}},
            {"configurable": {"thread_id": "t"}},
        )  # fmt: skip
        assert message.status == "success", message.content
        predicted = store.get_mask(message.artifact["masks"][0]) > 0
        target = sample.target_masks[0] > 0
        ious.append((predicted & target).sum() / max(1, (predicted | target).sum()))
    module.train()
    return float(np.mean(ious))


@pytest.mark.heavy
def test_stage_two_aligns_the_signal_with_the_frozen_sam(profile, tmp_path):
    records(tmp_path, "train", 16, seed=1)
    records(tmp_path, "val", 8, seed=2)
    config = tiny_config(
        tmp_path, tmp_path / "run", "invoke", profile=str(profile), signal_alignment=True,
        data=[{"root": str(tmp_path), "options": {"files": ["train.jsonl"]}}],
        eval_data=[{"root": str(tmp_path), "options": {"files": ["val.jsonl"]}}],
        signal_routes={"segment_image": {"decoder": "sam", "projector": "sam_signal"}},
        synergy={"enabled": False}, epochs=100, max_steps=30, lr=1e-2, batch_size=8,
    )  # fmt: skip
    trainer = Trainer(config)
    trainer.eval_dataset = trainer_eval(trainer)
    before = trainer.evaluate(trainer.eval_dataset)
    iou_before = segment_with_signal(trainer, profile, tmp_path / "ws-before")
    result = trainer.run()
    after = trainer.evaluate(trainer.eval_dataset)
    # the trained projector is what the run's profile hands segment_image
    iou_after = segment_with_signal(trainer, result.profile, tmp_path / "ws-after")
    held_out = (before["mask_bce"] + before["mask_dice"], after["mask_bce"] + after["mask_dice"])
    print(
        f"held-out mask loss {held_out[0]:.3f} -> {held_out[1]:.3f}; IoU {iou_before:.3f} -> {iou_after:.3f}"
    )
    assert held_out[1] < held_out[0] - 0.1, (before, after)
    assert iou_after > iou_before + 0.1, (iou_before, iou_after)
    final = result.history[-1]  # the run scored its eval_data at the end, into the metrics too
    assert final["eval_mask_bce"] == pytest.approx(after["mask_bce"], rel=1e-4)


def trainer_eval(trainer: Trainer):
    from vitron.agent.training.trainer import read_data

    return read_data(trainer.config.eval_data, max_frames=4)[0]


def test_trk_is_aligned_through_sam2_on_the_prompt_frame(tmp_path):
    """[TRK] signals reach SAM 2's prompt-frame decoder (the track_video hook) with gradients:
    the mask terms are computed and the sam2_signal projector's weights move. The invocation
    names its target in words, so the decoder is prompted as track_video prompts it: with a
    detector's box around the target (its mask's box, edges jittered), not the whole frame."""
    rng = np.random.default_rng(0)
    out, targets = [], []
    for k in range(4):
        folder = tmp_path / f"clip{k}"
        folder.mkdir()
        pixels, masks = scene(rng)
        for t in range(3):
            Image.fromarray(np.roll(pixels, t, axis=1)).save(folder / f"{t:02d}.png")
        Image.fromarray((masks["red"] * 255).astype(np.uint8)).save(tmp_path / f"m{k}.png")
        targets.append(mask_box(masks["red"] > 0))
        out.append(
            Record.from_json(
                {
                    "id": f"trk-{k}",
                    "task": "track_video",
                    "media": [{"kind": "video", "path": f"clip{k}"}],
                    "messages": [
                        {"role": "user", "text": "<video>\nTrack the red square."},
                        {
                            "role": "assistant",
                            "text": format_invocation("track_video", "the red square"),
                        },
                    ],
                    "signals": [{"token": "[TRK]", "media": 0, "mask": f"m{k}.png"}],
                }  # fmt: skip
            )
        )
    write_jsonl(tmp_path / "train.jsonl", out)
    config = tiny_config(
        tmp_path, tmp_path / "run", "invoke", signal_alignment=True, max_frames=3,
        signal_routes={"[TRK]": {"decoder": "sam2_video", "projector": "sam2_signal"}},
        synergy={"enabled": False}, epochs=1, batch_size=2,
    )  # fmt: skip
    trainer = Trainer(config)
    # A random SAM 2's object-score head says "no object" for everything, and SAM 2 then replaces
    # the mask by a constant (-1024) that passes no gradient; a trained SAM 2 sees the square.
    sam2 = trainer.module.alignment.mask_decoders["sam2_video"].engine.model
    with torch.no_grad():
        sam2.mask_decoder.pred_obj_score_head.proj_out.bias += 20.0
    aligner = trainer.module.alignment.mask_decoders["sam2_video"]
    boxes = []
    original = aligner.mask_logits
    aligner.mask_logits = lambda image, tokens, box=None: (
        boxes.append(box) or original(image, tokens, box)
    )
    projector = trainer.module.projectors["sam2_signal"]
    start = {k: v.detach().clone() for k, v in projector.state_dict().items()}
    history = trainer.run().history
    assert boxes and all(b is not None for b in boxes)
    for box in boxes:  # within a tenth of a side of one target's box, never the whole frame
        moved = [np.abs(np.subtract(box, t)).max() / max(t[2] - t[0], t[3] - t[1]) for t in targets]
        assert min(moved) <= 0.1 + 1e-3
        assert box != WHOLE
    assert all("mask_bce" in h and "mask_dice" in h for h in history)
    moved = [k for k, v in projector.state_dict().items() if not torch.equal(v, start[k])]
    assert moved  # gradients went through SAM 2 into the projector
    assert (tmp_path / "run/projectors/sam2_signal/model.safetensors").is_file()


def test_each_backend_gets_its_own_projector_as_the_profile_pairs_them(tmp_path):
    """Default routes follow the profile: a pipeline naming its own ``signal_projector`` (as
    vitron-7b's text_to_video names video_signal) gets that projector trained and exported."""
    from vitron.agent.build import build_tiny_vitron
    from vitron.agent.training.trainer import build_alignment

    profile = tmp_path / "p.toml"
    profile.write_text(
        'extends = "tiny"\n'
        '[components.text_to_video]\nloader = "diffusion"\npipeline = "text_to_video"\n'
        'checkpoint = "tiny"\nsignal_projector = "video_signal"\n'
        '[components.video_signal]\nloader = "signal_projector"\ncheckpoint = "tiny"\n'
        "in_dim = 32\nout_dim = 32\ntokens = 4\n"
    )
    model, _ = build_tiny_vitron()
    config = tiny_config(tmp_path, tmp_path / "run", "invoke", profile=str(profile))
    alignment, projectors = build_alignment(config, model)
    assert alignment.routes["generate_video"] == ("text_to_video", "video_signal")
    assert alignment.routes["generate_image"] == ("text_to_image", "diffusion_signal")
    assert alignment.routes["segment_image"] == ("sam", "sam_signal")
    assert alignment.routes["track_video"] == ("sam2_video", "sam2_signal")
    assert {"sam_signal", "sam2_signal", "diffusion_signal", "video_signal"} <= set(projectors)


def test_gen_signals_regress_onto_the_text_encoder_and_denoise_through_the_unet(tmp_path):
    """[GEN]: the projected tokens move toward the frozen text encoder's caption states, and a
    wanted image adds a denoising loss whose gradient reaches the tokens through the frozen UNet."""
    rng = np.random.default_rng(0)
    out = []
    for k in range(4):
        pixels, _ = scene(rng)
        Image.fromarray(pixels).save(tmp_path / f"want{k}.png")
        out.append(
            Record.from_json(
                {
                    "id": f"gen-{k}",
                    "task": "generate_image",
                    "messages": [
                        {"role": "user", "text": "Draw a red and a blue square."},
                        {
                            "role": "assistant",
                            "text": format_invocation("generate_image", "a red and a blue square"),
                        },
                    ],
                    "signals": [
                        {
                            "token": "[GEN]",
                            "caption": "a red and a blue square",
                            "target_media": f"want{k}.png",
                        }
                    ],
                }  # fmt: skip
            )
        )
    write_jsonl(tmp_path / "train.jsonl", out)
    config = tiny_config(
        tmp_path, tmp_path / "run", "invoke", signal_alignment=True, epochs=4, batch_size=2,
        signal_routes={"generate_image": {"decoder": "text_to_image"}}, synergy={"enabled": False},
        lr=1e-2,
    )  # fmt: skip
    trainer = Trainer(config)
    unet = trainer.module.alignment.denoisers["text_to_image"][0].unet
    frozen = {k: v.clone() for k, v in unet.state_dict().items()}
    projector = trainer.module.projectors["diffusion_signal"]
    start = {k: v.detach().clone() for k, v in projector.state_dict().items()}
    history = trainer.run().history
    assert all("denoise_mse" in h and "caption_mse" in h for h in history)
    mse = [h["caption_mse"] for h in history]
    assert mse[-1] < mse[0], mse
    assert all(torch.equal(v, frozen[k]) for k, v in unet.state_dict().items())  # stays frozen
    assert any(not torch.equal(v, start[k]) for k, v in projector.state_dict().items())
    assert (tmp_path / "run/projectors/diffusion_signal/model.safetensors").is_file()
    # the denoising term alone sends gradient into the signal tokens, through the UNet
    pipe, size = trainer.module.alignment.denoisers["text_to_image"]
    tokens = torch.zeros(4, 32, requires_grad=True)
    prediction, target = denoising_pair(
        pipe, Image.open(tmp_path / "want0.png"), "a red and a blue square", tokens, size
    )
    denoising_loss(prediction, target)["denoise_mse"].backward()
    assert float(tokens.grad.abs().sum()) > 0


def test_a_velocity_pipelines_denoising_target_is_the_velocity():
    """The nano text-to-image trains for v-prediction and samples with DPM-Solver++, which has no
    ``get_velocity``: stage 2's denoising term takes the velocity from the sampler's schedule."""
    from diffusers import DDPMScheduler, StableDiffusionPipeline

    from vitron.tools.profiles import load_profile

    folder = load_profile("nano").component("text_to_image").checkpoint
    pipe = StableDiffusionPipeline.from_pretrained(folder, torch_dtype=torch.float32)
    assert pipe.scheduler.config.prediction_type == "v_prediction"
    image = Image.new("RGB", (32, 32), (200, 30, 30))
    tokens = torch.zeros(4, 64)
    torch.manual_seed(5)
    prediction, target = denoising_pair(pipe, image, "a red square", tokens, 32)
    torch.manual_seed(5)  # the same draws, in the same order
    pixels = torch.full((1, 3, 32, 32), 0.0)
    pixels[:, 0], pixels[:, 1], pixels[:, 2] = 200 / 127.5 - 1, 30 / 127.5 - 1, 30 / 127.5 - 1
    with torch.no_grad():
        latents = pipe.vae.encode(pixels).latent_dist.mean * pipe.vae.config.scaling_factor
    noise = torch.randn(latents.shape)
    timestep = torch.randint(0, 1000, (1,))
    velocity = DDPMScheduler.from_config(pipe.scheduler.config).get_velocity(
        latents, noise, timestep
    )
    assert prediction.shape == target.shape == latents.shape
    assert torch.allclose(target, velocity, atol=1e-5) and not torch.allclose(target, noise)


@pytest.mark.parametrize("fresh", [False, True])
def test_a_fresh_route_ignores_the_profiles_projector(tmp_path, fresh):
    """By default stage 2 continues from the profile's projector; ``fresh`` builds a new one, so
    a rebuild does not depend on what an earlier build left in the profile."""
    from vitron.agent.build import build_tiny_vitron
    from vitron.agent.training.trainer import build_alignment
    from vitron.tools.profiles import load_profile
    from vitron.tools.registry import ModelRegistry

    model, _ = build_tiny_vitron()
    route = {"decoder": "sam", "projector": "sam_signal", "fresh": fresh}
    config = tiny_config(tmp_path, tmp_path / "run", "invoke", signal_routes={"[SEG]": route})
    # The Trainer seeds the RNG before it builds the projectors; so does this test, with a seed
    # other than the tiny projector's own 0: a fresh projector drawn right after manual_seed(0)
    # is that very projector, whatever an earlier test on this worker left the RNG at.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed + 1)
        _, projectors = build_alignment(config, model)
    shipped = ModelRegistry(load_profile("tiny")).get("sam_signal").state_dict()
    built = projectors["sam_signal"].state_dict()
    same = all(torch.equal(built[k].float(), v.float()) for k, v in shipped.items())
    assert same is not fresh


def test_signals_only_trains_the_projectors_and_leaves_every_planner_weight(profile, tmp_path):
    """``signals_only`` (a re-alignment to a decoder retrained after its planner): the projector
    moves through the frozen SAM, and the planner the run exports is the one it started from."""
    from vitron.agent.build import load_vitron

    records(tmp_path, "train", 8, seed=1)
    config = tiny_config(
        tmp_path, tmp_path / "run", "invoke", profile=str(profile), signal_alignment=True,
        signals_only=True, data=[{"root": str(tmp_path), "options": {"files": ["train.jsonl"]}}],
        signal_routes={"segment_image": {"decoder": "sam", "projector": "sam_signal"}},
        max_steps=3, batch_size=4, epochs=10,
    )  # fmt: skip
    trainer = Trainer(config)
    trainable = [n for n, p in trainer.module.named_parameters() if p.requires_grad]
    assert trainable and all(n.startswith("projectors.sam_signal.") for n in trainable)
    planner = {k: v.clone() for k, v in trainer.module.vitron.state_dict().items()}
    projector = trainer.module.projectors["sam_signal"]
    start = {k: v.detach().clone() for k, v in projector.state_dict().items()}
    history = trainer.run().history
    assert all("mask_bce" in h for h in history) and not any("synergy" in k for k in history[-1])
    assert any(not torch.equal(v, start[k]) for k, v in projector.state_dict().items())
    exported, _ = load_vitron(tmp_path / "run" / "llm", dtype="float32")
    for name, value in exported.state_dict().items():
        assert torch.equal(value, planner[name]), name


@pytest.mark.parametrize("stage", ["base", "align", "ground"])
def test_signals_only_is_refused_outside_stage_two(tmp_path, stage):
    from vitron.agent.training.config import ConfigError

    with pytest.raises(ConfigError, match="signals_only"):
        tiny_config(tmp_path, tmp_path / "run", stage, signals_only=True)
