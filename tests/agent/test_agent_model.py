"""VitronConfig / VitronForCausalLM: round trips, placeholders, video cost, regions, signals."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from transformers import AutoConfig, LogitsProcessor, LogitsProcessorList

from vitron.agent.build import add_lora, build_tiny_vitron, load_vitron, save_vitron, tiny_config
from vitron.agent.configuration import VitronConfig
from vitron.agent.inputs import RegionInput, Turn, VideoInput
from vitron.agent.modeling import VitronForCausalLM, mask_box_batch
from vitron.agent.modeling.region_encoder import RegionEncoder

rng = np.random.default_rng(0)
IMAGE = (rng.random((48, 80, 3)) * 255).astype(np.uint8)
FRAMES = (rng.random((20, 40, 40, 3)) * 255).astype(np.uint8)
BOX_MASK = np.zeros((48, 80), dtype=bool)
BOX_MASK[10:30, 20:60] = True


@pytest.fixture(scope="module")
def tiny():
    return build_tiny_vitron(seed=0)


@pytest.fixture(scope="module")
def batch(tiny):
    _, processor = tiny
    turns = [
        Turn(
            "user",
            [
                "What is in ",
                IMAGE,
                " at ",
                RegionInput(BOX_MASK),
                "? And here: ",
                VideoInput(FRAMES, fps=5.0),
            ],
        ),
        Turn(
            "assistant",
            "A cat. <Module>segment_image</Module><Instruction>the cat</Instruction>[SEG]",
        ),
        Turn("user", "now make it blue"),
    ]
    return processor.encode_chat(turns)


def test_config_round_trips_through_json(tmp_path):
    config = tiny_config(
        300,
        video_tokens_per_frame=9,
        synergy_enabled=False,
        signal_spaces={"sam": 64, "diffusion": 32, "extra": 8},
    )
    config.signal_token_ids = {"[SEG]": 290}
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, VitronConfig)
    ignore = {"_name_or_path"}
    assert {k: v for k, v in loaded.to_dict().items() if k not in ignore} == {
        k: v for k, v in config.to_dict().items() if k not in ignore
    }
    assert loaded.text_config.hidden_size == 64 and loaded.vision_config.patch_size == 8
    assert loaded.signal_token_id_map == {290: ("[SEG]", "sam")}
    assert loaded.module_signal_tokens["ground"] is None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"video_tokens_per_frame": 5}, "square number"),
        ({"projector_type": "mlp2x_relu"}, "projector_type"),
        ({"vision_feature_layer": 7}, "vision_feature_layer"),
        ({"signal_token_spaces": {"[SEG]": "nowhere"}}, "not in signal_spaces"),
    ],
)
def test_config_rejects_inconsistent_glue(overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(300, **overrides)


def test_forward_shapes_and_prompt_layout(tiny, batch):
    model, processor = tiny
    ids = batch["input_ids"]
    config = model.config
    assert int((ids == config.image_token_id).sum()) == config.tokens_per_image == 64
    assert int((ids == config.video_token_id).sum()) == 8 * config.video_tokens_per_frame
    assert int((ids == config.region_token_id).sum()) == 1
    text = processor.tokenizer.decode(ids[0])
    assert "8 frames evenly spaced from 0.2s to 3.6s." in text
    with torch.no_grad():
        out = model(**batch)
    assert out.logits.shape == (1, ids.shape[1], len(processor.tokenizer))
    assert out.last_hidden_state.shape == (1, ids.shape[1], config.text_config.hidden_size)


def test_save_load_round_trip_gives_identical_logits(tiny, batch, tmp_path):
    model, processor = tiny
    save_vitron(model, processor, tmp_path)
    loaded, loaded_processor = load_vitron(tmp_path)
    assert torch.equal(
        loaded_processor(processor.render([Turn("user", "hi")]).text)["input_ids"],
        processor(processor.render([Turn("user", "hi")]).text)["input_ids"],
    )
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, loaded(**batch).logits)
    assert loaded.generation_config.suppress_tokens == model.generation_config.suppress_tokens


def test_lora_adapter_round_trip_merged_and_unmerged(batch, tmp_path):
    model, processor = build_tiny_vitron(seed=1)
    save_vitron(model, processor, tmp_path / "base")
    with torch.no_grad():
        base_logits = model(**batch).logits
    peft_model = add_lora(model, r=4, alpha=8)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)
        adapted = peft_model(**batch).logits
    assert not torch.allclose(adapted, base_logits)  # the adapter does something
    lora_names = [n for n, _ in peft_model.named_parameters() if "lora_" in n]
    assert lora_names and all("language_model" in n for n in lora_names)
    peft_model.save_pretrained(tmp_path / "adapter")

    unmerged, _ = load_vitron(tmp_path / "base", lora=tmp_path / "adapter")
    merged, _ = load_vitron(tmp_path / "base", lora=tmp_path / "adapter", merge=True)
    with torch.no_grad():
        assert torch.equal(unmerged(**batch).logits, adapted)
        assert torch.allclose(merged(**batch).logits, adapted, atol=1e-5)
    assert type(merged).__name__ == "VitronForCausalLM"


def test_placeholder_count_mismatch_is_a_clear_error(tiny, batch):
    model, processor = tiny
    ids = batch["input_ids"].clone()
    first_image = int((ids[0] == model.config.image_token_id).nonzero()[0])
    ids[0, first_image] = processor.tokenizer.encode("a", add_special_tokens=False)[0]
    with pytest.raises(
        ValueError,
        match=r"hold 63 <image> placeholder token\(s\) but pixel_values give 1 image\(s\) x 64 tokens",
    ):
        model(**{**batch, "input_ids": ids})
    without_video = {k: v for k, v in batch.items() if k != "pixel_values_videos"}
    with pytest.raises(
        ValueError, match=r"32 <video> placeholder token\(s\) but no pixel_values_videos"
    ):
        model(**without_video)
    with pytest.raises(ValueError, match=r"2 <image> placeholder\(s\) but 1 were given"):
        processor("<image> and <image>", images=[IMAGE])


def test_video_token_count_is_configurable_and_pooled(tiny):
    model, processor = tiny
    count = model.video_token_count(8)
    assert (count.total, count.unpooled) == (8 * 4, 8 * 64)
    assert count.total < 8 * 256
    model16, processor16 = build_tiny_vitron(video_tokens_per_frame=16, video_num_frames=4)
    assert model16.video_token_count(4).total == 64
    inputs = processor16("<video> what happens?", videos=[VideoInput(FRAMES, fps=10.0)])
    assert int((inputs["input_ids"] == model16.config.video_token_id).sum()) == 64
    assert inputs["pixel_values_videos"].shape == (1, 4, 3, 64, 64)
    with torch.no_grad():
        [tokens] = model16.encode_videos(inputs["pixel_values_videos"])
    assert tokens.shape == (64, model16.config.text_config.hidden_size)


def test_video_frame_order_matters(tiny):
    model, processor = tiny
    pixels = processor("<video>", videos=[VideoInput(FRAMES, fps=5.0)])["pixel_values_videos"]
    with torch.no_grad():
        forward = model.encode_videos(pixels)[0]
        constant = model.encode_videos(pixels[:, :1].repeat(1, 8, 1, 1, 1))[0].reshape(8, 4, -1)
    assert forward.shape == (32, model.config.text_config.hidden_size)
    assert not torch.allclose(
        constant[0], constant[1]
    )  # same frame, different time -> different tokens


def test_region_sketch_shape_changes_the_region_token(tiny):
    model, processor = tiny
    box = np.zeros((64, 64), dtype=bool)
    box[8:56, 8:56] = True
    stroke = np.zeros((64, 64), dtype=bool)  # a diagonal sketch with the same bounding box
    for i in range(8, 56):
        stroke[i, max(8, i - 2) : min(56, i + 3)] = True
    masks = torch.stack([processor.preprocess_mask(m) for m in (box, stroke, box)])
    assert torch.equal(mask_box_batch(masks)[0], mask_box_batch(masks)[1])
    pixels = processor.preprocess_image(IMAGE)[None]
    with torch.no_grad():
        _, patches = model.encode_images(pixels)
        regions = model.encode_regions(patches, masks, torch.zeros(3, dtype=torch.long))
    assert regions.shape == (3, model.config.text_config.hidden_size)
    assert not torch.allclose(regions[0], regions[1], atol=1e-4)
    assert torch.equal(regions[0], regions[2])
    with pytest.raises(ValueError, match="empty"):
        processor.preprocess_mask(np.zeros((10, 10)))


def test_signal_embeddings_have_the_configured_dimensions(tiny):
    model, processor = tiny
    text = (
        "<Module>segment_image</Module><Instruction>cat</Instruction>[SEG] and "
        "<Module>generate_image</Module><Instruction>dog</Instruction>[GEN]"
    )
    inputs = processor([text, "no signal here"], padding_side="left")
    with torch.no_grad():
        out = model(**inputs)
        signals = model.signal_embeddings(
            out.last_hidden_state, inputs["input_ids"], expected=[2, 0]
        )
    assert [(s.batch_index, s.token, s.space, tuple(s.embedding.shape)) for s in signals] == [
        (0, "[SEG]", "sam", (64,)),
        (0, "[GEN]", "diffusion", (32,)),
    ]
    with pytest.raises(ValueError, match="expected 3 signal token"):
        model.signal_embeddings(out.last_hidden_state, inputs["input_ids"], expected=3)
    # the streaming helper reads the same state
    seg = signals[0]
    again = model.embed_signal(seg.token_id, out.last_hidden_state[0, seg.position - 1])
    assert torch.allclose(again, seg.embedding)


class ScriptedTokens(LogitsProcessor):
    """Forces a fixed token sequence, one per generation step."""

    def __init__(self, tokens: list[int]) -> None:
        self.tokens = tokens
        self.step = 0

    def __call__(self, input_ids, scores):
        forced = torch.full_like(scores, float("-inf"))
        forced[:, self.tokens[min(self.step, len(self.tokens) - 1)]] = 0
        self.step += 1
        return forced


def test_generate_both_paths_and_signal_embeddings_of_generated_tokens(tiny, batch):
    model, processor = tiny
    script = processor.tokenizer.encode(
        "<Module>segment_image</Module><Instruction>cat</Instruction>[SEG] ok",
        add_special_tokens=False,
    )
    settings = {
        "max_new_tokens": len(script),
        "do_sample": False,
        "output_hidden_states": True,
        "return_dict_in_generate": True,
    }
    with torch.no_grad():
        from_ids = model.generate(
            **batch, logits_processor=LogitsProcessorList([ScriptedTokens(script)]), **settings
        )
        from_embeds = model.generate(
            **model.embed_batch(batch),
            logits_processor=LogitsProcessorList([ScriptedTokens(script)]),
            **settings,
        )
        prompt = batch["input_ids"].shape[1]
        assert from_ids.sequences[0, prompt:].tolist() == script
        assert from_embeds.sequences[0].tolist() == script
        a = model.generated_signal_embeddings(from_ids, expected=1)
        b = model.generated_signal_embeddings(from_embeds, expected=1)
        full = model(
            **{
                **batch,
                "input_ids": from_ids.sequences,
                "attention_mask": torch.ones_like(from_ids.sequences),
            }
        )
        c = model.signal_embeddings(
            full.last_hidden_state, from_ids.sequences, start=prompt, expected=1
        )
    assert a[0].position == b[0].position == c[0].position
    assert processor.decode(from_ids.sequences[0, prompt:]).startswith(
        "<Module>segment_image</Module>"
    )
    assert torch.allclose(a[0].embedding, b[0].embedding, atol=1e-5)
    assert torch.allclose(a[0].embedding, c[0].embedding, atol=1e-5)


def test_prebuilt_parts_keep_their_weights():
    from vitron.agent.modeling import VitronForCausalLM

    model, _ = build_tiny_vitron(seed=3)
    before = model.language_model.get_input_embeddings().weight.clone()
    rebuilt = VitronForCausalLM(
        model.config, language_model=model.language_model, vision_tower=model.image_encoder.tower
    )
    assert torch.equal(rebuilt.language_model.get_input_embeddings().weight, before)


def test_region_marks_start_at_zero_and_mark_the_patches_a_region_covers(tiny, batch, tmp_path):
    model, processor = tiny
    config = copy.deepcopy(model.config)
    config.region_marks = 2
    marked = VitronForCausalLM(config)
    missing, unexpected = marked.load_state_dict(model.state_dict(), strict=False)
    assert missing == ["region_encoder.marks"] and not unexpected
    marked.eval()
    with torch.no_grad():  # zero marks: a model gains them without changing what it computes
        assert torch.equal(marked(**batch).logits, model(**batch).logits)
        marked.region_encoder.marks.copy_(torch.randn_like(marked.region_encoder.marks))
        assert not torch.allclose(marked(**batch).logits, model(**batch).logits)
    # region k of an image adds mark k, weighted by the share of each patch it covers
    tokens = torch.zeros(2, 4, 3)
    encoder = RegionEncoder(vision_dim=5, text_dim=3, marks=2)
    with torch.no_grad():
        encoder.marks.copy_(torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]))
    left, top = torch.zeros(3, 4, 4), torch.zeros(3, 4, 4)
    left[:, :, :2] = 1  # left half of a 2x2 grid
    top[:, :1, :] = 1  # half of the top row of patches
    masks = torch.stack([left[0], top[1], top[2]])
    out = encoder.mark_images(tokens, (2, 2), masks, torch.tensor([1, 1, 0]))
    assert out[1, :, 0].tolist() == [1.0, 0.0, 1.0, 0.0]  # image 1, first region: mark 0, left
    assert out[1, :, 1].tolist() == [0.5, 0.5, 0.0, 0.0]  # image 1, second region: mark 1
    assert out[0, :, 0].tolist() == [0.5, 0.5, 0.0, 0.0]  # image 0's first region: mark 0 again
    with pytest.raises(ValueError, match="must point into the 2 image"):
        encoder.mark_images(tokens, (2, 2), masks, torch.tensor([0, 1, 2]))
    with_cls = encoder.mark_images(torch.zeros(2, 5, 3), (2, 2), masks, torch.tensor([1, 1, 0]), 1)
    assert torch.equal(with_cls[:, 1:], out) and not with_cls[:, 0].any()  # a CLS token: unmarked
    # marks reach the answer: a loss on the reply sends them a gradient, and they save and load
    marked.train()
    marked(**batch).logits.sum().backward()
    assert marked.region_encoder.marks.grad is not None
    assert marked.region_encoder.marks.grad.abs().sum() > 0
    save_vitron(marked.eval(), processor, tmp_path)
    loaded, _ = load_vitron(tmp_path)
    assert loaded.config.region_marks == 2
    assert torch.equal(loaded.region_encoder.marks, marked.region_encoder.marks)
    with pytest.raises(ValueError, match="region_marks=-1"):
        tiny_config(300, region_marks=-1)


def test_a_planner_reading_the_class_token_gets_one_more_token_an_image_and_marks_its_regions():
    model, processor = build_tiny_vitron(seed=0, vision_feature_select="cls_patch", region_marks=2)
    patches_only, _ = build_tiny_vitron(seed=0, region_marks=2)
    assert model.config.tokens_per_image == patches_only.config.tokens_per_image + 1
    inputs = processor.encode_chat(
        [Turn("user", ["What is in ", IMAGE, " at ", RegionInput(BOX_MASK), "?"])]
    )
    is_image = inputs["input_ids"][0] == model.config.image_token_id
    assert int(is_image.sum()) == model.config.tokens_per_image
    with torch.no_grad():
        model.region_encoder.marks.normal_()
        media = {k: inputs[k] for k in ("input_ids", "pixel_values")}
        marked = model.embed_inputs(**media, region_masks=inputs["region_masks"])[0, is_image]
        unmarked = model.embed_inputs(**media, check_placeholders=False)[0, is_image]
    changed = (marked != unmarked).any(-1)
    assert not changed[0] and changed[1:].any() and not changed[1:].all()  # CLS first, unmarked
