"""The ``nano`` Vitron LLM: the vitron-7b architecture, tokenizer kind and chat template, shrunk.

- Backbone: a 3-layer Llama, hidden 128 (about 0.8 M parameters with its embeddings): what two
  shared CPU cores train in minutes.
- Tokenizer: byte-level BPE with vitron-7b's special tokens (``<s>``, ``</s>``, ``<unk>``), the
  Vitron placeholders, grammar tags and signal tokens; its merges are learned from the planner's
  system prompt, the tool names and shapes-world conversations, so a shapes-world word is mostly
  one token (any text still encodes, byte by byte).
- Image tower: ``tools/profiles/nano/clip_tower``, a 4-layer 128-wide ``CLIPVisionModel`` in 8 px
  patches (64 image tokens a picture) pretrained on dense shapes-world labels by ``vitron pretrain
  clip_tower`` (each patch's object's colour, shape, size and texture: the contrastive nano CLIP's
  patches told colours apart but hardly shapes, so the planner could not name shapes); frozen in
  ``base`` and in Vitron's three stages.
- Region marks (``region_marks`` = 4): the image tokens a region covers carry a learned mark,
  because trained with the ``<region>`` token alone the planner learnt to ignore it.
- Signal spaces: ``sam`` = 64 (the nano SAM's prompt width, what ``sam_signal`` maps from) and
  ``diffusion`` = 32 (the tiny pipelines' text width).

:func:`build_nano_vitron` makes the untrained model that stage 1 starts from.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

NANO_TEXT_CONFIG: dict[str, Any] = {
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "max_position_embeddings": 2048,
    "tie_word_embeddings": False,
}
NANO_GLUE: dict[str, Any] = {
    "vision_feature_layer": -1,
    "video_num_frames": 8,
    "video_tokens_per_frame": 4,
    "video_max_frames": 32,
    "signal_spaces": {"sam": 64, "diffusion": 32},
    "synergy_specific_dim": 32,
    "synergy_invariant_dim": 32,
    "synergy_discriminator_hidden_size": 64,
    "region_marks": 4,
}
NANO_VOCAB = 1024
NANO_PLANNER_PROMPT = "You are Vitron. Call a tool when a request needs pixels; else answer."
"""The nano planner's own instructions (``ChatTemplate.planner_prompt``): it replaces the graph's
generic ~200-token prompt, which would be two thirds of every training sequence."""


def nano_corpus(samples: int = 600, seed: int = 0) -> list[str]:
    """Lines the tokenizer's merges are learned from: the system prompt, module names and grammar,
    and the texts of ``samples`` training-split shapes-world samples (never test data)."""
    from vitron.agent.invocation import MODULES
    from vitron.evals.shapes.dataset import generate

    # Repeated so the merges favour what every prompt holds (the instructions, the listing).
    fixed = [
        NANO_PLANNER_PROMPT,
        " ".join(MODULES),
        "Media in this conversation:",
        "returned failed finished from the user image video mask attached region sketch",
    ]
    lines = fixed * 40
    for sample in generate("train", samples, seed=seed):
        lines += [sample.instruction, sample.answer]
        lines += [str(c.args.get("instruction", "")) for c in sample.calls]
    return [line for line in lines if line.strip()]


def build_nano_tokenizer(
    corpus: Iterable[str], vocab_size: int = NANO_VOCAB
) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer with the Vitron tokens; deterministic for a given corpus."""
    from vitron.agent.tokens import build_bpe_tokenizer

    return build_bpe_tokenizer(corpus, vocab_size=vocab_size, model_max_length=2048)


def build_nano_vitron(
    clip: str | Path, *, seed: int = 0, corpus_samples: int = 600, glue: dict | None = None
) -> tuple[Any, Any]:
    """The untrained nano Vitron (random backbone and glue, the nano CLIP's vision tower) and its
    processor; deterministic for ``seed``. ``glue`` overrides :data:`NANO_GLUE` entries."""
    from vitron.agent.configuration import VitronConfig
    from vitron.agent.inputs import ChatTemplate
    from vitron.agent.modeling import VitronForCausalLM
    from vitron.agent.modeling.image_encoder import load_vision_tower
    from vitron.agent.processing import VitronProcessor
    from vitron.agent.tokens import bind_token_ids, configure_generation

    tokenizer = build_nano_tokenizer(nano_corpus(corpus_samples, seed))
    tower = load_vision_tower(clip, torch.float32)
    text = LlamaConfig(**NANO_TEXT_CONFIG, vocab_size=len(tokenizer))
    config = VitronConfig(text_config=text, vision_config=tower.config, **NANO_GLUE | (glue or {}))
    bind_token_ids(config, tokenizer)
    torch.manual_seed(seed)
    model = VitronForCausalLM(
        config, language_model=LlamaForCausalLM(config.text_config), vision_tower=tower
    )
    with torch.no_grad():  # at the image tokens' scale (norm ~10-20), so they matter from step 1
        model.region_encoder.marks.normal_(0.0, 1.0)
    configure_generation(model, tokenizer)
    template = ChatTemplate(planner_prompt=NANO_PLANNER_PROMPT)
    return model.eval(), VitronProcessor.from_config(tokenizer, model.config, template=template)


# --------------------------------------------------------------------------------------------
# the pipeline: data, the untrained model, stages 1-3


RECIPE_FILE = "recipe.json"
"""What a run was started with beyond step counts and sizes (``glue``, ``data_tasks``,
``reading_tasks``, ``vqa_answers``, ``media_labels``, ``base_media_labels``), kept in the run so a
resume with other values is refused, and copied into the published ``training.json`` so a build
from nothing retraces it."""


def check_glue(glue: dict | None, clip: str | Path | None = None) -> None:
    """``glue`` (overrides of :data:`NANO_GLUE`): unknown keys, and given the tower a run starts
    from (``clip``), the values as ``VitronConfig.validate_glue`` checks them against it, so a bad
    one is refused before a run writes anything. A ValueError names the value."""
    if not glue:
        return
    unknown = sorted(set(glue) - set(NANO_GLUE))
    if unknown:
        raise ValueError(f"unknown glue {unknown}; known: {', '.join(NANO_GLUE)}")
    if clip is not None:
        from transformers import CLIPVisionConfig

        from vitron.agent.configuration import VitronConfig

        text = LlamaConfig(**NANO_TEXT_CONFIG, vocab_size=NANO_VOCAB)
        VitronConfig(text_config=text, vision_config=CLIPVisionConfig.from_pretrained(clip),
                     **NANO_GLUE | glue)  # fmt: skip


def run_recipe(
    run: Path, glue: dict | None, data_tasks: Sequence[str] | None,
    reading_tasks: Sequence[str] | None, vqa_answers: str = "word", media_labels: str = "world",
    base_media_labels: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The run's recipe (only what differs from the defaults), written on the run's first start;
    a run resumed with another one is an error that names both. ``base_media_labels`` is kept
    only where it differs from ``media_labels`` (:func:`relabelled_suffix`)."""
    import json

    from vitron.agent.training.conversations import check_vqa_answers
    from vitron.evals.shapes.dataset import check_tasks
    from vitron.evals.shapes.labels import check_media_labels

    recipe: dict[str, Any] = {}
    if glue:
        check_glue(glue)
        recipe["glue"] = dict(glue)
    for key, tasks, default in (("data_tasks", data_tasks, None),
                                ("reading_tasks", reading_tasks, READING_TASKS)):  # fmt: skip
        if tasks is not None and tuple(tasks) != default:
            recipe[key] = check_tasks(tasks)
    if check_vqa_answers(vqa_answers) != "word":
        recipe["vqa_answers"] = vqa_answers
    if check_media_labels(media_labels) != "world":
        recipe["media_labels"] = media_labels
    if base_media_labels is not None and check_media_labels(base_media_labels) != media_labels:
        recipe["base_media_labels"] = base_media_labels
    path = run / RECIPE_FILE
    started = (run / "data" / "train.jsonl").is_file() or (run / "init" / "config.json").is_file()
    before = json.loads(path.read_text()) if path.is_file() else {}
    if started and before != recipe:
        raise ValueError(
            f"{run} was started with {before or 'the default recipe'}, not {recipe or 'the default'}"
            "; resume it as it was started, or train into a new folder"
        )
    if recipe and not path.is_file():
        path.write_text(json.dumps(recipe, indent=2))
    return recipe


def relabelled_suffix(recipe: dict[str, Any]) -> str:
    """Where the steps after ``base`` read their conversations when ``base`` read them labelled
    another way (``recipe["base_media_labels"]``): ``data<suffix>/`` and ``reading<suffix>/``,
    the same conversations with the media labelled the ``media_labels`` way (``"_names"``);
    ``""`` (``data/``, ``reading/``) when every step reads the same ones.

    Why: a planner whose ``base`` read the world's labels, then the rest read file-like names,
    ignores the labels as a planner trained on names throughout does, and keeps what the one
    trained on the world's labels did better (tools/profiles/nano/README.md, "Media labels")."""
    if "base_media_labels" not in recipe:
        return ""
    return "_" + recipe.get("media_labels", "world")


STAGE_ORDER = ("base", "regions", "align", "invoke", "ground")
"""The run's training steps, each a ``vitron train`` run in the folder of its name. ``regions``
is a ``base``-type continuation (not one of Vitron's stages); with 0 steps (the default) it is
left out."""
DEFAULT_STEPS = {"base": 2400, "regions": 0, "align": 40, "invoke": 150, "ground": 150}
"""Step counts of a run given none (the planner committed until 2026-12-07). The committed
planner's, with the rest of its recipe, are in tools/profiles/nano/vitron_llm/training.json,
which ``make nano`` retraces; its command is in tools/profiles/nano/README.md."""
DEFAULT_REGION_RECORDS = 3000
"""Region-caption conversations (``regions_data/``) that ``regions`` adds to the mix. A planner
taught to answer counts and "is there" by naming objects first described sketched regions worse
(0.807 on 150 test samples, against 0.873); ``--steps regions=500`` with these restored them
(0.880; tools/profiles/nano/README.md, "Rationale answers in the whole planner")."""
REGION_START = 20_000
"""The first training-split sample of ``regions_data/`` (after the ``data/`` and ``reading/``
ones of any build of up to 20 000 conversations)."""
NO_SYNERGY = {"synergy": {"enabled": False}}
"""Stage overrides of the synergy ablation's planner (``vitron eval --ablate synergy``)."""
DEFAULT_RECORDS = 6000
"""Training conversations of the committed planner's run."""
READING_TASKS = ("vqa", "region_caption", "vqa", "temporal_grounding", "vqa", "caption")
"""The tasks of ``reading/``, in turn (a task named twice gets twice the conversations)."""
DEFAULT_READING_RECORDS = 6000
"""Extra conversations of the tasks answered by reading pictures (``reading/``), drawn after the
``records`` ones: with every task at 1/12, the planner read colours but never used its region
token; with 3000 in four equal parts, it answered questions at 0.59 (0.62 on its own training
questions: under-fitted), so half of them are questions."""

MICRO: dict[str, Any] = {
    "records": 600,
    "reading_records": 200,
    "corpus_samples": 100,
    "steps": {"base": 300, "regions": 0, "align": 2, "invoke": 4, "ground": 4},
    "overrides": {"batch_size": 8, "lr": 3e-3, "warmup_steps": 10, "checkpoint_every": 1000},
    "stage_overrides": {"base": {"train_vision_tower": True}},
}
"""``train_nano`` arguments of a micro run of the same pipeline, about 2.5 minutes on two cores
(``--micro``): what CI trains from nothing to check that the pipeline still learns
(``tests/training/test_micro_pipeline.py``). Its planner routes most requests to the right tool,
and through the committed backends segments, grounds, tracks and retrieves well above chance; it
does not learn to read pictures (tools/profiles/nano/README.md). Its ``base`` also trains the
tower: with the tower frozen, seed 0's 300 (or 400) steps sent referring requests to the wrong
tool (cIoU 0.149, module 0.73 over the tool tasks); with it trained, 0.513 and 0.84."""


SIGNAL_ROUTES = {"[SEG]": {"decoder": "sam", "projector": "sam_signal", "fresh": True},
                 "[TRK]": {"decoder": "sam2_video", "projector": "sam2_signal", "fresh": True},
                 "[GEN]": {"decoder": "text_to_image", "projector": "image_signal", "fresh": True},
                 "[EDIT]": {"decoder": "inpaint", "projector": "image_signal", "fresh": True},
                 "[VID]": {"decoder": "text_to_video", "projector": "video_signal", "fresh": True}}  # fmt: skip
"""Signals stage 2 aligns through the profile's frozen backends: the trained nano SAM and SAM 2
(mask losses), the nano text-to-image and inpainting pipelines, which share one projector,
``image_signal``, named by their profile entries (``[GEN]``: the caption's text-encoder states
plus one denoising step of the UNet on the wanted picture; ``[EDIT]``: the caption's states, as
the inpainting UNet takes other inputs), and the nano text-to-video pipeline (``[VID]``, for
``generate_video`` and ``image_to_video``, whose pipelines share a text encoder of their own:
the caption's states, as the 3-D UNet takes clips, not a picture). The projectors start fresh,
not from the ones the profile already ships, so the command regenerates what it published."""
PROJECTORS = ("sam_signal", "sam2_signal", "image_signal", "video_signal")
"""The aligned projectors a run publishes beside its planner."""


def stage_configs(
    run: Path,
    *,
    seed: int,
    profile: str,
    steps: dict[str, int],
    overrides: dict | None = None,
    stage_overrides: dict[str, dict] | None = None,
    relabelled: str = "",
) -> dict[str, dict]:
    """The run's ``vitron train`` configs (as dicts) for a pipeline under ``run``: ``base``,
    ``regions``, then Vitron's three stages, in order, each starting from the one before (``base``
    from ``init/``).

    ``base`` trains every weight of the LLM built from nothing, the tower frozen as LLaVA keeps
    its CLIP (the language and vision training a pretrained backbone already has, so without
    synergy: Vicuna had none, and at nano size an adversarial term from step 0 doubled the LM
    loss, 0.26 vs 0.11). Trained there with the LLM at 2e-3, the dense-pretrained tower's
    features grew from norm 45 to 318 and the planner stopped reading pictures (region captions
    0.03 against 0.87 with it frozen). Then Vitron's three stages
    as the paper has them, synergy on. Stages 2
    and 3 use LoRA at full rank (r = hidden size) on every linear layer, which at this size is as
    expressive as a full fine-tune while keeping the stages' exact trainable sets; stage 2 aligns
    the signals of :data:`SIGNAL_ROUTES` through the profile's frozen decoders. ``overrides`` (e.g.
    ``{"batch_size": 4}``) apply to every stage, ``stage_overrides[stage]`` to that one after them.
    ``regions`` (between ``base`` and stage 1) continues ``base`` at 5e-4 with
    ``regions_data/``'s region captions added to the mix (:data:`DEFAULT_REGION_RECORDS`); a step
    with 0 steps is left out. Every step after ``base`` reads ``data<relabelled>/`` and
    ``reading<relabelled>/`` (:func:`relabelled_suffix`), ``base`` always ``data/`` and ``reading/``.
    """

    def records(*parts: str) -> list[dict]:
        return [{"format": "records", "root": str(run / part), "options": {"files": ["train.jsonl"]}}
                for part in parts if (run / part / "train.jsonl").is_file()]  # fmt: skip

    data = records("data", "reading")
    later = records(f"data{relabelled}", f"reading{relabelled}")
    lora = {"r": NANO_TEXT_CONFIG["hidden_size"], "alpha": NANO_TEXT_CONFIG["hidden_size"],
            "targets": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]}  # fmt: skip
    common = {"seed": seed, "data": data, "batch_size": 8, "progress": False, "log_every": 10,
              "checkpoint_every": 50, "max_frames": 16, "epochs": 1000, "group_by_length": True,
              "synergy": {"enabled": True, "weight": 0.1, "schedule": "dann"}}  # fmt: skip
    base = {"lr": 2e-3, "warmup_steps": 50, "min_lr_ratio": 0.05, "batch_size": 16,
            "weight_decay": 0.01, "synergy": {"enabled": False}, "train_vision_tower": False}  # fmt: skip
    own = {
        "base": base,
        "regions": base | {"stage": "base", "lr": 5e-4, "warmup_steps": 20,
                           "data": later + records("regions_data")},
        "align": {"lr": 1e-3, "warmup_steps": 5, "data": later},
        "invoke": {"lr": 1e-3, "warmup_steps": 10, "lora": lora,
                   "signal_routes": SIGNAL_ROUTES, "data": later},
        "ground": {"lr": 5e-4, "warmup_steps": 10, "lora": lora, "data": later},
    }  # fmt: skip
    configs: dict[str, dict] = {}
    model, stage_profile = str(run / "init"), profile
    for stage in (s for s in STAGE_ORDER if steps.get(s)):
        configs[stage] = common | {"stage": stage} | own[stage] | {
            "model": model, "profile": stage_profile,
            "output_dir": str(run / stage), "max_steps": steps[stage],
        } | (overrides or {}) | (stage_overrides or {}).get(stage, {})  # fmt: skip
        model = str(run / stage)
        if stage == "invoke":  # stage 3 keeps the projectors stage 2 aligned
            stage_profile = str(run / stage / "profile.toml")
    return configs


def _profile_path(profile: str, component: str) -> Path:
    """Where ``profile``'s ``component`` checkpoint is (relative paths: beside its toml)."""
    from vitron.tools.profiles import load_profile

    loaded = load_profile(profile)
    path = Path(loaded.component(component).checkpoint)
    return path if path.is_absolute() else Path(loaded.source).parent / path


def object_finder_for(profile: str) -> Any:
    """An object finder over ``profile``'s SAM, with the automatic generator's settings
    ``segment_image`` uses there (:mod:`vitron.agent.objects`)."""
    from vitron.agent.objects import ObjectFinderSettings, sam_object_finder
    from vitron.tools.profiles import load_profile

    automatic = dict(load_profile(profile).component("sam").options.get("automatic", {}))
    settings = ObjectFinderSettings(source=str(_profile_path(profile, "sam").resolve()),
                                    automatic=automatic)  # fmt: skip
    return sam_object_finder(settings, ".")


TOWER_COMPONENT = "clip_tower"
"""The profile component (and folder) of the planner's image tower."""


def tower_source(profile: str) -> Path:
    """The CLIP folder whose vision half a new planner starts from: ``profile``'s
    ``clip_tower`` (nano's 8 px patches: 64 image tokens a picture), else its ``clip``."""
    from vitron.tools.profiles import load_profile

    has_tower = TOWER_COMPONENT in load_profile(profile).components
    return _profile_path(profile, TOWER_COMPONENT if has_tower else "clip")


def train_nano(run: str | Path, *, seed: int = 0, records: int = DEFAULT_RECORDS, profile: str = "nano",
               steps: dict[str, int] | None = None, clip: str | Path | None = None,
               corpus_samples: int = 600, overrides: dict | None = None,
               stage_overrides: dict[str, dict] | None = None,
               reading_records: int = DEFAULT_READING_RECORDS,
               region_records: int = DEFAULT_REGION_RECORDS,
               objects: bool = False, glue: dict | None = None,
               data_tasks: Sequence[str] | None = None,
               reading_tasks: Sequence[str] | None = None,
               vqa_answers: str = "word", media_labels: str = "world",
               base_media_labels: str | None = None,
               ) -> dict[str, Any]:  # fmt: skip
    """Train the nano Vitron under ``run``: data (``data/`` every task, ``reading/`` the
    :data:`READING_TASKS`, ``regions_data/`` region captions when ``regions`` has steps),
    ``init/``, then ``base/``, ``regions/``, ``align/``, ``invoke/``, ``ground/`` (each a ``vitron
    train`` run directory). Resumable: a finished step is skipped, an interrupted stage resumes
    from its latest checkpoint. With ``objects``, the planner reads each picture's objects too,
    as the profile's SAM finds them (:func:`object_finder_for`). ``glue`` overrides
    :data:`NANO_GLUE` entries (e.g. how a clip is read), ``data_tasks`` the tasks of ``data/``
    in turn (default: every task of the world), ``reading_tasks`` those of ``reading/`` (default
    :data:`READING_TASKS`), ``vqa_answers`` how questions are answered in its conversations
    (``conversations.VQA_ANSWERS``), ``media_labels`` how their media are labelled
    (``evals.shapes.labels.MEDIA_LABELS``), ``base_media_labels`` how those ``base`` reads are
    (default: the same; where it differs, the steps after ``base`` read a second copy,
    :func:`relabelled_suffix`); a run resumed with other values than it was started with is
    refused (:func:`run_recipe`). Returns wall times per step."""
    import json
    import time

    from vitron.agent.build import save_vitron
    from vitron.agent.training.config import TrainConfig
    from vitron.agent.training.conversations import write_conversations
    from vitron.agent.training.trainer import Trainer

    run = Path(run)
    clip = clip or tower_source(profile)
    check_glue(glue, clip)
    run.mkdir(parents=True, exist_ok=True)
    recipe = run_recipe(run, glue, data_tasks, reading_tasks, vqa_answers, media_labels,
                        base_media_labels)  # fmt: skip
    said = {"vqa_answers": recipe.get("vqa_answers", "word"),
            "media_labels": recipe.get("media_labels", "world")}  # fmt: skip
    relabelled = relabelled_suffix(recipe)
    steps = DEFAULT_STEPS | (steps or {})
    times: dict[str, float] = {}
    # base's conversations, then (where base reads other labels) the same ones as the rest read
    copies = [("", said | {"media_labels": recipe.get("base_media_labels", said["media_labels"])})]
    copies += [(relabelled, said)] if relabelled else []
    for suffix, labelled in copies:
        if not (run / f"data{suffix}" / "train.jsonl").is_file():
            start = time.monotonic()
            write_conversations(run / f"data{suffix}", "train", records, seed=seed,
                                tasks=recipe.get("data_tasks"), **labelled)  # fmt: skip
            times[f"data{suffix}"] = time.monotonic() - start
        if reading_records and not (run / f"reading{suffix}" / "train.jsonl").is_file():
            start = time.monotonic()
            write_conversations(run / f"reading{suffix}", "train", reading_records, seed=seed,
                                start=records, tasks=recipe.get("reading_tasks", READING_TASKS),
                                **labelled)  # fmt: skip
            times[f"reading{suffix}"] = time.monotonic() - start
    if (
        steps.get("regions")
        and region_records
        and not (run / "regions_data" / "train.jsonl").is_file()
    ):
        start = time.monotonic()
        write_conversations(run / "regions_data", "train", region_records, seed=seed,
                            start=max(REGION_START, records + reading_records),
                            tasks=["region_caption"], **said)  # fmt: skip
        times["regions_data"] = time.monotonic() - start
    if not (run / "init" / "config.json").is_file():
        start = time.monotonic()
        model, processor = build_nano_vitron(clip, seed=seed,
                                             corpus_samples=corpus_samples,
                                             glue=recipe.get("glue"))  # fmt: skip
        if objects:
            processor.object_finder = object_finder_for(profile)
        save_vitron(model, processor, run / "init")
        times["init"] = time.monotonic() - start
    configs = stage_configs(run, seed=seed, profile=profile, steps=steps, overrides=overrides,
                            stage_overrides=stage_overrides, relabelled=relabelled)  # fmt: skip
    for stage, data in configs.items():
        if (Path(data["output_dir"]) / "profile.toml").is_file():
            continue
        start = time.monotonic()
        Trainer(TrainConfig.from_dict(data, source=stage)).run(resume=True)
        times[stage] = time.monotonic() - start
    earlier = json.loads((run / "times.json").read_text()) if (run / "times.json").is_file() else {}
    times = earlier | times  # a resumed run keeps the wall times of the steps done before
    (run / "times.json").write_text(json.dumps(times, indent=2))
    return times


def publish(run: str | Path, profile_dir: str | Path, *, suffix: str = "") -> dict[str, Any]:
    """Copy a finished run's planner (``ground/llm``) and aligned projectors
    (``invoke/projectors/<name>`` for each of :data:`PROJECTORS`) into ``profile_dir`` as
    ``vitron_llm<suffix>/``, ``sam_signal<suffix>/``, ``sam2_signal<suffix>/``,
    ``image_signal<suffix>/``, ``video_signal<suffix>/``
    (``suffix="_no_synergy"`` for the ablation's set), with ``training.json`` (configs, wall times, last logged losses, and the number
    of training conversations, which a rebuild needs to retrace the run). A planner whose tower is
    still exactly ``profile_dir/clip_tower`` (frozen) names that folder instead of carrying a copy
    (:mod:`vitron.agent.shared_tower`)."""
    import json

    from vitron.agent.objects import OBJECT_FINDER_FILE, move_object_finder
    from vitron.agent.shared_tower import share_tower

    run, profile_dir = Path(run), Path(profile_dir)
    copies = {f"vitron_llm{suffix}": run / "ground" / "llm"} | {
        f"{name}{suffix}": run / "invoke" / "projectors" / name for name in PROJECTORS
    }
    _replace_folders(copies, profile_dir, "finish the run first")
    move_object_finder(copies[f"vitron_llm{suffix}"], profile_dir / f"vitron_llm{suffix}")
    planner, tower = profile_dir / f"vitron_llm{suffix}", profile_dir / TOWER_COMPONENT
    shared = tower.is_dir() and share_tower(planner, tower)
    summary: dict[str, Any] = {"times_s": json.loads((run / "times.json").read_text())}
    summary["vision_tower"] = f"shared: ../{TOWER_COMPONENT}" if shared else "in the weights"
    summary["objects"] = (planner / OBJECT_FINDER_FILE).is_file()
    if (run / RECIPE_FILE).is_file():  # a build from nothing retraces it (apps/nano_build.py)
        summary["recipe"] = json.loads((run / RECIPE_FILE).read_text())
    for part, key in (
        ("data", "records"),
        ("reading", "reading_records"),
        ("regions_data", "region_records"),
    ):
        path = run / part / "train.jsonl"
        lines = path.read_text().splitlines() if path.is_file() else []
        summary[key] = sum(1 for line in lines if line.strip())
    for stage in (s for s in STAGE_ORDER if (run / s / "metrics.jsonl").is_file()):
        lines = (run / stage / "metrics.jsonl").read_text().splitlines()
        config = json.loads((run / stage / "train_config.json").read_text())
        summary[stage] = {
            "last_logged": json.loads(lines[-1]),
            "config": {k: v for k, v in config.items() if k not in ("data", "eval_data")},
        }
    (profile_dir / f"vitron_llm{suffix}" / "training.json").write_text(
        json.dumps(summary, indent=2)
    )
    return summary


REALIGN_STEPS = 150
"""Optimizer steps of a re-alignment (the committed planner's stage 2 had 150)."""
SIGNAL_RECORDS = "signals.jsonl"
"""The training records that carry a signal (``data/``): the only ones a re-alignment learns from."""


def realign_signals(run: str | Path, planner: str | Path, *, seed: int = 0,
                    records: int = DEFAULT_RECORDS, profile: str = "nano",
                    steps: int = REALIGN_STEPS, overrides: dict | None = None,
                    ) -> dict[str, Any]:  # fmt: skip
    """Stage 2 again for the trained ``planner`` (a ``vitron_llm`` folder), frozen
    (``signals_only``): the projectors of :data:`SIGNAL_ROUTES` start fresh and align through the
    profile's *current* decoders on the training records that carry a signal, under
    ``run/realign/``. A decoder retrained after its planner (a longer-trained SAM, a new VAE and
    UNet) otherwise reads the old projector's tokens as noise. Resumable; returns the run's
    wall time and last logged losses."""
    import json
    import time

    from vitron.agent.training.config import TrainConfig
    from vitron.agent.training.conversations import write_conversations
    from vitron.agent.training.trainer import Trainer

    run = Path(run)
    data = run / "data"
    if not (data / "train.jsonl").is_file():
        write_conversations(data, "train", records, seed=seed)
    if not (data / SIGNAL_RECORDS).is_file():
        with (data / "train.jsonl").open() as source:
            kept = [line for line in source if line.strip() and json.loads(line).get("signals")]
        if not kept:
            raise ValueError(f"no record of {data / 'train.jsonl'} carries a signal")
        (data / SIGNAL_RECORDS).write_text("".join(kept))
    config = stage_configs(run, seed=seed, profile=profile, steps=DEFAULT_STEPS | {"invoke": steps},
                           overrides=overrides)["invoke"]  # fmt: skip
    config |= {
        "model": str(planner), "output_dir": str(run / "realign"), "signals_only": True,
        "synergy": {"enabled": False},
        "data": [{"format": "records", "root": str(data), "options": {"files": [SIGNAL_RECORDS]}}],
    }  # fmt: skip
    config.pop("lora", None)
    report_path = run / "realign" / "realign.json"
    if not report_path.is_file():  # a finished run is not repeated: its report is read back
        start = time.monotonic()
        Trainer(TrainConfig.from_dict(config, source="realign")).run(resume=True)
        lines = (run / "realign" / "metrics.jsonl").read_text().splitlines()
        report = {"seconds": round(time.monotonic() - start, 1), "steps": steps,
                  "records": len((data / SIGNAL_RECORDS).read_text().splitlines()),
                  "last_logged": json.loads(lines[-1]) if lines else {}}  # fmt: skip
        report_path.write_text(json.dumps(report, indent=2))
    return json.loads(report_path.read_text())


def check_projectors(names: Sequence[str]) -> None:
    """Refuse an empty choice or a name not in :data:`PROJECTORS` (``ValueError``)."""
    unknown = sorted(set(names) - set(PROJECTORS))
    if unknown or not names:
        raise ValueError(f"some of {', '.join(PROJECTORS)} (got {', '.join(unknown) or 'none'})")


def publish_projectors(run: str | Path, profile_dir: str | Path, report: dict[str, Any], *,
                       suffix: str = "", command: str = "",
                       projectors: Sequence[str] = PROJECTORS) -> None:  # fmt: skip
    """Copy a finished :func:`realign_signals` run's ``projectors`` (default: all of them) into
    ``profile_dir`` (as ``<name><suffix>/``) and record the re-alignment (``report``,
    ``command``) in the planner's ``training.json``: under ``realigned``, or
    ``realigned_<names>`` when only some were copied (a projector added after its planner, such
    as ``video_signal``, leaves the others as the planner's own stage 2 made them). The planner
    itself is left as it is."""
    import json

    check_projectors(projectors)
    run, profile_dir = Path(run), Path(profile_dir)
    copies = {f"{name}{suffix}": run / "realign" / "projectors" / name for name in projectors}
    _replace_folders(copies, profile_dir, "finish the re-alignment first")
    summary_path = profile_dir / f"vitron_llm{suffix}" / "training.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    key = "realigned" if set(projectors) == set(PROJECTORS) else "realigned_" + "_".join(projectors)
    summary[key] = report | {"projectors": list(projectors), "command": command}
    summary_path.write_text(json.dumps(summary, indent=2))


def _replace_folders(copies: dict[str, Path], profile_dir: Path, unfinished: str) -> None:
    """Replace ``profile_dir/<name>`` by a copy of each source folder of ``copies``; every
    source is checked before anything is replaced, so the profile is never half-published."""
    import shutil

    missing = [str(source) for source in copies.values() if not source.is_dir()]
    if missing:
        raise FileNotFoundError(f"{', '.join(missing)} is missing: {unfinished}")
    for name, source in copies.items():
        shutil.rmtree(profile_dir / name, ignore_errors=True)
        shutil.copytree(source, profile_dir / name)


def main(argv: list[str] | None = None) -> int:
    """``python -m vitron.agent.training.nano RUN_DIR [--seed 0] [--records 6000]``."""
    import argparse
    import logging

    from vitron.agent.training.conversations import VQA_ANSWERS
    from vitron.evals.shapes.dataset import check_tasks
    from vitron.evals.shapes.labels import MEDIA_LABELS

    torch.set_num_threads(int(__import__("os").environ.get("OMP_NUM_THREADS", "1")))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    parser = argparse.ArgumentParser(description="Train the nano Vitron LLM (stages 1-3).")
    parser.add_argument("run", help="run directory (created; resumable)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--records", type=int, default=DEFAULT_RECORDS)
    parser.add_argument("--reading-records", type=int, default=DEFAULT_READING_RECORDS)
    parser.add_argument("--region-records", type=int, default=DEFAULT_REGION_RECORDS)
    parser.add_argument("--profile", default="nano", help="profile with the frozen CLIP and SAM")
    parser.add_argument("--clip", help="vision tower source, a CLIP or CLIPVisionModel folder "
                        "(default: the profile's clip_tower, else its clip)")  # fmt: skip
    parser.add_argument("--publish", help="then copy the planner into this profile folder")
    parser.add_argument(
        "--objects", action="store_true",
        help="the planner reads each picture's objects too (one token per object the profile's "
        "SAM finds, after the picture's patches; vitron.agent.objects)",
    )  # fmt: skip
    parser.add_argument(
        "--no-synergy", action="store_true",
        help="train without synergy learning (the ablation's planner; published with the "
        "suffix _no_synergy)",
    )  # fmt: skip
    parser.add_argument(
        "--micro",
        action="store_true",
        help="a micro run (about 2 minutes on one core: 600 + 200 conversations, base=300 and a "
        "few steps per stage, batch 8) that checks the pipeline learns; --steps still applies",
    )
    parser.add_argument(
        "--realign",
        metavar="PLANNER",
        help="instead of training a planner, re-align the signal projectors of the trained one in "
        "PLANNER (a vitron_llm folder), frozen, through the profile's current decoders "
        "(--steps invoke=N, default 150); --publish then copies only the projectors",
    )
    parser.add_argument(
        "--projectors",
        default=",".join(PROJECTORS),
        help="with --realign --publish: which re-aligned projectors to copy, comma-separated "
        f"(default: all, {','.join(PROJECTORS)})",
    )
    parser.add_argument(
        "--steps",
        default="",
        help="steps per stage, e.g. base=2400,align=40,invoke=150,ground=150",
    )
    parser.add_argument("--video-frames", type=int, metavar="N",
                        help=f"frames of a clip the planner reads (default {NANO_GLUE['video_num_frames']})")  # fmt: skip
    parser.add_argument("--video-tokens-per-frame", type=int, metavar="N",
                        help="tokens each frame is pooled to, a square number "
                        f"(default {NANO_GLUE['video_tokens_per_frame']})")  # fmt: skip
    parser.add_argument("--data-tasks", metavar="T,T,…",
                        help="the tasks of data/, in turn; one named twice gets twice the "
                        "conversations (default: every task of the shapes world)")  # fmt: skip
    parser.add_argument("--reading-tasks", metavar="T,T,…",
                        help=f"the tasks of reading/, in turn (default {','.join(READING_TASKS)})")  # fmt: skip
    parser.add_argument("--media-labels", choices=MEDIA_LABELS, default="world",
                        help="how the conversations' media are labelled in the prompt's listing: "
                        "as the world labels them ('scene', 'before'), or with file-like names "
                        "drawn regardless of the task, so the planner learns not to read the task "
                        "from a label")  # fmt: skip
    parser.add_argument("--base-media-labels", choices=MEDIA_LABELS,
                        help="how the media of the conversations `base` trains on are labelled "
                        "(default: as --media-labels); where it differs, the steps after base "
                        "train on the same conversations labelled the --media-labels way, "
                        "written again as data_<labels>/ and reading_<labels>/")  # fmt: skip
    parser.add_argument("--vqa-answers", choices=VQA_ANSWERS, default="word",
                        help="how count and 'is there' questions are answered in training: the "
                        "word, or the asked objects named first ('red circle, blue circle: 2')")  # fmt: skip
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.projectors.split(",") if name.strip()]
    try:  # before anything runs: re-alignment comes before publishing
        check_projectors(names)
    except ValueError as exc:
        parser.error(f"--projectors: {exc}")
    steps = dict((k, int(v)) for k, v in (p.split("=") for p in args.steps.split(",") if p))
    glue = {key: value for key, value in (("video_num_frames", args.video_frames),
            ("video_tokens_per_frame", args.video_tokens_per_frame)) if value is not None}  # fmt: skip
    tasks = {key: [t.strip() for t in value.split(",") if t.strip()] for key, value in
             (("data_tasks", args.data_tasks), ("reading_tasks", args.reading_tasks)) if value}  # fmt: skip
    for key, value in tasks.items():
        try:
            check_tasks(value)
        except ValueError as exc:
            parser.error(f"--{key.replace('_', '-')}: {exc}")
    try:
        check_glue(glue, args.clip or tower_source(args.profile))
    except ValueError as exc:  # VitronConfig's own check, worded for the option it came from
        flag = "--video-frames" if "video_num_frames" in str(exc) else "--video-tokens-per-frame"
        parser.error(f"{flag} must be what the planner's config accepts: {exc}")
    sizes: dict[str, Any] = {
        "records": args.records,
        "reading_records": args.reading_records,
        "region_records": args.region_records,
    }
    overrides, stage_overrides = NO_SYNERGY if args.no_synergy else {}, None
    if args.micro:
        sizes = {k: MICRO[k] for k in ("records", "reading_records", "corpus_samples")}
        steps, overrides = MICRO["steps"] | steps, MICRO["overrides"] | overrides
        stage_overrides = MICRO["stage_overrides"]
    suffix = "_no_synergy" if args.no_synergy else ""
    if args.realign:
        report = realign_signals(
            args.run, args.realign, seed=args.seed, records=args.records, profile=args.profile,
            steps=steps.get("invoke", REALIGN_STEPS),
        )  # fmt: skip
        print(report)
        if args.publish:
            command = "python -m vitron.agent.training.nano " + " ".join(argv or sys.argv[1:])
            publish_projectors(args.run, args.publish, report, suffix=suffix, command=command,
                               projectors=names)  # fmt: skip
        return 0
    print(
        train_nano(
            args.run,
            seed=args.seed,
            profile=args.profile,
            steps=steps,
            clip=args.clip,
            overrides=overrides or None,
            stage_overrides=stage_overrides,
            objects=args.objects,
            glue=glue or None,
            vqa_answers=args.vqa_answers,
            media_labels=args.media_labels,
            base_media_labels=args.base_media_labels,
            **tasks,
            **sizes,
        )
    )
    if args.publish:
        publish(args.run, args.publish, suffix=suffix)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
