"""Grounding DINO in its original IDEA-Research form, built and run by ``groundingdino-py``.

``format = "idea"`` in a profile's ``[components.grounding_dino]`` table selects this module: the
checkpoint is an IDEA ``.pth`` (``{"model": state_dict}``, e.g. ``groundingdino_swint_ogc.pth``),
``config`` names its Python config (a path, or the name of one shipped with groundingdino-py such as
``GroundingDINO_SwinT_OGC``) and ``text_encoder`` the BERT folder or hub id (default: the config's
``text_encoder_type``). :class:`IdeaGroundingEngine` returns the same :class:`Detection` results as
the transformers engine, so ``ground`` and ``segment_image`` do not know which one runs.

Two adaptations happen on our side, never in site-packages, and only while a model is being built:

* groundingdino-py's ``BertModelWarper`` calls BERT helpers that transformers 5 removed
  (``get_extended_attention_mask``…); :class:`IdeaBertWarper` replaces it with the same children
  (``embeddings``, ``encoder``, ``pooler``), so checkpoint keys are unchanged.
* groundingdino-py only knows five named Swin sizes; a config may add ``backbone_params =
  dict(embed_dim=…, depths=[…], num_heads=[…], window_size=…)`` (this project's extension, used for
  small test models) to build any other Swin.

Reading configs and checkpoints (and writing tiny ones) is in
:mod:`~vitron.tools.models.grounding_dino_idea_files`. Importing groundingdino takes 5–7 s, so it is
imported inside the functions that need it.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from PIL import Image
from torch import nn

from vitron.tools.checkpoints import checkpoint_file
from vitron.tools.errors import MissingCheckpointError, VitronToolError
from vitron.tools.models.grounding_dino import (
    Detection,
    closest_phrase,
    limit_phrases,
    prompt_text,
)
from vitron.tools.models.grounding_dino_idea_files import (
    TINY_IDEA_CONFIG,
    IdeaConfigError,
    read_idea_checkpoint,
    read_idea_config,
    save_tiny_text_encoder,
)
from vitron.tools.profiles import ComponentSpec
from vitron.tools.registry import LoadContext

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_BUILD_LOCK = threading.Lock()


# --- the BERT wrapper for transformers 5 ----------------------------------------------------------


class IdeaBertWarper(nn.Module):
    """groundingdino-py's ``BertModelWarper`` rebuilt for transformers 5.

    Same children as the original (``embeddings``, ``encoder``, ``pooler``: the state-dict keys
    ``bert.embeddings.…`` stay), but the additive attention mask is built here — the BERT helpers
    the original calls are gone in transformers 5. The text is never decoded incrementally, so there
    is no cache: the embeddings' cache length keeps its default of 0 under either of its names
    (``past_key_values_length`` before 5.24, ``cache_length`` from 5.24), and neither is passed.
    """

    def __init__(self, bert_model: nn.Module) -> None:
        super().__init__()
        self.config = bert_model.config
        self.embeddings = bert_model.embeddings
        self.encoder = bert_model.encoder
        self.pooler = bert_model.pooler

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        **_: Any,
    ) -> dict[str, torch.Tensor]:
        """``attention_mask``: ``(B, T)`` padding or ``(B, T, T)`` sub-sentence mask, 1 = attend.

        Returns ``last_hidden_state`` ``(B, T, H)`` and ``pooler_output`` ``(B, H)``.
        """
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        hidden = self.embeddings(
            input_ids=input_ids, token_type_ids=token_type_ids, position_ids=position_ids
        )
        additive = additive_attention_mask(attention_mask, hidden.dtype)
        sequence = self.encoder(hidden, attention_mask=additive).last_hidden_state
        pooled = self.pooler(sequence) if self.pooler is not None else None
        return {"last_hidden_state": sequence, "pooler_output": pooled}


def additive_attention_mask(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``(B, T)`` or ``(B, T, T)`` 1/0 mask → ``(B, 1, T|1, T)`` additive mask (0 or dtype min)."""
    if mask.dim() == 3:
        mask = mask[:, None, :, :]
    elif mask.dim() == 2:
        mask = mask[:, None, None, :]
    else:
        raise ValueError(f"attention mask must be (B, T) or (B, T, T), not {tuple(mask.shape)}")
    return (1.0 - mask.to(dtype)) * torch.finfo(dtype).min


# --- building and loading -------------------------------------------------------------------------


@contextlib.contextmanager
def _adapted_groundingdino(settings: dict[str, Any]) -> Iterator[Any]:
    """groundingdino-py's ``build_model`` with our BERT wrapper and Swin sizes, for one build.

    Rebinds two module-level names while building and puts them back after, under a lock, so other
    users of groundingdino-py in the process see it unchanged.
    """
    import groundingdino.models.GroundingDINO.backbone.backbone as backbone_module
    import groundingdino.models.GroundingDINO.groundingdino as model_module
    from groundingdino.models import build_model
    from groundingdino.models.GroundingDINO.backbone.swin_transformer import SwinTransformer

    swin = settings.get("backbone_params")
    original_swin = backbone_module.build_swin_transformer

    def build_swin(modelname: str, pretrain_img_size: int, **kwargs: Any) -> nn.Module:
        if not swin:
            return original_swin(modelname, pretrain_img_size, **kwargs)
        return SwinTransformer(pretrain_img_size=pretrain_img_size, **{**swin, **kwargs})

    with _BUILD_LOCK:
        original_warper = model_module.BertModelWarper
        model_module.BertModelWarper = IdeaBertWarper
        backbone_module.build_swin_transformer = build_swin
        try:
            yield build_model
        finally:
            model_module.BertModelWarper = original_warper
            backbone_module.build_swin_transformer = original_swin


def build_idea_model(settings: dict[str, Any], text_encoder: str | Path) -> nn.Module:
    """A groundingdino-py ``GroundingDINO`` from config ``settings`` (random detector weights).

    ``text_encoder`` is a local BERT folder (tokenizer + weights), passed as ``text_encoder_type``.
    """
    # activation checkpointing only saves memory in training; at inference it re-runs nothing
    # useful and warns on every call, so it is off whatever the config says (weights unaffected)
    inference = {"use_checkpoint": False, "use_transformer_ckpt": False}
    args = SimpleNamespace(**{**settings, **inference, "text_encoder_type": str(text_encoder)})
    args.modelname = settings.get("modelname", "groundingdino")
    with _adapted_groundingdino(settings) as build_model, contextlib.redirect_stdout(io.StringIO()):
        return build_model(args).eval()  # stdout: it prints the text encoder's name


def load_idea_weights(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``model``; a checkpoint that misses detector weights is an error."""
    result = model.load_state_dict(state, strict=False)
    # the text pooler is unused by Grounding DINO and absent from some checkpoints
    missing = [k for k in result.missing_keys if not k.startswith("bert.pooler.")]
    if missing:
        shown = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        raise VitronToolError(
            f"{source} does not fit its config: {len(missing)} weight(s) missing ({shown}); "
            "check that `config` names the config this checkpoint was trained with"
        )


def resolve_text_encoder(spec: ComponentSpec, settings: dict[str, Any]) -> Path:
    """The local BERT folder: the profile's ``text_encoder`` or the config's, from the hub if needed."""
    name = str(spec.options.get("text_encoder") or settings.get("text_encoder_type") or "")
    local = Path(name).expanduser()
    if name and local.is_dir():
        return local
    try:
        from huggingface_hub import snapshot_download

        patterns = ["*.json", "*.txt", "*.safetensors"]
        return Path(snapshot_download(repo_id=name, allow_patterns=patterns))
    except Exception as exc:  # offline, unknown repo, bad id: all mean "not available here"
        raise MissingCheckpointError(
            f"text encoder for component {spec.name!r} of profile {spec.profile!r} is not "
            f"available: {name or '(none named)'} ({type(exc).__name__}). Set `text_encoder` in "
            "the profile to a local BERT folder or a hub id"
        ) from exc


# --- the engine -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageSize:
    """IDEA's resize: the short side to ``short`` unless the long side would pass ``max_long``."""

    short: int = 800
    max_long: int = 1333


class IdeaGroundingEngine:
    """A loaded groundingdino-py model with the same ``detect`` as ``GroundingEngine``."""

    def __init__(self, model: nn.Module, size: ImageSize = ImageSize()) -> None:
        self.model = model
        self.size = size
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        return sum(p.numel() * p.element_size() for p in self.model.parameters())

    @property
    def tokenizer(self) -> Any:
        return self.model.tokenizer

    @property
    def max_text_tokens(self) -> int:
        """Text positions the model reads (``max_text_len``; it drops tokens past them)."""
        return int(self.model.max_text_len)

    def pixel_values(self, image: Image.Image) -> torch.Tensor:
        """IDEA's preprocessing (resize, to tensor, ImageNet normalisation): ``(3, H', W')``."""
        from groundingdino.datasets import transforms as T

        transform = T.Compose(
            [
                T.RandomResize([self.size.short], max_size=self.size.max_long),
                T.ToTensor(),
                T.Normalize(list(IMAGENET_MEAN), list(IMAGENET_STD)),
            ]
        )
        return transform(image.convert("RGB"), None)[0]

    def raw(self, pixels: torch.Tensor, caption: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Post-sigmoid logits ``(Q, 256)`` and ``cx, cy, w, h`` boxes in [0, 1] ``(Q, 4)``."""
        param = next(self.model.parameters())
        with self._lock, torch.inference_mode():
            out = self.model(pixels[None].to(param.device, param.dtype), captions=[caption])
        return out["pred_logits"][0].float().sigmoid().cpu(), out["pred_boxes"][0].float().cpu()

    def detect(
        self,
        image: Image.Image,
        phrases: list[str],
        *,
        box_threshold: float = 0.35,
        text_threshold: float = 0.25,
        max_boxes: int = 10,
    ) -> list[Detection]:
        """Boxes for ``phrases`` in ``image``, best first, at most ``max_boxes``.

        As in ``GroundingEngine.detect``: phrases beyond the model's text length are left out."""
        from groundingdino.util.utils import get_phrases_from_posmap

        phrases = limit_phrases(self, phrases)[0]
        caption = prompt_text(phrases)
        logits, boxes = self.raw(self.pixel_values(image), caption)
        scores = logits.max(dim=1).values
        keep = scores > box_threshold
        tokenizer = self.tokenizer
        tokenized = tokenizer(caption)
        detections = []
        for logit, score, (cx, cy, w, h) in zip(
            logits[keep], scores[keep].tolist(), boxes[keep].tolist(), strict=True
        ):
            label = get_phrases_from_posmap(logit > text_threshold, tokenized, tokenizer)
            box = [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]
            box = [round(min(max(v, 0.0), 1.0), 4) for v in box]
            if box[2] > box[0] and box[3] > box[1]:
                detections.append(Detection(box, closest_phrase(label, phrases), score))
        detections.sort(key=lambda d: d.score, reverse=True)
        return detections[:max_boxes]


def load_idea_grounding_dino(spec: ComponentSpec, context: LoadContext) -> IdeaGroundingEngine:
    """The ``format = "idea"`` loader (the ``grounding_dino`` loader dispatches here).

    The model runs in float32 whatever the device: groundingdino-py adds float32 position
    embeddings to its features, so half-precision weights fail inside it. ``dtype = "auto"`` (fp16
    on a GPU for the other components) therefore means float32 here; an explicit half dtype is an
    error that points to the transformers format, which does run in half precision.
    """
    if context.dtype != torch.float32 and spec.dtype != "auto":
        raise VitronToolError(
            f"component {spec.name!r} of profile {spec.profile!r} asks for dtype = "
            f"{spec.dtype!r}, but groundingdino-py runs in float32 only; drop `dtype`, or convert "
            "the checkpoint (vitron convert grounding-dino) and use the transformers format"
        )
    size = ImageSize(
        short=int(spec.options.get("image_size", 224 if spec.is_tiny else 800)),
        max_long=int(spec.options.get("max_size", 320 if spec.is_tiny else 1333)),
    )
    if spec.is_tiny:
        settings = dict(TINY_IDEA_CONFIG)
        with tempfile.TemporaryDirectory(prefix="vitron-idea-bert-") as folder:
            seed = int(spec.options.get("seed", 0))
            save_tiny_text_encoder(folder, seed=seed)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                model = build_idea_model(settings, folder)
    else:
        if "config" not in spec.options:
            raise IdeaConfigError(
                f'component {spec.name!r} of profile {spec.profile!r} has format = "idea" but no '
                '`config`; name the model\'s Python config, e.g. config = "GroundingDINO_SwinT_OGC"'
            )
        settings = read_idea_config(spec.options["config"])
        path = checkpoint_file(spec)
        state = read_idea_checkpoint(path)
        model = build_idea_model(settings, resolve_text_encoder(spec, settings))
        load_idea_weights(model, state, str(path))
    return IdeaGroundingEngine(model.to(device=context.device, dtype=torch.float32).eval(), size)
