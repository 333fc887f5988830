"""Constrained decoding: even the random tiny model emits only well-formed invocations, in this
project's grammar and in the released weights' own (``<module>B</module>`` spelled in text); with
``copy_instructions`` every instruction is spelled from the request's words only, in their order."""

from __future__ import annotations

import re

import pytest
import torch
from transformers import LogitsProcessor, LogitsProcessorList

from vitron.agent.build import build_tiny_vitron
from vitron.agent.constrained import InvocationGrammar
from vitron.agent.copying import (
    INSTRUCTION_VERBS,
    CopiedInstructionProcessor,
    opening_verbs,
    request_sequence,
    request_words,
)
from vitron.agent.invocation import MODULES, format_invocation
from vitron.agent.parsing import parse_reply

BOUND = ["segment_image", "ground", "generate_image", "edit_video"]
MAX_NEW = 40


@pytest.fixture(scope="module")
def setup():
    model, processor = build_tiny_vitron(seed=0)
    grammar = InvocationGrammar(processor.tokenizer, BOUND)
    return model, processor, grammar


class Nudge(LogitsProcessor):
    """Makes the random model open invocations, close instructions and add regions often, so
    the grammar is exercised in most samples (the grammar processor still has the last word)."""

    def __init__(self, grammar: InvocationGrammar) -> None:
        ids = grammar.tag
        self.boost = {ids["<Module>"]: 5.0, ids["</Instruction>"]: 4.0, ids["<Region>"]: 6.0}
        self.boost.update({i: 5.0 for i in grammar.signal_ids.values()})

    def __call__(self, input_ids, scores):
        scores = scores.clone()
        for token, value in self.boost.items():
            scores[:, token] += value
        return scores


def sample(model, processor, processors, seed: int, rows: int) -> list[str]:
    prompt = processor("USER: segment the zebra ASSISTANT:")
    batch = {k: v.repeat(rows, 1) for k, v in prompt.items()}
    torch.manual_seed(seed)
    with torch.no_grad():
        out = model.generate(
            **batch,
            max_new_tokens=MAX_NEW,
            do_sample=True,
            top_k=0,
            logits_processor=LogitsProcessorList(processors),
        )
    start = batch["input_ids"].shape[1]
    return [processor.decode(row[start:]) for row in out]


def test_200_random_generations_only_emit_well_formed_invocations(setup):
    model, processor, grammar = setup
    texts: list[str] = []
    for seed in range(4):
        texts += sample(
            model, processor, [Nudge(grammar), grammar.logits_processor(MAX_NEW)], seed, 50
        )
    assert len(texts) == 200
    opened = [t for t in texts if "<Module>" in t]
    assert len(opened) >= 100  # the grammar was really exercised
    calls = 0
    for text in opened:
        parsed = parse_reply(text, modules=BOUND)
        assert parsed.errors == [], (text, parsed.errors)
        assert parsed.invocations and len(parsed.calls) == text.count("<Module>")
        for invocation in parsed.invocations:
            assert invocation.module in BOUND
            assert invocation.instruction
            # the signal is optional (text first, signal as an addition)
            assert invocation.signal_token in (None, MODULES[invocation.module].signal_token)
            for box in invocation.regions:
                assert all(0.0 <= v <= 1.0 for v in box)
        calls += len(parsed.calls)
    assert calls >= len(opened)
    assert sum("<Region>" in t for t in opened) >= 20  # regions were exercised too
    with_signal = sum(any(t in text for t in ("[SEG]", "[GEN]", "[EDIT]")) for text in opened)
    assert 0 < with_signal < len(opened)  # both with and without a signal token


class Spell(LogitsProcessor):
    """Makes the random model spell the released markup often: tokens that continue ``<module>``
    or ``</instruction>`` from what the row ends with get a large boost (the grammar decides)."""

    def __init__(self, grammar: InvocationGrammar, start: int) -> None:
        self.grammar = grammar
        self.start = start

    def __call__(self, input_ids, scores):
        scores = scores.clone()
        strings = self.grammar.strings
        for row, ids in enumerate(input_ids[:, self.start :].tolist()):
            text = "".join(strings[i] for i in ids).lower()
            for target in ("<module>", "</instruction>"):
                done = max(n for n in range(len(target)) if text.endswith(target[:n]))
                for i in self.grammar.plain:
                    if strings[i] and target[done:].startswith(strings[i]):
                        scores[row, i] += 10.0 if done else 3.0
            for i in self.grammar.signal_ids.values():
                scores[row, i] += 2.0
        return scores


def test_200_random_generations_in_the_released_format_parse(setup):
    model, processor, _ = setup
    grammar = InvocationGrammar(processor.tokenizer, BOUND, style="released")
    assert grammar.modules == ["edit_video", "generate_image", "segment_image"]  # lettered only
    prompt = processor("USER: segment the zebra ASSISTANT:")
    start = prompt["input_ids"].shape[1]
    texts: list[str] = []
    for seed in range(4):
        torch.manual_seed(seed)
        with torch.no_grad():
            out = model.generate(
                **{k: v.repeat(50, 1) for k, v in prompt.items()},
                max_new_tokens=64,
                do_sample=True,
                top_k=0,
                logits_processor=LogitsProcessorList(
                    [Spell(grammar, start), grammar.logits_processor(64)]
                ),
            )
        texts += [processor.decode(row[start:]) for row in out]
    assert len(texts) == 200
    assert all("<Module>" not in t for t in texts)  # never the new tag tokens
    opened = [t for t in texts if "<module>" in t]
    assert len(opened) >= 100
    for text in texts:
        parsed = parse_reply(text, modules=BOUND)
        assert parsed.errors == [], (text, parsed.errors)
    for text in opened:
        parsed = parse_reply(text, modules=BOUND)
        assert parsed.invocations, text
        for invocation in parsed.invocations:
            assert invocation.style == "released"
            assert invocation.module in grammar.modules
            assert invocation.signal_token in (None, MODULES[invocation.module].signal_token)
    letters = {inv.module for t in opened for inv in parse_reply(t).invocations}
    assert len(letters) >= 2


def test_the_released_grammar_needs_a_lettered_module(setup):
    _, processor, _ = setup
    with pytest.raises(ValueError, match="letter in the released format"):
        InvocationGrammar(processor.tokenizer, ["ground", "retrieve"], style="released")


def test_without_the_processor_the_same_sampling_is_malformed(setup):
    model, processor, grammar = setup
    texts = sample(model, processor, [Nudge(grammar)], seed=0, rows=30)
    opened = [t for t in texts if "<Module>" in t]
    assert opened
    malformed = [t for t in opened if parse_reply(t, modules=BOUND).errors]
    assert len(malformed) >= len(opened) // 2


def test_budget_is_respected_and_names_are_restricted(setup):
    model, processor, grammar = setup
    # Too few tokens for any invocation: <Module> is never opened.
    prompt = processor("x")
    with torch.no_grad():
        out = model.generate(
            **{k: v.repeat(20, 1) for k, v in prompt.items()},
            max_new_tokens=4,
            do_sample=True,
            logits_processor=LogitsProcessorList([Nudge(grammar), grammar.logits_processor(4)]),
        )
    texts = [processor.decode(r[prompt["input_ids"].shape[1] :]) for r in out]
    assert all("<Module>" not in t for t in texts)
    # After "<Module>seg" only continuations of a bound module name are allowed.
    state = grammar.state_of(processor.tokenizer.encode("<Module>seg", add_special_tokens=False))
    allowed = grammar.allowed(state).nonzero().flatten().tolist()
    assert allowed
    for token in allowed:
        assert "segment_image".startswith("seg" + grammar.strings[token])
    # Inside a region only digits and the fixed punctuation are allowed.
    state = grammar.state_of(
        processor.tokenizer.encode(
            "<Module>ground</Module><Instruction>cups</Instruction><Region>(12, ",
            add_special_tokens=False,
        )
    )
    assert all(
        set(grammar.strings[t]) <= set("0123456789, ()")
        for t in grammar.allowed(state).nonzero().flatten().tolist()
    )


# ------------------------------------------------------------------ copied instructions

REQUEST = "Show me which pixels belong to the large green star."


def generate_for_request(model, processor, processors, seed: int, rows: int = 25) -> list[str]:
    prompt = processor(f"USER: {REQUEST} ASSISTANT:")
    batch = {k: v.repeat(rows, 1) for k, v in prompt.items()}
    torch.manual_seed(seed)
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=MAX_NEW, do_sample=True, top_k=0,
                             logits_processor=LogitsProcessorList(processors))  # fmt: skip
    start = batch["input_ids"].shape[1]
    return [processor.decode(row[start:]) for row in out]


def instructions(texts: list[str]) -> list[str]:
    return [
        c["args"]["instruction"] for text in texts for c in parse_reply(text, modules=BOUND).calls
    ]


def test_every_instruction_is_spelled_from_the_requests_words(setup):
    model, processor, grammar = setup
    copied = []
    for seed in range(4):
        processors = [Nudge(grammar), grammar.logits_processor(MAX_NEW),
                      CopiedInstructionProcessor(grammar, REQUEST)]  # fmt: skip
        copied += instructions(generate_for_request(model, processor, processors, seed))
    assert len(copied) >= 20  # the nudge makes most samples invoke
    assert request_words(REQUEST) == {"show", "me", "which", "pixels", "belong", "to", "the",
                                      "large", "green", "star", "."}  # fmt: skip
    words = request_words(REQUEST) | INSTRUCTION_VERBS  # "recolour it" is passed on as "make …"
    sequence = request_sequence(REQUEST)
    for text in copied:
        assert text.strip(), text
        *whole, last = re.findall(r"[^\W_]+|[^\w\s]", text.lower())
        position = -1  # each word comes later in the request than the one before (verbs aside)
        for word in whole:
            if word not in INSTRUCTION_VERBS:
                assert word in sequence[position + 1 :], text
                position = sequence.index(word, position + 1)
        # the last word is whole, or cut short by the token budget's forced close
        assert last in words or any(w.startswith(last) for w in words), text
        assert text == text.strip() or text.startswith(" "), text
        assert "  " not in text and "\n" not in text, text  # one plain space between words
        assert not re.search(r"[^\W_][A-Z]", text), text  # capitals only open a word

    free = []  # without the copy the same random model writes other words
    for seed in range(4):
        free += instructions(generate_for_request(model, processor, [Nudge(grammar),
                                      grammar.logits_processor(MAX_NEW)], seed))  # fmt: skip
    assert any(not set(re.findall(r"\w+", t.lower())) <= words for t in free)


def allowed_after(processor, grammar, request: str, written: str, keep=frozenset(),
                  module: str = "edit_video") -> set[str]:  # fmt: skip
    """The next tokens ``CopiedInstructionProcessor`` allows once ``written`` is inside a
    ``module`` instruction for ``request`` (decoded, stripped; an edit's by default, which an edit
    verb may open)."""
    copy = CopiedInstructionProcessor(grammar, request, keep)
    prompt = processor.tokenizer(f"USER: {request} ASSISTANT:").input_ids
    invocation = format_invocation(module, written).partition("</Instruction>")[0]
    reply = processor.tokenizer(invocation, add_special_tokens=False).input_ids
    scores = torch.zeros(1, grammar.vocab_size)
    copy(torch.tensor([prompt]), scores)  # the first call marks where the reply starts
    kept = copy(torch.tensor([prompt + reply]), scores)[0]
    return {processor.tokenizer.decode([i]).strip() for i in torch.isfinite(kept).nonzero()[:, 0]}


def test_an_instruction_cannot_reach_back_to_a_word_it_already_passed(setup):
    _, processor, grammar = setup
    request = "Put a bounding box on the large dotted purple triangle right of the small diamond."
    # the nano planner wrote "… right of the triangle" here; only words after "the" remain
    after_the = allowed_after(
        processor, grammar, request, "the large dotted purple triangle right of the"
    )
    assert "s" in after_the and "tri" not in after_the and "lar" not in after_the
    # words may be left out ("the triangle"), and an edit verb may open the instruction, once
    assert "tri" in allowed_after(processor, grammar, request, "the")
    assert "ma" in allowed_after(processor, grammar, request, "")
    assert "ma" not in allowed_after(processor, grammar, request, "make")
    assert "ma" not in allowed_after(processor, grammar, request, "make the")  # not "make the make"
    assert "lar" in allowed_after(processor, grammar, request, "make the")
    # an edit's target words come later in the request than its referent
    multi = "Find the mask of the small red diamond and recolour it yellow."
    after_referent = allowed_after(processor, grammar, multi, "make the small red diamond")
    assert "yell" in after_referent and "s" not in after_referent


def test_a_request_with_an_edit_verb_is_passed_on_with_that_verb(setup):
    _, processor, grammar = setup
    # the nano planner wrote "move the small star yellow" for this request: another edit
    recolour = allowed_after(processor, grammar, "Make the small star yellow.", "")
    assert "ma" in recolour and "mo" not in recolour and "r" not in recolour
    both = allowed_after(processor, grammar, "Remove the circle and make the star red.", "")
    assert {"r", "ma"} <= both and "mo" not in both
    # a request phrased without one may open with any ("recolour it" -> "make …")
    multi = allowed_after(processor, grammar, "Find the mask of the star and recolour it red.", "")
    assert {"ma", "mo"} <= multi
    assert opening_verbs(request_sequence("Please add a red circle at the left.")) == {"add"}


def test_only_an_editing_modules_instruction_may_open_with_an_edit_verb(setup):
    _, processor, grammar = setup
    # asked to "segment the astronaut" in a photo, the nano planner called
    # retrieve("make the Astronaut"): no request word, and no edit a retrieval could do
    request = "Segment the astronaut."
    verbs = {"m", "ma", "mo", "r", "re"}  # "make", "move", "remove"; "a" also opens "astronaut"
    assert {"the", *verbs} <= allowed_after(processor, grammar, request, "", module="edit_video")
    for module in ("segment_image", "ground", "generate_image"):
        opening = allowed_after(processor, grammar, request, "", module=module)
        assert "the" in opening and not verbs & opening, module
    # a request's own word stays a word any instruction may copy
    assert "ma" in allowed_after(processor, grammar, "Make the star red.", "", module="ground")


def test_only_an_edit_instruction_gathers_words_from_two_clauses(setup):
    _, processor, grammar = setup
    request = "Generate a small orange circle on a beige background, then segment the circle in it."
    # the nano planner segmented "a small orange circle on a beige background circle in it"
    written = "a small orange circle on a beige background"
    assert "cir" not in allowed_after(processor, grammar, request, written)
    assert "," in allowed_after(processor, grammar, request, written)
    assert "cir" in allowed_after(processor, grammar, request, "the")  # a fresh start may
    # "First segment the star, then make it red" is passed on as "make the star red"
    edit = "First segment the star, then make it red."
    assert "re" in allowed_after(processor, grammar, edit, "make the star")
    assert "re" not in allowed_after(processor, grammar, edit, "the star")


def test_an_instruction_cannot_leave_out_a_word_that_tells_objects_apart(setup):
    _, processor, grammar = setup
    request = "Put a box on the large dotted purple triangle right of the small cat."
    keep = frozenset({"small", "large", "purple", "dotted"})
    written = "the large dotted purple triangle right of the"
    # the nano planner wrote "… right of the diamond" for "… of the small diamond": another one
    assert "cat" in allowed_after(processor, grammar, request, written)
    assert "cat" not in allowed_after(processor, grammar, request, written, keep)
    assert "s" in allowed_after(processor, grammar, request, written, keep)
    # nor stop right before one: "make the" for "make the purple circle red"
    recolour = "Please make the large purple circle red."
    assert "</Instruction>" in allowed_after(processor, grammar, recolour, "make the large")
    assert "</Instruction>" not in allowed_after(
        processor, grammar, recolour, "make the large", keep
    )
    assert "</Instruction>" in allowed_after(
        processor, grammar, recolour, "make the large purple circle", keep
    )


def test_an_instruction_cannot_end_on_a_word_that_leaves_its_phrase_open(setup):
    _, processor, grammar = setup
    keep = frozenset({"purple", "triangle", "blue"})
    request = "Please make the purple triangle blue in the video."
    # the nano planner wrote "make the": a later "the" ("in the video") let the keep rule pass
    for written in ("make the", "make the purple triangle blue in", "the"):
        assert "</Instruction>" not in allowed_after(processor, grammar, request, written, keep)
        assert "</Instruction>" not in allowed_after(processor, grammar, request, written)
    assert "</Instruction>" in allowed_after(
        processor, grammar, request, "make the purple triangle blue", keep
    )
    # other words may still be left out: "the mask of" before the object, "and recolour it"
    multi = "Find the mask of the small red diamond and recolour it yellow."
    assert "s" in allowed_after(processor, grammar, multi, "make the", keep)
    assert "yell" in allowed_after(processor, grammar, multi, "make the small red diamond", keep)


def test_the_profile_option_turns_it_on_for_chat_vitron(services):
    from vitron.agent.loading import VitronEngine
    from vitron.agent.steering import logits_processors

    model, processor = build_tiny_vitron(seed=0)
    engine = VitronEngine(model=model, processor=processor, constrained=True)
    kinds = [type(p).__name__ for p in logits_processors(engine, BOUND, "auto", None, 16, REQUEST)]
    assert "CopiedInstructionProcessor" not in kinds  # off unless the profile says so
    engine.copy_instructions = True
    kinds = [type(p).__name__ for p in logits_processors(engine, BOUND, "auto", None, 16, REQUEST)]
    assert "InvocationLogitsProcessor" in kinds and "CopiedInstructionProcessor" in kinds
    unconstrained = logits_processors(engine, BOUND, "auto", False, 16, REQUEST)
    assert "CopiedInstructionProcessor" not in [type(p).__name__ for p in unconstrained]
    # after a tool, grounded words come last: they yield where the copy leaves nothing else
    engine.grounded_words = frozenset({"star", "yellow"})
    after = logits_processors(engine, BOUND, "auto", None, 16, REQUEST, evidence=REQUEST)
    assert [type(p).__name__ for p in after][-1] == "UngroundedWordsProcessor"


def test_modules_whose_input_the_conversation_lacks_are_left_out(services):
    """The planner fills a module's image or video from the conversation: with none there, the
    grammar does not offer the modules that take one (the nano planner called ``track_video`` for
    "make a short video of …"), unless ``tool_choice`` names one."""
    from vitron.agent.loading import VitronEngine
    from vitron.agent.steering import logits_processors

    model, processor = build_tiny_vitron(seed=0)
    engine = VitronEngine(model=model, processor=processor, constrained=True)

    def offered(media, choice="auto"):  # noqa: ANN001, ANN202
        processors = logits_processors(engine, BOUND, choice, None, 16, REQUEST, media=media)
        (grammar,) = [p.grammar for p in processors if hasattr(p, "grammar")]
        return set(grammar.modules)

    assert offered({}) == {"generate_image"}  # nothing to segment, ground or edit
    assert offered({"image": "img_0123456789abcdef"}) == {"segment_image", "ground",
                                                         "generate_image"}  # fmt: skip
    assert offered({"image": "img_0123456789abcdef", "video": "vid_0123456789abcdef"}) == set(BOUND)
    assert offered(None) == set(BOUND)  # media not known: nothing is left out
    assert offered({}, choice="edit_video") == {"edit_video"}  # asked for by name
