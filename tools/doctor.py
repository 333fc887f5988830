"""``vitron doctor``: check a workspace, and repair what can be repaired without losing anything.

Checks: every stored file behind a handle is readable and its content still hashes to its handle
(videos: decodable, with the frame count their record says), every handle has a readable record
(``.meta.json``) of the right kind, no temporary file is left by a process that is gone, every
directory is a well-formed thread directory, and the conversations database passes SQLite's
integrity check.

Repairs (``--repair``), each safe: stale temporary files are deleted; a record that is missing or
damaged is rebuilt from its (verified) file; a record without a file is deleted; a damaged file is
moved, with its record, to ``<root>/.damaged/`` (so its handle reports "not in this conversation"
instead of failing half-way, and nothing is deleted). Unknown files and a damaged database are only
reported.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from safetensors.torch import load_file

from vitron.tools.handles import HANDLE_PATTERN, MEDIA_KINDS
from vitron.tools.media import MediaLimits, iter_video_frames, probe_video
from vitron.tools.workspace import (
    EXTENSIONS,
    TEMP_DIR,
    MediaInfo,
    boxes_handle,
    embedding_handle,
    is_namespace_dir,
    pixels_handle,
    temp_file_is_stale,
)

DAMAGED_DIR = ".damaged"
DATABASE = "conversations.sqlite"
_DATABASE_FILES = {DATABASE, f"{DATABASE}-journal", f"{DATABASE}-wal", f"{DATABASE}-shm"}
_LEGACY_TEMP_SUFFIXES = (".tmp", ".upload")


@dataclass
class Finding:
    """One problem: where (relative to the root), what, and what ``--repair`` did about it."""

    path: str
    problem: str
    repaired: str | None = None

    def line(self) -> str:
        done = f" -> repaired: {self.repaired}" if self.repaired else ""
        return f"{self.path}: {self.problem}{done}"


@dataclass
class Report:
    root: Path
    threads: int = 0
    handles: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def remaining(self) -> list[Finding]:
        return [f for f in self.findings if f.repaired is None]

    def text(self) -> str:
        lines = [f"workspace {self.root}: {self.handles} handles in {self.threads} threads checked"]
        lines += [f"  {f.line()}" for f in self.findings]
        if not self.findings:
            lines.append("  no problems found")
        elif self.remaining:
            hint = "" if any(f.repaired for f in self.findings) else "; --repair fixes what it can"
            lines.append(f"  {len(self.remaining)} problem(s) remain{hint}")
        else:
            lines.append("  every problem was repaired")
        return "\n".join(lines)


def check_workspace(
    root: str | Path, *, repair: bool = False, limits: MediaLimits | None = None
) -> Report:
    """Check (and with ``repair`` fix) the workspace at ``root``; see the module doc."""
    root = Path(root).expanduser().resolve()
    report = Report(root)
    if not root.is_dir():
        report.findings.append(Finding(str(root), "is not a directory"))
        return report
    limits = limits or MediaLimits()
    for entry in sorted(root.iterdir()):
        if entry.name == TEMP_DIR and entry.is_dir():
            _check_temp_dir(entry, root, report, repair)
        elif entry.name == DAMAGED_DIR or entry.name in _DATABASE_FILES:
            continue
        elif entry.is_dir() and is_namespace_dir(entry.name):
            report.threads += 1
            _check_thread(entry, root, report, repair, limits)
        else:
            report.findings.append(Finding(entry.name, "is not a thread directory of a workspace"))
    database = root / DATABASE
    if database.is_file():
        _check_database(database, report)
    return report


def _rel(path: Path, root: Path) -> str:
    return str(path.relative_to(root))


def _check_temp_dir(folder: Path, root: Path, report: Report, repair: bool) -> None:
    for path in sorted(folder.iterdir()):
        if path.is_file() and temp_file_is_stale(path):
            finding = Finding(_rel(path, root), "temporary file left by a process that stopped")
            if repair:
                path.unlink(missing_ok=True)
                finding.repaired = "deleted"
            report.findings.append(finding)


def _check_thread(
    folder: Path, root: Path, report: Report, repair: bool, limits: MediaLimits
) -> None:
    for kind_dir in sorted(folder.iterdir()):
        if not (kind_dir.is_dir() and kind_dir.name in MEDIA_KINDS):
            report.findings.append(
                Finding(_rel(kind_dir, root), "is not a media folder (img, vid, mask, emb, box)")
            )
            continue
        _check_kind(kind_dir, root, report, repair, limits)


def _check_kind(
    folder: Path, root: Path, report: Report, repair: bool, limits: MediaLimits
) -> None:
    kind = folder.name
    data_files: dict[str, Path] = {}
    meta_files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        base, _, ext = path.name.partition(".")
        known = path.is_file() and HANDLE_PATTERN.fullmatch(base) and base.startswith(kind + "_")
        if known and ext == EXTENSIONS[kind]:
            data_files[base] = path
        elif known and ext == "meta.json":
            meta_files[base] = path
        elif path.is_file() and path.name.endswith(_LEGACY_TEMP_SUFFIXES):
            finding = Finding(_rel(path, root), "temporary file left by a process that stopped")
            if repair:
                path.unlink(missing_ok=True)
                finding.repaired = "deleted"
            report.findings.append(finding)
        else:
            report.findings.append(Finding(_rel(path, root), "is not a stored handle or record"))

    for base, meta_path in meta_files.items():
        if base not in data_files:
            finding = Finding(_rel(meta_path, root), "record without its file")
            if repair:
                meta_path.unlink(missing_ok=True)
                finding.repaired = "deleted the record"
            report.findings.append(finding)

    for base, path in data_files.items():
        report.handles += 1
        try:
            facts = _verify(kind, base, path, limits)
        except Exception as exc:  # noqa: BLE001 - any failure to read is the finding
            finding = Finding(_rel(path, root), f"damaged: {_reason(exc, path)}")
            if repair:
                _quarantine(path, meta_files.get(base), root)
                finding.repaired = f"moved to {DAMAGED_DIR}/"
            report.findings.append(finding)
            continue
        _check_record(kind, base, meta_files.get(base), folder, facts, root, report, repair)


def _check_record(
    kind: str,
    base: str,
    meta_path: Path | None,
    folder: Path,
    facts: dict,
    root: Path,
    report: Report,
    repair: bool,
) -> None:
    problem = None
    if meta_path is None:
        problem = "has no record (.meta.json)"
    else:
        try:
            data = json.loads(meta_path.read_bytes())
            MediaInfo(handle=base, **data)
            if data.get("kind") != kind:
                problem = f"its record says kind {data.get('kind')!r}"
        except (OSError, ValueError, TypeError) as exc:
            problem = f"its record is damaged ({type(exc).__name__})"
    if problem is None:
        return
    finding = Finding(_rel(folder / f"{base}.{EXTENSIONS[kind]}", root), problem)
    if repair:
        meta = MediaInfo(handle=base, kind=kind, source="recovered", **facts)  # type: ignore[arg-type]
        target = folder / f"{base}.meta.json"
        staging = target.with_name(target.name + ".repair")
        staging.write_text(json.dumps(meta.to_state()))
        staging.replace(target)
        finding.repaired = "record rebuilt from the file (source 'recovered')"
    report.findings.append(finding)


def _verify(kind: str, base: str, path: Path, limits: MediaLimits) -> dict:
    """Read the file fully and check it still is its handle; returns record facts from it."""
    if kind in ("img", "mask"):
        with Image.open(path) as image:
            limits.check_image_size(*image.size)
            image.load()
            array = np.asarray(image.convert("RGB" if kind == "img" else "L"))
        _same(pixels_handle(kind, array), base)  # type: ignore[arg-type]
        return {"width": array.shape[1], "height": array.shape[0]}
    if kind == "emb":
        tensor = load_file(str(path))["embedding"]
        _same(embedding_handle(tensor), base)
        return {"shape": list(tensor.shape)}
    if kind == "box":
        payload = path.read_bytes()
        json.loads(payload)
        _same(boxes_handle(payload), base)
        return {}
    probe = probe_video(path, name=base)
    frames = sum(1 for _ in iter_video_frames(path, limits, name=base))
    if probe.frames and probe.frames != frames:
        raise ValueError(f"the container says {probe.frames} frames, {frames} decode")
    return {"width": probe.width, "height": probe.height, "frames": frames, "fps": probe.fps}


def _same(actual: str, expected: str) -> None:
    if not actual.startswith(expected) and not expected.startswith(actual):
        raise ValueError("its content no longer matches its handle")


def _reason(exc: BaseException, path: Path) -> str:
    return (str(exc) or type(exc).__name__).replace(str(path), path.name)


def _quarantine(path: Path, meta_path: Path | None, root: Path) -> None:
    target = root / DAMAGED_DIR / path.parent.relative_to(root)
    target.mkdir(parents=True, exist_ok=True)
    for item in (path, meta_path):
        if item is not None and item.exists():
            shutil.move(str(item), str(target / item.name))


def _check_database(path: Path, report: Report) -> None:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
            result = connection.execute("PRAGMA integrity_check").fetchone()[0]
    except sqlite3.Error as exc:
        result = str(exc)
    if result != "ok":
        report.findings.append(
            Finding(path.name, f"the conversations database fails its integrity check: {result}")
        )
