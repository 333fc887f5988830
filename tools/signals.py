"""Reading a planner's signal embedding and projecting it into a backend's conditioning tokens.

Written once for every backend: SAM and SAM 2 append the tokens to their sparse prompts, the
diffusion tools to their text-encoder states. Without a signal nothing is loaded or appended.
"""

from __future__ import annotations

import torch

from vitron.tools.backend import CallContext
from vitron.tools.errors import VitronToolError


def project_signal(
    signal: str | None,
    component: str,
    call: CallContext,
    *,
    width: int | None = None,
    consumer: str = "this backend",
) -> torch.Tensor | None:
    """The ``emb_`` handle ``signal`` (one ``(D,)`` or a few stacked ``(n, D)``) projected by the
    profile component ``component`` to ``N x dim`` tokens; ``None`` without a signal.

    ``width``, when given, is the token width the consumer needs; a projector making another width
    is a profile mistake and is reported as one.
    """
    if signal is None:
        return None
    embedding = call.workspace.get_embedding(signal)
    if embedding.ndim not in (1, 2):
        raise VitronToolError(
            f"{signal} has shape {list(embedding.shape)}; a signal is one embedding (D,) or a few "
            "stacked (n, D)"
        )
    projector = call.models.get(component, call.progress)
    out_dim = projector.config.out_dim
    if width is not None and out_dim != width:
        raise VitronToolError(
            f"the signal projector {component!r} makes tokens of width {out_dim}, but "
            f"{consumer}'s width is {width}; fix the profile"
        )
    device = next(projector.parameters()).device
    with torch.inference_mode():
        tokens = projector(embedding.reshape(-1, embedding.shape[-1]).float().to(device))
    return tokens.reshape(-1, out_dim)
