"""Best-match places: with ``best_match_places`` in the profile, once retrieve has ranked the
media, a number the closing writes after "picture" or "video" is the place of the ranking's best
match; other words, and numbers after other words, are the planner's.

The random tiny model writes no such answer by itself, so a scripted answer ("Picture 1 shows it.")
pushes it along, as in test_grounded_answers.py, and after "Picture" any digit is preferred (the
nano planner always writes a number there); the place processor still decides which."""

from __future__ import annotations

import re
from pathlib import Path

import torch
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from transformers import LogitsProcessor

from tests.agent.test_grounded_answers import TINY, FollowScript
from vitron.agent.chat_model import ChatVitron
from vitron.agent.places import BestMatchPlaceProcessor, best_places
from vitron.tools.profiles import load_profile

STRINGS = ["Picture", " 1", " 7", " 10", "0", "7", " shows", ".", " 2", " made", "</s>"]
"""A toy vocabulary: each token's text as it adds to earlier text."""
EOS = len(STRINGS) - 1


def held_after(text_tokens: list[int], places: dict[str, str]) -> set[str]:
    """The toy tokens held back after ``text_tokens`` (a one-row batch, nothing in the prompt)."""
    processor = BestMatchPlaceProcessor(STRINGS, places, special=[EOS])
    processor(torch.zeros((1, 0), dtype=torch.long), torch.zeros((1, len(STRINGS))))  # the start
    ids = torch.tensor([text_tokens], dtype=torch.long)
    scores = processor(ids, torch.zeros((1, len(STRINGS))))
    return {STRINGS[i] for i in torch.isinf(scores[0]).nonzero().flatten().tolist()}


def test_digits_after_picture_spell_the_best_match_and_nothing_else_is_touched():
    # " 7" and words stay free; "0" would make "Picture0"
    assert held_after([0], {"picture": "7"}) == {" 1", " 10", " 2", "0"}
    assert held_after([0, 2], {"picture": "7"}) == {"0", "7"}  # no "picture 70"
    assert held_after([6], {"picture": "7"}) == set()  # after another word: free
    assert held_after([6], {"video": "3"}) == {"Picture"}  # no picture ranked: none named
    # a two-digit place one token spells: that token, not " 1" then "0"
    assert held_after([0], {"picture": "10"}) == {" 1", " 7", " 2", "7", "0"}
    # one no token spells: its first digit, which must be followed by its second
    assert held_after([0], {"picture": "70"}) == {" 1", " 10", " 2", "0"}
    assert held_after([0, 2], {"picture": "70"}) == set(STRINGS) - {"0"}
    assert held_after([0, 2, 4], {"picture": "70"}) == {"0", "7"}
    assert held_after([0, EOS], {"picture": "7"}) == set()  # a special token ends the cue
    assert held_after([6], {}) == {"Picture"}  # nothing ranked in the turn
    # a place word glued to the word before (the nano planner wrote "madePicture 1") is one too
    assert held_after([9, 0], {"picture": "7"}) == {" 1", " 10", " 2", "0"}


def test_best_places_reads_the_ranking_retrieve_writes(invoke, photo, square_video):
    result = invoke("retrieve", instruction="an astronaut")
    best = result.artifact["ranking"][0]["place"]  # "picture 2", "video 1", …
    kind, number = best.split()
    assert best_places(result.content) == {kind: number}
    assert best_places("no ranking here") == {}


def places_profile(tmp_path: Path, on: bool) -> Path:
    text = TINY.read_text().replace(
        'checkpoint = "tiny"\nconstrained = false',
        f'checkpoint = "tiny"\nconstrained = false\nbest_match_places = {str(on).lower()}',
    )
    path = tmp_path / f"places_{on}.toml"
    path.write_text(text)
    return path


class WantsANumber(LogitsProcessor):
    """After "Picture", prefers any digit (as the nano planner does): a planner that wants to name
    a number but would pick the wrong one."""

    def __init__(self, strings: list[str]) -> None:
        self.strings, self.start = strings, None
        self.digits = [i for i, text in enumerate(strings) if re.match(r"\s?\d", text)]

    def __call__(self, input_ids, scores):
        if self.start is None:
            self.start = input_ids.shape[1]
        scores = scores.clone()
        for row, ids in enumerate(input_ids[:, self.start :].tolist()):
            if "".join(self.strings[i] for i in ids if i < len(self.strings)).endswith("Picture"):
                scores[row, self.digits] += 500.0
        return scores


class ScriptedAnswer(ChatVitron):
    def _processors(self, engine, call, messages=(), media=None):
        tokenizer = engine.processor.tokenizer
        script = tokenizer.encode(" Picture 1 shows it.", add_special_tokens=False)
        return [FollowScript(script, tokenizer.eos_token_id), WantsANumber(engine.token_strings()),
                *super()._processors(engine, call, messages, media)]  # fmt: skip


RANKED = ("2 of 2 media ranked against 'a cup of coffee' (CLIP cosine similarity, best first): "
          "1. img_0123456789abcdef (picture 2) score 0.412; 2. img_fedcba9876543210 (picture 1) "
          "score 0.118")  # fmt: skip


def closing(tmp_path: Path, on: bool, tool: str = "retrieve", result: str = RANKED) -> str:
    request = "Find the image with a cup of coffee."
    call = {"name": tool, "args": {"instruction": "a cup of coffee"}, "id": "c1"}
    messages = [HumanMessage(request), AIMessage(content="", tool_calls=[call]),
                ToolMessage(result, tool_call_id="c1", name=tool)]  # fmt: skip
    planner = ScriptedAnswer(profile=str(places_profile(tmp_path, on)), device="cpu",
                             workspace=str(tmp_path / "ws"), max_new_tokens=24)  # fmt: skip
    torch.manual_seed(0)
    return planner.invoke(messages).content


def test_the_closing_names_the_picture_retrieve_ranked_first(tmp_path):
    assert closing(tmp_path, on=False).startswith("Picture 1 shows")  # the script, unchanged
    named = closing(tmp_path, on=True)  # its place (tiny's vocabulary may glue the digit on)
    assert re.match(r"Picture ?2(?!\d)", named), named


def test_with_no_ranking_in_the_turn_the_closing_names_no_picture(tmp_path):
    """The nano planner opened some generation closings with retrieval's "Picture 7 shows …"."""
    made = "img_0123456789abcdef: 32x32 image of 'a cup of coffee' (Stable Diffusion, seed 7)"
    assert closing(tmp_path, False, "generate_image", made).startswith("Picture 1 shows")
    answer = closing(tmp_path, True, "generate_image", made)
    assert "picture" not in answer.lower(), answer


def test_the_nano_planners_ask_for_it_and_tiny_does_not():
    nano = load_profile("nano")
    assert nano.component("vitron_llm").options.get("best_match_places") is True
    assert nano.component("vitron_llm_no_synergy").options.get("best_match_places") is True
    assert not load_profile("tiny").component("vitron_llm").options.get("best_match_places")
