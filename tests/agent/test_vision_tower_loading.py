"""A full CLIP checkpoint (text + vision, as ``vitron pretrain clip`` writes it) loads as a vision
tower with the checkpoint's own vision weights (transformers 5's ``CLIPVisionModel`` has no
``.vision_model`` attribute, so the copy must go to the model itself)."""

from __future__ import annotations

import torch
from transformers import CLIPConfig, CLIPModel

from vitron.agent.modeling.image_encoder import load_vision_tower


def test_a_full_clip_checkpoint_loads_as_its_vision_tower(tmp_path):
    torch.manual_seed(0)
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                  image_size=32, patch_size=8)  # fmt: skip
    text = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2)
    clip = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)).eval()
    clip.save_pretrained(tmp_path)
    tower = load_vision_tower(tmp_path, torch.float32).eval()
    pixels = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        want = clip.vision_model(pixel_values=pixels).last_hidden_state
        got = tower(pixel_values=pixels).last_hidden_state
    torch.testing.assert_close(got, want)
