"""Import an existing folder of WAV/FLAC/AIFF files into a corpus.

Labels come from file names (the seed's ``ST_lead_crunch.wav`` out of the box, or a
``{guitar}_{phrase}_{tone}`` template) or from fixed values for a whole folder. Files
are matched by sha256, so importing the same folder twice adds nothing.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from tqdm import tqdm

from guitarlab.atomic import atomic_path
from guitarlab.datasets.audio import AUDIO_SUFFIXES, file_columns, sha256_file
from guitarlab.datasets.manifest import (
    RAW_TONE,
    TAKES_DIR,
    TONES_DIR,
    append_rows,
    init_corpus,
    load_manifest,
    next_take_number,
    relative_audio_path,
    row_id,
    slugify,
    take_key,
)
from guitarlab.errors import AudioFileError, ManifestError
from guitarlab.recorder.levels import DEFAULT_TARGET_RMS_DBFS

SEED_PATTERN = "seed"
SEED_GUITARS = {"st": ("stratocaster", "single_coil"), "lp": ("les_paul", "humbucker")}
PATTERN_FIELDS = ("guitar", "pickup", "phrase", "tone", "take", "player")


@dataclass
class ImportReport:
    """What an import did: ids added, files already present, files skipped and why."""

    added: list[str] = field(default_factory=list)
    already_present: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def pattern_regex(pattern: str) -> re.Pattern:
    """Compile a ``{guitar}_{phrase}_{tone}`` template into a regex over file stems."""
    names = re.findall(r"{(\w+)}", pattern)
    unknown = [n for n in names if n not in PATTERN_FIELDS]
    if unknown:
        raise ManifestError(
            f"pattern field {{{unknown[0]}}} is unknown; use {', '.join('{' + f + '}' for f in PATTERN_FIELDS)}"
        )
    if len(set(names)) != len(names):
        raise ManifestError(f"pattern {pattern!r} names a field twice")
    regex, position = "", 0
    for match in re.finditer(r"{(\w+)}", pattern):
        regex += re.escape(pattern[position : match.start()])
        regex += (
            rf"(?P<{match.group(1)}>\d+)"
            if match.group(1) == "take"
            else rf"(?P<{match.group(1)}>.+?)"
        )
        position = match.end()
    regex += re.escape(pattern[position:])
    return re.compile(f"^{regex}$", re.IGNORECASE)


def labels_from_name(stem: str, pattern: str = SEED_PATTERN) -> dict[str, str] | None:
    """Labels parsed from a file stem, or None when the name does not fit.

    Examples
    --------
    >>> labels_from_name("LP_lead_crunch")["guitar"]
    'les_paul'
    >>> labels_from_name("tele_riff_clean", "{guitar}_{phrase}_{tone}")["tone"]
    'clean'
    """
    if pattern == SEED_PATTERN:
        match = re.match(r"^(ST|LP)_([A-Za-z0-9]+)_([A-Za-z0-9]+)$", stem, re.IGNORECASE)
        if not match:
            return None
        guitar, pickup = SEED_GUITARS[match.group(1).lower()]
        return {
            "guitar": guitar,
            "pickup": pickup,
            "phrase": slugify(match.group(2)),
            "tone": slugify(match.group(3)),
        }
    match = pattern_regex(pattern).match(stem)
    if not match:
        return None
    return {k: (v if k == "take" else slugify(v)) for k, v in match.groupdict().items()}


def _copy_atomic(src: Path, dest: Path) -> None:
    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)


def import_folder(
    src: str | os.PathLike,
    corpus: str | os.PathLike,
    *,
    pattern: str = SEED_PATTERN,
    labels: dict[str, str] | None = None,
    player: str = "",
    progress: bool = True,
) -> ImportReport:
    """Copy every audio file under ``src`` into ``corpus`` and add its manifest row.

    ``labels`` (guitar, pickup, phrase, tone) override or complete what the names give.
    """
    src = Path(src)
    if not src.is_dir():
        raise ManifestError(
            f"{src}: no such folder; give the folder that holds your WAV/FLAC/AIFF files"
        )
    fixed = {k: slugify(v) for k, v in (labels or {}).items() if v}
    if pattern != SEED_PATTERN:
        pattern_regex(pattern)  # fail early on a bad template
    init_corpus(corpus)
    manifest = load_manifest(corpus)
    known_sha = set(manifest["sha256"])
    report = ImportReport()
    files = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise ManifestError(f"{src}: no .wav, .flac or .aiff files found")

    planned: list[tuple[Path, dict[str, str], str]] = []
    for path in files:
        parsed = labels_from_name(path.stem, pattern) or {}
        if not parsed and not {"guitar", "phrase"} <= set(fixed):
            report.skipped.append(
                (
                    str(path),
                    f"name does not fit the pattern {pattern!r}; rename it or pass --pattern/--guitar/--phrase",
                )
            )
            continue
        found = {**parsed, **fixed}
        found.setdefault("tone", RAW_TONE)
        missing = [k for k in ("guitar", "phrase") if not found.get(k)]
        if missing:
            report.skipped.append((str(path), f"no {missing[0]} label; pass --{missing[0]}"))
            continue
        try:
            digest = sha256_file(path)
        except OSError as exc:
            report.skipped.append((str(path), f"cannot read ({exc.strerror})"))
            continue
        if digest in known_sha:
            report.already_present.append(str(path))
            continue
        known_sha.add(digest)
        planned.append((path, found, digest))

    # Files of one guitar and phrase (and take number, if named) are renders of one take.
    take_of: dict[tuple[str, str, str], str] = {}
    taken_numbers: dict[tuple[str, str], int] = {}
    for _, found, _ in planned:
        key = (found["guitar"], found["phrase"], found.get("take", ""))
        if key in take_of:
            continue
        if found.get("take"):
            take_of[key] = take_key(found["guitar"], found["phrase"], int(found["take"]))
        else:
            pair = key[:2]
            number = taken_numbers.get(pair) or next_take_number(manifest, *pair)
            taken_numbers[pair] = number + 1
            take_of[key] = take_key(*pair, number)

    rows: list[dict] = []
    raw_of_take = {
        t: i
        for t, i in zip(manifest["take"], manifest["id"], strict=True)
        if i.endswith(f"-{RAW_TONE}")
    }
    for _path, found, _ in planned:
        take = take_of[(found["guitar"], found["phrase"], found.get("take", ""))]
        if found["tone"] == RAW_TONE:
            raw_of_take[take] = row_id(take, RAW_TONE)
    existing_ids = set(manifest["id"])
    for path, found, _ in tqdm(planned, desc="import", unit="file", disable=not progress):
        take = take_of[(found["guitar"], found["phrase"], found.get("take", ""))]
        tone = found["tone"]
        rid = row_id(take, tone)
        if rid in existing_ids:
            report.skipped.append(
                (
                    str(path),
                    f"id {rid} is already in the corpus with other audio; import it with another --pattern or take",
                )
            )
            continue
        dest = (
            Path(corpus)
            / (TAKES_DIR if tone == RAW_TONE else TONES_DIR)
            / f"{rid}{path.suffix.lower()}"
        )
        try:
            columns = file_columns(path)
        except AudioFileError as exc:
            report.skipped.append((str(path), str(exc).split(": ", 1)[-1]))
            continue
        _copy_atomic(path, dest)
        existing_ids.add(rid)
        rows.append(
            {
                "id": rid,
                "path": relative_audio_path(corpus, dest),
                "guitar": found["guitar"],
                "pickup": found.get("pickup", ""),
                "phrase": found["phrase"],
                "tone": tone,
                "take": take,
                "source": raw_of_take.get(take, "") if tone != RAW_TONE else "",
                **columns,
                "gain_db": round(DEFAULT_TARGET_RMS_DBFS - columns["rms_dbfs"], 3)
                if columns["rms_dbfs"] > -200
                else 0.0,
                "recorded_at": datetime.fromtimestamp(
                    path.stat().st_mtime, tz=timezone.utc
                ).isoformat(timespec="seconds"),
                "device": "import",
                "player": found.get("player", "") or player,
                "notes": f"imported from {path.name}",
            }
        )
        report.added.append(rid)
    for row in rows:  # a raw file that was skipped leaves its renders without a source
        if row["source"] not in existing_ids:
            row["source"] = ""
    if rows:
        append_rows(corpus, rows)
    return report
