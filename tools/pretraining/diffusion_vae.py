"""A nano diffusers ``AutoencoderKL`` for the nano Stable Diffusion pipelines, trained on the
shapes world.

Three blocks (32, 64, 64 channels), so pixels are downsampled by 4: a 32 px generation picture is a
4 x 8 x 8 latent, a 64 px editing scene 4 x 16 x 16. An earlier 4.5-minute run of this size lost the
shape (the classifier read shape on 42 % of reconstructions), so the reconstruction loss here is L1
plus MSE with pixels at colour edges weighted 5 x (an edge term: shape is all in the outline), the
decoder reads the posterior's mean and the KL term is tiny (a nearly deterministic autoencoder). 70 % of every
batch is the generation task's kind of picture, the rest 32 px crops of 64 px editing scenes.

Saved with ``save_pretrained`` (``config.json`` + safetensors), ``scaling_factor`` set to one over
the latents' standard deviation on training pictures, as the pipelines expect; the text-to-image
pretrainer reads the folder (``vitron pretrain diffusion_text_to_image --base DIR``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL

from vitron.tools.pretraining.data import ScenePool, pool_size
from vitron.tools.pretraining.diffusion_data import (
    GENERATION_SIZE,
    generation_example,
    scene_crop,
)
from vitron.tools.pretraining.loop import seeded, step_rng

KL_WEIGHT = 1e-6
"""Per-latent-element KL weight (pixel losses are per-element means in [-1, 1] units): it only
keeps the latent means bounded. The decoder reads the means, not samples: decoding samples (with KL
1e-4 or 1e-6) gave blurred, colourless blobs for 400 steps (colour read on 18–32 % of
reconstructions), as the posterior's noise hid the small objects."""
GENERATION_SHARE = 0.7
"""Share of a batch that is the generation task's kind of picture (the rest: scene crops)."""
EDGE_WEIGHT = 4.0
"""Extra weight of pixels next to a colour change (outlines)."""


def nano_vae() -> AutoencoderKL:
    """3 x S x S pixels in [-1, 1] <-> 4 x S/4 x S/4 latents; 0.9 M parameters."""
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(32, 64, 64),
        down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
        layers_per_block=1, norm_num_groups=16, sample_size=GENERATION_SIZE,
    )  # fmt: skip


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """B x S x S x 3 uint8 -> B x 3 x S x S floats in [-1, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def to_uint8(pixels: torch.Tensor) -> np.ndarray:
    """B x 3 x S x S in [-1, 1] -> B x S x S x 3 uint8."""
    out = ((pixels.clamp(-1, 1) + 1) * 127.5).round().byte()
    return out.permute(0, 2, 3, 1).cpu().numpy()


def edge_map(pixels: torch.Tensor) -> torch.Tensor:
    """B x 1 x S x S: 1 where a pixel differs from a 4-neighbour (an outline or texture edge)."""
    dx = (pixels[..., :, 1:] - pixels[..., :, :-1]).abs().amax(1, keepdim=True) > 0.05
    dy = (pixels[..., 1:, :] - pixels[..., :-1, :]).abs().amax(1, keepdim=True) > 0.05
    edges = torch.zeros_like(pixels[:, :1])
    edges[..., :, 1:] += dx
    edges[..., :, :-1] += dx
    edges[..., 1:, :] += dy
    edges[..., :-1, :] += dy
    return (edges > 0).float()


def _picture(rng: np.random.Generator) -> np.ndarray:
    return generation_example(rng)[0] if rng.random() < GENERATION_SHARE else scene_crop(rng)


class VaePretrainer:
    name = "diffusion_vae"
    default_steps = 3000  # the committed nano VAE; at 1100 shape was still being learnt
    learning_rate = 2e-3
    batch_size = 32

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.model: AutoencoderKL = seeded(seed, nano_vae)
        self.pool: ScenePool[np.ndarray] | None = None

    def start(self, step: int, total: int) -> None:
        self.pool = ScenePool(_picture, seed=self.seed, capacity=pool_size(self.batch_size, total, 8),
                              refresh=8, step=step)  # fmt: skip

    def loss(self, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        assert self.pool is not None, "call start() first"
        rng = step_rng(self.seed, 1, step)
        images = self.pool.batch(rng, self.batch_size)
        self.pool.advance()
        x = to_tensor(np.stack(images))
        posterior = self.model.encode(x).latent_dist
        recon = self.model.decode(posterior.mode()).sample
        weight = 1.0 + EDGE_WEIGHT * edge_map(x)
        l1 = ((recon - x).abs() * weight).mean()
        mse = (((recon - x) ** 2) * weight).mean()
        kl = posterior.kl().mean() / posterior.mean[0].numel()
        with torch.no_grad():
            psnr = 10 * torch.log10(4.0 / F.mse_loss(recon.clamp(-1, 1), x)).item()
        return l1 + mse + KL_WEIGHT * kl, {"l1": l1.item(), "kl": kl.item(), "psnr": psnr}

    def evaluate(self, count: int) -> dict[str, float]:
        """Reconstructions of the generation task's test pictures judged by the attribute
        classifier (shape / colour / position / all three), and PSNR there and on 64 px editing
        scenes of the test split."""
        return evaluate_vae(self.model, count)

    def save(self, directory: Path) -> None:
        save_vae(self.model, directory)


def latent_std(vae: AutoencoderKL, count: int = 256, seed: int = 12345) -> float:
    """Standard deviation of the latent means of ``count`` training pictures."""
    rng = np.random.default_rng(seed)
    images = np.stack([_picture(rng) for _ in range(count)])
    with torch.no_grad():
        return float(vae.encode(to_tensor(images)).latent_dist.mean.std())


LOGVAR = -30.0
"""The posterior log-variance of a saved VAE (diffusers' lower clamp): std 3e-7."""


def make_deterministic(vae: AutoencoderKL) -> AutoencoderKL:
    """Fix the posterior's log-variance at :data:`LOGVAR`, so a sample is the mean.

    The decoder was trained on means, and the KL term (1e-6) leaves the variance head near
    std 1; diffusers' image-conditioned pipelines (inpainting's masked image and ``strength < 1``
    start) *sample* the posterior, which would bury the picture in that noise. Only the variance
    half of ``quant_conv`` changes: means, and so every latent the UNets were trained on, stay."""
    channels = vae.config.latent_channels
    with torch.no_grad():
        vae.quant_conv.weight[channels:] = 0.0
        vae.quant_conv.bias[channels:] = LOGVAR
    return vae


def save_vae(vae: AutoencoderKL, directory: Path) -> None:
    """``save_pretrained`` with ``scaling_factor`` = 1 / latent std (unit-variance latents) and a
    deterministic posterior (:func:`make_deterministic`)."""
    vae.register_to_config(scaling_factor=round(1.0 / latent_std(vae), 4))
    make_deterministic(vae).save_pretrained(directory)


def reconstruct(vae: AutoencoderKL, images: np.ndarray) -> np.ndarray:
    """B x S x S x 3 uint8 through the mean latent and back."""
    with torch.no_grad():
        latents = vae.encode(to_tensor(images)).latent_dist.mean
        return to_uint8(vae.decode(latents).sample)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
    return 10 * np.log10(255.0**2 / max(mse, 1e-10))


def evaluate_vae(vae: AutoencoderKL, count: int, seed: int = 0) -> dict[str, float]:
    """See :meth:`VaePretrainer.evaluate`; samples are the ``test`` split's, seed ``seed``."""
    from vitron.evals.classifier import load_classifier
    from vitron.evals.shapes.dataset import make_sample

    judge = load_classifier()
    vae = vae.eval()
    refs, expected = [], []
    for i in range(count):
        sample = make_sample("test", i, seed=seed, tasks=["generation"])
        refs.append(sample.gold["reference"])
        expected.append(sample.gold["expected"])
    recons = reconstruct(vae, np.stack(refs))
    hits = {"shape": 0, "colour": 0, "position": 0, "all": 0}
    for recon, want in zip(recons, expected, strict=True):
        seen = judge.predict(recon)
        right = [seen[k] == v for k, v in want.items()]
        for key, ok in zip(want, right, strict=True):
            hits[key] += ok
        hits["all"] += all(right)
    scenes = np.stack([
        make_sample("test", i, seed=seed, tasks=["editing"]).media[0].pixels
        for i in range(max(1, count // 4))
    ])  # fmt: skip
    metrics = {f"recon_{k}": v / count for k, v in hits.items()}
    metrics["psnr_32"] = float(np.mean([psnr(a, b) for a, b in zip(recons, refs, strict=True)]))
    metrics["psnr_64"] = float(np.mean([psnr(a, b) for a, b in zip(reconstruct(vae, scenes), scenes, strict=True)]))  # fmt: skip
    return metrics


def make_pretrainer(seed: int) -> VaePretrainer:
    return VaePretrainer(seed)
