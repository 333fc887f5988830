"""The Vitron LLM's modules, one ``nn.Module`` family per file, and the composite model.

Importing this package registers ``VitronConfig`` / ``VitronForCausalLM`` with transformers'
Auto classes (model type ``vitron``), which is cheap and loads no weights.
"""

from transformers import AutoConfig, AutoModelForCausalLM

from vitron.agent.configuration import VitronConfig
from vitron.agent.modeling.image_encoder import ImageEncoder, PatchFeatures
from vitron.agent.modeling.projector import MultimodalProjector
from vitron.agent.modeling.region_encoder import RegionEncoder, mask_box_batch, mask_patch_weights
from vitron.agent.modeling.signal_heads import (
    SignalEmbedding,
    SignalHead,
    SignalHeads,
    extract_signal_embeddings,
    find_signal_positions,
    group_by_space,
)
from vitron.agent.modeling.synergy import (
    GradientReversal,
    SynergyModule,
    SynergyOutput,
    invocation_mask,
    pool_invocation_states,
    reverse_gradient,
)
from vitron.agent.modeling.video_encoder import VideoEncoder, VideoTokenCount
from vitron.agent.modeling.vitron_model import (
    VitronCausalLMOutput,
    VitronForCausalLM,
    VitronPreTrainedModel,
    scatter_placeholders,
)

AutoConfig.register(VitronConfig.model_type, VitronConfig, exist_ok=True)
AutoModelForCausalLM.register(VitronConfig, VitronForCausalLM, exist_ok=True)

__all__ = [
    "GradientReversal",
    "ImageEncoder",
    "MultimodalProjector",
    "PatchFeatures",
    "RegionEncoder",
    "SignalEmbedding",
    "SignalHead",
    "SignalHeads",
    "SynergyModule",
    "SynergyOutput",
    "VideoEncoder",
    "VideoTokenCount",
    "VitronCausalLMOutput",
    "VitronConfig",
    "VitronForCausalLM",
    "VitronPreTrainedModel",
    "extract_signal_embeddings",
    "find_signal_positions",
    "group_by_space",
    "invocation_mask",
    "mask_box_batch",
    "mask_patch_weights",
    "pool_invocation_states",
    "reverse_gradient",
    "scatter_placeholders",
]
