"""A saved planner that names its frozen image tower instead of carrying a copy."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from vitron.agent.build import build_tiny_vitron, load_vitron, save_vitron
from vitron.agent.shared_tower import TOWER_FILE, TOWER_PREFIX, share_tower


def _keys(folder):
    with safe_open(str(folder / "model.safetensors"), "pt") as weights:
        return list(weights.keys())


@pytest.fixture
def saved(tmp_path):
    """A tiny planner in ``profile/planner`` and its tower alone in ``profile/tower``."""
    model, processor = build_tiny_vitron(seed=0)
    save_vitron(model, processor, tmp_path / "profile" / "planner")
    model.image_encoder.tower.save_pretrained(tmp_path / "profile" / "tower")
    return model, tmp_path / "profile"


def test_a_shared_tower_is_left_out_and_read_back_exactly(saved):
    model, profile = saved
    assert share_tower(profile / "planner", profile / "tower")
    assert not any(k.startswith(TOWER_PREFIX) for k in _keys(profile / "planner"))
    note = json.loads((profile / "planner" / TOWER_FILE).read_text())
    assert note == {"source": "../tower"}
    loaded, _ = load_vitron(profile / "planner")
    expected = model.state_dict()
    assert set(loaded.state_dict()) == set(expected)
    for name, tensor in loaded.state_dict().items():
        assert torch.equal(tensor, expected[name]), name
    buffers = dict(model.named_buffers())  # non-persistent ones too (the tower's position ids)
    for name, tensor in loaded.named_buffers():
        assert torch.equal(tensor, buffers[name]), name


def test_a_tower_that_differs_stays_in_the_weights(saved):
    model, profile = saved
    tower = model.image_encoder.tower
    with torch.no_grad():
        next(tower.parameters()).add_(1e-3)  # as a tower trained with the planner would
    tower.save_pretrained(profile / "tower")
    assert not share_tower(profile / "planner", profile / "tower")
    assert any(k.startswith(TOWER_PREFIX) for k in _keys(profile / "planner"))
    assert not (profile / "planner" / TOWER_FILE).exists()


def test_a_missing_tower_is_a_clear_error_and_a_full_save_drops_the_note(saved):
    model, profile = saved
    share_tower(profile / "planner", profile / "tower")
    (profile / "tower").rename(profile / "elsewhere")
    with pytest.raises(FileNotFoundError, match="leaves its image tower out and names ../tower"):
        load_vitron(profile / "planner")
    _, processor = build_tiny_vitron(seed=0)
    save_vitron(model, processor, profile / "planner")  # the weights hold the tower again
    assert not (profile / "planner" / TOWER_FILE).exists()
    load_vitron(profile / "planner")
