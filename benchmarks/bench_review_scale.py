"""A grown corpus (issue 32): the review app's first page at 1k, 10k and 100k rows.

The ``scale`` section's review rows. ``review_rows`` takes the corpora ``bench_scale``
builds (``{rows: corpus}``). For each, a fresh app (``create_app``, which reads the
manifest once) answers the request the page sends first, ``GET /api/rows?sort=id&
order=asc&offset=0&limit=200`` (totals and facets worked out for that manifest version),
through Starlette's in-process test client: best of 3 fresh apps. The reference is the
listing as it was before paging, every row in one answer (no ``limit``), timed once on
the same app. Goal at 100k rows: the first page in at most 0.3 s and 1 MB.

Standalone: ``python -m benchmarks.bench_review_scale [--quick]`` builds its own corpora.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import Row

FIRST_PAGE = "/api/rows?sort=id&order=asc&offset=0&limit=200"
TOKEN = "bench"


def first_page(root: Path) -> tuple[float, int, float, object]:
    """``(seconds, bytes, app start seconds, client)`` of the first page of a fresh app."""
    from starlette.testclient import TestClient

    from guitarlab.review import create_app

    start = time.perf_counter()
    app = create_app(root, token=TOKEN)
    opened = time.perf_counter() - start
    client = TestClient(app, base_url="http://127.0.0.1")
    start = time.perf_counter()
    response = client.get(FIRST_PAGE, headers={"Authorization": f"Bearer {TOKEN}"})
    seconds = time.perf_counter() - start
    body = response.json()
    assert response.status_code == 200 and len(body["rows"]) == min(200, body["total"])
    return seconds, len(response.content), opened, client


def review_rows(corpora: dict[int, Path], quick: bool) -> list[Row]:
    """The review app's first page against the whole listing, at every size."""
    out, sizes = [], {}
    for rows, root in corpora.items():
        tries = [first_page(root) for _ in range(3)]
        seconds, size, opened, client = min(tries, key=lambda t: t[0])
        start = time.perf_counter()
        everything = client.get("/api/rows", headers={"Authorization": f"Bearer {TOKEN}"})
        whole = time.perf_counter() - start
        sizes[rows] = (size, len(everything.content))
        out.append(
            Row(
                "scale",
                f"review app first page (200 of {rows:,} rows)",
                seconds,
                "s",
                "every row in one answer (no limit, as before paging)",
                whole,
                "<= 0.3 s at 100k rows",
                f"best of 3 fresh apps; {size / 1e3:.0f} KB against {len(everything.content) / 1e6:.1f} MB; "
                f"the app reads the manifest once when it starts ({min(t[2] for t in tries):.2f} s)",
            )
        )
    big = max(corpora)
    out.append(
        Row(
            "scale",
            f"review app first page size, {big:,} rows",
            sizes[big][0] / 1e6,
            "MB",
            "every row in one answer",
            sizes[big][1] / 1e6,
            "<= 1 MB",
            "200 rows, totals, counts, facets (at most 500 values each)",
        )
    )
    return out


def main(argv: list[str]) -> None:
    from benchmarks.bench_scale import QUICK_SIZES, SIZES, build_corpus

    sizes = QUICK_SIZES if "--quick" in argv else SIZES
    with tempfile.TemporaryDirectory(prefix="bench-review-") as tmp:
        corpora = {rows: build_corpus(Path(tmp) / f"c{rows}", rows) for rows in sizes}
        for row in review_rows(corpora, "--quick" in argv):
            print(f"{row.figure}: {row.value:.3f} {row.unit} ({row.notes})")


if __name__ == "__main__":
    main(sys.argv[1:])
