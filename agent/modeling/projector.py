"""The vision -> language projector (LLaVA's ``mlp2x_gelu``)."""

from __future__ import annotations

import re

import torch
from torch import nn

_PROJECTOR = re.compile(r"^(linear|mlp(\d+)x_gelu)$")


class MultimodalProjector(nn.Module):
    """Maps vision features (..., vision_dim) to language-model embeddings (..., text_dim).

    ``mlp<N>x_gelu`` is N linear layers with GELU between them; ``linear`` is one layer. The
    layers sit in ``self.layers`` at the same indices as the reference ``mm_projector``
    ``nn.Sequential`` (0, 2, …), so checkpoints map one to one.
    """

    def __init__(
        self, vision_dim: int, text_dim: int, projector_type: str = "mlp2x_gelu", bias: bool = True
    ) -> None:
        super().__init__()
        match = _PROJECTOR.match(projector_type)
        if match is None:
            raise ValueError(
                f"unknown projector type {projector_type!r}; use 'linear' or 'mlp<N>x_gelu'"
            )
        depth = 1 if match.group(1) == "linear" else int(match.group(2))
        if depth < 1:
            raise ValueError(f"projector type {projector_type!r} needs at least one layer")
        layers: list[nn.Module] = [nn.Linear(vision_dim, text_dim, bias=bias)]
        for _ in range(depth - 1):
            layers += [nn.GELU(), nn.Linear(text_dim, text_dim, bias=bias)]
        self.layers = nn.Sequential(*layers)
        self.projector_type = projector_type

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(..., vision_dim) -> (..., text_dim)."""
        return self.layers(features)
