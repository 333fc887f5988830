"""``vitron serve``: deploy the backends a profile serves on Ray onto a running Ray cluster.

Start the cluster first (``ray start --head`` on the head node, ``ray start --address …`` on each
GPU node), then ``vitron serve --profile P``; graph processes (the CLI, the web UI, the Agent
Server) call the deployments when ``VITRON_RAY_ADDRESS`` names the cluster.
"""

from __future__ import annotations

import argparse
import os
import sys

from vitron.tools.defaults import DEFAULT_PROFILE


def add_serve_command(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser(
        "serve",
        help='deploy the profile\'s Ray-served backends (serve = "ray") as Ray Serve applications',
    )
    serve.add_argument(
        "--profile",
        default=os.environ.get("VITRON_PROFILE", DEFAULT_PROFILE),
        help="profile whose served backends to deploy (default: %(default)s)",
    )
    serve.add_argument(
        "--device", default="auto", help="device inside each replica (default: %(default)s)"
    )
    serve.add_argument("--memory-budget", help="bytes each replica's models may take (e.g. 12GB)")
    serve.add_argument(
        "--backend",
        action="append",
        help="only this backend (repeatable; default: every served one)",
    )
    serve.add_argument(
        "--address",
        default=os.environ.get("VITRON_RAY_ADDRESS", "auto"),
        help="the Ray cluster (default: VITRON_RAY_ADDRESS, else %(default)s)",
    )
    serve.add_argument("-v", "--verbose", action="store_true", help="log what happens")


def run_serve(args: argparse.Namespace) -> int:
    try:
        import ray

        from vitron.tools.serve_ray import deploy
    except ImportError as exc:
        print(f"vitron serve: {exc}", file=sys.stderr)
        return 2
    if not ray.is_initialized():  # (a caller may have connected already)
        ray.init(address=args.address, namespace="vitron")
    apps = deploy(args.profile, device=args.device, memory_budget=args.memory_budget,
                  backends=args.backend)  # fmt: skip
    if not apps:
        print(f"vitron serve: profile {args.profile!r} serves no backend on Ray; set serve = "
              "\"ray\" in it, or on a component", file=sys.stderr)  # fmt: skip
        return 2
    for name in apps:
        print(f"deployed {name}")
    return 0
