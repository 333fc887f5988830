"""The ``vitron-7b`` path at tiny sizes: a profile shaped like ``vitron-7b`` (planner in the released
format, constrained decoding on, signal projectors named but not trained) plans with constrained
decoding in the released grammar, and every tool call it makes runs on the text alone, its result
saying so once per session; once the projectors exist, the same calls use the signal.

The random tiny model cannot choose sensible invocations, so a logits processor nudges it along
one scripted reply (what a trained model would write); the grammar processor still has the last
word, and the reply is parsed, stored and executed exactly as a real one.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from langchain_core.messages import ToolMessage
from skimage import data
from transformers import LogitsProcessor

from vitron.agent.chat_model import ChatVitron
from vitron.agent.invocation import MODULES, RELEASED_AFTER_NAME, RELEASED_CLOSE, RELEASED_OPEN
from vitron.graphs import user_message
from vitron.tools.backend import ServiceSettings, build_tools, get_services
from vitron.tools.models.signal_projector import SignalProjector, SignalProjectorConfig

TINY = Path(__file__).parents[2] / "tools" / "profiles" / "tiny.toml"
THREAD = "seven-b"
PROJECTORS = {"sam_signal": (64, 64), "sam2_signal": (64, 256), "diffusion_signal": (32, 32)}
"""The tiny profile's projectors: name -> (in_dim, out_dim)."""
SCRIPT = {
    "segment_image": "the astronaut",
    "track_video": "the red square",
    "generate_image": "a red apple",
    "edit_image": "make it snowy",
    "edit_video": "make it snowy",
    "generate_video": "waves on a beach",
    "image_to_video": "the astronaut waves",
}
"""Every module the released format can name, with an instruction the tiny backends can serve."""
USES = {
    "segment_image": "sam_signal",
    "track_video": "sam2_signal",
    **{m: "diffusion_signal" for m in SCRIPT if m not in ("segment_image", "track_video")},
}


def profile(tmp_path: Path, projectors: Path | None) -> Path:
    """tiny.toml with the planner in the released format and the projectors at ``projectors``
    (a directory that may not exist: then they are absent, as before training)."""
    text = TINY.read_text()
    text = text.replace('name = "tiny"', 'name = "vitron-7b-shaped"', 1)
    text = text.replace(
        'checkpoint = "tiny"\nconstrained = false',
        'checkpoint = "tiny"\nformat = "released"\nconstrained = true',
    )
    assert 'format = "released"' in text
    for name in PROJECTORS:
        section = re.compile(rf'(\[components\.{name}\][^\[]*?)checkpoint = "tiny"', re.S)
        text, count = section.subn(
            lambda m, n=name: f'{m.group(1)}checkpoint = "{(projectors or tmp_path) / n}"', text
        )
        assert count == 1, name
    path = tmp_path / "vitron-7b-shaped.toml"
    path.write_text(text)
    return path


def script(processor) -> list[int]:
    """The reply's tokens: every module invoked in the released format, each with its signal."""
    parts = []
    for module, instruction in SCRIPT.items():
        letter = MODULES[module].released_letter
        signal = MODULES[module].signal_token
        parts.append(
            f"{RELEASED_OPEN}{letter}{RELEASED_AFTER_NAME}{instruction}{RELEASED_CLOSE}{signal}"
        )
    return processor.tokenizer.encode("On it. " + " ".join(parts), add_special_tokens=False)


class FollowScript(LogitsProcessor):
    """Boosts the next token of ``tokens`` while the reply follows it, then end of sequence."""

    def __init__(self, tokens: list[int], eos: int) -> None:
        self.tokens = tokens
        self.eos = eos
        self.start: int | None = None

    def __call__(self, input_ids, scores):
        if self.start is None:
            self.start = input_ids.shape[1]
        scores = scores.clone()
        for row, ids in enumerate(input_ids[:, self.start :].tolist()):
            if ids == self.tokens[: len(ids)]:
                target = self.tokens[len(ids)] if len(ids) < len(self.tokens) else self.eos
                scores[row, target] += 1000.0
        return scores


class ScriptedVitron(ChatVitron):
    """ChatVitron with the script's nudge in front of its own processors (grammar included)."""

    def _processors(self, engine, call, messages=(), media=None):
        processors = super()._processors(engine, call, messages, media)
        eos = engine.processor.tokenizer.eos_token_id
        return [FollowScript(script(engine.processor), eos), *processors]


def plan_and_run(tmp_path: Path, projectors: Path | None):
    """One planning step on the profile, then every call through its tool, as the graph does."""
    path = profile(tmp_path, projectors)
    services = get_services(
        ServiceSettings(profile=str(path), workspace=str(tmp_path / "ws"), device="cpu")
    )
    workspace = services.workspace.for_thread(THREAD)
    photo = workspace.put_image(data.astronaut()[::4, ::4])
    frames = []
    for t in range(4):
        frame = np.full((48, 64, 3), 30, dtype=np.uint8)
        frame[14:34, 4 + 8 * t : 24 + 8 * t] = (220, 40, 40)
        frames.append(frame)
    video = workspace.put_video(frames, fps=4)
    tools = {tool.name: tool for tool in build_tools(services, names=list(MODULES))}
    planner = ScriptedVitron(
        profile=str(path), workspace=str(tmp_path / "ws"), device="cpu", max_new_tokens=400
    ).bind_tools(list(tools.values()))
    engine = services.models.get("vitron_llm")
    assert engine.format == "released" and engine.constrained  # the profile's, not the test's
    message = planner.invoke([user_message("do it all", media=[photo, video])], thread_id=THREAD)
    assert message.response_metadata["parse_errors"] == [], message.content
    assert [c["name"] for c in message.tool_calls] == list(SCRIPT)
    results: dict[str, ToolMessage] = {}
    for call in message.tool_calls:
        assert call["args"]["signal"].startswith("emb_")
        assert call["args"]["instruction"] == SCRIPT[call["name"]]
        config = {"configurable": {"thread_id": THREAD}}
        results[call["name"]] = tools[call["name"]].invoke({**call, "type": "tool_call"}, config)
    return services, message, results


def test_released_planner_with_absent_projectors_runs_every_call_text_only_noting_it_once(
    tmp_path,
):
    torch.manual_seed(0)
    services, message, results = plan_and_run(tmp_path, projectors=None)
    assert message.content == "On it."
    noted: dict[str, list[str]] = {}
    for module, result in results.items():
        assert result.status == "success", (module, result.content)
        for note in result.artifact.get("notes", []):
            noted.setdefault(module, []).append(note)
            assert note in result.content and "ran on the text instruction alone" in note
    # each absent projector is named once in the session: in the first result that needed it
    first_user = {}
    for module in SCRIPT:
        first_user.setdefault(USES[module], module)
    assert sorted(noted) == sorted(first_user.values())
    for component, module in first_user.items():
        assert noted[module] == [next(n for n in noted[module] if repr(component) in n)]
    assert not set(PROJECTORS) & set(services.models.loaded())


def test_with_projectors_present_the_signal_is_used(tmp_path):
    stored = tmp_path / "projectors"
    for name, (in_dim, out_dim) in PROJECTORS.items():
        torch.manual_seed(1)
        SignalProjector(SignalProjectorConfig(in_dim, out_dim)).save_pretrained(stored / name)
    services, _, results = plan_and_run(tmp_path, projectors=stored)
    for module, result in results.items():
        assert result.status == "success", (module, result.content)
        assert "notes" not in result.artifact and "Note:" not in result.content
    assert set(PROJECTORS) <= set(services.models.loaded())
    for module in ("generate_image", "edit_image", "generate_video"):
        assert "with signal emb_" in results[module].content
