"""Labels in time: segments of a take, each a span with label columns.

A segment is a time span of a TAKE (seconds from the take's start) with any label columns
(``technique=palm_mute``, ``pitch=43``, ``string=6``, ``fret=3``): every render of the take
inherits it, since renders keep their take's timing. Segments live in ``segments.csv``
beside ``manifest.csv``, one row per segment::

    id,take,start_s,end_s,origin,technique,pitch
    seg-000001,strat-riff-t001,0.5,2.25,audacity:riff.txt,palm_mute,

``id`` is ``seg-NNNNNN``, unique and never reused (not even after a delete); ``origin``
says where the segment came from (``audacity:FILE``, ``jams:FILE``, ``idmt:FILE``,
``review``); an empty label cell means the segment does not label that column. A missing
file means no segments. ``pd.read_csv`` reads it (text cells a spreadsheet would run as a
formula start with ``'``, as in the manifest).

Every edit is one atomic write under the manifest lock, followed under the same lock by
one line in ``history.jsonl`` (``"kind": "segments"``, each segment's old and new row), so
:func:`guitarlab.corpus.edits.undo_last` undoes it like any other review edit. As in
:mod:`guitarlab.corpus.edits`, the line is made and the history file opened before the
segments are saved, and the old file is put back when the line cannot be written.

The pure helpers (:func:`segments_of`, :func:`segment_label_for_spans`,
:func:`label_changes`) touch no files.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from guitarlab.corpus.atomic import atomic_path
from guitarlab.corpus.edits import check_span, take_duration_s
from guitarlab.corpus.errors import ManifestConflict, ManifestError
from guitarlab.corpus.manifest import (
    SLUG_RE,
    escape_cell,
    load_manifest,
    manifest_lock,
    os_reason,
    unescape_cell,
)

SEGMENTS_NAME = "segments.csv"
BASE_COLUMNS = ("id", "take", "start_s", "end_s", "origin")
ID_PREFIX = "seg-"
ID_RE = re.compile(r"^seg-(\d+)$")
TIME_DECIMALS = 6  # Audacity writes label times with 6 decimals
TIME_TOLERANCE_S = 1e-6  # rounding to 6 decimals moves a time by at most 5e-7 s
MAX_TEXT = 200
KIND = "segments"


# ---------------------------------------------------------------- reading


def segments_path(root: str | os.PathLike) -> Path:
    return Path(root) / SEGMENTS_NAME


def segments_version(root: str | os.PathLike) -> str:
    """A token that changes whenever ``segments.csv`` does (sha256 of its bytes, 20 hex).

    An editor sends back the version it read; edits refuse (``ManifestConflict``) when the
    file changed in between.
    """
    try:
        data = segments_path(root).read_bytes()
    except FileNotFoundError:
        data = b""
    return hashlib.sha256(data).hexdigest()[:20]


def empty_segments() -> pd.DataFrame:
    """No segments: the five base columns, typed."""
    return _typed(pd.DataFrame({name: [] for name in BASE_COLUMNS}))


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    for name in BASE_COLUMNS:
        if name not in frame:
            frame[name] = np.nan if name in ("start_s", "end_s") else ""
    for name in frame.columns:
        if name in ("start_s", "end_s"):
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(float)
        else:
            col = frame[name]
            frame[name] = col.astype(object).where(col.notna(), "").astype(str)
    labels = [c for c in frame.columns if c not in BASE_COLUMNS]
    return frame[list(BASE_COLUMNS) + labels].reset_index(drop=True)


def label_columns(segments: pd.DataFrame) -> list[str]:
    """The label columns of a segments table (every column after the five base ones)."""
    return [c for c in segments.columns if c not in BASE_COLUMNS]


def load_segments(root: str | os.PathLike) -> pd.DataFrame:
    """Every segment of the corpus: ``id, take, start_s, end_s, origin`` + label columns.

    Times are floats, every other cell text ("" where a segment does not label a column).
    No ``segments.csv`` gives an empty frame with the five base columns.
    """
    path = segments_path(root)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return empty_segments()
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read the segments ({os_reason(exc)})") from exc
    if not data.strip():
        return empty_segments()
    try:
        frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, na_values=[])
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ManifestError(
            f"{path}: not a readable CSV ({str(exc).splitlines()[0]}); restore it from a backup"
        ) from None
    missing = [c for c in BASE_COLUMNS if c not in frame.columns]
    if missing:
        raise ManifestError(
            f"{path}: missing column(s) {', '.join(missing)}; the header must start "
            f"{','.join(BASE_COLUMNS)}"
        )
    for column in ("start_s", "end_s"):
        numbers = pd.to_numeric(frame[column], errors="coerce")
        bad = frame.loc[numbers.isna(), "id"]
        if len(bad):
            raise ManifestError(
                f"{path}: segment {bad.iloc[0]!r}: {column} is not a number; fix that cell"
            )
    for column in frame.columns:
        if column not in ("start_s", "end_s", "id", "take"):
            frame[column] = frame[column].map(unescape_cell)
    return _typed(frame)


def segments_of(segments: pd.DataFrame, take: str) -> pd.DataFrame:
    """The segments of one take, sorted by start (then end, then id).

    Examples
    --------
    >>> table = pd.DataFrame({"id": ["seg-2", "seg-1", "seg-3"], "take": ["a", "a", "b"],
    ...                       "start_s": [2.0, 0.5, 0.0], "end_s": [3.0, 1.0, 1.0]})
    >>> list(segments_of(table, "a")["id"])
    ['seg-1', 'seg-2']
    """
    rows = segments[segments["take"].astype(str) == str(take)]
    return rows.sort_values(["start_s", "end_s", "id"], kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------- pure helpers


def segment_label_for_spans(
    segments: pd.DataFrame,
    column: str,
    starts_s: np.ndarray,
    ends_s: np.ndarray,
) -> list[str | None]:
    """The label in ``column`` of the segment that wholly contains each span.

    ``segments`` are ONE take's segments; only those with a value in ``column`` count.
    A span gets None when it lies in no such segment, or straddles two (no single
    segment holds it whole), or when overlapping segments holding it disagree; the
    caller counts those. Times are seconds of the take (tolerance 1e-6 s).

    Examples
    --------
    >>> seg = pd.DataFrame({"start_s": [0.0, 2.0], "end_s": [2.0, 4.0],
    ...                     "technique": ["mute", "bend"]})
    >>> segment_label_for_spans(seg, "technique", np.array([0.0, 1.5, 2.0, 5.0]),
    ...                         np.array([1.0, 2.5, 3.0, 6.0]))
    ['mute', None, 'bend', None]
    """
    starts = np.asarray(starts_s, dtype=float).reshape(-1)
    ends = np.asarray(ends_s, dtype=float).reshape(-1)
    if starts.shape != ends.shape:
        raise ValueError(f"starts_s has {starts.size} spans but ends_s has {ends.size}")
    if column not in segments.columns or not len(segments):
        return [None] * starts.size
    values = segments[column].astype(object).where(segments[column].notna(), "").astype(str)
    keep = (values.str.strip() != "").to_numpy()
    seg_start = segments["start_s"].to_numpy(dtype=float)[keep]
    seg_end = segments["end_s"].to_numpy(dtype=float)[keep]
    labels = values.to_numpy()[keep]
    if not labels.size:
        return [None] * starts.size
    inside = (seg_start[None, :] <= starts[:, None] + TIME_TOLERANCE_S) & (
        ends[:, None] <= seg_end[None, :] + TIME_TOLERANCE_S
    )
    out: list[str | None] = []
    for row in inside:
        found = set(labels[row])
        out.append(found.pop() if len(found) == 1 else None)
    return out


def label_changes(
    times_s: Sequence[float] | np.ndarray,
    labels: Sequence[str | None],
    *,
    end_s: float | None = None,
) -> list[tuple[float, float, str]]:
    """A per-window label sequence as ``(start_s, end_s, label)`` runs.

    ``times_s`` are the windows' start times (ascending), ``labels`` their labels (None:
    no label, e.g. silence, which leaves a gap). A run ends where the next window with
    another label starts; the last run ends at ``end_s`` (default: the last time plus the
    median step between windows).

    Examples
    --------
    >>> label_changes([0.0, 0.5, 1.0, 1.5, 2.0], ["a", "a", "b", None, "b"])
    [(0.0, 1.0, 'a'), (1.0, 1.5, 'b'), (2.0, 2.5, 'b')]
    >>> label_changes([0.0, 1.0], ["x", "x"], end_s=1.25)
    [(0.0, 1.25, 'x')]
    """
    times = np.asarray(times_s, dtype=float).reshape(-1)
    if times.size != len(labels):
        raise ValueError(f"{times.size} times but {len(labels)} labels")
    if not times.size:
        return []
    if end_s is None:
        step = float(np.median(np.diff(times))) if times.size > 1 else 0.0
        end_s = float(times[-1]) + step
    bounds = [*times[1:].tolist(), float(end_s)]
    runs: list[tuple[float, float, str]] = []
    current: list | None = None
    for start, end, label in zip(times.tolist(), bounds, labels, strict=True):
        if current is not None and label == current[2] and math.isclose(current[1], start):
            current[1] = end
            continue
        if current is not None:
            runs.append((current[0], current[1], current[2]))
        current = [start, end, label] if label is not None else None
    if current is not None:
        runs.append((current[0], current[1], current[2]))
    return [(float(s), float(e), str(label)) for s, e, label in runs if e > s]


# ---------------------------------------------------------------- validation


def _text(column: str, value: object, *, where: str) -> str:
    """A label value as stored: one line of text ("" for None/NaN); numbers as written."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float | np.integer):
        raise ManifestError(f"{where}{column}: give a text value, not {type(value).__name__}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    if len(text) > MAX_TEXT or any(ord(ch) < 32 or 0xD800 <= ord(ch) < 0xE000 for ch in text):
        raise ManifestError(
            f"{where}{column}: one line of at most {MAX_TEXT} characters, without control characters"
        )
    return text


def _check_column(column: object, *, where: str) -> str:
    if not isinstance(column, str) or not SLUG_RE.match(column):
        raise ManifestError(
            f"{where}column {column!r} is not a lower-case slug; use letters, digits and '_' "
            "such as 'technique'"
        )
    if column in BASE_COLUMNS:
        raise ManifestError(
            f"{where}{column!r} is not a label column ({', '.join(BASE_COLUMNS)} are fixed)"
        )
    return column


def _round_time(value: float) -> float:
    return round(float(value), TIME_DECIMALS)


def _take_duration(manifest: pd.DataFrame, take: str, root: str | os.PathLike) -> float:
    takes = manifest["take"].astype(str)
    if str(take) not in set(takes):
        row = manifest.loc[manifest["id"].astype(str) == str(take), "take"]
        if len(row):  # a file's id given for its take: say which take it is
            raise ManifestError(
                f"{take!r} is a file of take {row.iloc[0]!r}; segments belong to the take "
                f"(every render inherits them): use the take {row.iloc[0]}"
            )
        known = sorted(set(takes))
        shown = ", ".join(known[:5]) + (f" (and {len(known) - 5} more)" if len(known) > 5 else "")
        raise ManifestError(
            f"take {take!r} is not in the manifest of {root}; "
            f"known takes: {shown or 'none'} ('guitarlab manifest summary {root} --takes' lists them)"
        )
    return take_duration_s(manifest, str(take))


# ---------------------------------------------------------------- writing


def _row_dict(row: pd.Series) -> dict:
    """A stored segment as a history record: base columns and its non-empty labels."""
    out = {
        "id": str(row["id"]),
        "take": str(row["take"]),
        "start_s": float(row["start_s"]),
        "end_s": float(row["end_s"]),
        "origin": str(row["origin"]),
    }
    for column in row.index:
        if column not in BASE_COLUMNS and str(row[column]) != "":
            out[column] = str(row[column])
    return out


def _frame_of(records: Iterable[dict], columns: Sequence[str]) -> pd.DataFrame:
    records = list(records)
    extra = [c for r in records for c in r if c not in columns]
    order = list(dict.fromkeys([*columns, *extra]))
    frame = pd.DataFrame(records, columns=order) if records else pd.DataFrame(columns=order)
    return _typed(frame)


def _serialise(frame: pd.DataFrame) -> bytes:
    """``segments.csv``'s bytes: sorted by take and time, empty label columns dropped."""
    frame = frame.sort_values(["take", "start_s", "end_s", "id"], kind="stable")
    labels = [c for c in label_columns(frame) if (frame[c].astype(str) != "").any()]
    out = frame[list(BASE_COLUMNS) + labels].copy()
    for column in ("start_s", "end_s"):
        out[column] = [repr(_round_time(v)) for v in out[column]]
    for column in ["origin", *labels]:
        out[column] = out[column].astype(str).map(escape_cell)
    return out.to_csv(index=False, lineterminator="\n").encode("utf-8")


def _id_number(seg_id: object) -> int:
    match = ID_RE.match(str(seg_id))
    return int(match.group(1)) if match else 0


def _next_number(current: pd.DataFrame, history: list[dict]) -> int:
    """One past every id the corpus ever used (the history keeps deleted ones)."""
    used = [_id_number(i) for i in current["id"]]
    for entry in history:
        if entry.get("kind") == KIND:
            for item in entry.get("segments") or []:
                if isinstance(item, dict):
                    used.append(_id_number(item.get("id")))
    return max(used, default=0) + 1


def _edit(
    root: str | os.PathLike,
    action: str,
    plan,
    *,
    who: str | None,
    expected_version: str | None,
    extra: dict | None = None,
) -> dict | None:
    """One segments edit under the manifest lock: ``plan(manifest, segments, history)``.

    ``plan`` returns ``(take, items)``, items ``[{"id", "old", "new"}]`` with old/new a
    record (:func:`_row_dict`) or None (added / deleted). Nothing to change returns None.
    The history line is made and its file opened before ``segments.csv`` is replaced;
    when the line cannot be written the old file is put back.
    """
    from guitarlab.corpus.edits import (
        _append_line,
        _now,
        _unwritable,
        _user,
        history_path,
        read_history,
    )

    path = segments_path(root)
    with manifest_lock(root):
        if expected_version is not None and segments_version(root) != expected_version:
            raise ManifestConflict(
                f"{path}: changed since version {expected_version} was read; "
                "reload and make the change again"
            )
        manifest = load_manifest(root)
        current = load_segments(root)
        history = read_history(root)
        take, items = plan(manifest, current, history)
        items = [i for i in items if i["old"] != i["new"]]
        if not items:
            return None
        kept = current[~current["id"].isin({i["id"] for i in items})]
        added = [i["new"] for i in items if i["new"] is not None]
        if added:
            kept = pd.concat([kept, _frame_of(added, current.columns)], ignore_index=True)
        data = _serialise(_typed(kept))
        entry = {
            "n": max((e.get("n", 0) for e in history), default=0) + 1,
            "who": _user(who),
            "when": _now(),
            "action": action,
            "kind": KIND,
            "take": str(take),
            **(extra or {}),
            "segments": items,
        }
        line = (json.dumps(entry, separators=(",", ":")) + "\n").encode("utf-8")
        before = path.read_bytes() if path.is_file() else None
        try:
            handle = open(history_path(root), "a+b")  # noqa: SIM115 (_append_line closes it)
        except OSError as exc:
            raise ManifestError(_unwritable(root, exc)) from None
        try:
            with atomic_path(path, suffix=".tmp") as tmp:
                tmp.write_bytes(data)
        except OSError as exc:
            handle.close()
            raise ManifestError(
                f"{path}: cannot save the segments ({os_reason(exc)}); they are unchanged"
            ) from None
        except BaseException:
            handle.close()
            raise
        try:
            _append_line(handle, line)
        except OSError as exc:
            if before is None:
                path.unlink(missing_ok=True)
            else:
                with atomic_path(path, suffix=".tmp") as tmp:
                    tmp.write_bytes(before)
            raise ManifestError(_unwritable(root, exc)) from None
        entry["version"] = segments_version(root)
    return entry


def _segment(current: pd.DataFrame, seg_id: str) -> pd.Series:
    hit = current.index[current["id"] == str(seg_id)]
    if not len(hit):
        raise ManifestError(
            f"no segment {seg_id!r} in {SEGMENTS_NAME}; 'guitarlab labels list' shows the ids"
        )
    return current.loc[hit[0]]


def add_segments(
    root: str | os.PathLike,
    take: str,
    segments: list[dict],
    *,
    origin: str,
    replace_column: str | Sequence[str] | None = None,
    expected_version: str | None = None,
    who: str | None = None,
) -> list[str]:
    """Add segments to ``take`` as one change (one history entry); returns the new ids.

    Each dict has ``start_s``, ``end_s`` (seconds of the take) and label columns (slugs;
    None or "" leaves a column unlabelled). With ``replace_column`` (a column or several)
    the take's segments that label it are deleted first, in the same change: importing
    a file again replaces what it brought. Refused as a whole, with one line naming the
    segment, for an unknown take, start >= end, a span past the take's end, or a column
    that is not a slug.

    Examples
    --------
    >>> add_segments("my-corpus", "strat-riff-t001",
    ...              [{"start_s": 0.5, "end_s": 2.0, "technique": "palm_mute"}],
    ...              origin="review")  # doctest: +SKIP
    ['seg-000001']
    """
    origin = _text("origin", origin, where="")
    if not origin:
        raise ManifestError("origin: say where the segments come from, e.g. 'review'")
    replace = [replace_column] if isinstance(replace_column, str) else list(replace_column or [])
    for column in replace:
        _check_column(column, where="replace_column: ")
    if not isinstance(segments, list) or not all(isinstance(s, dict) for s in segments):
        raise ManifestError("segments: give a list of {start_s, end_s, column: label} records")
    new_ids: list[str] = []

    def plan(manifest, current, history):
        duration = _take_duration(manifest, take, root)
        items = []
        if replace:
            hit = current["take"] == str(take)
            labelled = [current[c] != "" for c in replace if c in current]
            hit &= np.logical_or.reduce(labelled) if labelled else False
            for _, row in current[hit].iterrows():
                items.append({"id": str(row["id"]), "old": _row_dict(row), "new": None})
        number = _next_number(current, history)
        for i, seg in enumerate(segments):
            where = f"segment {i + 1}: "
            if "start_s" not in seg or "end_s" not in seg:
                raise ManifestError(f"{where}needs start_s and end_s (seconds of the take)")
            start, end = check_span(
                seg["start_s"],
                seg["end_s"],
                duration,
                decimals=TIME_DECIMALS,
                where=where,
                take=str(take),
            )
            record = {
                "id": f"{ID_PREFIX}{number + i:06d}",
                "take": str(take),
                "start_s": start,
                "end_s": end,
                "origin": origin,
            }
            for column, value in seg.items():
                if column in ("start_s", "end_s"):
                    continue
                text = _text(_check_column(column, where=where), value, where=where)
                if text:
                    record[column] = text
            items.append({"id": record["id"], "old": None, "new": record})
            new_ids.append(record["id"])
        return take, items

    extra = {"origin": origin}
    if replace:
        extra["replace_column"] = replace
    _edit(root, "add_segments", plan, who=who, expected_version=expected_version, extra=extra)
    return new_ids


def update_segment(
    root: str | os.PathLike,
    seg_id: str,
    changes: dict,
    *,
    expected_version: str | None = None,
    who: str | None = None,
) -> dict | None:
    """Move a segment's edges (``start_s``, ``end_s``) and/or relabel it (columns: text,
    "" or None clears one). Returns the history entry (its ``version`` is the new
    :func:`segments_version`), or None when nothing changed.
    """
    if not isinstance(changes, dict) or not changes:
        raise ManifestError('give the changes, e.g. {"end_s": 2.5} or {"technique": "bend"}')
    for column in changes:
        if column not in ("start_s", "end_s"):
            _check_column(column, where=f"segment {seg_id}: ")

    def plan(manifest, current, history):
        row = _segment(current, seg_id)
        old = _row_dict(row)
        new = dict(old)
        where = f"segment {seg_id}: "
        duration = _take_duration(manifest, old["take"], root)
        new["start_s"], new["end_s"] = check_span(
            changes.get("start_s", old["start_s"]),
            changes.get("end_s", old["end_s"]),
            duration,
            decimals=TIME_DECIMALS,
            where=where,
            take=old["take"],
        )
        for column, value in changes.items():
            if column in ("start_s", "end_s"):
                continue
            text = _text(column, value, where=where)
            if text:
                new[column] = text
            else:
                new.pop(column, None)
        return old["take"], [{"id": old["id"], "old": old, "new": new}]

    return _edit(root, "update_segment", plan, who=who, expected_version=expected_version)


def delete_segment(
    root: str | os.PathLike,
    seg_id: str,
    *,
    expected_version: str | None = None,
    who: str | None = None,
) -> dict | None:
    """Delete one segment (its id is never given out again). Returns the history entry."""

    def plan(manifest, current, history):
        row = _segment(current, seg_id)
        return str(row["take"]), [{"id": str(row["id"]), "old": _row_dict(row), "new": None}]

    return _edit(root, "delete_segment", plan, who=who, expected_version=expected_version)


# ---------------------------------------------------------------- undo


def is_segments_entry(entry: dict) -> bool:
    """Whether a history entry is a segments edit that names its rows well enough to undo."""
    items = entry.get("segments")
    return (
        entry.get("kind") == KIND
        and entry.get("action") != "undo"
        and isinstance(items, list)
        and bool(items)
        and all(
            isinstance(i, dict)
            and isinstance(i.get("id"), str)
            and all(i.get(k) is None or isinstance(i.get(k), dict) for k in ("old", "new"))
            for i in items
        )
    )


def undo_segments_entry(
    root: str | os.PathLike,
    entry: dict,
    *,
    who: str | None = None,
    expected_version: str | None = None,
) -> dict:
    """Put back the segments a history entry changed (called by ``review.undo_last``).

    Refused when a segment of that change has been changed since by something else.
    The undo is itself a history entry (``action: "undo"``, ``undoes: n``).
    """

    def plan(manifest, current, history):
        items = []
        for item in entry["segments"]:
            hit = current[current["id"] == item["id"]]
            now = _row_dict(hit.iloc[0]) if len(hit) else None
            if now != item["new"]:
                raise ManifestError(
                    f"cannot undo change {entry['n']}: segment {item['id']} has changed since; "
                    "fix it by hand"
                )
            items.append({"id": item["id"], "old": item["new"], "new": item["old"]})
        return entry.get("take", ""), items

    done = _edit(
        root,
        "undo",
        plan,
        who=who,
        expected_version=expected_version,
        extra={"undoes": entry["n"]},
    )
    if done is None:
        raise ManifestError(f"change {entry['n']} left nothing to undo")
    return done
