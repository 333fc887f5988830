"""Signal projectors: the planner's signal embedding → a backend's own conditioning tokens.

Vitron's hybrid invocation passes, besides the text instruction, an embedding read from the LLM's
hidden state at a signal token (``[SEG]``, ``[GEN]``…). Each backend owns a small projector that maps
it into the space its model is conditioned on: extra sparse prompt tokens for SAM / SAM 2, extra
tokens appended to the diffusion text encoder's states. Projectors are profile components, trained
by the training stage and stored as ``projector_config.json`` + ``model.safetensors``; without a
signal the backends never call them, so text-only behaviour is unchanged.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from vitron.tools.checkpoints import checkpoint_file
from vitron.tools.errors import VitronToolError
from vitron.tools.profiles import ComponentSpec
from vitron.tools.registry import LoadContext, component_loader

CONFIG_NAME = "projector_config.json"
WEIGHTS_NAME = "model.safetensors"


@dataclass(frozen=True)
class SignalProjectorConfig:
    in_dim: int
    """Dimension of the signal embedding (the planner's signal head output for this space)."""
    out_dim: int
    """Dimension of one conditioning token of the backend (SAM prompt dim, text-encoder width)."""
    tokens: int = 1
    """How many conditioning tokens one signal becomes."""
    hidden_dim: int = 0
    """0 for a single linear map, otherwise a two-layer MLP of this width."""


class SignalProjector(nn.Module):
    """``(..., in_dim)`` signal → ``(..., tokens, out_dim)`` conditioning tokens."""

    def __init__(self, config: SignalProjectorConfig) -> None:
        super().__init__()
        self.config = config
        width = config.tokens * config.out_dim
        if config.hidden_dim:
            self.net = nn.Sequential(
                nn.Linear(config.in_dim, config.hidden_dim),
                nn.GELU(),
                nn.Linear(config.hidden_dim, width),
            )
        else:
            self.net = nn.Linear(config.in_dim, width)

    def forward(self, signal: torch.Tensor) -> torch.Tensor:
        # Widths are checked once, where signals enter a backend: vitron.tools.signals.
        out = self.net(signal.to(self.net_dtype))
        return out.reshape(*signal.shape[:-1], self.config.tokens, self.config.out_dim)

    @property
    def net_dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def save_pretrained(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / CONFIG_NAME).write_text(json.dumps(asdict(self.config), indent=2))
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(directory / WEIGHTS_NAME))
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> SignalProjector:
        directory = Path(directory)
        config = SignalProjectorConfig(**json.loads((directory / CONFIG_NAME).read_text()))
        projector = cls(config)
        projector.load_state_dict(load_file(str(directory / WEIGHTS_NAME)))
        return projector.eval()


@component_loader("signal_projector")
def load_signal_projector(spec: ComponentSpec, context: LoadContext) -> SignalProjector:
    """``tiny``: random weights of the sizes in the profile entry; otherwise a saved directory."""
    if spec.is_tiny:
        try:
            config = SignalProjectorConfig(
                **{k: int(spec.options[k]) for k in ("in_dim", "out_dim", "tokens", "hidden_dim")
                   if k in spec.options}
            )  # fmt: skip
        except TypeError as exc:
            raise VitronToolError(
                f"profile {spec.profile!r}: component {spec.name!r} needs in_dim and out_dim"
            ) from exc
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(spec.options.get("seed", 0)))
            projector = SignalProjector(config).eval()
    else:
        projector = SignalProjector.from_pretrained(checkpoint_file(spec))
    return projector.to(device=context.device, dtype=context.dtype)
