"""``vitron train --profile nano --quick``: the one command that trains every part of the nano
profile, run end to end with a few steps per part; the profile it writes loads and answers a turn
through the graph, generates and inpaints with the diffusion parts it trained, and a second run
skips what is finished."""

from __future__ import annotations

import inspect
import json
import shutil

import pytest
import torch
from langchain_core.messages import AIMessage
from safetensors.torch import load_file

from vitron.agent.build import load_vitron
from vitron.agent.training.nano import train_nano
from vitron.apps.cli import main
from vitron.apps.nano_build import DIFFUSION_PROFILE_PARTS, PLANNER_PARTS, profile_text, stages
from vitron.tools.pretraining import BACKENDS


@pytest.mark.two_threads  # `make test` runs it alone: it uses both cores
def test_quick_build_writes_a_profile_that_answers_through_the_graph(tmp_path, capsys):
    out = tmp_path / "nano"
    argv = ["train", "--profile", "nano", "--out", str(out), "--seed", "0", "--quick"]
    assert main([*argv, "--threads", "2"]) == 0
    printed = capsys.readouterr().out
    record = json.loads((out / "build.json").read_text())
    assert record["threads"] == 2  # every vitron pretrain ran (and records that it ran) on two
    commands = [p["command"] for p in record["parts"].values() if p["command"].startswith("vitron")]
    assert len(commands) >= 9 and all("--threads 2" in c for c in commands)
    backends = [
        b for b in ("sam", "clip", "clip_tower", "grounding_dino", "sam2_video") if b in BACKENDS
    ]
    diffusion = ["diffusion_vae", "text_to_image", "inpaint", "instruct_pix2pix", "text_to_video",
                 "image_to_video"]  # fmt: skip
    trained = [key for b in backends for key in (*(f"{b}/{s}" for s in stages(b)[:-1]), b)]
    assert list(record["parts"]) == [*trained, *diffusion, "vitron_llm"]  # its signals need them
    for part, info in record["parts"].items():
        assert info["seconds"] > 0 and info["metrics"], part
        assert f"\n{part} " in printed  # the table of wall times and metrics
    assert set(record["parts"]["vitron_llm"]["metrics"]) == {
        "base",
        "regions",
        "align",
        "invoke",
        "ground",
    }
    planner = out / "runs" / "planner"  # reading conversations beside every task's
    assert len((planner / "reading" / "train.jsonl").read_text().splitlines()) == 4
    tower = json.loads((out / "clip_tower" / "config.json").read_text())  # the dense-trained one
    assert tower["model_type"] == "clip_vision_model" and tower["patch_size"] == 8
    base = json.loads((planner / "base" / "train_config.json").read_text())
    assert not base["train_vision_tower"] and len(base["data"]) == 2  # the tower stays as built
    assert base["model"] == str(planner / "init")
    llm_tower = json.loads((out / "vitron_llm" / "config.json").read_text())["vision_config"]
    assert llm_tower["hidden_size"] == tower["hidden_size"]  # built on out/clip_tower
    built = load_file(out / "clip_tower" / "model.safetensors")
    planner_weights = load_file(out / "vitron_llm" / "model.safetensors")
    assert not any(k.startswith("image_encoder.tower.") for k in planner_weights)  # named instead
    note = json.loads((out / "vitron_llm" / "vision_tower.json").read_text())
    assert note == {"source": "../clip_tower"}
    loaded, _ = load_vitron(out / "vitron_llm")
    assert all(torch.equal(loaded.image_encoder.tower.state_dict()[k], v) for k, v in built.items())
    ground = json.loads((planner / "ground" / "train_config.json").read_text())
    assert not ground["train_vision_tower"] and len(ground["data"]) == 2
    llm = json.loads((out / "vitron_llm" / "config.json").read_text())
    assert llm["region_marks"] == 4
    assert record["parts"]["sam"]["command"].startswith("vitron pretrain sam --seed 0 --out ")
    vae = out / "runs" / "diffusion_vae"  # an intermediate: text_to_image/vae/ is its copy
    assert record["parts"]["text_to_image"]["command"].endswith(f"--base {vae}")
    for part in ("inpaint", "instruct_pix2pix", "text_to_video"):
        assert record["parts"][part]["command"].endswith(f"--base {out / 'text_to_image'}")
    assert {"background_right", "objects_kept"} <= set(
        record["parts"]["instruct_pix2pix"]["metrics"]
    )
    assert {"gen_shape", "gen_colour"} <= set(record["parts"]["text_to_image"]["metrics"])
    assert set(record["parts"]["text_to_video"]["metrics"]) == {"frames_right", "direction"}
    assert record["parts"]["image_to_video"]["command"].endswith(f"--base {out / 'text_to_video'}")
    assert set(record["parts"]["image_to_video"]["metrics"]) == {
        "psnr_first",
        "objects_kept",
        "direction",
    }
    # SAM 2 follows its prompt on pictures, then tracks on short clips, then on long ones, twice
    image_stage, video_stage = out / "runs" / "sam2_image", out / "runs" / "sam2_video"
    long_stage = out / "runs" / "sam2_video_long"
    assert record["parts"]["sam2_video/sam2_video"]["command"].endswith(f"--base {image_stage}")
    long_command = record["parts"]["sam2_video/sam2_video_long"]["command"]
    assert long_command.endswith(f"--base {video_stage}")
    assert record["parts"]["sam2_video"]["command"].startswith("vitron pretrain sam2_video_finish ")
    assert record["parts"]["sam2_video"]["command"].endswith(f"--base {long_stage}")
    earlier = (("sam2_image", image_stage), ("sam2_video", video_stage),
              ("sam2_video_long", long_stage))  # fmt: skip
    for stage, folder in earlier:
        kept = json.loads((out / "sam2_video" / f"{stage}_pretrain.json").read_text())
        assert kept["backend"] == stage and f"--out {folder} " in kept["command"]
    kept = json.loads((out / "text_to_image" / "vae_pretrain.json").read_text())
    assert kept["backend"] == "diffusion_vae" and f"--out {vae} " in kept["command"]

    from vitron.tools.profiles import load_profile

    profile = load_profile(record["profile"])
    for part in [*backends, *PLANNER_PARTS, *DIFFUSION_PROFILE_PARTS]:
        assert profile.component(part).checkpoint == str((out / part).resolve()), part
    shipped = load_profile("nano")
    for part in [*DIFFUSION_PROFILE_PARTS, "video_to_video", "gligen"]:  # the committed settings
        assert profile.component(part).options == shipped.component(part).options, part
    restyler = profile.component("video_to_video")  # reads the built text-to-video folder
    assert restyler.checkpoint == str((out / "text_to_video").resolve())
    layouts = profile.component("gligen")  # collages drawn by the built text-to-image folder
    assert layouts.checkpoint == str((out / "text_to_image").resolve())
    assert layouts.options["pipeline"] == "collage"
    signal = profile.component("image_signal")  # aligned in stage 2, at nano's width
    assert not signal.is_tiny and signal.options["out_dim"] == 64
    config = json.loads((out / "image_signal" / "projector_config.json").read_text())
    assert (config["in_dim"], config["out_dim"]) == (32, 64)
    video = json.loads((out / "video_signal" / "projector_config.json").read_text())
    assert (video["in_dim"], video["out_dim"]) == (32, 64)  # [VID], through text_to_video's encoder
    assert profile.component("text_to_video").options["signal_projector"] == "video_signal"
    if "sam2_video" in backends:  # its projector's width follows the nano SAM 2, weights or not
        assert profile.component("sam2_signal").options["out_dim"] == 128

    _generates_and_inpaints(profile, tmp_path / "tools")

    from vitron.agent.chat_model import ChatVitron
    from vitron.apps.session import Session
    from vitron.evals.harness import store_media
    from vitron.evals.shapes.dataset import make_sample
    from vitron.graphs import Context

    context = Context(profile=record["profile"], workspace=str(tmp_path / "ws"), device="cpu",
                      step_limit=2)  # fmt: skip
    session = Session(ChatVitron(max_new_tokens=12), context)
    sample = make_sample("test", 0, tasks=["referring_segmentation"])
    for info in store_media(session.workspace, sample)[0]:
        session.attach_stored(info)
    turn = session.send(sample.instruction)  # what it says is noise after a few steps
    replies = [m for m in turn.messages if isinstance(m, AIMessage)]
    assert replies and replies[-1].response_metadata.get("finish_reason") in ("stop", "length")
    built = str((out / "vitron_llm").resolve())
    assert all(m.response_metadata["model_name"] == built for m in replies)  # the built planner

    weights = out / "vitron_llm" / "model.safetensors"
    before = weights.stat().st_mtime_ns
    assert main(["train", "--profile", "nano", "--out", str(out), "--quick"]) == 0
    again = capsys.readouterr().out
    assert again.count("finished before: skipped") == len(trained) + 1 + len(diffusion)
    assert weights.stat().st_mtime_ns == before  # the planner was not trained again
    assert not (out / "inpaint" / "resume.pt").exists()
    assert json.loads((out / "build.json").read_text())["parts"] == record["parts"]
    assert main(["train", "--profile", "nano", "--out", str(out), "--seed", "1", "--quick"]) == 2
    assert "holds a build with seed 0 (--quick)" in capsys.readouterr().err  # never mixed


def _generates_and_inpaints(profile, root) -> None:  # noqa: ANN001
    """``generate_image`` on the built text-to-image pipeline, at the size the profile sets, and
    the built inpainting pipeline repainting a masked object (Grounding DINO and SAM after two
    steps cannot be trusted to find one for ``edit_image``)."""
    import numpy as np
    from PIL import Image

    from vitron.tools.backend import Services, build_tools
    from vitron.tools.models.diffusion_common import Prompt
    from vitron.tools.pretraining.diffusion_data import edit_example
    from vitron.tools.registry import ModelRegistry
    from vitron.tools.workspace import Workspace

    models = ModelRegistry(profile, device="cpu")
    services = Services(workspace=Workspace(root), models=models)
    (generate,) = [tool for tool in build_tools(services) if tool.name == "generate_image"]
    call = {"type": "tool_call", "id": "call_gen", "name": "generate_image",
            "args": {"instruction": "a small red circle on the left", "seed": 0}}  # fmt: skip
    result = generate.invoke(call, {"configurable": {"thread_id": "t"}})
    assert result.status == "success", result.content
    image = services.workspace.for_thread("t").get_image(result.artifact["image"])
    assert image.size == (32, 32)  # nano.toml's text_to_image width / height
    assert models.get("text_to_image").pipe.vae_scale_factor == 4  # the nano VAE, not tiny's

    example = edit_example(np.random.default_rng(0))
    inpainter = models.get("inpaint")
    assert inpainter.pipe.unet.config.in_channels == 9
    out = inpainter.inpaint(Prompt(example.text), Image.fromarray(example.source), example.mask,
                            seed=0, steps=2, guidance=4.0, progress=lambda event: None,
                            long_side=inpainter.defaults.long_side)  # fmt: skip
    assert out.shape == example.source.shape and out.dtype == np.uint8


def test_a_full_build_retraces_the_committed_parts_step_counts():
    from importlib import resources

    from vitron.apps.nano_build import committed_plan

    folder = resources.files("vitron.tools.profiles") / "nano"
    plan = committed_plan()
    for part in ("sam", "clip", "clip_tower", "grounding_dino", "sam2_video"):
        backend = stages(part)[-1]  # the part's last stage trains its folder
        report = json.loads((folder / part / "pretrain.json").read_text())
        # a continued part: the steps from nothing, which its lineage adds up
        steps = report.get("build_steps") or report["planned_steps"]
        assert plan.backend_steps[backend] == steps
        if "lineage" in report:
            assert steps == sum(run["planned_steps"] for run in report["lineage"])
    for backend, report in (("sam2_image", "sam2_video/sam2_image_pretrain.json"),
                            ("sam2_video", "sam2_video/sam2_video_pretrain.json"),
                            ("diffusion_vae", "text_to_image/vae_pretrain.json"),
                            ("diffusion_text_to_image", "text_to_image/pretrain.json"),
                            ("diffusion_inpaint", "inpaint/pretrain.json"),
                            ("diffusion_text_to_video", "text_to_video/pretrain.json"),
                            ("diffusion_image_to_video", "image_to_video/pretrain.json")):  # fmt: skip
        record = json.loads((folder / report).read_text())
        assert plan.backend_steps[backend] == (record.get("build_steps") or record["planned_steps"])
    training = json.loads((folder / "vitron_llm" / "training.json").read_text())
    assert plan.planner_steps["invoke"] == training["invoke"]["config"]["max_steps"]
    for stage, steps in training.get("build_steps", {}).items():  # a continued planner's
        assert plan.planner_steps[stage] == steps  # steps from nothing win over its last run's
    assert plan.reading_records == training["reading_records"] == 9000  # publish records it
    assert plan.region_records == training["region_records"] == 3000
    assert plan.planner_steps["regions"] == 1000  # the regions step is retraced too
    assert plan.planner_recipe == training["recipe"]  # how the planner reads clips and answers
    assert plan.planner_recipe["vqa_answers"] == "named-first"
    assert plan.planner_recipe["media_labels"] == "names"  # trained on file-like media names
    assert plan.planner_recipe["base_media_labels"] == "world"  # after a base on the world's
    # make nano hands the recipe to train_nano as keywords: each key must be one of its arguments
    inspect.signature(train_nano).bind_partial(**plan.planner_recipe)


def test_profile_file_keeps_the_committed_settings_of_each_part():
    layouts = profile_text(["text_to_image"], "test build")
    assert '[components.gligen]\nloader = "diffusion"\npipeline = "collage"' in layouts
    assert 'checkpoint = "./text_to_image"' in layouts.split("[components.gligen]")[1]
    text = profile_text(["sam", "vitron_llm"], "test build")
    assert 'checkpoint = "./sam"' in text and 'checkpoint = "./vitron_llm"' in text
    assert "constrained = true" in text and "points_per_side = 8" in text  # nano.toml's options
    assert 'extends = "tiny"' in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train"], "needs --config (one stage) or --profile nano"),
        (["train", "--profile", "nano", "--stage", "align"], "--stage configure one stage"),
        (["train", "--config", "x.toml", "--quick"], "--quick and --threads go with --profile"),
        (["train", "--config", "x.toml", "--threads", "2"], "and --threads go with --profile"),
        (["train", "--profile", "nano", "--threads", "0"], "--threads must be at least 1"),
    ],
)
def test_train_arguments_that_do_not_go_together_are_one_clear_error(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_quick_build_refuses_to_overwrite_the_committed_profile(capsys):
    from importlib import resources

    shipped = str(resources.files("vitron.tools.profiles") / "nano")
    assert main(["train", "--profile", "nano", "--out", shipped, "--quick"]) == 2
    assert "would overwrite the committed nano profile" in capsys.readouterr().err


def test_diffusion_parts_chain_by_base_and_a_vanished_vae_is_trained_again(tmp_path, monkeypatch):
    """The order and ``--base`` of each diffusion part, without training: a build whose record
    lists the VAE but whose VAE folder is gone (a cleaned ``runs/``) trains the VAE again rather
    than failing text-to-image on a missing base."""
    from vitron.apps import nano_build

    calls = []

    def fake_pretrain(backend, folder, seed, plan, base=None):  # noqa: ANN001, ANN202
        calls.append((backend, folder, base))
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text("{}")
        report = {"backend": backend, "command": f"vitron pretrain {backend}", "steps": 1,
                  "train_seconds": 1.0, "eval_seconds": 0.5, "metrics": {"m": 1.0}}  # fmt: skip
        (folder / "pretrain.json").write_text(json.dumps(report))
        return report

    monkeypatch.setattr(nano_build, "pretrain", fake_pretrain)
    out, runs = tmp_path / "nano", tmp_path / "nano" / "runs"
    record = {"seed": 0, "quick": True, "parts": {"diffusion_vae": {"seconds": 9.0, "metrics": {}}}}
    nano_build.train_diffusion(out, runs, 0, nano_build.QUICK, record, log=lambda line: None)
    vae = runs / "diffusion_vae"
    assert calls == [("diffusion_vae", vae, None),
                     ("diffusion_text_to_image", out / "text_to_image", vae),
                     ("diffusion_inpaint", out / "inpaint", out / "text_to_image"),
                     ("diffusion_instruct_pix2pix", out / "instruct_pix2pix", out / "text_to_image"),
                     ("diffusion_text_to_video", out / "text_to_video", out / "text_to_image"),
                     ("diffusion_image_to_video", out / "image_to_video", out / "text_to_video")]  # fmt: skip
    assert record["parts"]["diffusion_vae"]["seconds"] == 1.5  # the new run's
    assert json.loads((out / "text_to_image" / "vae_pretrain.json").read_text())["backend"] == (
        "diffusion_vae"
    )
    assert json.loads((out / "build.json").read_text())["parts"] == record["parts"]

    calls.clear()
    shutil.rmtree(vae)  # text-to-image holds its own copy now: the VAE is not needed again
    nano_build.train_diffusion(out, runs, 0, nano_build.QUICK, record, log=lambda line: None)
    assert calls == []  # all finished: nothing trained again
