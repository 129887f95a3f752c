"""The review app stays responsive (issues 32 and 33): rows come in pages with totals and
facets worked out once per manifest version, the queue is labelled in the background while
other requests answer, provenance is not a label, and SIGTERM stops a `--run` server."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import post_corpus

pytest.importorskip("starlette", reason="the review extra is not installed")
pytest.importorskip("httpx", reason="httpx (Starlette's test client) is not installed")
from starlette.testclient import TestClient  # noqa: E402

import guitarlab.review.state as review_app  # noqa: E402
from guitarlab.corpus.manifest import load_manifest, update_manifest  # noqa: E402
from guitarlab.review import create_app  # noqa: E402
from guitarlab.review.model import review_order  # noqa: E402

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
STRAT = "stratocaster-backing-t001"


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    return post_corpus(tmp_path_factory.mktemp("review-responsive") / "corpus", seconds=1.0)


@pytest.fixture
def corpus(source: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(source, tmp_path / "corpus"))


def client_for(corpus: Path, **kw) -> TestClient:
    return TestClient(create_app(corpus, token=TOKEN, **kw), base_url="http://127.0.0.1")


class GatedLabels:
    """A stand-in run whose model is slow on purpose: every prediction waits for ``gate``,
    so the test decides when the queue finishes. Says 'les_paul' everywhere."""

    label_column = "guitar"

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.cache: dict[str, dict] = {}

    def predict_row(self, row) -> dict:
        if row["id"] not in self.cache:
            assert self.gate.wait(60), "the test never opened the gate"
            self.cache[row["id"]] = {
                "label": "les_paul",
                "confidence": 0.8,
                "probabilities": {"les_paul": 0.8, "stratocaster": 0.2},
            }
        return self.cache[row["id"]]

    def queue(self, manifest) -> list[dict]:
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


# ------------------------------------------------------------------ pages


def test_rows_come_in_pages_with_the_totals_of_every_match(corpus: Path) -> None:
    client = client_for(corpus)
    everything = client.get("/api/rows?sort=id", headers=AUTH).json()  # no limit: every row
    assert everything["total"] == everything["shown"] == len(everything["rows"]) == 6
    ids = [r["id"] for r in everything["rows"]]
    page = client.get("/api/rows?sort=id&limit=2&offset=1", headers=AUTH).json()
    assert [r["id"] for r in page["rows"]] == ids[1:3]
    assert (page["total"], page["shown"], page["offset"], page["limit"]) == (6, 6, 1, 2)
    assert page["counts"]["tone"] == {"clean": 2, "crunch": 2, "raw": 2}  # all matches counted
    raw = client.get("/api/rows?tone=raw&limit=1", headers=AUTH).json()
    assert raw["shown"] == 2 and len(raw["rows"]) == 1 and raw["counts"]["tone"] == {"raw": 2}
    past = client.get("/api/rows?limit=5&offset=10", headers=AUTH).json()
    assert past["rows"] == [] and past["shown"] == 6
    for bad, says in (("limit=ten", "limit must be a whole number"), ("offset=-1", "0 or more")):
        response = client.get(f"/api/rows?{bad}", headers=AUTH)
        assert response.status_code == 400 and says in response.json()["error"]


def test_facets_are_worked_out_once_per_manifest_version(corpus: Path, monkeypatch) -> None:
    calls = []
    summary = review_app.checks_summary
    monkeypatch.setattr(review_app, "checks_summary", lambda t: calls.append(t) or summary(t))
    reads = []
    rows_of = review_app.edits.manifest_rows
    monkeypatch.setattr(
        review_app.edits, "manifest_rows", lambda root: reads.append(root) or rows_of(root)
    )
    client = client_for(corpus, user="tester")
    first = client.get("/api/rows?limit=0", headers=AUTH)  # limit=0: totals, no rows
    distinct = set(load_manifest(corpus)["checks"])  # each distinct checks text parsed once
    assert sorted(calls) == sorted(distinct) and len(reads) == 1
    for query in ("offset=2", "tone=raw", "sort=take&order=desc", "q=strat"):
        body = client.get(f"/api/rows?limit=0&{query}", headers=AUTH).json()
        assert body["rows"] == [] and body["total"] == 6
    assert len(calls) == len(distinct) and len(reads) == 1  # nothing read or parsed again
    # an edit is a new version: read once more, and the facets show the new value
    edit = client.patch(
        f"/api/rows/{STRAT}-raw",
        json={"phrase": "solo"},
        headers={**AUTH, "If-Match": first.headers["etag"]},
    )
    assert edit.status_code == 200, edit.text
    calls.clear()
    for _ in range(2):
        after = client.get("/api/rows?limit=0", headers=AUTH).json()
        assert "solo" in after["facets"]["phrase"] and after["version"] == edit.json()["version"]
    assert len(calls) == len(distinct) and len(reads) == 2
    # a change made outside the app (a spreadsheet, another command) is seen too
    update_manifest(corpus, lambda f: f.assign(player="zoe"))
    assert client.get("/api/rows", headers=AUTH).json()["facets"]["player"] == ["zoe"]


def test_a_facet_with_too_many_values_lists_the_first_and_says_how_many(
    corpus: Path, monkeypatch
) -> None:
    monkeypatch.setattr(review_app, "FACET_VALUES", 1)
    body = client_for(corpus).get("/api/rows?limit=1", headers=AUTH).json()
    assert body["facets"]["take"] == ["les_paul-backing-t001"]
    assert body["facets_cut"]["take"] == 2 and "tone" in body["facets_cut"]


# ------------------------------------------------------------------ provenance


def test_provenance_is_not_offered_or_taken_as_a_label(corpus: Path) -> None:
    notes = {"raw": "new strings", "clean": "rendered from raw with preset clean"}
    update_manifest(
        corpus,
        lambda f: f.assign(
            device="Scarlett 2i2",
            role="di",
            notes=[notes.get(t, "rendered from raw with preset crunch") for t in f["tone"]],
        ),
    )
    client = client_for(corpus, user="tester")
    raw = client.get(f"/api/rows/{STRAT}-raw", headers=AUTH).json()
    offered = set(raw["editable"])
    assert {"guitar", "pickup", "phrase", "player", "notes"} <= offered
    assert not offered & {"device", "role", "source", "sha256", "peak_dbfs", "rms_dbfs", "path"}
    render = client.get(f"/api/rows/{STRAT}-clean", headers=AUTH).json()
    assert "notes" not in render["editable"] and "guitar" in render["editable"]
    version = {"If-Match": f'"{render["version"]}"'}
    device = client.patch(
        f"/api/rows/{STRAT}-raw", json={"device": "x"}, headers={**AUTH, **version}
    )
    assert device.status_code == 400 and "'device' is not a label" in device.json()["error"]
    clean = client.patch(
        f"/api/rows/{STRAT}-clean", json={"notes": "x"}, headers={**AUTH, **version}
    )
    assert clean.status_code == 400
    assert "rendered from; edit them on the take's raw row" in clean.json()["error"]
    # the take's own notes change on its raw row only; the renders keep what they came from
    ok = client.patch(
        f"/api/rows/{STRAT}-raw", json={"notes": "old strings"}, headers={**AUTH, **version}
    )
    assert ok.status_code == 200, ok.text
    frame = load_manifest(corpus).set_index("id")
    assert frame.loc[f"{STRAT}-raw", "notes"] == "old strings"
    assert frame.loc[f"{STRAT}-clean", "notes"] == notes["clean"]
    assert frame.loc[f"{STRAT}-crunch", "notes"] == "rendered from raw with preset crunch"
    assert set(frame["device"]) == {"Scarlett 2i2"}


# ------------------------------------------------------------------ the queue


def test_the_queue_labels_in_the_background_while_the_rest_answers(corpus: Path) -> None:
    labels = GatedLabels()
    client = client_for(corpus, labels=labels)
    started = client.post("/api/queue/start", headers=AUTH)
    assert started.status_code == 202 and started.json()["state"] == "running"
    assert started.json()["total"] == 6
    # the model is stuck on the first file, and everything else still answers
    for path in ("/api/rows?limit=3", f"/api/rows/{STRAT}-raw", f"/api/audio/{STRAT}-raw"):
        response = client.get(path, headers=AUTH)
        assert response.status_code == 200, path
    assert client.get(f"/api/audio/{STRAT}-raw", headers=AUTH).content[:4] == b"RIFF"
    waiting = client.get("/api/queue/status", headers=AUTH).json()
    assert waiting["state"] == "running" and waiting["done"] == 0
    assert client.post("/api/queue/start", headers=AUTH).json()["done"] == 0  # not twice
    labels.gate.set()
    deadline = time.monotonic() + 30
    while client.get("/api/queue/status", headers=AUTH).json()["state"] == "running":
        assert time.monotonic() < deadline, "the queue never finished"
        time.sleep(0.05)
    status = client.get("/api/queue/status", headers=AUTH).json()
    assert (status["state"], status["done"], status["total"]) == ("done", 6, 6)
    rows = client.get("/api/queue", headers=AUTH).json()["rows"]
    assert [r["disagrees"] for r in rows] == [True] * 3 + [False] * 3


def test_a_failing_model_is_one_line_and_can_be_tried_again(corpus: Path) -> None:
    class Broken(GatedLabels):
        def predict_row(self, row):
            raise RuntimeError("the model file is\ncorrupt")

    client = client_for(corpus, labels=Broken())
    client.post("/api/queue/start", headers=AUTH)
    deadline = time.monotonic() + 30
    while (status := client.get("/api/queue/status", headers=AUTH).json())["state"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert status == {**status, "state": "failed", "error": "the model file is corrupt"}
    again = client.get("/api/queue", headers=AUTH)
    assert again.status_code == 400 and "the model file is corrupt" in again.json()["error"]


def test_the_page_has_a_favicon(corpus: Path) -> None:
    icon = client_for(corpus).get("/favicon.ico", headers=AUTH)
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg")


# ------------------------------------------------------------------ SIGTERM


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[Path, Path]:
    """A corpus and a real run trained on it for one epoch (about 15 s on 2 busy cores)."""
    from test_train_evaluate import WINDOW, write_post_like

    from guitarlab.corpus.intake import import_folder
    from guitarlab.datasets.build import build_dataset
    from guitarlab.train.config import TrainConfig
    from guitarlab.train.fit import fit_dataset

    root = tmp_path_factory.mktemp("review-run")
    import_folder(write_post_like(root / "wavs", seconds=3.0), root / "corpus", progress=False)
    dataset = build_dataset(
        root / "corpus", root / "dataset", window=WINDOW, test_windows=2, progress=False
    )
    config = TrainConfig(input="wave", filters=(4, 4, 4), epochs=1, fine_tune_epochs=0, verbose=0)
    return root / "corpus", fit_dataset(dataset, root / "run", config).run_dir


def test_sigterm_stops_a_review_run_server_while_the_queue_computes(tiny_run) -> None:
    corpus, run = tiny_run
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "guitarlab",
            "review",
            str(corpus),
            "--run",
            str(run),
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        line = proc.stdout.readline()
        assert "/?token=" in line, proc.stderr.read()
        address = line.split(": ", 1)[1].strip()
        base, token = address.split("/?token=")

        def call(path: str, method: str = "GET") -> dict:
            request = urllib.request.Request(
                base + path,
                method=method,
                headers={"Authorization": f"Bearer {token}"},
                data=b"{}" if method == "POST" else None,
            )
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.loads(response.read())

        started = call("/api/queue/start", "POST")
        assert started["state"] == "running" and started["total"] == 8
        rows = call("/api/rows?limit=3")  # the model loads and labels meanwhile
        assert len(rows["rows"]) == 3 and rows["total"] == 8
        assert call("/api/queue/status")["state"] in ("running", "done")
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(15)  # raises TimeoutExpired if SIGTERM is ignored
        assert code in (0, -signal.SIGTERM), proc.stderr.read()
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
