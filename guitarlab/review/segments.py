"""The review page's segments: a take's labelled time spans, listed, drawn and edited.

Routes only check the request's shape and call :mod:`guitarlab.corpus.segments` (the
store: ``segments.csv`` written atomically under the manifest lock, each edit a line of
``history.jsonl``, so the page's *Undo last change* puts it back). They answer like the
other edits: the store's ``ManifestError`` is a 400 with one line, a stale ``If-Match``
a 409, and the guard in front (:class:`~guitarlab.review.security.TokenGuard`) already
refused a write without the token header or from another origin.

- ``GET /api/segments?take=T``: the take's segments, the label columns and each one's
  values (the page's key legend), and the version to send back;
- ``POST /api/segments``: ``{"take": T, "start_s": 1.0, "end_s": 2.5, "technique":
  "palm_mute"}`` adds one segment (``origin`` "review");
- ``PATCH /api/segments/{id}``: any of ``start_s``, ``end_s`` and label columns;
- ``DELETE /api/segments/{id}``.
"""

from __future__ import annotations

import json

import pandas as pd
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from guitarlab.corpus import edits
from guitarlab.corpus.errors import GuitarlabError
from guitarlab.corpus.manifest import manifest_lock
from guitarlab.review.http import json_body, version_header

ORIGIN = "review"
SPAN = ("start_s", "end_s")
# what /api/undo reads the page's segments version from (If-Match is the manifest's)
SEGMENTS_VERSION_HEADER = "x-guitarlab-segments-version"


def segment_records(segments: pd.DataFrame) -> list[dict]:
    """Segments as JSON-ready dicts; a label the segment does not give is left out."""
    from guitarlab.corpus.segments import label_columns

    columns = label_columns(segments)
    return [
        {
            "id": str(row["id"]),
            "take": str(row["take"]),
            "start_s": float(row["start_s"]),
            "end_s": float(row["end_s"]),
            "origin": str(row["origin"]),
            "labels": {c: str(row[c]) for c in columns if str(row[c]) != ""},
        }
        for _, row in segments.iterrows()
    ]


def choices(segments: pd.DataFrame, manifest: pd.DataFrame) -> dict[str, list[str]]:
    """Each label column's values across the corpus, sorted: the page's number keys.

    The segments' columns, and the manifest's label columns with the manifest's values
    too, so a take's first ``phrase`` segment can already pick ``solo`` with a key.

    Examples
    --------
    >>> segs = pd.DataFrame({"id": ["seg-1"], "take": ["t"], "start_s": [0.0],
    ...                      "end_s": [1.0], "origin": ["review"], "phrase": ["riff"]})
    >>> choices(segs, pd.DataFrame({"id": ["t-raw"], "phrase": ["solo"]}))
    {'phrase': ['riff', 'solo']}
    """
    from guitarlab.corpus.segments import label_columns

    labels = [c for c in edits.editable_columns(manifest) if c not in edits.PER_FILE_COLUMNS]
    out = {}
    for column in dict.fromkeys([*label_columns(segments), *labels]):
        values: set[str] = set()
        for table in (segments, manifest):
            if column in table.columns and (table is segments or column in labels):
                values |= set(table[column].astype(str))
        out[column] = sorted(values - {"", "nan"})
    return out


def check_body(body: dict, *, new: bool) -> dict:
    """A segment edit's span and labels, or ``GuitarlabError`` (a 400) saying what is wrong.

    The store checks the rest (column names, the take, the span against its length);
    this refuses what is not an edit at all: a span that is not numbers, no label on a
    new segment, ``id`` or ``origin`` (the store sets those).

    Examples
    --------
    >>> check_body({"take": "t", "start_s": 1, "end_s": 2, "technique": "bend"}, new=True)
    {'start_s': 1.0, 'end_s': 2.0, 'technique': 'bend'}
    >>> check_body({"take": "t", "start_s": 1, "end_s": 2}, new=True)
    Traceback (most recent call last):
    ...
    guitarlab.corpus.errors.GuitarlabError: give a label for the span, e.g. {"technique": "palm_mute"}
    """
    out: dict = {}
    for key in SPAN:
        if key not in body:
            if new:
                raise GuitarlabError(
                    f'give {key} in seconds, e.g. {{"start_s": 1.0, "end_s": 2.5}}'
                )
            continue
        value = body[key]
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise GuitarlabError(f"{key} must be a number of seconds, not {json.dumps(value)}")
        out[key] = float(value)
    labels = {k: v for k, v in body.items() if k not in (*SPAN, "take")}
    for key in ("id", "origin"):
        if key in labels:
            raise GuitarlabError(f"{key!r} is set by the store; send the span and label columns")
    for column, value in labels.items():
        if value is not None and (
            not isinstance(value, str | int | float) or isinstance(value, bool)
        ):
            raise GuitarlabError(f"{column}: give a text value, not {json.dumps(value)}")
    if new and not any(str(v).strip() for v in labels.values() if v is not None):
        raise GuitarlabError('give a label for the span, e.g. {"technique": "palm_mute"}')
    return {**out, **labels}


def segment_routes(state) -> list[Route]:
    """The segment routes of the review app ``state`` (a :class:`~guitarlab.review.state.Review`).

    Edits check ``If-Match`` against :func:`~guitarlab.corpus.segments.segments_version`
    (the segments' own version: a relabel of the manifest does not make a segment edit
    stale); every answer is the take's segments as they are now, with that version.
    """
    from guitarlab.corpus import segments as store

    def answer(take: str, **extra) -> JSONResponse:
        frame, _ = edits.manifest_rows(state.root)
        with manifest_lock(state.root):  # the table and its version match
            segs, version = store.load_segments(state.root), store.segments_version(state.root)
        body = {
            "segments_version": version,
            "take": take,
            "duration_s": edits.take_duration_s(frame, take),
            "columns": store.label_columns(segs),
            "choices": choices(segs, frame),
            "segments": segment_records(store.segments_of(segs, take)),
            **extra,
        }
        return JSONResponse(body, headers={"ETag": f'"{version}"'})

    def take_of(seg_id: str) -> str:
        segs = store.load_segments(state.root)
        hit = segs[segs["id"].astype(str) == seg_id]
        if not len(hit):
            raise edits.UnknownRow(f"no segment {seg_id!r} in segments.csv; reload the page")
        return str(hit["take"].iloc[0])

    def who() -> str | None:
        return state.user

    async def listing(request: Request) -> JSONResponse:
        take = request.query_params.get("take", "")
        if not take:
            raise GuitarlabError("give the take: /api/segments?take=TAKE")

        def work():
            frame, _ = edits.manifest_rows(state.root)
            if not (frame["take"].astype(str) == take).any():
                raise edits.UnknownRow(f"no take {take!r} in the manifest")
            return answer(take)

        return await run_in_threadpool(work)

    async def add(request: Request) -> JSONResponse:
        body = await json_body(request)
        take = body.get("take")
        if not isinstance(take, str) or not take:
            raise GuitarlabError('give the take the span belongs to: {"take": "..."}')
        segment = check_body(body, new=True)
        expect = version_header(request)

        def work():
            ids = store.add_segments(
                state.root, take, [segment], origin=ORIGIN, expected_version=expect, who=who()
            )
            return answer(take, ids=ids)

        return await run_in_threadpool(work)

    async def one(request: Request) -> JSONResponse:
        seg_id = request.path_params["id"]
        expect = version_header(request)
        if request.method == "DELETE":

            def delete():
                take = take_of(seg_id)
                store.delete_segment(state.root, seg_id, expected_version=expect, who=who())
                return answer(take, deleted=seg_id)

            return await run_in_threadpool(delete)
        changes = check_body(await json_body(request), new=False)
        if not changes:
            raise GuitarlabError('give start_s, end_s or a label to change, e.g. {"end_s": 2.5}')

        def update():
            take = take_of(seg_id)
            store.update_segment(state.root, seg_id, changes, expected_version=expect, who=who())
            return answer(take, updated=seg_id)

        return await run_in_threadpool(update)

    return [
        Route("/api/segments", listing, methods=["GET"]),
        Route("/api/segments", add, methods=["POST"]),
        Route("/api/segments/{id}", one, methods=["PATCH", "DELETE"]),
    ]
