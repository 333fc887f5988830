"""Segment Anything (the ``segment-anything`` package): building, loading, saving, and prompting.

:class:`SamEngine` is the only stateful piece: it caches the image embedding per media handle, so
later prompts on the same image (a second click, a refined box) cost only the prompt encoder and
mask decoder. Coordinates in and out are pixels of the original image (origin top-left); boxes are
``x1, y1, x2, y2``.

Prompts always go through SAM's prompt encoder and mask decoder directly (what
``SamPredictor.predict`` does inside), so that a planner's signal embedding, projected to extra
sparse prompt tokens, can join the box and point tokens; without extra tokens the result is exactly
``SamPredictor.predict``'s. The "everything" mode wraps ``SamAutomaticMaskGenerator``.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file
from segment_anything import SamAutomaticMaskGenerator, SamPredictor, sam_model_registry
from segment_anything.modeling import (
    ImageEncoderViT,
    MaskDecoder,
    PromptEncoder,
    Sam,
    TwoWayTransformer,
)

from vitron.tools.checkpoints import checkpoint_file, load_state_dict
from vitron.tools.errors import VitronToolError
from vitron.tools.profiles import ComponentSpec
from vitron.tools.registry import LoadContext, component_loader

CONFIG_NAME = "sam_config.json"
WEIGHTS_NAME = "model.safetensors"


@dataclass(frozen=True)
class SamArchitecture:
    """Sizes that define a SAM; the released ViT-H/L/B and our tiny one are instances."""

    encoder_embed_dim: int = 96
    encoder_depth: int = 2
    encoder_num_heads: int = 2
    encoder_global_attn_indexes: tuple[int, ...] = (1,)
    encoder_window_size: int = 4
    encoder_mlp_ratio: float = 2.0
    image_size: int = 256
    patch_size: int = 16
    prompt_embed_dim: int = 64
    mask_in_chans: int = 8
    decoder_depth: int = 2
    decoder_mlp_dim: int = 128
    decoder_num_heads: int = 2
    iou_head_depth: int = 2
    iou_head_hidden_dim: int = 64

    def build(self) -> Sam:
        grid = self.image_size // self.patch_size
        encoder = ImageEncoderViT(
            depth=self.encoder_depth,
            embed_dim=self.encoder_embed_dim,
            img_size=self.image_size,
            mlp_ratio=self.encoder_mlp_ratio,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            num_heads=self.encoder_num_heads,
            patch_size=self.patch_size,
            qkv_bias=True,
            use_rel_pos=True,
            global_attn_indexes=self.encoder_global_attn_indexes,
            window_size=self.encoder_window_size,
            out_chans=self.prompt_embed_dim,
        )
        prompt_encoder = PromptEncoder(
            embed_dim=self.prompt_embed_dim,
            image_embedding_size=(grid, grid),
            input_image_size=(self.image_size, self.image_size),
            mask_in_chans=self.mask_in_chans,
        )
        decoder = MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(
                depth=self.decoder_depth,
                embedding_dim=self.prompt_embed_dim,
                mlp_dim=self.decoder_mlp_dim,
                num_heads=self.decoder_num_heads,
            ),
            transformer_dim=self.prompt_embed_dim,
            iou_head_depth=self.iou_head_depth,
            iou_head_hidden_dim=self.iou_head_hidden_dim,
        )
        return Sam(
            image_encoder=encoder,
            prompt_encoder=prompt_encoder,
            mask_decoder=decoder,
            pixel_mean=[123.675, 116.28, 103.53],
            pixel_std=[58.395, 57.12, 57.375],
        )


def build_tiny_sam(seed: int = 0) -> tuple[Sam, SamArchitecture]:
    """A 0.45 M-parameter SAM with random weights (256 px input), the same for a given seed."""
    arch = SamArchitecture()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = arch.build()
    return model.eval(), arch


def save_sam(model: Sam, arch: SamArchitecture, directory: str | Path) -> Path:
    """Write ``sam_config.json`` and ``model.safetensors``, a layout :func:`load_sam` reads back."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CONFIG_NAME).write_text(json.dumps(asdict(arch), indent=2))
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(directory / WEIGHTS_NAME))
    return directory


def load_sam_model(spec: ComponentSpec) -> Sam:
    """Build a SAM from a profile entry: ``tiny``, a saved directory, or an official checkpoint."""
    if spec.is_tiny:
        return build_tiny_sam(int(spec.options.get("seed", 0)))[0]
    path = checkpoint_file(spec)
    if path.is_dir():
        config = (
            json.loads((path / CONFIG_NAME).read_text()) if (path / CONFIG_NAME).is_file() else None
        )
        if config is None:
            raise VitronToolError(f"{path} has no {CONFIG_NAME}; point checkpoint at the .pth file")
        config["encoder_global_attn_indexes"] = tuple(config["encoder_global_attn_indexes"])
        model = SamArchitecture(**config).build()
        weights = path / WEIGHTS_NAME
    else:
        variant = spec.options.get("variant", "vit_h")
        if variant not in sam_model_registry or variant == "default":
            raise VitronToolError(
                f"profile {spec.profile!r}: unknown SAM variant {variant!r}; use vit_h, vit_l or vit_b"
            )
        model = sam_model_registry[variant](checkpoint=None)
        weights = path
    model.load_state_dict(load_state_dict(weights))
    return model.eval()


@dataclass
class SamMask:
    """One predicted mask: ``mask`` is H x W bool at the original image size."""

    mask: np.ndarray
    score: float


class SamEngine:
    """A loaded SAM plus a small LRU cache of image embeddings keyed by media handle."""

    def __init__(
        self, model: Sam, cache_size: int = 8, automatic: dict[str, Any] | None = None
    ) -> None:
        self.model = model
        self.cache_size = cache_size
        self.automatic_settings = dict(automatic or {})
        """Keyword arguments of ``SamAutomaticMaskGenerator`` (from the profile), plus
        ``max_side``: the longer image side the generator works at (masks are scaled back)."""
        self._embeddings: OrderedDict[
            str, tuple[torch.Tensor, tuple[int, int], tuple[int, int]]
        ] = OrderedDict()
        self._lock = threading.Lock()
        self.embeddings_computed = 0
        """How many image embeddings this engine has computed (for tests and benchmarks)."""

    @property
    def nbytes(self) -> int:
        return sum(p.numel() * p.element_size() for p in self.model.parameters())

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def prompt_dim(self) -> int:
        """Width of one sparse prompt token (what a signal projector must produce)."""
        return int(self.model.prompt_encoder.embed_dim)

    def predictor(self, key: str, image: Image.Image) -> SamPredictor:
        """A predictor for ``image`` whose embedding is computed once per ``key`` and reused."""
        predictor = SamPredictor(self.model)
        with self._lock:
            cached = self._embeddings.get(key)
            if cached is None:
                with torch.inference_mode(), self._autocast():
                    predictor.set_image(np.asarray(image.convert("RGB")))
                cached = (predictor.features, predictor.original_size, predictor.input_size)
                self._embeddings[key] = cached
                self.embeddings_computed += 1
                while len(self._embeddings) > self.cache_size:
                    self._embeddings.popitem(last=False)
            self._embeddings.move_to_end(key)
        predictor.features, predictor.original_size, predictor.input_size = cached
        predictor.is_image_set = True
        return predictor

    def segment(
        self,
        key: str,
        image: Image.Image,
        *,
        box: np.ndarray | None = None,
        points: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
        mask: np.ndarray | None = None,
        extra_tokens: torch.Tensor | None = None,
    ) -> SamMask:
        """Best mask for the given prompts (pixel coordinates of the original image).

        ``extra_tokens`` (``N x prompt_dim``) are appended to the sparse prompt embeddings: the
        seam for a planner's projected signal embedding. ``None`` gives ``SamPredictor.predict``'s
        result exactly.
        """
        predictor = self.predictor(key, image)
        mask_input = self._mask_prompt(predictor, mask) if mask is not None else None
        with torch.inference_mode(), self._autocast():
            masks, scores = self._decode(
                predictor,
                boxes=box[None] if box is not None else None,
                points=points,
                point_labels=point_labels,
                mask_input=mask_input,
                multimask=box is None and mask is None,
                extra_tokens=extra_tokens,
            )
        best = int(np.argmax(scores[0]))
        return SamMask(mask=masks[0, best], score=float(scores[0, best]))

    def segment_boxes(
        self,
        key: str,
        image: Image.Image,
        boxes: np.ndarray,
        *,
        extra_tokens: torch.Tensor | None = None,
        batch_size: int = 16,
    ) -> list[SamMask]:
        """One mask per ``N x 4`` pixel box, decoded in batches (one box each, as in
        :meth:`segment`, whose result each equals)."""
        predictor = self.predictor(key, image)
        results: list[SamMask] = []
        for start in range(0, len(boxes), batch_size):
            with torch.inference_mode(), self._autocast():
                masks, scores = self._decode(
                    predictor,
                    boxes=np.asarray(boxes[start : start + batch_size], dtype=np.float32),
                    multimask=False,
                    extra_tokens=extra_tokens,
                )
            results += [
                SamMask(mask=m[0], score=float(s[0])) for m, s in zip(masks, scores, strict=True)
            ]
        return results

    def automatic(self, image: Image.Image, key: str | None = None) -> list[SamMask]:
        """Every mask SAM's automatic generator finds, largest first (``score``: predicted IoU).

        The image is scaled so its longer side is at most ``max_side`` (SAM sees 1024 px at
        most anyway) and the masks are scaled back to the original size. With ``key`` (the
        image's handle) the generator uses the engine's cached embedding of the full image
        (computing it once if needed) instead of embedding the image again.
        """
        settings = dict(self.automatic_settings)
        max_side = int(settings.pop("max_side", 0) or 0)
        width, height = image.size
        work = image.convert("RGB")
        if max_side and max(width, height) > max_side:
            scale = max_side / max(width, height)
            work = work.resize((max(1, round(width * scale)), max(1, round(height * scale))))
        generator = SamAutomaticMaskGenerator(self.model, output_mode="binary_mask", **settings)
        if key is not None and not generator.crop_n_layers:  # one crop: the whole image
            self._reuse_embedding(generator.predictor, self.predictor(key, image))
        with torch.inference_mode(), self._autocast():
            found = generator.generate(np.asarray(work))
        found.sort(key=lambda m: m["area"], reverse=True)
        results = []
        for item in found:
            mask = np.asarray(item["segmentation"], dtype=bool)
            if mask.shape != (height, width):
                scaled = Image.fromarray(mask.astype(np.uint8) * 255).resize(
                    (width, height), Image.NEAREST
                )
                mask = np.asarray(scaled) > 127
            results.append(SamMask(mask=mask, score=float(item["predicted_iou"])))
        return results

    @staticmethod
    def _reuse_embedding(target: SamPredictor, cached: SamPredictor) -> None:
        """Make ``target.set_image`` take ``cached``'s embedding instead of computing one.

        The generator calls ``set_image`` with the (possibly downscaled) image it works on: its
        size becomes ``original_size`` (masks come back at that size), while ``input_size`` stays
        the embedded image's, which has the same aspect ratio (both are resized to SAM's 1024 px).
        """

        def set_image(array: np.ndarray, image_format: str = "RGB") -> None:
            target.reset_image()
            target.features = cached.features
            target.input_size = cached.input_size
            target.original_size = tuple(array.shape[:2])
            target.is_image_set = True

        target.set_image = set_image  # type: ignore[method-assign]

    def _decode(
        self,
        predictor: SamPredictor,
        *,
        boxes: np.ndarray | None = None,
        points: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
        mask_input: np.ndarray | None = None,
        multimask: bool,
        extra_tokens: torch.Tensor | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Prompt encoder → (extra tokens) → mask decoder → ``B x C x H x W`` bool masks at the
        original size and ``B x C`` scores; ``B`` is the number of boxes (or 1)."""
        device, size = predictor.device, predictor.original_size
        point_prompt = box_prompt = mask_prompt = None
        if points is not None:
            labels = point_labels if point_labels is not None else np.ones(len(points))
            coords = predictor.transform.apply_coords(points, size)
            point_prompt = (
                torch.as_tensor(coords, dtype=torch.float, device=device)[None],
                torch.as_tensor(labels, dtype=torch.int, device=device)[None],
            )
        if boxes is not None:
            boxes = predictor.transform.apply_boxes(boxes, size)
            box_prompt = torch.as_tensor(boxes, dtype=torch.float, device=device)
        if mask_input is not None:
            mask_prompt = torch.as_tensor(mask_input, dtype=torch.float, device=device)[None]
        sparse, dense = self.model.prompt_encoder(
            points=point_prompt, boxes=box_prompt, masks=mask_prompt
        )
        if extra_tokens is not None:
            extra = extra_tokens.reshape(-1, self.prompt_dim).to(
                sparse
            )  # checked by project_signal
            sparse = torch.cat([sparse, extra[None].expand(sparse.shape[0], -1, -1)], dim=1)
        low_res, scores = self.model.mask_decoder(
            image_embeddings=predictor.features,
            image_pe=self.model.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=multimask,
        )
        masks = self.model.postprocess_masks(low_res, predictor.input_size, size)
        masks = masks > self.model.mask_threshold
        return masks.cpu().numpy(), scores.float().cpu().numpy()

    def _autocast(self):  # noqa: ANN202
        """Half-precision weights take float32 inputs from the predictor, so run under autocast."""
        dtype = next(self.model.parameters()).dtype
        if dtype == torch.float32:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def _mask_prompt(self, predictor: SamPredictor, mask: np.ndarray) -> np.ndarray:
        """A binary mask as SAM's low-resolution mask logits (1 x 4g x 4g, g = embedding grid)."""
        resized = predictor.transform.apply_image(
            (mask.astype(np.uint8) * 255)[..., None].repeat(3, 2)
        )
        size = self.model.image_encoder.img_size
        padded = np.zeros((size, size), dtype=np.float32)
        padded[: resized.shape[0], : resized.shape[1]] = resized[..., 0] / 255.0
        low_res = self.model.prompt_encoder.mask_input_size
        small = np.asarray(Image.fromarray(padded).resize(low_res[::-1], Image.BILINEAR))
        return np.where(small > 0.5, 8.0, -8.0).astype(np.float32)[None]


@component_loader("sam")
def load_sam(spec: ComponentSpec, context: LoadContext) -> SamEngine:
    # SAM is small next to the diffusion models; "auto" keeps it in float32, where it is exact.
    dtype = torch.float32 if spec.dtype == "auto" else context.dtype
    model = load_sam_model(spec).to(device=context.device, dtype=dtype)
    automatic = spec.options.get("automatic", {})
    if not isinstance(automatic, dict):
        raise VitronToolError(
            f"profile {spec.profile!r}: components.{spec.name}.automatic must be a table of "
            "SamAutomaticMaskGenerator settings, e.g. {{ points_per_side = 16 }}"
        )
    return SamEngine(
        model, cache_size=int(spec.options.get("embedding_cache", 8)), automatic=automatic
    )
