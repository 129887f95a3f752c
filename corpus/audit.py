"""Auditing a corpus: every problem in the manifest, stray files, stale levels, summaries.

``check_manifest`` returns problems and lets the caller decide (the CLI exits 1);
``stray_files``/``clean_strays`` find the temp files a killed writer left;
``fix_levels`` re-measures; ``summary_tables`` shows balance and levels at a glance.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from guitarlab.corpus.atomic import write_text_atomic
from guitarlab.corpus.errors import ManifestError
from guitarlab.corpus.manifest import (
    HEADER_COLUMNS,
    ID_RE,
    KNOWN_PICKUPS,
    RAW_TONE,
    SCHEMA,
    SLUG_RE,
    TAKES_DIR,
    TONE_RE,
    TONES_DIR,
    load_manifest,
    manifest_lock,
    path_problem,
    pid_alive,
    reservations,
    update_manifest,
)
from guitarlab.corpus.parallel import resolve_jobs

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


CHECK_CACHE_NAME = ".guitarlab-check.json"
CHECK_CACHE_VERSION = 1
RACY_NS = 1_000_000_000  # a file written this recently may change again within its mtime tick


def check_manifest(
    root: str | os.PathLike,
    *,
    verify_sha256: bool = True,
    full: bool = False,
    jobs: int = 0,
    progress: bool = False,
    frame: pd.DataFrame | None = None,
) -> list[Problem]:
    """Every problem in a corpus, one per row and issue; an empty list means all is well.

    Like mirdata's ``validate()``, this reports and lets the caller decide what to do.
    What each file held when it was last verified (header, cut-off check, sha256) is
    remembered in ``.guitarlab-check.json`` with its size, mtime, inode and ctime, so a
    file whose stat is unchanged is not read again (checking 100,000 files costs their
    stat calls); ``full=True`` re-reads every file. The rows are compared with those
    facts on every check, so an edited row is always seen. ``jobs`` threads read the
    changed files (hashing and libsndfile release the GIL; processes from
    ``PROCESS_MIN_FILES`` files on), 0 for every core (``parallel.resolve_jobs``, as every
    stage's ``--jobs``); ``progress`` shows a bar on a terminal. ``frame``: the manifest,
    when the caller loaded it already.
    """
    jobs = resolve_jobs(jobs, error=ManifestError)
    frame = load_manifest(root) if frame is None else frame
    problems: list[Problem] = [Problem(str(rel), why) for rel, why in stray_files(root, frame)]
    id_list, path_list = frame["id"].tolist(), frame["path"].tolist()  # fast on str columns
    ids = set(id_list)
    for dup in sorted(frame["id"][frame["id"].duplicated()].unique()):
        problems.append(Problem(dup, "duplicate id; every row needs its own id"))
    bad = {(rid, column) for rid, column, _ in frame.attrs.get("bad_cells", [])}
    for rid, column, value in frame.attrs.get("bad_cells", []):
        problems.append(
            Problem(rid, f"{column} {value!r} is not a number; correct the cell in manifest.csv")
        )
    problem_of = {rel: path_problem(rel) for rel in dict.fromkeys(path_list)}
    facts = _file_facts(root, problem_of, verify_sha256, full, jobs, progress)
    path_of = dict(zip(id_list, path_list, strict=True))
    labels_ok = _labels_ok(frame)
    header_na = {column: frame[column].isna().to_numpy() for column in HEADER_COLUMNS}
    columns = ("id", "path", "tone", "source", "sha256", *HEADER_COLUMNS)
    values = zip(*(frame[c].tolist() for c in columns), strict=True)
    for index, (rid, rel, tone, source, sha, *header) in enumerate(values):
        if not labels_ok[index]:
            problems += [Problem(rid, message) for message in label_problems(frame.iloc[index])]
        for column in HEADER_COLUMNS:
            if header_na[column][index] and (rid, column) not in bad:
                problems.append(
                    Problem(
                        rid,
                        f"{column} is empty; run 'guitarlab manifest check --fix-levels' after re-importing",
                    )
                )
        if source and source not in ids:
            problems.append(Problem(rid, f"source {source!r} points at no row"))
        elif source and source in path_of:
            source_path = path_of[source]
            if not problem_of[source_path] and facts.get(source_path) is None:
                problems.append(Problem(rid, f"render whose source file {source_path} is missing"))
        if tone != RAW_TONE and tone and source == RAW_TONE:
            problems.append(Problem(rid, "source must be a row id, not 'raw'"))
        bad_path = problem_of[rel]
        if bad_path:
            problems.append(Problem(rid, bad_path))
            continue
        known = facts.get(rel)
        if known is None:
            problems.append(Problem(rid, f"missing file {rel}"))
            continue
        if isinstance(known, str):  # the header could not be read
            problems.append(Problem(rid, known))
            continue
        rate, channels, frames, file_sha, cut = known[4:]
        if cut:
            problems.append(Problem(rid, f"{rel}: {cut}"))
        for column, actual, listed in zip(
            HEADER_COLUMNS, (rate, channels, frames), header, strict=True
        ):
            if not pd.isna(listed) and int(listed) != int(actual):
                problems.append(
                    Problem(rid, f"header says {column}={actual} but the row says {listed}")
                )
        if verify_sha256 and sha and file_sha != sha:
            problems.append(
                Problem(rid, f"sha256 mismatch for {rel}: the file changed since it was added")
            )
        elif not sha:
            problems.append(Problem(rid, "sha256 is empty"))
    return problems


def _labels_ok(frame: pd.DataFrame) -> np.ndarray:
    """Rows whose labels :func:`label_problems` would pass, found column-wise (fast)."""

    def matches(column: str, pattern: re.Pattern) -> pd.Series:
        return frame[column].str.match(pattern.pattern).fillna(False).astype(bool)

    ok = (
        matches("guitar", SLUG_RE)
        & matches("phrase", SLUG_RE)
        & matches("take", ID_RE)
        & matches("tone", TONE_RE)
        & matches("id", ID_RE)
        & ((frame["pickup"] == "") | matches("pickup", SLUG_RE))
    )
    return ok.to_numpy()


def _file_facts(
    root: str | os.PathLike,
    paths: dict[str, str | None],
    verify_sha256: bool,
    full: bool,
    jobs: int,
    progress: bool,
) -> dict[str, list | str | None]:
    """Per usable path (``paths``: each with its :func:`path_problem`): None (missing),
    the header error, or ``[size, mtime_ns, inode,
    ctime_ns, rate, channels, frames, sha256, cut-off problem]``; read from the files
    whose stat changed since the cache (all of them with ``full``), the rest remembered."""
    import time

    cache_path = Path(root) / CHECK_CACHE_NAME
    cached = {} if full else _read_check_cache(cache_path)
    base = os.fspath(root)
    facts: dict[str, list | str | None] = {}
    stale: list[tuple[str, list[int]]] = []
    for rel, problem in paths.items():
        if problem:
            continue
        try:
            st = os.stat(os.path.join(base, rel))
        except OSError:
            facts[rel] = None
            continue
        key = [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]
        known = cached.get(rel)
        if known and known[:4] == key and (known[7] is not None or not verify_sha256):
            facts[rel] = known
        else:
            stale.append((rel, key))
    if stale:
        facts.update(_read_files(base, stale, verify_sha256, jobs, progress))
    now = time.time_ns()
    keep = {
        rel: known
        for rel, known in facts.items()
        if isinstance(known, list) and now - known[1] > RACY_NS
    }
    if keep != cached:  # a read-only corpus is checked all the same, just not remembered
        with contextlib.suppress(OSError):
            write_text_atomic(
                cache_path,
                json.dumps({"version": CHECK_CACHE_VERSION, "files": keep}, separators=(",", ":")),
            )
    return facts


def _read_check_cache(path: Path) -> dict[str, list]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != CHECK_CACHE_VERSION:
        return {}
    files = data.get("files")
    return files if isinstance(files, dict) else {}


PROCESS_MIN_FILES = 20_000  # below this, starting worker processes costs more than they win


def _read_files(
    base: str, stale: list[tuple[str, list[int]]], verify_sha256: bool, jobs: int, progress: bool
) -> dict[str, list | str]:
    """Read each file's header, cut-off check and sha256 (``audio.check_facts``).

    With ``jobs`` > 1: threads for a few files (sha256 and libsndfile release the GIL);
    processes from ``PROCESS_MIN_FILES`` on, where the per-file Python work on small
    files would hold one core.
    """
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
    from functools import partial
    from multiprocessing import get_context

    from tqdm import tqdm

    from guitarlab.corpus import audio

    processes = jobs > 1 and len(stale) >= PROCESS_MIN_FILES
    size = 200 if processes else 16
    chunks = [stale[at : at + size] for at in range(0, len(stale), size)]
    read = partial(audio.check_facts, base, sha=verify_sha256)
    pool = (
        ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"))
        if processes
        else ThreadPoolExecutor(max_workers=max(1, jobs))
    )
    found: dict[str, list | str] = {}
    with (
        tqdm(
            total=len(stale), desc="check", unit="file", disable=None if progress else True
        ) as bar,
        pool,
    ):
        for done in pool.map(read, chunks):
            found.update(done)
            bar.update(len(done))
    return found


TEMP_RE = re.compile(r"^\.(?P<stem>.+)\.(?P<pid>\d+)-[0-9a-f]+\.part(\.\w+)?$")


def stray_files(
    root: str | os.PathLike, frame: pd.DataFrame | None = None
) -> list[tuple[str, str]]:
    """Files in the corpus no row accounts for: ``(relative path, why)``.

    Temp files of interrupted writes (``.NAME.<pid>-<hex>.part.wav``, ``*.tmp``) whose
    process is gone, and audio under ``takes/``/``tones/`` that no
    row lists (and no live process is writing).
    """
    from guitarlab.corpus.audio import AUDIO_SUFFIXES

    root = Path(root)
    frame = load_manifest(root) if frame is None else frame
    listed = set(frame["path"].tolist())
    in_flight = {row.get("path", "") for row in reservations(root)}
    out = []
    for folder in (root, root / TAKES_DIR, root / TONES_DIR):
        if not folder.is_dir():
            continue
        prefix = "" if folder == root else f"{folder.name}/"
        with os.scandir(folder) as entries:  # no stat per file: 100,000 takes list fast
            names = sorted(entry.name for entry in entries if entry.is_file())
        for name in names:
            rel = prefix + name
            match = TEMP_RE.match(name)
            if match or (name.startswith(".") and (".part" in name or name.endswith(".tmp"))):
                if match and pid_alive(int(match["pid"])):
                    continue
                out.append(
                    (
                        rel,
                        "temp file of an interrupted write; 'guitarlab recover --clean' removes it",
                    )
                )
            elif folder != root and os.path.splitext(name)[1].lower() in AUDIO_SUFFIXES:
                if rel in listed or rel in in_flight:
                    continue
                fix = (
                    "'guitarlab recover' adds it"
                    if folder.name == TAKES_DIR
                    else "'guitarlab recover --clean' removes it"
                )
                out.append((rel, f"audio file no row lists; {fix}"))
    return out


def clean_strays(root: str | os.PathLike) -> list[str]:
    """Delete what :func:`stray_files` lists except unlisted takes (a recording is never
    deleted: ``recover`` adds it); unlisted renders go with their preset sidecar.

    Nothing is deleted unless the manifest is sound (:func:`load_manifest` validates it)
    and every row's ``path`` is usable: a row with an empty or damaged path may be the
    one that lists a file, which would otherwise look unlisted.
    """
    root = Path(root)
    removed = []
    with manifest_lock(root):
        frame = load_manifest(root)  # refuses a manifest that cannot be trusted
        paths = zip(frame["id"], frame["path"], strict=True)
        unusable = [(rid, why) for rid, rel in paths if (why := path_problem(rel))]
        if unusable:  # that row may be meant to list a file this would delete
            rid, why = unusable[0]
            raise ManifestError(
                f"{root / 'manifest.csv'}: row {rid or '<no id>'!r}: {why}; fix the rows "
                "'guitarlab manifest check' names before cleaning (nothing was removed)"
            )
        reservations(root, drop_stale=True)  # harmless (the next writer drops them) but tidy
        for rel, _ in stray_files(root, frame):
            path = root / rel
            if rel.startswith(f"{TAKES_DIR}/") and not path.name.startswith("."):
                continue
            path.unlink(missing_ok=True)
            if rel.startswith(f"{TONES_DIR}/") and not path.name.startswith("."):
                for sidecar in path.parent.glob(f"{path.stem}.*json"):
                    sidecar.unlink(missing_ok=True)
            removed.append(rel)
    return removed


def fix_levels(root: str | os.PathLike, *, target_rms_dbfs: float | None = None) -> pd.DataFrame:
    """Recompute ``peak_dbfs`` and ``rms_dbfs`` (and ``gain_db`` when a target is given)."""
    from guitarlab.corpus.audio import read_audio
    from guitarlab.corpus.levels import level_match_gain_db, peak_dbfs, rms_dbfs

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


# Extra columns writers fill with what they measured (take checks, dropouts), not labels.
RECORD_COLUMNS = (
    "checks",
    "dropouts",
    "stalls",
    "dropped_frames",
    "dropout_detail",
    # what reamp measured of the loop (recorder/reamp.py)
    "reamp_latency_samples",
    "reamp_drift_samples",
    "reamp_gain_db",
    "reamp_correlation",
)

# Schema columns that label files, shown by ``column_summary`` beside every extra column.
SUMMARY_LABEL_COLUMNS = ("pickup", "player", "role")


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
    extras = [c for c in frame.columns if c not in SCHEMA and c not in RECORD_COLUMNS]
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
