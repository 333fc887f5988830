"""``vitron web``: serve the web UI on this machine."""

from __future__ import annotations

import argparse
import os
import socket
import sys

from vitron.apps.web.uploads import DEFAULT_MAX_UPLOAD_MB


def add_web_command(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    web = commands.add_parser(
        "web", parents=[common],
        help="the web UI: chat, upload images and videos, draw region sketches, approve edits",
    )  # fmt: skip
    web.add_argument("--port", type=int, default=7860, help="port (default: %(default)s)")
    web.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on; 0.0.0.0 serves other machines (default: %(default)s)",
    )
    web.add_argument(
        "--max-upload-mb",
        type=float,
        default=DEFAULT_MAX_UPLOAD_MB,
        help="largest file a person may upload (default: %(default)s)",
    )


def run_web(args: argparse.Namespace) -> int:
    if args.thread:  # each browser tab picks its conversation; the server serves them all
        print(f"vitron web: --thread does not apply; open http://{args.host}:{args.port}/"
              f"?thread={args.thread} to resume that conversation", file=sys.stderr)  # fmt: skip
        return 2
    check_port(args.host, args.port)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no telemetry or version checks
    if args.checkpointer:  # every conversation of this server, and its list of them
        os.environ["VITRON_CHECKPOINTER"] = args.checkpointer
    from vitron.apps.cli import context_from
    from vitron.apps.web.app import launch
    from vitron.apps.web.uploads import UploadLimits
    from vitron.graphs.planner import check_planner, default_planner, planner_from_spec

    planner = planner_from_spec(args.planner) if args.planner else default_planner()
    context = context_from(args)
    check_planner(planner, context.profile)
    print(f"vitron web — profile {context.profile}, workspace {context.workspace}: "
          f"open http://{args.host}:{args.port}/ (Ctrl-C stops)")  # fmt: skip
    launch(planner, context, host=args.host, port=args.port,
           limits=UploadLimits.from_megabytes(args.max_upload_mb))  # fmt: skip
    return 0


def check_port(host: str, port: int) -> None:
    """Refuse a port the server could not listen on, before anything loads: Gradio's own error
    came after "open http://…" was printed and sent the user to an environment variable."""
    if not 1 <= port <= 65535:
        raise ValueError(f"--port must be between 1 and 65535, got {port}")
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise OSError(
                f"cannot listen on {host}:{port} ({exc.strerror or exc}); pick another --port"
            ) from exc
