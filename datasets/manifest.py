"""The manifest: one row per audio file, the one contract between stages.

``manifest.csv`` sits at the corpus root. Every write happens under a file lock beside
it and replaces the file atomically (temp file, fsync, rename), so concurrent writers
never lose each other's rows and a crash never leaves half a manifest. Columns the
schema does not know are carried through untouched.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
from filelock import FileLock

from guitarlab.atomic import atomic_path
from guitarlab.errors import ManifestError

MANIFEST_NAME = "manifest.csv"
LOCK_NAME = "manifest.csv.lock"
TAKES_DIR = "takes"
TONES_DIR = "tones"
PRESETS_DIR = "presets"
RAW_TONE = "raw"

# name -> (dtype kind, required). Order is the order written to disk.
SCHEMA: dict[str, tuple[str, bool]] = {
    "id": ("str", True),
    "path": ("str", True),
    "guitar": ("str", True),
    "pickup": ("str", False),
    "phrase": ("str", True),
    "tone": ("str", True),
    "take": ("str", True),
    "source": ("str", False),
    "preset_hash": ("str", False),
    "sample_rate": ("int", True),
    "channels": ("int", True),
    "frames": ("int", True),
    "subtype": ("str", False),
    "peak_dbfs": ("float", False),
    "rms_dbfs": ("float", False),
    "gain_db": ("float", False),
    "sha256": ("str", True),
    "recorded_at": ("str", False),
    "device": ("str", False),
    "player": ("str", False),
    "notes": ("str", False),
    # beyond DESIGN.md: "" for a complete file, "partial" for a take cut short (Ctrl-C, kill)
    "status": ("str", False),
}
COLUMNS = list(SCHEMA)
REQUIRED = [name for name, (_, required) in SCHEMA.items() if required]
LABEL_COLUMNS = ("guitar", "pickup", "phrase", "tone")
LEVEL_COLUMNS = ("peak_dbfs", "rms_dbfs", "gain_db")
HEADER_COLUMNS = ("sample_rate", "channels", "frames")

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9_]*$")
TONE_RE = re.compile(r"^[a-z0-9][a-z0-9_]*(-[a-z0-9_]+)*$")
ID_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
KNOWN_PICKUPS = (
    "single_coil",
    "humbucker",
    "p90",
    "mini_humbucker",
    "filtertron",
    "active",
    "piezo",
    "lipstick",
    "gold_foil",
)
KNOWN_PHRASES = ("backing", "lead", "chords", "riff", "scale", "arpeggio", "improv", "song")

CORPUS_README = """This folder is a guitarlab corpus.

manifest.csv  one row per audio file: labels (guitar, pickup, phrase, tone, take),
              header (rate, channels, frames), levels and a sha256 checksum.
takes/        raw recorded takes (24-bit WAV), never modified after recording.
tones/        renders of the raw takes through tone presets (guitarlab augment).
presets/      your own tone presets; they add to or override the built-in ones.

Check it with:    guitarlab manifest check .
Summarize it:     guitarlab manifest summary .
Edit labels in a spreadsheet if you must, then run the check again.
"""


def slugify(text: str) -> str:
    """Lower-case, filename-safe label: ``"Les Paul"`` -> ``"les_paul"``."""
    slug = re.sub(r"[^a-z0-9]+", "_", str(text).strip().lower()).strip("_")
    if not slug:
        raise ManifestError(f"label {text!r} has no letters or digits; use e.g. 'les_paul'")
    return slug


def take_key(guitar: str, phrase: str, number: int) -> str:
    """The ``take`` column: ``stratocaster-backing-t001``, unique in a corpus."""
    return f"{guitar}-{phrase}-t{int(number):03d}"


def row_id(take: str, tone: str, suffix: str = "") -> str:
    """The ``id`` column: ``stratocaster-backing-t001-crunch`` (plus an optional suffix)."""
    return f"{take}-{tone}" + (f"-{suffix}" if suffix else "")


def next_take_number(manifest: pd.DataFrame, guitar: str, phrase: str) -> int:
    """1 + the highest take number recorded so far for this guitar and phrase."""
    if manifest.empty:
        return 1
    prefix = f"{guitar}-{phrase}-t"
    numbers = [
        int(t[len(prefix) :])
        for t in manifest["take"]
        if t.startswith(prefix) and t[len(prefix) :].isdigit()
    ]
    return max(numbers, default=0) + 1


# ---------------------------------------------------------------- paths


def manifest_path(root: str | os.PathLike) -> Path:
    return Path(root) / MANIFEST_NAME


def relative_audio_path(root: str | os.PathLike, path: str | os.PathLike) -> str:
    """``path`` as the manifest stores it: POSIX, relative to the corpus root, inside it."""
    root_abs = Path(root).resolve()
    full = Path(path).resolve()
    try:
        return full.relative_to(root_abs).as_posix()
    except ValueError:
        raise ManifestError(
            f"{path}: outside the corpus {root}; copy it in with 'guitarlab import'"
        ) from None


def path_problem(rel: str) -> str | None:
    """Why a manifest ``path`` value is unacceptable, or None."""
    if not rel:
        return "path is empty"
    if rel.startswith("/") or re.match(r"^[A-Za-z]:[\\/]", rel) or "\\" in rel:
        return f"path {rel!r} is absolute or not POSIX; store it relative to the corpus root"
    if ".." in PurePosixPath(rel).parts:
        return f"path {rel!r} points outside the corpus"
    return None


def resolve_audio_path(root: str | os.PathLike, rel: str) -> Path:
    """Absolute path of a manifest ``path``; refuses absolute paths and ``../``."""
    problem = path_problem(rel)
    if problem:
        raise ManifestError(problem)
    return Path(root) / rel


# ---------------------------------------------------------------- load / save


def empty_manifest() -> pd.DataFrame:
    return _typed(pd.DataFrame({name: [] for name in COLUMNS}))


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Known columns in schema order with their types, extras after them as text."""
    frame = frame.copy()
    for name, (kind, _) in SCHEMA.items():
        if name not in frame:
            frame[name] = "" if kind == "str" else np.nan
        if kind == "str":
            frame[name] = _as_text(frame[name])
        elif kind == "int":
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("Int64")
        else:
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(float)
    extras = [c for c in frame.columns if c not in SCHEMA]
    for name in extras:
        frame[name] = _as_text(frame[name])
    return frame[COLUMNS + extras].reset_index(drop=True)


def _as_text(column: pd.Series) -> pd.Series:
    """Text with "" for missing values, whatever the column held (numbers included)."""
    return column.astype(object).where(column.notna(), "").astype(str)


def load_manifest(root: str | os.PathLike) -> pd.DataFrame:
    """The corpus manifest as a DataFrame (schema columns typed, extras kept as text)."""
    path = manifest_path(root)
    if not Path(root).is_dir():
        raise ManifestError(
            f"{root}: no such corpus folder; create one with 'guitarlab corpus init {root}'"
        )
    if not path.exists():
        raise ManifestError(
            f"{path}: no manifest; create the corpus with 'guitarlab corpus init {root}'"
        )
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[])
    except pd.errors.EmptyDataError:
        return empty_manifest()
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ManifestError(
            f"{path}: not a readable CSV ({str(exc).splitlines()[0]}); restore it from a backup"
        ) from exc
    return _typed(frame)


def _write_atomic(path: Path, frame: pd.DataFrame) -> None:
    with atomic_path(path, suffix=".tmp") as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g", encoding="utf-8")


@contextlib.contextmanager
def manifest_lock(root: str | os.PathLike, *, timeout_s: float = 60.0) -> Iterator[None]:
    """Hold the corpus's manifest lock (a ``filelock`` file beside ``manifest.csv``)."""
    lock = FileLock(str(Path(root) / LOCK_NAME), timeout=timeout_s)
    try:
        with lock:
            yield
    except TimeoutError as exc:  # filelock.Timeout subclasses TimeoutError
        raise ManifestError(
            f"{Path(root) / LOCK_NAME}: another guitarlab process holds the manifest lock; wait for it or remove a stale lock file"
        ) from exc


def update_manifest(
    root: str | os.PathLike, change: Callable[[pd.DataFrame], pd.DataFrame]
) -> pd.DataFrame:
    """Load, ``change``, validate and save the manifest as one locked, atomic step."""
    with manifest_lock(root):
        frame = load_manifest(root)
        updated = _typed(change(frame))
        duplicates = updated["id"][updated["id"].duplicated()].unique()
        if len(duplicates):
            raise ManifestError(f"duplicate id {duplicates[0]!r}; every row needs its own id")
        _write_atomic(manifest_path(root), updated)
        return updated


def append_rows(root: str | os.PathLike, rows: Iterable[dict]) -> pd.DataFrame:
    """Add rows to the manifest, refusing incomplete rows and ids already present."""
    rows = [dict(row) for row in rows]
    for row in rows:
        missing = [
            name for name in REQUIRED if str(row.get(name, "")).strip() in ("", "nan", "None")
        ]
        if missing:
            raise ManifestError(
                f"row {row.get('id', '?')!r}: missing required field(s) {', '.join(missing)}"
            )

    def add(frame: pd.DataFrame) -> pd.DataFrame:
        clash = set(frame["id"]).intersection(row["id"] for row in rows)
        if clash:
            raise ManifestError(
                f"id {sorted(clash)[0]!r} is already in the manifest; pick another take number or tone"
            )
        return pd.concat([frame, pd.DataFrame(rows)], ignore_index=True) if rows else frame

    return update_manifest(root, add)


def init_corpus(root: str | os.PathLike) -> Path:
    """Create an empty corpus: manifest, ``takes/``, ``tones/``, ``presets/`` and a README.txt."""
    root = Path(root)
    if manifest_path(root).exists():
        return root
    if root.exists() and not root.is_dir():
        raise ManifestError(f"{root}: exists and is not a folder; choose another corpus path")
    for sub in (TAKES_DIR, TONES_DIR, PRESETS_DIR):
        (root / sub).mkdir(parents=True, exist_ok=True)
    readme = root / "README.txt"
    if not readme.exists():
        readme.write_text(CORPUS_README, encoding="utf-8")
    with manifest_lock(root):
        if not manifest_path(root).exists():
            _write_atomic(manifest_path(root), empty_manifest())
    return root


def open_corpus(root: str | os.PathLike, *, create: bool = False) -> pd.DataFrame:
    """The manifest of an existing corpus (or a new, empty one with ``create=True``)."""
    if create:
        init_corpus(root)
    return load_manifest(root)


# ---------------------------------------------------------------- check


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one manifest row."""

    id: str
    message: str

    def __str__(self) -> str:
        return f"{self.id or '<no id>'}: {self.message}"


def label_problems(row: pd.Series) -> list[str]:
    """Empty or malformed labels of one row."""
    problems = []
    for column in ("guitar", "phrase", "take"):
        value = row[column]
        pattern = ID_RE if column == "take" else SLUG_RE
        if not value:
            problems.append(f"{column} is empty; set it (lower-case slug such as 'les_paul')")
        elif not pattern.match(value):
            problems.append(
                f"{column} {value!r} is malformed; use a lower-case slug such as 'les_paul'"
            )
    if not row["tone"]:
        problems.append("tone is empty; use 'raw' for a recorded take or the preset name")
    elif not TONE_RE.match(row["tone"]):
        problems.append(f"tone {row['tone']!r} is malformed; use 'raw' or a preset name")
    if row["pickup"] and not SLUG_RE.match(row["pickup"]):
        problems.append(
            f"pickup {row['pickup']!r} is malformed; use e.g. {', '.join(KNOWN_PICKUPS[:3])}"
        )
    if not row["id"]:
        problems.append("id is empty")
    elif not ID_RE.match(row["id"]):
        problems.append(
            f"id {row['id']!r} is not filename-safe; use lower-case letters, digits, '-', '_'"
        )
    return problems


def check_manifest(root: str | os.PathLike, *, verify_sha256: bool = True) -> list[Problem]:
    """Every problem in a corpus, one per row and issue; an empty list means all is well.

    Like mirdata's ``validate()``, this reports and lets the caller decide what to do.
    """
    from guitarlab.datasets.audio import audio_info, sha256_file

    frame = load_manifest(root)
    problems: list[Problem] = []
    ids = set(frame["id"])
    for dup in sorted(frame["id"][frame["id"].duplicated()].unique()):
        problems.append(Problem(dup, "duplicate id; every row needs its own id"))
    by_id = {row["id"]: row for _, row in frame.iterrows()}
    for _, row in frame.iterrows():
        rid = row["id"]
        problems += [Problem(rid, message) for message in label_problems(row)]
        for column in HEADER_COLUMNS:
            if pd.isna(row[column]):
                problems.append(
                    Problem(
                        rid,
                        f"{column} is empty; run 'guitarlab manifest check --fix-levels' after re-importing",
                    )
                )
        source = row["source"]
        if source and source not in ids:
            problems.append(Problem(rid, f"source {source!r} points at no row"))
        elif source and source in by_id:
            source_path = by_id[source]["path"]
            if not path_problem(source_path) and not (Path(root) / source_path).exists():
                problems.append(Problem(rid, f"render whose source file {source_path} is missing"))
        if row["tone"] != RAW_TONE and row["tone"] and row["source"] == RAW_TONE:
            problems.append(Problem(rid, "source must be a row id, not 'raw'"))
        bad_path = path_problem(row["path"])
        if bad_path:
            problems.append(Problem(rid, bad_path))
            continue
        full = Path(root) / row["path"]
        if not full.exists():
            problems.append(Problem(rid, f"missing file {row['path']}"))
            continue
        try:
            info = audio_info(full)
        except Exception as exc:  # report, never crash the check
            problems.append(Problem(rid, str(exc)))
            continue
        for column, actual in zip(
            HEADER_COLUMNS, (info.samplerate, info.channels, info.frames), strict=True
        ):
            if not pd.isna(row[column]) and int(row[column]) != int(actual):
                problems.append(
                    Problem(rid, f"header says {column}={actual} but the row says {row[column]}")
                )
        if verify_sha256 and row["sha256"] and sha256_file(full) != row["sha256"]:
            problems.append(
                Problem(
                    rid, f"sha256 mismatch for {row['path']}: the file changed since it was added"
                )
            )
        elif not row["sha256"]:
            problems.append(Problem(rid, "sha256 is empty"))
    return problems


def fix_levels(root: str | os.PathLike, *, target_rms_dbfs: float | None = None) -> pd.DataFrame:
    """Recompute ``peak_dbfs`` and ``rms_dbfs`` (and ``gain_db`` when a target is given)."""
    from guitarlab.datasets.audio import read_audio
    from guitarlab.recorder.levels import level_match_gain_db, peak_dbfs, rms_dbfs

    def refresh(frame: pd.DataFrame) -> pd.DataFrame:
        for index, row in frame.iterrows():
            if path_problem(row["path"]) or not (Path(root) / row["path"]).exists():
                continue
            audio, _ = read_audio(Path(root) / row["path"])
            frame.loc[index, "peak_dbfs"] = round(peak_dbfs(audio), 3)
            frame.loc[index, "rms_dbfs"] = round(rms_dbfs(audio), 3)
            if target_rms_dbfs is not None:
                frame.loc[index, "gain_db"] = round(
                    level_match_gain_db(audio, target_rms_dbfs=target_rms_dbfs), 3
                )
        return frame

    return update_manifest(root, refresh)


# ---------------------------------------------------------------- summary


# Schema columns that label files, shown by ``column_summary`` beside every extra column.
SUMMARY_LABEL_COLUMNS = ("pickup", "player")


def column_summary(frame: pd.DataFrame, *, max_values: int = 12) -> pd.DataFrame:
    """One row per label column beyond guitar/phrase/tone: its values and file counts.

    Covers ``pickup``, ``player`` and every extra column (``string``, ``fret``,
    ``session``, ...) that has a value in some row: the columns a dataset can use as
    ``--label``, ``--group-by`` or in ``--test-where``. Numbers sort as numbers.

    Returns
    -------
    DataFrame
        ``column``, ``values`` (distinct), ``files`` (rows with a value), ``counts``
        (``"value (files), ..."``, the first ``max_values``).
    """
    extras = [c for c in frame.columns if c not in SCHEMA]
    out = []
    for column in [*SUMMARY_LABEL_COLUMNS, *extras]:
        if column not in frame.columns:
            continue
        text = frame[column].astype(str).str.strip()
        text = text[(text != "") & (text != "nan")]
        if text.empty:
            continue
        counts = text.value_counts()
        numbers = pd.to_numeric(pd.Series(counts.index), errors="coerce")
        if numbers.notna().all():
            order = [counts.index[i] for i in np.argsort(numbers.to_numpy(), kind="stable")]
        else:
            order = sorted(counts.index)
        shown = ", ".join(f"{value} ({counts[value]})" for value in order[:max_values])
        if len(order) > max_values:
            shown += f", ... {len(order) - max_values} more"
        out.append(
            {"column": column, "values": len(order), "files": int(text.size), "counts": shown}
        )
    return pd.DataFrame(out, columns=["column", "values", "files", "counts"])


def summary_tables(
    frame: pd.DataFrame, *, takes: bool = False, by: Iterable[str] = ()
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(files and minutes per guitar x phrase x tone [x by] [x take], levels per guitar)``."""
    by = [c for c in by if c not in ("guitar", "phrase", "tone")]
    missing = [c for c in by if c not in frame.columns]
    if missing:
        raise ManifestError(
            f"no column {missing[0]!r} in the manifest; known: {', '.join(map(str, frame.columns))}"
        )
    keys = ["guitar", "phrase", "tone", *by] + (["take"] if takes else [])
    if frame.empty:
        return pd.DataFrame(columns=keys + ["files", "minutes"]), pd.DataFrame(
            columns=["guitar", "takes", "mean_rms_dbfs", "mean_peak_dbfs", "rms_spread_db"]
        )
    work = frame.assign(
        minutes=frame["frames"].astype(float) / frame["sample_rate"].astype(float) / 60.0
    )
    counts = (
        work.groupby(keys, sort=True)
        .agg(files=("id", "size"), minutes=("minutes", "sum"))
        .reset_index()
    )
    counts["minutes"] = counts["minutes"].round(3)
    raw = work[work["tone"] == RAW_TONE]
    raw = raw if not raw.empty else work
    levels = (
        raw.groupby("guitar", sort=True)
        .agg(
            takes=("take", "nunique"),
            mean_rms_dbfs=("rms_dbfs", "mean"),
            mean_peak_dbfs=("peak_dbfs", "mean"),
            rms_spread_db=("rms_dbfs", lambda s: float(s.max() - s.min()) if len(s) else np.nan),
        )
        .reset_index()
        .round(2)
    )
    return counts, levels
