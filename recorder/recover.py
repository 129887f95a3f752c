"""Recover takes left on disk without a manifest row (after a kill or a power cut).

``record_take`` writes a small hidden JSON beside each take while it records (labels,
device, player); a take that never got its row still has it, so ``recover`` can label it
fully. Without it the labels come from the file name (``<guitar>-<phrase>-tNNN-raw.wav``,
or ``...-raw-<role>.wav`` for one input of a take recorded with several).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from guitarlab.corpus.errors import GuitarlabError, RecorderError
from guitarlab.recorder.take import repair_header

TAKE_NAME_RE = re.compile(
    r"^(?P<guitar>[a-z0-9_]+)-(?P<phrase>[a-z0-9_]+)-t(?P<n>\d+)-raw(-(?P<role>[a-z0-9_]+))?$"
)


@dataclass
class RecoverReport:
    """Rows added, and files left alone with the reason."""

    added: list[dict] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _labels_for(path: Path) -> dict | None:
    from guitarlab.recorder.session import sidecar_path

    sidecar = sidecar_path(path)
    if sidecar.exists():
        try:
            return json.loads(sidecar.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            pass
    match = TAKE_NAME_RE.match(path.stem)
    if not match:
        return None
    take = f"{match['guitar']}-{match['phrase']}-t{match['n']}"
    return {
        "id": path.stem,
        "take": take,
        "guitar": match["guitar"],
        "phrase": match["phrase"],
        "pickup": "",
        "player": "",
        "device": "",
        "recorded_at": "",
        "role": match["role"] or "",  # one input of a take recorded with several
    }


def orphan_takes(corpus: str | os.PathLike) -> list[Path]:
    """WAV files under ``takes/`` that no manifest row points at."""
    from guitarlab.corpus.manifest import TAKES_DIR, load_manifest, reservations

    root = Path(corpus)
    # a take another process is recording right now is reserved, not orphaned
    known = set(load_manifest(root)["path"]) | {r.get("path", "") for r in reservations(root)}
    return sorted(
        path
        for path in (root / TAKES_DIR).glob("*.wav")
        if not path.name.startswith(".") and f"{TAKES_DIR}/{path.name}" not in known
    )


def recover_takes(corpus: str | os.PathLike) -> RecoverReport:
    """Repair the headers of orphan takes and add them to the manifest, marked ``partial``."""
    from guitarlab.corpus.manifest import commit_rows
    from guitarlab.recorder.session import sidecar_path, take_row

    root = Path(corpus)
    report = RecoverReport()
    for path in orphan_takes(root):
        labels = _labels_for(path)
        if labels is None:
            report.skipped.append(
                (
                    path.name,
                    "name is not <guitar>-<phrase>-tNNN-raw.wav; add it with 'guitarlab import'",
                )
            )
            continue
        try:
            frames = repair_header(path)
        except RecorderError as exc:
            report.skipped.append((path.name, str(exc)))
            continue
        if frames == 0:
            report.skipped.append((path.name, "no audio in the file; delete it"))
            continue
        note = "recovered by 'guitarlab recover' after an interrupted take"
        labels["notes"] = (labels.get("notes", "") + "; " + note).strip("; ")
        try:
            row = take_row(root, path, labels, status="partial")
            commit_rows(root, [(row, None)])  # the file is at its name already
        except GuitarlabError as exc:
            report.skipped.append((path.name, str(exc)))
            continue
        sidecar_path(path).unlink(missing_ok=True)
        report.added.append(row)
    return report
