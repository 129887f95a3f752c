"""End to end in a real browser: ``guitarlab review`` serving a synthetic corpus to headless
Chromium (Debian's package, driven by Playwright): filter, play, relabel, mark a span,
reload, and find the changes in manifest.csv and history.jsonl.

Set ``GUITARLAB_SCREENSHOT=docs/review.png`` to write the guide's picture of the row view (docs/guide.md).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from guitarlab.corpus.manifest import load_manifest

pytest.importorskip("starlette", reason="the review extra is not installed")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
TAKE = "les_paul-backing-t001"
WAIT_MS = 60_000


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    from guitarlab.augment.renders import render_corpus
    from guitarlab.synth import synth_to_corpus

    root = tmp_path_factory.mktemp("review-browser") / "corpus"
    synth_to_corpus(root, phrases=("backing",), seconds=4, progress=False)
    render_corpus(root, tones="clean,crunch,distorted", progress=False)
    return root


@pytest.fixture(scope="module")
def server(corpus: Path):
    """``guitarlab review CORPUS --port 0`` in a subprocess; yields the printed address."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "guitarlab", "review", str(corpus), "--port", "0", "--user", "ci"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        for line in proc.stdout:
            lines.append(line)
            ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        if not ready.wait(120):
            proc.kill()
            pytest.fail(f"guitarlab review printed no address: {proc.stderr.read()}")
        address = lines[0].split(": ", 1)[1].strip()
        assert address.startswith("http://127.0.0.1:") and "/?token=" in address
        yield address
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium chromium-driver")
    with sync_api.sync_playwright() as p:  # launch() gives it a fresh temporary profile
        launched = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


def test_without_the_token_the_page_is_refused(server: str) -> None:
    import urllib.error
    import urllib.request

    bare = server.split("?")[0]
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(bare, timeout=30)
    assert info.value.code == 403
    with urllib.request.urlopen(server, timeout=30) as response:
        assert response.status == 200 and b"guitarlab review" in response.read()


def test_filter_play_relabel_mark_a_span_and_reload(
    server: str, corpus: Path, browser, tmp_path: Path
) -> None:
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    page.set_default_timeout(WAIT_MS)
    audio_status: list[int] = []
    page.on("response", lambda r: audio_status.append(r.status) if "/api/audio/" in r.url else None)
    writes: list = []
    page.on("request", lambda r: writes.append(r) if r.method in ("PATCH", "POST") else None)
    page.goto(server)
    page.wait_for_selector("#rows tbody tr")
    assert page.locator("#rows tbody tr").count() == 8

    # filter to one guitar
    page.select_option("#filter-guitar", "les_paul")
    page.wait_for_function(
        "() => { const rows = [...document.querySelectorAll('#rows tbody tr')];"
        " return rows.length === 4 && rows.every(r => r.children[1].textContent === 'les_paul'); }"
    )

    # open the raw take and play it
    page.click(f"#rows tbody tr[data-id='{TAKE}-raw']")
    page.wait_for_selector("#row:not([hidden])")
    page.wait_for_function("() => document.querySelectorAll('#renders .render').length === 4")
    page.evaluate(
        "() => { const a = document.getElementById('player'); a.muted = true; a.play(); }"
    )
    page.wait_for_function("() => document.getElementById('player').currentTime > 0.3")
    page.evaluate("() => document.getElementById('player').pause()")
    assert 206 in audio_status  # the browser streamed it with range requests
    cursor = page.evaluate("() => parseFloat(document.getElementById('spec-cursor').style.left)")
    assert cursor > 0

    # relabel the take
    page.fill("#field-guitar", "es335")
    page.click("#save-button")
    page.wait_for_function("() => document.getElementById('message').textContent.includes('saved')")

    # drag a span on the waveform (a quarter to a half of 4 s) and exclude it
    page.wait_for_function("() => document.getElementById('waveform').width > 0")
    box = page.locator("#waveform").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.25, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.5, y, steps=5)
    page.mouse.up()
    page.click("#span-button")
    page.wait_for_function(
        "() => document.getElementById('message').textContent.includes('excluded in every tone')"
    )

    # reload: the row comes back with its new label and span
    page.reload()
    page.wait_for_selector("#row:not([hidden])")
    page.wait_for_function("() => document.getElementById('field-guitar').value === 'es335'")
    spans = page.inner_text("#spans")
    assert spans.startswith("1.0") or spans.startswith("0.9"), spans
    page.evaluate("() => { const a = document.getElementById('player'); a.currentTime = 2.6; }")
    page.wait_for_function(
        "() => document.getElementById('waveform').dataset.drawn === '1'"
        " && document.getElementById('player').readyState >= 1"
        " && [...document.querySelectorAll('img')].every(i => i.complete && i.naturalWidth > 0)"
    )
    # every edit the page made carried the token in its header (a cookie alone cannot write)
    token = server.split("token=")[1]
    assert len(writes) == 2
    assert all(r.all_headers().get("x-guitarlab-token") == token for r in writes)
    shot = Path(os.environ.get("GUITARLAB_SCREENSHOT") or tmp_path / "review.png")
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    page.close()

    # on disk: every tone of the take relabelled and spanned, two history lines
    frame = load_manifest(corpus)
    take = frame[frame["take"] == TAKE]
    assert len(take) == 4 and set(take["guitar"]) == {"es335"}
    (stored,) = set(take["exclude_spans"])
    ((start, end),) = json.loads(stored)
    assert abs(start - 1.0) < 0.1 and abs(end - 2.0) < 0.1
    history = [json.loads(line) for line in (corpus / "history.jsonl").read_text().splitlines()]
    assert [e["action"] for e in history] == ["relabel", "add_span"]
    assert all(e["who"] == "ci" and e["take"] == TAKE for e in history)
    assert {(e["old"], e["new"]) for e in history[0]["edits"]} == {("les_paul", "es335")}


def test_a_form_on_another_local_port_cannot_write(server: str, corpus: Path, browser) -> None:
    """Issue 29: a page on http://127.0.0.1:OTHER posting a plain form (the browser adds the
    review cookie: SameSite does not tell ports apart) is refused and changes nothing."""
    import http.server

    app = server.split("/?")[0]
    form = (
        f'<form method="POST" enctype="text/plain" action="{app}/api/rows/{TAKE}-raw/exclude">'
        '<input name=\'{"reason": "forged", "x": "\' value=\'"}\'></form>'
        "<script>document.forms[0].submit()</script>"
    ).encode()

    class Evil(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(form)))
            self.end_headers()
            self.wfile.write(form)

        def log_message(self, *args) -> None:
            pass

    evil = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Evil)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    before = (corpus / "manifest.csv").read_bytes()
    history = (corpus / "history.jsonl").read_bytes()
    page = browser.new_page()
    page.set_default_timeout(WAIT_MS)
    try:
        page.goto(server)  # the user opened the review page: the browser holds the cookie
        with page.expect_response(lambda r: "/exclude" in r.url) as answer:
            page.goto(f"http://127.0.0.1:{evil.server_address[1]}/")
        response = answer.value
        assert response.request.all_headers().get("cookie", "").startswith("guitarlab-review-")
        assert response.status == 403 and "is not this page" in response.text()
    finally:
        page.close()
        evil.shutdown()
    assert (corpus / "manifest.csv").read_bytes() == before
    assert (corpus / "history.jsonl").read_bytes() == history
