"""The corpus as the review app sees it: one manifest version and what is derived from it.

:class:`Review` is the app's state (the corpus, the user, a run's labels and queue, the
pictures cache), passed to every group of routes; :class:`Snapshot` is one version of
the manifest with its checks summary, facets and counts worked out once per version.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pandas as pd

from guitarlab.corpus import edits
from guitarlab.corpus.errors import GuitarlabError
from guitarlab.corpus.manifest import LABEL_COLUMNS, manifest_path
from guitarlab.review.files import open_inside, read_opened
from guitarlab.review.model import QueueJob

FACETS = (*LABEL_COLUMNS, "take", "player", "status", "checks", "excluded")
COUNTED = LABEL_COLUMNS
FACET_VALUES = 500  # a facet lists at most this many values (a take per row would not fit)
COUNT_CACHE = 32  # counts of this many filters are kept per manifest version


def _stamp(path: Path) -> tuple[int, ...] | None:
    """What changes whenever a file's bytes do (an append, an atomic replace, an edit)."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, info.st_dev)


class Snapshot:
    """One version of the manifest and what the app derives from it once per version.

    Why: at 100,000 rows reading the CSV, summarising every row's checks and listing the
    facets cost seconds; a page of rows must not pay that on every request.
    """

    def __init__(self, frame: pd.DataFrame, version: str, stamp) -> None:
        self.frame = frame
        self.version = version
        self.stamp = stamp
        self._checks: pd.Series | None = None
        self._facets: dict | None = None
        self.counts: OrderedDict = OrderedDict()
        self._values: dict[str, list[str]] = {}

    def values(self, column: str) -> list[str]:
        """A column's distinct non-empty values, sorted (a row's label choices), cached."""
        if column not in self._values:
            distinct = pd.Series(self.frame[column].astype(str).unique())
            self._values[column] = distinct[distinct != ""].sort_values().tolist()
        return self._values[column]

    def choices(self, column: str) -> list[str]:
        """A row's suggestions for ``column``: its first :data:`FACET_VALUES` values."""
        return self.values(column)[:FACET_VALUES]

    def counts_of(self, rows: pd.DataFrame, params: dict) -> dict[str, dict[str, int]]:
        """Each label column's value counts in ``rows``, the rows ``params`` filtered.

        Counts depend on the filter, not on the sort or the page: kept per filter, the
        last :data:`COUNT_CACHE` of them.
        """
        key = tuple(sorted((k, v) for k, v in params.items() if k not in UNCOUNTED))
        counts = self.counts.get(key)
        if counts is None:
            counts = {
                c: {
                    str(k): int(v)
                    for k, v in rows[c].astype(str).value_counts().sort_index().items()
                }
                for c in COUNTED
                if c in rows
            }
            self.counts[key] = counts
            while len(self.counts) > COUNT_CACHE:
                self.counts.popitem(last=False)
        return counts

    @property
    def checks(self) -> pd.Series:
        """Each row's :func:`checks_summary`, computed once."""
        if self._checks is None:
            texts = (
                self.frame["checks"]
                if "checks" in self.frame
                else pd.Series([""] * len(self.frame))
            )
            # each distinct text parsed once: most rows share theirs ("" or all clear)
            codes, distinct = pd.factorize(texts.astype(str).to_numpy(dtype=object))
            names = np.array([checks_summary(t) for t in distinct] + ["ok"], dtype=object)
            self._checks = pd.Series(names[codes], index=self.frame.index, dtype=object)
        return self._checks

    def facets(self) -> tuple[dict[str, list[str]], dict[str, int]]:
        """``(values to filter by per column, columns cut to FACET_VALUES -> their count)``."""
        if self._facets is None:
            facets, cut = {}, {}
            for column in FACETS:
                if column == "checks":
                    values = sorted({n for t in self.checks.unique() for n in t.split(",")})
                elif column == "excluded":
                    values = ["no", "yes"]
                elif column in self.frame:  # sorted by pandas: iterating 100k cells is slow
                    distinct = pd.Series(self.frame[column].astype(str).unique())
                    distinct = distinct[distinct != ""].sort_values()
                    if len(distinct) > FACET_VALUES:
                        cut[column] = len(distinct)
                    values = distinct.iloc[:FACET_VALUES].tolist()
                else:
                    continue
                if len(values) > FACET_VALUES:
                    cut[column] = len(values)
                    values = values[:FACET_VALUES]
                facets[column] = values
            self._facets = {"facets": facets, "cut": cut}
        return self._facets["facets"], self._facets["cut"]


class Review:
    """One corpus under review: the manifest, caches of pictures, the optional run."""

    def __init__(self, corpus: str | os.PathLike, *, user: str | None = None, labels=None):
        self.root = Path(corpus)
        self.user = user
        self.labels = labels  # a RunLabels (or anything with predict_row/queue/label_column)
        self.job = QueueJob(labels) if labels is not None else None
        self.cache: OrderedDict = OrderedDict()
        self._snapshot: Snapshot | None = None
        self.snapshot()  # a missing corpus fails now, with one line

    def snapshot(self) -> Snapshot:
        """The manifest as it is now; read again only when ``manifest.csv`` changed."""
        path = manifest_path(self.root)
        before = _stamp(path)
        snap = self._snapshot
        if snap is not None and before is not None and snap.stamp == before:
            return snap
        frame, version = edits.manifest_rows(self.root)
        # kept for the next request only if nothing wrote the file while it was read
        snap = Snapshot(frame, version, before if _stamp(path) == before else None)
        self._snapshot = snap
        return snap

    def cached(self, key: tuple, make):
        if key not in self.cache:
            self.cache[key] = make()
            while len(self.cache) > 64:
                self.cache.popitem(last=False)
        return self.cache[key]

    def open_audio(self, row: pd.Series) -> int:
        """An fd of a manifest row's file, checked to lie inside the corpus once opened."""
        return open_inside(self.root, str(row["path"]), row=str(row["id"]))

    def read(self, row: pd.Series):
        """The row's samples, decoded from the descriptor that was checked."""
        return read_opened(self.open_audio(row), name=str(row["path"]))


def records(frame: pd.DataFrame) -> list[dict]:
    """Manifest rows as JSON-ready dicts, plus ``checks_summary`` and ``duration_s``."""
    out = json.loads(frame.to_json(orient="records"))
    for item in out:
        item["checks_summary"] = checks_summary(item.get("checks") or "")
        rate, frames = item.get("sample_rate"), item.get("frames")
        item["duration_s"] = round(frames / rate, 3) if rate and frames else None
    return out


def checks_summary(text: str) -> str:
    """The names of a row's check warnings and errors (``clipping,hum``), or ``ok``."""
    from guitarlab.corpus.checks import findings_from_json

    try:
        findings = findings_from_json(text)
    except (ValueError, KeyError, TypeError):
        return "unreadable"
    names = sorted({f.check for f in findings if f.severity in ("warning", "error")})
    return ",".join(names) or "ok"


PAGE_PARAMS = ("q", "sort", "order", "token", "limit", "offset")
UNCOUNTED = ("sort", "order", "token", "limit", "offset")  # change the order, not the counts


def filtered(frame: pd.DataFrame, params, checks: pd.Series | None = None) -> pd.DataFrame:
    """Rows matching every ``column=value`` filter, ``q`` (part of the id), sorted by ``sort``.

    ``checks`` is each row's :func:`checks_summary` when the caller has it already.
    """
    if checks is None:
        checks = [checks_summary(t) for t in frame.get("checks", [""] * len(frame))]
    rows = frame.assign(checks_summary=checks)
    for column, value in params.items():
        if column in PAGE_PARAMS or value == "":
            continue
        if column == "checks":
            rows = rows[rows["checks_summary"].str.split(",").apply(lambda n, v=value: v in n)]
        elif column == "excluded":
            flag = rows.get(edits.EXCLUDED, pd.Series("", index=rows.index)).astype(str) != ""
            rows = rows[flag == (value in ("yes", "true", "1"))]
        elif column in rows.columns:
            rows = rows[rows[column].astype(str) == value]
        else:
            raise GuitarlabError(
                f"unknown column {column!r} to filter by; known: {', '.join(map(str, frame.columns))}"
            )
    if params.get("q"):
        rows = rows[rows["id"].astype(str).str.contains(params["q"].lower(), regex=False)]
    sort = params.get("sort") or "id"
    if sort not in rows.columns:
        raise GuitarlabError(f"unknown column {sort!r} to sort by")
    return rows.sort_values(
        sort, ascending=params.get("order", "asc") != "desc", kind="stable"
    ).drop(columns="checks_summary")
