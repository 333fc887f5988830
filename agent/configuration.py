"""``VitronConfig``: a causal-LM config and a CLIP-type vision config plus the glue between them.

Like transformers' ``LlavaConfig``, the composite holds only the glue (feature layer, projector,
video pooling, region encoder, signal tokens and spaces, synergy settings); the backbone and the
vision tower keep their own configs under ``text_config`` and ``vision_config``. Everything is
data: validated in ``__post_init__`` and round-tripped through ``config.json``.
"""

from __future__ import annotations

import math
import re
from dataclasses import field
from typing import Any, ClassVar

from transformers import AutoConfig, CLIPVisionConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

from vitron.agent.invocation import MODULES

PROJECTOR_TYPES = re.compile(r"^(linear|mlp(\d+)x_gelu)$")
TEMPORAL_EMBEDDINGS = ("learned", "sinusoidal", "none")
FEATURE_SELECTS = ("patch", "cls_patch")


def _default_signal_token_spaces() -> dict[str, str]:
    return {
        "[SEG]": "sam",
        "[TRK]": "sam",
        "[GEN]": "diffusion",
        "[VID]": "diffusion",
        "[EDIT]": "diffusion",
    }


def _default_signal_spaces() -> dict[str, int]:
    return {"sam": 256, "diffusion": 768}


def _default_module_signal_tokens() -> dict[str, str | None]:
    return {name: spec.signal_token for name, spec in MODULES.items()}


class VitronConfig(PreTrainedConfig):
    """Configuration of :class:`~vitron.agent.modeling.VitronForCausalLM`.

    Token ids (``image_token_id``, ``signal_token_ids``…) are filled in when the tokenizer is
    set up (:func:`vitron.agent.tokens.add_vitron_tokens`); the model finds placeholders and
    signal tokens by these ids, never by position.
    """

    model_type = "vitron"
    sub_configs_defaults: ClassVar[dict[str, SubConfigSpec]] = {
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="llama"),
        "vision_config": SubConfigSpec(config_class=CLIPVisionConfig),
    }

    text_config: dict | PreTrainedConfig | None = None
    """Any Hugging Face causal-LM config (Llama by default)."""
    vision_config: dict | PreTrainedConfig | None = None
    """A CLIP-type vision tower config."""

    vision_feature_layer: int = -2
    """Which hidden state of the tower feeds the projector (LLaVA uses the second to last)."""
    vision_feature_select: str = "patch"
    """``patch`` drops the tower's prefix (CLS) tokens, ``cls_patch`` keeps them."""
    projector_type: str = "mlp2x_gelu"
    """``linear`` or ``mlp<N>x_gelu`` (LLaVA-1.5 uses ``mlp2x_gelu``)."""
    projector_bias: bool = True

    video_num_frames: int = 8
    """Frames sampled uniformly from a video."""
    video_tokens_per_frame: int = 16
    """Tokens a frame costs after spatial pooling; a perfect square at most the patch count."""
    video_temporal_embedding: str = "learned"
    """``learned``, ``sinusoidal`` or ``none``: how frame order enters the video tokens."""
    video_max_frames: int = 64
    """Largest frame count the temporal embedding covers."""

    region_mlp_depth: int = 3
    """Linear layers of the region feature MLP (the released Vitron region extractor uses 3)."""
    region_marks: int = 0
    """Learned marks added to the image tokens a region covers (``k``-th region of an image:
    mark ``k``, weighted by the share of each patch the mask covers), so the image tokens the
    LLM already reads say where the region is, as well as the ``<region>`` token. 0 (the released
    Vitron's layout): none. The nano planner needs them: trained with the region token alone it
    learnt to ignore that token (random region tokens moved its answers' logits by < 0.1)."""

    image_token: str = "<image>"
    video_token: str = "<video>"
    region_token: str = "<region>"
    image_token_id: int | None = None
    video_token_id: int | None = None
    region_token_id: int | None = None

    signal_token_spaces: dict[str, str] = field(default_factory=_default_signal_token_spaces)
    """Signal token -> the decoder space its embedding is mapped into."""
    signal_token_ids: dict[str, int] = field(default_factory=dict)
    """Signal token -> its id in the tokenizer (filled when tokens are added)."""
    signal_spaces: dict[str, int] = field(default_factory=_default_signal_spaces)
    """Decoder space -> conditioning dimension (SAM prompt space, diffusion text-encoder space)."""
    signal_head_hidden_size: int | None = None
    """Hidden width of each signal head MLP; ``None`` uses the backbone's hidden size."""
    module_signal_tokens: dict[str, str | None] = field(
        default_factory=_default_module_signal_tokens
    )
    """Module (tool name) -> its signal token; the key order is the task index order."""

    synergy_enabled: bool = True
    """Cross-task synergy learning on (training) or off (the ablation)."""
    synergy_specific_dim: int = 256
    synergy_invariant_dim: int = 256
    synergy_discriminator_hidden_size: int = 256
    synergy_grl_lambda: float = 1.0
    """Gradient-reversal strength in front of the task discriminator."""

    def __post_init__(self, **kwargs: Any) -> None:
        super().__post_init__(**kwargs)
        self.validate_glue()

    def validate_glue(self) -> None:
        """Check the glue fields against each other and the sub-configs; errors name the values."""
        vision = self.vision_config
        num_layers = vision.num_hidden_layers
        if not -(num_layers + 1) <= self.vision_feature_layer <= num_layers:
            raise ValueError(
                f"vision_feature_layer={self.vision_feature_layer} is outside the tower's "
                f"{num_layers + 1} hidden states (use -{num_layers + 1}..{num_layers})"
            )
        if self.vision_feature_select not in FEATURE_SELECTS:
            raise ValueError(
                f"vision_feature_select={self.vision_feature_select!r}; use one of {FEATURE_SELECTS}"
            )
        if PROJECTOR_TYPES.match(self.projector_type) is None:
            raise ValueError(
                f"projector_type={self.projector_type!r}; use 'linear' or 'mlp<N>x_gelu'"
            )
        if vision.image_size % vision.patch_size:
            raise ValueError(
                f"vision image_size={vision.image_size} is not a multiple of patch_size={vision.patch_size}"
            )
        side = math.isqrt(self.video_tokens_per_frame)
        if side * side != self.video_tokens_per_frame or not 1 <= side <= self.patch_grid[0]:
            raise ValueError(
                f"video_tokens_per_frame={self.video_tokens_per_frame} must be a square number "
                f"from 1 to {self.tokens_per_image} (the patches of one frame)"
            )
        if self.video_temporal_embedding not in TEMPORAL_EMBEDDINGS:
            raise ValueError(
                f"video_temporal_embedding={self.video_temporal_embedding!r}; use one of {TEMPORAL_EMBEDDINGS}"
            )
        if not 1 <= self.video_num_frames <= self.video_max_frames:
            raise ValueError(
                f"video_num_frames={self.video_num_frames} must be in 1..video_max_frames={self.video_max_frames}"
            )
        if self.region_marks < 0:
            raise ValueError(f"region_marks={self.region_marks} must be 0 (none) or more")
        if self.region_mlp_depth < 1:
            raise ValueError(f"region_mlp_depth={self.region_mlp_depth} must be at least 1")
        for token, space in self.signal_token_spaces.items():
            if space not in self.signal_spaces:
                raise ValueError(
                    f"signal token {token} maps to space {space!r}, which is not in "
                    f"signal_spaces {sorted(self.signal_spaces)}"
                )
        bad_dims = {k: v for k, v in self.signal_spaces.items() if int(v) < 1}
        if bad_dims:
            raise ValueError(f"signal_spaces need positive dimensions, got {bad_dims}")
        for module, token in self.module_signal_tokens.items():
            if token is not None and token not in self.signal_token_spaces:
                raise ValueError(
                    f"module {module!r} uses signal token {token}, which is not in "
                    f"signal_token_spaces {sorted(self.signal_token_spaces)}"
                )
        unknown = set(self.signal_token_ids) - set(self.signal_token_spaces)
        if unknown:
            raise ValueError(f"signal_token_ids name tokens without a space: {sorted(unknown)}")
        if (
            min(
                self.synergy_specific_dim,
                self.synergy_invariant_dim,
                self.synergy_discriminator_hidden_size,
            )
            < 1
        ):
            raise ValueError("synergy dimensions must be positive")

    # ---- derived quantities (properties, not stored) ----

    @property
    def patch_grid(self) -> tuple[int, int]:
        """(rows, columns) of patches the vision tower produces for one image."""
        side = self.vision_config.image_size // self.vision_config.patch_size
        return side, side

    @property
    def tokens_per_image(self) -> int:
        """Visual tokens one image costs (one per patch; CLS dropped)."""
        rows, cols = self.patch_grid
        return rows * cols + (1 if self.vision_feature_select == "cls_patch" else 0)

    def video_token_count(self, num_frames: int | None = None) -> int:
        """Visual tokens a video of ``num_frames`` sampled frames costs after pooling."""
        frames = self.video_num_frames if num_frames is None else num_frames
        return frames * self.video_tokens_per_frame

    @property
    def modules(self) -> list[str]:
        """Module (tool) names in task-index order."""
        return list(self.module_signal_tokens)

    @property
    def signal_token_id_map(self) -> dict[int, tuple[str, str]]:
        """Signal token id -> (token, decoder space)."""
        return {
            int(token_id): (token, self.signal_token_spaces[token])
            for token, token_id in self.signal_token_ids.items()
        }
