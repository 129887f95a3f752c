"""The manifest: one row per audio file, the one contract between stages.

``manifest.csv`` sits at the corpus root. Every write happens under a file lock beside
it, so concurrent writers never lose each other's rows. New rows are appended
(journaled and fsynced, ``guitarlab.corpus.appends``: a commit costs what it adds);
edits replace the file atomically (temp file, fsync, rename). A crash never leaves half
a manifest: the next writer completes or drops a cut-off append. Columns the schema
does not know are carried through untouched.

The schema, the lock, reservations and the atomic commit stay in this one module because
they are one protocol: a writer reads one file to know how a row lands safely (checks
and summaries are in ``guitarlab.corpus.audit``).
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import hashlib
import io
import json
import os
import re
import socket
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from filelock import FileLock

from guitarlab.corpus.atomic import atomic_path, temp_name
from guitarlab.corpus.errors import DISK_FULL_ERRNOS, ManifestConflict, ManifestError

if TYPE_CHECKING:  # appends imports this module: at run time it is imported where used
    from guitarlab.corpus.appends import PathIndex

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
    # "" for a complete file, "partial" for a take cut short (Ctrl-C, kill)
    "status": ("str", False),
    # which input of a take recorded with several at once ("di", "mic"); "" for a take of
    # one input. Renders and reamps carry the role of the file they came from
    "role": ("str", False),
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
LICENSE       (optional, yours to add) the corpus's licence: its first line, e.g.
              CC-BY-4.0, goes into the data card 'guitarlab export' writes.

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


def manifest_row(
    *,
    id: str,
    path: str,
    guitar: str,
    phrase: str,
    take: str,
    columns: dict,
    tone: str = RAW_TONE,
    pickup: str = "",
    source: str = "",
    preset_hash: str = "",
    target_rms_dbfs: float | None = None,
    recorded_at: str | None = None,
    device: str = "",
    player: str = "",
    notes: str = "",
    **extra,
) -> dict:
    """One manifest row: the one builder every writer (recorder, synth, augment, import) uses.

    ``columns`` are the file's columns as read from it (``corpus.audio.file_columns``:
    header, levels, sha256); ``gain_db`` follows from its ``rms_dbfs`` by the one rule
    (:func:`~guitarlab.corpus.levels.gain_to_target_db`, the default target unless
    ``target_rms_dbfs`` is given). ``recorded_at`` defaults to now (UTC); ``extra`` are
    kept as extra columns.

    Examples
    --------
    >>> row = manifest_row(id="strat-lead-t001-raw", path="takes/strat-lead-t001-raw.wav",
    ...                    guitar="strat", phrase="lead", take="strat-lead-t001",
    ...                    columns={"rms_dbfs": -26.0}, recorded_at="2026-01-01T00:00:00")
    >>> row["tone"], row["gain_db"], row["source"]
    ('raw', 6.0, '')
    """
    from guitarlab.corpus.levels import DEFAULT_TARGET_RMS_DBFS, gain_to_target_db

    if recorded_at is None:
        from datetime import datetime, timezone

        recorded_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    target = DEFAULT_TARGET_RMS_DBFS if target_rms_dbfs is None else float(target_rms_dbfs)
    return {
        "id": id,
        "path": path,
        "guitar": guitar,
        "pickup": pickup,
        "phrase": phrase,
        "tone": tone,
        "take": take,
        "source": source,
        "preset_hash": preset_hash,
        **columns,
        "gain_db": gain_to_target_db(columns["rms_dbfs"], target_rms_dbfs=target),
        "recorded_at": recorded_at,
        "device": device,
        "player": player,
        "notes": notes,
        **extra,
    }


def split_take(take: str) -> tuple[str, int] | None:
    """``(prefix, number)`` of a ``take`` cell that ends in ``-t<digits>``, else None.

    Why: the next take number is the highest number after the same prefix plus one, and
    the ids/paths index keeps this split so it answers that without the CSV.

    Examples
    --------
    >>> split_take("strat-lead-t012"), split_take("strat-lead"), split_take("a-t1-t2")
    (('strat-lead-t', 12), None, ('a-t1-t', 2))
    """
    head, sep, number = take.rpartition("-t")
    if not sep or not number.isdecimal():  # isdecimal: the digits int() reads ("²" is not)
        return None
    return head + sep, int(number)


def next_take_number(manifest: pd.DataFrame, guitar: str, phrase: str) -> int:
    """1 + the highest take number recorded so far for this guitar and phrase."""
    if manifest.empty:
        return 1
    prefix = f"{guitar}-{phrase}-t"
    numbers = [
        split[1] for split in map(split_take, manifest["take"]) if split and split[0] == prefix
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
    if ".." in rel.split("/"):  # the parts PurePosixPath finds, 10x faster (100k rows)
        return f"path {rel!r} points outside the corpus"
    return None


def resolve_audio_path(root: str | os.PathLike, rel: str, *, follow_links: bool = False) -> Path:
    """Absolute path of a manifest ``path``; refuses absolute paths and ``../``.

    ``follow_links=True`` also resolves symlinks and refuses a file that then lies outside
    the corpus (for serving files to others: the review app); the CLI reads through links,
    so a corpus may keep its takes on another disk.
    """
    problem = path_problem(rel)
    if problem:
        raise ManifestError(problem)
    if not follow_links:
        return Path(root) / rel
    full = (Path(root) / rel).resolve()
    if not full.is_relative_to(Path(root).resolve()):
        raise ManifestError(f"path {rel!r} points outside the corpus (through a link)")
    return full


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


def require_manifest(root: str | os.PathLike) -> Path:
    """``manifest.csv`` of ``root``, or one ``ManifestError`` saying how to create it."""
    path = manifest_path(root)
    if not Path(root).is_dir():
        raise ManifestError(
            f"{root}: no such corpus folder; create one with 'guitarlab corpus init {root}'"
        )
    if not path.exists():
        raise ManifestError(
            f"{path}: no manifest; create the corpus with 'guitarlab corpus init {root}'"
        )
    return path


def load_manifest(root: str | os.PathLike) -> pd.DataFrame:
    """The corpus manifest as a DataFrame (schema columns typed, extras kept as text).

    The file is validated before anything trusts it (:func:`manifest_shape_problem`): an
    empty file, another separator or a required column missing is one ``ManifestError``,
    so no writer rewrites it and ``recover --clean`` never takes its files for unlisted.
    A last line a killed writer cut off is left out (``appends.readable``).
    """
    from guitarlab.corpus.appends import readable

    path = require_manifest(root)
    try:
        data = path.read_bytes()  # read once: the separator sniff and the table see one file
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read the manifest ({os_reason(exc)})") from exc
    data = readable(root, data)
    head = data.split(b"\n", 1)[0]
    try:
        frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, na_values=[])
    except pd.errors.EmptyDataError:
        frame = None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ManifestError(
            f"{path}: not a readable CSV ({str(exc).splitlines()[0]}); restore it from a backup"
        ) from exc
    problem = manifest_shape_problem(head, None if frame is None else list(frame.columns))
    if problem:
        raise ManifestError(f"{path}: {problem}; nothing was changed")
    if b"'" in data:  # no cell can start with ' otherwise: spare the scan
        frame = unescape_cells(frame)
    typed = _typed(frame)
    typed.attrs["bad_cells"] = _bad_cells(frame)
    return typed


SEPARATORS = {";": "semicolons", "\t": "tabs", "|": "bars"}


def manifest_shape_problem(head: bytes, columns: list[str] | None) -> str | None:
    """Why a manifest cannot be trusted, from its first line and parsed headings, or None.

    A 0-byte file, one separated by ``;`` or tabs (a spreadsheet's regional setting),
    and one without a required column (``id``, ``path``, ...) would otherwise read as a
    corpus whose files no row lists.

    Examples
    --------
    >>> manifest_shape_problem(b"id;path;guitar\\n", ["id;path;guitar"])[:40]
    "columns separated by semicolons (';'), n"
    >>> manifest_shape_problem(b"", None)[:8]
    'is empty'
    """
    if columns is None:
        return "is empty (not even its header line); restore it from a backup"
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    missing = [name for name in REQUIRED if name not in columns]
    if not missing:
        return None
    found = {sep: text.count(sep) for sep in SEPARATORS}
    sep = max(found, key=found.get)
    if found[sep] > text.count(","):
        return (
            f"columns separated by {SEPARATORS[sep]} ({sep!r}), not commas; save it "
            "again as comma-separated CSV (in a spreadsheet: CSV UTF-8, comma)"
        )
    folded = {str(c).strip().lower(): str(c) for c in columns}
    renamed = [(name, folded[name]) for name in missing if name in folded]
    if renamed:
        name, heading = renamed[0]
        return f"no column {name!r} (the heading reads {heading!r}); rename it back to {name!r}"
    return (
        f"no column {missing[0]!r}"
        + (f" (nor {', '.join(missing[1:])})" if len(missing) > 1 else "")
        + f"; the header line must name {', '.join(REQUIRED)}: restore it from a backup"
    )


# ---------------------------------------------------------------- spreadsheet formulas
#
# A spreadsheet runs a cell that starts with = + - or @ (and tab or CR) as a formula, so
# a text cell that starts with one of them is written with a ' before it, and a text
# cell that starts with ' gets one more; on reading, one leading ' is taken off. A cell
# reads back exactly as it was written. Numbers (gain_db -3.5, a fret "-1") are not text
# to a spreadsheet and are never touched, nor is ``path``.

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
ESCAPE = "'"
NUMBER_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
UNESCAPED_COLUMNS = ("path",)


def escape_cell(value: str) -> str:
    """A text cell as ``manifest.csv`` stores it, so a spreadsheet never runs it.

    Examples
    --------
    >>> escape_cell("=1+2"), escape_cell("-3.5"), escape_cell("'a"), escape_cell("a")
    ("'=1+2", '-3.5', "''a", 'a')
    """
    if value and (
        value.startswith(ESCAPE)
        or (value.startswith(FORMULA_STARTS) and not NUMBER_RE.match(value))
    ):
        return ESCAPE + value
    return value


def unescape_cell(value: str) -> str:
    """Inverse of :func:`escape_cell`: one leading ``'`` comes off."""
    return value[1:] if value.startswith(ESCAPE) else value


def _text_columns(frame: pd.DataFrame) -> list[str]:
    return [
        c
        for c in frame.columns
        if c not in UNESCAPED_COLUMNS and SCHEMA.get(c, ("str", False))[0] == "str"
    ]


def escape_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every text cell escaped (:func:`escape_cell`), ready for a CSV."""
    out = frame
    for column in _text_columns(frame):
        text = frame[column]
        risky = text.str.startswith((ESCAPE, *FORMULA_STARTS), na=False)
        if risky.any():
            if out is frame:
                out = frame.copy()
            out.loc[risky, column] = text[risky].map(escape_cell)
    return out


def unescape_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (all text, as read) with one leading ``'`` off every text cell."""
    for column in _text_columns(frame):
        escaped = frame[column].str.startswith(ESCAPE, na=False)
        if escaped.any():
            frame.loc[escaped, column] = frame.loc[escaped, column].str.slice(1)
    return frame


def _bad_cells(text: pd.DataFrame) -> list[tuple[str, str, str]]:
    """``(id, column, value)`` of number cells that hold something other than a number."""
    bad = []
    for name, (kind, _) in SCHEMA.items():
        if kind == "str" or name not in text:
            continue
        cells = text[name].astype(str).str.strip()
        parsed = pd.to_numeric(cells.where(cells != "", None), errors="coerce")
        for index in np.flatnonzero(parsed.isna().to_numpy() & (cells != "").to_numpy()):
            rid = str(text["id"].iloc[index]) if "id" in text else f"line {index + 2}"
            bad.append((rid, name, str(text[name].iloc[index])))
    return bad


def _refuse_bad_cells(frame: pd.DataFrame, root: str | os.PathLike) -> None:
    """Saving would erase a cell that is not a number: refuse, naming it."""
    bad = frame.attrs.get("bad_cells") or []
    if bad:
        rid, column, value = bad[0]
        raise ManifestError(
            f"{manifest_path(root)}: row {rid!r}: {column} {value!r} is not a number; "
            "fix that cell first (guitarlab manifest check lists them all): rewriting the "
            "manifest would erase it"
        )


def _write_atomic(path: Path, frame: pd.DataFrame) -> None:
    try:
        with atomic_path(path, suffix=".tmp") as tmp:
            escape_cells(frame).to_csv(tmp, index=False, float_format="%.6g", encoding="utf-8")
    except OSError as exc:
        raise ManifestError(
            f"{path}: cannot save the manifest ({os_reason(exc)}); it is unchanged"
        ) from exc


def os_reason(exc: OSError) -> str:
    """The OS's reason in a few words, with what to do for the common ones."""
    if exc.errno in DISK_FULL_ERRNOS:
        return f"{exc.strerror}: is the disk full? free some space and run this again"
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"{exc.strerror}: the corpus is read-only for you"
    return exc.strerror or str(exc)


LOCK_TIMEOUT_ENV = "GUITARLAB_LOCK_TIMEOUT_S"


def _lock_timeout_s(timeout_s: float | None) -> float:
    if timeout_s is not None:
        return timeout_s
    try:
        return float(os.environ.get(LOCK_TIMEOUT_ENV, "60"))
    except ValueError:
        return 60.0


@contextlib.contextmanager
def manifest_lock(root: str | os.PathLike, *, timeout_s: float | None = None) -> Iterator[None]:
    """Hold the corpus's manifest lock (a ``filelock`` file beside ``manifest.csv``).

    The lock is an OS lock on that file: it goes with the process that holds it, so the
    file itself is never stale. After a second of waiting one line on stderr says so.
    Taking it finishes what a killed writer left (``appends.repair``: an append to
    complete from its journal, a torn last line), so every writer starts from a whole file.
    """
    timeout_s = _lock_timeout_s(timeout_s)
    path = Path(root) / LOCK_NAME
    lock = FileLock(str(path), timeout=timeout_s)
    try:
        try:
            lock.acquire(timeout=min(1.0, timeout_s))
        except TimeoutError:
            if timeout_s <= 1.0:
                raise
            print(
                f"waiting for the manifest lock of {root}: another guitarlab process is "
                f"writing this corpus (up to {timeout_s:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
            lock.acquire(timeout=max(timeout_s - 1.0, 0.0))
    except TimeoutError as exc:  # filelock.Timeout subclasses TimeoutError
        raise ManifestError(
            f"{path}: another guitarlab process held the manifest lock for {timeout_s:.0f} s; "
            "let it finish and run this again (the lock goes with that process: do not delete the file)"
        ) from exc
    except OSError as exc:
        raise ManifestError(f"{path}: cannot take the manifest lock ({os_reason(exc)})") from exc
    try:
        from guitarlab.corpus.appends import repair

        try:
            repair(root)
        except OSError as exc:
            raise ManifestError(
                f"{manifest_path(root)}: cannot repair an interrupted write ({os_reason(exc)})"
            ) from exc
        yield
    finally:
        lock.release()


def manifest_version(root: str | os.PathLike) -> str:
    """A token that changes whenever ``manifest.csv`` does: the sha256 of its bytes (20 hex).

    An editor sends back the version it read; :func:`update_manifest` refuses the edit
    (``ManifestConflict``) when the file changed in between (another editor, a spreadsheet).
    """
    try:
        data = manifest_path(root).read_bytes()
    except FileNotFoundError:
        data = b""
    return hashlib.sha256(data).hexdigest()[:20]


def update_manifest(
    root: str | os.PathLike,
    change: Callable[[pd.DataFrame], pd.DataFrame],
    *,
    expect_version: str | None = None,
    then: Callable[[pd.DataFrame], None] | None = None,
) -> pd.DataFrame:
    """Load, ``change``, validate and save the manifest as one locked, atomic step.

    With ``expect_version`` (a :func:`manifest_version` read earlier) the step is refused
    with ``ManifestConflict`` when the manifest changed since. ``then(saved)`` runs after
    the save, still under the lock (e.g. to append to a history file).
    """
    with manifest_lock(root):
        if expect_version is not None and manifest_version(root) != expect_version:
            raise ManifestConflict(
                f"{manifest_path(root)}: changed since version {expect_version} was read; "
                "reload and make the change again"
            )
        frame = load_manifest(root)
        _refuse_bad_cells(frame, root)
        updated = _typed(change(frame))
        duplicates = updated["id"][updated["id"].duplicated()].unique()
        if len(duplicates):
            raise ManifestError(f"duplicate id {duplicates[0]!r}; every row needs its own id")
        _write_atomic(manifest_path(root), updated)
        if then is not None:
            then(updated)
        return updated


def compact_manifest(root: str | os.PathLike) -> tuple[int, int, int]:
    """Rewrite ``manifest.csv`` atomically in schema order: ``(bytes before, after, rows)``.

    Appends keep the header's order and never rewrite; this is the explicit rewrite.
    """
    path = require_manifest(root)
    before = path.stat().st_size
    saved = update_manifest(root, lambda frame: frame)
    return before, path.stat().st_size, len(saved)


def append_rows(root: str | os.PathLike, rows: Iterable[dict]) -> list[dict]:
    """Add rows whose files are in place (or that list none), refusing incomplete rows and
    ids already present; appends like :func:`commit_rows`. Returns the rows added."""
    return commit_rows(root, [(dict(row), None) for row in rows])


# ---------------------------------------------------------------- reserve and commit
#
# Every writer (record, synth, import, augment, recover) adds files the same way:
#   1. ``reserve_takes`` (or ``reserve_rows``, which hands ``choose`` the whole manifest):
#      under the lock, choose ids/take numbers against the manifest (its index) *and*
#      the ids other live processes have reserved, and mark them reserved;
#   2. write the audio to a hidden temp name beside its final path (``temp_name``);
#   3. ``commit_rows``: under the lock, refuse ids already listed, move each temp file
#      onto its path and save the manifest with the new rows, as one step.
# A file appears under its final name only together with its row; a crash leaves a
# ``.part`` temp file (``manifest check`` lists it, ``recover --clean`` removes it).

RESERVED_DIR = ".reserved"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reservations(root: str | os.PathLike, *, drop_stale: bool = False) -> list[dict]:
    """The rows other live processes have reserved (``id``, ``take``, ``path``, ...).

    A reservation of a process that has exited on this host is stale; with
    ``drop_stale`` (under the lock) its marker is removed.
    """
    folder = Path(root) / RESERVED_DIR
    held = []
    for marker in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            data = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        owner = data.pop("_owner", {})
        if owner.get("host") == socket.gethostname() and not pid_alive(int(owner.get("pid", 0))):
            if drop_stale:
                marker.unlink(missing_ok=True)
            continue
        held.append(data)
    return held


_HELD: set[tuple[Path, str]] = set()


@atexit.register
def _release_held() -> None:
    """A writer that stops on an error releases what it had reserved as it exits."""
    for root, rid in list(_HELD):
        release_ids(root, [rid])


@dataclass
class Reservation:
    """Ids (and their rows' labels) reserved by this process; release them when done."""

    root: Path
    rows: list[dict]

    @property
    def ids(self) -> list[str]:
        return [row["id"] for row in self.rows]

    def release(self) -> None:
        release_ids(self.root, self.ids)

    def __enter__(self) -> Reservation:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def release_ids(root: str | os.PathLike, ids: Iterable[str]) -> None:
    """Drop this process's reservations of ``ids`` (others' are left alone)."""
    for rid in ids:
        marker = Path(root) / RESERVED_DIR / f"{rid}.json"
        try:
            owner = json.loads(marker.read_text(encoding="utf-8")).get("_owner", {})
        except (OSError, ValueError):
            continue
        if owner.get("pid") == os.getpid() and owner.get("host") == socket.gethostname():
            marker.unlink(missing_ok=True)
            _HELD.discard((Path(root), rid))


def reserve_rows(
    root: str | os.PathLike, choose: Callable[[pd.DataFrame], list[dict]]
) -> Reservation:
    """Reserve the rows ``choose`` picks, under the manifest lock.

    ``choose`` gets the manifest plus one row per id other live processes have reserved
    (so ``next_take_number`` and id clashes see them) and returns the rows to reserve
    (at least ``id``; ``take``, ``path`` and any column that planning compares). It reads
    the whole manifest: :func:`reserve_takes` answers the usual questions (next take
    number, ids taken) from the index instead, at the cost of the rows added.
    """
    root = Path(root)
    with manifest_lock(root):
        frame = load_manifest(root)
        held = reservations(root, drop_stale=True)
        if held:
            frame = _typed(pd.concat([frame, pd.DataFrame(held)], ignore_index=True))
        rows = [dict(row) for row in choose(frame)]
        return _mark_reserved(root, rows, set(frame["id"]))


class Taken:
    """What a writer choosing new rows asks of a corpus, under the manifest lock.

    Why: choosing one take's number and id must not read a 100,000-row CSV. Listed rows
    are answered from the ids/paths index (``appends.PathIndex``), rows other live
    processes have reserved from their markers; only :meth:`values` of an id already
    listed reads the manifest. Without an index (SQLite trouble) the manifest is loaded
    once and answers everything.
    """

    def __init__(self, root: Path, index: PathIndex | None, held: list[dict]) -> None:
        self.root = root
        self.index = index  # None: the loaded manifest answers
        self.held = {str(row.get("id", "")): row for row in held}
        self._frame: pd.DataFrame | None = None

    def _manifest(self) -> pd.DataFrame:
        if self._frame is None:
            self._frame = load_manifest(self.root)
        return self._frame

    def next_take_number(self, guitar: str, phrase: str) -> int:
        """1 + the highest take number of this guitar and phrase, listed or reserved."""
        prefix = f"{guitar}-{phrase}-t"
        listed = (
            self.index.highest_take(prefix)
            if self.index is not None
            else next_take_number(self._manifest(), guitar, phrase) - 1
        )
        splits = [split_take(str(row.get("take", ""))) for row in self.held.values()]
        return max([listed] + [s[1] for s in splits if s and s[0] == prefix]) + 1

    def taken(self, ids: Iterable[str]) -> set[str]:
        """Those of ``ids`` the manifest lists or another live process has reserved."""
        ids = list(ids)
        if self.index is not None:
            listed = self.index.listed(ids, [])[0]
        else:
            listed = set(self._manifest()["id"]).intersection(ids)
        return listed | self.held.keys() & set(ids)

    def values(self, ids: Iterable[str], column: str) -> dict[str, str]:
        """``{id: column's cell}`` for those of ``ids`` that are taken ("" where the row
        lacks the column); reads the manifest only when one of them is listed."""
        ids = list(ids)
        out = {rid: str(self.held[rid].get(column, "") or "") for rid in ids if rid in self.held}
        listed = self.taken(ids) - out.keys()
        if listed:
            frame = self._manifest()
            cells = frame[column] if column in frame else pd.Series("", index=frame.index)
            out.update(
                (rid, str(cells.iloc[n])) for n, rid in enumerate(frame["id"]) if rid in listed
            )
        return out


def reserve_takes(root: str | os.PathLike, choose: Callable[[Taken], list[dict]]) -> Reservation:
    """Reserve the rows ``choose`` picks, asking a :class:`Taken` instead of the manifest.

    Why: ``synth`` and ``record`` adding one take to a 100,000-row corpus spent 1-2 s
    loading the manifest to pick a take number; the index answers in milliseconds, so a
    reservation, like the commit after it, costs what it adds. ``choose`` returns the
    rows to reserve as for :func:`reserve_rows`.
    """
    from guitarlab.corpus import appends

    root = Path(root)
    with manifest_lock(root):
        file = appends.open_manifest(root)
        index = appends.synced_index(root, file)
        try:
            taken = Taken(root, index, reservations(root, drop_stale=True))
            rows = [dict(row) for row in choose(taken)]
            return _mark_reserved(root, rows, taken.taken(row["id"] for row in rows))
        finally:
            if index is not None:
                index.close()


def raw_level_reference(
    root: str | os.PathLike, *, guitar: str, phrase: str, role: str = ""
) -> float | None:
    """Mean ``rms_dbfs`` of the raw takes of ``phrase`` by the other guitars (same input
    ``role``; silent ones, -150 dBFS and below, left out), None when there are none.

    Why: a recorded take is compared with that level (``recorder.calibration``); the
    ids/paths index answers it, so recording into a 100,000-row corpus does not load the
    manifest after every take. Without an index the manifest is loaded.
    """
    from guitarlab.corpus import appends

    root = Path(root)
    with manifest_lock(root):
        index = appends.synced_index(root, appends.open_manifest(root))
        if index is not None:
            try:
                return index.raw_rms(phrase, guitar, role)
            finally:
                index.close()
    frame = load_manifest(root)
    others = frame["rms_dbfs"][
        (frame["tone"] == RAW_TONE)
        & (frame["phrase"] == phrase)
        & (frame["guitar"] != guitar)
        & (frame["role"] == role)
        & (frame["rms_dbfs"] > -150)
    ]
    return None if others.empty else float(others.mean())


def _mark_reserved(root: Path, rows: list[dict], taken: set[str]) -> Reservation:
    """Write a marker per row under ``.reserved/`` (lock held); ``taken`` ids are refused."""
    reservation = Reservation(root, [])
    try:
        (root / RESERVED_DIR).mkdir(exist_ok=True)
        for row in rows:
            if row["id"] in taken:
                raise ManifestError(
                    f"id {row['id']!r} is already in the manifest or being written by another process"
                )
            marker = root / RESERVED_DIR / f"{row['id']}.json"
            owner = {"pid": os.getpid(), "host": socket.gethostname()}
            with open(marker, "x", encoding="utf-8") as handle:
                reservation.rows.append(row)
                _HELD.add((root, row["id"]))
                json.dump({**row, "_owner": owner}, handle, default=str)
            taken.add(row["id"])
    except BaseException as exc:
        for row in reservation.rows:  # a half-written marker cannot be read back: unlink
            (root / RESERVED_DIR / f"{row['id']}.json").unlink(missing_ok=True)
            _HELD.discard((root, row["id"]))
        if isinstance(exc, OSError):
            raise ManifestError(
                f"{root / RESERVED_DIR}: cannot reserve ids ({os_reason(exc)})"
            ) from exc
        raise
    return reservation


def commit_rows(
    root: str | os.PathLike,
    items: Iterable[tuple[dict, Path | None]],
    *,
    keep: Callable[[pd.DataFrame, dict], bool] | None = None,
    replace_unlisted: bool = False,
) -> list[dict]:
    """Move each ``(row, temp file)`` into place at ``row["path"]`` and add the rows, locked.

    A ``None`` temp means the file is already at its path (a take recorded into a
    reserved name). Rows whose id is listed already are refused (``ManifestError``);
    ``keep(manifest, row)`` may drop a row instead (its temp file is deleted). A file at
    a row's path that no row lists is refused unless ``replace_unlisted`` (derived
    files such as renders). If saving the manifest fails, the moved files are removed
    and the manifest is unchanged. Returns the rows added.

    The rows are appended to ``manifest.csv`` (``guitarlab.corpus.appends``: journaled,
    fsynced), their ids and paths checked against the ids/paths index, so a commit costs
    what it adds; ``keep`` reads the whole manifest. Rows that fill a column the header
    lacks make this one commit a full atomic rewrite that adds the column.
    """
    from guitarlab.corpus import appends

    root = Path(root)
    items = [(dict(row), Path(tmp) if tmp else None) for row, tmp in items]
    for row, _ in items:
        missing = [
            name for name in REQUIRED if str(row.get(name, "")).strip() in ("", "nan", "None")
        ]
        if missing:
            _discard(items)
            raise ManifestError(
                f"row {row.get('id', '?')!r}: missing required field(s) {', '.join(missing)}"
            )
    moved: list[Path] = []
    index = None
    saved = False  # once the rows are in the manifest, their files stay whatever happens
    try:
        with manifest_lock(root):
            file = appends.open_manifest(root)
            frame = load_manifest(root) if keep is not None else None
            index = appends.synced_index(root, file, frame)
            if index is not None:
                listed_ids, listed_paths = index.listed(
                    [row["id"] for row, _ in items], [row["path"] for row, _ in items]
                )
            else:  # no index here (SQLite trouble): read the CSV
                frame = load_manifest(root) if frame is None else frame
                listed_ids, listed_paths = set(frame["id"]), set(frame["path"])
            added: list[dict] = []
            for row, tmp in items:
                if keep is not None and not keep(frame, row):
                    if tmp:
                        tmp.unlink(missing_ok=True)
                    continue
                if row["id"] in listed_ids:
                    raise ManifestError(
                        f"id {row['id']!r} is already in the manifest; pick another take number or tone"
                    )
                dest = resolve_audio_path(root, row["path"])
                if tmp is not None:
                    if dest.exists() and row["path"] not in listed_paths and not replace_unlisted:
                        raise ManifestError(
                            f"{dest}: a file no row lists is in the way; add it with "
                            "'guitarlab recover' or move it away"
                        )
                    if row["path"] in listed_paths:
                        raise ManifestError(f"{dest}: another row already points at this file")
                    os.replace(tmp, dest)
                    moved.append(dest)
                listed_ids.add(row["id"])
                listed_paths.add(row["path"])
                added.append(row)
            if added and appends.new_columns(added, file.columns):
                frame = load_manifest(root) if frame is None else frame
                _refuse_bad_cells(frame, root)  # a rewrite would erase such a cell
                _write_atomic(
                    manifest_path(root),
                    _typed(pd.concat([frame, pd.DataFrame(added)], ignore_index=True)),
                )  # the index is rebuilt on the next append: its key no longer matches
                saved = True
            elif added:
                key = appends.append_lines(file, added, [row["id"] for row in added])
                saved = True
                if index is not None:
                    index.add(added, key)
            return added
    except BaseException:
        for dest in [] if saved else moved:  # never leave a file under its name without its row
            dest.unlink(missing_ok=True)
        _discard(items)
        raise
    finally:
        if index is not None:
            index.close()
        release_ids(root, [row["id"] for row, _ in items])


def _discard(items: list[tuple[dict, Path | None]]) -> None:
    for _, tmp in items:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def stage_audio(
    root: str | os.PathLike,
    row: dict,
    audio: np.ndarray,
    sample_rate: int,
    *,
    subtype: str | None = None,
) -> tuple[dict, Path]:
    """Write ``audio`` to a temp name beside ``row["path"]`` and fill the row's file
    columns (header, levels, sha256) from it: ``(row, temp)``, ready for :func:`commit_rows`."""
    from guitarlab.corpus.audio import DEFAULT_SUBTYPE, file_columns, write_audio_file

    dest = resolve_audio_path(root, row["path"])
    tmp = temp_name(dest)
    try:
        write_audio_file(tmp, audio, sample_rate, subtype=subtype or DEFAULT_SUBTYPE, dest=dest)
        return {**row, **file_columns(tmp)}, tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def commit_audio(
    root: str | os.PathLike,
    row: dict,
    audio: np.ndarray,
    sample_rate: int,
    *,
    subtype: str | None = None,
    replace_unlisted: bool = False,
) -> dict:
    """Stage ``audio`` (:func:`stage_audio`) and commit its row (:func:`commit_rows`).

    The one way synth and other in-memory writers add a single file.
    """
    row, tmp = stage_audio(root, row, audio, sample_rate, subtype=subtype)
    commit_rows(root, [(row, tmp)], replace_unlisted=replace_unlisted)
    return row


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
