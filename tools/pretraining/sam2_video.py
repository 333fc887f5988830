"""A nano SAM 2 video tracker (transformers ``Sam2VideoModel``) trained on shapes-world clips.

The model is :func:`build_nano_sam2_video`: SAM 2's architecture at 64 px (a Hiera backbone with a
stride-2 patch embedding, so the FPN levels are 32 x 32, 16 x 16 and 8 x 8 and the mask decoder
works on an 8 x 8 embedding with 32 x 32 low-resolution masks); prompt encoder, mask decoder and
memory attention are :data:`HIDDEN` wide, memories 64. Every size-dependent field agrees with the
64 px input. It is saved with ``save_pretrained`` (model and ``Sam2VideoProcessor``), the folder the
``sam2_video`` loader reads through ``from_pretrained``.

Training step (SAM 2's video training, on B clips at once): each clip is ``FRAMES`` frames of a
shapes-world video (objects move in straight lines, pass over one another and leave the frame); the
target is given on frame 0 by a box, made as ``track_video`` makes it (normalised box times the
side), each edge moved by up to a tenth of the box's side, since the tool's boxes usually come
from Grounding DINO.
Frames then run in order through the model's own memory path — the same ``Sam2VideoModel`` methods
its inference calls frame by frame (``_run_single_frame_inference``: memory attention over earlier
frames' memories and object pointers, then the mask decoder; ``_encode_new_memory`` for each frame's
memory), on an inference session whose per-frame features hold the B clips in the batch dimension
(one forward hook turns memory attention's output batch-first: transformers' reshape of it assumes
one clip).
Gradients flow through the memories into earlier frames, as in SAM 2. Loss per frame: 20 x focal +
dice on the mask where the object shows, MSE of the IoU head against the mask's actual IoU, and BCE
of the object-score head (the object leaves the frame in many clips; a negative score empties the
mask at inference).

Each video comes twice in a batch, with two different targets (``targets``), and
:meth:`~Sam2VideoPretrainer.embedding_norm_loss` keeps the decoder's image embedding at its
position encoding's scale: without them the model learnt to segment whatever stands out and
ignore its box (the same mask for any box; about 0.45 frame-0 IoU on 1–3-object scenes). The
tracker starts from its image stage (:mod:`.sam2_image`, ``--base``), which learns to follow the
box on pictures first; trained from nothing on videos alone it did not learn to.

Multimask outputs are off (``multimask_output_in_sam=False``, no stability fallback): a box or a
click gives one mask, the same branch in training and inference.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from transformers import (
    Sam2HieraDetConfig,
    Sam2VideoConfig,
    Sam2VideoModel,
    Sam2VideoProcessor,
    Sam2VideoVideoProcessor,
    Sam2VisionConfig,
)

from vitron.evals.metrics import j_and_f
from vitron.evals.shapes.dataset import make_sample
from vitron.evals.shapes.video import render_video, sample_video
from vitron.tools.geometry import jittered_box, mask_box, region_to_pixels
from vitron.tools.models.sam2_video import (
    Sam2ImageProcessor,  # imported there under the name this transformers gives it
    Sam2VideoEngine,
    VideoPrompt,
)
from vitron.tools.pretraining.data import ScenePool, pool_size
from vitron.tools.pretraining.loop import seeded, step_rng
from vitron.tools.pretraining.sam import _dice, _focal  # the same per-mask losses, B x T here

SIZE = 64
FRAMES = 8
"""Frames per training clip (SAM 2 trains on 8-frame clips; the shapes videos have 8–16)."""
HIDDEN = 128
"""Width of the prompt encoder, mask decoder and memory attention (a prompt token's width). Memories
are 64 wide (transformers fixes the memory cross-attention's input at 64), and the object-pointer
path of transformers' ``Sam2VideoModel`` only works when memories are narrower than this, so 64
is not possible here."""


def nano_config(**overrides: Any) -> Sam2VideoConfig:
    """SAM 2 at 64 px, :data:`HIDDEN` wide; ``overrides`` go to ``Sam2VideoConfig``."""
    backbone = Sam2HieraDetConfig(
        hidden_size=16, blocks_per_stage=[1, 1, 2, 1], embed_dim_per_stage=[16, 32, 64, 128],
        num_attention_heads_per_stage=[1, 1, 2, 2], global_attention_blocks=[3],
        window_size_per_stage=[8, 4, 8, 4], window_positional_embedding_background_size=[4, 4],
        patch_stride=[2, 2], image_size=[SIZE, SIZE],
    )  # fmt: skip
    vision = Sam2VisionConfig(
        backbone_config=backbone, backbone_channel_list=[128, 64, 32, 16],
        backbone_feature_sizes=[[32, 32], [16, 16], [8, 8]], fpn_hidden_size=HIDDEN,
    )  # fmt: skip
    settings: dict[str, Any] = dict(
        vision_config=vision, image_size=SIZE,
        prompt_encoder_config={"image_size": SIZE, "patch_size": 8, "hidden_size": HIDDEN},
        mask_decoder_config={"hidden_size": HIDDEN, "mlp_dim": 256, "num_attention_heads": 4,
                             "iou_head_hidden_dim": 64, "dynamic_multimask_via_stability": False},
        multimask_output_in_sam=False, multimask_output_for_tracking=False,
        memory_attention_hidden_size=HIDDEN, memory_attention_num_layers=2,
        memory_attention_num_attention_heads=1, memory_attention_feed_forward_hidden_size=256,
        memory_attention_dropout=0.0, memory_attention_rope_dropout=0.0,
        memory_attention_rope_feat_sizes=[8, 8],
        memory_encoder_hidden_size=HIDDEN, memory_encoder_output_channels=64,
        mask_downsampler_embed_dim=HIDDEN, memory_fuser_embed_dim=HIDDEN,
        memory_fuser_intermediate_dim=256,
    )  # fmt: skip
    settings.update(overrides)
    return Sam2VideoConfig(**settings)


def nano_processor() -> Sam2VideoProcessor:
    size = {"height": SIZE, "width": SIZE}
    return Sam2VideoProcessor(
        image_processor=Sam2ImageProcessor(size=size),
        video_processor=Sam2VideoVideoProcessor(size=size),
        target_size=SIZE,
    )


def build_nano_sam2_video(
    seed: int = 0, **overrides: Any
) -> tuple[Sam2VideoModel, Sam2VideoProcessor]:
    """The nano model (random weights from ``seed``) and its processor."""
    model = seeded(seed, lambda: Sam2VideoModel(nano_config(**overrides)))
    tie_prompt_positions(model)
    return model, nano_processor()


def tie_prompt_positions(model: Sam2VideoModel) -> None:
    """Give the prompt encoder the image's random Fourier position basis.

    Transformers builds two independent, frozen bases (``shared_image_embedding`` for the image
    grid, ``prompt_encoder.shared_embedding`` for points and boxes); SAM 2 has one, and its released
    checkpoints carry equal copies. Left apart, a box's position cannot be matched to image
    positions, and a model trained from scratch segments salient objects instead of the boxed one
    (held-out frame-0 IoU about 0.45 after 1000 steps)."""
    with torch.no_grad():
        model.prompt_encoder.shared_embedding.positional_embedding.copy_(
            model.shared_image_embedding.positional_embedding
        )


# ------------------------------------------------------------------------------- data


class Clip:
    """A training clip: ``frames`` T x S x S x 3 uint8, the target's ``masks`` T x S x S bool."""

    def __init__(self, frames: np.ndarray, masks: np.ndarray) -> None:
        self.frames, self.masks = frames, masks


def training_clips(rng: np.random.Generator, frames: int = FRAMES, targets: int = 2) -> list[Clip]:
    """A ``frames``-frame shapes video (training combinations only) with ``targets`` different
    objects visible on frame 0, as the tracking task picks them: one clip per target, same frames.

    Two targets on the same frames keep the model from ignoring its prompt: a tracker that
    segments whatever stands out, whatever the box, scores the same on a one-target clip (about
    0.45 frame-0 IoU here), but cannot give two targets on one picture their two masks."""
    while True:
        video = sample_video(rng, frames=(frames, frames), size=SIZE)
        rendered = render_video(video, SIZE)
        visible = [i for i, m in enumerate(rendered.masks) if m[0].sum() >= 4]
        if len(visible) >= targets:
            picks = rng.choice(visible, size=targets, replace=False)
            return [Clip(rendered.frames, rendered.masks[int(i)]) for i in picks]


# ------------------------------------------------------------------------------- training


class Sam2VideoPretrainer:
    name = "sam2_video"
    default_steps = 700
    learning_rate = 2e-3
    batch_size = 8
    box_jitter = 0.1

    frames = FRAMES
    """Frames per training clip; 1 trains the image path alone (:mod:`.sam2_image`)."""
    refresh = 2
    """New videos drawn into the pool per step."""
    targets = 2
    """Targets per video in a batch (each a clip of its own): ``batch_size`` clips are
    ``batch_size / targets`` videos."""
    embedding_norm_weight = 1.0
    """Weight of :meth:`embedding_norm_loss`."""
    clip_seed_offset = 0
    """The clips come from ``seed + clip_seed_offset``: a later stage of a build, which gets the
    build's one seed, draws clips the stage before it did not."""

    def __init__(self, seed: int, base: Path | None = None, **overrides: Any) -> None:
        self.seed = seed
        self.clip_seed = seed + self.clip_seed_offset
        if base is not None:  # a continuation (its saved position bases are already equal)
            self.model = Sam2VideoModel.from_pretrained(base)
            self.processor = Sam2VideoProcessor.from_pretrained(base)
        else:
            self.model, self.processor = build_nano_sam2_video(seed, **overrides)
        self.pool: ScenePool[list[Clip]] | None = None
        self._decoded: list[tuple[torch.Tensor, ...]] = []
        self._embeddings: list[torch.Tensor] = []
        self._collect = False
        self.model.mask_decoder.register_forward_hook(self._keep_decoder_output)
        self.model.mask_decoder.register_forward_pre_hook(self._keep_embedding, with_kwargs=True)
        self.model.memory_attention.register_forward_hook(_batch_first_memory_output)
        mean = torch.tensor(self.processor.image_processor.image_mean, dtype=torch.float32)
        std = torch.tensor(self.processor.image_processor.image_std, dtype=torch.float32)
        self._mean, self._std = mean.view(1, 3, 1, 1) * 255, std.view(1, 3, 1, 1) * 255

    def _keep_decoder_output(self, module, args, output) -> None:  # noqa: ANN001
        """The decoder's raw outputs (before SAM 2 empties masks whose object score is negative):
        the loss needs the mask logits whatever the score says."""
        if self._collect:
            self._decoded.append(output)

    def _keep_embedding(self, module, args, kwargs) -> None:  # noqa: ANN001
        """The image embedding each decoder call gets (``B x C x g x g``), for
        :meth:`embedding_norm_loss`."""
        if self._collect:
            self._embeddings.append(kwargs["image_embeddings"])

    def embedding_norm_loss(self) -> tuple[torch.Tensor, float]:
        """How far the decoder's image embeddings of the last :meth:`track` rise above the norm
        of the position encoding added to them (per position, squared, relative), and their mean
        norm.

        SAM's image encoder ends in a LayerNorm, which holds its embedding at the position
        encoding's scale; SAM 2's FPN output has no norm, and trained from nothing here it grew
        from 0.6 to about 170 beside an encoding of norm 8. The two-way transformer's prompt
        tokens then attend by content alone and the box is lost: the tracker trained without
        this term gave the same mask for any box."""
        scale = self.model.get_image_wide_positional_embeddings().norm(dim=1).mean()
        norms = torch.cat([e.norm(dim=1).flatten() for e in self._embeddings])
        excess = (torch.relu(norms - scale) ** 2).mean() / scale**2
        return excess, float(norms.detach().mean())

    def start(self, step: int, total: int) -> None:
        capacity = pool_size(self.batch_size // self.targets, total, self.refresh, largest=512)
        make = partial(training_clips, frames=self.frames, targets=self.targets)
        self.pool = ScenePool(
            make, seed=self.clip_seed, capacity=capacity, refresh=self.refresh, step=step
        )

    def pixels(self, frames: np.ndarray) -> torch.Tensor:
        """``N x S x S x 3`` uint8 frames as the processor's ``N x 3 x S x S`` normalised input."""
        images = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
        return (images - self._mean) / self._std

    def loss(self, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        assert self.pool is not None, "call start() first"
        rng = step_rng(self.clip_seed, 1, step)
        clips = [
            c for group in self.pool.batch(rng, self.batch_size // self.targets) for c in group
        ]
        self.pool.advance()
        boxes = np.stack([jittered_box(c.masks[0], rng, self.box_jitter) for c in clips])
        gold = torch.from_numpy(np.stack([c.masks for c in clips]))  # B x T x S x S
        outputs = self.track(np.stack([c.frames for c in clips]), boxes)
        logits = torch.stack([o[0] for o in outputs], dim=1)  # B x T x S x S (upsampled)
        ious = torch.stack([o[1] for o in outputs], dim=1)  # B x T
        scores = torch.stack([o[2] for o in outputs], dim=1)  # B x T
        target = gold.float()
        present = target.flatten(2).any(-1).float()  # B x T
        per_frame = 20 * _focal(logits, target) + _dice(logits, target)
        mask_loss = (per_frame * present).sum() / present.sum().clamp(min=1)
        with torch.no_grad():
            hard = logits > 0
            inter = (hard & gold).flatten(2).sum(-1).float()
            union = (hard | gold).flatten(2).sum(-1).float()
            actual = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))
        iou_loss = ((ious - actual) ** 2 * present).sum() / present.sum().clamp(min=1)
        score_loss = F.binary_cross_entropy_with_logits(scores, present)
        shown = (scores > 0) == present.bool()
        tracked = actual[:, 1:][present[:, 1:].bool()]
        embedding_loss, embedding_norm = self.embedding_norm_loss()
        total = mask_loss + iou_loss + score_loss + self.embedding_norm_weight * embedding_loss
        return total, {
            "embed_norm": embedding_norm,
            "iou_f0": float(actual[:, 0].mean()),
            "iou_later": float(tracked.mean()) if len(tracked) else 0.0,
            "presence": float(shown.float().mean()),
        }

    def track(self, frames: np.ndarray, boxes: np.ndarray) -> list[tuple[torch.Tensor, ...]]:
        """Run ``B x T x S x S x 3`` clips through SAM 2's memory path, the box prompt on frame 0.

        Returns per frame ``(mask logits B x S x S at the input size, IoU prediction B, object
        score B)``, from the mask decoder before SAM 2 gates them by the object score."""
        model = self.model
        b, t = frames.shape[:2]
        features = model.get_image_features(self.pixels(frames.reshape(b * t, *frames.shape[2:])))
        feats = [f.reshape(f.shape[0], b, t, f.shape[-1]) for f in features.fpn_hidden_states]
        pos = [p.reshape(p.shape[0], b, t, p.shape[-1]) for p in features.fpn_position_encoding]
        session = self.processor.init_video_session(inference_device="cpu", dtype=torch.float32)
        obj = session.obj_id_to_idx(1)
        prompt = self.processor(input_boxes=[[list(map(float, box))] for box in boxes],
                                original_sizes=[[SIZE, SIZE]] * b, return_tensors="pt")["input_boxes"]  # fmt: skip
        point_inputs = {
            "point_coords": prompt.reshape(b, 1, 2, 2),
            "point_labels": torch.tensor([2, 3], dtype=torch.int32).repeat(b, 1, 1),
        }
        results = []
        self._embeddings.clear()
        self._collect = True
        for i in range(t):
            current = [f[:, :, i] for f in feats]
            session.cache.cache_vision_features(
                i, {"vision_feats": current, "vision_pos_embeds": [p[:, :, i] for p in pos]}
            )
            self._decoded.clear()
            out = model._run_single_frame_inference(
                inference_session=session, frame_idx=i, obj_idx=obj, batch_size=1,
                is_init_cond_frame=i == 0, point_inputs=point_inputs if i == 0 else None,
                mask_inputs=None, reverse=False, streaming=True,
            )  # fmt: skip
            masks, iou_pred, _, score = self._decoded[-1]
            session.store_output(obj, i, output_value=out, is_conditioning_frame=i == 0)
            up = F.interpolate(masks[:, 0, :1].float(), size=(SIZE, SIZE), mode="bilinear",
                               align_corners=False)[:, 0]  # fmt: skip
            results.append((up, iou_pred[:, 0, 0], score.reshape(b)))
            if i == t - 1:
                break  # no later frame reads the last frame's memory
            memory, memory_pos = model._encode_new_memory(
                current_vision_feats=current[-1], pred_masks_high_res=out["high_res_masks"],
                object_score_logits=score, is_mask_from_pts=i == 0,
            )  # fmt: skip
            stored = session.output_dict_per_obj[obj][
                "cond_frame_outputs" if i == 0 else "non_cond_frame_outputs"
            ][i]
            stored["maskmem_features"], stored["maskmem_pos_enc"] = memory, memory_pos
        self._collect = False
        self._decoded.clear()
        return results

    # ---------------------------------------------------------------------------- evaluation

    def evaluate(self, count: int) -> dict[str, float]:
        """J&F through ``Sam2VideoEngine`` on held-out tracking clips, gold box on frame 0."""
        return evaluate_engine(Sam2VideoEngine(self.model.eval(), self.processor), count)

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        self.model.save_pretrained(directory)
        self.processor.save_pretrained(directory)


def evaluate_engine(engine: Sam2VideoEngine, count: int, seed: int = 0) -> dict[str, float]:
    """Mean J, F and J&F (first and last frames left out, as ``vitron eval`` scores tracking) of
    ``engine`` on the shapes world's ``test`` tracking samples ``0..count-1``, each prompted with the
    target's gold box on frame 0 (the box ``track_video`` gets from a region); ``empty_jf`` is the
    same score for an empty mask (chance)."""
    scores: dict[str, list[float]] = {"J": [], "F": [], "J&F": [], "empty_jf": []}
    for i in range(count):
        sample = make_sample("test", i, seed=seed, tasks=["tracking"])
        frames = sample.media[0].pixels
        gold = np.asarray(sample.gold["masks"], dtype=bool)
        h, w = gold.shape[1:]
        box = region_to_pixels(mask_box(gold[0]) or [0, 0, 1, 1], w, h).tolist()
        pred = np.stack(list(engine.track(iter(frames), 0, VideoPrompt(box=box))))
        result = j_and_f(pred, gold, drop_ends=sample.gold.get("drop_ends", True))
        for key in ("J", "F", "J&F"):
            scores[key].append(result[key])
        scores["empty_jf"].append(j_and_f(np.zeros_like(gold), gold)["J&F"])
    return {k: float(np.mean(v)) if v else 0.0 for k, v in scores.items()}


def _batch_first_memory_output(module, args, output: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
    """Memory attention's ``1 x B x HW x C`` output as ``B x HW x C``. Transformers reshapes it with
    ``squeeze(1)``, which is right only for one clip at a time (as inference runs it); for one clip
    this returns what the squeeze gives, for B clips the same values clip by clip."""
    return output[0]


def make_pretrainer(seed: int, base: Path | None = None) -> Sam2VideoPretrainer:
    """``base``: a trained tracker folder to continue from."""
    return Sam2VideoPretrainer(seed, base)
