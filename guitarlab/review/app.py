"""The review web app's routes: the page, its JSON API, audio with range requests, pictures.

Routes only parse a request, call :mod:`guitarlab.corpus.review` (edits, history, undo),
the plotting helpers or :mod:`guitarlab.review.model`, and turn a ``GuitarlabError`` into
a 4xx with one line (``{"error": "..."}``). Audio and images are found by manifest id,
never by a path from the request, and read from the descriptor that was checked
(:mod:`guitarlab.review.files`). :class:`~guitarlab.review.security.TokenGuard` stands in
front of everything.
"""

from __future__ import annotations

import html
import json
import math
import os
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pandas as pd
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from guitarlab.corpus import review
from guitarlab.corpus.errors import GuitarlabError, ManifestConflict
from guitarlab.corpus.manifest import LABEL_COLUMNS, manifest_path
from guitarlab.corpus.segments import KIND as SEGMENTS_KIND
from guitarlab.review.files import FdResponse, Forbidden, NotFound, open_inside, read_opened
from guitarlab.review.security import TokenGuard, allowed_hosts
from guitarlab.review.segments import SEGMENTS_VERSION_HEADER, segment_routes

STATIC = Path(__file__).parent / "static"
FACETS = (*LABEL_COLUMNS, "take", "player", "status", "checks", "excluded")
COUNTED = LABEL_COLUMNS
AUDIO_TYPES = {
    ".wav": "audio/wav",
    ".flac": "audio/flac",
    ".aif": "audio/aiff",
    ".aiff": "audio/aiff",
}
MAX_POINTS = 4000
FACET_VALUES = 500  # a facet lists at most this many values (a take per row would not fit)
COUNT_CACHE = 32  # counts of this many filters are kept per manifest version
QUEUE_WAIT_S = 3600.0
MAX_BODY = 64 * 1024  # an edit is a few labels; anything larger is not one
TOKEN_META = '<meta name="guitarlab-token" content="{}">'
# a guitar pick in the header's colour: the tab is told apart from other local pages
FAVICON = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">'
    b'<path d="M16 30C9 22 3 15 3 9c0-5 6-7 13-7s13 2 13 7c0 6-6 13-13 21z" fill="#263238"/>'
    b'<path d="M9 10h14M16 6v14" stroke="#4fc3f7" stroke-width="3" stroke-linecap="round"/>'
    b"</svg>"
)


STATUS = ((review.UnknownRow, 404), (NotFound, 404), (Forbidden, 403), (ManifestConflict, 409))


def error_response(request: Request, exc: Exception) -> JSONResponse:
    """A ``GuitarlabError`` as a 4xx with one line of text."""
    status = next((code for cls, code in STATUS if isinstance(exc, cls)), 400)
    return JSONResponse({"error": " ".join(str(exc).split())}, status_code=status)


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
        from guitarlab.review.model import QueueJob

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
        frame, version = review.manifest_rows(self.root)
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
            flag = rows.get(review.EXCLUDED, pd.Series("", index=rows.index)).astype(str) != ""
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


def page_bounds(params) -> tuple[int, int | None]:
    """``(offset, limit)`` from the query; no ``limit`` means every row (older callers)."""
    out = []
    for name in ("offset", "limit"):
        text = params.get(name, "")
        if text == "":
            out.append(None)
            continue
        try:
            value = int(text)
        except ValueError:
            raise GuitarlabError(f"{name} must be a whole number, not {text!r}") from None
        if value < 0:
            raise GuitarlabError(f"{name} must be 0 or more, not {value}")
        out.append(value)
    return out[0] or 0, out[1]


def version_header(request: Request) -> str | None:
    """The version the client read, from ``If-Match`` (quotes and ``W/`` dropped)."""
    value = request.headers.get("if-match")
    if not value or value.strip() == "*":
        return None
    return value.strip().removeprefix("W/").strip('"')


def parse_body(raw: bytes) -> dict:
    """An edit's JSON body as a dict, or ``GuitarlabError`` (a 400) saying what is wrong.

    Refuses what would otherwise end as a 500 further in: text that is not UTF-8, a lone
    surrogate (``"\\ud800"``, which no file can store), nesting deep enough to exhaust
    the parser, ``NaN``/``Infinity``, and bodies over 64 KiB.

    Examples
    --------
    >>> parse_body(b'{"guitar": "les_paul"}')
    {'guitar': 'les_paul'}
    >>> parse_body(b'{"guitar": "\\\\ud800"}')
    Traceback (most recent call last):
    ...
    guitarlab.corpus.errors.GuitarlabError: the request body has a lone surrogate (\\ud800...); send UTF-8 text
    """
    if len(raw) > MAX_BODY:
        raise GuitarlabError(f"the request body is over {MAX_BODY // 1024} KiB; send one edit")

    def no_constant(name: str) -> float:
        raise ValueError(f"{name} is not a number JSON allows")

    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=no_constant)
    except UnicodeDecodeError:
        raise GuitarlabError("the request body is not UTF-8 text; send JSON") from None
    except RecursionError:
        raise GuitarlabError(
            "the request body is nested too deeply; send a flat JSON object"
        ) from None
    except ValueError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else "not JSON"
        raise GuitarlabError(f"the request body must be a JSON object ({reason})") from None
    if not isinstance(body, dict):
        raise GuitarlabError("the request body must be a JSON object")
    try:
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise GuitarlabError(
            "the request body has a lone surrogate (\\ud800...); send UTF-8 text"
        ) from None
    except (RecursionError, ValueError):
        raise GuitarlabError(
            "the request body is nested too deeply; send a flat JSON object"
        ) from None
    if any(isinstance(v, float) and not math.isfinite(v) for v in body.values()):
        raise GuitarlabError("the request body holds a number too large; send finite numbers")
    return body


async def json_body(request: Request) -> dict:
    """The request's JSON object (see :func:`parse_body`); reading stops past 64 KiB."""
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            break
    return parse_body(bytes(raw))


def create_app(
    corpus: str | os.PathLike,
    *,
    token: str,
    host: str = "127.0.0.1",
    run: str | os.PathLike | None = None,
    user: str | None = None,
    labels=None,
) -> Starlette:
    """The review app for ``corpus``, guarded by ``token`` and the Host check for ``host``.

    ``run`` (a run folder) adds the model's labels and the review queue; ``labels`` may
    stand in for it (anything with ``predict_row``, ``queue`` and ``label_column``).
    """
    if run is not None and labels is None:
        from guitarlab.review.model import RunLabels

        labels = RunLabels(run, corpus)
    state = Review(corpus, user=user, labels=labels)

    def edited(entry: dict | None, row_id: str, **extra) -> JSONResponse:
        snap = state.snapshot()
        frame, version = snap.frame, snap.version
        row = records(frame[frame["id"].astype(str) == row_id])
        body = {"change": entry, "version": version, "row": row[0] if row else None, **extra}
        return JSONResponse(body, headers={"ETag": f'"{version}"'})

    page = (STATIC / "index.html").read_text(encoding="utf-8")
    page = page.replace("<head>", "<head>\n" + TOKEN_META.format(html.escape(token)), 1)

    async def index(request: Request) -> Response:
        # the page's own script reads the token here and sends it with every edit
        # (X-Guitarlab-Token); another origin cannot read this page
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    async def list_rows(request: Request) -> JSONResponse:
        def work():
            params = dict(request.query_params)
            offset, limit = page_bounds(params)
            snap = state.snapshot()
            frame = snap.frame
            rows = filtered(frame, params, snap.checks)
            facets, cut = snap.facets()
            # counts depend on the filter, not on the sort or the page: kept per filter
            key = tuple(sorted((k, v) for k, v in params.items() if k not in UNCOUNTED))
            counts = snap.counts.get(key)
            if counts is None:
                counts = {
                    c: {
                        str(k): int(v)
                        for k, v in rows[c].astype(str).value_counts().sort_index().items()
                    }
                    for c in COUNTED
                    if c in rows
                }
                snap.counts[key] = counts
                while len(snap.counts) > COUNT_CACHE:
                    snap.counts.popitem(last=False)
            page = rows.iloc[offset:] if limit is None else rows.iloc[offset : offset + limit]
            body = {
                "version": snap.version,
                "total": len(frame),
                "shown": len(rows),
                "offset": offset,
                "limit": limit,
                "columns": [str(c) for c in frame.columns],
                "facets": facets,
                "facets_cut": cut,
                "counts": counts,
                "rows": records(page),
                "run": state.labels is not None,
            }
            return JSONResponse(body, headers={"ETag": f'"{snap.version}"'})

        return await run_in_threadpool(work)

    async def get_row(request: Request) -> JSONResponse:
        row_id = request.path_params["id"]

        def work():
            snap = state.snapshot()
            frame, version = snap.frame, snap.version
            row = review.row_of(frame, row_id)
            take = frame[frame["take"].astype(str) == str(row["take"])]
            from guitarlab.corpus.checks import findings_from_json

            try:
                findings = [f.as_dict() for f in findings_from_json(str(row.get("checks", "")))]
            except (ValueError, KeyError, TypeError):
                findings = [{"check": "checks", "severity": "warning", "message": "unreadable"}]
            editable = review.editable_columns(frame, row)  # no provenance
            body = {
                "version": version,
                "row": records(frame.loc[[row.name]])[0],
                "take": records(take.sort_values("tone", key=lambda t: t != "raw", kind="stable")),
                "checks": findings,
                "spans": [list(s) for s in review.take_spans(frame, str(row["take"]))],
                "duration_s": review.take_duration_s(frame, str(row["take"])),
                "editable": editable,
                "per_file": [c for c in editable if c in review.PER_FILE_COLUMNS],
                "choices": {c: snap.values(c)[:FACET_VALUES] for c in editable},  # suggestions
                "run": state.labels is not None,
                "label_column": getattr(state.labels, "label_column", None),
            }
            return JSONResponse(body, headers={"ETag": f'"{version}"'})

        return await run_in_threadpool(work)

    async def patch_row(request: Request) -> JSONResponse:
        row_id = request.path_params["id"]
        changes = await json_body(request)
        expect = version_header(request)

        def work():
            entry = review.relabel_take(
                state.root, row_id, changes, who=state.user, expect_version=expect
            )
            return edited(entry, row_id)

        return await run_in_threadpool(work)

    async def exclude(request: Request) -> JSONResponse:
        row_id = request.path_params["id"]
        body = await json_body(request)
        expect = version_header(request)
        kinds = [k for k in ("reason", "span", "remove_span", "include") if k in body]
        if len(kinds) != 1:
            raise GuitarlabError(
                'give one of {"reason": "..."}, {"span": [start_s, end_s]}, '
                '{"remove_span": [start_s, end_s]} or {"include": true}'
            )
        kind = kinds[0]

        def work():
            who = {"who": state.user, "expect_version": expect}
            if kind in ("span", "remove_span"):
                span = body[kind]
                if not isinstance(span, list) or len(span) != 2:
                    raise GuitarlabError(f"{kind} must be [start_s, end_s] in seconds")
                change = review.add_span if kind == "span" else review.remove_span
                entry = change(state.root, row_id, span[0], span[1], **who)
            elif kind == "reason":
                if not str(body["reason"] or "").strip():
                    raise GuitarlabError('give a reason to exclude, or {"include": true}')
                entry = review.exclude_row(state.root, row_id, str(body["reason"]), **who)
            else:
                entry = review.exclude_row(state.root, row_id, None, **who)
            return edited(entry, row_id)

        return await run_in_threadpool(work)

    async def row_dispatch(request: Request) -> Response:
        return await (patch_row if request.method == "PATCH" else get_row)(request)

    def manifest_row(row_id: str) -> pd.Series:
        return review.row_of(state.snapshot().frame, row_id)

    async def audio(request: Request) -> Response:
        row = await run_in_threadpool(manifest_row, request.path_params["id"])
        fd = await run_in_threadpool(state.open_audio, row)
        kind = AUDIO_TYPES.get(Path(str(row["path"])).suffix.lower(), "application/octet-stream")
        return FdResponse(fd, media_type=kind)

    async def waveform(request: Request) -> JSONResponse:
        try:
            points = min(MAX_POINTS, max(1, int(request.query_params.get("points", "1000"))))
        except ValueError:
            raise GuitarlabError("points must be a whole number") from None

        def work():
            from guitarlab.corpus.plotting import waveform_envelope

            row = manifest_row(request.path_params["id"])

            def make():
                audio, rate = state.read(row)
                lo, hi = waveform_envelope(audio, points)
                return {
                    "duration_s": round(len(audio) / rate, 4),
                    "min": np.round(lo, 4).tolist(),
                    "max": np.round(hi, 4).tolist(),
                }

            return JSONResponse(state.cached(("wave", row["id"], row["sha256"], points), make))

        return await run_in_threadpool(work)

    async def spectrogram(request: Request) -> Response:
        def work():
            from guitarlab.corpus.plotting import spectrogram_png

            row = manifest_row(request.path_params["id"])

            def make():
                audio, rate = state.read(row)
                return spectrogram_png(audio, rate)

            png = state.cached(("spec", row["id"], row["sha256"]), make)
            return Response(png, media_type="image/png", headers={"Cache-Control": "max-age=3600"})

        return await run_in_threadpool(work)

    def need_run() -> None:
        if state.labels is None:
            raise NotFound(
                "no run: start 'guitarlab review CORPUS --run RUN' to see a model's labels"
            )

    async def predictions(request: Request) -> JSONResponse:
        need_run()
        row = await run_in_threadpool(manifest_row, request.path_params["id"])
        return JSONResponse(await run_in_threadpool(state.labels.predict_row, row))

    def start_queue() -> dict:
        snap = state.snapshot()
        status = state.job.start(snap.frame, snap.version)
        return {**status, "label_column": state.labels.label_column}

    async def queue(request: Request) -> JSONResponse:
        """The ordered queue; waits for the background job (other requests go on meanwhile)."""
        need_run()

        def work():
            start_queue()
            rows = state.job.wait(QUEUE_WAIT_S)
            status = state.job.status()
            if rows is None:
                raise GuitarlabError(f"the review queue failed: {status['error'] or 'timed out'}")
            return JSONResponse({**status, "label_column": state.labels.label_column, "rows": rows})

        return await run_in_threadpool(work)

    async def queue_start(request: Request) -> JSONResponse:
        """Start labelling in the background; answers at once with the progress."""
        need_run()
        return JSONResponse(await run_in_threadpool(start_queue), status_code=202)

    async def queue_status(request: Request) -> JSONResponse:
        """``{"state": idle|running|done|failed, "done": n, "total": N}``, for the page to poll."""
        need_run()
        return JSONResponse({**state.job.status(), "label_column": state.labels.label_column})

    async def favicon(request: Request) -> Response:
        return Response(
            FAVICON, media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"}
        )

    async def history(request: Request) -> JSONResponse:
        skipped: list[int] = []
        entries = await run_in_threadpool(review.read_history, state.root, skipped=skipped)
        return JSONResponse({"entries": entries[::-1], "skipped_lines": skipped})

    async def undo(request: Request) -> JSONResponse:
        expect = version_header(request)
        # the last change may be a segment's: its staleness is the segments' own version
        expect_segments = request.headers.get(SEGMENTS_VERSION_HEADER, "").strip('" ') or None

        def work():
            entry = review.undo_last(
                state.root,
                who=state.user,
                expect_version=expect,
                expect_segments_version=expect_segments,
            )
            if entry.get("kind") == SEGMENTS_KIND:  # its version is the segments' new one
                return edited(entry, "", segments_version=entry["version"])
            return edited(entry, str(entry.get("row", "")))

        return await run_in_threadpool(work)

    routes = [
        Route("/", index),
        Route("/api/rows", list_rows),
        Route("/api/rows/{id}", row_dispatch, methods=["GET", "PATCH"]),
        Route("/api/rows/{id}/exclude", exclude, methods=["POST"]),
        Route("/api/rows/{id}/waveform", waveform),
        Route("/api/rows/{id}/spectrogram.png", spectrogram),
        Route("/api/rows/{id}/predictions", predictions),
        Route("/api/audio/{id}", audio),
        Route("/api/history", history),
        Route("/api/undo", undo, methods=["POST"]),
        Route("/api/queue", queue),
        Route("/api/queue/start", queue_start, methods=["POST"]),
        Route("/api/queue/status", queue_status),
        Route("/favicon.ico", favicon),
        *segment_routes(state),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(TokenGuard, token=token, hosts=allowed_hosts(host))],
        exception_handlers={GuitarlabError: error_response},
    )
