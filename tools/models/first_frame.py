"""Holding an image-to-video clip's first frame to the picture while it is denoised.

An image-to-video model is asked to start its clip from the picture, but a small one redraws it:
the nano I2VGen-XL's frame 0 came back at 14 dB against the input. Holding it is the known-region
replacement of RePaint (Lugmayr et al., 2022) and of the "replacement" video-diffusion samplers:
after every denoising step, frame 0 of the latents is set to the picture's latents noised to the
level of the step that comes next (and to the picture's latents themselves after the last), so
the frames after it are denoised next to a first frame that is the picture, as the VAE keeps it.

The same replacement can hold part of every later frame: ``still`` marks the latent cells where
the picture stays as it is (everything but what the request moves, see
:mod:`vitron.tools.motion_area`), the "motion brush" of image animation: only the cells left free
are drawn by the model, so the rest of the scene is kept as the VAE keeps it.

Nothing is trained for it; it wraps the pipeline's scheduler for one call. The picture's latents
are the ones the pipeline conditions on (``image_latents``' frame 0, read off the UNet's first
call), so they are encoded once and exactly as the pipeline encodes them.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Carry:
    """An object carried along a path for the first ``steps`` denoising steps: its ``cells`` (h x w
    bool, the latents' grid) are moved ``shift`` = (dx, dy) cells a frame (y down), the place it
    leaves filled with the picture's typical background latent, and frame t's ``band`` cells (h x w
    bool: where the clip may change) are held to that moved picture. After ``steps`` the band is
    the model's to finish, so it draws the moved object into the scene (SDEdit's partial
    denoising, started from a trajectory instead of a still picture)."""

    cells: torch.Tensor
    band: torch.Tensor
    shift: tuple[float, float]
    steps: int

    def targets(self, picture: torch.Tensor, frames: int) -> torch.Tensor:
        """``picture`` (B x C x h x w latents) -> B x frames x C x h x w: frame t with the object
        moved ``t * shift`` cells (bilinear, so a fraction of a cell moves it too)."""
        batch, channels, height, width = picture.shape
        cells = self.cells.to(picture.device, picture.dtype)
        outside = picture.flatten(2)[:, :, ~self.cells.flatten().to(picture.device)]
        background = (
            outside.median(dim=2).values[:, :, None, None]
            if outside.shape[2]
            else picture.mean(dim=(2, 3), keepdim=True)
        )
        emptied = picture * (1 - cells) + background * cells
        ys, xs = torch.meshgrid(
            torch.arange(height, dtype=picture.dtype), torch.arange(width, dtype=picture.dtype),
            indexing="ij",
        )  # fmt: skip
        layers = torch.cat([picture * cells, cells.expand(batch, 1, height, width)], dim=1)
        moved = []
        for frame in range(frames):
            dx, dy = self.shift[0] * frame, self.shift[1] * frame
            grid = torch.stack(  # where each output cell reads from, in [-1, 1]
                [(xs - dx) * 2 / max(width - 1, 1) - 1, (ys - dy) * 2 / max(height - 1, 1) - 1],
                dim=-1,
            )[None].expand(batch, height, width, 2)
            shifted = F.grid_sample(layers, grid, mode="bilinear", padding_mode="zeros",
                                    align_corners=True)  # fmt: skip
            content, weight = shifted[:, :channels], shifted[:, channels:]
            body = weight > 0.5
            moved.append(torch.where(body, content / weight.clamp_min(1e-6), emptied))
        return torch.stack(moved, dim=1)


@contextmanager
def first_frame_held(
    pipe: Any,
    frames: int,
    seed: int,
    still: torch.Tensor | None = None,
    carry: Carry | None = None,
) -> Iterator[None]:
    """While open, ``pipe`` (an ``I2VGenXLPipeline``) keeps frame 0 of each of its clips at the
    picture's latents noised to the coming step's level; ``frames`` is the clip's length (the
    scheduler sees the latents as (B * frames) x C x h x w, frame 0 of clip b at row b * frames) and
    ``seed`` fixes the noise put on the picture. ``still`` (h x w bool, the latents' grid; True
    where the picture stays) holds those cells of frames 1.. the same way; ``carry`` holds its
    band of frame t to the picture with the object moved t steps, for its first steps. The
    pipeline must not run elsewhere meanwhile (the engines hold a lock)."""
    scheduler, unet = pipe.scheduler, pipe.unet
    noise_source = torch.Generator("cpu").manual_seed(seed)
    held: dict[str, torch.Tensor] = {}

    def read_picture(_module: Any, _args: tuple, kwargs: dict[str, Any]) -> None:
        if "picture" not in held:  # B x C x h x w; a guided call repeats the batch, take one copy
            latents = kwargs["image_latents"][:, :, 0]
            held["picture"] = latents
            noise = torch.randn(latents.shape, generator=noise_source, dtype=torch.float32)
            held["noise"] = noise.to(device=latents.device, dtype=latents.dtype)
            if carry is not None:
                held["carried"] = carry.targets(latents, frames)

    step = scheduler.step

    @functools.wraps(step)
    def step_holding_frame_zero(model_output: torch.Tensor, timestep: Any, sample: torch.Tensor,
                                *args: Any, **kwargs: Any) -> Any:  # fmt: skip
        output = step(model_output, timestep, sample, *args, **kwargs)
        latents = output[0] if isinstance(output, tuple) else output.prev_sample
        clips = latents.shape[0] // frames
        picture, noise = held["picture"][-clips:], held["noise"][-clips:]
        position = _position(scheduler.timesteps, timestep)
        coming = (
            scheduler.timesteps[position + 1] if position + 1 < len(scheduler.timesteps) else None
        )
        levels = None if coming is None else coming.reshape(1).expand(clips)
        if levels is not None:
            picture = scheduler.add_noise(picture, noise, levels)
        picture = picture.to(latents.dtype)
        latents[::frames] = picture
        if carry is not None and position < carry.steps:
            band = carry.band.to(latents.device)
            for later in range(1, frames):
                target = held["carried"][-clips:, later]
                if levels is not None:
                    target = scheduler.add_noise(target, noise, levels)
                target = target.to(latents.dtype)
                latents[later::frames] = torch.where(band, target, latents[later::frames])
        if still is not None:
            keep = still.to(latents.device)
            for later in range(1, frames):
                latents[later::frames] = torch.where(keep, picture, latents[later::frames])
        return output

    hook = unet.register_forward_pre_hook(read_picture, with_kwargs=True)
    scheduler.step = step_holding_frame_zero
    try:
        yield
    finally:
        hook.remove()
        del scheduler.step  # the class's own method again


def _position(timesteps: torch.Tensor, timestep: Any) -> int:
    """Where ``timestep`` is in the schedule (0 for the first, noisiest step)."""
    return int((timesteps == torch.as_tensor(timestep, device=timesteps.device)).nonzero()[0])
