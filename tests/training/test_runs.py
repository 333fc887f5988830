"""Runs: SIGKILL + resume reaches the uninterrupted weights; synergy on hides the task from the
invariant features while the task loss falls, off computes nothing; a run directory is a profile
the graph answers with."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from langchain_core.messages import AIMessage
from safetensors.torch import load_file

from tests.training.conftest import tiny_config
from tests.training.data import make_dataset
from vitron.agent.training.records import read_jsonl, write_jsonl
from vitron.agent.training.trainer import Trainer, latest_checkpoint

ROOT = Path(__file__).resolve().parents[2]


def _resume_config(squares: Path, output: Path):
    # ground: LoRA (with dropout, so the RNG state matters) + glue + synergy; 2-step accumulation;
    # 3 batches per epoch... 12 records / batch 2 = 6 batches = 3 optimizer steps per epoch
    return tiny_config(
        squares, output, "ground", batch_size=2, grad_accum=2, epochs=4, checkpoint_every=2,
        keep_checkpoints=50, lora={"dropout": 0.1, "merge": True},
    )  # fmt: skip


@pytest.mark.heavy
def test_sigkill_mid_epoch_then_resume_equals_an_uninterrupted_run(squares, tmp_path):
    config = _resume_config(squares, tmp_path / "whole")
    Trainer(config).run()
    whole = load_file(str(latest_checkpoint(tmp_path / "whole") / "trainable.safetensors"))

    killed = _resume_config(squares, tmp_path / "killed")
    config_file = tmp_path / "killed.json"
    config_file.write_text(killed.model_dump_json())
    script = (
        "import sys; from vitron.agent.training.config import TrainConfig; "
        "from vitron.agent.training.trainer import Trainer; "
        "Trainer(TrainConfig.load(sys.argv[1])).run()"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(config_file)],
        cwd=ROOT, env=os.environ | {"OMP_NUM_THREADS": "1"},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    first = tmp_path / "killed/checkpoints/step-000002/trainer_state.json"
    deadline = time.monotonic() + 120
    while not first.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL, child.stderr.read().decode()[-2000:]
    position = json.loads(first.read_text())["position"]
    assert position["epoch"] == 0 and 0 < position["batch"] < 6  # mid-epoch
    assert not (tmp_path / "killed/profile.toml").exists()  # it did not finish

    resumed = Trainer(killed).run(resume=True)
    assert resumed.steps == 12
    final = load_file(str(latest_checkpoint(tmp_path / "killed") / "trainable.safetensors"))
    assert final.keys() == whole.keys()
    for name, value in whole.items():
        torch.testing.assert_close(final[name], value, atol=1e-6, rtol=0)


def _tasks_only(tmp_path: Path) -> Path:
    root = tmp_path / "tasks"
    make_dataset(root, 96, name="all.jsonl", seed=3)
    records, _ = read_jsonl(root / "all.jsonl")
    write_jsonl(root / "train.jsonl", [r for r in records if r.task])
    return root


def test_synergy_on_drives_the_discriminator_to_chance_while_the_task_loss_falls(tmp_path):
    root = _tasks_only(tmp_path)  # two tasks, segment_image and generate_image, half each
    synergy = {"weight": 2.0, "schedule": "constant", "discriminator_lr_scale": 10.0}
    config = tiny_config(
        root, tmp_path / "on", "invoke", batch_size=8, epochs=100, max_steps=40, lr=3e-3,
        synergy=synergy,
    )  # fmt: skip
    history = Trainer(config).run().history
    accuracy = [h["synergy_disc_acc"] for h in history if "synergy_disc_acc" in h]
    adversarial = [h["synergy_adversarial"] for h in history if "synergy_adversarial" in h]
    summary = [(round(a, 2), round(c, 3)) for a, c in zip(accuracy, adversarial, strict=True)]
    # the discriminator first learns to tell the tasks apart from the invariant part ...
    assert max(accuracy[: len(accuracy) // 2]) >= 0.9, summary
    # ... then the reversed gradient takes that away: its accuracy falls back toward chance
    # (0.5 for two tasks) and its cross entropy sits at chance level, ln 2
    late_accuracy = sum(accuracy[-10:]) / 10
    late_ce = sum(adversarial[-10:]) / 10
    assert late_accuracy <= 0.75 and late_ce > math.log(2) - 0.05, summary
    first = sum(h["lm"] for h in history[:5]) / 5
    last = sum(h["lm"] for h in history[-5:]) / 5
    assert last < first - 0.3  # while the task (language) loss still falls
    assert {"synergy_task", "synergy_orthogonality", "synergy_weight"} <= history[-1].keys()


def test_synergy_off_computes_no_synergy_term(squares, tmp_path):
    trainer = Trainer(
        tiny_config(squares, tmp_path / "off", "invoke", epochs=1, synergy={"enabled": False})
    )
    calls = []
    trainer.module.vitron.synergy.register_forward_hook(lambda *a: calls.append(1))
    history = trainer.run().history
    assert calls == [] and not any(k.startswith("synergy") for h in history for k in h)
    assert not any(p.requires_grad for p in trainer.module.vitron.synergy.parameters())


def test_a_run_directory_is_a_profile_the_graph_answers_with(squares, tmp_path):
    from vitron.agent.chat_model import ChatVitron
    from vitron.graphs import Context, build_graph, user_message
    from vitron.tools.profiles import load_profile

    run = tmp_path / "run"
    Trainer(tiny_config(squares, run, "invoke", epochs=1)).run()
    profile = load_profile(run)
    assert profile.component("vitron_llm").checkpoint == str(run / "llm")
    assert profile.component("sam").checkpoint == "tiny"  # inherited from the base profile
    context = Context(profile=str(run), workspace=str(tmp_path / "ws"), device="cpu", step_limit=2)
    planner = ChatVitron(max_new_tokens=8)
    result = build_graph(planner).invoke(
        {"messages": [user_message("hello")]},
        {"configurable": {"thread_id": "t"}},
        context=context,
    )
    assert isinstance(result["messages"][-1], AIMessage)
    engine = context.services().models.get("vitron_llm")
    trained = load_file(str(run / "llm/model.safetensors"))
    key = next(k for k in trained if "signal_heads" in k)
    loaded = dict(engine.model.named_parameters())[key]
    assert torch.equal(loaded, trained[key])  # the planner runs the run's weights


def test_a_run_profile_decodes_as_its_base_profile(squares, tmp_path):
    """Decoding options are not weights: evaluating a run as a profile must not silently drop the
    base profile's constrained decoding, copied instructions or history window."""
    from vitron.tools.profiles import load_profile

    base = tmp_path / "base.toml"
    base.write_text(
        'extends = "tiny"\n\n[components.vitron_llm]\nloader = "vitron.agent.loading:load_vitron_llm"\n'
        'checkpoint = "tiny"\nconstrained = true\ncopy_instructions = true\nhistory_turns = 1\n'
    )
    run = tmp_path / "run"
    Trainer(tiny_config(squares, run, "ground", epochs=1, profile=str(base))).run()
    options = load_profile(run).component("vitron_llm").options
    assert options["constrained"] is True and options["copy_instructions"] is True
    assert options["history_turns"] == 1
    assert load_profile(run).component("vitron_llm").checkpoint == str(run / "llm")
