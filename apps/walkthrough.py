"""``vitron demo --scripted``: a multi-turn session on a real photo, offline, written to a folder.

This is a WALK-THROUGH: the tool calls are fixed by the script below, not planned by a model (so
``--planner`` does not apply), and the banner says what the profile's models are: with ``tiny``
they have random weights, so masks and boxes show the plumbing, not quality.
It exercises the real graph, tools, workspace and SQLite persistence end to end, including the
tools the shapes world does not reach (editing, image-to-video). ``vitron demo`` without
``--scripted`` runs the planned demo (:mod:`vitron.apps.demo`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from langchain_core.messages import AIMessage, BaseMessage
from skimage import data

from vitron.apps.progress import TerminalRenderer
from vitron.apps.session import Session
from vitron.graphs import Context
from vitron.graphs.scripted import ScriptedChatModel, last_artifact, tool_call
from vitron.tools.handles import find_handles

BANNER = """\
=== Vitron walk-through (offline) ===
The tool calls in this session are FIXED BY A SCRIPT, not planned by a model. {models}
Photo: scikit-image's 'astronaut' (Eileen Collins, NASA, public domain).
"""


def describe_models(profile_name: str) -> str:
    """What the banner says about the profile's models: random, real, or which are which."""
    from vitron.tools.profiles import load_profile

    profile = load_profile(profile_name)
    specs = [profile.component(name) for name in profile.components]
    random = sorted(spec.name for spec in specs if spec.is_tiny)
    real = sorted(spec.name for spec in specs if not spec.is_tiny)
    if not real:
        return (
            f"The {profile.name!r} profile's models have random weights: outputs show the plumbing "
            "(handles, masks, boxes, files, persistence), not quality."
        )
    if not random:
        return (
            f"The {profile.name!r} profile loads real checkpoints ({profile.description}): outputs "
            "show what those models do with the scripted calls."
        )
    return (
        f"The {profile.name!r} profile mixes real checkpoints ({', '.join(real)}) with random "
        f"weights ({', '.join(random)}): outputs of the random ones show plumbing, not quality."
    )


@dataclass(frozen=True)
class ScriptedTurn:
    """A user message and the planner steps the script answers it with."""

    text: str
    steps: Sequence[AIMessage | Callable[[Sequence[BaseMessage]], AIMessage]]
    region: list[float] | None = None


def photo_handle(messages: Sequence[BaseMessage]) -> str:
    """The image the user attached in the first turn."""
    for message in messages:
        if message.type == "human":
            handles = [h for h in find_handles(message.text) if h.startswith("img_")]
            if handles:
                return handles[0]
    raise LookupError("no image was attached")


def first_artifact(messages: Sequence[BaseMessage], key: str):
    """``artifact[key]`` of the earliest tool result that has it (e.g. the first mask)."""
    for message in messages:
        artifact = getattr(message, "artifact", None)
        if message.type == "tool" and isinstance(artifact, dict) and artifact.get(key):
            return artifact[key]
    raise LookupError(f"no tool result has {key!r}")


def answer(template: str) -> Callable[[Sequence[BaseMessage]], AIMessage]:
    """A scripted final answer filled from the latest tool result's artifact."""

    def reply(messages: Sequence[BaseMessage]) -> AIMessage:
        artifact = messages[-1].artifact if isinstance(messages[-1].artifact, dict) else {}
        return AIMessage(
            content=template.format(**artifact, handles=", ".join(artifact.get("media", {})))
        )

    return reply


def script() -> list[ScriptedTurn]:
    return [
        ScriptedTurn(
            "Segment the astronaut in this photo.",
            [
                lambda m: tool_call(
                    "segment_image", image=photo_handle(m), instruction="the astronaut"
                ),
                answer(
                    "Here is the astronaut's mask, {masks[0]}, drawn over the photo in {overlay}."
                ),
            ],
        ),
        ScriptedTurn(
            "Now ground the flag next to her.",
            [
                lambda m: tool_call(
                    "ground",
                    image=photo_handle(m),
                    instruction="a flag",
                    near=last_artifact(m, "masks")[0],
                ),
                answer(
                    "I found {labels[0]!r} nearest to her at {boxes[0]} (all boxes and the overlay: {handles})."
                ),
            ],
        ),
        ScriptedTurn(
            "Segment what is inside the box I drew.",
            [
                lambda m: tool_call(
                    "segment_image", image=photo_handle(m), regions=[[0.55, 0.05, 0.95, 0.45]]
                ),
                answer("The mask of your box is {masks[0]}; overlay {overlay}."),
            ],
            region=[0.55, 0.05, 0.95, 0.45],
        ),
        ScriptedTurn(
            "Recolour her suit blue.",
            [
                lambda m: tool_call(
                    "edit_image",
                    image=photo_handle(m),
                    operation="recolor",
                    instruction="make the suit blue",
                    mask=first_artifact(m, "masks")[0],
                    seed=0,
                ),
                answer("Recoloured: {image}; only {mask} changed."),
            ],
        ),
        ScriptedTurn(
            "Animate the recoloured photo.",
            [
                lambda m: tool_call("image_to_video", image=last_artifact(m, "image"), seed=0),
                answer("The animation is {video}."),
            ],
        ),
        ScriptedTurn(
            "Track her through that video.",
            [
                lambda m: tool_call(
                    "track_video", video=last_artifact(m, "video"), regions=[[0.15, 0.2, 0.75, 1.0]]
                ),
                answer("Her masks over time are {masks}; the overlay video is {overlay}."),
            ],
        ),
    ]


def approve_scripted(request: dict) -> str:
    """The walk-through's calls are fixed by its script, so each approval request is shown and
    approved (``vitron chat`` asks the person instead)."""
    print(f"  ? {request['question']} — approved by the walk-through")
    return "approve"


def run_walkthrough(
    context: Context, out: Path, thread_id: str | None = None, progress: bool = True
) -> int:
    """Run the scripted session, print it, and write its outputs and transcript to ``out``."""
    turns = script()
    planner = ScriptedChatModel(steps=[step for turn in turns for step in turn.steps])
    session = Session(planner, context, thread_id=thread_id)
    banner = BANNER.format(models=describe_models(context.profile))
    print(banner)
    photo = out / "astronaut.png"
    out.mkdir(parents=True, exist_ok=True)
    from PIL import Image

    Image.fromarray(data.astronaut()).save(photo)
    session.attach(photo)
    renderer = TerminalRenderer(bars=progress)
    transcript = [
        f"# Vitron walk-through, thread {session.thread_id}\n",
        banner,
    ]
    for turn in turns:
        if turn.region:
            session.add_region(turn.region)
        print(f"you> {turn.text}")
        try:
            result = session.send(turn.text, on_event=renderer, decide=approve_scripted)
        finally:
            renderer.close()
        written = session.export(result.created, out)
        for path in written:
            print(f"  wrote {path}")
        transcript += [f"\n**you:** {turn.text}\n"]
        transcript += [f"- `{m.type}`: {m.text or m.tool_calls}" for m in result.messages]
        transcript += [f"- file: `{p.name}`" for p in written]
    (out / "transcript.md").write_text("\n".join(transcript) + "\n")
    print(f"\nOutputs and transcript in {out}/. Resume this conversation with:\n"
          f"  vitron chat --profile {context.profile} --workspace {context.workspace} "
          f"--thread {session.thread_id}")  # fmt: skip
    return 0
