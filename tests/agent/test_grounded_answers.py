"""Grounded answers: with ``grounded_words`` in the profile, once a tool has run the planner cannot
name a listed word that neither the request nor a tool result of the turn has; before any tool
has run (a question about a picture) it is free to.

The random tiny model never writes such words by itself, so a logits processor pushes it along a
scripted answer ("I made it purple and yellow"); the grounding processor still has the last word."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from transformers import LogitsProcessor

from vitron.agent.chat_model import ChatVitron
from vitron.agent.grounded import UngroundedWordsProcessor, binds, phrases, ungrounded
from vitron.tools.profiles import ProfileError, load_profile
from vitron.tools.registry import ModelRegistry

TINY = Path(__file__).parents[2] / "tools" / "profiles" / "tiny.toml"
SCRIPTED = " I made it purple and yellow."
REQUEST = "make the small star yellow"


def grounded_profile(tmp_path: Path, words: str = '["purple", "yellow", "star"]') -> Path:
    text = TINY.read_text().replace(
        'checkpoint = "tiny"\nconstrained = false',
        f'checkpoint = "tiny"\nconstrained = false\ngrounded_words = {words}',
    )
    assert "grounded_words" in text
    path = tmp_path / "grounded.toml"
    path.write_text(text)
    return path


class FollowScript(LogitsProcessor):
    """Boosts the next token of ``tokens`` while the reply follows it, then end of sequence."""

    def __init__(self, tokens: list[int], eos: int) -> None:
        self.tokens, self.eos, self.start = tokens, eos, None

    def __call__(self, input_ids, scores):
        if self.start is None:
            self.start = input_ids.shape[1]
        scores = scores.clone()
        for row, ids in enumerate(input_ids[:, self.start :].tolist()):
            if ids == self.tokens[: len(ids)]:
                target = self.tokens[len(ids)] if len(ids) < len(self.tokens) else self.eos
                scores[row, target] += 1000.0
        return scores


class ScriptedAnswer(ChatVitron):
    def _processors(self, engine, call, messages=(), media=None):
        tokenizer = engine.processor.tokenizer
        script = tokenizer.encode(SCRIPTED, add_special_tokens=False)
        return [FollowScript(script, tokenizer.eos_token_id), *super()._processors(engine, call, messages, media)]  # fmt: skip


def answer(tmp_path: Path, messages, profile: Path | None = None) -> str:
    planner = ScriptedAnswer(profile=str(profile or grounded_profile(tmp_path)),
                             workspace=str(tmp_path / "ws"), device="cpu", max_new_tokens=24)  # fmt: skip
    return planner.invoke(messages).content


def after_a_tool(result: str) -> list:
    call = {"name": "edit_image", "args": {"instruction": REQUEST}, "id": "c1"}
    return [HumanMessage(REQUEST), AIMessage(content="", tool_calls=[call]),
            ToolMessage(result, tool_call_id="c1", name="edit_image")]  # fmt: skip


def test_after_a_tool_the_answer_cannot_name_what_the_turn_has_not_seen(tmp_path):
    torch.manual_seed(0)
    text = answer(tmp_path, after_a_tool("img_1: recoloured 'the small star'"))
    assert "purple" not in text.lower()  # the script wanted it; neither request nor result has it
    assert text.lower().startswith("i made it")  # the rest of the script was kept


def test_the_same_words_are_free_before_any_tool_and_without_the_option(tmp_path):
    torch.manual_seed(0)
    assert "purple" in answer(tmp_path, [HumanMessage("what colour is the star?")]).lower()
    plain = tmp_path / "plain.toml"
    plain.write_text(TINY.read_text())
    assert "purple" in answer(tmp_path, after_a_tool("img_1: done"), profile=plain).lower()


def test_a_word_in_a_tool_result_is_grounded(tmp_path):
    torch.manual_seed(0)
    text = answer(tmp_path, after_a_tool("img_1: recoloured 'the small star' purple"))
    assert "purple" in text.lower()


def test_words_are_held_across_token_boundaries():
    strings = ["", " p", "ur", "ple", " pur", "p", "le", " red", ".", " purpose"]
    processor = UngroundedWordsProcessor(strings, frozenset({"purple"}), special={0})
    scores = torch.zeros(3, len(strings))
    prompt = [[0], [0], [0]]
    processor(torch.tensor(prompt), scores)  # marks where the reply starts
    rows = [[0, 1, 2], [0, 4, 5], [0, 7, 8]]  # " p"+"ur", " pur"+"p", " red."
    kept = processor(torch.tensor(rows), scores)
    assert kept[0, 3] == float("-inf") and kept[1, 6] == float("-inf")  # would spell "purple"
    assert torch.isfinite(kept[0, 9]) and torch.isfinite(kept[2]).all()  # " purpose" is free
    assert ungrounded(["Purple", "star"], "make the STAR yellow") == {"purple"}


LISTED = ["small", "large", "purple", "triangle", "diamond", "right"]


NOUNS = ["triangle", "diamond"]


def test_the_phrases_of_listed_words_are_read_from_the_evidence():
    evidence = "Box the large dotted purple triangle right of the small diamond. ground: 1 box"
    assert phrases(LISTED + ["dotted"], evidence, NOUNS) == {
        ("large", "dotted", "purple", "triangle"), ("right",), ("small", "diamond")
    }  # fmt: skip
    assert ("large", "dotted", "purple", "triangle", "right") in phrases(
        LISTED + ["dotted"], evidence
    )
    assert phrases(LISTED, "nothing listed here") == frozenset()


def test_listed_words_before_a_noun_must_be_bound_to_it_as_the_evidence_binds_them():
    """The nano planner closed a box on "the large purple triangle right of the small diamond"
    with "The large purple diamond …": every word seen, the object made up."""
    strings = ["", " the", " large", " purple", " triangle", " diamond", " small", " of", ".",
               " dia", "mond", " right"]  # fmt: skip
    tokens = {text.strip(): i for i, text in enumerate(strings) if text.strip()}
    evidence = phrases(LISTED, "the large purple triangle right of the small diamond", NOUNS)
    processor = UngroundedWordsProcessor(strings, frozenset(), special={0}, listed=LISTED,
                                         nouns=NOUNS, phrases=evidence)  # fmt: skip
    processor(torch.tensor([[0]]), torch.zeros(1, len(strings)))  # marks where the reply starts
    rows = [
        ["the", "large", "purple"],  # next: "triangle", not "diamond", in one token or two
        ["the", "large", "purple", "dia"],
        ["the", "purple"],  # adjectives in the evidence's order; one left out keeps the binding
        ["the", "large", "purple", "triangle", "right", "of", "the", "small"],
        ["the", "triangle", "."],  # a phrase ends at any unlisted word or punctuation
        ["the", "small", "diamond"],  # and at its noun: "make the small diamond purple"
    ]
    blocked = torch.cat([
        processor(torch.tensor([[0, *(tokens[w] for w in row)]]), torch.zeros(1, len(strings)))
        for row in rows
    ]) == float("-inf")  # fmt: skip
    assert blocked[0, tokens["diamond"]] and not blocked[0, tokens["triangle"]]
    assert blocked[1, tokens["mond"]]
    assert blocked[2, tokens["large"]] and not blocked[2, tokens["triangle"]]
    assert not blocked[3, tokens["diamond"]] and blocked[3, tokens["triangle"]]
    assert not blocked[4].any()  # a new phrase may start with any word the evidence has
    assert not blocked[5, tokens["purple"]] and not blocked[5, tokens["large"]]

    # where earlier processors (the grammar, a copied instruction) left only a held token, it stays
    only = torch.full((1, len(strings)), float("-inf"))
    only[0, tokens["diamond"]] = 0.0
    row = torch.tensor([[0, *(tokens[w] for w in rows[0])]])
    assert torch.equal(processor(row, only), only)

    free = UngroundedWordsProcessor(strings, frozenset(), special={0}, listed=LISTED, nouns=NOUNS)
    free(torch.tensor([[0]]), torch.zeros(1, len(strings)))
    row = torch.tensor([[0, *(tokens[w] for w in ["the", "large", "purple"])]])
    assert torch.isfinite(free(row, torch.zeros(1, len(strings)))).all()  # no phrases: no binding


def test_a_phrase_runs_on_through_a_relation_to_what_it_relates():
    """Boxing "the large dotted purple triangle right of the small diamond", the nano planner
    closed with "… right of the small diamond right of the triangle is in the box shown"."""
    request = "Box the large purple triangle right of the small diamond."
    assert phrases(LISTED, request, NOUNS, ["right"]) == {
        ("large", "purple", "triangle", "right", "small", "diamond")
    }
    assert phrases(LISTED, "the diamond, right of it", NOUNS, ["right"]) == {
        ("diamond",),
        ("right",),
    }
    strings = ["", " the", " large", " purple", " triangle", " diamond", " small", " of", ".",
               " right", " is"]  # fmt: skip
    tokens = {text.strip(): i for i, text in enumerate(strings) if text.strip()}

    def blocked(relations: list[str], written: list[str]) -> torch.Tensor:
        processor = UngroundedWordsProcessor(
            strings, frozenset(), special={0}, listed=LISTED, nouns=NOUNS, relations=relations,
            phrases=phrases(LISTED, request, NOUNS, relations),
        )  # fmt: skip
        processor(torch.tensor([[0]]), torch.zeros(1, len(strings)))
        row = torch.tensor([[0, *(tokens[w] for w in written)]])
        return processor(row, torch.zeros(1, len(strings)))[0] == float("-inf")

    said = ["the", "large", "purple", "triangle", "right", "of", "the", "small", "diamond"]
    assert blocked(["right"], said)[tokens["right"]]  # nothing is right of the diamond
    assert not blocked(["right"], said)[tokens["is"]]
    assert not blocked([], said)[tokens["right"]]  # without relations the phrase ended at its noun
    assert blocked(["right"], ["the", "small", "diamond"])[tokens["right"]]
    assert not blocked(["right"], ["the", "purple", "triangle"])[tokens["right"]]
    after = blocked(["right"], ["the", "triangle", "right", "of", "the"])  # its object, bound
    assert after[tokens["triangle"]] and after[tokens["large"]]
    assert not after[tokens["small"]] and not after[tokens["diamond"]]
    assert not blocked(["right"], ["the", "diamond", "."])[tokens["right"]]  # a new phrase
    # a relation the evidence has on its own (a direction: "the star moves right") stays free
    moves = phrases(LISTED, "Animate it: the small diamond moves right.", NOUNS, ["right"])
    processor = UngroundedWordsProcessor(strings, frozenset(), special={0}, listed=LISTED,
                                         nouns=NOUNS, relations=["right"], phrases=moves)  # fmt: skip
    processor(torch.tensor([[0]]), torch.zeros(1, len(strings)))
    row = torch.tensor(
        [[0, *(tokens[w] for w in ["the", "small", "diamond", "right", "of", "the"])]]
    )
    assert torch.isfinite(processor(row[:, :4], torch.zeros(1, len(strings)))[0, tokens["right"]])
    after = processor(row, torch.zeros(1, len(strings)))[0] == float("-inf")
    assert after[tokens["small"]] and after[tokens["diamond"]]  # but relates nothing
    # the longer phrase binds no more than before: the triangle's words stay off the diamond
    assert blocked(["right"], ["the", "large", "purple"])[tokens["diamond"]]
    assert not blocked(["right"], ["the", "large", "purple"])[tokens["triangle"]]


def test_a_bound_phrase_leaves_out_no_noun_or_relation_once_begun():
    phrase = ("large", "orange", "triangle", "left", "small", "diamond")
    anchors = frozenset({"triangle", "diamond", "left"})
    assert binds(("orange", "triangle"), phrase, anchors)
    assert binds(("small", "diamond"), phrase, anchors)  # what comes before it may be left out
    assert binds(("triangle", "left", "diamond"), phrase, anchors)
    assert not binds(("orange", "diamond"), phrase, anchors)
    assert not binds(("large", "left"), phrase, anchors)
    assert not binds(("diamond", "triangle"), phrase, anchors)
    assert binds(("orange", "diamond"), phrase, frozenset())  # gaps allowed without anchors


def test_a_malformed_option_is_a_clear_error(tmp_path):
    registry = ModelRegistry(load_profile(grounded_profile(tmp_path, '"purple"')), device="cpu")
    with pytest.raises(ProfileError, match="grounded_words must be a list of words"):
        registry.get("vitron_llm")
    words = '["purple", "star"]\ngrounded_nouns = ["star", "circle"]'
    registry = ModelRegistry(load_profile(grounded_profile(tmp_path, words)), device="cpu")
    with pytest.raises(
        ProfileError, match=r"grounded_nouns must be words of grounded_words: \['circle'\]"
    ):
        registry.get("vitron_llm")
    words = '["star", "left"]\ngrounded_nouns = ["star"]\ngrounded_relations = ["left", "of"]'
    registry = ModelRegistry(load_profile(grounded_profile(tmp_path, words)), device="cpu")
    with pytest.raises(
        ProfileError, match=r"grounded_relations must be words of grounded_words: \['of'\]"
    ):
        registry.get("vitron_llm")
