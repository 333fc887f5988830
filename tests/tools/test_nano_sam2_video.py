"""``vitron pretrain sam2_video`` and the committed nano SAM 2 tracker: a couple of steps train and
save a folder the ``sam2_video`` loader reads and tracks with; the batched training forward is
the inference path clip by clip; and the committed weights, called through ``track_video`` as a
user calls it, follow held-out shapes-world objects far better than an empty mask."""

from __future__ import annotations

import json
import types
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from langchain_core.messages import ToolMessage
from safetensors.torch import load_file

from vitron.apps.cli import main
from vitron.evals.metrics import j_and_f
from vitron.evals.shapes.dataset import make_sample
from vitron.evals.shapes.video import render_video, sample_video
from vitron.tools.backend import Services, build_tools
from vitron.tools.geometry import mask_box, region_to_pixels
from vitron.tools.models.sam2_video import Sam2VideoEngine, VideoPrompt, load_sam2_video
from vitron.tools.pretraining import make_pretrainer
from vitron.tools.pretraining.loop import RESUME_NAME
from vitron.tools.pretraining.sam2_video import (
    HIDDEN,
    SIZE,
    Sam2VideoPretrainer,
    training_clips,
)
from vitron.tools.profiles import ComponentSpec, load_profile
from vitron.tools.registry import ModelRegistry
from vitron.tools.workspace import Workspace

CPU = types.SimpleNamespace(device=torch.device("cpu"), dtype=torch.float32)
CLIPS = range(700, 712)
"""Held-out ``test``-split tracking samples (seed 0); training never draws from the splits."""


def _load(path) -> Sam2VideoEngine:  # noqa: ANN001
    spec = ComponentSpec(name="sam2_video", loader="sam2_video", checkpoint=str(path),
                         profile="test", options={"max_frames": 40})  # fmt: skip
    return load_sam2_video(spec, CPU)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def _gold_box(masks: np.ndarray) -> list[float]:
    """Frame 0's box of the target, normalised ``[x1, y1, x2, y2]``."""
    box = mask_box(masks[0])
    assert box is not None
    return box


def test_pretrain_command_saves_a_folder_the_loader_reads_and_tracks_with(tmp_path):
    out = tmp_path / "sam2_video"
    assert main(["pretrain", "sam2_video", "--seed", "2", "--out", str(out), "--steps", "2",
                 "--eval-count", "1"]) == 0  # fmt: skip
    report = json.loads((out / "pretrain.json").read_text())
    assert report["steps"] == 2 and report["finished"] and report["seed"] == 2
    assert report["command"].startswith("vitron pretrain sam2_video --seed 2")
    assert set(report["metrics"]) == {"J", "F", "J&F", "empty_jf"}
    assert not (out / RESUME_NAME).exists()

    engine = _load(out)
    assert engine.model.config.image_size == SIZE and engine.prompt_dim == HIDDEN
    assert engine.max_frames == 40
    saved = load_file(str(out / "model.safetensors"))
    loaded = engine.model.state_dict()
    assert all(torch.equal(saved[k], loaded[k]) for k in saved)

    sample = make_sample("test", CLIPS[0], tasks=["tracking"])
    frames = sample.media[0].pixels
    box = region_to_pixels(_gold_box(sample.gold["masks"]), SIZE, SIZE).tolist()
    masks = list(engine.track(iter(frames), 0, VideoPrompt(box=box)))
    assert len(masks) == len(frames) and masks[0].shape == (SIZE, SIZE) and masks[0].dtype == bool

    again = make_pretrainer("sam2_video", 3, out)  # a continuation starts from the saved weights
    continued = again.model.state_dict()
    assert all(torch.equal(saved[k], continued[k]) for k in saved)
    shared = again.model.shared_image_embedding.positional_embedding
    assert torch.equal(again.model.prompt_encoder.shared_embedding.positional_embedding, shared)


def test_the_image_stage_trains_one_frame_clips_and_the_video_stages_continue_it(tmp_path):
    out = tmp_path / "sam2_image"
    assert main(["pretrain", "sam2_image", "--seed", "2", "--out", str(out), "--steps", "2",
                 "--eval-count", "1"]) == 0  # fmt: skip
    report = json.loads((out / "pretrain.json").read_text())
    assert report["backend"] == "sam2_image" and report["steps"] == 2
    image_stage = make_pretrainer("sam2_image", 2)
    image_stage.start(0, 2)
    assert image_stage.pool is not None
    assert {c.frames.shape[0] for group in image_stage.pool.items for c in group} == {1}
    assert all(len(group) == 2 and group[0].frames is group[1].frames
               for group in image_stage.pool.items)  # two targets on every picture  # fmt: skip
    assert image_stage.embedding_norm_weight > 0

    videos = make_pretrainer("sam2_video", 3, out)  # the video stage starts from its weights
    saved = load_file(str(out / "model.safetensors"))
    continued = videos.model.state_dict()
    assert all(torch.equal(saved[k], continued[k]) for k in saved)

    # the last stage continues the video stage on longer clips, more gently, and only continues
    long = make_pretrainer("sam2_video_long", 3, out)
    assert long.frames > videos.frames and long.learning_rate < videos.learning_rate
    assert all(torch.equal(saved[k], long.model.state_dict()[k]) for k in saved)
    long.start(0, 2)
    assert long.pool is not None
    assert {c.frames.shape[0] for group in long.pool.items for c in group} == {long.frames}
    with pytest.raises(ValueError, match="continues a tracker trained on videos: give --base"):
        make_pretrainer("sam2_video_long", 3)

    # then once more, more gently still, on clips the long stage did not draw at the same seed
    finish = make_pretrainer("sam2_video_finish", 3, out)
    assert finish.frames == long.frames and finish.learning_rate < long.learning_rate
    assert all(torch.equal(saved[k], finish.model.state_dict()[k]) for k in saved)
    finish.start(0, 2)
    assert finish.pool is not None
    assert not np.array_equal(finish.pool.items[0][0].frames, long.pool.items[0][0].frames)
    shifted = make_pretrainer("sam2_video_long", 4, out)  # the clips of seed + 1
    shifted.start(0, 2)
    assert shifted.pool is not None
    assert np.array_equal(finish.pool.items[0][0].frames, shifted.pool.items[0][0].frames)
    with pytest.raises(ValueError, match="trained on long clips: give --base"):
        make_pretrainer("sam2_video_finish", 3)


def test_each_training_video_gives_two_clips_with_different_targets():
    """The same frames with two different targets: a model that ignores its prompt cannot fit
    both (the committed tracker before this gave the same mask for any box)."""
    for seed in range(5):
        first, second = training_clips(np.random.default_rng(seed), frames=3)
        assert first.frames is second.frames and first.frames.shape == (3, SIZE, SIZE, 3)
        assert first.masks[0].sum() >= 4 and second.masks[0].sum() >= 4
        assert not np.array_equal(first.masks, second.masks)


def test_the_embedding_norm_term_is_zero_up_to_the_position_encodings_scale():
    trainer = Sam2VideoPretrainer(0)
    scale = float(trainer.model.get_image_wide_positional_embeddings().norm(dim=1).mean())
    per_channel = scale / HIDDEN**0.5  # a constant embedding of norm `scale` at every position
    trainer._embeddings[:] = [torch.full((2, HIDDEN, 8, 8), 0.9 * per_channel)]
    loss, norm = trainer.embedding_norm_loss()
    assert float(loss) == 0.0 and norm == pytest.approx(0.9 * scale, rel=1e-4)
    trainer._embeddings[:] = [torch.full((2, HIDDEN, 8, 8), 3 * per_channel, requires_grad=True)]
    loss, norm = trainer.embedding_norm_loss()
    assert float(loss) == pytest.approx(4.0, rel=1e-4)  # (3 - 1)^2, relative to the scale
    loss.backward()  # it trains what made the embedding
    assert trainer._embeddings[0].grad is not None and trainer._embeddings[0].grad.sum() > 0


@pytest.fixture(scope="module")
def nano_engine() -> Sam2VideoEngine:
    return ModelRegistry(load_profile("nano"), device="cpu").get("sam2_video")


def test_the_batched_training_forward_is_the_inference_path_clip_by_clip(nano_engine):
    """Two clips side by side through the trainer's forward (SAM 2's memory path on a batch) give
    each clip's masks as ``Sam2VideoEngine`` computes them one clip alone."""
    trainer = Sam2VideoPretrainer(0)
    trainer.model.load_state_dict(nano_engine.model.state_dict())
    trainer.model.eval()
    samples = [make_sample("test", i, tasks=["tracking"]) for i in CLIPS[:2]]
    length = min(len(s.media[0].pixels) for s in samples)
    frames = np.stack([s.media[0].pixels[:length] for s in samples])
    boxes = np.stack([region_to_pixels(_gold_box(s.gold["masks"]), SIZE, SIZE) for s in samples])
    with torch.no_grad():
        batched = trainer.track(frames, boxes)
    for b in range(2):
        alone = list(nano_engine.track(iter(frames[b]), 0, VideoPrompt(box=boxes[b].tolist())))
        for t, (logits, _, score) in enumerate(batched):
            expected = (logits[b] > 0).numpy() if score[b] > 0 else np.zeros((SIZE, SIZE), bool)
            agree = float((expected == alone[t]).mean())
            assert agree > 0.995, (b, t, agree)  # resizing differs by a pixel at most on edges


@pytest.fixture
def track(tmp_path) -> tuple[Callable[..., ToolMessage], Workspace]:
    models = ModelRegistry(load_profile("nano"), device="cpu")
    services = Services(workspace=Workspace(tmp_path / "workspace"), models=models)
    tools = {tool.name: tool for tool in build_tools(services)}

    def call(**args: Any) -> ToolMessage:
        message = {"type": "tool_call", "id": "call_track", "name": "track_video", "args": args}
        return tools["track_video"].invoke(message, {"configurable": {"thread_id": "nano"}})

    return call, services.workspace.for_thread("nano")


def test_committed_nano_sam2_tracks_held_out_clips_from_a_box(track):
    invoke, workspace = track
    scores, empty = [], []
    for index in CLIPS:
        sample = make_sample("test", index, tasks=["tracking"])
        gold = np.asarray(sample.gold["masks"], dtype=bool)
        video = workspace.put_video(iter(sample.media[0].pixels), 4.0, lossless=True)
        result = invoke(video=video.handle, regions=[_gold_box(gold)])
        assert result.status == "success", result.content
        pred = np.stack([f[..., 0] > 127 for f in workspace.iter_frames(result.artifact["masks"])])
        scores.append(j_and_f(pred, gold)["J&F"])
        empty.append(j_and_f(np.zeros_like(gold), gold)["J&F"])
    # random weights: the empty mask's score (they predict nothing); the committed weights: 0.82
    # here, empty masks 0.16 (0.75 and 0.18 on 100 clips; before its 12-frame stage, 2026-12-05:
    # 0.61 on 100; the tracker before 2026-12-04: 0.56 on 100; issue 13's floor is 0.75)
    assert np.mean(scores) >= 0.7 and np.mean(scores) > np.mean(empty) + 0.3, (scores, empty)


def test_committed_nano_sam2_follows_its_box(nano_engine):
    """Two objects on one frame, each boxed in turn, get two different masks, each on its own
    object (the tracker committed before 2026-12-04 gave the same mask for any box)."""
    rng = np.random.default_rng(20261204)  # not a training stream (those are keyed by the seed)
    on_target, overlap = [], []
    while len(overlap) < 12:
        rendered = render_video(sample_video(rng, frames=(1, 1), size=SIZE), SIZE)
        objects = [m[0] for m in rendered.masks if m[0].sum() >= 16]
        if len(objects) < 2:
            continue
        masks = []
        for gold in objects[:2]:
            box = region_to_pixels(mask_box(gold), SIZE, SIZE).tolist()
            (mask,) = nano_engine.track(iter(rendered.frames), 0, VideoPrompt(box=box))
            masks.append(mask)
            on_target.append(_iou(mask, gold))
        overlap.append(_iou(masks[0], masks[1]))
    # committed: on target 0.86, overlap 0.03; the tracker before 2026-12-04: 0.32 and 1.00
    assert np.mean(on_target) > 0.7 and np.mean(overlap) < 0.2, (on_target, overlap)


def test_the_profiles_appearance_check_stops_masks_on_neighbours(nano_engine):
    """nano's tracker follows a neighbour once its target has left; the profile's appearance
    check (``appearance_check``) removes those masks, or their parts on the neighbour, and keeps
    the target's. The first 24 held-out clips, gold box on frame 0: without it 21 masks on frames
    the target had left (J&F 0.776), with it none, 2 of 189 masks on the target lost (0.865; 0.838
    when each mask was judged whole)."""
    assert nano_engine.appearance_check > 0
    unchecked = Sam2VideoEngine(nano_engine.model, nano_engine.processor)
    scores = {"checked": [], "unchecked": []}
    on_absent = {"checked": 0, "unchecked": 0}
    on_present = {"checked": 0, "unchecked": 0}
    for index in range(24):
        sample = make_sample("test", index, tasks=["tracking"])
        gold = np.asarray(sample.gold["masks"], dtype=bool)
        absent = ~gold.reshape(len(gold), -1).any(axis=1)
        box = region_to_pixels(_gold_box(gold), SIZE, SIZE).tolist()
        for name, engine in (("checked", nano_engine), ("unchecked", unchecked)):
            pred = np.stack(
                list(engine.track(iter(sample.media[0].pixels), 0, VideoPrompt(box=box)))
            )
            seen = pred.reshape(len(pred), -1).any(axis=1)
            on_absent[name] += int((seen & absent).sum())
            on_present[name] += int((seen & ~absent).sum())
            scores[name].append(j_and_f(pred, gold)["J&F"])
    assert on_absent["unchecked"] >= 10 and on_absent["checked"] <= on_absent["unchecked"] // 4
    assert on_present["checked"] >= 0.95 * on_present["unchecked"], on_present
    assert np.mean(scores["checked"]) > np.mean(scores["unchecked"]) + 0.03, scores


def test_a_planner_signal_goes_through_the_trained_sam2_projector(track):
    """nano's SAM 2 takes 128-wide prompt tokens; the planner's stage 2 trained the [TRK]
    projector for it (nano/sam2_signal), so a 64-d signal is projected and used, not set aside."""
    invoke, workspace = track
    sample = make_sample("test", CLIPS[0], tasks=["tracking"])
    video = workspace.put_video(iter(sample.media[0].pixels), 4.0, lossless=True)
    signal = workspace.put_embedding(torch.randn(64))
    result = invoke(video=video.handle, regions=[_gold_box(sample.gold["masks"])],
                    signal=signal.handle)  # fmt: skip
    assert result.status == "success", result.content
    assert "has no checkpoint yet" not in result.content
    assert signal.handle in workspace.describe(result.artifact["masks"]).inputs
