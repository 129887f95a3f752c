"""The review app's routes, in groups: the page, rows, audio and pictures, edits, the queue.

Each group is a function of the app's state (a :class:`~guitarlab.review.state.Review`)
that returns its routes; :func:`~guitarlab.review.app.create_app` puts them together.
A route parses the request, runs its work off the event loop (``run_in_threadpool``:
reading the manifest or decoding audio must not stall other requests) and answers; the
work is a plain function of the state, named after what it answers.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from guitarlab.corpus import edits
from guitarlab.corpus.checks import findings_from_json
from guitarlab.corpus.errors import GuitarlabError
from guitarlab.corpus.segments import KIND as SEGMENTS_KIND
from guitarlab.review.files import FdResponse, NotFound
from guitarlab.review.http import json_body, page_bounds, version_header
from guitarlab.review.segments import SEGMENTS_VERSION_HEADER
from guitarlab.review.state import Review, filtered, records

STATIC = Path(__file__).parent / "static"
AUDIO_TYPES = {
    ".wav": "audio/wav",
    ".flac": "audio/flac",
    ".aif": "audio/aiff",
    ".aiff": "audio/aiff",
}
MAX_POINTS = 4000
QUEUE_WAIT_S = 3600.0
TOKEN_META = '<meta name="guitarlab-token" content="{}">'
# a guitar pick in the header's colour: the tab is told apart from other local pages
FAVICON = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">'
    b'<path d="M16 30C9 22 3 15 3 9c0-5 6-7 13-7s13 2 13 7c0 6-6 13-13 21z" fill="#263238"/>'
    b'<path d="M9 10h14M16 6v14" stroke="#4fc3f7" stroke-width="3" stroke-linecap="round"/>'
    b"</svg>"
)


# ------------------------------------------------------------------ the page


def page_routes(token: str) -> list[Route]:
    """``/`` (the page, with the token for its script) and ``/favicon.ico``."""
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    page = page.replace("<head>", "<head>\n" + TOKEN_META.format(html.escape(token)), 1)

    async def index(request: Request) -> Response:
        # the page's own script reads the token here and sends it with every edit
        # (X-Guitarlab-Token); another origin cannot read this page
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    async def favicon(request: Request) -> Response:
        return Response(
            FAVICON, media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"}
        )

    return [Route("/", index), Route("/favicon.ico", favicon)]


# ------------------------------------------------------------------ rows


def rows_page(state: Review, params: dict) -> JSONResponse:
    """``GET /api/rows``: one page of the filtered, sorted rows, with totals and facets."""
    offset, limit = page_bounds(params)
    snap = state.snapshot()
    frame = snap.frame
    rows = filtered(frame, params, snap.checks)
    facets, cut = snap.facets()
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
        "counts": snap.counts_of(rows, params),
        "rows": records(page),
        "run": state.labels is not None,
    }
    return JSONResponse(body, headers={"ETag": f'"{snap.version}"'})


def row_view(state: Review, row_id: str) -> JSONResponse:
    """``GET /api/rows/{id}``: the row, its take, checks, spans and what may be edited."""
    snap = state.snapshot()
    frame, version = snap.frame, snap.version
    row = edits.row_of(frame, row_id)
    take = frame[frame["take"].astype(str) == str(row["take"])]
    try:
        findings = [f.as_dict() for f in findings_from_json(str(row.get("checks", "")))]
    except (ValueError, KeyError, TypeError):
        findings = [{"check": "checks", "severity": "warning", "message": "unreadable"}]
    editable = edits.editable_columns(frame, row)  # no provenance
    body = {
        "version": version,
        "row": records(frame.loc[[row.name]])[0],
        "take": records(take.sort_values("tone", key=lambda t: t != "raw", kind="stable")),
        "checks": findings,
        "spans": [list(s) for s in edits.take_spans(frame, str(row["take"]))],
        "duration_s": edits.take_duration_s(frame, str(row["take"])),
        "editable": editable,
        "per_file": [c for c in editable if c in edits.PER_FILE_COLUMNS],
        "choices": {c: snap.choices(c) for c in editable},  # suggestions
        "run": state.labels is not None,
        "label_column": getattr(state.labels, "label_column", None),
    }
    return JSONResponse(body, headers={"ETag": f'"{version}"'})


def edited(state: Review, entry: dict | None, row_id: str, **extra) -> JSONResponse:
    """What every edit answers: the change, the new version and the row as it is now."""
    snap = state.snapshot()
    frame, version = snap.frame, snap.version
    row = records(frame[frame["id"].astype(str) == row_id])
    body = {"change": entry, "version": version, "row": row[0] if row else None, **extra}
    return JSONResponse(body, headers={"ETag": f'"{version}"'})


def relabeled(state: Review, row_id: str, changes: dict, expect: str | None) -> JSONResponse:
    """``PATCH /api/rows/{id}``: the take's labels (or the file's own) changed."""
    entry = edits.relabel_take(state.root, row_id, changes, who=state.user, expect_version=expect)
    return edited(state, entry, row_id)


def row_routes(state: Review) -> list[Route]:
    """``/api/rows`` (a page of rows) and ``/api/rows/{id}`` (one row; PATCH relabels it)."""

    async def list_rows(request: Request) -> JSONResponse:
        return await run_in_threadpool(rows_page, state, dict(request.query_params))

    async def one_row(request: Request) -> JSONResponse:
        row_id = request.path_params["id"]
        if request.method != "PATCH":
            return await run_in_threadpool(row_view, state, row_id)
        changes = await json_body(request)
        expect = version_header(request)
        return await run_in_threadpool(relabeled, state, row_id, changes, expect)

    return [
        Route("/api/rows", list_rows),
        Route("/api/rows/{id}", one_row, methods=["GET", "PATCH"]),
    ]


# ------------------------------------------------------------------ audio and pictures


def waveform_of(state: Review, row_id: str, points: int) -> JSONResponse:
    """``GET /api/rows/{id}/waveform``: the row's envelope in ``points`` pairs, cached."""
    from guitarlab.corpus.figures import waveform_envelope  # matplotlib: loaded when used

    row = manifest_row(state, row_id)

    def make() -> dict:
        audio, rate = state.read(row)
        lo, hi = waveform_envelope(audio, points)
        return {
            "duration_s": round(len(audio) / rate, 4),
            "min": np.round(lo, 4).tolist(),
            "max": np.round(hi, 4).tolist(),
        }

    return JSONResponse(state.cached(("wave", row["id"], row["sha256"], points), make))


def spectrogram_of(state: Review, row_id: str) -> Response:
    """``GET /api/rows/{id}/spectrogram.png``: the row's spectrogram picture, cached."""
    from guitarlab.corpus.figures import spectrogram_png  # matplotlib: loaded when used

    row = manifest_row(state, row_id)

    def make() -> bytes:
        audio, rate = state.read(row)
        return spectrogram_png(audio, rate)

    png = state.cached(("spec", row["id"], row["sha256"]), make)
    return Response(png, media_type="image/png", headers={"Cache-Control": "max-age=3600"})


def manifest_row(state: Review, row_id: str) -> pd.Series:
    """The manifest row ``row_id`` as it is now (``UnknownRow``, a 404, when there is none)."""
    return edits.row_of(state.snapshot().frame, row_id)


def media_routes(state: Review) -> list[Route]:
    """A row's audio (range requests), waveform and spectrogram, found by manifest id."""

    async def audio(request: Request) -> Response:
        row = await run_in_threadpool(manifest_row, state, request.path_params["id"])
        fd = await run_in_threadpool(state.open_audio, row)
        kind = AUDIO_TYPES.get(Path(str(row["path"])).suffix.lower(), "application/octet-stream")
        return FdResponse(fd, media_type=kind)

    async def waveform(request: Request) -> JSONResponse:
        try:
            points = min(MAX_POINTS, max(1, int(request.query_params.get("points", "1000"))))
        except ValueError:
            raise GuitarlabError("points must be a whole number") from None
        return await run_in_threadpool(waveform_of, state, request.path_params["id"], points)

    async def spectrogram(request: Request) -> Response:
        return await run_in_threadpool(spectrogram_of, state, request.path_params["id"])

    return [
        Route("/api/rows/{id}/waveform", waveform),
        Route("/api/rows/{id}/spectrogram.png", spectrogram),
        Route("/api/audio/{id}", audio),
    ]


# ------------------------------------------------------------------ edits


def exclusion(state: Review, row_id: str, body: dict, expect: str | None) -> JSONResponse:
    """``POST /api/rows/{id}/exclude``: exclude the take, add or remove a span, include it."""
    kinds = [k for k in ("reason", "span", "remove_span", "include") if k in body]
    if len(kinds) != 1:
        raise GuitarlabError(
            'give one of {"reason": "..."}, {"span": [start_s, end_s]}, '
            '{"remove_span": [start_s, end_s]} or {"include": true}'
        )
    kind = kinds[0]
    who = {"who": state.user, "expect_version": expect}
    if kind in ("span", "remove_span"):
        span = body[kind]
        if not isinstance(span, list) or len(span) != 2:
            raise GuitarlabError(f"{kind} must be [start_s, end_s] in seconds")
        change = edits.add_span if kind == "span" else edits.remove_span
        entry = change(state.root, row_id, span[0], span[1], **who)
    elif kind == "reason":
        if not str(body["reason"] or "").strip():
            raise GuitarlabError('give a reason to exclude, or {"include": true}')
        entry = edits.exclude_row(state.root, row_id, str(body["reason"]), **who)
    else:
        entry = edits.exclude_row(state.root, row_id, None, **who)
    return edited(state, entry, row_id)


def undone(state: Review, expect: str | None, expect_segments: str | None) -> JSONResponse:
    """``POST /api/undo``: the last change put back (a label, an exclusion or a segment)."""
    entry = edits.undo_last(
        state.root,
        who=state.user,
        expect_version=expect,
        expect_segments_version=expect_segments,
    )
    if entry.get("kind") == SEGMENTS_KIND:  # its version is the segments' new one
        return edited(state, entry, "", segments_version=entry["version"])
    return edited(state, entry, str(entry.get("row", "")))


def edit_routes(state: Review) -> list[Route]:
    """Exclusions, the history of changes and undo (relabels are ``row_routes``' PATCH)."""

    async def exclude(request: Request) -> JSONResponse:
        body = await json_body(request)
        row_id, expect = request.path_params["id"], version_header(request)
        return await run_in_threadpool(exclusion, state, row_id, body, expect)

    async def history(request: Request) -> JSONResponse:
        skipped: list[int] = []
        entries = await run_in_threadpool(edits.read_history, state.root, skipped=skipped)
        return JSONResponse({"entries": entries[::-1], "skipped_lines": skipped})

    async def undo(request: Request) -> JSONResponse:
        expect = version_header(request)
        # the last change may be a segment's: its staleness is the segments' own version
        expect_segments = request.headers.get(SEGMENTS_VERSION_HEADER, "").strip('" ') or None
        return await run_in_threadpool(undone, state, expect, expect_segments)

    return [
        Route("/api/rows/{id}/exclude", exclude, methods=["POST"]),
        Route("/api/history", history),
        Route("/api/undo", undo, methods=["POST"]),
    ]


# ------------------------------------------------------------------ a run's labels


def need_run(state: Review) -> None:
    """A 404 with one line when the app was started without a run."""
    if state.labels is None:
        raise NotFound("no run: start 'guitarlab review CORPUS --run RUN' to see a model's labels")


def start_queue(state: Review) -> dict:
    """Start labelling the manifest as it is now in the background; its progress."""
    snap = state.snapshot()
    status = state.job.start(snap.frame, snap.version)
    return {**status, "label_column": state.labels.label_column}


def queue_rows(state: Review) -> JSONResponse:
    """``GET /api/queue``: the ordered queue, once the background job has it."""
    start_queue(state)
    rows = state.job.wait(QUEUE_WAIT_S)
    status = state.job.status()
    if rows is None:
        raise GuitarlabError(f"the review queue failed: {status['error'] or 'timed out'}")
    return JSONResponse({**status, "label_column": state.labels.label_column, "rows": rows})


def queue_routes(state: Review) -> list[Route]:
    """A row's predictions and the review queue; each a 404 with one line without a run."""

    async def predictions(request: Request) -> JSONResponse:
        need_run(state)
        row = await run_in_threadpool(manifest_row, state, request.path_params["id"])
        return JSONResponse(await run_in_threadpool(state.labels.predict_row, row))

    async def queue(request: Request) -> JSONResponse:
        """The ordered queue; waits for the background job (other requests go on meanwhile)."""
        need_run(state)
        return await run_in_threadpool(queue_rows, state)

    async def queue_start(request: Request) -> JSONResponse:
        """Start labelling in the background; answers at once with the progress."""
        need_run(state)
        return JSONResponse(await run_in_threadpool(start_queue, state), status_code=202)

    async def queue_status(request: Request) -> JSONResponse:
        """``{"state": idle|running|done|failed, "done": n, "total": N}``, for the page to poll."""
        need_run(state)
        return JSONResponse({**state.job.status(), "label_column": state.labels.label_column})

    return [
        Route("/api/rows/{id}/predictions", predictions),
        Route("/api/queue", queue),
        Route("/api/queue/start", queue_start, methods=["POST"]),
        Route("/api/queue/status", queue_status),
    ]
