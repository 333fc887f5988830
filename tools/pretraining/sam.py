"""A nano segment-anything ``Sam`` trained on the shapes world with box, point and mask prompts.

The model is :class:`vitron.tools.models.sam.SamArchitecture` at 64 px (ViT patch 8, so an 8 x 8
embedding grid), saved with :func:`~vitron.tools.models.sam.save_sam` (``sam_config.json`` +
``model.safetensors``), which the ``sam`` loader reads. Prompts are made exactly as the
``segment_image`` tool makes them: a box is the normalised box times the side (right/bottom edges
exclusive), a point is the fraction times the side (a pixel's centre is ``col + 0.5``), and a mask
prompt is the prior mask as ±8 logits at 4 x the grid plus its box. Boxes and mask prompts train the
single-mask output; points train the three multimask outputs (the best of the three takes the loss,
as in SAM) and the IoU head ranks them, as the tool picks the best-scored one.

Batches of B images with one prompt each are decoded with :func:`decode`, which is
``MaskDecoder.predict_masks`` without its ``repeat_interleave``: upstream assumes one image with N
prompts, so B images would become B² pairs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from scipy.ndimage import distance_transform_edt
from segment_anything.modeling import MaskDecoder, Sam

from vitron.evals.shapes.dataset import make_sample
from vitron.tools.geometry import mask_box, region_to_pixels
from vitron.tools.models.sam import SamArchitecture, SamEngine, save_sam
from vitron.tools.pretraining.data import RenderedScene, ScenePool, pool_size, rendered_scene
from vitron.tools.pretraining.loop import seeded, step_rng

SIZE = 64
NANO = SamArchitecture(
    encoder_embed_dim=96, encoder_depth=3, encoder_num_heads=3, encoder_global_attn_indexes=(),
    encoder_window_size=0, encoder_mlp_ratio=2.0, image_size=SIZE, patch_size=8,
    prompt_embed_dim=64, mask_in_chans=16, decoder_depth=2, decoder_mlp_dim=256,
    decoder_num_heads=4, iou_head_depth=3, iou_head_hidden_dim=128,
)  # fmt: skip
"""About 0.6 M parameters; a 64 px shapes-world image is seen at its own size."""
PROMPTS = ("box", "box", "point", "point", "mask")
"""Prompt kind of step ``s``: ``PROMPTS[s % 5]`` (each batch has one kind)."""


def decode(
    decoder: MaskDecoder,
    image_embeddings: torch.Tensor,
    image_pe: torch.Tensor,
    sparse: torch.Tensor,
    dense: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """All four mask logits (``B x 4 x 4g x 4g``) and IoU predictions (``B x 4``) for B images
    (``B x C x g x g``) with one prompt each (``sparse``: ``B x N x C``, ``dense``: ``B x C x g x g``).
    The same computation as ``MaskDecoder.predict_masks`` for one image and one prompt."""
    tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0)
    tokens = torch.cat([tokens.unsqueeze(0).expand(sparse.shape[0], -1, -1), sparse], dim=1)
    src = image_embeddings + dense
    pos = image_pe.expand(src.shape[0], -1, -1, -1)
    b, c, h, w = src.shape
    hs, src = decoder.transformer(src, pos, tokens)
    iou_out, mask_out = hs[:, 0, :], hs[:, 1 : 1 + decoder.num_mask_tokens, :]
    upscaled = decoder.output_upscaling(src.transpose(1, 2).reshape(b, c, h, w))
    hyper = torch.stack(
        [mlp(mask_out[:, i, :]) for i, mlp in enumerate(decoder.output_hypernetworks_mlps)], dim=1
    )
    b, c, h, w = upscaled.shape
    masks = (hyper @ upscaled.reshape(b, c, h * w)).reshape(b, -1, h, w)
    return masks, decoder.iou_prediction_head(iou_out)


def mask_logits(masks: torch.Tensor, low_res: int) -> torch.Tensor:
    """``B x S x S`` bool masks as SAM mask prompts: ±8 logits, ``B x 1 x low_res x low_res``
    (area-averaged, then thresholded at a half, as the tool's bilinear resize then > 0.5)."""
    small = F.interpolate(masks[:, None].float(), size=(low_res, low_res), mode="area")
    return torch.where(small > 0.5, 8.0, -8.0)


def _perturb(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A rough version of ``mask`` (a coarse earlier prediction): shifted by up to 2 px and grown
    or shrunk by a pixel, so a mask prompt teaches refinement rather than copying."""
    dy, dx = (int(v) for v in rng.integers(-2, 3, size=2))
    out = np.roll(mask, (dy, dx), axis=(0, 1))
    grow = int(rng.integers(-1, 2))
    if grow:
        from scipy.ndimage import binary_dilation, binary_erosion

        shaped = (binary_dilation if grow > 0 else binary_erosion)(out)
        out = shaped if shaped.any() else out
    return out


def interior_point(mask: np.ndarray) -> tuple[float, float]:
    """The pixel deepest inside ``mask`` as ``(x, y)`` fractions of the side (pixel centre)."""
    depth = distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    row, col = np.unravel_index(int(np.argmax(depth)), mask.shape)
    return (col + 0.5) / mask.shape[1], (row + 0.5) / mask.shape[0]


class SamPretrainer:
    name = "sam"
    default_steps = 4000  # the committed nano SAM (box cIoU 0.822 at 2000, 0.867 at 4000)
    learning_rate = 2e-3
    batch_size = 32

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.model: Sam = seeded(seed, NANO.build)
        self.pool: ScenePool[RenderedScene] | None = None

    def start(self, step: int, total: int) -> None:
        self.pool = ScenePool(rendered_scene, seed=self.seed, capacity=pool_size(self.batch_size, total, 6),
                              refresh=6, step=step)  # fmt: skip

    # ----------------------------------------------------------------------------- training

    def loss(self, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        assert self.pool is not None, "call start() first"
        rng = step_rng(self.seed, 1, step)
        kind = PROMPTS[step % len(PROMPTS)]
        scenes = self.pool.batch(rng, self.batch_size)
        self.pool.advance()
        targets = [int(rng.integers(len(s.masks))) for s in scenes]
        gold = torch.from_numpy(
            np.stack([s.masks[t] for s, t in zip(scenes, targets, strict=True)])
        )
        images = torch.from_numpy(np.stack([s.image for s in scenes])).permute(0, 3, 1, 2).float()
        points = boxes = masks = None
        if kind == "box":
            boxes = torch.from_numpy(
                np.stack([region_to_pixels(list(s.boxes[t]), SIZE, SIZE) for s, t in zip(scenes, targets, strict=True)])
            )  # fmt: skip
        elif kind == "point":
            points = self._points(scenes, targets, rng)
        else:
            priors = np.stack(
                [_perturb(s.masks[t], rng) for s, t in zip(scenes, targets, strict=True)]
            )
            boxes = torch.from_numpy(
                np.stack(
                    [region_to_pixels(mask_box(p) or [0, 0, 1, 1], SIZE, SIZE) for p in priors]
                )
            )
            masks = mask_logits(
                torch.from_numpy(priors), self.model.prompt_encoder.mask_input_size[0]
            )
        logits, iou = self.forward(images, points=points, boxes=boxes, masks=masks)
        multimask = kind == "point"
        chosen = logits[:, 1:] if multimask else logits[:, :1]
        scores = iou[:, 1:] if multimask else iou[:, :1]
        up = F.interpolate(chosen, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
        target = gold[:, None].float().expand_as(up)
        per_mask = 20 * _focal(up, target) + _dice(up, target)  # B x M
        best = per_mask.argmin(dim=1)
        mask_loss = per_mask.gather(1, best[:, None]).mean()
        with torch.no_grad():
            hard = up > 0
            inter = (hard & target.bool()).flatten(2).sum(-1).float()
            union = (hard | target.bool()).flatten(2).sum(-1).float().clamp(min=1)
            actual = inter / union
        iou_loss = F.mse_loss(scores, actual)
        picked = actual.gather(1, best[:, None]).mean()
        return mask_loss + iou_loss, {
            f"{kind}_iou": float(picked),
            "iou_head": float(iou_loss.detach()),
        }

    def _points(self, scenes: list[RenderedScene], targets: list[int], rng: np.random.Generator):  # noqa: ANN202
        """Clicks as the tool gets them: one positive click inside each target (most batches), or a
        positive plus a negative one elsewhere (on another object or the background), as
        ``(B x N x 2 pixel coords, B x N labels)``; the prompt encoder pads them as the tool's do."""
        count = 1 if rng.random() < 0.7 else 2
        coords = np.zeros((len(scenes), count, 2), dtype=np.float32)
        labels = np.ones((len(scenes), count), dtype=np.int64)
        for i, (scene, t) in enumerate(zip(scenes, targets, strict=True)):
            for j, where in enumerate([scene.masks[t], ~scene.masks[t]][:count]):
                rows, cols = np.nonzero(where)
                k = int(rng.integers(len(rows)))
                coords[i, j] = (cols[k] + 0.5, rows[k] + 0.5)
            labels[i, 1:] = 0
        return torch.from_numpy(coords), torch.from_numpy(labels)

    def forward(self, images: torch.Tensor, *, points=None, boxes=None, masks=None):  # noqa: ANN001, ANN201
        """Mask logits ``B x 4 x 32 x 32`` and IoU predictions ``B x 4`` for ``B x 3 x 64 x 64``
        images (0–255) with one prompt each, pixel coordinates."""
        model = self.model
        embeddings = model.image_encoder(model.preprocess(images))
        sparse, dense = model.prompt_encoder(points=points, boxes=boxes, masks=masks)
        return decode(
            model.mask_decoder, embeddings, model.prompt_encoder.get_dense_pe(), sparse, dense
        )

    # ---------------------------------------------------------------------------- evaluation

    def evaluate(self, count: int) -> dict[str, float]:
        """cIoU (summed intersections over summed unions) of box and point prompts on the shapes
        world's ``test`` split (referring-segmentation samples, seed 0), through ``SamEngine``."""
        return evaluate_engine(SamEngine(self.model.eval()), count)

    def save(self, directory: Path) -> None:
        save_sam(self.model, NANO, directory)


def evaluate_engine(engine: SamEngine, count: int, seed: int = 0) -> dict[str, float]:
    """Box-prompt and point-prompt cIoU of ``engine`` on ``count`` held-out test samples."""
    totals = {"box": [0, 0], "point": [0, 0]}
    for i in range(count):
        sample = make_sample("test", i, seed=seed, tasks=["referring_segmentation"])
        image = Image.fromarray(sample.media[0].pixels)
        gold = np.asarray(sample.gold["mask"], dtype=bool)
        w, h = image.size
        key = f"eval-{i}"
        predicted = {
            "box": engine.segment(key, image, box=region_to_pixels(sample.gold["box"], w, h)).mask,
            "point": engine.segment(
                key,
                image,
                points=np.array(
                    [[x * w, y * h] for x, y in [interior_point(gold)]], dtype=np.float32
                ),  # fmt: skip
            ).mask,
        }
        for kind, mask in predicted.items():
            totals[kind][0] += int((mask & gold).sum())
            totals[kind][1] += int((mask | gold).sum())
    return {f"{kind}_ciou": inter / max(union, 1) for kind, (inter, union) in totals.items()}


def _focal(logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0):  # noqa: ANN202
    """Per-mask sigmoid focal loss (``B x M``), averaged over pixels."""
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = prob * target + (1 - prob) * (1 - target)
    loss = ce * (1 - p_t) ** gamma
    loss = (alpha * target + (1 - alpha) * (1 - target)) * loss
    return loss.flatten(2).mean(-1)


def _dice(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-mask dice loss (``B x M``)."""
    prob = logits.sigmoid().flatten(2)
    target = target.flatten(2)
    return 1 - (2 * (prob * target).sum(-1) + 1) / (prob.sum(-1) + target.sum(-1) + 1)


def make_pretrainer(seed: int) -> SamPretrainer:
    return SamPretrainer(seed)
