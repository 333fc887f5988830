"""``vitron demo``: a multi-turn session planned by the profile's Vitron LLM on shapes-world media.

Nothing is scripted: each request goes to :class:`~vitron.apps.session.Session` with the product's
planner (``ChatVitron`` of the profile; ``--planner`` swaps it), which decides the tool calls. The
requests are the shapes world's own: the first sample of each demo task in the ``test`` split as
``vitron eval --suite shapes`` orders it (seed 0 unless ``--seed``), so the wording, the media and
the expected answers are the world's, not written for the demo. Beside each answer the demo prints
what the world expected and the score ``vitron eval`` gives that sample (mask IoU, box IoU, J&F,
R@1, attributes read by the world's classifier, PSNR outside an edit, right or wrong): one sample
per task shows behaviour, the eval table measures quality. The calls that need approval (the
edits' ``edit_image`` and ``edit_video``, the animation's ``image_to_video``) are approved because
the request asked for them (:func:`approve_asked`).

The media go into the session exactly as ``vitron eval`` sends them (:func:`store_media`; a
region's sketch through :meth:`Session.add_region`), and the turn's messages are read back and
scored by the eval's own code (:func:`read_turn`, :func:`vitron.evals.scoring.score`). Every turn's
inputs and outputs (masks, overlays, boxes, videos), with ``expected.png`` showing the world's
answer where it is a mask, a box or an image, are written under ``--out``, with ``transcript.md``
and ``demo.json``.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from vitron.evals.harness import Outcome
    from vitron.evals.sample import Sample
    from vitron.evals.scoring import Options
    from vitron.graphs import Context

DEMO_TASKS = ("vqa", "referring_segmentation", "grounding", "region_caption", "generation",
              "editing", "image_to_video", "tracking", "video_editing", "retrieval")  # fmt: skip
"""The demo's turns, in order: a question, a mask, a box, a sketched region, a picture to draw,
one to edit, one to animate, a video to follow, one to edit, a set (last: its ten images lengthen
every later prompt's media listing)."""
DEMO_EDIT = "recolor"
"""The editing turns' operation: a recolour, which the nano inpainting model was trained for (an
add or move needs GLIGEN, still random in nano)."""
SPLIT = "test"

BANNER = """\
=== Vitron demo (offline): planned by {planner}, no script ===
{profile}
Requests: the shapes world's {split} split (seed {seed}), the first sample of each task as
`vitron eval --suite shapes` orders them; beside each answer, what the world expected and the
score the eval gives that one sample. Quality over many samples: `vitron eval --profile {name}
--suite shapes` (tools/profiles/nano/README.md has the table).
"""


def demo_samples(seed: int = 0, split: str = SPLIT) -> list[Sample]:
    """One sample per :data:`DEMO_TASKS` task: the first of that task in ``split``'s stream of
    :data:`~vitron.evals.shapes.dataset.EVAL_TASKS` (the samples ``vitron eval`` scores), or in
    its own stream for a task scored on request (``image_to_video``, ``video_editing``); for the
    editing tasks, the first :data:`DEMO_EDIT`."""
    from itertools import count

    from vitron.evals.shapes.dataset import EVAL_TASKS, make_sample

    def wanted(sample: Sample) -> bool:
        edits = sample.task in ("editing", "video_editing")
        return not edits or sample.gold.get("operation") == DEMO_EDIT

    found: dict[str, Sample] = {}
    for index in count():
        if all(task in found for task in DEMO_TASKS if task in EVAL_TASKS):
            break
        task = EVAL_TASKS[index % len(EVAL_TASKS)]
        if task in DEMO_TASKS and task not in found:
            sample = make_sample(split, index, seed=seed, tasks=EVAL_TASKS)
            if wanted(sample):
                found[task] = sample
    for task in (t for t in DEMO_TASKS if t not in EVAL_TASKS):
        own = (make_sample(split, index, seed=seed, tasks=[task]) for index in count())
        found[task] = next(s for s in own if wanted(s))
    return [found[task] for task in DEMO_TASKS]


def describe_profile(profile_name: str) -> str:
    """What the banner says about the profile: its description, which components it trained or
    loads, which name a local folder that is not there (no weights yet: a signal for them is set
    aside), and which still have random weights (``checkpoint = "tiny"``)."""
    from pathlib import Path

    from vitron.tools.profiles import load_profile

    profile = load_profile(profile_name)
    specs = [profile.component(name) for name in profile.components]
    random = sorted(spec.name for spec in specs if spec.is_tiny)
    local = {
        s.name: Path(s.checkpoint)
        for s in specs
        if not s.is_tiny and Path(s.checkpoint).is_absolute()
    }
    absent = sorted(name for name, path in local.items() if not path.exists())
    real = sorted(spec.name for spec in specs if not spec.is_tiny and spec.name not in absent)
    lines = [f"Profile {profile.name!r}: {profile.description}".rstrip(": ")]
    if real:
        lines.append(f"Weights from checkpoints: {', '.join(real)}.")
    if absent:
        lines.append(f"No weights yet (not used): {', '.join(absent)}.")
    if random:
        lines.append(f"Still random weights (outputs show plumbing, not quality): "
                     f"{', '.join(random)}.")  # fmt: skip
    return "\n".join(lines)


# ------------------------------------------------------------------------------- one turn


@dataclass
class DemoTurn:
    """What one request led to, as printed and written."""

    task: str
    sample_id: str
    request: str
    calls: list[dict[str, Any]]
    answer: str
    error: str | None
    expected: str
    measured: str
    scores: dict[str, Any]
    seconds: float
    files: list[str] = field(default_factory=list)


def expected_text(sample: Sample, media: Sequence[str] = ()) -> str:
    """The world's expected outcome of ``sample``, in a few words (its calls' ``<media:i>``
    placeholders written as the ``media`` handles the session stored)."""
    from vitron.evals.sample import resolve

    def args(call: Any) -> dict[str, Any]:
        try:
            return resolve(call.matched_args(), list(media), [])
        except (LookupError, IndexError):
            return call.matched_args()

    gold, calls = sample.gold, ", ".join(_call_text(c.name, args(c)) for c in sample.calls)
    task = sample.task
    if task == "vqa":
        return f"{gold['answer']!r} (one of {len(gold['options'])} options)"
    if task == "region_caption":
        return f"{gold['name']!r}"
    if task == "referring_segmentation":
        return f"{calls} -> its mask"
    if task == "grounding":
        box = "[" + ", ".join(f"{v:.2f}" for v in gold["box"]) + "]"
        return f"{calls} -> a box at {box}"
    if task == "tracking":
        return f"{calls} -> its mask in every frame"
    if task == "retrieval":
        return f"{calls} -> image {gold['target'] + 1} of {len(sample.media)} first"
    if task == "generation":
        return (
            f"{calls} -> an image the world's classifier reads as {_attributes(gold['expected'])}"
        )
    if task == "editing":
        return (f"{calls} -> the {gold['expected']['shape']} {gold['expected']['colour']}, "
                "the rest of the picture unchanged")  # fmt: skip
    if task == "video_editing" and gold["expected"]:
        return (f"{calls} -> the {gold['expected']['shape']} {gold['expected']['colour']} in "
                "every frame, the rest of the clip unchanged")  # fmt: skip
    if task == "video_editing":
        return f"{calls} -> the clip without it, the rest unchanged"
    if task == "image_to_video":
        return (f"{calls} -> a clip that starts from the picture and keeps its objects, the "
                f"{gold['colour']} one moving {gold['direction']}")  # fmt: skip
    return sample.answer


def _attributes(expected: dict[str, str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in expected.items())


def write_expected(sample: Sample, folder: Path) -> list[Path]:
    """The world's answer as a picture beside the tools' own overlays: ``expected.png`` (the
    ground-truth mask or box over the image; for retrieval, the right image; for generation, the
    world's own rendering of the prompt; for editing, the world's edited picture; for video
    editing and image-to-video, the world's clip, its frames side by side); none for answers in
    words or for tracking."""
    import numpy as np
    from PIL import Image

    from vitron.tools.overlay import box_overlay, mask_overlay

    gold, task = sample.gold, sample.task
    pictured = ("referring_segmentation", "grounding", "retrieval", "generation", "editing",
                "image_to_video", "video_editing")  # fmt: skip
    if task not in pictured:
        return []
    if task in ("video_editing", "image_to_video"):
        from vitron.evals.gallery import frame_strip

        pixels = frame_strip(gold["after" if task == "video_editing" else "reference"])
    elif task == "retrieval":
        pixels = sample.media[gold["target"]].pixels
    elif task in ("generation", "editing"):
        pixels = gold["reference" if task == "generation" else "after"]
    else:
        image = Image.fromarray(sample.media[0].pixels)
        pixels = (mask_overlay(image, [np.asarray(gold["mask"], dtype=bool)])
                  if task == "referring_segmentation" else box_overlay(image, [gold["box"]], [""]))  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "expected.png"
    Image.fromarray(pixels).save(path)
    return [path]


def measured_text(task: str, outcome: Outcome, scores: dict[str, Any]) -> str:
    """The eval's score of this one outcome, in words (``vitron.evals.scoring.score``'s values)."""
    from vitron.evals import metrics
    from vitron.evals.scoring import predicted_box

    parts = []
    if "module" in scores:
        parts.append(f"module {'right' if scores['module'] else 'wrong'}, "
                     f"arguments {'right' if scores.get('arguments') else 'wrong'}")  # fmt: skip
    if task in ("vqa", "region_caption"):
        parts.append(f"answer {'correct' if scores['hit'] else 'wrong'} "
                     f"(chance {scores['chance']:.2f})")  # fmt: skip
    elif task == "referring_segmentation":
        parts.append(f"mask IoU {scores['iou']:.2f}")
    elif task == "grounding":
        iou = metrics.box_iou(predicted_box(outcome), outcome.sample.gold["box"])
        parts.append(f"box IoU {iou:.2f} ({'hit' if scores['box_hit'] else 'miss'} at 0.5)")
    elif task == "tracking":
        parts.append(f"J&F {scores['J&F']:.2f} (empty masks score {scores['floor']:.2f})")
    elif task == "retrieval":
        parts.append(f"R@1 {scores['r1']:.0f} (chance {scores['chance']:.2f})")
        number = outcome.sample.gold["target"] + 1
        parts.append(f"the answer {'names' if scores.get('named') else 'does not name'} "
                     f"picture {number}")  # fmt: skip
        ranked = len(((outcome.last_result("retrieve") or {}).get("artifact") or {})
                     .get("ranking") or [])  # fmt: skip
        if ranked > len(outcome.media):  # without a media list, retrieve ranks the whole thread
            parts.append(f"it ranked {ranked} media: this request's {len(outcome.media)} and "
                         "the conversation's earlier ones")  # fmt: skip
    elif task in ("generation", "editing"):
        if scores.get("attr") is not None:
            parts.append(
                f"attributes {'right' if scores['attr'] else 'wrong'} by the world's classifier"
            )
        if task == "editing" and scores.get("psnr") is not None:
            parts.append(f"PSNR outside the edit {scores['psnr']:.1f} dB")
    elif task == "video_editing":
        if scores.get("frames_right") is not None:
            parts.append(f"the edit shows in {scores['frames_right']:.0%} of the frames judged "
                         "(right from 80 %)")  # fmt: skip
        if scores.get("psnr") is not None:
            parts.append(f"PSNR outside the edit {scores['psnr']:.1f} dB (mean over frames)")
    elif task == "image_to_video":
        if scores.get("psnr_first") is not None:
            parts.append(f"first frame {scores['psnr_first']:.1f} dB against the picture")
        if scores.get("objects_kept") is not None:
            parts.append(f"{scores['objects_kept']:.0%} of the scene's objects kept on later "
                         "frames")  # fmt: skip
        if "moved" in scores:
            asked = outcome.sample.gold["direction"]
            parts.append(f"moved {scores['moved'] or 'nowhere'} (asked {asked})")
    if outcome.error:
        parts.append(f"turn failed: {outcome.error[:120]}")
    return "; ".join(parts)


def attachments(sample: Sample) -> str:
    """``[attached: 1 image, a sketched region]``: what goes with the request."""
    kinds = [m.kind for m in sample.media]
    parts = [f"{kinds.count(k)} {k}{'s' if kinds.count(k) > 1 else ''}"
             for k in dict.fromkeys(kinds)]  # fmt: skip
    parts += ["a sketched region"] * len(sample.regions)
    return f"[attached: {', '.join(parts)}]" if parts else ""


def _call_text(name: str, args: dict[str, Any]) -> str:
    shown = ", ".join(f"{k}={json.dumps(v)}" for k, v in args.items())
    return f"{name}({shown})"


def approve_asked(sample: Sample) -> Callable[[dict], dict]:
    """The demo has no person to ask: a call that needs approval is approved when the request
    asked for that tool (the editing turns' ``edit_image`` and ``edit_video``, the animation's
    ``image_to_video``) and declined otherwise, and the planner is told why."""
    asked = {call.name for call in sample.calls}

    def decide(request: dict) -> dict:
        if request["tool"] in asked:
            print(f"  ? {request['question']} — approved: the request asked for it")
            return {"action": "approve"}
        print(f"  ? {request['question']} — declined: the request did not ask for it")
        return {"action": "reject", "reason": "the request did not ask for this"}

    return decide


def run_turn(session: Any, sample: Sample, out: Path, number: int,
             on_event: Callable[[dict], None] | None = None,
             options: Options | None = None) -> DemoTurn:  # fmt: skip
    """Send ``sample``'s request (its media attached, its sketch as a region) in ``session``,
    score what the planner and tools did (``options``: the eval's, with its attribute classifier),
    and write the turn's files to ``out/NN-task/``."""
    from vitron.evals.harness import Outcome, read_turn, store_media
    from vitron.evals.scoring import score

    infos, regions = store_media(session.workspace, sample)
    for info in infos:
        session.attach_stored(info)
    for region in regions:
        session.add_region(region["box"], media=region["media"], mask=region["mask"])
    start = time.perf_counter()
    turn = session.send(sample.instruction, on_event=on_event, decide=approve_asked(sample))
    seconds = time.perf_counter() - start
    outcome = Outcome(sample=sample, workspace=session.workspace, media=[i.handle for i in infos],
                      regions=[r["mask"] for r in regions], latency=seconds)  # fmt: skip
    read_turn(outcome, turn.messages)
    scores = score(outcome, options)
    inputs = [i.handle for i in infos] + [r["mask"] for r in regions if r["mask"]]
    folder = out / f"{number:02d}-{sample.task}"
    shutil.rmtree(folder, ignore_errors=True)  # this turn's files from an earlier demo run
    written = session.export(list(dict.fromkeys(inputs + turn.created)), folder)
    written += write_expected(sample, folder)
    return DemoTurn(
        task=sample.task, sample_id=sample.id, request=sample.instruction, calls=outcome.calls,
        answer=outcome.answer, error=outcome.error, expected=expected_text(sample, outcome.media),
        measured=measured_text(sample.task, outcome, scores), seconds=round(seconds, 2),
        scores={k: v for k, v in scores.items() if isinstance(v, int | float | None)},
        files=[str(p.relative_to(out)) for p in written],
    )  # fmt: skip


# ------------------------------------------------------------------------------- the session


def scoring_options() -> Options:
    """The eval's scoring options with the shipped attribute classifier, which reads what a
    generated or edited picture shows."""
    from vitron.evals.classifier import load_classifier
    from vitron.evals.scoring import Options

    return Options(classifier=load_classifier())


def run_demo(
    context: Context,
    out: Path,
    *,
    planner: BaseChatModel | None = None,
    seed: int = 0,
    thread_id: str | None = None,
    progress: bool = True,
    samples: Sequence[Sample] | None = None,
    separate: bool = False,
) -> int:
    """Run the planned demo session, print it, and write its files, ``transcript.md`` and
    ``demo.json`` to ``out``. ``planner``: default the profile's ``ChatVitron`` (as
    ``vitron eval`` runs it: greedy, 64 new tokens per step). ``separate``: each request in a
    conversation of its own, as ``vitron eval`` runs them (the planner then sees no earlier
    turns)."""
    from vitron.apps.progress import TerminalRenderer
    from vitron.apps.session import Session

    if context.seed is None:  # the generation turn repeats its pixels, as the planner its words
        context = replace(context, seed=seed)
    if planner is None:
        from vitron.agent.chat_model import ChatVitron

        planner = ChatVitron(max_new_tokens=64, seed=seed)
    samples = list(samples if samples is not None else demo_samples(seed))
    options = scoring_options()
    planner_name = type(planner).__name__
    banner = BANNER.format(
        planner=f"the {context.profile!r} profile's Vitron LLM ({planner_name})"
        if planner_name == "ChatVitron" else f"{planner_name} (--planner)",
        profile=describe_profile(context.profile), split=SPLIT, seed=seed, name=context.profile,
    )  # fmt: skip
    if separate:
        banner += (
            "Each request in a conversation of its own (--separate), as `vitron eval` runs them.\n"
        )
    print(banner)
    out.mkdir(parents=True, exist_ok=True)
    session = Session(planner, context, thread_id=thread_id)
    renderer = TerminalRenderer(bars=progress)
    turns: list[DemoTurn] = []
    threads = [session.thread_id]
    for number, sample in enumerate(samples, start=1):
        if separate and number > 1:
            session = Session(planner, context)
            threads.append(session.thread_id)
        print(f"you> {sample.instruction} {attachments(sample)}".rstrip())
        try:
            turn = run_turn(session, sample, out, number, on_event=renderer, options=options)
        finally:
            renderer.close()
        turns.append(turn)
        print(f"  expected: {turn.expected}")
        print(f"  measured: {turn.measured}  ({turn.seconds:.1f} s)")
        for path in turn.files:
            print(f"  wrote {out / path}")
        print()
    write_record(out, banner, " ".join(threads), context.profile, planner_name, seed, turns)
    print(f"Transcript and files in {out}/. Continue " + ("the last conversation" if separate
          else "this conversation") + " with:\n"
          f"  vitron chat --profile {context.profile} --workspace {context.workspace} "
          f"--thread {session.thread_id}")  # fmt: skip
    return 0


def write_record(out: Path, banner: str, thread: str, profile: str, planner: str, seed: int,
                 turns: Sequence[DemoTurn]) -> None:  # fmt: skip
    """``transcript.md`` (for a person) and ``demo.json`` (for a program) under ``out``."""
    from dataclasses import asdict

    lines = [f"# Vitron demo, thread {thread}\n", banner]
    for number, turn in enumerate(turns, start=1):
        lines += [f"\n## {number}. {turn.task} ({turn.sample_id})\n", f"**you:** {turn.request}\n"]
        lines += [f"- call: `{_call_text(c['name'], c['args'])}`" for c in turn.calls]
        lines += [f"- **vitron:** {turn.answer or '(no answer)'}"]
        if turn.error:
            lines += [f"- error: {turn.error}"]
        lines += [f"- expected: {turn.expected}", f"- measured: {turn.measured}",
                  f"- seconds: {turn.seconds}"]  # fmt: skip
        lines += [f"- file: `{path}`" for path in turn.files]
    (out / "transcript.md").write_text("\n".join(lines) + "\n")
    record = {"thread": thread, "profile": profile, "planner": planner, "split": SPLIT,
              "seed": seed, "turns": [asdict(t) for t in turns]}  # fmt: skip
    (out / "demo.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
