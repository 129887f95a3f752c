"""Review edits to a corpus: relabel a take, exclude a row, mark bad spans, history, undo.

The core behind ``guitarlab review`` (the web app only parses requests and calls these).
Every change is one locked, atomic manifest write (:func:`~guitarlab.corpus.manifest.
update_manifest`, refused with ``ManifestConflict`` when the caller's version is stale)
followed, under the same lock, by one line in ``history.jsonl`` beside ``manifest.csv``:
who, when, and each cell's old and new value, so the last change can be undone. The line
is made (and the history file opened) before the manifest is saved, and when it still
cannot be written the manifest is put back: no change lands without its history line.
Lines of ``history.jsonl`` that do not read as an entry are skipped (and counted), never
a reason to refuse an edit.

Labels belong to the performance, so a relabel applies to every row (render) of the
take; ``notes``, ``device`` and ``variant`` describe one file (a render's notes say what
it was rendered from), so an edit of those applies to the row edited only.

Two columns carry a review's verdicts, and ``dataset build`` honours both:

- ``excluded``: empty for a usable file, else the reason it is left out ("cough");
- ``exclude_spans``: bad time of the take as JSON ``[[start_s, end_s], ...]`` in seconds
  of the take (renders are sample-aligned with their take, so the spans hold in every
  tone). Every row of the take carries the same list.
"""

from __future__ import annotations

import getpass
import json
import math
import os
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from guitarlab.corpus.atomic import atomic_path
from guitarlab.corpus.audit import RECORD_COLUMNS
from guitarlab.corpus.errors import ManifestError
from guitarlab.corpus.manifest import (
    KNOWN_PICKUPS,
    RAW_TONE,
    SCHEMA,
    SLUG_RE,
    load_manifest,
    manifest_lock,
    manifest_path,
    manifest_version,
    update_manifest,
)

HISTORY_NAME = "history.jsonl"
EXCLUDED = "excluded"
EXCLUDE_SPANS = "exclude_spans"
# Columns that identify, describe or measure a file (its provenance: where it came from,
# which device and input recorded it, what the writers measured): never edited by review.
FIXED_COLUMNS = frozenset(
    {name for name, (kind, _) in SCHEMA.items() if kind != "str"}
    | {"id", "path", "tone", "take", "source", "preset_hash", "sha256", "subtype"}
    | {"recorded_at", "status", "synth_params", "preset", "input_gain_db", EXCLUDED, EXCLUDE_SPANS}
    | {"device", "role"}
    | set(RECORD_COLUMNS)
)
# Columns that describe one file, not the performance: edited on the row edited only.
PER_FILE_COLUMNS = frozenset({"notes", "device", "variant"})
# Per-file columns a render's row gets from its writer (its notes say what it was rendered
# from): review edits them on the take's own (raw) rows only.
RENDER_PROVENANCE = frozenset({"notes"})
MAX_TEXT = 200
SPAN_DECIMALS = 3


class UnknownRow(ManifestError):
    """An id the manifest does not list."""


# ---------------------------------------------------------------- reading


def history_path(root: str | os.PathLike) -> Path:
    return Path(root) / HISTORY_NAME


def read_history(root: str | os.PathLike, *, skipped: list[int] | None = None) -> list[dict]:
    """Every change recorded in ``history.jsonl``, oldest first.

    A line that is not a JSON object (text cut short by a crash, a hand edit, bytes that
    are not UTF-8) or whose ``n`` is not a whole number is skipped, and its line number
    (from 1) appended to ``skipped``: one junk line must not stop every later edit.
    """
    path = history_path(root)
    if not path.is_file():
        return []
    entries = []
    for number, raw in enumerate(path.read_bytes().splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            entry = json.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            entry = None
        n = entry.get("n", 0) if isinstance(entry, dict) else None
        if not isinstance(n, int) or isinstance(n, bool):
            if skipped is not None:
                skipped.append(number)
            continue
        entries.append(entry)
    return entries


def _undoable(entry: dict) -> bool:
    """Whether a history entry names its cells well enough to put them back."""
    edits = entry.get("edits")
    return (
        entry.get("action") != "undo"
        and "n" in entry
        and isinstance(entry.get("row"), str)
        and isinstance(edits, list)
        and bool(edits)
        and all(
            isinstance(e, dict) and all(isinstance(e.get(k), str) for k in _EDIT_KEYS)
            for e in edits
        )
    )


_EDIT_KEYS = ("id", "column", "old", "new")


def editable_columns(manifest: pd.DataFrame, row: pd.Series | None = None) -> list[str]:
    """The label columns review may edit: schema labels, ``notes`` and extra text columns.

    With ``row`` a render's (a tone other than raw), its provenance notes are left out.
    """
    render = row is not None and str(row.get("tone", RAW_TONE)) != RAW_TONE
    return [
        c
        for c in manifest.columns
        if c not in FIXED_COLUMNS and not (render and c in RENDER_PROVENANCE)
    ]


def parse_spans(text: str, *, where: str = "") -> list[tuple[float, float]]:
    """``exclude_spans`` as ``[(start_s, end_s), ...]`` ("" reads as none).

    Examples
    --------
    >>> parse_spans("[[1.5, 2.0], [3, 4.25]]")
    [(1.5, 2.0), (3.0, 4.25)]
    >>> parse_spans("")
    []
    """
    if not str(text).strip():
        return []
    try:
        spans = [(float(s), float(e)) for s, e in json.loads(text)]
    except (ValueError, TypeError) as exc:
        raise ManifestError(
            f"{where}exclude_spans {text!r} is not a JSON list of [start_s, end_s] pairs "
            f"({exc}); fix the cell or clear it"
        ) from None
    return spans


def format_spans(spans: list[tuple[float, float]]) -> str:
    """Spans sorted, overlapping ones merged, as the manifest stores them ("" for none).

    Examples
    --------
    >>> format_spans([(3, 4), (1, 2.5), (2, 2.75)])
    '[[1.0,2.75],[3.0,4.0]]'
    """
    merged: list[list[float]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    if not merged:
        return ""
    rounded = [[round(float(s), SPAN_DECIMALS), round(float(e), SPAN_DECIMALS)] for s, e in merged]
    return json.dumps(rounded, separators=(",", ":"))


def take_spans(manifest: pd.DataFrame, take: str) -> list[tuple[float, float]]:
    """The union of the excluded spans stored on any row of ``take``, merged."""
    if EXCLUDE_SPANS not in manifest:
        return []
    rows = manifest[manifest["take"].astype(str) == str(take)]
    spans = []
    for rid, text in zip(rows["id"], rows[EXCLUDE_SPANS], strict=True):
        spans += parse_spans(text, where=f"row {rid}: ")
    return [tuple(s) for s in json.loads(format_spans(spans) or "[]")]


def row_of(manifest: pd.DataFrame, row_id: str) -> pd.Series:
    """The row with ``id`` (``UnknownRow`` when the manifest does not list it)."""
    hit = manifest.index[manifest["id"].astype(str) == str(row_id)]
    if not len(hit):
        raise UnknownRow(f"no row {row_id!r} in the manifest")
    return manifest.loc[hit[0]]


def take_duration_s(manifest: pd.DataFrame, take: str) -> float:
    """The length of a take in seconds: its shortest file (renders match their take)."""
    rows = manifest[manifest["take"].astype(str) == str(take)]
    lengths = [
        int(frames) / int(rate)
        for frames, rate in zip(rows["frames"], rows["sample_rate"], strict=True)
        if not pd.isna(frames) and not pd.isna(rate) and int(rate) > 0
    ]
    if not lengths:
        raise ManifestError(
            f"take {take}: no row has frames and sample_rate; "
            "run 'guitarlab manifest check --fix-levels'"
        )
    return min(lengths)


# ---------------------------------------------------------------- validation


def check_value(manifest: pd.DataFrame, column: str, value: object) -> str:
    """``value`` for ``column`` as stored, or ``ManifestError`` naming what is allowed.

    ``guitar`` and ``phrase`` are lower-case slugs, ``pickup`` is empty, a known pickup
    type or one the corpus already has; any other editable column takes one line of text.
    """
    if column not in manifest.columns:
        raise ManifestError(
            f"unknown column {column!r}; editable: {', '.join(editable_columns(manifest))}"
        )
    if column in FIXED_COLUMNS:
        raise ManifestError(
            f"column {column!r} is not a label review can edit; "
            f"editable: {', '.join(editable_columns(manifest))}"
        )
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ManifestError(f"{column}: give a text value, not {type(value).__name__}")
    text = str(value).strip()
    if column in ("guitar", "phrase") and not SLUG_RE.match(text):
        raise ManifestError(
            f"{column} {text!r} is not a lower-case slug; use letters, digits and '_' "
            "such as 'les_paul'"
        )
    if column == "pickup" and text:
        allowed = sorted(set(KNOWN_PICKUPS) | set(manifest["pickup"].astype(str)) - {""})
        if text not in allowed:
            raise ManifestError(
                f"pickup {text!r} is not a known pickup; use one of {', '.join(allowed)}"
            )
    if len(text) > MAX_TEXT or not _one_line(text):
        raise ManifestError(
            f"{column}: one line of at most {MAX_TEXT} characters, without control characters"
        )
    return text


def _one_line(text: str) -> bool:
    """No control characters, and no lone surrogates (no file can store one as UTF-8)."""
    return not any(ord(ch) < 32 or 0xD800 <= ord(ch) < 0xE000 for ch in text)


def check_span(
    start_s: object,
    end_s: object,
    duration_s: float,
    *,
    decimals: int = SPAN_DECIMALS,
    where: str = "",
    take: str = "",
) -> tuple[float, float]:
    """A span ``0 <= start < end <= duration`` (seconds) rounded to ``decimals``, or
    ``ManifestError`` in one line starting with ``where`` (naming ``take`` if given).

    The one span check of a take: an excluded span (milliseconds) and a segment
    (``corpus.segments``, microseconds, as Audacity writes labels).

    >>> check_span("0.25", 1.00049, 1.0)
    (0.25, 1.0)
    """
    try:
        start, end = float(start_s), float(end_s)
    except (TypeError, ValueError):
        raise ManifestError(
            f"{where}span [{start_s}, {end_s}]: give start_s and end_s as numbers of seconds"
        ) from None
    if not (math.isfinite(start) and math.isfinite(end)) or not 0 <= start < end:
        raise ManifestError(
            f"{where}span [{start_s}, {end_s}] s: needs 0 <= start < end, in seconds"
        )
    if end > duration_s + 10**-decimals:
        raise ManifestError(
            f"{where}span [{start:g}, {end:g}] s ends after {f'take {take}' if take else 'the file'} "
            f"({duration_s:.3f} s); mark time inside the take"
        )
    start, end = round(start, decimals), round(min(end, duration_s), decimals)
    if not start < end:
        raise ManifestError(
            f"{where}span [{start_s}, {end_s}] s is shorter than {10**-decimals:.{decimals}f} s"
        )
    return start, end


# ---------------------------------------------------------------- changes


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _user(who: str | None) -> str:
    if who:
        return who
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _apply(frame: pd.DataFrame, edits: list[dict], key: str) -> pd.DataFrame:
    """``frame`` with each edit's ``key`` value ("new" or "old") written into its cell."""
    frame = frame.copy()
    for edit in edits:
        if edit["column"] not in frame:
            frame[edit["column"]] = ""
        frame.loc[frame["id"].astype(str) == edit["id"], edit["column"]] = edit[key]
    return frame


def _change(
    root: str | os.PathLike,
    action: str,
    row_id: str,
    plan: Callable[[pd.DataFrame, pd.Series], list[tuple[str, str, str]]],
    *,
    who: str | None,
    expect_version: str | None,
    extra: dict | None = None,
) -> dict | None:
    """One reviewed change: ``plan(manifest, row)`` -> ``[(id, column, new), ...]``.

    Cells whose value would not change are dropped; with nothing left nothing is written
    and None is returned. Otherwise the manifest is saved and the history entry (with
    ``version``, the manifest's version after the change) is appended and returned.

    Why in this order: the entry, its number and its line are made and the history file
    opened while the old manifest is still on disk; if the line then cannot be written
    the old manifest is saved back, so a change never lands without its history line.
    """
    entry: dict = {}
    held: dict = {}

    def change(frame: pd.DataFrame) -> pd.DataFrame:
        row = row_of(frame, row_id)
        edits = []
        for rid, column, new in plan(frame, row):
            cell = frame.loc[frame["id"].astype(str) == rid]
            old = str(cell[column].iloc[0]) if column in frame else ""
            if old != new:
                edits.append({"id": rid, "column": column, "old": old, "new": new})
        if not edits:
            raise _NothingToDo
        entry.update(
            n=max((e.get("n", 0) for e in read_history(root)), default=0) + 1,
            who=_user(who),
            when=_now(),
            action=action,
            row=str(row_id),
            take=str(row["take"]),
            **(extra or {}),
            edits=edits,
        )
        held["line"] = (json.dumps(entry, separators=(",", ":")) + "\n").encode("utf-8")
        held["before"] = manifest_path(root).read_bytes()
        try:
            held["file"] = open(history_path(root), "a+b")  # noqa: SIM115 (record or _change closes it)
        except OSError as exc:
            raise ManifestError(_unwritable(root, exc)) from None
        return _apply(frame, edits, "new")

    def record(saved: pd.DataFrame) -> None:
        try:
            _append_line(held.pop("file"), held["line"])
        except OSError as exc:
            with atomic_path(manifest_path(root)) as tmp:  # put the old manifest back
                tmp.write_bytes(held["before"])
            raise ManifestError(_unwritable(root, exc)) from None
        entry["version"] = manifest_version(root)

    try:
        update_manifest(root, change, expect_version=expect_version, then=record)
    except _NothingToDo:
        return None
    finally:
        if "file" in held:  # the save failed after the history file was opened
            held.pop("file").close()
    return entry


def _unwritable(root: str | os.PathLike, exc: OSError) -> str:
    return (
        f"{history_path(root)}: cannot append the change's history line "
        f"({exc.strerror or exc}); nothing was changed. Make the file writable and try again"
    )


class _NothingToDo(Exception):
    """Raised inside the locked step when a change would leave every cell as it is."""


def _append_line(f, line: bytes) -> None:
    """Append ``line`` to the open ``history.jsonl`` (under the manifest lock); closes ``f``.

    Appended, not rewritten: every earlier line stays as written, even one that no longer
    parses. A line cut short by a crash gets a newline first, so it cannot swallow this one.
    """
    with f:  # opened "a+b": every write lands at the end
        size = f.seek(0, os.SEEK_END)
        if size:
            f.seek(size - 1)
            if f.read(1) != b"\n":
                line = b"\n" + line
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def relabel_take(
    root: str | os.PathLike,
    row_id: str,
    changes: dict[str, object],
    *,
    who: str | None = None,
    expect_version: str | None = None,
) -> dict | None:
    """Set label columns on every row of ``row_id``'s take (all its renders), as one change.

    A label belongs to the performance, so it changes on every render; a column of
    :data:`PER_FILE_COLUMNS` (``notes``: a render's own says what it was rendered from)
    changes on ``row_id``'s row only. Returns the history entry, or None when every value
    was already so.

    Examples
    --------
    >>> relabel_take("my-corpus", "stratocaster-lead-t001-raw", {"guitar": "telecaster"})  # doctest: +SKIP
    """
    if not isinstance(changes, dict) or not changes:
        raise ManifestError('give the columns to change, e.g. {"guitar": "les_paul"}')

    def plan(frame: pd.DataFrame, row: pd.Series) -> list[tuple[str, str, str]]:
        values = {column: check_value(frame, column, v) for column, v in changes.items()}
        kept = set(values) & RENDER_PROVENANCE
        if kept and str(row["tone"]) != RAW_TONE:
            raise ManifestError(
                f"{', '.join(sorted(kept))} of render {row['id']} say what it was rendered "
                f"from; edit them on the take's {RAW_TONE} row"
            )
        ids = frame.loc[frame["take"].astype(str) == str(row["take"]), "id"].astype(str)
        return [
            (rid, column, value)
            for rid in ids
            for column, value in values.items()
            if column not in PER_FILE_COLUMNS or rid == str(row["id"])
        ]

    return _change(root, "relabel", row_id, plan, who=who, expect_version=expect_version)


def exclude_row(
    root: str | os.PathLike,
    row_id: str,
    reason: str | None,
    *,
    who: str | None = None,
    expect_version: str | None = None,
) -> dict | None:
    """Leave one file out of dataset builds for ``reason`` (``None`` or "" takes it back in)."""
    reason = "" if reason is None else str(reason).strip()
    if len(reason) > MAX_TEXT or not _one_line(reason):
        raise ManifestError(f"reason: one line of at most {MAX_TEXT} characters")

    def plan(frame: pd.DataFrame, row: pd.Series) -> list[tuple[str, str, str]]:
        return [(str(row["id"]), EXCLUDED, reason)]

    action = "exclude" if reason else "include"
    return _change(root, action, row_id, plan, who=who, expect_version=expect_version)


def add_span(
    root: str | os.PathLike,
    row_id: str,
    start_s: float,
    end_s: float,
    *,
    remove: bool = False,
    who: str | None = None,
    expect_version: str | None = None,
) -> dict | None:
    """Mark ``[start_s, end_s]`` of ``row_id``'s take bad, in every tone of the take.

    Overlapping spans merge. With ``remove`` the span (as stored) is taken back instead.
    """
    span: dict = {}

    def plan(frame: pd.DataFrame, row: pd.Series) -> list[tuple[str, str, str]]:
        take = str(row["take"])
        start, end = check_span(start_s, end_s, take_duration_s(frame, take))
        spans = take_spans(frame, take)
        if not remove:
            spans.append((start, end))
        else:
            kept = [s for s in spans if max(abs(s[0] - start), abs(s[1] - end)) > 1e-3]
            if len(kept) == len(spans):
                raise ManifestError(
                    f"take {take} has no excluded span [{start:g}, {end:g}] s; "
                    f"its spans: {format_spans(spans) or 'none'}"
                )
            spans = kept
        span["span"] = [start, end]
        text = format_spans(spans)
        ids = frame.loc[frame["take"].astype(str) == take, "id"].astype(str)
        return [(rid, EXCLUDE_SPANS, text) for rid in ids]

    action = "remove_span" if remove else "add_span"
    return _change(root, action, row_id, plan, who=who, expect_version=expect_version, extra=span)


def remove_span(root: str | os.PathLike, row_id: str, start_s: float, end_s: float, **kw):
    """Take back an excluded span of ``row_id``'s take (it must match a stored span)."""
    return add_span(root, row_id, start_s, end_s, remove=True, **kw)


def undo_last(
    root: str | os.PathLike,
    *,
    who: str | None = None,
    expect_version: str | None = None,
    expect_segments_version: str | None = None,
) -> dict:
    """Undo the last change not undone yet; repeated calls step further back.

    The undo is itself a history entry (``action: "undo"``, ``undoes: n``). Refused when
    a cell of that change has been changed since by something else. A segments edit
    (:mod:`guitarlab.corpus.segments`) is undone in ``segments.csv``; its staleness check
    is ``expect_segments_version`` (``expect_version`` is the manifest's).
    """
    from guitarlab.corpus.segments import is_segments_entry, undo_segments_entry

    history = read_history(root)
    undone = {e.get("undoes") for e in history}
    todo = [
        e for e in history if (_undoable(e) or is_segments_entry(e)) and e.get("n") not in undone
    ]
    if not todo:
        raise ManifestError(f"{history_path(root)}: nothing to undo")
    last = todo[-1]
    if is_segments_entry(last):  # segments.csv, not the manifest: its own version token
        return undo_segments_entry(root, last, who=who, expected_version=expect_segments_version)

    def plan(frame: pd.DataFrame, row: pd.Series) -> list[tuple[str, str, str]]:
        for edit in last["edits"]:
            cells = frame.loc[frame["id"].astype(str) == edit["id"]]
            now = (
                str(cells[edit["column"]].iloc[0])
                if len(cells) and edit["column"] in frame
                else None
            )
            if now != edit["new"]:
                raise ManifestError(
                    f"cannot undo change {last['n']}: {edit['id']} {edit['column']} is now "
                    f"{now!r}, not {edit['new']!r}; fix it by hand"
                )
        return [(e["id"], e["column"], e["old"]) for e in last["edits"]]

    entry = _change(
        root,
        "undo",
        last["row"],
        plan,
        who=who,
        expect_version=expect_version,
        extra={"undoes": last["n"]},
    )
    if entry is None:
        raise ManifestError(f"change {last['n']} left nothing to undo")
    return entry


def manifest_rows(root: str | os.PathLike) -> tuple[pd.DataFrame, str]:
    """The manifest and its version, read under the lock so they match."""
    if not manifest_path(root).is_file():
        load_manifest(root)  # raises the one-line "no manifest" error
    with manifest_lock(root):
        return load_manifest(root), manifest_version(root)
