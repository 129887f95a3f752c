"""The review page never freezes (issue 33), in headless Chromium: while the run's model is
still labelling the queue, the table, a row, its audio and spectrogram answer; three edits
made at once (labels, a span, the file's exclusion) all land; the table spans the window."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from conftest import post_corpus

pytest.importorskip("starlette", reason="the review extra is not installed")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

from test_review_browser import WAIT_MS, browser  # noqa: E402, F401
from test_review_responsive import GatedLabels  # noqa: E402

from guitarlab.corpus.manifest import load_manifest  # noqa: E402

pytestmark = pytest.mark.browser

STRAT = "stratocaster-backing-t001"


@pytest.fixture
def served(tmp_path: Path):
    """The app over a 6-row corpus with a slow stand-in run, served by uvicorn in a thread."""
    import socket

    import uvicorn

    from guitarlab.review import create_app

    root = post_corpus(tmp_path / "corpus", seconds=2.0)
    labels = GatedLabels()
    token = "t0ken"
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    app = create_app(root, token=token, labels=labels, user="ci")
    config = uvicorn.Config(app, log_level="warning", lifespan="off", log_config=None)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/?token={token}", root, labels
    finally:
        labels.gate.set()
        server.should_exit = True
        thread.join(10)
        sock.close()


def open_page(browser, url: str):  # noqa: F811
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(WAIT_MS)
    page.goto(url)
    page.wait_for_function("() => document.querySelectorAll('#rows tbody tr').length === 6")
    return page


def test_the_table_and_a_row_answer_while_the_queue_computes(served, browser) -> None:  # noqa: F811
    url, _, labels = served
    page = open_page(browser, url)
    # the table uses the window's width and shows every column
    width = page.evaluate(
        """() => { const w = document.querySelector('.table-wrap');
                   return {wrap: w.clientWidth, table: document.getElementById('rows').scrollWidth,
                           window: window.innerWidth}; }"""
    )
    assert width["wrap"] > 0.9 * width["window"] and width["table"] <= width["wrap"], width
    # a chosen filter says which column it filters
    page.select_option("#filter-tone", "raw")
    page.wait_for_function("() => document.querySelectorAll('#rows tbody tr').length === 2")
    assert page.evaluate(
        "() => document.getElementById('filter-tone').selectedOptions[0].text"
    ) == ("tone: raw")
    page.select_option("#filter-tone", "")
    page.wait_for_function("() => document.querySelectorAll('#rows tbody tr').length === 6")

    page.click("#queue-button")
    page.wait_for_selector("#queue-progress", state="visible")
    page.wait_for_function(
        "() => document.getElementById('message').textContent.includes('0 of 6')"
    )
    # the model is stuck (the gate is shut): the table, the row, its audio still answer
    page.click(f'#rows tbody tr[data-id="{STRAT}-raw"]')
    page.wait_for_function(
        f"() => document.getElementById('row-title').textContent === '{STRAT}-raw'"
    )
    page.wait_for_function("() => document.getElementById('waveform').dataset.drawn === '1'")
    page.wait_for_function(
        "() => { const i = document.getElementById('spectrogram'); return i.complete && i.naturalWidth > 0; }"
    )
    page.wait_for_function("() => document.getElementById('player').readyState >= 1")
    assert abs(page.evaluate("() => document.getElementById('player').duration") - 2.0) < 0.01
    status = page.evaluate("() => fetch('/api/queue/status').then((r) => r.json())")
    assert status["state"] == "running" and status["done"] == 0
    assert page.is_visible("#queue-progress")
    labels.gate.set()  # the model answers: the queue arrives, the progress bar goes
    page.wait_for_function("() => document.querySelectorAll('#side-list li').length === 6")
    assert "Review queue (guitar)" in page.inner_text("#side-title")
    assert not page.is_visible("#queue-progress")
    assert "3 file(s) where the model disagrees" in page.inner_text("#message")
    page.close()


def test_three_quick_edits_in_a_row_all_land(served, browser) -> None:  # noqa: F811
    url, root, labels = served
    labels.gate.set()  # the row's model labels answer at once here
    page = open_page(browser, url + f"#row={STRAT}-raw")
    page.wait_for_function("() => document.getElementById('waveform').dataset.drawn === '1'")
    box = page.locator("#waveform").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + 0.25 * box["width"], y)
    page.mouse.down()
    page.mouse.move(box["x"] + 0.5 * box["width"], y, steps=4)
    page.mouse.up()
    assert "selected" in page.inner_text("#selection")
    # save a label, exclude the selected span and exclude the file, all in one go: each is
    # sent once the one before was answered, with the version it returned
    page.evaluate(
        """() => {
          document.getElementById('field-player').value = 'zoe';
          document.getElementById('save-button').click();
          document.getElementById('span-button').click();
          document.getElementById('reason').value = 'cough';
          document.getElementById('exclude-button').click();
        }"""
    )
    page.wait_for_function(
        "() => document.getElementById('message').textContent.startsWith('excluded (change 3')"
    )
    page.wait_for_function(
        "() => document.getElementById('excluded-now').textContent === 'excluded: cough'"
    )
    assert page.locator("#spans li").count() == 1
    frame = load_manifest(root).set_index("id")
    take = frame[frame["take"] == STRAT]
    assert set(take["player"]) == {"zoe"} and take["exclude_spans"].nunique() == 1
    [[start, end]] = json.loads(take["exclude_spans"].iloc[0])
    assert abs(start - 0.5) < 0.02 and abs(end - 1.0) < 0.02
    assert frame.loc[f"{STRAT}-raw", "excluded"] == "cough"
    history = [json.loads(line) for line in (root / "history.jsonl").read_text().splitlines()]
    assert [e["action"] for e in history] == ["relabel", "add_span", "exclude"]
    page.close()


def test_the_table_pages_through_a_big_corpus(tmp_path: Path, browser) -> None:  # noqa: F811
    """450 rows: the page lists 200, then 200 more, then the last 50, never all at once."""
    import socket

    import uvicorn

    from benchmarks.bench_scale import build_corpus
    from guitarlab.review import create_app

    root = build_corpus(tmp_path / "corpus", 450)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    config = uvicorn.Config(
        create_app(root, token="t0ken"), log_level="warning", lifespan="off", log_config=None
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(WAIT_MS)
        asked: list[str] = []
        page.on("request", lambda r: asked.append(r.url) if "/api/rows?" in r.url else None)
        page.goto(f"http://127.0.0.1:{sock.getsockname()[1]}/?token=t0ken")
        count = "n => document.querySelectorAll('#rows tbody tr').length === n"
        page.wait_for_function(count, arg=200)
        assert "450 of 450 match, 200 listed" in page.inner_text("#counts")
        assert "guitar: jazzmaster 75" in page.inner_text("#counts")  # of every row
        assert page.inner_text("#more-button") == "Load 200 more"
        page.click("#more-button")
        page.wait_for_function(count, arg=400)
        assert page.inner_text("#more-button") == "Load 50 more"
        page.click("#more-button")
        page.wait_for_function(count, arg=450)
        assert not page.is_visible("#more-button")
        ids = page.eval_on_selector_all("#rows tbody tr", "rows => rows.map((r) => r.dataset.id)")
        assert ids == sorted(ids) and len(set(ids)) == 450  # in order, none twice
        assert all("limit=200" in url for url in asked), asked
        page.close()
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
