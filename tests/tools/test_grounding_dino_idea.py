"""Grounding DINO in IDEA format (groundingdino-py), and `vitron convert grounding-dino`.

Everything runs on a small random model written to a temporary folder at test time: a Swin with
embed 32 and one block per stage, and a 1-layer BERT whose vocabulary has [CLS], [SEP], "." and "?"
at BERT's ids (101, 102, 1012, 1029), as transformers' port expects.
"""

from __future__ import annotations

import argparse
import textwrap
from dataclasses import replace

import pytest
import torch
from langchain_core.messages import AIMessage, ToolMessage
from PIL import Image
from skimage import data

from vitron.apps.cli import main
from vitron.graphs import Context, build_graph, user_message
from vitron.graphs.scripted import ScriptedChatModel
from vitron.tools.errors import MissingCheckpointError, VitronToolError
from vitron.tools.models.grounding_dino import GroundingEngine, limit_phrases
from vitron.tools.models.grounding_dino_idea import (
    IdeaGroundingEngine,
    ImageSize,
    additive_attention_mask,
    build_idea_model,
)
from vitron.tools.models.grounding_dino_idea_files import (
    TINY_IDEA_CONFIG,
    IdeaConfigError,
    read_idea_checkpoint,
    read_idea_config,
    save_tiny_text_encoder,
    tiny_text_vocab,
    write_idea_config,
)
from vitron.tools.profiles import load_profile
from vitron.tools.registry import ModelRegistry

CAPTION = "a person. a flag."


@pytest.fixture(scope="module")
def idea(tmp_path_factory):
    """An IDEA-format model on disk: text encoder folder, Python config, ``{"model": …}`` .pth."""
    root = tmp_path_factory.mktemp("idea")
    bert = save_tiny_text_encoder(root / "bert", seed=1)
    config = write_idea_config(TINY_IDEA_CONFIG, root / "tiny_idea_cfg.py")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        model = build_idea_model(read_idea_config(config), bert)
        with torch.no_grad():  # groundingdino-py zero-initialises these; give them values to check
            for name, param in model.named_parameters():
                if "bbox_embed" in name or name.endswith(("gamma_v", "gamma_l")):
                    param.normal_(0.0, 0.02)
            # smaller decoder outputs keep scores away from 0 and 1, so comparing them says something
            model.transformer.decoder.norm.weight.mul_(0.05)
    torch.save({"model": model.state_dict()}, root / "model.pth")
    engine = IdeaGroundingEngine(model, ImageSize(224, 320))
    return argparse.Namespace(
        root=root, bert=bert, config=config, checkpoint=root / "model.pth", engine=engine
    )


@pytest.fixture(scope="module")
def converted(idea):
    """The same weights after ``vitron convert grounding-dino``."""
    dst = idea.root / "hf"
    code = main(
        ["convert", "grounding-dino", str(idea.checkpoint), str(dst), "--config", str(idea.config),
         "--text-encoder", str(idea.bert), "--image-size", "224", "--max-size", "320"]
    )  # fmt: skip
    assert code == 0
    return dst


def idea_profile(tmp_path, idea, **extra: str):
    lines = [f'{k} = "{v}"' for k, v in extra.items()]
    (tmp_path / "idea.toml").write_text(
        textwrap.dedent(f"""\
            extends = "tiny"
            [components.grounding_dino]
            loader = "grounding_dino"
            format = "idea"
            checkpoint = "{idea.checkpoint}"
            config = "{idea.config}"
            text_encoder = "{idea.bert}"
            image_size = 224
            max_size = 320
            """)
        + "\n".join(lines)
    )
    return load_profile(tmp_path / "idea.toml")


def photo() -> Image.Image:
    return Image.fromarray(data.astronaut())


def test_tiny_vocabulary_puts_the_separators_where_transformers_expects_them(idea):
    vocab = tiny_text_vocab()
    assert [vocab.index(t) for t in ("[CLS]", "[SEP]", ".", "?")] == [101, 102, 1012, 1029]
    ids = idea.engine.tokenizer("a cat?")["input_ids"]
    assert ids[0] == 101 and ids[-2:] == [1029, 102] and 100 not in ids  # no [UNK]


def test_a_target_longer_than_the_text_encoder_reads_is_cut_not_fatal(idea):
    assert idea.engine.max_text_tokens == 256
    phrases = [f"a thing number {i}" for i in range(80)]  # about 1400 character tokens
    kept, note = limit_phrases(idea.engine, phrases)  # what ground tells the user
    assert 0 < len(kept) < len(phrases) and "longer than Grounding DINO reads" in note
    found = idea.engine.detect(photo(), phrases, box_threshold=0.0, max_boxes=3)
    assert len(found) == 3 and all(d.label in kept for d in found)


def test_tiny_idea_profile_grounds_and_segments_through_the_graph(tmp_path):
    context = Context(profile="tiny-idea", workspace=str(tmp_path / "ws"), device="cpu")
    image = context.services().workspace.for_thread("t").put_image(data.astronaut())
    calls = AIMessage(
        content="",
        tool_calls=[
            {"name": "ground", "args": {"image": image.handle, "instruction": CAPTION,
             "box_threshold": 0.0, "max_boxes": 3}, "id": "g"},
            {"name": "segment_image", "args": {"image": image.handle,
             "instruction": "the astronaut"}, "id": "s"},
        ],
    )  # fmt: skip
    seen: list = []
    graph = build_graph(
        ScriptedChatModel(steps=[calls, lambda m: seen.extend(m) or AIMessage("ok")])
    )
    result = graph.invoke(
        {"messages": [user_message("find them", media=[image])],
         "media": {image.handle: image.to_state()}},
        {"configurable": {"thread_id": "t"}},
        context=context,
    )  # fmt: skip
    assert result["messages"][-1].content == "ok"
    assert isinstance(context.services().models.get("grounding_dino"), IdeaGroundingEngine)
    replies = {m.tool_call_id: m for m in seen if isinstance(m, ToolMessage)}
    assert all(m.status == "success" for m in replies.values()), [
        m.content for m in replies.values()
    ]
    boxes = replies["g"].artifact["boxes"]
    assert 1 <= len(boxes) <= 3
    assert all(0 <= v <= 1 for box in boxes for v in box) and all(b[0] < b[2] for b in boxes)
    assert set(replies["g"].artifact["labels"]) <= {"a person", "a flag"}
    assert "located by Grounding DINO" in replies["s"].content
    mask = context.services().workspace.for_thread("t").get_mask(replies["s"].artifact["masks"][0])
    assert mask.shape == (512, 512)


def test_converted_weights_give_the_same_boxes_and_scores_in_transformers(idea, converted):
    from transformers import AutoProcessor, GroundingDinoForObjectDetection

    model = GroundingDinoForObjectDetection.from_pretrained(converted).eval()
    processor = AutoProcessor.from_pretrained(converted)
    pixels = idea.engine.pixel_values(photo())  # one normalised tensor fed to both
    idea_scores, idea_boxes = idea.engine.raw(pixels, CAPTION)
    text = processor.tokenizer([CAPTION], return_tensors="pt")
    with torch.no_grad():
        out = model(pixel_values=pixels[None], pixel_mask=torch.ones(1, *pixels.shape[1:]), **text)
    tokens = text["input_ids"].shape[1]
    hf_scores, hf_boxes = out.logits[0, :, :tokens].sigmoid(), out.pred_boxes[0]
    assert torch.allclose(idea_scores[:, :tokens], hf_scores, atol=1e-4)
    assert torch.allclose(idea_boxes, hf_boxes, atol=1e-4)
    # the comparison has teeth: scores are spread out, not saturated, and boxes differ per query
    assert ((hf_scores > 0.05) & (hf_scores < 0.95)).float().mean() > 0.5
    assert hf_boxes.std(dim=0).min() > 1e-3
    # and the written processor resizes and normalises exactly as IDEA's transforms do
    hf_pixels = processor(images=photo(), text=CAPTION, return_tensors="pt")["pixel_values"][0]
    assert hf_pixels.shape == pixels.shape and torch.allclose(hf_pixels, pixels, atol=1e-4)


def test_both_formats_detect_the_same_objects_from_one_set_of_weights(tmp_path, idea, converted):
    (tmp_path / "hf.toml").write_text(
        f'[components.grounding_dino]\nloader = "grounding_dino"\ncheckpoint = "{converted}"\n'
    )
    transformers_engine = ModelRegistry(load_profile(tmp_path / "hf.toml"), device="cpu").get(
        "grounding_dino"
    )
    idea_engine = ModelRegistry(idea_profile(tmp_path, idea), device="cpu").get("grounding_dino")
    assert isinstance(transformers_engine, GroundingEngine)
    assert isinstance(idea_engine, IdeaGroundingEngine)
    kwargs = {"box_threshold": 0.3, "text_threshold": 0.25, "max_boxes": 5}
    ours = idea_engine.detect(photo(), ["a person", "a flag"], **kwargs)
    theirs = transformers_engine.detect(photo(), ["a person", "a flag"], **kwargs)
    assert len(ours) == len(theirs) > 0
    for a, b in zip(ours, theirs, strict=True):
        assert a.label == b.label
        assert a.score == pytest.approx(b.score, abs=1e-4)
        assert a.box == pytest.approx(b.box, abs=2e-4)  # both round to 4 decimals


def test_an_idea_checkpoint_loads_its_weights_through_the_registry(tmp_path, idea):
    engine = ModelRegistry(idea_profile(tmp_path, idea), device="cpu").get("grounding_dino")
    pixels = idea.engine.pixel_values(photo())
    loaded, expected = engine.raw(pixels, CAPTION), idea.engine.raw(pixels, CAPTION)
    assert torch.equal(loaded[1], expected[1]) and torch.equal(loaded[0], expected[0])


def test_checkpoints_are_read_without_running_code(tmp_path, idea):
    state = read_idea_checkpoint(idea.checkpoint)
    # IDEA's training scripts store their argparse settings beside the weights: allowed
    torch.save({"model": state, "args": argparse.Namespace(lr=1e-4)}, tmp_path / "with_args.pth")
    assert read_idea_checkpoint(tmp_path / "with_args.pth").keys() == state.keys()
    # DistributedDataParallel prefixes are dropped
    torch.save({"model": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "ddp.pth")
    assert read_idea_checkpoint(tmp_path / "ddp.pth").keys() == state.keys()
    with pytest.raises(MissingCheckpointError, match="no IDEA Grounding DINO checkpoint at"):
        read_idea_checkpoint(tmp_path / "nowhere.pth")
    # any other object is refused, not unpickled
    torch.save({"model": state, "extra": Image.new("RGB", (1, 1))}, tmp_path / "pickled.pth")
    with pytest.raises(VitronToolError, match="weights_only=True"):
        read_idea_checkpoint(tmp_path / "pickled.pth")


def test_configs_are_read_without_running_them(tmp_path):
    assert read_idea_config("GroundingDINO_SwinT_OGC")["backbone"] == "swin_T_224_1k"
    (tmp_path / "evil.py").write_text("import os\nhidden_dim = 256\n")
    with pytest.raises(IdeaConfigError, match="line 1: only `name = value` settings"):
        read_idea_config(tmp_path / "evil.py")
    (tmp_path / "call.py").write_text("hidden_dim = int('256')\n")
    with pytest.raises(IdeaConfigError, match="not a literal value"):
        read_idea_config(tmp_path / "call.py")
    with pytest.raises(IdeaConfigError, match="no Grounding DINO config"):
        read_idea_config(tmp_path / "missing.py")


def test_a_checkpoint_that_does_not_fit_its_config_is_a_clear_error(tmp_path, idea):
    state = read_idea_checkpoint(idea.checkpoint)
    del state["transformer.level_embed"]
    torch.save({"model": state}, tmp_path / "short.pth")
    profile = idea_profile(tmp_path, idea)
    profile.components["grounding_dino"] = replace(
        profile.components["grounding_dino"], checkpoint=str(tmp_path / "short.pth")
    )
    with pytest.raises(VitronToolError, match=r"1 weight\(s\) missing \(transformer.level_embed\)"):
        ModelRegistry(profile, device="cpu").get("grounding_dino")
    (tmp_path / "half.toml").write_text(
        'extends = "tiny-idea"\n[components.grounding_dino]\nloader = "grounding_dino"\n'
        'format = "idea"\ncheckpoint = "tiny"\ndtype = "float16"\n'
    )
    with pytest.raises(VitronToolError, match="groundingdino-py runs in float32 only"):
        ModelRegistry(load_profile(tmp_path / "half.toml"), device="cpu").get("grounding_dino")
    (tmp_path / "bad.toml").write_text(
        '[components.grounding_dino]\nloader = "grounding_dino"\nformat = "onnx"\ncheckpoint = "x"\n'
    )
    with pytest.raises(VitronToolError, match="'transformers' or 'idea'"):
        ModelRegistry(load_profile(tmp_path / "bad.toml"), device="cpu").get("grounding_dino")


def test_convert_refuses_a_non_empty_destination_and_leaves_it_alone(tmp_path, idea, capsys):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    code = main(["convert", "grounding-dino", str(idea.checkpoint), str(tmp_path / "out"),
                 "--config", str(idea.config), "--text-encoder", str(idea.bert)])  # fmt: skip
    assert code == 2 and "is not empty" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["keep.txt"]


def test_convert_names_a_missing_checkpoint_before_looking_for_the_text_encoder(tmp_path, capsys):
    """A mistyped .pth path was answered with "text encoder bert-base-uncased is neither a local
    folder nor available from the hub"."""
    missing = tmp_path / "groundingdino_swint_ogc.pth"
    assert main(["convert", "grounding-dino", str(missing), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"no IDEA Grounding DINO checkpoint at {missing}" in err and "text encoder" not in err
    assert not (tmp_path / "out").exists()


def test_the_bert_wrapper_builds_additive_masks_for_both_mask_shapes():
    padding = torch.tensor([[1, 1, 0]])
    sub_sentence = torch.tensor([[[1, 0, 0], [0, 1, 1], [0, 1, 1]]])
    low = torch.finfo(torch.float32).min
    assert additive_attention_mask(padding, torch.float32).tolist() == [[[[0.0, 0.0, low]]]]
    additive = additive_attention_mask(sub_sentence, torch.float32)
    assert (
        additive.shape == (1, 1, 3, 3) and additive[0, 0, 0, 1] == low and additive[0, 0, 1, 2] == 0
    )
