"""Reading a planner's signal embedding and projecting it into a backend's conditioning tokens.

Written once for every backend: SAM and SAM 2 append the tokens to their sparse prompts, the
diffusion tools to their text-encoder states. Without a signal nothing is loaded or appended.

The signal is an addition to the text instruction, as in the paper's hybrid invocation: when the
profile's projector has no checkpoint yet (projectors come from the training stage), the call runs
on the text alone and its result says so, once per session. This is also the one place where the
widths are checked: the signal against the projector's input, the projector's tokens against the
consumer's width.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from vitron.tools.backend import CallContext
from vitron.tools.errors import MissingCheckpointError, VitronToolError

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)


def project_signal(
    signal: str | None,
    component: str,
    call: CallContext,
    *,
    width: int | None = None,
    consumer: str = "this backend",
) -> torch.Tensor | None:
    """The ``emb_`` handle ``signal`` (one ``(D,)`` or a few stacked ``(n, D)``) projected by the
    profile component ``component`` to ``N x dim`` tokens; ``None`` without a signal, and ``None``
    with a note (once per session) when the projector has no checkpoint.

    ``width``, when given, is the token width the consumer needs; a projector making another width
    is a profile mistake and is reported as one.
    """
    import torch

    if signal is None:
        return None
    embedding = call.workspace.get_embedding(signal)
    if embedding.ndim not in (1, 2):
        raise VitronToolError(
            f"{signal} has shape {list(embedding.shape)}; a signal is one embedding (D,) or a few "
            "stacked (n, D)"
        )
    if embedding.numel() == 0:
        raise VitronToolError(
            f"{signal} is empty (shape {list(embedding.shape)}); a signal needs values — call "
            "without `signal` for a text-only invocation"
        )
    if not torch.isfinite(embedding.float()).all():
        raise VitronToolError(
            f"{signal} contains NaN or infinite values, so it cannot condition {consumer}; call "
            "without `signal` for a text-only invocation"
        )
    try:
        projector = call.models.get(component, call.progress)
    except MissingCheckpointError as exc:
        logger.info("signal projector %s is absent, text-only: %s", component, exc)
        call.note_once(
            f"signal-projector:{component}",
            f"the signal embedding was not used: the signal projector {component!r} of profile "
            f"{call.models.profile.name!r} has no checkpoint yet (signal projectors come from "
            "training), so this ran on the text instruction alone.",
        )
        return None
    in_dim, out_dim = projector.config.in_dim, projector.config.out_dim
    if embedding.shape[-1] != in_dim:
        raise VitronToolError(
            f"the signal embedding {signal} has dimension {embedding.shape[-1]}, but the signal "
            f"projector {component!r} takes {in_dim}; the planner and the backend profiles disagree"
        )
    if width is not None and out_dim != width:
        raise VitronToolError(
            f"the signal projector {component!r} makes tokens of width {out_dim}, but "
            f"{consumer}'s width is {width}; fix the profile"
        )
    device = next(projector.parameters()).device
    with torch.inference_mode():
        tokens = projector(embedding.reshape(-1, embedding.shape[-1]).float().to(device))
    call.signals_used.add(signal)
    return tokens.reshape(-1, out_dim)


def used_signal(signal: str | None, call: CallContext) -> list[str]:
    """``[signal]`` if this call projected it (an input of the result), else ``[]``."""
    return [signal] if signal is not None and signal in call.signals_used else []


def signal_phrase(signal: str | None, call: CallContext) -> str:
    """``", with signal emb_…"`` for a result's description when the signal was used, else ``""``."""
    return f", with signal {signal}" if used_signal(signal, call) else ""
