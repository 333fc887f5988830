"""The ``vitron`` command: ``chat`` (interactive), ``run`` (one shot) and ``demo`` (a planned session).

Conversations persist in SQLite under the workspace; ``--thread ID`` resumes one.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from vitron.apps.convert import add_convert_command, run_convert
from vitron.apps.evaluate import add_eval_command, run_eval
from vitron.apps.gallery import add_gallery_command, run_gallery_command
from vitron.apps.output import check_output_folder
from vitron.apps.serve import add_serve_command, run_serve
from vitron.apps.train import add_train_command, run_train
from vitron.apps.web.command import add_web_command, run_web
from vitron.graphs.context import Context
from vitron.tools.errors import VitronToolError
from vitron.tools.pretraining.command import add_pretrain_command, run_pretrain

if TYPE_CHECKING:  # the commands import the models' libraries only when they run
    from vitron.apps.session import Session, Turn

CHAT_HELP = """commands:
  /image PATH | /video PATH   attach a file to your next message
  /region X1 Y1 X2 Y2         a box (fractions 0-1 of width/height) on the latest image or video
  /sketch PATH                a free-form region: a black-and-white mask image of the same size
  /media                      list the conversation's media and their files
  /help                       this text
  /quit                       leave (resume later with --thread {thread})"""


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if not args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")  # fmt: skip
    try:
        return COMMANDS[args.command](args)
    except (VitronToolError, ValueError, OSError) as exc:
        print(f"vitron: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vitron",
        description="Vitron, the pixel-level vision LLM, as a LangGraph agent. "
        "Conversations persist in SQLite under the workspace; --thread ID resumes one.",
    )
    common = argparse.ArgumentParser(add_help=False)
    defaults = Context()
    common.add_argument(
        "--profile",
        default=defaults.profile,
        help="nano, tiny, vitron-7b or a .toml path (default: %(default)s; VITRON_PROFILE sets it)",
    )
    common.add_argument(
        "--workspace",
        default=defaults.workspace,
        help="where media and conversations are kept (default: %(default)s)",
    )
    common.add_argument(
        "--device",
        default=defaults.device,
        help="auto, cpu, cuda, cuda:1, mps (default: %(default)s)",
    )
    common.add_argument("--thread", help="conversation id to resume (a new one is made if omitted)")
    common.add_argument(
        "--checkpointer",
        help="where conversations are kept: a postgresql:// URL, or a SQLite file or folder "
        "(default: VITRON_CHECKPOINTER, else SQLite in the workspace)",
    )
    common.add_argument(
        "--planner",
        help="package.module:attribute of another chat model to plan with (vitron eval also "
        "takes `gold`: each sample's ground-truth calls, which scores the tools alone)",
    )
    common.add_argument(
        "--step-limit",
        type=int,
        default=defaults.step_limit,
        help="model steps per turn (default: %(default)s)",
    )
    common.add_argument(
        "--approve-before",
        default=",".join(defaults.approve_before) or "none",
        help="tools that ask you before they run, comma-separated, or none (default: %(default)s)",
    )
    common.add_argument("--no-progress", action="store_true", help="no progress bars")
    common.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser(
        "chat", parents=[common], help="talk with Vitron; attach images and videos, draw regions"
    )

    run = commands.add_parser(
        "run", parents=[common], help="one instruction, print the answer, write the outputs"
    )
    run.add_argument("instruction")
    run.add_argument("--image", action="append", default=[], help="an image to attach (repeatable)")
    run.add_argument("--video", action="append", default=[], help="a video to attach (repeatable)")
    run.add_argument(
        "--region",
        nargs=4,
        type=float,
        metavar=("X1", "Y1", "X2", "Y2"),
        help="a box on the attached media",
    )
    run.add_argument(
        "--out",
        default="vitron-outputs",
        help="folder for the files the tools make (default: %(default)s)",
    )

    demo = commands.add_parser(
        "demo",
        parents=[common],
        help="a multi-turn session on shapes-world media, planned by the profile's Vitron LLM, "
        "each answer beside the expected one; offline",
    )
    demo.add_argument(
        "--out", default="vitron-demo", help="folder for the outputs (default: %(default)s)"
    )
    demo.add_argument(
        "--seed",
        type=int,
        default=0,
        help="shapes-world seed of the requests, the planner and the generation tools (default: 0)",
    )
    demo.add_argument(
        "--separate",
        action="store_true",
        help="each request in a conversation of its own, as `vitron eval` runs them (the planner "
        "sees no earlier turns)",
    )
    demo.add_argument(
        "--scripted",
        action="store_true",
        help="instead, the old walk-through on a real photo whose tool calls are fixed by a script",
    )
    add_convert_command(commands)
    add_doctor_parser(commands, defaults)
    add_train_command(commands)
    add_pretrain_command(commands)
    add_eval_command(commands, common)
    add_web_command(commands, common)
    add_serve_command(commands)
    add_gallery_command(commands)
    return parser  # fmt: skip


def add_doctor_parser(commands: argparse._SubParsersAction, defaults: Context) -> None:
    doctor = commands.add_parser(
        "doctor",
        help="check a workspace (files match their handles, records readable, no stale temporary "
        "files, thread folders well-formed); exit code 1 while problems remain",
    )
    doctor.add_argument(
        "--workspace", default=defaults.workspace, help="the workspace (default: %(default)s)"
    )
    doctor.add_argument(
        "--repair",
        action="store_true",
        help="fix what is safe: delete stale temporary files and orphan records, rebuild records "
        "from their files, move damaged files to .damaged/",
    )
    doctor.add_argument("-v", "--verbose", action="store_true", help="log what happens")


def context_from(args: argparse.Namespace) -> Context:
    return Context(
        profile=args.profile,
        workspace=args.workspace,
        device=args.device,
        step_limit=args.step_limit,
        approve_before=getattr(args, "approve_before", ",".join(Context().approve_before)),
    )


def open_session(args: argparse.Namespace) -> Session:
    from vitron.apps.session import Session
    from vitron.graphs.planner import check_planner, default_planner, planner_from_spec

    model = planner_from_spec(args.planner) if args.planner else default_planner()
    context = context_from(args)
    check_planner(model, context.profile)
    session = Session(model, context, thread_id=args.thread, checkpointer=args.checkpointer)
    if args.thread and not session.history():  # a mistyped id would silently start afresh
        print(f"vitron: thread {args.thread} has no conversation here yet; starting it "
              f"(resume one with the id printed after a turn)", file=sys.stderr)  # fmt: skip
    return session


def print_files(session: Session, turn: Turn, out: Callable[[str], None] = print) -> None:
    for handle in turn.created:
        out(f"  file: {session.workspace.path(handle)}")


def run_chat(args: argparse.Namespace) -> int:
    from vitron.apps.progress import TerminalRenderer

    session = open_session(args)
    renderer = TerminalRenderer(bars=not args.no_progress)
    resumed = len(session.history())
    print(f"vitron chat — profile {args.profile}, thread {session.thread_id}"
          + (f" (resumed, {resumed} messages)" if resumed else "") + ". /help for commands.")  # fmt: skip
    while True:
        try:
            line = input("you> ").strip()
        except EOFError:
            print()
            break
        if not line:
            continue
        if line.startswith("/"):
            if not chat_command(session, line):
                break
            continue
        try:
            turn = session.send(line, on_event=renderer, decide=ask_approval)
        finally:
            renderer.close()
        print_files(session, turn)
    print(f"conversation saved; resume with: {resume_command(args, session.thread_id)}")
    return 0


def ask_approval(request: dict) -> dict:
    """Ask the person at the terminal about a call that needs approval (vitron.graphs.approval):
    y runs it, n rejects it (with an optional reason), e runs it with arguments typed as JSON.
    No answer (end of input) rejects it."""
    import json

    print(f"  ? {request['question']}")
    while True:
        try:
            answer = input("  run it? [y]es / [n]o / [e]dit the arguments: ").strip().lower()
        except EOFError:
            print()
            return {"action": "reject", "reason": "nobody answered the approval prompt"}
        if answer in ("y", "yes"):
            return {"action": "approve"}
        if answer in ("n", "no"):
            try:
                reason = input("  why (optional, the planner sees it): ").strip()
            except EOFError:
                reason = ""
            return {"action": "reject", "reason": reason}
        if answer in ("e", "edit"):
            print(f"  arguments now: {json.dumps(request['args'])}")
            try:
                edited = json.loads(input("  new arguments (JSON object): "))
            except EOFError:
                return {"action": "reject", "reason": "nobody answered the approval prompt"}
            except ValueError as exc:
                print(f"  not JSON: {exc}")
                continue
            if isinstance(edited, dict):
                return {"action": "edit", "args": edited}
            print("  the arguments must be a JSON object")


def resume_command(args: argparse.Namespace, thread_id: str) -> str:
    """The command that reopens this thread, naming the settings that differ from the defaults."""
    defaults = Context()
    parts = ["vitron chat", f"--thread {thread_id}"]
    for flag, value, default in (("--profile", args.profile, defaults.profile),
                                 ("--workspace", args.workspace, defaults.workspace)):  # fmt: skip
        if value != default:
            parts.append(f"{flag} {shlex.quote(str(value))}")
    return " ".join(parts)


def attach_media(session: Session, path: str, kind: Literal["video"] | None = None) -> None:
    info = session.attach(path, kind)
    print(f"  attached {info.summary()}")


def attach_video(session: Session, path: str) -> None:
    attach_media(session, path, kind="video")


def add_box(session: Session, *values: str) -> None:
    region = session.add_region([float(v) for v in values])
    print(f"  region {region['box']} on {region['media']}")


def list_media(session: Session) -> None:
    for handle, info in session.media().items():
        where = session.workspace.path(handle)
        print(f"  {handle} {info.get('kind')} from {info.get('source')}: {where}")


def chat_command(session: Session, line: str) -> bool:
    """Handle one ``/command``; returns False to leave the chat. Errors are printed, not fatal."""
    try:
        name, *rest = shlex.split(line)
    except ValueError as exc:  # an unclosed quote: the line, not the session, is at fault
        print(f"  error: cannot read {line!r}: {exc}; quote a path with spaces as 'my photo.png'")
        return True
    if name in ("/quit", "/exit"):
        return False
    arity, handler = CHAT_COMMANDS.get(name, (None, None))
    if name == "/help":
        print(CHAT_HELP.format(thread=session.thread_id))
        return True
    if handler is None:
        print(f"  error: unknown command {name}; /help lists them")
        return True
    if len(rest) != arity:
        usage = next((u.strip() for u in CHAT_HELP.splitlines() if f"{name} " in u), name)
        print(f"  error: {name} takes {arity} argument{'s' * (arity != 1)}: {usage}")
        return True
    try:
        handler(session, *rest)
    except (VitronToolError, ValueError, OSError) as exc:
        print(f"  error: {exc}")
    return True


def add_sketch(session: Session, path: str) -> None:
    """A free-form region from a mask image: white (or opaque) pixels are the region."""
    import numpy as np
    from PIL import Image

    from vitron.tools.geometry import mask_box

    with Image.open(path) as image:
        array = np.asarray(image.convert("RGBA"))
    mask = (array[..., 3] > 0) & (array[..., :3].max(axis=2) > 127)
    box = mask_box(mask)
    if box is None:
        raise ValueError(f"{path} has no white pixels to use as a region")
    stored = session.workspace.put_mask(mask, source="user", label="sketch")
    region = session.add_region(box, mask=stored.handle)
    print(f"  sketch {stored.handle} (box {region['box']}) on {region['media']}")


CHAT_COMMANDS: dict[str, tuple[int, Callable[..., None]]] = {
    "/image": (1, attach_media),
    "/video": (1, attach_video),
    "/region": (4, add_box),
    "/sketch": (1, add_sketch),
    "/media": (0, list_media),
}
"""Chat ``/command`` -> (number of arguments, handler(session, *arguments))."""


def run_once(args: argparse.Namespace) -> int:
    from vitron.apps.progress import TerminalRenderer

    check_output_folder(args.out, "the outputs")
    session = open_session(args)
    for path in args.image:
        session.attach(path)
    for path in args.video:
        session.attach(path, kind="video")
    if args.region:
        session.add_region(args.region)
    renderer = TerminalRenderer(bars=not args.no_progress)
    try:
        turn = session.send(args.instruction, on_event=renderer, decide=ask_approval)
    finally:
        renderer.close()
    for path in session.export(turn.created, args.out):
        print(f"  wrote {path}")
    print(f"thread: {session.thread_id}")
    return 0


def run_doctor(args: argparse.Namespace) -> int:
    from vitron.tools.doctor import check_workspace

    report = check_workspace(args.workspace, repair=args.repair)
    print(report.text())
    return 1 if report.remaining else 0


def run_demo(args: argparse.Namespace) -> int:
    check_output_folder(args.out, "the demo's outputs")
    if not args.scripted:
        from vitron.apps.demo import run_demo as run_planned
        from vitron.graphs.planner import planner_from_spec

        planner = planner_from_spec(args.planner) if args.planner else None
        return run_planned(context_from(args), Path(args.out), planner=planner, seed=args.seed,
                           thread_id=args.thread, progress=not args.no_progress,
                           separate=args.separate)  # fmt: skip
    from vitron.apps.walkthrough import run_walkthrough

    if args.planner:
        print("vitron demo: --planner does not apply with --scripted: the walk-through's tool "
              "calls are fixed by its script; drop --scripted to have another model plan the demo",
              file=sys.stderr)  # fmt: skip
        return 2

    return run_walkthrough(context_from(args), Path(args.out), thread_id=args.thread,
                           progress=not args.no_progress)  # fmt: skip


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "chat": run_chat,
    "run": run_once,
    "demo": run_demo,
    "doctor": run_doctor,
    "eval": run_eval,
    "convert": run_convert,
    "train": run_train,
    "pretrain": run_pretrain,
    "web": run_web,
    "serve": run_serve,
    "gallery": run_gallery_command,
}


if __name__ == "__main__":
    sys.exit(main())
