"""``vitron eval`` from the command line: the table is printed and written, ablations say what the
profile lacks, bad input is a clear error."""

from __future__ import annotations

import json

from vitron.apps.cli import main

LIMIT = 11  # one sample of each shapes task


def test_vitron_eval_tiny_shapes_prints_and_writes_the_table(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["eval", "--profile", "tiny", "--suite", "shapes", "--limit", str(LIMIT),
                 "--workspace", str(tmp_path / "ws"), "--device", "cpu", "--no-progress",
                 "--max-new-tokens", "16", "--ablate", "synergy", "--threads", "1", "--out", str(out)])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr()
    assert "| run | task | n | exec |" in printed.out
    assert "| full | referring_segmentation | 1 |" in printed.out
    assert "profile tiny provides no synergy ablation" in printed.out
    assert "profile: `tiny`" in printed.out and "seed: 0" in printed.out
    written = json.loads((out / "eval-shapes-test.json").read_text())
    assert written["profile"] == "tiny" and written["samples"] == LIMIT
    assert len(written["records"]) == LIMIT and written["runs"][0]["name"] == "full"
    assert (out / "eval-shapes-test.md").read_text().startswith("# vitron eval — suite shapes")
    assert not list((tmp_path / "ws").rglob("*.png"))  # each sample's media removed after scoring
    # generation and editing are judged by the shipped attribute classifier, whose own accuracy
    # on the ground-truth images is stated
    assert any("classifier's own accuracy" in n for n in written["notes"])


def test_vitron_eval_bad_input_is_a_clear_error(tmp_path, capsys):
    base = ["eval", "--workspace", str(tmp_path / "ws"), "--no-progress", "--out", str(tmp_path)]
    assert main([*base, "--suite", "davis"]) == 2
    assert "give --data FOLDER" in capsys.readouterr().err
    assert main([*base, "--split", "holdout"]) == 2
    assert "unknown split 'holdout'" in capsys.readouterr().err
    assert main([*base, "--limit", "0"]) == 2
    assert main([*base, "--threads", "0"]) == 2


def test_an_attribute_classifier_given_by_name_fills_the_attribute_column(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["eval", "--limit", "17", "--workspace", str(tmp_path / "ws"), "--device", "cpu",
                 "--no-progress", "--max-new-tokens", "8", "--out", str(out),
                 "--classifier", "tests.evals.oracle:ColourJudge"])  # fmt: skip
    assert code == 0
    written = json.loads((out / "eval-shapes-test.json").read_text())
    assert written["runs"][0]["tasks"]["generation"]["attribute_accuracy"] == 0.0  # no image made
    assert not any("no attribute classifier" in n for n in written["notes"])
    # its own accuracy on the ground truth is reported: it reads colours right, knows no shape
    assert written["classifier_accuracy"]["colour"] > 0.5
    assert written["classifier_accuracy"]["shape"] == 0.0
    assert any("classifier's own accuracy" in n for n in written["notes"])


def test_a_task_filter_scores_the_samples_a_whole_run_gives_those_tasks(tmp_path):
    from vitron.evals.runner import EvalSettings, load_suite

    whole = load_suite(EvalSettings(limit=3 * LIMIT))
    picked = load_suite(EvalSettings(limit=3, tasks=["vqa", "region_caption"]))
    assert [s.task for s in picked] == ["vqa", "region_caption", "vqa"]
    reading = [s.id for s in whole if s.task in ("vqa", "region_caption")]
    assert [s.id for s in picked] == reading[:3]
    # without a limit: ten of each picked task
    assert len(load_suite(EvalSettings(tasks=["grounding"]))) == 10

    out = tmp_path / "out"
    code = main(["eval", "--tasks", "vqa", "--limit", "2", "--workspace", str(tmp_path / "ws"),
                 "--device", "cpu", "--no-progress", "--max-new-tokens", "8", "--out", str(out)])  # fmt: skip
    assert code == 0
    written = json.loads((out / "eval-shapes-test.json").read_text())
    assert set(written["runs"][0]["tasks"]) == {"vqa"} and written["samples"] == 2
    assert "samples: 2 of tasks vqa;" in (out / "eval-shapes-test.md").read_text()


def test_a_task_filter_names_what_it_cannot_pick(tmp_path, capsys):
    base = ["eval", "--workspace", str(tmp_path / "ws"), "--no-progress", "--out", str(tmp_path)]
    assert main([*base, "--tasks", "vqa,dancing"]) == 2
    assert "unknown shapes tasks ['dancing']" in capsys.readouterr().err
    assert main([*base, "--suite", "davis", "--data", str(tmp_path), "--tasks", "vqa"]) == 2
    assert "--tasks picks shapes-world tasks" in capsys.readouterr().err


def test_vitron_eval_can_label_media_as_a_users_files_are(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["eval", "--profile", "tiny", "--limit", "2", "--tasks", "grounding",
                 "--media-labels", "names", "--workspace", str(tmp_path / "ws"), "--device", "cpu",
                 "--no-progress", "--max-new-tokens", "8", "--threads", "1", "--out", str(out)])  # fmt: skip
    assert code == 0
    assert "- media labelled with file-like names (--media-labels names)" in capsys.readouterr().out
    written = json.loads((out / "eval-shapes-test.json").read_text())
    assert written["samples"] == 2 and {r["task"] for r in written["records"]} == {"grounding"}
