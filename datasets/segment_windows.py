"""Windows labelled by segments: ``dataset build --label COL --from-segments`` (issue 30).

A segment is a span of a take's time with label columns (:mod:`guitarlab.corpus.segments`).
Every render of a take keeps the take's timing, so a segment labels the same time in every
tone, and whatever a build decides from segments it decides per take, on one timeline.

Pure planning on numpy and pandas, no audio:

- :meth:`SegmentLabels.window_labels`: the label each window takes, the one of the segment
  (of the label column) it lies wholly in; windows in no segment or across two get none
  and are left out (and counted, by :meth:`SegmentLabels.left_out`).
- :func:`condition_spans`: the time a ``--where``/``--test-where`` that names segment
  columns selects, per file, as sample spans: the take's timeline is cut at every segment
  edge, each piece gets its segments' labels beside the file's manifest columns, and the
  pieces the condition selects are merged.
- :func:`plan_segment_split`: ``--test-where`` over segment columns holds out that TIME of
  every take, in every tone (validation: a span beside it), as ``TakeSpans`` the rest of
  the build and ``dataset check`` already read.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from guitarlab.corpus.errors import DatasetError
from guitarlab.corpus.segments import label_columns, segment_label_for_spans, segments_of
from guitarlab.datasets.select import query_columns, query_rows, select_rows
from guitarlab.datasets.splits import (
    Span,
    SplitPlan,
    TakeSpans,
    _draw_span,
    _take_rng,
    val_span_samples,
)

# The split method of a build whose test time is named by segments.
SEGMENT_SPLIT = "segment"
# Windows labelled at a time (against the segments near them only).
LABEL_BLOCK = 2048


def merge_spans(spans: list[Span]) -> list[Span]:
    """Sorted spans with overlapping or touching ones joined.

    Examples
    --------
    >>> merge_spans([(5, 9), (0, 2), (2, 4), (8, 12)])
    [(0, 4), (5, 12)]
    """
    out: list[list[int]] = []
    for start, end in sorted((int(s), int(e)) for s, e in spans if e > s):
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return [(s, e) for s, e in out]


def inside_spans(starts: np.ndarray, length: int, spans: list[Span]) -> np.ndarray:
    """True for each window (``starts``, ``length`` samples) wholly inside one of ``spans``."""
    starts = np.asarray(starts, dtype=np.int64)
    hit = np.zeros(starts.shape, dtype=bool)
    for s, e in merge_spans(spans):
        hit |= (starts >= s) & (starts + int(length) <= e)
    return hit


@dataclass
class SegmentLabels:
    """A corpus's segments as a build uses them: the label column, per take, in samples."""

    segments: pd.DataFrame
    label: str
    rate: int
    window: int
    _of: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)

    @property
    def columns(self) -> list[str]:
        """The segments' label columns (``technique``, ``pitch``, ...)."""
        return label_columns(self.segments)

    def of(self, take: str) -> pd.DataFrame:
        """One take's segments, sorted by start."""
        take = str(take)
        if take not in self._of:
            self._of[take] = segments_of(self.segments, take)
        return self._of[take]

    def labelled(self, take: str) -> pd.DataFrame:
        """The take's segments that label the build's column."""
        segs = self.of(take)
        return segs[segs[self.label].astype(str).str.strip() != ""] if len(segs) else segs

    def take_labels(self, take: str) -> list[str]:
        """The labels the take's segments give the build's column, sorted."""
        return sorted(set(self.labelled(take)[self.label].astype(str)))

    def window_labels(self, take: str, starts: np.ndarray) -> list[str | None]:
        """Per window at ``starts`` (samples of the take), its segment's label, or None."""
        starts = np.asarray(starts, dtype=np.int64)
        segs = self.labelled(take)
        seg_start = segs["start_s"].to_numpy(float)
        seg_end = segs["end_s"].to_numpy(float)
        out: list[str | None] = []
        # a block of windows at a time, against the segments near it: a long take with
        # many notes costs windows x nearby segments, not windows x all segments
        for first in range(0, starts.size, LABEL_BLOCK):
            a = starts[first : first + LABEL_BLOCK] / self.rate
            b = (starts[first : first + LABEL_BLOCK] + self.window) / self.rate
            near = (seg_start < b.max() + 1.0) & (seg_end > a.min() - 1.0)
            out += segment_label_for_spans(segs[near], self.label, a, b)
        return out

    def touches(self, take: str, starts: np.ndarray) -> np.ndarray:
        """True for each window that overlaps a segment of the label column at all (so a
        window without a label there straddles segment edges rather than lying in none)."""
        starts = np.asarray(starts, dtype=np.int64)
        segs = self.labelled(take)
        time = merge_spans(
            [
                (math.floor(a * self.rate), math.ceil(b * self.rate))
                for a, b in zip(segs["start_s"], segs["end_s"], strict=True)
            ]
        )
        if not time or not starts.size:
            return np.zeros(starts.shape, dtype=bool)
        lo = np.array([s for s, _ in time], dtype=np.int64)
        hi = np.array([e for _, e in time], dtype=np.int64)
        # the last labelled stretch starting before the window ends must end after it starts
        last = np.searchsorted(lo, starts + self.window, side="left") - 1
        return (last >= 0) & (hi[np.maximum(last, 0)] > starts)


def load_segment_labels(corpus, label: str, *, rate: int, window: int) -> SegmentLabels:
    """The corpus's segments for a build labelled by their column ``label``; refuses a
    corpus without segments or without that column, in one line."""
    from guitarlab.corpus.errors import GuitarlabError
    from guitarlab.corpus.segments import SEGMENTS_NAME, load_segments

    try:
        segments = load_segments(corpus)
    except GuitarlabError as exc:
        raise DatasetError(str(exc)) from None
    if segments.empty:
        raise DatasetError(
            f"{corpus}: no segments ({SEGMENTS_NAME} is missing or empty) for --from-segments; "
            "label time first with 'guitarlab labels import FILE --corpus C --take TAKE'"
        )
    columns = label_columns(segments)
    if label not in columns or not (segments[label].astype(str).str.strip() != "").any():
        raise DatasetError(
            f"--label {label}: no segment labels that column; segment columns: "
            f"{', '.join(columns) or 'none'}"
        )
    return SegmentLabels(segments, label, int(rate), int(window))


def _query(table: pd.DataFrame, expression: str, *, option: str) -> pd.DataFrame:
    """``query_rows`` with its error as a DatasetError (one line)."""
    from guitarlab.corpus.errors import GuitarlabError

    try:
        return query_rows(table, expression, option=option)
    except GuitarlabError as exc:
        raise DatasetError(str(exc)) from None


def names_segment_columns(expression: str | None, segments: SegmentLabels | None) -> bool:
    """Whether a ``--where``-style condition names a segment label column."""
    if not expression or segments is None:
        return False
    return bool(query_columns(expression, segments.columns))


def _pieces(segs: pd.DataFrame, end_s: float) -> tuple[np.ndarray, np.ndarray]:
    """The take's timeline ``[0, end_s)`` cut at every segment edge: (starts, ends) seconds."""
    edges = np.concatenate(
        [[0.0, float(end_s)], segs["start_s"].to_numpy(float), segs["end_s"].to_numpy(float)]
    )
    edges = np.unique(np.clip(edges, 0.0, float(end_s)))
    return edges[:-1], edges[1:]


def condition_spans(
    rows: pd.DataFrame,
    segments: SegmentLabels,
    expression: str,
    *,
    option: str,
) -> dict[str, list[Span]]:
    """Per file id, the sample spans of its take where ``expression`` holds.

    Each piece of a take's timeline between segment edges carries, for every segment
    column, the label of the segment holding it ("" where none does), beside the file's
    own manifest columns (a segment column hides a manifest column of the same name), and
    the condition is evaluated once over all pieces of all files. ``rows`` needs ``id``,
    ``take`` and ``frames`` (samples at the build's rate).
    """
    seg_columns = segments.columns
    named = query_columns(expression, [*rows.columns, *seg_columns])
    row_columns = [c for c in named if c not in seg_columns and c in rows.columns]
    parts = []
    for take, group in rows.groupby(rows["take"].astype(str), sort=True):
        segs = segments.of(take)
        starts, ends = _pieces(segs, float(group["frames"].max()) / segments.rate)
        piece = {"_start": starts, "_end": ends}
        for column in seg_columns:
            labels = segment_label_for_spans(segs, column, starts, ends)
            piece[column] = ["" if value is None else value for value in labels]
        piece = pd.DataFrame(piece)
        for _, row in group.iterrows():
            parts.append(piece.assign(_file=str(row["id"]), **{c: row[c] for c in row_columns}))
    table = pd.concat(parts, ignore_index=True)
    picked = _query(table, expression, option=option)
    out: dict[str, list[Span]] = {str(i): [] for i in rows["id"]}
    rate = segments.rate
    for file_id, group in picked.groupby("_file", sort=False):
        out[str(file_id)] = merge_spans(
            [
                (math.floor(a * rate + 1e-6), math.ceil(b * rate - 1e-6))
                for a, b in zip(group["_start"], group["_end"], strict=True)
            ]
        )
    return out


def take_condition_spans(
    rows: pd.DataFrame, per_file: Mapping[str, list[Span]], *, option: str, expression: str
) -> dict[str, list[Span]]:
    """Per take, the time a held-out condition names; refuses one that names different
    time in two files of a take (a tone), which would train on time another tone tests."""
    out: dict[str, list[Span]] = {}
    for take, group in rows.groupby(rows["take"].astype(str), sort=True):
        ids = [str(i) for i in group["id"]]
        first = per_file[ids[0]]
        for other in ids[1:]:
            if per_file[other] != first:
                raise DatasetError(
                    f"{option} {expression!r} names different time in {ids[0]} and {other} "
                    f"(take {take}); a held-out span must be the same in every file of a take, "
                    "so name it by segment and take columns, not by tone or file"
                )
        if first:
            out[take] = first
    if not out:
        raise DatasetError(
            f"{option} {expression!r} selects no time of any take; check the segment labels "
            "with 'guitarlab labels list'"
        )
    return out


def plan_segment_split(
    rows: pd.DataFrame,
    test_time: Mapping[str, list[Span]],
    *,
    window: int,
    hop: int,
    val: str,
    val_fraction: float,
    seed: int,
    val_time: Mapping[str, list[Span]] | None = None,
    offsets: Mapping[str, int] | None = None,
) -> SplitPlan:
    """Hold out the named time of every take (in every tone): ``--test-where`` over segments.

    ``test_time`` (and ``val_time``, from ``--val-where``) are samples of each take's
    timeline. Without ``val_time``, ``val="span"`` draws one validation span per take on
    the window grid beside its test time (none where no room is left: noted). ``offsets``
    (``--trim-silence``) are taken off here because the build shifts every plan by them.
    """
    if val == "take":
        raise DatasetError(
            "--test-where over segment columns holds out time inside takes, not whole takes; "
            "use --val span (the default) or --val-where over segment columns"
        )
    offsets = dict(offsets or {})
    plan = SplitPlan(split=SEGMENT_SPLIT, val=val, takes={}, leaky=val == "random")
    frames_of = rows.groupby(rows["take"].astype(str))["frames"].min()
    no_room = []
    for take, frames in frames_of.items():
        shift = int(offsets.get(take, 0))
        frames = int(frames) - shift
        test = [(s - shift, e - shift) for s, e in test_time.get(take, [])]
        vspans: list[Span] = []
        if val_time is not None:
            vspans = [(s - shift, e - shift) for s, e in val_time.get(take, [])]
            clash = [(a, b) for a, b in vspans for s, e in test if a < e and s < b]
            if clash:
                raise DatasetError(
                    f"take {take}: --val-where and --test-where both name the samples "
                    f"{clash[0][0]}-{clash[0][1]}; make the two conditions disjoint"
                )
        elif val == "span" and val_fraction > 0:
            held = sum(e - s for s, e in test)
            vlen = val_span_samples(frames, held, window=window, val_fraction=val_fraction)
            rng = _take_rng(seed, take, "segment-val")
            try:
                vspans = [_draw_span(rng, frames, vlen, hop, test, what="validation", take=take)]
            except DatasetError:
                no_room.append(take)
        plan.takes[take] = TakeSpans(take, frames, "train", test, vspans)
    if no_room:
        plan.notes.append(
            f"{len(no_room)} take(s) have no room for a validation span beside their test "
            f"time (e.g. {no_room[0]}); they give validation no windows"
        )
    if plan.leaky:
        plan.notes.append(
            "val='random' picks validation windows at random: they share time with training "
            "windows of other tones of the same take, so validation scores are optimistic (leaky)"
        )
    return plan


# ---------------------------------------------------------------- the build's pieces

# Windows a build from segments leaves out, by why: across a segment edge (two segments,
# or a segment and unlabelled time), in no segment of the label column, and outside the
# time a --where over segment columns keeps.
LEFT_OUT = ("windows_straddling", "windows_in_no_segment", "windows_outside_where")


def segment_split_options(
    split: str | None,
    val: str | None,
    seg_test: bool,
    seg_val: bool,
    val_where: str | None,
    test_groups,
    held_out_from,
    same_span_all: bool,
) -> tuple[str, str]:
    """``(split, val)`` for a ``--test-where`` over segment columns; refuses, in one line,
    the options that hold out something else."""
    if not seg_test:
        raise DatasetError(
            "--val-where names segment columns (time inside takes); name the test time the "
            "same way, with --test-where over segment columns"
        )
    if val_where and not seg_val:
        raise DatasetError(
            "--test-where names segment columns (time inside takes) but --val-where names "
            "whole takes; name both over segment columns, or leave --val-where out"
        )
    if split is not None:
        raise DatasetError(
            f"--test-where over segment columns names the test time itself; leave out "
            f"--split {split}"
        )
    if test_groups:
        raise DatasetError("give --test-where or --test-groups, not both")
    if held_out_from:
        raise DatasetError(
            "--held-out-from keeps an old dataset's spans, but --test-where over segment "
            "columns names them anew; drop one of the two"
        )
    if same_span_all:
        raise DatasetError(
            "--same-span-all draws one test span for all takes, but --test-where over segment "
            "columns names the test time; drop one of the two"
        )
    val = "span" if val is None else val
    if val_where and val != "span":
        raise DatasetError(f"--val-where names the validation time; leave out --val {val}")
    if val == "take":
        raise DatasetError(
            "--test-where over segment columns holds out time inside takes, not whole takes; "
            "use --val span (the default) or --val-where over segment columns"
        )
    return SEGMENT_SPLIT, val


def segment_rows(
    manifest: pd.DataFrame, segs: SegmentLabels, where: str | None
) -> tuple[pd.DataFrame, list[str]]:
    """The rows of the takes that have segments of the label column, and the build's notes
    (one naming the takes left out), each row with the label column set to its take's
    segment labels joined by ``+`` (what a take split stratifies by and ``dataset.json``
    records per file)."""
    rows = select_rows(manifest, label=None, where=where)  # the labels are the segments'
    takes = rows["take"].astype(str)
    labelled = {t for t in set(takes) if segs.take_labels(t)}
    missing = sorted(set(takes) - labelled)
    if not labelled:
        raise DatasetError(
            f"--from-segments: no selected take has a {segs.label!r} segment; label time with "
            "'guitarlab labels import' or the review page"
        )
    notes = [
        f"--from-segments: {len(missing)} take(s) without a {segs.label!r} segment left "
        f"out (e.g. {missing[0]})"
    ] if missing else []  # fmt: skip
    rows = rows[takes.isin(labelled)].reset_index(drop=True)
    joined = rows["take"].astype(str).map(lambda t: "+".join(segs.take_labels(t)))
    return rows.assign(**{segs.label: joined}), notes


def segment_layout(
    layout: Mapping[str, np.ndarray],
    segs: SegmentLabels,
    take: str,
    kept_time: list[Span] | None = None,
) -> dict[str, np.ndarray]:
    """One file's windows (``{"train": starts, ...}``) labelled by the take's segments.

    Adds ``labels:<split>`` (each kept window's label, an object array) and the counts of
    :data:`LEFT_OUT` (one-element arrays); windows no single segment labels, and those
    outside ``kept_time`` (a ``--where`` over segment columns), are taken out.
    """
    from guitarlab.datasets.splits import SPLITS

    out: dict[str, np.ndarray] = {"dropped": layout["dropped"]}
    left = dict.fromkeys(LEFT_OUT, 0)
    for name in SPLITS:
        st = np.asarray(layout[name], dtype=np.int64)
        if kept_time is not None:
            inside = inside_spans(st, segs.window, kept_time)
            left["windows_outside_where"] += int((~inside).sum())
            st = st[inside]
        labels = np.array(segs.window_labels(take, st) + [""], dtype=object)[:-1]
        none = np.array([lab is None for lab in labels], dtype=bool)
        touches = segs.touches(take, st[none])
        left["windows_straddling"] += int(touches.sum())
        left["windows_in_no_segment"] += int((~touches).sum())
        out[name] = st[~none]
        out[f"labels:{name}"] = labels[~none]
    for key, n in left.items():
        out[key] = np.array([n])
    return out


def segment_summary(
    segs: SegmentLabels, rows: pd.DataFrame, left: Mapping[str, int], where: str | None
) -> dict:
    """What ``dataset.json["segments"]`` records, and the build's note line (``note``)."""
    takes = sorted(set(rows["take"].astype(str)))
    n_segments = sum(len(segs.labelled(t)) for t in takes)
    info = {
        "column": segs.label,
        "takes": len(takes),
        "segments": int(n_segments),
        **{key: int(left.get(key, 0)) for key in LEFT_OUT},
        "where": where,
    }
    note = (
        f"--from-segments: windows labelled by {n_segments} {segs.label!r} segment(s) of "
        f"{len(takes)} take(s), in every tone; left out: {info['windows_straddling']} "
        f"window(s) across a segment edge, {info['windows_in_no_segment']} in no segment"
    )
    if where:
        note += f", {info['windows_outside_where']} outside the time --where {where!r} keeps"
    return {**info, "note": note}
