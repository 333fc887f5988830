"""``vitron pretrain``: each backend trains a couple of steps and saves what its loader reads; a run
is fixed by its seed and resumes from its checkpoint to the same weights."""

from __future__ import annotations

import json
import types

import pytest
import torch
from safetensors.torch import load_file

from vitron.apps.cli import main
from vitron.tools.pretraining import make_pretrainer
from vitron.tools.pretraining.clip import WORDS, shapes_tokenizer
from vitron.tools.pretraining.loop import RESUME_NAME, RunSettings, seeded, train
from vitron.tools.profiles import ComponentSpec


def _spec(name: str, path) -> ComponentSpec:  # noqa: ANN001
    return ComponentSpec(name=name, loader=name, checkpoint=str(path), profile="test")


def test_pretrain_sam_command_saves_a_checkpoint_the_sam_loader_reads(tmp_path, capsys):
    from vitron.tools.models.sam import load_sam_model

    out = tmp_path / "sam"
    assert main(["pretrain", "sam", "--seed", "3", "--out", str(out), "--steps", "2",
                 "--eval-count", "2"]) == 0  # fmt: skip
    report = json.loads((out / "pretrain.json").read_text())
    assert report["steps"] == 2 and report["finished"] and report["seed"] == 3
    assert report["command"].startswith("vitron pretrain sam --seed 3")
    assert set(report["metrics"]) == {"box_ciou", "point_ciou"}
    assert not (out / RESUME_NAME).exists()
    model = load_sam_model(_spec("sam", out))
    assert model.image_encoder.img_size == 64
    assert "sam: " in capsys.readouterr().out


def test_pretrain_clip_command_saves_a_folder_the_clip_loader_reads(tmp_path):
    from vitron.tools.models.clip import load_clip

    out = tmp_path / "clip"
    assert main(["pretrain", "clip", "--seed", "1", "--out", str(out), "--steps", "2",
                 "--eval-count", "2"]) == 0  # fmt: skip
    report = json.loads((out / "pretrain.json").read_text())
    assert report["steps"] == 2 and "r_at_1_of_10" in report["metrics"]
    context = types.SimpleNamespace(device=torch.device("cpu"), dtype=torch.float32)
    engine = load_clip(_spec("clip", out), context)
    assert engine.processor.tokenizer.tokenize("a striped red circle") == [
        "a</w>", "striped</w>", "red</w>", "circle</w>"
    ]  # fmt: skip
    assert engine.text_features("a red circle").shape == (64,)
    assert engine.model.config.vision_config.patch_size == 4  # the retriever's: it sees shapes


def test_a_learning_rate_given_replaces_the_backends_and_a_resume_must_keep_it(tmp_path, capsys):
    out = tmp_path / "sam"
    args = ["pretrain", "sam", "--seed", "3", "--out", str(out)]
    assert main([*args, "--steps", "2", "--eval-count", "1", "--learning-rate", "1e-4"]) == 0
    report = json.loads((out / "pretrain.json").read_text())
    assert report["learning_rate"] == 1e-4 and report["command"].endswith("--learning-rate 0.0001")
    assert "learning rate 0.0001" in capsys.readouterr().out
    assert main([*args, "--steps", "1", "--eval-count", "1"]) == 0  # the backend's own rate
    assert json.loads((out / "pretrain.json").read_text())["learning_rate"] == 2e-3

    interrupted = _Interrupting(make_pretrainer("sam", 3), at=1)
    settings = RunSettings(seed=3, out=tmp_path / "cut", steps=2, eval_count=1, checkpoint_every=1,
                           learning_rate=1e-4, log=lambda line: None)  # fmt: skip
    with pytest.raises(KeyboardInterrupt):
        train(interrupted, settings)
    settings.learning_rate = 2e-4
    with pytest.raises(ValueError, match="learning rate 0.0001"):
        train(make_pretrainer("sam", 3), settings)
    assert main([*args, "--learning-rate", "0"]) == 2
    assert "--learning-rate must be positive" in capsys.readouterr().err


def test_unknown_backend_and_bad_steps_are_clear_errors(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["pretrain", "vae", "--out", str(tmp_path)])
    assert "invalid choice" in capsys.readouterr().err
    assert main(["pretrain", "sam", "--out", str(tmp_path), "--steps", "0"]) == 2
    assert "--steps must be at least 1" in capsys.readouterr().err
    assert main(["pretrain", "sam", "--out", str(tmp_path), "--base", str(tmp_path)]) == 2
    assert "--base does not apply to sam" in capsys.readouterr().err


def test_every_shapes_word_is_one_token_and_any_text_still_encodes():
    tokenizer = shapes_tokenizer()
    assert all(len(tokenizer(w, add_special_tokens=False)["input_ids"]) == 1 for w in WORDS)
    ids = tokenizer("a zebra: 42 ü")["input_ids"]
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    assert tokenizer.unk_token_id not in ids[1:-1] and len(ids) > 6


class _Interrupting:
    """A trainer that stops the process (as Ctrl-C would) once, before step ``at``."""

    def __init__(self, inner, at: int) -> None:  # noqa: ANN001
        self.inner, self.at = inner, at

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self.inner, name)

    def loss(self, step: int):  # noqa: ANN201
        if step == self.at:
            self.at = -1
            raise KeyboardInterrupt
        return self.inner.loss(step)


def test_a_run_is_fixed_by_its_seed_and_resumes_to_the_same_weights(tmp_path):
    def settings(out) -> RunSettings:  # noqa: ANN001
        return RunSettings(seed=5, out=out, steps=3, eval_count=1, checkpoint_every=1,
                           warmup=1, log=lambda line: None)  # fmt: skip

    train(make_pretrainer("sam", 5), settings(tmp_path / "straight"))
    interrupted = _Interrupting(make_pretrainer("sam", 5), at=2)
    with pytest.raises(KeyboardInterrupt):
        train(interrupted, settings(tmp_path / "resumed"))
    assert (tmp_path / "resumed" / RESUME_NAME).is_file()
    report = train(make_pretrainer("sam", 5), settings(tmp_path / "resumed"))
    assert report.steps == 3
    straight = load_file(str(tmp_path / "straight" / "model.safetensors"))
    resumed = load_file(str(tmp_path / "resumed" / "model.safetensors"))
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    other = make_pretrainer("sam", 6).model.state_dict()
    assert not torch.equal(other["mask_decoder.iou_token.weight"],
                           straight["mask_decoder.iou_token.weight"])  # fmt: skip


def test_seeded_builds_from_the_seed_alone_and_leaves_the_global_generator_alone():
    torch.manual_seed(11)
    state = torch.random.get_rng_state()
    first = seeded(3, lambda: torch.randn(4))
    assert torch.equal(torch.random.get_rng_state(), state)  # nothing drawn after it shifts
    torch.randn(7)  # whatever ran before does not matter
    assert torch.equal(seeded(3, lambda: torch.randn(4)), first)
    assert not torch.equal(seeded(4, lambda: torch.randn(4)), first)


@pytest.mark.parametrize(
    "backend",
    [
        "sam",
        "clip",
        "clip_tower",
        "grounding_dino",
        "sam2_image",
        "sam2_video",
        "diffusion_vae",
        "diffusion_text_to_image",
    ],
)
def test_each_pretrainer_starts_from_the_same_weights_for_the_same_seed(backend, tmp_path):
    base = None
    if backend == "diffusion_text_to_image":  # it builds on a VAE folder (not part of its model)
        make_pretrainer("diffusion_vae", 0).save(tmp_path)
        base = tmp_path

    def weights(seed: int) -> dict[str, torch.Tensor]:
        torch.randn(seed + 1)  # a different global generator state each time
        return make_pretrainer(backend, seed, base).model.state_dict()

    first, again, other = weights(3), weights(3), weights(4)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)
