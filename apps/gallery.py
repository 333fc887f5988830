"""``vitron gallery``: a markdown page of a profile's generated and edited pictures, so a person
can look instead of read.

The rows (:mod:`vitron.evals.gallery`) are a fixed grid of shapes-world prompts and ``test``-split
edits run through the real tools with one seed; this module writes each picture as a PNG
(nearest-neighbour upscaled to about :data:`SHOW_SIDE` px, since the nano pictures are 32 and
64 px) and the page that shows them beside what the world's classifier reads in them. The page
holds no timings or dates, so rerunning the command on the same profile changes nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the command imports numpy and the models' libraries only when it runs
    import numpy as np

    from vitron.evals.gallery import Shown

SHOW_SIDE = 128
"""Pictures are scaled up by a whole factor to about this many pixels on their long side."""
PAGE = "README.md"
"""The page's file name in the output folder (shown by code hosts when the folder is opened)."""
FLOOR = 0.60
"""Issue 14's floor for text-to-image attribute accuracy and the edit's target attribute."""
VIDEO_FLOOR = 0.50
"""Issue 14's floors for text-to-video: per-frame attribute accuracy, and the motion direction."""
FIRST_FRAME_FLOOR = 20.0
"""Issue 14's floor for image-to-video's first frame against the picture (PSNR, dB)."""
KEPT_FLOOR = 0.60
"""Issue 14's floor for the share of the scene's objects image-to-video's later frames keep."""
PSNR_FLOOR = 30.0
"""Issue 14's floor for PSNR outside the edited area, in dB."""
KEYS = ("shape", "colour", "position")
DEFAULTS = {"profile": "nano", "out": "docs/gallery", "seed": 0, "prompts": None, "layouts": 4,
            "videos": 4, "animations": 4, "edits": 3}  # fmt: skip


def add_gallery_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "gallery",
        help="write a markdown page of a profile's generated and edited shapes-world pictures "
        "and clips, each beside what the world's classifier reads in it",
        description="Run a fixed grid of shapes-world prompts (every shape at every position) "
        "and the first box layouts of the test split through generate_image, a video request per "
        "direction through generate_video, a picture "
        "to animate per direction through image_to_video, and the first recolour, removal, add, "
        "move and background edits of the test split through edit_image, all with one seed; "
        "write the "
        "pictures and a page showing them.",
    )
    parser.add_argument("--profile", default=DEFAULTS["profile"], help="(default: %(default)s)")
    parser.add_argument("--out", default=DEFAULTS["out"], help="folder (default: %(default)s)")
    parser.add_argument(
        "--seed", type=int, default=0, help="every tool call's seed and the test split's world "
        "seed (default: %(default)s)"
    )  # fmt: skip
    parser.add_argument(
        "--prompts", type=int, help="only the first N text-to-image prompts (default: all 15)"
    )
    parser.add_argument(
        "--layouts", type=int, default=DEFAULTS["layouts"],
        help="box layouts of the test split, 1-2 objects each (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--videos", type=int, default=DEFAULTS["videos"],
        help="text-to-video requests, one per direction (default: %(default)s, all four)",
    )  # fmt: skip
    parser.add_argument(
        "--animations", type=int, default=DEFAULTS["animations"],
        help="image-to-video requests of the test split, one per direction (default: "
        "%(default)s, all four)",
    )  # fmt: skip
    parser.add_argument(
        "--edits", type=int, default=DEFAULTS["edits"],
        help="edits per operation: recolour, remove, add, move and background change "
        "(default: %(default)s)",
    )  # fmt: skip
    parser.add_argument("--device", default="cpu", help="(default: %(default)s)")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (default: %(default)s)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")


def run_gallery_command(args: argparse.Namespace) -> int:
    import torch

    from vitron.apps.output import check_output_folder
    from vitron.evals.gallery import (
        animation_samples,
        edit_samples,
        layout_samples,
        prompt_grid,
        run_gallery,
        video_prompts,
    )

    for flag in ("prompts", "layouts", "videos", "animations", "edits", "threads"):
        value = getattr(args, flag)
        if value is not None and value < (1 if flag == "threads" else 0):
            raise ValueError(
                f"--{flag} must be at least {1 if flag == 'threads' else 0}, got {value}"
            )
    check_output_folder(args.out, "the gallery")
    torch.set_num_threads(args.threads)
    samples = [*prompt_grid(args.prompts), *layout_samples(args.layouts, seed=args.seed),
               *video_prompts(args.videos),
               *animation_samples(args.animations, seed=args.seed),
               *edit_samples(args.edits, seed=args.seed)]  # fmt: skip
    if not samples:
        raise ValueError(
            "nothing to show: --prompts 0, --layouts 0, --videos 0, --animations 0 and --edits 0"
        )
    started = time.perf_counter()
    rows = []
    for shown in run_gallery(samples, args.profile, seed=args.seed, device=args.device):
        rows.append(shown)
        print(f"  {len(rows)}/{len(samples)} {shown.sample.calls[-1].args['instruction']} "
              f"({shown.seconds:.1f} s)", file=sys.stderr)  # fmt: skip
    page = write_gallery(rows, Path(args.out), profile=args.profile, command=command_line(args),
                         seed=args.seed)  # fmt: skip
    images = len(list(page.parent.glob("*.png")))
    print(f"wrote {page} and {images} images in {time.perf_counter() - started:.0f} s")
    return 0


def command_line(args: argparse.Namespace) -> str:
    """The command that regenerates the page, naming the settings that differ from defaults."""
    parts = [
        "vitron gallery",
        f"--profile {args.profile}",
        f"--out {args.out}",
        f"--seed {args.seed}",
    ]
    for flag in ("prompts", "layouts", "videos", "animations", "edits"):
        if getattr(args, flag) != DEFAULTS[flag]:
            parts.append(f"--{flag} {getattr(args, flag)}")
    return " ".join(parts)


# ------------------------------------------------------------------------------- pictures


def save_picture(array: np.ndarray, path: Path) -> str:
    """Write an H x W x 3 uint8 picture, or an H x W bool mask (white = True), scaled up by the
    whole factor that brings its short side nearest :data:`SHOW_SIDE` / 2 (a strip of frames) or
    its long side nearest :data:`SHOW_SIDE` (anything else); returns the file name."""
    import numpy as np
    from PIL import Image

    if array.dtype == bool:
        array = np.where(array, 255, 0).astype(np.uint8)
    height, width = array.shape[:2]
    strip = max(height, width) >= 4 * min(height, width)
    factor = max(1, round(SHOW_SIDE / (2 * min(height, width) if strip else max(height, width))))
    image = Image.fromarray(np.ascontiguousarray(array))
    image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST).save(path)
    return path.name


def _clear(out: Path) -> None:
    """Remove the pictures an earlier run wrote (a smaller grid must not leave stale files)."""
    for old in [*out.glob("t2i-*.png"), *out.glob("layout-*.png"), *out.glob("t2v-*.png"),
                *out.glob("i2v-*.png"), *out.glob("edit-*.png")]:  # fmt: skip
        old.unlink()


# ------------------------------------------------------------------------------- the page


def write_gallery(
    rows: Sequence[Shown], out: Path, *, profile: str, command: str, seed: int
) -> Path:
    """Write every row's pictures and the page under ``out``; returns the page's path."""
    out.mkdir(parents=True, exist_ok=True)
    _clear(out)
    generated = [r for r in rows if r.sample.task == "generation"]
    layouts = [r for r in rows if r.sample.task == "layout"]
    videos = [r for r in rows if r.sample.task == "video_generation"]
    animations = [r for r in rows if r.sample.task == "image_to_video"]
    edits = [r for r in rows if r.sample.task == "editing"]
    lines = _header(profile, command, seed, out)
    if generated:
        lines += _generation_section(generated, out)
    if layouts:
        lines += _layout_section(layouts, out)
    if videos:
        lines += _video_section(videos, out)
    if animations:
        lines += _animation_section(animations, out)
    if edits:
        lines += _edit_section(edits, out)
    page = out / PAGE
    page.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return page


def _header(profile: str, command: str, seed: int, out: Path) -> list[str]:
    lines = [
        f"# Gallery: text-to-image, layout-to-image, text-to-video, image-to-video and image "
        f"editing of the `{profile}` profile",
        "",
        f"Regenerate with `{command}`. Every tool call gets `seed={seed}`, so the same profile "
        "gives the same pictures. Each call goes through the real `generate_image` / "
        "`generate_video` / `image_to_video` / `edit_image` tools (what the graph runs), with "
        "the call a perfect planner would make; the planner is not involved. Pictures are scaled "
        "up without smoothing (nano's generators draw 32 px; its animations and edits are 64 px; "
        "a clip is its frames side by side). ✓/✗: what the shapes world's attribute classifier (the judge of "
        "`vitron eval`) reads in the output, against what was asked.",
        "",
        f"Issue 14's floors: text-to-image shape and colour right ≥ {FLOOR:.2f} (and the count: "
        "one object is asked for; not judged), held here to the stricter shape, colour and "
        f"position all right; "
        f"text-to-video shape and colour right per frame ≥ {VIDEO_FLOOR:.2f} and the object moving "
        f"the asked way ≥ {VIDEO_FLOOR:.2f}; "
        f"image-to-video first frame ≥ {FIRST_FRAME_FLOOR:.0f} dB against the picture and the "
        f"scene's objects kept on later frames ≥ {KEPT_FLOOR:.2f}; "
        f"layout-to-image an object of the right kind inside its box ≥ {FLOOR:.2f}; "
        f"editing target attribute right ≥ {FLOOR:.2f} and PSNR outside the edit ≥ "
        f"{PSNR_FLOOR:.0f} dB. The diffusion parts shown, by their training records (held-out "
        "metrics in `pretrain.json`, each run's own count of held-out samples):",
        "",
    ]
    lines += [f"- {line}" for line in _training_records(profile)]
    notes = _profile_readme(profile, out)
    if notes:
        lines += ["", f"How they were trained and where they fail: [{notes[1]}]({notes[0]})."]
    return [*lines, ""]


RECORD_LABELS = {
    "gen_shape": "shape",
    "gen_colour": "colour",
    "gen_position": "position",
    "gen_all": "all three",
    "recolor_attr": "recolour right",
    "recolor_psnr_in_mask": "recolour PSNR in the mask",
    "remove_psnr_in_mask": "removal PSNR in the mask",
    "repaint_psnr_in_mask": "repaint PSNR in the mask",
    "add_attr": "added right",
    "add_psnr_in_mask": "add PSNR in the mask",
    "layout_kind": "layout shape and colour right",
    "layout_placed": "drawn in its box",
    "layout_hit": "both",
    "frames_right": "frames with shape and colour right",
    "direction": "moved the asked way",
    "psnr_first": "first frame PSNR",
    "objects_kept": "objects kept",
}
"""Metric key of a diffusion ``pretrain.json`` -> the words the page uses for it."""
FLOOR_METRIC = {"text_to_image": ("gen_all", FLOOR), "gligen": ("layout_hit", FLOOR),
                "inpaint": ("recolor_attr", FLOOR), "text_to_video": ("frames_right", VIDEO_FLOOR),
                "image_to_video": ("objects_kept", KEPT_FLOOR)}  # fmt: skip
"""The training-record metric held against its floor, per component."""


def _training_records(profile: str) -> list[str]:
    """One line per diffusion component the page uses: its ``pretrain.json`` summary, marked
    under-trained where its floor metric is below :data:`FLOOR`; or what its weights are."""
    import json

    from vitron.tools.profiles import load_profile

    loaded = load_profile(profile)
    lines = []
    for name, (key, floor) in FLOOR_METRIC.items():
        spec = loaded.components.get(name)
        record = Path(spec.checkpoint) / "pretrain.json" if spec else None
        if spec is None:
            lines.append(f"`{name}`: not in this profile")
        elif spec.options.get("pipeline") == "collage":
            drawer = Path(spec.checkpoint).name
            lines.append(f"`{name}`: no model of its own; a collage of `{drawer}/`'s drawings, "
                         "each phrase drawn alone and put in its box by the tool")  # fmt: skip
        elif spec.is_tiny:
            lines.append(f"`{name}`: random weights (`tiny`), nothing learnt")
        elif record is None or not record.is_file():
            lines.append(f"`{name}`: `{spec.checkpoint}`, no training record beside it")
        else:
            info = json.loads(record.read_text(encoding="utf-8"))
            metrics = info.get("metrics", {})
            shown = ", ".join(f"{RECORD_LABELS.get(k, k)} {v:.3g}" for k, v in metrics.items())
            state = "trained"
            if key in metrics and metrics[key] < floor:
                state = f"**under-trained** ({RECORD_LABELS[key]} {metrics[key]:.3g} < {floor:.2f})"
            steps = f"{info.get('steps')} of {info.get('planned_steps')} steps"
            minutes = info.get("train_seconds", 0) / 60
            runs = info.get("lineage") or []
            if len(runs) > 1:  # a model continued from earlier runs: all of its training
                steps = f"{sum(r.get('steps', 0) for r in runs)} steps in {len(runs)} runs"
                minutes = sum(r.get("train_seconds", 0) for r in runs) / 60
            lines.append(f"`{name}`: {state}; {steps}, {minutes:.0f} min; held out: {shown}")
    return lines


def _profile_readme(profile: str, out: Path) -> tuple[str, str] | None:
    """A link (relative to ``out``) and a label for a built-in profile's README, if it has one."""
    import vitron.tools.profiles as profiles

    folder = Path(profiles.__file__).parent
    readme = folder / profile / "README.md"
    if not readme.is_file():
        return None
    link = Path(os.path.relpath(readme.resolve(), out.resolve())).as_posix()
    return link, f"tools/profiles/{profile}/README.md"


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _image(out: Path, name: str, array: np.ndarray | None, alt: str) -> str:
    if array is None:
        return "–"
    return f"![{_cell(alt)}]({save_picture(array, out / name)})"


def _reads(reads: dict[str, str], wanted: dict[str, str]) -> str:
    """``shape: circle ✓`` per wanted attribute, naming the wanted value where the read is wrong."""
    parts = []
    for key in (*KEYS, "background"):
        if key in wanted and key in reads:
            right = reads[key] == wanted[key]
            parts.append(f"{key}: {reads[key]} " + ("✓" if right else f"✗ (asked {wanted[key]})"))
    return "<br>".join(parts) or "–"


def _count(rows: Sequence[Shown], key: str, source: str = "reads") -> int:
    return sum(getattr(r, source).get(key) == r.sample.gold["expected"][key] for r in rows)


def _grid_words(n: int) -> str:
    from vitron.evals.gallery import GRID_X
    from vitron.evals.shapes.vocab import SHAPES

    grid = len(SHAPES) * len(GRID_X)
    which = "the whole grid" if n == grid else f"the first {n} of the grid's {grid}"
    return (f"{n} prompts ({which}: every shape at the left, centre and right, large and plain, "
            "colours and backgrounds in turn)")  # fmt: skip


def _generation_section(rows: Sequence[Shown], out: Path) -> list[str]:
    n = len(rows)
    every = sum(all(r.reads.get(k) == r.sample.gold["expected"][k] for k in KEYS) for r in rows)
    judge = sum(all(r.expected_reads.get(k) == r.sample.gold["expected"][k] for k in KEYS)
                for r in rows)  # fmt: skip
    lines = [
        "## Text-to-image",
        "",
        f"{_grid_words(n)}, worded as the shapes world's generation task words them. The "
        f"classifier reads, in the outputs: shape {_count(rows, 'shape')}/{n}, colour {_count(rows, 'colour')}/{n}, "
        f"position {_count(rows, 'position')}/{n}, all three **{every}/{n}** (chance: shape 1/5, "
        f"colour 1/6, position 1/3). It reads all three right in {judge}/{n} of the world's own "
        "pictures of the prompts.",
        "",
        "| # | prompt | the world draws | output | classifier reads the output |",
        "| --- | --- | --- | --- | --- |",
    ]
    for i, row in enumerate(rows, 1):
        prompt = row.sample.calls[0].args["instruction"]
        output = _image(out, f"t2i-{i:02d}-output.png", row.output, "output")
        if row.output is None:
            output = f"error: {_cell(row.error or 'no image')}"
        lines.append(
            f"| {i} | {_cell(prompt)} "
            f"| {_image(out, f't2i-{i:02d}-world.png', row.expected, 'the world draws')} "
            f"| {output} | {_reads(row.reads, row.sample.gold['expected'])} |"
        )
    return [*lines, ""]


def _layout_section(rows: Sequence[Shown], out: Path) -> list[str]:
    n = len(rows)
    objects = [o for r in rows for o in r.objects]
    hits = sum(bool(o["hit"]) for o in objects)
    lines = [
        "## Layout-to-image",
        "",
        f"The first {n} `layout` requests of the shapes world's `test` split, each through "
        "`generate_image` with its boxes and one phrase a box (the planner never learnt to "
        "write boxes, so these are the gold calls). *Judged*, per object: *in box* (a region of "
        "its colour drawn whose box has IoU ≥ 0.5 with the asked one) and *kind* (the classifier "
        f"reads the asked shape and colour inside the box); both in **{hits}/{len(objects)}** "
        "objects.",
        "",
        "| # | request | the world draws | output | judged |",
        "| --- | --- | --- | --- | --- |",
    ]
    for i, row in enumerate(rows, 1):
        phrases = row.sample.calls[0].args["phrases"]
        output = _image(out, f"layout-{i:02d}-output.png", row.output, "output")
        judged = "–"
        if row.output is None:
            output = f"error: {_cell(row.error or 'no image')}"
        elif row.objects:
            judged = "<br>".join(
                f"{_cell(p)}: in box {'✓' if o['placed'] else '✗'}, "
                f"kind {'✓' if o['kind'] else '✗'}"
                for p, o in zip(phrases, row.objects, strict=True)
            )
        lines.append(
            f"| {i} | {_cell(row.sample.instruction)} "
            f"| {_image(out, f'layout-{i:02d}-world.png', row.expected, 'the world draws')} "
            f"| {output} | {judged} |"
        )
    return [*lines, ""]


def _video_section(rows: Sequence[Shown], out: Path) -> list[str]:
    import numpy as np

    n = len(rows)
    frames = [
        r.values.get("frames_right") for r in rows if r.values.get("frames_right") is not None
    ]
    moved = sum(bool(r.values.get("direction")) for r in rows)
    lines = [
        "## Text-to-video",
        "",
        f"{n} requests, one per direction, worded as the shapes world's `video_generation` task "
        "words them, each through `generate_video`; a clip's 8 frames run left to right. The "
        "classifier reads the asked shape and colour on "
        + (f"{np.mean(frames):.0%} of the frames" if frames else "– of the frames")
        + f"; the object of the asked colour moved the asked way in **{moved}/{n}** clips "
        "(chance 1/4; its centre's shift from the first frame it shows on to the last).",
        "",
        "| # | request | the world's clip | output | judged |",
        "| --- | --- | --- | --- | --- |",
    ]
    for i, row in enumerate(rows, 1):
        request = row.sample.calls[0].args["instruction"]
        right = row.values.get("frames_right")
        facts = [f"shape and colour right on {right:.0%} of frames"] if right is not None else []
        output, judged = _clip_cells(out, f"t2v-{i:02d}-output.png", row, facts)
        lines.append(
            f"| {i} | {_cell(request)} "
            f"| {_image(out, f't2v-{i:02d}-world.png', row.expected, 'the world draws')} "
            f"| {output} | {judged} |"
        )
    return [*lines, ""]


def _animation_section(rows: Sequence[Shown], out: Path) -> list[str]:
    import numpy as np

    n = len(rows)
    firsts = [r.values["psnr_first"] for r in rows if r.values.get("psnr_first") is not None]
    kept = [r.values["objects_kept"] for r in rows if r.values.get("objects_kept") is not None]
    moved = sum(bool(r.values.get("direction")) for r in rows)
    lines = [
        "## Image-to-video",
        "",
        f"The first `image_to_video` request of each direction in the shapes world's `test` split "
        f"({n} in all), each through `image_to_video` with the words `video_tools` passes on; a clip's "
        "8 frames run left to right (the world's own clip is drawn at 32 px). *Judged*: the first "
        "frame's PSNR against the picture (mean "
        + (f"{np.mean(firsts):.1f} dB" if firsts else "–")
        + f", floor {FIRST_FRAME_FLOOR:.0f}), the share of the scene's objects the classifier "
        "still finds on frames 2–8 (mean "
        + (f"{np.mean(kept):.2f}" if kept else "–")
        + f", floor {KEPT_FLOOR:.2f}), and the way the named object went: the asked way in "
        f"**{moved}/{n}** clips (chance 1/4; no floor).",
        "",
        "| # | request | input | the world's clip | output | judged |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for i, row in enumerate(rows, 1):
        request = row.sample.calls[0].args["instruction"]
        first, share = row.values.get("psnr_first"), row.values.get("objects_kept")
        facts = [*([f"first frame {first:.1f} dB"] if first is not None else []),
                 *([f"objects kept {share:.0%}"] if share is not None else [])]  # fmt: skip
        output, judged = _clip_cells(out, f"i2v-{i:02d}-output.png", row, facts)
        lines.append(
            f"| {i} | {_cell(request)} "
            f"| {_image(out, f'i2v-{i:02d}-input.png', row.inputs[0], 'input')} "
            f"| {_image(out, f'i2v-{i:02d}-world.png', row.expected, 'the world draws')} "
            f"| {output} | {judged} |"
        )
    return [*lines, ""]


def _clip_cells(out: Path, name: str, row: Shown, facts: list[str]) -> tuple[str, str]:
    """A clip row's output cell (its frames as ``name``, or the tool's error) and judged cell
    (``facts``, then the way the object went against the asked way)."""
    if row.output is None:
        return f"error: {_cell(row.error or 'no clip')}", "–"
    asked, went = row.sample.gold["direction"], row.reads.get("moved", "nowhere")
    moved = f"moved: {went} " + ("✓" if went == asked else f"✗ (asked {asked})")
    return _image(out, name, row.output, "output"), "<br>".join([*facts, moved])


def _psnr(row: Shown) -> str:
    value = row.values.get("psnr")
    return "–" if value is None else f"{value:.1f} dB"


def _edit_summary(rows: Sequence[Shown]) -> list[str]:
    import numpy as np

    lines = []
    for operation in dict.fromkeys(r.sample.gold["operation"] for r in rows):
        chosen = [r for r in rows if r.sample.gold["operation"] == operation]
        psnrs = [r.values["psnr"] for r in chosen if r.values.get("psnr") is not None]
        made = sum(r.output is not None for r in chosen)
        parts = [f"{operation}: {made}/{len(chosen)} edited"]
        if chosen[0].sample.gold.get("expected"):
            right = sum(bool(r.values.get("attr")) for r in chosen)
            parts.append(f"target's colour and shape right {right}/{len(chosen)}")
        if chosen[0].sample.gold.get("background"):
            right = sum(bool(r.values.get("attr")) for r in chosen)
            parts.append(f"background in the asked tone {right}/{len(chosen)}")
        if psnrs:
            parts.append(f"mean PSNR outside the edit {np.mean(psnrs):.1f} dB")
        lines.append("- " + ", ".join(parts))
    return lines


def _edit_section(rows: Sequence[Shown], out: Path) -> list[str]:
    lines = [
        "## Image editing",
        "",
        "The first recolour, removal, add, move and background edits of the shapes world's "
        "`test` split (64 px scenes), each through `edit_image` with the edit's own words: "
        "Grounding DINO and SAM find the object, the inpainting pipeline repaints the area (white "
        "in *edited area*; an add is painted into the box its place words name, a move clears the "
        "object and pastes its own pixels where it goes; a background change is InstructPix2Pix's "
        "restyle, kept to what SAM's objects leave), and the input is pasted back outside it. "
        "*Judged*: what the classifier reads inside the target's box (recolours, adds, moves), "
        "the background's tone around the objects (background changes), and the PSNR to the "
        "world's own edit outside the edited region (grown by 2 px, as `vitron eval` scores it).",
        "",
        *_edit_summary(rows),
        "",
        "| # | instruction | input | the world's edit | output | edited area | judged |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for i, row in enumerate(rows, 1):
        gold = row.sample.gold
        judged = [f"PSNR outside {_psnr(row)}"]
        if gold.get("expected"):
            judged.insert(0, _reads(row.reads, gold["expected"]))
        if gold.get("background"):
            judged.insert(0, _reads(row.reads, {"background": gold["background"]}))
        output = _image(out, f"edit-{i:02d}-output.png", row.output, "output")
        if row.output is None:
            output = f"error: {_cell(row.error or 'no image')}"
            judged = ["–"]
        lines.append(
            f"| {i} | {_cell(gold['edit'])} "
            f"| {_image(out, f'edit-{i:02d}-input.png', row.inputs[0], 'input')} "
            f"| {_image(out, f'edit-{i:02d}-world.png', row.expected, 'the world edits')} "
            f"| {output} | {_image(out, f'edit-{i:02d}-area.png', row.area, 'edited area')} "
            f"| {'<br>'.join(judged)} |"
        )
    return [*lines, ""]
