"""The review page's segment routes without a browser: add, move, relabel, delete and undo
a take's segments; bad bodies, stale versions and foreign origins refused in one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from conftest import post_corpus

pytest.importorskip("starlette", reason="the review extra is not installed")
pytest.importorskip("httpx", reason="httpx (Starlette's test client) is not installed")
from starlette.testclient import TestClient  # noqa: E402

from guitarlab.corpus.edits import read_history  # noqa: E402
from guitarlab.review import create_app  # noqa: E402

TOKEN = "s3cret-token"
TAKE = "stratocaster-backing-t001"
HEADERS = {"X-Guitarlab-Token": TOKEN}


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    return post_corpus(tmp_path_factory.mktemp("review-segments") / "corpus", seconds=3.0)


@pytest.fixture
def corpus(source: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(source, tmp_path / "corpus"))


@pytest.fixture
def client(corpus: Path) -> TestClient:
    client = TestClient(create_app(corpus, token=TOKEN, user="tester"), base_url="http://127.0.0.1")
    assert client.get(f"/?token={TOKEN}").status_code == 200  # the page: the cookie
    return client


def stored(corpus: Path) -> pd.DataFrame:
    path = corpus / "segments.csv"
    return pd.read_csv(path, dtype=str, keep_default_na=False) if path.exists() else None


def add(client: TestClient, version: str | None = None, **body) -> object:
    headers = {**HEADERS, **({"If-Match": f'"{version}"'} if version else {})}
    return client.post("/api/segments", json={"take": TAKE, **body}, headers=headers)


def test_add_move_relabel_delete_and_undo(client: TestClient, corpus: Path) -> None:
    empty = client.get(f"/api/segments?take={TAKE}").json()
    assert empty["segments"] == [] and empty["duration_s"] == 3.0
    made = add(client, empty["segments_version"], start_s=0.5, end_s=1.25, technique="palm_mute")
    assert made.status_code == 200, made.text
    body = made.json()
    (seg_id,) = body["ids"]
    assert body["segments"] == [
        {
            "id": seg_id,
            "take": TAKE,
            "start_s": 0.5,
            "end_s": 1.25,
            "origin": "review",
            "labels": {"technique": "palm_mute"},
        }
    ]
    assert body["columns"] == ["technique"] and body["choices"]["technique"] == ["palm_mute"]
    assert body["choices"]["phrase"] == ["backing"]  # the manifest's labels are keys too
    assert made.headers["etag"] == f'"{body["segments_version"]}"'
    row = stored(corpus).iloc[0]
    assert (row["id"], row["take"], row["start_s"], row["end_s"]) == (seg_id, TAKE, "0.5", "1.25")
    assert row["technique"] == "palm_mute"

    # move the end, relabel, then delete: each with the version the last answer gave
    version = body["segments_version"]
    moved = client.patch(
        f"/api/segments/{seg_id}",
        json={"end_s": 2.0, "technique": "bend"},
        headers={**HEADERS, "If-Match": f'"{version}"'},
    )
    assert moved.status_code == 200, moved.text
    (seg,) = moved.json()["segments"]
    assert (seg["end_s"], seg["labels"]) == (2.0, {"technique": "bend"})
    version = moved.json()["segments_version"]
    gone = client.delete(f"/api/segments/{seg_id}", headers={**HEADERS, "If-Match": f'"{version}"'})
    assert gone.status_code == 200 and gone.json()["segments"] == []
    assert len(stored(corpus)) == 0

    history = read_history(corpus)
    assert [e["action"] for e in history] == ["add_segments", "update_segment", "delete_segment"]
    assert all(e["who"] == "tester" and e["take"] == TAKE for e in history)

    # undo steps back through the delete and the move: the segment is there, as added
    for _ in range(2):
        undone = client.post("/api/undo", headers=HEADERS)
        assert undone.status_code == 200, undone.text
        version = undone.json()["segments_version"]  # the page's next edit sends it
        assert version == client.get(f"/api/segments?take={TAKE}").json()["segments_version"]
    (seg,) = client.get(f"/api/segments?take={TAKE}").json()["segments"]
    assert (seg["id"], seg["end_s"], seg["labels"]) == (seg_id, 1.25, {"technique": "palm_mute"})
    assert client.post("/api/undo", headers=HEADERS).status_code == 200
    assert client.get(f"/api/segments?take={TAKE}").json()["segments"] == []


@pytest.mark.parametrize(
    "body, says",
    [
        ({"start_s": 0.5, "end_s": 1.0}, "give a label"),
        ({"end_s": 1.0, "technique": "bend"}, "give start_s"),
        ({"start_s": "0.5", "end_s": 1.0, "technique": "bend"}, "start_s must be a number"),
        ({"start_s": True, "end_s": 1.0, "technique": "bend"}, "start_s must be a number"),
        ({"start_s": 1.0, "end_s": 0.5, "technique": "bend"}, "start < end"),
        ({"start_s": 2.0, "end_s": 9.0, "technique": "bend"}, "ends after take"),
        ({"start_s": 0.5, "end_s": 1.0, "Bad Column": "x"}, "not a lower-case slug"),
        ({"start_s": 0.5, "end_s": 1.0, "technique": ["a", "b"]}, "give a text value"),
        ({"start_s": 0.5, "end_s": 1.0, "technique": "a\nb"}, "one line"),
        ({"start_s": 0.5, "end_s": 1.0, "id": "seg-9", "technique": "x"}, "set by the store"),
        ({"take": "no-such-take", "start_s": 0.5, "end_s": 1.0, "technique": "x"}, "not in the"),
        ({"take": 7, "start_s": 0.5, "end_s": 1.0, "technique": "x"}, "give the take"),
    ],
)
def test_bad_bodies_are_one_line_400s_and_write_nothing(
    client: TestClient, corpus: Path, body: dict, says: str
) -> None:
    response = add(client, **body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert says in error and "\n" not in error
    assert stored(corpus) is None and read_history(corpus) == []


def test_junk_bodies_and_unknown_ids(client: TestClient, corpus: Path) -> None:
    junk = client.post("/api/segments", content=b"not json", headers=HEADERS)
    assert junk.status_code == 400 and "JSON object" in junk.json()["error"]
    listing = client.post("/api/segments", content=b"[1, 2]", headers=HEADERS)
    assert listing.status_code == 400
    assert client.get("/api/segments").status_code == 400  # no take
    assert client.get("/api/segments?take=nope").status_code == 404
    missing = client.patch("/api/segments/seg-000099", json={"end_s": 1.0}, headers=HEADERS)
    assert missing.status_code == 404 and "seg-000099" in missing.json()["error"]
    assert client.delete("/api/segments/seg-000099", headers=HEADERS).status_code == 404
    seg_id = add(client, start_s=0.5, end_s=1.0, technique="bend").json()["ids"][0]
    nothing = client.patch(f"/api/segments/{seg_id}", json={}, headers=HEADERS)
    assert nothing.status_code == 400 and "give start_s, end_s or a label" in nothing.text


def test_a_stale_version_is_a_409_and_changes_nothing(client: TestClient, corpus: Path) -> None:
    first = add(client, start_s=0.5, end_s=1.0, technique="bend").json()
    seg_id, old = first["ids"][0], first["segments_version"]
    add(client, old, start_s=1.5, end_s=2.0, technique="slide")  # another tab's edit
    before = (corpus / "segments.csv").read_bytes()
    lines = len(read_history(corpus))
    stale = {**HEADERS, "If-Match": f'"{old}"'}
    for response in (
        client.post(
            "/api/segments",
            json={"take": TAKE, "start_s": 2.0, "end_s": 2.5, "technique": "x"},
            headers=stale,
        ),
        client.patch(f"/api/segments/{seg_id}", json={"end_s": 1.2}, headers=stale),
        client.delete(f"/api/segments/{seg_id}", headers=stale),
    ):
        assert response.status_code == 409, response.text
        assert "reload" in response.json()["error"]
    # undo of a segment edit checks the segments' version the page sends beside If-Match
    undo = client.post("/api/undo", headers={**HEADERS, "X-Guitarlab-Segments-Version": old})
    assert undo.status_code == 409, undo.text
    assert (corpus / "segments.csv").read_bytes() == before
    assert len(read_history(corpus)) == lines
    # a manifest relabel does not make the segments stale (they have their own version)
    now = client.get(f"/api/segments?take={TAKE}").json()["segments_version"]
    relabel = client.patch(f"/api/rows/{TAKE}-raw", json={"player": "ann"}, headers=HEADERS)
    assert relabel.status_code == 200
    assert add(client, now, start_s=2.0, end_s=2.5, technique="x").status_code == 200


def test_writes_need_the_header_or_this_origin(client: TestClient, corpus: Path) -> None:
    body = json.dumps({"take": TAKE, "start_s": 0.5, "end_s": 1.0, "technique": "x"})
    form = {"Content-Type": "text/plain", "Origin": "http://127.0.0.1:9999"}
    assert client.post("/api/segments", content=body, headers=form).status_code == 403
    cookie_only = client.post("/api/segments", content=body)
    assert cookie_only.status_code == 403 and "X-Guitarlab-Token" in cookie_only.text
    assert stored(corpus) is None
    same_origin = client.post("/api/segments", content=body, headers={"Origin": "http://127.0.0.1"})
    assert same_origin.status_code == 200, same_origin.text
    seg_id = same_origin.json()["ids"][0]
    assert client.delete(f"/api/segments/{seg_id}", headers=form).status_code == 403
    assert len(stored(corpus)) == 1
