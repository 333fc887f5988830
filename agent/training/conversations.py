"""Shapes-world samples as training records whose texts are what the planner sees in the graph.

:mod:`vitron.evals.shapes.records` writes a sample as a short conversation (``<image>`` and the
instruction, then the invocation). In the graph the planner reads more: the system prompt with
the conversation's media listing, the user's text with ``[attached img_…]`` lines and
``region 0:`` sketches, ``TOOL: segment_image returned: …`` turns after each call, and it must
answer in words once the calls are done (or it would call again). This module builds each sample
as LangChain messages the way the graph builds them (``user_message``, the planner node's system
message, ``AIMessage`` tool calls, ``ToolMessage`` results), renders them with the planner's own
renderer (:func:`vitron.agent.rendering.render_messages`) and writes the rendered turns as a
record (media, regions and signal targets from the shapes-world writer). Tool results are
worded as the tools word them (:mod:`~vitron.agent.training.tool_results`), with fresh handles;
their exact wording is not learned from, only read.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from vitron.agent.training.records import Record, write_jsonl
from vitron.agent.training.tool_results import tool_result
from vitron.evals.sample import Sample

HANDLE = re.compile(r"(?:img|vid|mask|box)_[0-9a-f]{16}")
MAX_MEDIA = 4
"""Images and videos shown as pixels (``ChatVitron.max_media``'s default)."""
VIDEO_FRAMES = 8
"""Frames a video is sampled to (the nano processor's ``video_num_frames``)."""


def conversation(
    sample: Sample, workspace: Any, rng: np.random.Generator
) -> tuple[list[Any], list[str]]:
    """The messages the graph holds after planning ``sample`` right: system, user, then per
    ground-truth call an ``AIMessage`` with the call and its ``ToolMessage``, then the answer;
    and the handles of the sample's media (in ``sample.media`` order)."""
    from langchain_core.messages import AIMessage, SystemMessage, ToolMessage

    from vitron.agent.messages import media_listing, user_message
    from vitron.evals.harness import store_media
    from vitron.prompts import load_prompt

    infos, regions = store_media(workspace, sample)
    media_state = {m.handle: m.to_state() for m in infos}
    media_state |= {
        r["mask"]: workspace.describe(r["mask"]).to_state() for r in regions if r["mask"]
    }
    system = SystemMessage(content=f"{load_prompt('system')}\n\n{media_listing(media_state)}")
    messages: list[Any] = [system, user_message(sample.instruction, media=infos, regions=regions)]
    media = infos[0].handle if infos else ""  # the user's, else what the last call made
    for k, call in enumerate(sample.calls):
        instruction = str(call.args.get("instruction", ""))
        call_id = f"call_{k}"
        messages.append(AIMessage(content="", tool_calls=[
            {"name": call.name, "args": {"instruction": instruction}, "id": call_id}]))  # fmt: skip
        text = tool_result(call.name, instruction, media, rng, ranked=_ranked(sample, infos, rng),
                           conversation=[m.handle for m in infos])  # fmt: skip
        made = HANDLE.match(text)  # results that make media start with the new handle
        media = media or (made.group(0) if made else "")
        messages.append(ToolMessage(content=text, name=call.name, tool_call_id=call_id))
    messages.append(AIMessage(content=sample.answer))
    return messages, [m.handle for m in infos]


def _ranked(sample: Sample, infos: list[Any], rng: np.random.Generator) -> list[str]:
    """Retrieve's ranking as a right retriever gives it: the gold image first, then the rest."""
    handles = [m.handle for m in infos]
    target = sample.gold.get("target") if isinstance(sample.gold, dict) else None
    if not isinstance(target, int) or not 0 <= target < len(handles):
        return handles
    rest = [h for k, h in enumerate(handles) if k != target]
    return [handles[target], *(rest[k] for k in rng.permutation(len(rest)))]


def to_record(
    sample: Sample, root: str | Path, workspace: Any, rng: np.random.Generator,
    *, max_media: int | None = MAX_MEDIA,
) -> Record:  # fmt: skip
    """``sample`` rendered as the planner sees it (at most ``max_media`` images and videos as
    pixels, the rest as handles in the text, as ``ChatVitron`` does), as a record under ``root``."""
    from vitron.agent.processing import RegionInput, VideoInput
    from vitron.agent.rendering import render_messages
    from vitron.evals.shapes.records import to_record as shapes_record

    base = shapes_record(sample, root)  # media files, regions and signal targets
    messages, handles = conversation(sample, workspace, rng)
    rendered = render_messages(messages, workspace, video_frames=VIDEO_FRAMES, max_media=max_media)
    messages, kept = [], []  # kept: indices into sample.media of the media shown as pixels
    for turn in rendered.turns:
        parts = [turn.content] if isinstance(turn.content, str) else list(turn.content)
        text = ""
        for part in parts:
            if isinstance(part, str):
                text += part
            elif isinstance(part, VideoInput):
                text += "<video>\n"
                kept.append(handles.index(rendered.handles[id(part)]))
            elif isinstance(part, RegionInput):
                text += "<region>"
            elif isinstance(part, Image.Image | np.ndarray):
                text += "<image>\n"
                kept.append(handles.index(rendered.handles[id(part)]))
            else:
                raise TypeError(f"unexpected {type(part).__name__} in a {turn.role} turn")
        messages.append({"role": turn.role, "text": text})
    data = base.to_json() | {"messages": messages}
    data["media"] = [data["media"][k] for k in kept]
    data["regions"] = [r | {"media": kept.index(r["media"])} for r in data.get("regions", [])]
    data["signals"] = [
        s | ({"media": kept.index(s["media"])} if "media" in s else {})
        for s in data.get("signals", [])
    ]
    return Record.from_json(data)


VQA_ANSWERS = ("word", "named-first")
"""How a question's answer is said in training: the one word the eval scores, or (count and "is
there" questions) the asked objects named first, ``"red circle, blue circle: 2"``
(``gold["named_first"]`` of :func:`~vitron.evals.shapes.tasks.vqa`)."""


def check_vqa_answers(form: str) -> str:
    """``form`` if it is one of :data:`VQA_ANSWERS`, else a ValueError naming them."""
    if form not in VQA_ANSWERS:
        raise ValueError(f"unknown VQA answer form {form!r}; known: {', '.join(VQA_ANSWERS)}")
    return form


def say_answer(sample: Sample, vqa_answers: str = "word") -> Sample:
    """``sample`` with its answer said the ``vqa_answers`` way (:data:`VQA_ANSWERS`)."""
    if check_vqa_answers(vqa_answers) == "named-first" and "named_first" in sample.gold:
        return replace(sample, answer=sample.gold["named_first"])
    return sample


def write_conversations(
    root: str | Path, split: str, count: int, *, seed: int = 0, start: int = 0,
    tasks: Iterable[str] | None = None, vqa_answers: str = "word", media_labels: str = "world",
) -> Path:  # fmt: skip
    """Samples ``start .. start + count - 1`` of ``split`` as ``root/<split>.jsonl``, questions
    answered the ``vqa_answers`` way (:data:`VQA_ANSWERS`), media labelled the ``media_labels``
    way (:data:`~vitron.evals.shapes.labels.MEDIA_LABELS`)."""
    from vitron.evals.shapes.dataset import generate
    from vitron.evals.shapes.labels import check_media_labels, relabel_media
    from vitron.tools.workspace import Workspace

    check_vqa_answers(vqa_answers)  # before anything is written
    check_media_labels(media_labels)
    root = Path(root)
    rng = np.random.default_rng(seed)
    label_rng = np.random.default_rng([seed, start, 1])  # the conversations' own draws unchanged
    samples = generate(split, count, seed=seed, start=start, tasks=list(tasks) if tasks else None)
    with tempfile.TemporaryDirectory() as scratch:
        space = Workspace(Path(scratch))

        def records() -> Iterable[Record]:
            for sample in samples:
                sample = relabel_media(say_answer(sample, vqa_answers), label_rng, media_labels)
                yield to_record(sample, root, space.for_thread(sample.id), rng)

        path = root / f"{split}.jsonl"
        write_jsonl(path, records())
    return path
