"""Issue 29's review-app cases: no writes from another origin, only checked files served,
bad JSON bodies and junk history lines answered in one line, notes edited per file."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import post_corpus

pytest.importorskip("starlette", reason="the review extra is not installed")
pytest.importorskip("httpx", reason="httpx (Starlette's test client) is not installed")
from starlette.testclient import TestClient  # noqa: E402

from guitarlab.corpus.edits import exclude_row, read_history, relabel_take  # noqa: E402
from guitarlab.corpus.manifest import load_manifest, update_manifest  # noqa: E402
from guitarlab.review import create_app  # noqa: E402
from guitarlab.review.files import (  # noqa: E402
    FdResponse,
    Forbidden,
    NotFound,
    RangeNotSatisfiable,
    byte_range,
    open_inside,
)

TOKEN = "s3cret-token"
STRAT = "stratocaster-backing-t001"
HERE = "http://127.0.0.1:8765"
ELSEWHERE = "http://127.0.0.1:9999"


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    return post_corpus(tmp_path_factory.mktemp("battery-review") / "corpus", seconds=1.0)


@pytest.fixture
def corpus(source: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(source, tmp_path / "corpus"))


@pytest.fixture
def page(corpus: Path) -> TestClient:
    """A browser that opened the printed address: it holds the cookie, nothing else."""
    client = TestClient(create_app(corpus, token=TOKEN, user="tester"), base_url=HERE)
    opened = client.get(f"/?token={TOKEN}")
    assert opened.status_code == 200
    return client


def manifest_bytes(corpus: Path) -> bytes:
    return (corpus / "manifest.csv").read_bytes()


# ------------------------------------------------------------ writes from another origin


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("POST", f"/api/rows/{STRAT}-raw/exclude", '{"reason": "cough"}'),
        ("PATCH", f"/api/rows/{STRAT}-raw", '{"guitar": "telecaster"}'),
        ("POST", "/api/undo", ""),
    ],
)
def test_a_form_on_another_port_cannot_write(page: TestClient, corpus: Path, method, path, body):
    relabel_take(corpus, f"{STRAT}-raw", {"player": "ann"})  # something /api/undo could undo
    before, lines = manifest_bytes(corpus), len(read_history(corpus))
    # what a plain HTML form (enctype text/plain) on http://127.0.0.1:9999 sends: the cookie
    form = {"Origin": ELSEWHERE, "Content-Type": "text/plain"}
    response = page.request(method, path, content=body, headers=form)
    assert response.status_code == 403 and "is not this page" in response.text
    assert response.text.count("\n") == 1
    # no Origin and no header: a cookie alone never writes either
    bare = page.request(method, path, content=body, headers={"Content-Type": "text/plain"})
    assert bare.status_code == 403 and "X-Guitarlab-Token" in bare.text
    # the token in the address is no header either
    addressed = page.request(method, f"{path}?token={TOKEN}", content=body)
    assert addressed.status_code == 403
    assert manifest_bytes(corpus) == before and len(read_history(corpus)) == lines
    # reading still works with the cookie alone (audio, pictures, the table)
    assert page.get("/api/rows").status_code == 200


def test_the_page_itself_can_write(page: TestClient, corpus: Path) -> None:
    html = page.get("/").text
    assert f'<meta name="guitarlab-token" content="{TOKEN}">' in html  # what app.js reads
    url = f"/api/rows/{STRAT}-raw/exclude"
    by_header = page.post(url, json={"reason": "cough"}, headers={"X-Guitarlab-Token": TOKEN})
    assert by_header.status_code == 200, by_header.text
    assert load_manifest(corpus).set_index("id").loc[f"{STRAT}-raw", "excluded"] == "cough"
    # a same-origin fetch without the header (the browser sends Origin) is the page too
    by_origin = page.post("/api/undo", headers={"Origin": HERE})
    assert by_origin.status_code == 200 and by_origin.json()["change"]["action"] == "undo"
    # a header with a wrong token, or the right one from another origin, is refused
    wrong = page.post("/api/undo", headers={"X-Guitarlab-Token": "nope"})
    assert wrong.status_code == 403
    foreign = page.post("/api/undo", headers={"X-Guitarlab-Token": TOKEN, "Origin": ELSEWHERE})
    assert foreign.status_code == 403
    assert load_manifest(corpus).set_index("id").loc[f"{STRAT}-raw", "excluded"] == ""


# ------------------------------------------------------------ only checked files are served


def point_row_at(corpus: Path, row_id: str, rel: str) -> None:
    def change(frame):
        frame.loc[frame["id"] == row_id, "path"] = rel
        return frame

    update_manifest(corpus, change)


def test_a_symlink_out_of_the_corpus_is_never_served(page: TestClient, corpus: Path) -> None:
    secret = corpus.parent / "passwd"
    secret.write_bytes(b"root:x:0:0:root:/root:/bin/bash\n")
    raw = corpus / "takes" / f"{STRAT}-raw.wav"
    raw.unlink()
    raw.symlink_to(secret)  # the row's own file, swapped for a link out
    headers = {"X-Guitarlab-Token": TOKEN}
    for url in (f"/api/audio/{STRAT}-raw", f"/api/rows/{STRAT}-raw/waveform"):
        response = page.get(url, headers={**headers, "Range": "bytes=0-9"})
        assert response.status_code == 403, url
        assert b"root:" not in response.content and "outside the corpus" in response.text
    with pytest.raises(Forbidden):
        open_inside(corpus, f"takes/{STRAT}-raw.wav")


def test_open_inside_checks_the_file_it_opened(corpus: Path, monkeypatch) -> None:
    rel = f"takes/{STRAT}-raw.wav"
    fd = open_inside(corpus, rel)
    try:
        assert os.read(fd, 4) == b"RIFF"
    finally:
        os.close(fd)
    with pytest.raises(NotFound):
        open_inside(corpus, "takes/nope.wav")
    with pytest.raises(Forbidden):
        open_inside(corpus, "takes")  # a folder is not a file
    # the race, made deterministic: the name is resolved inside the corpus, and between
    # that check and the open a link out is swapped in; what was opened is refused
    import guitarlab.review.files as files

    outside = corpus.parent / "outside.wav"
    outside.write_bytes(b"RIFF-not-yours")
    real_open = os.open

    def swap_then_open(path, flags, *args):
        target = Path(path)
        if target.name == f"{STRAT}-raw.wav":
            target.unlink()
            target.symlink_to(outside)
        return real_open(path, flags, *args)

    monkeypatch.setattr(files.os, "open", swap_then_open)
    with pytest.raises(Forbidden, match="outside the corpus"):
        open_inside(corpus, rel)
    monkeypatch.undo()
    # a swap O_NOFOLLOW cannot see (a folder above the file relinked): whatever the
    # kernel opened instead is not the file the name leads to, and is refused

    def relink_then_open(path, flags, *args):
        return real_open(str(outside), flags, *args)  # the kernel opened something else

    monkeypatch.setattr(files.os, "open", relink_then_open)
    with pytest.raises(Forbidden):
        open_inside(corpus, rel)
    monkeypatch.undo()
    # a link swapped for a file while its name is resolved (realpath: EINVAL) is a 403

    def swapped_mid_resolve(*args, **kwargs):
        raise OSError(22, "Invalid argument")

    monkeypatch.setattr(files, "resolve_audio_path", swapped_mid_resolve)
    with pytest.raises(Forbidden):
        open_inside(corpus, rel)


def test_fd_response_serves_ranges_from_the_descriptor(corpus: Path, tmp_path: Path) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Route

    data = bytes(range(256)) * 40
    inside = corpus / "blob.bin"
    inside.write_bytes(data)

    async def serve(request):
        fd = open_inside(corpus, "blob.bin")
        inside.unlink()  # the name is gone: only the descriptor can still serve it
        inside.write_bytes(b"replaced")
        return FdResponse(fd, media_type="audio/wav")

    client = TestClient(Starlette(routes=[Route("/f", serve)]))
    whole = client.get("/f")
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["accept-ranges"] == "bytes"
    inside.write_bytes(data)
    part = client.get("/f", headers={"Range": "bytes=100-1099"})
    assert part.status_code == 206 and part.content == data[100:1100]
    assert part.headers["content-range"] == f"bytes 100-1099/{len(data)}"
    inside.write_bytes(data)
    assert client.get("/f", headers={"Range": "bytes=-10"}).content == data[-10:]
    inside.write_bytes(data)
    past = client.get("/f", headers={"Range": f"bytes={len(data)}-"})
    assert past.status_code == 416 and past.headers["content-range"] == f"bytes */{len(data)}"
    inside.write_bytes(data)
    stale = client.get("/f", headers={"Range": "bytes=0-9", "If-Range": '"old"'})
    assert stale.status_code == 200 and stale.content == data  # changed since: all of it
    with pytest.raises(RangeNotSatisfiable):
        byte_range("bytes=-0", 10)


def test_audio_still_streams_with_ranges(page: TestClient, corpus: Path) -> None:
    wav = (corpus / "takes" / f"{STRAT}-raw.wav").read_bytes()
    part = page.get(f"/api/audio/{STRAT}-raw", headers={"Range": "bytes=44-1043"})
    assert part.status_code == 206 and part.content == wav[44:1044]
    assert part.headers["content-type"] == "audio/wav"
    head = page.head(f"/api/audio/{STRAT}-raw")
    assert head.status_code == 200 and head.headers["content-length"] == str(len(wav))
    assert not head.content


# ------------------------------------------------------------ bodies that were 500s


@pytest.mark.parametrize(
    "body, message",
    [
        ('{"guitar": "\\ud800"}', "lone surrogate"),
        ('{"notes": "a\\udfffb"}', "lone surrogate"),
        ("[" * 100_000 + "]" * 100_000, "over 64 KiB"),  # the issue's case
        ("[" * 30_000 + "]" * 30_000, "nested too deeply"),
        ('{"guitar": ' + "[" * 30_000 + "]" * 30_000 + "}", "nested too deeply"),
        (b'{"guitar": "\xff"}', "not UTF-8"),
        ('{"guitar": NaN}', "JSON object"),
        ('{"guitar": 1e999}', "finite"),
        ("not json", "JSON object"),
    ],
)
def test_bad_json_bodies_get_400_in_one_line(page: TestClient, corpus: Path, body, message):
    before = manifest_bytes(corpus)
    headers = {"X-Guitarlab-Token": TOKEN, "Content-Type": "application/json"}
    for path, method in (
        (f"/api/rows/{STRAT}-raw", "PATCH"),
        (f"/api/rows/{STRAT}-raw/exclude", "POST"),
    ):
        response = page.request(method, path, content=body, headers=headers)
        assert response.status_code == 400, (path, response.text[:200])
        error = response.json()["error"]
        assert message in error and "\n" not in error
    assert manifest_bytes(corpus) == before
    assert not (corpus / "history.jsonl").exists()


def test_a_surrogate_through_the_core_is_refused_too(corpus: Path) -> None:
    from guitarlab.corpus.errors import ManifestError

    with pytest.raises(ManifestError, match="one line"):
        relabel_take(corpus, f"{STRAT}-raw", {"notes": "\ud800"})
    with pytest.raises(ManifestError, match="one line"):
        exclude_row(corpus, f"{STRAT}-raw", "cough \udc80")


# ------------------------------------------------------------ history.jsonl


@pytest.mark.parametrize(
    "junk",
    [b"this is not json\n", b"[1, 2]\n", b'{"n": "seven"}\n', b"\xff\xfe garbage\n", b"5\n"],
)
def test_a_junk_history_line_never_stops_an_edit_or_its_undo(
    page: TestClient, corpus: Path, junk: bytes
) -> None:
    headers = {"X-Guitarlab-Token": TOKEN}
    first = page.patch(f"/api/rows/{STRAT}-raw", json={"player": "ann"}, headers=headers)
    assert first.status_code == 200
    with open(corpus / "history.jsonl", "ab") as f:
        f.write(junk)
    second = page.patch(f"/api/rows/{STRAT}-raw", json={"guitar": "telecaster"}, headers=headers)
    assert second.status_code == 200, second.text
    assert second.json()["change"]["n"] == 2
    assert set(load_manifest(corpus).query("take == @STRAT")["guitar"]) == {"telecaster"}
    history = page.get("/api/history").json()
    assert [e["n"] for e in history["entries"]] == [2, 1] and history["skipped_lines"] == [2]
    undone = page.post("/api/undo", headers=headers)
    assert undone.status_code == 200 and undone.json()["change"]["undoes"] == 2
    assert set(load_manifest(corpus).query("take == @STRAT")["guitar"]) == {"stratocaster"}
    assert page.post("/api/undo", headers=headers).json()["change"]["undoes"] == 1
    assert set(load_manifest(corpus).query("take == @STRAT")["player"]) == {""}


def test_no_edit_is_saved_without_its_history_line(page: TestClient, corpus: Path) -> None:
    (corpus / "history.jsonl").mkdir()  # cannot be appended to
    before = manifest_bytes(corpus)
    response = page.patch(
        f"/api/rows/{STRAT}-raw",
        json={"guitar": "telecaster"},
        headers={"X-Guitarlab-Token": TOKEN},
    )
    assert response.status_code == 400 and "history.jsonl" in response.json()["error"]
    assert manifest_bytes(corpus) == before


def test_a_history_line_that_fails_after_the_save_puts_the_manifest_back(
    corpus: Path, monkeypatch
) -> None:
    import guitarlab.corpus.edits as review
    from guitarlab.corpus.errors import ManifestError

    before = manifest_bytes(corpus)

    def disk_full(f, line):
        f.close()
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(review, "_append_line", disk_full)
    with pytest.raises(ManifestError, match="No space left on device"):
        relabel_take(corpus, f"{STRAT}-raw", {"guitar": "telecaster"})
    assert manifest_bytes(corpus) == before


# ------------------------------------------------------------ notes


def test_a_notes_edit_leaves_the_renders_provenance(page: TestClient, corpus: Path) -> None:
    def provenance(frame):
        for tone in ("clean", "crunch"):
            note = f"rendered from {STRAT}-raw with preset {tone}"
            frame.loc[frame["id"] == f"{STRAT}-{tone}", "notes"] = note
        return frame

    update_manifest(corpus, provenance)
    headers = {"X-Guitarlab-Token": TOKEN}
    row = page.get(f"/api/rows/{STRAT}-raw").json()
    assert "notes" in row["per_file"] and "guitar" not in row["per_file"]
    edit = {"notes": "new strings", "player": "ann"}
    response = page.patch(f"/api/rows/{STRAT}-raw", json=edit, headers=headers)
    assert response.status_code == 200, response.text
    frame = load_manifest(corpus).set_index("id")
    assert frame.loc[f"{STRAT}-raw", "notes"] == "new strings"
    for tone in ("clean", "crunch"):
        assert (
            frame.loc[f"{STRAT}-{tone}", "notes"] == f"rendered from {STRAT}-raw with preset {tone}"
        )
        assert frame.loc[f"{STRAT}-{tone}", "player"] == "ann"  # a label: the whole take
    entry = json.loads((corpus / "history.jsonl").read_text().splitlines()[-1])
    assert sorted((e["id"], e["column"]) for e in entry["edits"] if e["column"] == "notes") == [
        (f"{STRAT}-raw", "notes")
    ]
