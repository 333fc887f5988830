"""Prompt tokens and wall time of image and video prompts on the tiny Vitron LLM, against the
reference's cost of 256 visual tokens per frame (Video-LLaVA / released Vitron: 8 frames x 256 =
2048 tokens per video).

Our video encoder pools each frame to ``video_tokens_per_frame`` tokens (tiny: 4 of its 64
patches; default config: 16 of 256) and adds a temporal embedding. For a like-for-like timing the
same tiny model is also run unpooled (every patch of every frame, as the reference does).

    .venv/bin/python benchmarks/bench_video_tokens.py [--repeats 9] [--threads 1]

Timings are wall-clock medians on this machine: processor (sampling, resizing, tokenising) and the
prefill forward pass (vision tower, projector, LLM over the whole prompt).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from transformers import CLIPVisionConfig

from vitron.agent.build import build_tiny_vitron
from vitron.agent.configuration import VitronConfig
from vitron.agent.inputs import Turn, VideoInput

REFERENCE_TOKENS_PER_FRAME = 256
"""LanguageBind ViT-L/14 at 224 px: 16 x 16 patch tokens per image or video frame."""


@dataclass
class Case:
    name: str
    frames: int  # 0 for an image


CASES = (Case("image", 0), Case("video, 8 frames", 8), Case("video, 32 frames", 32))


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    run()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(case: Case, tokens_per_frame: int | None, repeats: int) -> dict[str, float]:
    overrides = {} if tokens_per_frame is None else {"video_tokens_per_frame": tokens_per_frame}
    model, processor = build_tiny_vitron(seed=0, **overrides)
    rng = np.random.default_rng(0)
    if case.frames:
        processor.video_num_frames = case.frames
        frames = (rng.random((case.frames, 96, 128, 3)) * 255).astype(np.uint8)
        media = VideoInput(frames, fps=8.0)
        question = "What happens in the video?"
    else:
        media = (rng.random((96, 128, 3)) * 255).astype(np.uint8)
        question = "What is in the image?"
    turns = [Turn("user", [media, question])]
    batch = processor.encode_chat(turns)
    ids = processor.token_ids
    visual = int(((batch["input_ids"] == ids.image) | (batch["input_ids"] == ids.video)).sum())

    def prefill() -> None:
        with torch.inference_mode():
            model(**batch, use_cache=True, logits_to_keep=1)

    return {
        "visual": visual,
        "prompt": int(batch["input_ids"].shape[1]),
        "encode_ms": 1000 * median_seconds(lambda: processor.encode_chat(turns), repeats),
        "prefill_ms": 1000 * median_seconds(prefill, repeats),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    model, _ = build_tiny_vitron(seed=0)
    patches = model.config.tokens_per_image
    print(
        f"tiny Vitron LLM: {patches} patch tokens per image, "
        f"{model.config.video_tokens_per_frame} pooled tokens per video frame; "
        f"torch threads {args.threads}, median of {args.repeats}\n"
    )
    header = (
        f"{'input':<18}{'visual tok':>11}{'text tok':>9}{'prompt tok':>11}{'ref frames x 256':>17}"
        f"{'ref/ours':>9}{'encode ms':>10}{'prefill ms':>11}"
        f"{'unpooled tok':>13}{'unpooled prefill ms':>20}"
    )
    print(header)
    print("-" * len(header))
    for case in CASES:
        ours = measure(case, None, args.repeats)
        unpooled = measure(case, patches, args.repeats) if case.frames else ours  # images: never
        reference = max(case.frames, 1) * REFERENCE_TOKENS_PER_FRAME
        print(
            f"{case.name:<18}{ours['visual']:>11}{ours['prompt'] - ours['visual']:>9}"
            f"{ours['prompt']:>11}{reference:>17}"
            f"{reference / ours['visual']:>8.0f}x{ours['encode_ms']:>10.1f}"
            f"{ours['prefill_ms']:>11.1f}{unpooled['visual']:>13}{unpooled['prefill_ms']:>20.1f}"
        )

    tower = CLIPVisionConfig(  # ViT-L/14 at 224 px, the vitron-7b profile's tower
        hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
        image_size=224, patch_size=14,
    )  # fmt: skip
    default = VitronConfig(vision_config=tower)
    print(
        f"\nViT-L/14-224 tower with the default glue (counts from the config): "
        f"{default.tokens_per_image} tokens per image, {default.video_tokens_per_frame} per frame"
    )
    for frames in (8, 32):
        ours = default.video_token_count(frames)
        reference = frames * REFERENCE_TOKENS_PER_FRAME
        print(
            f"  {frames:>2} frames: {ours:>4} visual tokens vs the reference's {reference:>5} "
            f"({reference / ours:.0f}x fewer)"
        )


if __name__ == "__main__":
    main()
