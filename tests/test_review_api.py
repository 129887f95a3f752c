"""The review app's JSON API through Starlette's test client: guard, edits, audio, history."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from conftest import post_corpus

pytest.importorskip("starlette", reason="the review extra is not installed")
pytest.importorskip("httpx", reason="httpx (Starlette's test client) is not installed")
from starlette.testclient import TestClient  # noqa: E402

from guitarlab.corpus.manifest import load_manifest, resolve_audio_path, update_manifest  # noqa: E402
from guitarlab.review import create_app  # noqa: E402
from guitarlab.review.model import review_order  # noqa: E402

TOKEN = "s3cret-token"
STRAT = "stratocaster-backing-t001"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    return post_corpus(tmp_path_factory.mktemp("review-api") / "corpus")


@pytest.fixture
def corpus(source: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(source, tmp_path / "corpus"))


@pytest.fixture
def client(corpus: Path) -> TestClient:
    app = create_app(corpus, token=TOKEN, user="tester")
    return TestClient(app, base_url="http://127.0.0.1:8765")


def test_every_request_needs_the_token(client: TestClient) -> None:
    for path in ("/", "/api/rows", f"/api/audio/{STRAT}-raw", "/static/app.js"):
        response = client.get(path)
        assert response.status_code == 403, path
        assert "token" in response.text and response.text.count("\n") == 1
    assert client.get("/api/rows", headers={"Authorization": "Bearer nope"}).status_code == 403
    assert client.get("/api/rows?token=nope").status_code == 403
    assert client.get("/api/rows", headers=AUTH).status_code == 200


def test_token_in_the_address_sets_a_cookie_the_page_uses(client: TestClient) -> None:
    page = client.get(f"/?token={TOKEN}")
    assert page.status_code == 200 and "<canvas" in page.text
    cookie = page.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert client.get("/api/rows").status_code == 200  # the client kept the cookie
    assert client.get("/static/app.js").status_code == 200


def test_a_foreign_host_header_is_refused(client: TestClient) -> None:
    for host in ("evil.example", "evil.example:8765", "127.0.0.1.evil.example"):
        response = client.get("/api/rows", headers={**AUTH, "Host": host})
        assert response.status_code == 400 and "not this machine" in response.text
    for host in ("localhost:8765", "127.0.0.1", "[::1]:8765"):
        assert client.get("/api/rows", headers={**AUTH, "Host": host}).status_code == 200


def test_rows_filter_sort_search_and_count(client: TestClient) -> None:
    body = client.get("/api/rows?guitar=les_paul&sort=tone&order=desc", headers=AUTH).json()
    assert body["total"] == 6 and body["shown"] == 3
    assert [r["tone"] for r in body["rows"]] == ["raw", "crunch", "clean"]
    assert body["counts"]["guitar"] == {"les_paul": 3}
    assert set(body["facets"]["guitar"]) == {"les_paul", "stratocaster"}
    found = client.get("/api/rows?q=strat&tone=raw", headers=AUTH).json()["rows"]
    assert [r["id"] for r in found] == [f"{STRAT}-raw"]
    assert client.get("/api/rows?checks=ok", headers=AUTH).json()["shown"] == 6
    bad = client.get("/api/rows?colour=red", headers=AUTH)
    assert bad.status_code == 400 and "unknown column 'colour'" in bad.json()["error"]


def test_patch_relabels_every_row_of_the_take_and_appends_history(
    client: TestClient, corpus: Path
) -> None:
    row = client.get(f"/api/rows/{STRAT}-clean", headers=AUTH)
    assert row.status_code == 200 and len(row.json()["take"]) == 3
    version = row.headers["etag"]
    response = client.patch(
        f"/api/rows/{STRAT}-clean",
        json={"guitar": "telecaster"},
        headers={**AUTH, "If-Match": version},
    )
    assert response.status_code == 200, response.text
    assert response.json()["row"]["guitar"] == "telecaster"
    frame = load_manifest(corpus)
    assert set(frame.loc[frame["take"] == STRAT, "guitar"]) == {"telecaster"}
    lines = (corpus / "history.jsonl").read_text().splitlines()
    entry = json.loads(lines[-1])
    assert entry["who"] == "tester" and len(entry["edits"]) == 3
    assert {(e["old"], e["new"]) for e in entry["edits"]} == {("stratocaster", "telecaster")}
    # the same stale version again: the manifest changed underneath
    stale = client.patch(
        f"/api/rows/{STRAT}-raw", json={"player": "ann"}, headers={**AUTH, "If-Match": version}
    )
    assert stale.status_code == 409 and "changed since" in stale.json()["error"]
    history = client.get("/api/history", headers=AUTH).json()["entries"]
    assert history[0]["action"] == "relabel"


@pytest.mark.parametrize(
    "body, status, message",
    [
        ({"colour": "red"}, 400, "unknown column"),
        ({"guitar": "Les Paul!"}, 400, "slug"),
        ({"pickup": "banana"}, 400, "not a known pickup"),
        ({"id": "x"}, 400, "not a label"),
        ([1, 2], 400, "JSON object"),
    ],
)
def test_bad_edits_get_one_line(client: TestClient, corpus: Path, body, status, message) -> None:
    before = (corpus / "manifest.csv").read_bytes()
    response = client.patch(f"/api/rows/{STRAT}-raw", json=body, headers=AUTH)
    assert response.status_code == status and message in response.json()["error"]
    assert "\n" not in response.json()["error"]
    assert (corpus / "manifest.csv").read_bytes() == before


def test_exclude_row_span_and_undo(client: TestClient, corpus: Path) -> None:
    url = f"/api/rows/{STRAT}-crunch/exclude"
    assert client.post(url, json={"reason": "cough"}, headers=AUTH).status_code == 200
    span = client.post(url, json={"span": [0.5, 1.25]}, headers=AUTH)
    assert span.status_code == 200 and span.json()["row"]["exclude_spans"] == "[[0.5,1.25]]"
    outside = client.post(url, json={"span": [2.0, 9.0]}, headers=AUTH)
    assert outside.status_code == 400 and "ends after the file" in outside.json()["error"]
    assert client.post(url, json={}, headers=AUTH).status_code == 400
    frame = load_manifest(corpus).set_index("id")
    assert frame.loc[f"{STRAT}-crunch", "excluded"] == "cough"
    assert set(frame.loc[frame["take"] == STRAT, "exclude_spans"]) == {"[[0.5,1.25]]"}
    assert client.get(f"/api/rows/{STRAT}-raw", headers=AUTH).json()["spans"] == [[0.5, 1.25]]
    undone = client.post("/api/undo", headers=AUTH)
    assert undone.status_code == 200 and undone.json()["change"]["action"] == "undo"
    assert set(load_manifest(corpus)["exclude_spans"]) == {""}
    assert client.get("/api/rows?excluded=yes", headers=AUTH).json()["shown"] == 1


def test_audio_honours_range_requests(client: TestClient, corpus: Path) -> None:
    wav = (corpus / "takes" / f"{STRAT}-raw.wav").read_bytes()
    whole = client.get(f"/api/audio/{STRAT}-raw", headers=AUTH)
    assert whole.status_code == 200 and whole.content == wav
    assert whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["content-type"] == "audio/wav"
    part = client.get(f"/api/audio/{STRAT}-raw", headers={**AUTH, "Range": "bytes=100-1099"})
    assert part.status_code == 206 and part.content == wav[100:1100]
    assert part.headers["content-range"] == f"bytes 100-1099/{len(wav)}"
    tail = client.get(f"/api/audio/{STRAT}-raw", headers={**AUTH, "Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == wav[-10:]


def link_out_of(corpus: Path) -> str:
    """A file beside the corpus and a symlink to it inside; returns the link's manifest path."""
    (corpus.parent / "secret.wav").write_bytes(b"RIFF")
    (corpus / "takes" / "link.wav").symlink_to(corpus.parent / "secret.wav")
    return "takes/link.wav"


def test_only_manifest_ids_inside_the_corpus_are_served(client: TestClient, corpus: Path) -> None:
    assert client.get("/api/audio/nope", headers=AUTH).status_code == 404
    assert client.get("/api/audio/..%2Fmanifest.csv", headers=AUTH).status_code == 404
    assert client.get("/api/rows/nope", headers=AUTH).status_code == 404
    link = link_out_of(corpus)
    for path in ("../secret.wav", link):  # up and out, and out through a symlink

        def point_at(frame, path=path):
            frame.loc[frame["id"] == f"{STRAT}-raw", "path"] = path
            return frame

        update_manifest(corpus, point_at)
        response = client.get(f"/api/audio/{STRAT}-raw", headers=AUTH)
        assert response.status_code == 403 and "outside the corpus" in response.json()["error"]
    assert resolve_audio_path(corpus, link).name == "link.wav"  # the CLI reads through links


def test_waveform_and_spectrogram(client: TestClient) -> None:
    wave = client.get(f"/api/rows/{STRAT}-raw/waveform?points=300", headers=AUTH).json()
    assert len(wave["min"]) == len(wave["max"]) == 300 and wave["duration_s"] == 3.0
    assert max(wave["max"]) > 0.05 and min(wave["min"]) < -0.05
    png = client.get(f"/api/rows/{STRAT}-raw/spectrogram.png", headers=AUTH)
    assert png.status_code == 200 and png.content[:4] == b"\x89PNG"


class FakeLabels:
    """Stands in for a run: says 'les_paul' everywhere, sure of the raw files only."""

    label_column = "guitar"

    def predict_row(self, row):
        sure = 0.9 if row["tone"] == "raw" else 0.6
        return {
            "label": "les_paul",
            "confidence": sure,
            "probabilities": {"les_paul": sure, "stratocaster": 1 - sure},
            "times_s": [0.0, 1.0, 2.0],
            "labels_over_time": ["les_paul"] * 3,
            "confidence_over_time": [sure] * 3,
        }

    def queue(self, manifest):
        items = []
        for _, row in manifest.iterrows():
            pred = self.predict_row(row)
            items.append(
                {
                    "id": row["id"],
                    "label": row["guitar"],
                    "predicted": pred["label"],
                    "confidence": pred["confidence"],
                    "p_label": pred["probabilities"][row["guitar"]],
                }
            )
        return review_order(items)


def test_queue_puts_disagreements_and_doubt_first(corpus: Path, client: TestClient) -> None:
    assert client.get("/api/queue", headers=AUTH).status_code == 404  # no --run
    app = create_app(corpus, token=TOKEN, labels=FakeLabels())
    with_run = TestClient(app, base_url="http://127.0.0.1")
    rows = with_run.get("/api/queue", headers=AUTH).json()["rows"]
    assert [r["disagrees"] for r in rows] == [True] * 3 + [False] * 3
    assert rows[0]["id"] == f"{STRAT}-raw"  # the model is surest it is not a stratocaster
    assert rows[3]["id"].startswith("les_paul") and rows[3]["confidence"] == 0.6
    over_time = with_run.get(f"/api/rows/{STRAT}-raw/predictions", headers=AUTH).json()
    assert over_time["labels_over_time"] == ["les_paul"] * 3


def test_command_prints_the_address_with_a_token_and_warns_on_0000(
    corpus: Path, monkeypatch
) -> None:
    import uvicorn
    from click.testing import CliRunner

    from guitarlab.cli import cli

    served = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: served.append(sockets))
    host_log = logging.FileHandler(corpus.parent / "host.log")  # a host program's log file
    logging.getLogger().addHandler(host_log)
    try:
        result = CliRunner().invoke(cli, ["review", str(corpus), "--port", "0"])
        assert not host_log.stream.closed  # the server leaves the process's logging alone
    finally:
        logging.getLogger().removeHandler(host_log)
        host_log.close()
    assert result.exit_code == 0, result.output
    assert "http://127.0.0.1:" in result.output and "/?token=" in result.output
    assert "warning" not in result.output and len(served) == 1
    wide = CliRunner().invoke(cli, ["review", str(corpus), "--port", "0", "--host", "0.0.0.0"])
    assert wide.exit_code == 0 and "warning: --host 0.0.0.0" in wide.output
    missing = CliRunner().invoke(cli, ["review", str(corpus / "nope")])
    assert missing.exit_code == 1 and "no such corpus folder" in missing.output
    assert "Traceback" not in missing.output
