"""Profiles, the model registry, and the real loading path (save a tiny model, load it back)."""

from __future__ import annotations

import re
import textwrap

import pytest
import torch

from vitron.tools.errors import MissingCheckpointError, VitronToolError
from vitron.tools.models.grounding_dino import build_tiny_grounding_dino
from vitron.tools.models.sam import build_tiny_sam, save_sam
from vitron.tools.profiles import ProfileError, builtin_profiles, load_profile, parse_size
from vitron.tools.registry import ModelRegistry, nbytes_of


def write_profile(tmp_path, body: str, name: str = "custom"):
    path = tmp_path / f"{name}.toml"
    path.write_text(textwrap.dedent(body))
    return load_profile(path)


def test_builtin_profiles_name_every_component_of_the_core_backends():
    assert {"tiny", "vitron-7b"} <= set(builtin_profiles())
    real = load_profile("vitron-7b")
    assert real.component("grounding_dino").checkpoint == "IDEA-Research/grounding-dino-tiny"
    assert real.component("sam").options["variant"] == "vit_h"
    assert load_profile("tiny").component("sam").is_tiny


def test_profile_errors_say_what_is_wrong(tmp_path):
    with pytest.raises(ProfileError, match="unknown profile 'nope'"):
        load_profile("nope")
    with pytest.raises(ProfileError, match="not valid TOML"):
        write_profile(tmp_path, "name = [")
    with pytest.raises(ProfileError, match="lacks checkpoint"):
        write_profile(tmp_path, '[components.sam]\nloader = "sam"\n')
    with pytest.raises(ProfileError, match="has no component 'no_such_model'"):
        load_profile("tiny").component("no_such_model")
    assert parse_size("1.5GB") == 1_500_000_000 and parse_size("2 MiB") == 2 * 2**20


def test_saved_tiny_sam_loads_back_through_the_profile_path(tmp_path):
    model, arch = build_tiny_sam(seed=3)
    save_sam(model, arch, tmp_path / "sam")
    profile = write_profile(
        tmp_path, f'[components.sam]\nloader = "sam"\ncheckpoint = "{tmp_path / "sam"}"\n'
    )
    engine = ModelRegistry(profile, device="cpu").get("sam")
    for name, tensor in model.state_dict().items():
        assert torch.equal(engine.model.state_dict()[name], tensor), name


def test_saved_tiny_grounding_dino_loads_back_with_from_pretrained(tmp_path, photo, workspace):
    model, processor = build_tiny_grounding_dino(seed=5)
    model.save_pretrained(tmp_path / "gdino")
    processor.save_pretrained(tmp_path / "gdino")
    profile = write_profile(
        tmp_path,
        f'[components.grounding_dino]\nloader = "grounding_dino"\ncheckpoint = "{tmp_path / "gdino"}"\n',
    )
    loaded = ModelRegistry(profile, device="cpu").get("grounding_dino")
    image = workspace.get_image(photo.handle)
    inputs = processor(images=image, text="a person.", return_tensors="pt")
    with torch.inference_mode():
        expected = model(**inputs).logits
        again = loaded.model(
            **loaded.processor(images=image, text="a person.", return_tensors="pt")
        ).logits
    assert torch.allclose(expected, again)


def test_missing_checkpoints_name_the_profile_and_the_file(tmp_path):
    profile = write_profile(
        tmp_path,
        """
        name = "mine"
        [components.sam]
        loader = "sam"
        checkpoint = "/nowhere/sam_vit_h.pth"
        [components.grounding_dino]
        loader = "grounding_dino"
        checkpoint = "/nowhere/gdino"
        [components.hub_sam]
        loader = "sam"
        checkpoint = "some-org/some-repo:sam.pth"
        """,
    )
    registry = ModelRegistry(profile, device="cpu")
    with pytest.raises(
        MissingCheckpointError, match=r"'sam' of profile 'mine'.*/nowhere/sam_vit_h\.pth"
    ):
        registry.get("sam")
    with pytest.raises(
        MissingCheckpointError, match=r"'grounding_dino' of profile 'mine'.*/nowhere/gdino"
    ):
        registry.get("grounding_dino")
    with pytest.raises(
        MissingCheckpointError, match=r"sam\.pth from hub repository some-org/some-repo"
    ):
        registry.get("hub_sam")


def test_unknown_loader_is_a_clear_error(tmp_path):
    profile = write_profile(
        tmp_path, '[components.x]\nloader = "warp_drive"\ncheckpoint = "tiny"\n'
    )
    with pytest.raises(VitronToolError, match="no such loader"):
        ModelRegistry(profile).get("x")


def test_registry_loads_lazily_once_and_evicts_least_recently_used(tmp_path):
    profile = write_profile(
        tmp_path,
        """
        [components.a]
        loader = "signal_projector"
        checkpoint = "tiny"
        in_dim = 256
        out_dim = 256
        [components.b]
        loader = "signal_projector"
        checkpoint = "tiny"
        in_dim = 256
        out_dim = 256
        [components.c]
        loader = "signal_projector"
        checkpoint = "tiny"
        in_dim = 256
        out_dim = 256
        """,
    )
    one = nbytes_of(ModelRegistry(profile, device="cpu").get("a"))
    events = []
    registry = ModelRegistry(profile, device="cpu", memory_budget=2 * one + 10)
    assert registry.loaded() == []  # nothing loads before it is asked for
    a = registry.get("a", events.append)
    assert registry.get("a") is a  # cached
    registry.get("b")
    registry.get("a")  # a is now more recent than b
    registry.get("c")  # the budget fits two: b goes
    assert registry.loaded() == ["a", "c"]
    assert registry.used_bytes() <= registry.memory_budget
    assert [e["status"] for e in events] == ["start", "done"]
    assert registry.get("b") is not None and registry.loaded() == ["c", "b"]


def test_loading_shows_no_library_progress_bars_and_leaves_their_setting_alone(capfd):
    """transformers' "Loading weights" and diffusers' "Loading pipeline components" bars used to
    land between a chat's messages; the registry's own load events say the same in one line."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    assert transformers_logging.is_progress_bar_enabled()
    assert diffusers_logging.is_progress_bar_enabled()
    registry = ModelRegistry(load_profile("nano"), device="cpu")
    events = []
    for name in ("grounding_dino", "text_to_image"):
        registry.get(name, progress=events.append)
    printed = capfd.readouterr()
    assert "Loading" not in printed.err + printed.out
    assert [(e["component"], e["status"]) for e in events] == [
        ("grounding_dino", "start"), ("grounding_dino", "done"),
        ("text_to_image", "start"), ("text_to_image", "done"),
    ]  # fmt: skip
    assert transformers_logging.is_progress_bar_enabled()
    assert diffusers_logging.is_progress_bar_enabled()


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ("bogus", "unknown device 'bogus': use auto, cpu, cuda, cuda:N or mps"),
        ("cuda", "torch finds no CUDA GPU here"),
        ("cuda:1", "torch finds no CUDA GPU here"),
    ],
)
def test_a_device_this_machine_lacks_is_refused_up_front(device, message, monkeypatch):
    """``vitron run --device cuda`` on a CPU machine stopped its first turn with a driver error
    from deep inside torch; the registry now refuses the device when it is made."""
    from vitron.tools.registry import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(VitronToolError, match=re.escape(message)):
        ModelRegistry(load_profile("tiny"), device=device)
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "mps")
