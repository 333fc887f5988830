"""``VitronForCausalLM``: a causal-LM backbone reading image, video and region tokens.

Placeholders are real positions (LLaVA style): the processor expands each ``<image>`` into one
placeholder token per visual token, each ``<video>`` into one per pooled video token, and each
``<region>`` stays one token. The model finds placeholders by token id, checks that their count
matches the media given (the error shows both numbers), and scatters the encoded features into
``inputs_embeds`` in reading order (batch row, then position). Generation works from
``input_ids`` + media (features are scattered at prefill) or from ``inputs_embeds`` built with
:meth:`VitronForCausalLM.embed_inputs`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers import AutoModel, AutoModelForCausalLM, GenerationMixin, PreTrainedModel
from transformers.cache_utils import Cache
from transformers.modeling_outputs import CausalLMOutputWithPast

from vitron.agent.configuration import VitronConfig
from vitron.agent.modeling.cache_compat import CACHE_KEY, cache_kwargs, cache_of, pop_cache
from vitron.agent.modeling.image_encoder import ImageEncoder, PatchFeatures
from vitron.agent.modeling.projector import MultimodalProjector
from vitron.agent.modeling.region_encoder import RegionEncoder
from vitron.agent.modeling.signal_heads import (
    SignalEmbedding,
    SignalHeads,
    extract_signal_embeddings,
)
from vitron.agent.modeling.synergy import SynergyModule, pool_invocation_states
from vitron.agent.modeling.video_encoder import VideoEncoder, VideoTokenCount, sinusoidal_positions

logger = logging.getLogger(__name__)

VideoPixels = torch.Tensor | Sequence[torch.Tensor]
"""(V, T, 3, S, S), or a list of (T_i, 3, S, S) when videos have different frame counts."""


@dataclass
class VitronCausalLMOutput(CausalLMOutputWithPast):
    """Forward output: transformers' causal-LM output plus the final hidden state.

    ``logits`` (B, L, vocab); ``last_hidden_state`` (B, L, H) is the final-norm state the LM
    head reads (signal embeddings are read from it); ``hidden_states`` is the per-layer tuple
    when requested, its last element equal to ``last_hidden_state``. The cache field is the
    installed transformers' own (``cache`` from 5.24, ``past_key_values`` before); read it with
    :func:`~vitron.agent.modeling.cache_compat.cache_of`.
    """

    last_hidden_state: torch.Tensor | None = None


def scatter_placeholders(
    embeds: torch.Tensor,
    input_ids: torch.Tensor,
    token_id: int,
    features: torch.Tensor,
    *,
    name: str,
    given: str,
) -> torch.Tensor:
    """Write ``features`` (n, H) into ``embeds`` (B, L, H) where ``input_ids == token_id``.

    Rows of ``features`` fill placeholders in reading order (row-major over (B, L)). A count
    mismatch raises ``ValueError`` naming the placeholder, the count found and what ``given``
    media provide.
    """
    mask = input_ids == token_id
    found = int(mask.sum())
    if found != features.shape[0]:
        raise ValueError(
            f"input_ids hold {found} {name} placeholder token(s) but {given} = "
            f"{features.shape[0]} feature token(s); expand placeholders with VitronProcessor so "
            "each medium gets exactly its token count"
        )
    return embeds.masked_scatter(mask.unsqueeze(-1), features.to(embeds.dtype))


def _is_prefill(past_key_values: Cache | None) -> bool:
    return past_key_values is None or past_key_values.get_seq_length() == 0


class VitronPreTrainedModel(PreTrainedModel):
    config_class = VitronConfig
    config: VitronConfig
    base_model_prefix = "vitron"
    input_modalities = ("image", "video", "text")
    supports_gradient_checkpointing = True
    _skip_keys_device_placement = [CACHE_KEY]
    _supports_flash_attn = True
    _supports_sdpa = True
    _supports_flex_attn = True
    _supports_attention_backend = True

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, VideoEncoder) and module.temporal_embedding == "sinusoidal":
            codes = sinusoidal_positions(module.max_frames, module.frame_codes.shape[-1])
            module.frame_codes.copy_(codes.to(module.frame_codes.dtype))


class VitronForCausalLM(VitronPreTrainedModel, GenerationMixin):
    """The Vitron LLM: backbone + image/video/region encoders + projector + signal heads + synergy.

    Parts may be passed in (a pretrained backbone or tower); otherwise they are built from
    ``config.text_config`` / ``config.vision_config``.
    """

    def __init__(
        self,
        config: VitronConfig,
        language_model: PreTrainedModel | None = None,
        vision_tower: PreTrainedModel | None = None,
    ) -> None:
        super().__init__(config)
        if language_model is not None:
            config.text_config = language_model.config
        if vision_tower is not None:
            config.vision_config = vision_tower.config
        if language_model is not None or vision_tower is not None:
            config.validate_glue()
        self.language_model = language_model or AutoModelForCausalLM.from_config(config.text_config)
        tower = vision_tower or AutoModel.from_config(config.vision_config)
        vision_dim = config.vision_config.hidden_size
        text_dim = config.text_config.hidden_size
        self.image_encoder = ImageEncoder(
            tower, config.vision_feature_layer, config.vision_feature_select
        )
        self.video_encoder = VideoEncoder(
            vision_dim,
            config.video_tokens_per_frame,
            config.video_temporal_embedding,
            config.video_max_frames,
        )
        self.projector = MultimodalProjector(
            vision_dim, text_dim, config.projector_type, config.projector_bias
        )
        self.region_encoder = RegionEncoder(
            vision_dim, text_dim, config.region_mlp_depth, config.region_marks
        )
        self.signal_heads = SignalHeads(
            text_dim, config.signal_spaces, config.signal_head_hidden_size
        )
        self.synergy = SynergyModule(
            text_dim,
            config.synergy_specific_dim,
            config.synergy_invariant_dim,
            max(2, len(config.module_signal_tokens)),
            discriminator_hidden_size=config.synergy_discriminator_hidden_size,
            grl_lambda=config.synergy_grl_lambda,
            enabled=config.synergy_enabled,
        )
        self.post_init()

    # ---- embeddings plumbing (lets resize_token_embeddings, PEFT and generate work) ----

    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.language_model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module | None:
        return self.language_model.get_output_embeddings()

    def set_output_embeddings(self, value: nn.Module) -> None:
        self.language_model.set_output_embeddings(value)

    def get_decoder(self) -> nn.Module:
        return self.language_model.get_decoder()

    # ---- media encoders ----

    def encode_images(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, PatchFeatures]:
        """(N, 3, S, S) -> ((N, tokens_per_image, H) LLM tokens, vision patch features)."""
        features = self.image_encoder(pixel_values)
        return self.projector(features.features), features

    def encode_videos(self, pixel_values_videos: VideoPixels) -> list[torch.Tensor]:
        """Videos -> one (T_i * tokens_per_frame, H) LLM token tensor per video."""
        if isinstance(pixel_values_videos, torch.Tensor):
            if pixel_values_videos.ndim != 5:
                raise ValueError(
                    f"pixel_values_videos must be (V, T, 3, S, S), got {tuple(pixel_values_videos.shape)}"
                )
            groups = [pixel_values_videos]
        else:
            groups = [v.unsqueeze(0) for v in pixel_values_videos]
        out: list[torch.Tensor] = []
        for group in groups:
            videos, frames = group.shape[:2]
            patches = self.image_encoder(group.flatten(0, 1))
            per_frame = patches.patches.reshape(videos, frames, -1, patches.patches.shape[-1])
            pooled = self.video_encoder(per_frame, patches.grid)
            out.extend(self.projector(pooled).unbind(0))
        return out

    def video_token_count(self, num_frames: int) -> VideoTokenCount:
        """Token cost of a video with ``num_frames`` frames, with the unpooled cost for comparison."""
        return self.video_encoder.token_count(num_frames, self.image_encoder.grid)

    def encode_regions(
        self,
        patches: PatchFeatures,
        region_masks: torch.Tensor,
        region_image_index: torch.Tensor | None,
    ) -> torch.Tensor:
        """(R, H, W) masks on the images behind ``patches`` -> (R, text_dim) region tokens."""
        sources = self._region_sources(region_masks, region_image_index, patches.features.shape[0])
        return self.region_encoder(
            patches.patches,
            patches.grid,
            region_masks.to(patches.features.device),
            sources.to(patches.features.device),
        )

    @staticmethod
    def _region_sources(
        region_masks: torch.Tensor, region_image_index: torch.Tensor | None, images: int
    ) -> torch.Tensor:
        """(R,) the image each region mask is drawn on (all on the one image when not given)."""
        if region_image_index is not None:
            return region_image_index.to(region_masks.device)
        if images != 1:
            raise ValueError(
                f"{region_masks.shape[0]} region mask(s) with {images} images: "
                "pass region_image_index to say which image each mask is drawn on"
            )
        return torch.zeros(region_masks.shape[0], dtype=torch.long, device=region_masks.device)

    def embed_inputs(
        self,
        input_ids: torch.LongTensor,
        pixel_values: torch.Tensor | None = None,
        pixel_values_videos: VideoPixels | None = None,
        region_masks: torch.Tensor | None = None,
        region_image_index: torch.Tensor | None = None,
        region_marked: torch.Tensor | None = None,
        *,
        check_placeholders: bool = True,
    ) -> torch.Tensor:
        """(B, L) ids + media -> (B, L, H) input embeddings with media features scattered in.

        Images fill ``<image>`` placeholders (``tokens_per_image`` each), videos ``<video>``
        placeholders (``frames * tokens_per_frame`` each), region masks ``<region>``
        placeholders (one each). ``region_marked`` (R,) bool says which regions lay their mark on
        their image's tokens (default: all; the processor's object tokens do not). With
        ``check_placeholders``, placeholders without media are an error too.
        """
        config = self.config
        embeds = self.get_input_embeddings()(input_ids)
        patches: PatchFeatures | None = None
        if pixel_values is not None:
            tokens, patches = self.encode_images(pixel_values)
            if region_masks is not None:  # which image each region is on, worked out once
                region_image_index = self._region_sources(
                    region_masks, region_image_index, tokens.shape[0]
                )
                marked = (
                    torch.ones(region_masks.shape[0], dtype=torch.bool)
                    if region_marked is None
                    else region_marked.to(torch.bool)
                ).to(region_masks.device)
                if marked.shape != (region_masks.shape[0],):
                    raise ValueError(
                        f"region_marked must be ({region_masks.shape[0]},) for "
                        f"{region_masks.shape[0]} region masks, got {tuple(marked.shape)}"
                    )
                tokens = self.region_encoder.mark_images(
                    tokens,
                    patches.grid,
                    region_masks[marked].to(tokens.device),
                    region_image_index[marked.to(region_image_index.device)],
                    num_prefix=patches.num_prefix,
                )
            embeds = scatter_placeholders(
                embeds,
                input_ids,
                self._token_id("image"),
                tokens.flatten(0, 1),
                name=config.image_token,
                given=f"pixel_values give {tokens.shape[0]} image(s) x {tokens.shape[1]} tokens",
            )
        elif check_placeholders:
            self._check_absent(input_ids, config.image_token_id, config.image_token, "pixel_values")
        if pixel_values_videos is not None:
            videos = self.encode_videos(pixel_values_videos)
            counts = " + ".join(str(v.shape[0]) for v in videos)
            embeds = scatter_placeholders(
                embeds,
                input_ids,
                self._token_id("video"),
                torch.cat(videos),
                name=config.video_token,
                given=f"pixel_values_videos give {len(videos)} video(s) of {counts} tokens",
            )
        elif check_placeholders:
            self._check_absent(
                input_ids, config.video_token_id, config.video_token, "pixel_values_videos"
            )
        if region_masks is not None:
            if patches is None:
                raise ValueError(
                    "region_masks need the images they are drawn on: pass pixel_values too"
                )
            regions = self.encode_regions(patches, region_masks, region_image_index)
            embeds = scatter_placeholders(
                embeds,
                input_ids,
                self._token_id("region"),
                regions,
                name=config.region_token,
                given=f"region_masks give {regions.shape[0]} region(s) x 1 token",
            )
        elif check_placeholders:
            self._check_absent(
                input_ids, config.region_token_id, config.region_token, "region_masks"
            )
        return embeds

    def embed_batch(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """A processor batch -> ``{"inputs_embeds", "attention_mask"}`` for ``generate(**...)``
        or a manual decoding loop (the ``inputs_embeds`` path)."""
        media = ("pixel_values", "pixel_values_videos", "region_masks", "region_image_index",
                 "region_marked")  # fmt: skip
        embeds = self.embed_inputs(batch["input_ids"], **{k: batch[k] for k in media if k in batch})
        return {"inputs_embeds": embeds, "attention_mask": batch["attention_mask"]}

    def _token_id(self, kind: str) -> int:
        token_id = getattr(self.config, f"{kind}_token_id")
        if token_id is None:
            raise ValueError(
                f"config.{kind}_token_id is not set: add the Vitron tokens to the tokenizer "
                "(vitron.agent.tokens.add_vitron_tokens) and store their ids in the config"
            )
        return int(token_id)

    @staticmethod
    def _check_absent(
        input_ids: torch.Tensor, token_id: int | None, name: str, argument: str
    ) -> None:
        if token_id is None:
            return
        found = int((input_ids == token_id).sum())
        if found:
            raise ValueError(
                f"input_ids hold {found} {name} placeholder token(s) but no {argument} were given"
            )

    # ---- forward / generation ----

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        past_key_values: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        pixel_values: torch.Tensor | None = None,
        pixel_values_videos: VideoPixels | None = None,
        region_masks: torch.Tensor | None = None,
        region_image_index: torch.Tensor | None = None,
        region_marked: torch.Tensor | None = None,
        use_cache: bool | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        **kwargs: Any,
    ) -> VitronCausalLMOutput:
        """Causal-LM forward over text with media scattered in.

        Returns logits (B, L, vocab) (only the last ``logits_to_keep`` positions when > 0), the
        final ``last_hidden_state`` (B, L, H), the cache, and, when ``labels`` (B, L) are given
        (-100 = ignored), the next-token loss.
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids and inputs_embeds")
        kwargs.pop("return_dict", None)
        past_key_values = pop_cache(kwargs, past_key_values)
        if inputs_embeds is None:
            inputs_embeds = self.embed_inputs(
                input_ids,
                pixel_values,
                pixel_values_videos,
                region_masks,
                region_image_index,
                region_marked,
                check_placeholders=_is_prefill(past_key_values),
            )
        elif any(x is not None for x in (pixel_values, pixel_values_videos, region_masks)):
            raise ValueError(
                "media inputs need input_ids; with inputs_embeds, build them with embed_inputs()"
            )
        outputs = self.get_decoder()(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=use_cache,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
            **cache_kwargs(past_key_values),
            **kwargs,
        )
        last = outputs.last_hidden_state
        if isinstance(logits_to_keep, int):
            kept = last if logits_to_keep == 0 else last[:, -logits_to_keep:]
        else:
            kept = last[:, logits_to_keep]
        logits = self.get_output_embeddings()(kept)
        loss = None
        if labels is not None:
            loss = self.loss_function(logits=logits, labels=labels, vocab_size=logits.shape[-1])
        hidden_states = outputs.hidden_states
        if hidden_states is not None:
            hidden_states = (*hidden_states[:-1], last)
        return VitronCausalLMOutput(
            loss=loss,
            logits=logits,
            **cache_kwargs(cache_of(outputs)),
            hidden_states=hidden_states,
            attentions=outputs.attentions,
            last_hidden_state=last,
        )

    def prepare_inputs_for_generation(
        self,
        input_ids: torch.LongTensor,
        *args: Any,
        inputs_embeds: torch.Tensor | None = None,
        is_first_iteration: bool | None = False,
        **kwargs: Any,
    ) -> dict:
        """Media go in at prefill only; decode steps feed one token through the cache.

        Every other argument passes through unchanged, so the parent's signature (which changes
        across transformers 5.x: ``cache_position``, ``next_sequence_length``, ``cache``) is
        never restated here (``inputs_embeds`` is named because ``generate`` looks for it).
        """
        inputs = super().prepare_inputs_for_generation(
            input_ids,
            *args,
            inputs_embeds=inputs_embeds,
            is_first_iteration=is_first_iteration,
            **kwargs,
        )
        if not is_first_iteration and kwargs.get("use_cache", True):
            for key in (
                "pixel_values",
                "pixel_values_videos",
                "region_masks",
                "region_image_index",
                "region_marked",
            ):
                inputs.pop(key, None)
        return inputs

    # ---- signal embeddings ----

    def signal_embeddings(
        self,
        hidden_states: torch.Tensor,
        input_ids: torch.Tensor,
        *,
        start: int = 0,
        expected: int | Sequence[int] | None = None,
    ) -> list[SignalEmbedding]:
        """Embeddings of the signal tokens in ``input_ids`` (B, L) at positions >= ``start``.

        ``hidden_states`` is (B, L, H) or (B, L - 1, H) ``last_hidden_state``; see
        :func:`~vitron.agent.modeling.signal_heads.extract_signal_embeddings`.
        """
        return extract_signal_embeddings(
            hidden_states,
            input_ids,
            self.signal_heads,
            self.config.signal_token_id_map,
            start=start,
            expected=expected,
        )

    def embed_signal(self, token_id: int, hidden: torch.Tensor) -> torch.Tensor:
        """One signal token's embedding from the (H,) state that predicted it (streaming use)."""
        mapping = self.config.signal_token_id_map
        if int(token_id) not in mapping:
            raise ValueError(
                f"token id {token_id} is not a signal token; signal ids: {sorted(mapping)}"
            )
        return self.signal_heads(hidden, mapping[int(token_id)][1])

    def generated_signal_embeddings(
        self, output: Any, *, expected: int | Sequence[int] | None = None
    ) -> list[SignalEmbedding]:
        """Signal embeddings of the tokens produced by ``generate(..., output_hidden_states=True,
        return_dict_in_generate=True)``.

        Works for both generation paths: from ``input_ids`` (``sequences`` hold prompt + new
        tokens) and from ``inputs_embeds`` (``sequences`` hold only new tokens). Positions in the
        result count from the start of the prompt.
        """
        steps = getattr(output, "hidden_states", None)
        if not steps:
            raise ValueError(
                "generate() must be called with output_hidden_states=True, return_dict_in_generate=True"
            )
        states = torch.cat([step[-1] for step in steps], dim=1)  # (B, prompt + new - 1, H)
        sequences = output.sequences
        new = len(steps)
        prompt = states.shape[1] - new + 1
        if sequences.shape[1] == new:  # inputs_embeds path: prepend stand-ins for the prompt
            filler = torch.full(
                (sequences.shape[0], prompt), -1, dtype=sequences.dtype, device=sequences.device
            )
            sequences = torch.cat([filler, sequences], dim=1)
        if sequences.shape[1] != prompt + new:
            raise ValueError(
                f"generation output does not line up: {sequences.shape[1]} tokens, "
                f"{states.shape[1]} states, {new} steps"
            )
        return self.signal_embeddings(states, sequences, start=prompt, expected=expected)

    # ---- synergy (training) ----

    def synergy_losses(
        self, hidden_states: torch.Tensor, invocation_mask: torch.Tensor, task_ids: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Synergy loss terms for (B, L, H) states pooled over (B, L) invocation spans, (B,) tasks.

        Empty when synergy is switched off (``model.synergy.enabled = False``).
        """
        if not self.synergy.enabled:
            return {}
        pooled = pool_invocation_states(hidden_states, invocation_mask)
        return self.synergy(pooled, task_ids).losses

    def task_index(self, module: str) -> int:
        """Task index of a module for the synergy discriminator (order of ``config.modules``)."""
        modules = self.config.modules
        if module not in modules:
            raise ValueError(f"unknown module {module!r}; modules: {modules}")
        return modules.index(module)
