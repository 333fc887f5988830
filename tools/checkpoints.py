"""Finding checkpoint files for profile components, with errors that say which profile and file.

A checkpoint is a local path, a hub repository id (for ``from_pretrained`` loaders), or
``<hub repo>:<file in it>`` for single-file checkpoints such as segment-anything's ``.pth``.
Weights are read with safetensors or ``torch.load(weights_only=True)``; nothing is unpickled.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from vitron.tools.errors import MissingCheckpointError
from vitron.tools.profiles import ComponentSpec

if TYPE_CHECKING:
    import torch

T = TypeVar("T")


def checkpoint_file(spec: ComponentSpec) -> Path:
    """The local file of a single-file checkpoint, downloading ``repo:file`` from the hub if needed."""
    local = Path(spec.checkpoint).expanduser()
    if local.exists():
        return local
    if ":" in spec.checkpoint and not local.is_absolute():
        repo_id, filename = spec.checkpoint.split(":", 1)
        try:
            from huggingface_hub import hf_hub_download

            return Path(hf_hub_download(repo_id=repo_id, filename=filename))
        except Exception as exc:  # network, auth or missing file: all mean "not available here"
            raise missing(spec, f"{filename} from hub repository {repo_id}", exc) from exc
    raise missing(spec, str(local), None)


def load_pretrained(spec: ComponentSpec, load: Callable[[str], T]) -> T:
    """Run a ``from_pretrained`` style ``load`` on the spec's checkpoint, naming it if it fails."""
    try:
        return load(spec.checkpoint)
    except (OSError, ValueError) as exc:
        raise missing(spec, spec.checkpoint, exc) from exc


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Weights from ``.safetensors`` or a ``.pth``/``.bin`` read with ``weights_only=True``."""
    import torch
    from safetensors.torch import load_file

    if path.suffix == ".safetensors":
        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    return state


def missing(spec: ComponentSpec, what: str, cause: Exception | None) -> MissingCheckpointError:
    reason = (
        f" ({type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''})"
        if cause
        else ""
    )
    return MissingCheckpointError(
        f"checkpoint for component {spec.name!r} of profile {spec.profile!r} is not available: "
        f"{what}{reason}. Put the file there, set `checkpoint` in the profile to a local path, or "
        "use the 'tiny' profile, which needs no files"
    )
