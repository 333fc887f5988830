"""A bare vision tower (transformers ``CLIPVisionModel``): not a tool's model, the image tower a
planner is built on (``nano``'s ``clip_tower``, what ``vitron.agent.training.nano`` starts from).

A loader of its own so that the profile entry names what the folder holds, and so that
``Registry.get("clip_tower")`` gives the tower a user would inspect or fine-tune.
"""

from __future__ import annotations

from transformers import CLIPVisionModel

from vitron.tools.checkpoints import load_pretrained
from vitron.tools.profiles import ComponentSpec
from vitron.tools.registry import LoadContext, component_loader


@component_loader("vision_tower")
def load_vision_tower(spec: ComponentSpec, context: LoadContext) -> CLIPVisionModel:
    model = load_pretrained(spec, CLIPVisionModel.from_pretrained)
    return model.to(device=context.device, dtype=context.dtype).eval()
