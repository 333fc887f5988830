"""The environment under test is the one requirements.lock describes.

Set-up installs the lock, so users get what CI tested; this test catches the other direction: a
dependency added or upgraded by hand (the suite then passes on versions users would not get) until
``make lock`` records it.
"""

from __future__ import annotations

from importlib import metadata

from packaging.requirements import Requirement

from tests.packaging.layout import PYPROJECT, ROOT

LOCK = ROOT / "requirements.lock"


def canonical(name: str) -> str:
    return Requirement(name).name.lower().replace("_", "-").replace(".", "-")


def read_lock() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split(";")[0].strip().split("==")
            pins[canonical(name)] = version
    return pins


def required_closure() -> dict[str, set[str]]:
    """Every distribution the project needs (main and dev), transitively: ``{name: extras}``."""
    project = PYPROJECT["project"]
    pending = [
        Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]
    ]
    seen: dict[str, set[str]] = {}
    while pending:
        requirement = pending.pop()
        name = canonical(requirement.name)
        extras = set(requirement.extras)
        if name in seen and extras <= seen[name]:
            continue
        seen.setdefault(name, set()).update(extras)
        for line in metadata.requires(name) or []:
            child = Requirement(line)
            wanted = child.marker is None or any(
                child.marker.evaluate({"extra": extra}) for extra in seen[name] | {""}
            )
            if wanted:
                pending.append(child)
    return seen


def test_every_required_distribution_is_installed_at_its_locked_version():
    pins = read_lock()
    closure = required_closure()
    assert {"torch", "transformers", "langgraph", "numpy"} <= set(closure)
    wrong = {
        name: (pins.get(name, "not in the lock"), metadata.version(name))
        for name in sorted(closure)
        if pins.get(name) != metadata.version(name)
    }
    assert not wrong, f"installed versions differ from requirements.lock (run `make lock`): {wrong}"
