"""Issue 10's speed items, each as a before/after ratio measured in one run on the tiny profile:

1. instance / semantic / panoptic class detection: one Grounding DINO pass per class name (before)
   against one pass over a caption of all names, split back by phrase (after) — time for 5 classes,
   and 5 classes against 1 with each method;
2. SAM's automatic mask generator with a fresh image embedding (before: it embedded the image
   itself) against the engine's cached embedding (after);
3. ChatVitron prompt tokens after 10 images named in 10 turns, every image as visual tokens
   (before) against ``max_media = 4`` (after); and the frame-timestamp text of one 8-frame video,
   the old wording against the new, next to the pooled video tokens it annotates.

    .venv/bin/python benchmarks/bench_speed_items.py [--repeats 5]

Timings are wall-clock medians on this machine (CPU, one thread); token counts are exact for the
tiny tokenizer. This is a benchmark, not a test: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from skimage import data

from vitron.agent.build import build_tiny_vitron
from vitron.agent.chat_model import ChatVitron
from vitron.agent.inputs import SampledVideo
from vitron.graphs import user_message
from vitron.tools.backend import CallContext, ServiceSettings, get_services
from vitron.tools.steps.detection import detect, detect_classes

CLASSES = ["person", "flag", "helmet", "glove", "badge"]


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    run()  # warm: models loaded, caches filled where the method allows
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def per_class_passes(call: CallContext, image: str, names: list[str]) -> None:
    """The old instance-mode detection: one Grounding DINO pass per class name."""
    for name in names:
        detect(call, image, name, box_threshold=0.3, max_boxes=100)


def detection(call: CallContext, image: str, repeats: int) -> None:
    before5 = median_seconds(lambda: per_class_passes(call, image, CLASSES), repeats)
    before1 = median_seconds(lambda: per_class_passes(call, image, CLASSES[:1]), repeats)
    after5 = median_seconds(
        lambda: detect_classes(call, image, CLASSES, box_threshold=0.3), repeats
    )
    after1 = median_seconds(
        lambda: detect_classes(call, image, CLASSES[:1], box_threshold=0.3), repeats
    )
    print("1. class detection (Grounding DINO, tiny)")
    print(f"   5 classes: per-class passes {before5 * 1e3:.1f} ms, one pass {after5 * 1e3:.1f} ms "
          f"-> {before5 / after5:.2f}x faster")  # fmt: skip
    print(f"   5 vs 1 class: per-class passes {before5 / before1:.2f}x, "
          f"one pass {after5 / after1:.2f}x")  # fmt: skip


def automatic_masks(call: CallContext, image: str, repeats: int) -> None:
    sam = call.models.get("sam")
    picture = call.workspace.get_image(image)

    def fresh() -> None:
        sam.automatic(picture)  # the generator embeds the image itself

    def cached() -> None:
        sam.automatic(picture, key=image)

    def embed_only() -> None:
        sam.predictor(f"bench-{time.perf_counter_ns()}", picture)

    before = median_seconds(fresh, repeats)
    after = median_seconds(cached, repeats)
    embedding = median_seconds(embed_only, repeats)
    print("2. SAM automatic mask generator (tiny SAM, profile settings)")
    print(f"   fresh embedding {before * 1e3:.1f} ms, cached embedding {after * 1e3:.1f} ms "
          f"-> {before / after:.2f}x faster; one embedding alone {embedding * 1e3:.1f} ms "
          "(tiny's encoder is cheap; with SAM ViT-H the embedding is the large part, not measured here)")  # fmt: skip


def old_timestamp_text(times: list[float]) -> str:
    frames = ", ".join(f"frame {i} at {t:.1f}s" for i, t in enumerate(times))
    return f"The video has {len(times)} sampled frames: {frames}."


def prompt_tokens(workspace_root: Path) -> None:
    model, processor = build_tiny_vitron(seed=0)
    chat = ChatVitron.from_model(model, processor, workspace=str(workspace_root), device="cpu")
    workspace = chat._services().workspace.for_thread("bench")
    messages = []
    for k in range(10):
        picture = workspace.put_image(np.full((32, 32, 3), 20 * k, dtype=np.uint8))
        messages.append(user_message(f"and what about {picture.handle}?"))
    tokens = {}
    for cap in (None, 4):
        rendered = chat.model_copy(update={"max_media": cap}).render(messages, thread_id="bench")
        tokens[cap] = processor.encode_chat(rendered.turns)["input_ids"].shape[1]
    print("3. ChatVitron prompt after 10 images in 10 turns (tiny: 64 tokens per image)")
    print(f"   every image as pixels {tokens[None]} tokens, max_media=4 {tokens[4]} tokens "
          f"-> {tokens[None] / tokens[4]:.2f}x fewer")  # fmt: skip
    times = [0.5 + k for k in range(8)]
    sampled = SampledVideo(torch.zeros(8, 3, 1, 1), list(range(8)), times)
    count = len(processor.tokenizer.encode(old_timestamp_text(times), add_special_tokens=False))
    new = len(processor.tokenizer.encode(sampled.describe(), add_special_tokens=False))
    pooled = (
        model.config.video_tokens_for(8)
        if hasattr(model.config, "video_tokens_for")
        else (8 * model.config.video_tokens_per_frame)
    )
    print(f"   timestamp text of an 8-frame video: old {count} tokens, new {new} tokens "
          f"-> {count / new:.2f}x fewer; pooled video tokens it annotates: {pooled} "
          f"(default config: {8 * 16})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as root:
        services = get_services(ServiceSettings(profile="tiny", workspace=root, device="cpu"))
        workspace = services.workspace.for_thread("bench")
        call = CallContext(workspace=workspace, models=services.models, progress=lambda e: None)
        photo = workspace.put_image(data.astronaut()).handle
        detection(call, photo, args.repeats)
        automatic_masks(call, photo, args.repeats)
        prompt_tokens(Path(root))


if __name__ == "__main__":
    main()
