"""``vitron gallery``: the page and its pictures, written through the real tools (tiny profile),
each picture referenced by the page, the same pictures for the same seed, no stale files left."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

from vitron.apps.cli import main

IMAGE_LINK = re.compile(r"!\[[^\]]*\]\(([^)]+)\)")


def run(out: Path, *extra: str) -> str:
    code = main(["gallery", "--profile", "tiny", "--out", str(out), "--device", "cpu", *extra])
    assert code == 0
    return (out / "README.md").read_text(encoding="utf-8")


def test_gallery_writes_the_page_and_every_picture_it_references(tmp_path):
    out = tmp_path / "gallery"
    page = run(out, "--prompts", "2", "--layouts", "1", "--videos", "1", "--animations", "1",
               "--edits", "1")  # fmt: skip
    written = {p.name for p in out.glob("*.png")}
    linked = IMAGE_LINK.findall(page)
    assert set(linked) == written and len(linked) == len(written)  # each once, none missing
    # 2 prompts x (world, output) + 1 layout x (world, output) + 1 video request x (world,
    # output) + 1 picture to animate x (input, world, output) + 5 edits (recolour, remove, add,
    # move, background) x (input, world, output, area)
    assert len(written) == 2 * 2 + 1 * 2 + 1 * 2 + 1 * 3 + 5 * 4
    # scaled up for people: 32 px generations and 64 px edits to 128 px; a clip's 32 px frames
    # side by side to 64 px high (the world's 8 frames, tiny's 4)
    sizes = {"t2v-01-world.png": (512, 64), "t2v-01-output.png": (256, 64),
             "i2v-01-world.png": (512, 64), "i2v-01-output.png": (256, 64)}  # fmt: skip
    for name in written:
        with Image.open(out / name) as image:
            assert image.size == sizes.get(name, (128, 128)), name
    assert ("# Gallery: text-to-image, layout-to-image, text-to-video, image-to-video and image "
            "editing of the `tiny` profile") in page  # fmt: skip
    assert "`vitron gallery --profile tiny --out " in page
    assert "--prompts 2 --layouts 1 --videos 1 --animations 1 --edits 1`" in page
    assert "`seed=0`" in page and "`text_to_image`: random weights (`tiny`)" in page
    assert "| 1 | a large red circle on the left on a grey background |" in page
    assert "| 2 | a large blue circle in the centre on a white background |" in page
    assert "the first 2 of the grid's 15" in page
    assert "## Layout-to-image" in page and "`gligen`: random weights (`tiny`)" in page
    layout = r"\| 1 \| (Draw|Generate|Make) .+ \| !\[the world draws\]\(layout-01-world\.png\) \| "
    assert re.search(
        layout + r"!\[output\]\(layout-01-output\.png\) \| a .+: in box (✓|✗), kind", page
    )
    assert re.search(r"both in \*\*\d/\d\*\* objects", page)
    assert "## Text-to-video" in page and "`text_to_video`: random weights (`tiny`)" in page
    assert "| 1 | a large red circle moving left on a grey background |" in page
    assert re.search(r"moved: \w+ (✓|✗ \(asked left\))", page)
    assert "## Image-to-video" in page and "`image_to_video`: random weights (`tiny`)" in page
    assert re.search(r"\| 1 \| the .+ moves left \| !\[input\]\(i2v-01-input\.png\)", page)
    assert re.search(r"first frame \d+\.\d dB<br>objects kept \d+%<br>moved: \w+", page)
    assert re.search(r"\| 1 \| make the .* \| !\[input\]\(edit-01-input\.png\)", page)
    assert re.search(r"\| 2 \| remove the .* \| !\[input\]\(edit-02-input\.png\)", page)
    assert re.search(r"\| 3 \| add a .* \| !\[input\]\(edit-03-input\.png\)", page)
    assert re.search(r"\| 4 \| move the .* \| !\[input\]\(edit-04-input\.png\)", page)
    restyle = r"\| 5 \| make the background (\w+) \| .*background: \w+ (✓|✗ \(asked \1\))"
    assert re.search(restyle, page)
    assert re.search(r"- restyle: 1/1 edited, background in the asked tone [01]/1", page)
    # the classifier's readings are on the page, each marked right or wrong
    assert page.count("shape: ") >= 2 and ("✓" in page or "✗" in page)

    first = np.asarray(Image.open(out / "t2i-01-output.png"))
    page = run(
        out,
        "--prompts",
        "1",
        "--layouts",
        "0",
        "--videos",
        "0",
        "--animations",
        "0",
        "--edits",
        "0",
    )  # a smaller grid, same folder
    assert {p.name for p in out.glob("*.png")} == {"t2i-01-world.png", "t2i-01-output.png"}
    assert set(IMAGE_LINK.findall(page)) == {"t2i-01-world.png", "t2i-01-output.png"}
    assert "## Image editing" not in page and "## Text-to-video" not in page
    assert "## Layout-to-image" not in page
    assert "## Image-to-video" not in page
    assert np.array_equal(np.asarray(Image.open(out / "t2i-01-output.png")), first)  # seeded


def test_gallery_bad_input_is_a_clear_error_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "gallery"
    assert main(["gallery", "--profile", "tiny", "--out", str(out), "--prompts", "-1"]) == 2
    assert "--prompts must be at least 0" in capsys.readouterr().err
    assert main(["gallery", "--profile", "tiny", "--out", str(out), "--prompts", "0",
                 "--layouts", "0", "--videos", "0", "--animations", "0", "--edits", "0"]) == 2  # fmt: skip
    assert "nothing to show" in capsys.readouterr().err
    assert main(["gallery", "--profile", "no-such-profile", "--out", str(out)]) == 2
    assert "unknown profile 'no-such-profile'" in capsys.readouterr().err
    assert not out.exists()


def test_a_tool_failure_is_a_row_with_its_error_not_a_crash(tmp_path):
    from vitron.apps.gallery import write_gallery
    from vitron.evals.gallery import Shown, prompt_grid
    from vitron.evals.harness import Outcome

    sample = prompt_grid(1)[0]
    failed = {"name": "generate_image", "status": "error", "artifact": {},
              "content": "generate_image failed: out of memory | try a smaller size"}  # fmt: skip
    row = Shown(sample=sample, outcome=Outcome(sample=sample, results=[failed]),
                expected=sample.gold["reference"])  # fmt: skip
    page = write_gallery([row], tmp_path, profile="tiny", command="vitron gallery", seed=0)
    text = page.read_text(encoding="utf-8")
    assert "error: generate_image failed: out of memory \\| try a smaller size" in text
    assert IMAGE_LINK.findall(text) == ["t2i-01-world.png"]
    assert [p.name for p in tmp_path.glob("*.png")] == ["t2i-01-world.png"]
    assert "all three **0/1**" in text


def test_a_model_continued_from_earlier_runs_is_shown_with_all_of_its_training(tmp_path):
    """The header's training line of a model whose ``pretrain.json`` keeps a ``lineage`` counts
    every run's steps and minutes, not only the last run's."""
    import json

    from vitron.apps.gallery import _training_records

    folder = tmp_path / "text_to_image"
    folder.mkdir()
    first = {"steps": 3000, "planned_steps": 3000, "train_seconds": 1200.0}
    last = {"steps": 1500, "planned_steps": 1500, "train_seconds": 600.0}
    record = {**last, "metrics": {"gen_all": 0.5}, "lineage": [first, last]}
    (folder / "pretrain.json").write_text(json.dumps(record))
    profile = tmp_path / "p.toml"
    profile.write_text(
        '[components.text_to_image]\nloader = "diffusion"\npipeline = "text_to_image"\n'
        f'checkpoint = "{folder}"\n'
    )
    (line,) = [x for x in _training_records(str(profile)) if x.startswith("`text_to_image`")]
    assert "4500 steps in 2 runs, 30 min" in line and "all three 0.5" in line


def test_a_layout_component_drawn_as_a_collage_says_so_not_its_drawers_record():
    """nano's ``gligen`` entry reads the text-to-image folder as a collage: the header names it
    as that, not as a trained GLIGEN with the text-to-image record."""
    from vitron.apps.gallery import _training_records

    (line,) = [x for x in _training_records("nano") if x.startswith("`gligen`")]
    assert "no model of its own; a collage of" in line and "text_to_image" in line
    assert "trained" not in line
