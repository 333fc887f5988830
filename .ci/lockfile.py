"""Write and compare ``requirements.lock``: the exact versions of every installed package.

``write`` freezes the running interpreter's environment (run it from a venv in which the suite
passed); ``diff`` prints how the running environment differs from a lock, e.g. what
``make test-latest`` resolved against what users get. Only the standard library is used, so it runs
in any venv.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

PROJECT = "vitron-langgraph"
UNLOCKED = {"pip", PROJECT}  # pip upgrades itself; the project installs editable from the tree
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)")


def canonical(name: str) -> str:
    """PEP 503 name: lower case, runs of ``-_.`` as one ``-``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path) -> dict[str, str]:
    """``{canonical name: version}`` of the ``name==version`` lines of a lock file."""
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = PIN.match(line.strip())
        if match:
            pins[canonical(match.group(1))] = match.group(2)
    return pins


def installed() -> dict[str, str]:
    """``{canonical name: version}`` of the running environment, the project excluded."""
    found = {canonical(d.metadata["Name"]): d.version for d in metadata.distributions()}
    return {name: version for name, version in found.items() if name not in UNLOCKED}


def write(output: Path) -> None:
    frozen = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--all", "--exclude-editable"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    pins = sorted(
        (
            line
            for line in frozen
            if (m := PIN.match(line)) and canonical(m.group(1)) not in UNLOCKED
        ),
        key=lambda line: canonical(line.split("==")[0]),
    )
    header = [
        "# Exact versions of every package the suite passed with (direct and transitive).",
        f"# Written by `make lock` on {datetime.date.today()} from Python "
        f"{platform.python_version()} on {platform.machine()}; do not edit by hand.",
    ]
    output.write_text("\n".join(header + pins) + "\n", encoding="utf-8")
    print(f"wrote {len(pins)} pins to {output}")


def diff(lock: Path) -> int:
    """Print packages whose installed version differs from the lock; return how many."""
    locked, have = read_lock(lock), installed()
    rows = []
    for name in sorted(set(locked) | set(have)):
        if locked.get(name) != have.get(name):
            rows.append((name, locked.get(name, "-"), have.get(name, "-")))
    if not rows:
        print(f"the environment matches {lock}")
        return 0
    width = max(len(r[0]) for r in rows)
    print(f"{'package':<{width}}  {'lock':<14} installed")
    for name, old, new in rows:
        print(f"{name:<{width}}  {old:<14} {new}")
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("write", help="freeze this environment").add_argument(
        "--output", type=Path, default=Path("requirements.lock")
    )
    commands.add_parser("diff", help="compare this environment with a lock").add_argument(
        "--lock", type=Path, default=Path("requirements.lock")
    )
    args = parser.parse_args(argv)
    if args.command == "write":
        write(args.output)
    else:
        diff(args.lock)  # informative only: a newer release is not a failure by itself
    return 0


if __name__ == "__main__":
    sys.exit(main())
