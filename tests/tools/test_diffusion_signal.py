"""Signal conditioning of the diffusion backends: a signal changes the output; without one the
output is the text-only path's, pixel for pixel — including diffusers' own text-only path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vitron.tools.backend import Services, build_tools
from vitron.tools.models.diffusion_common import Prompt, append_tokens, encode_text
from vitron.tools.profiles import load_profile
from vitron.tools.registry import ModelRegistry

TINY_SIGNAL_DIM = 32  # the tiny planner's "diffusion" space


@pytest.fixture
def signal(workspace):
    return workspace.put_embedding(
        torch.randn(TINY_SIGNAL_DIM, generator=torch.Generator().manual_seed(0))
    )


def test_no_signal_equals_diffusers_text_only_path(tiny_models):
    """Our conditioning (text states computed here) reproduces StableDiffusionPipeline's own."""
    engine = tiny_models.get("text_to_image")
    ours = engine.generate(
        Prompt("a lighthouse at dusk"), width=32, height=32, seed=11, steps=2, guidance=7.5,
        progress=lambda _: None,
    ).pixels  # fmt: skip
    theirs = engine.pipe(
        "a lighthouse at dusk", width=32, height=32, num_inference_steps=2, guidance_scale=7.5,
        generator=torch.Generator().manual_seed(11), output_type="np",
    ).images[0]  # fmt: skip
    assert np.array_equal(ours, (np.clip(theirs, 0, 1) * 255).round().astype(np.uint8))

    cond, uncond = engine.encode(Prompt("a lighthouse at dusk"))
    ref_cond, ref_uncond = engine.pipe.encode_prompt(
        "a lighthouse at dusk", torch.device("cpu"), 1, True, ""
    )
    assert torch.equal(cond, ref_cond) and torch.equal(uncond, ref_uncond)


def test_signal_tokens_are_appended_and_the_negative_padded():
    cond, uncond = torch.randn(1, 77, 8), torch.randn(1, 77, 8)
    extra = torch.randn(3, 8)
    new_cond, new_uncond = append_tokens(cond, uncond, extra)
    assert new_cond.shape == new_uncond.shape == (1, 80, 8)
    assert torch.equal(new_cond[:, :77], cond) and torch.equal(new_cond[0, 77:], extra)
    assert torch.equal(new_uncond[:, :77], uncond)
    assert torch.equal(new_uncond[0, 77:], uncond[0, -1:].expand(3, 8))


def test_clip_skip_path_matches_the_penultimate_layer(tiny_models):
    engine = tiny_models.get("image_to_video")
    encoder = engine.pipe.text_encoder
    states = encode_text(engine.pipe.tokenizer, encoder, ["a"], torch.device("cpu"), clip_skip=1)
    ids = engine.pipe.tokenizer(["a"], padding="max_length", max_length=77, return_tensors="pt")
    with torch.inference_mode():
        hidden = encoder(ids.input_ids, output_hidden_states=True).hidden_states[-2]
        assert torch.equal(states, encoder.final_layer_norm(hidden))


CASES = {
    "generate_image": {"instruction": "a cat"},
    "generate_image (GLIGEN)": {
        "instruction": "a cat", "regions": [[0.2, 0.2, 0.8, 0.8]], "phrases": ["a cat"],
    },
    "generate_video": {"instruction": "a cat", "frames": 2},
    "image_to_video": {"instruction": "a cat", "frames": 2},
    "edit_image": {"operation": "replace", "instruction": "replace it with a cat"},
    "edit_image (restyle)": {"operation": "restyle", "instruction": "make it blue"},
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_a_signal_changes_the_output_and_no_signal_is_text_only(
    invoke, workspace, photo, signal, case
):
    tool = case.split(" ")[0]
    args = {**CASES[case], "seed": 3}
    if tool in ("image_to_video", "edit_image"):
        args["image"] = photo.handle
    if tool == "edit_image":
        mask = np.zeros((512, 512), dtype=bool)
        mask[100:300, 150:350] = True
        args["mask"] = workspace.put_mask(mask).handle
    key = "video" if "video" in tool else "image"

    # (that the same arguments repeat exactly is each tool's own seed test)
    text_only = invoke(tool, **args)
    hybrid = invoke(tool, signal=signal.handle, **args)
    assert text_only.status == hybrid.status == "success", (text_only.content, hybrid.content)
    assert hybrid.artifact[key] != text_only.artifact[key]
    assert signal.handle in hybrid.content
    assert signal.handle in workspace.describe(hybrid.artifact[key]).inputs


def test_several_stacked_signals_work(invoke, workspace):
    stacked = workspace.put_embedding(torch.randn(2, TINY_SIGNAL_DIM))
    message = invoke("generate_image", instruction="a cat", seed=0, signal=stacked.handle)
    assert message.status == "success", message.content


def test_a_signal_of_the_wrong_size_is_an_error_message(invoke, workspace):
    wrong = workspace.put_embedding(torch.randn(TINY_SIGNAL_DIM + 1))
    message = invoke("generate_image", instruction="a cat", signal=wrong.handle)
    assert message.status == "error" and "dimension 33" in message.content
    cube = workspace.put_embedding(torch.randn(2, 2, TINY_SIGNAL_DIM))
    message = invoke("generate_image", instruction="a cat", signal=cube.handle)
    assert message.status == "error" and "[2, 2, 32]" in message.content
    unknown = invoke("generate_image", instruction="a cat", signal="emb_0123456789abcdef")
    assert unknown.status == "error" and "not in this conversation" in unknown.content


def test_a_projector_that_does_not_fit_the_text_encoder_is_an_error(tmp_path, services, signal):
    profile = tmp_path / "mismatch.toml"
    profile.write_text(
        'name = "mismatch"\n'
        '[components.text_to_image]\nloader = "diffusion"\npipeline = "text_to_image"\n'
        'checkpoint = "tiny"\nsignal_projector = "narrow_signal"\n'
        '[components.narrow_signal]\nloader = "signal_projector"\ncheckpoint = "tiny"\n'
        "in_dim = 32\nout_dim = 16\n"
    )
    mismatched = Services(
        workspace=services.workspace, models=ModelRegistry(load_profile(profile), device="cpu")
    )
    tool = {t.name: t for t in build_tools(mismatched)}["generate_image"]
    message = tool.invoke(
        {"type": "tool_call", "id": "c1", "name": "generate_image",
         "args": {"instruction": "a cat", "signal": signal.handle}},
        {"configurable": {"thread_id": "test-thread"}},
    )  # fmt: skip
    assert message.status == "error"
    assert "'narrow_signal'" in message.content and "width is 32" in message.content


@pytest.mark.parametrize(
    "args",
    [
        {"operation": "remove", "instruction": "remove it"},
        {"operation": "move", "instruction": "move it to the top left"},  # cleared, then pasted
    ],
)
def test_a_pass_that_paints_only_background_leaves_the_signal_aside(
    invoke, workspace, photo, signal, args
):
    """The signal stands for what the request asks to paint; appended to a removal's "empty
    background, nothing there" it drew part of the object back (nano: removals 26.4 dB outside the
    edit with it, 32.0 without). Such passes run on the text alone, the same pixels as without a
    signal, and the result does not name the signal among its inputs."""
    mask = np.zeros((512, 512), dtype=bool)
    mask[200:300, 250:350] = True
    args = {**args, "image": photo.handle, "mask": workspace.put_mask(mask).handle, "seed": 3}
    text_only = invoke("edit_image", **args)
    hybrid = invoke("edit_image", signal=signal.handle, **args)
    assert text_only.status == hybrid.status == "success", (text_only.content, hybrid.content)
    assert np.array_equal(
        np.asarray(workspace.get_image(hybrid.artifact["image"])),
        np.asarray(workspace.get_image(text_only.artifact["image"])),
    )
    assert signal.handle not in hybrid.content
    assert signal.handle not in workspace.describe(hybrid.artifact["image"]).inputs
