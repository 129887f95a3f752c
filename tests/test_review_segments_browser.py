"""Segments in the review page, end to end in headless Chromium: drag a span on the
waveform, label it (typed, then with a number key), reload and see the regions again,
select one and delete it, drag an edge, and undo every step; segments.csv and
history.jsonl say the same at each point."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import post_corpus

pytest.importorskip("starlette", reason="the review extra is not installed")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

# The browser and the `guitarlab review` subprocess of the row view's test; `server`
# serves the `corpus` fixture of this module (pytest resolves it here).
from test_review_browser import WAIT_MS, browser, server  # noqa: E402, F401

pytestmark = pytest.mark.browser

TAKE = "stratocaster-backing-t001"
SECONDS = 4.0


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("review-segments-browser") / "corpus"
    return post_corpus(root, tones=("raw", "clean"), seconds=SECONDS)


def segments(corpus: Path) -> pd.DataFrame:
    return pd.read_csv(corpus / "segments.csv", dtype=str, keep_default_na=False)


def history(corpus: Path) -> list[dict]:
    return [json.loads(line) for line in (corpus / "history.jsonl").read_text().splitlines()]


def quiet(page) -> None:
    """Clear the page's message line, so the next :func:`said` waits for a new one."""
    page.evaluate("() => { document.getElementById('message').textContent = ''; }")


def said(page, text: str) -> None:
    """Wait for the page to say ``text``; a timeout shows what it said instead."""
    try:
        page.wait_for_function(
            "t => document.getElementById('message').textContent.includes(t)", arg=text
        )
    except sync_api.TimeoutError:
        pytest.fail(f"the page never said {text!r}; it says {page.inner_text('#message')!r}")


def shown(page, count: int) -> None:
    """Wait until the waveform draws ``count`` regions of the chosen column."""
    page.wait_for_function(
        "n => document.getElementById('waveform').dataset.segments === String(n)"
        " && document.querySelectorAll('#segment-list li.segment').length === n",
        arg=count,
    )


def test_drag_label_reload_delete_move_and_undo(server: str, corpus: Path, browser) -> None:  # noqa: F811
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(WAIT_MS)
    page.goto(server)
    page.click(f"#rows tbody tr[data-id='{TAKE}-raw']")
    page.wait_for_function(
        "() => document.getElementById('waveform').dataset.drawn === '1'"
        " && document.querySelectorAll('#segment-column option').length > 0"
    )
    box = page.locator("#waveform").bounding_box()
    y = box["y"] + box["height"] / 2

    def at(fraction: float) -> float:
        return box["x"] + box["width"] * fraction

    def drag(a: float, b: float) -> None:
        page.mouse.move(at(a), y)
        page.mouse.down()
        page.mouse.move(at(b), y, steps=5)
        page.mouse.up()

    # a new column, a span dragged and a label typed: the first segment
    page.fill("#segment-new-column", "technique")
    page.press("#segment-new-column", "Enter")
    drag(0.1, 0.3)
    quiet(page)
    page.fill("#segment-value", "palm_mute")
    page.press("#segment-value", "Enter")
    said(page, "labelled technique=palm_mute")
    shown(page, 1)
    assert page.inner_text("#segment-keys").strip() == "1 palm_mute"  # the key legend

    # the next span labelled with key 1
    drag(0.5, 0.75)
    quiet(page)
    page.keyboard.press("1")
    said(page, "labelled technique=palm_mute")
    shown(page, 2)

    # reload: both regions come back, on the waveform and in the list
    page.reload()
    page.wait_for_function("() => document.getElementById('waveform').dataset.drawn === '1'")
    shown(page, 2)
    assert page.input_value("#segment-column") == "technique"
    stored = segments(corpus)
    spans = [(float(a), float(b)) for a, b in zip(stored["start_s"], stored["end_s"], strict=True)]
    assert [(round(a, 1), round(b, 1)) for a, b in spans] == [(0.4, 1.2), (2.0, 3.0)]
    assert set(stored["technique"]) == {"palm_mute"} and set(stored["origin"]) == {"review"}
    assert set(stored["take"]) == {TAKE}
    lines = history(corpus)
    assert [e["action"] for e in lines] == ["add_segments", "add_segments"]
    assert all(e["who"] == "ci" and e["kind"] == "segments" for e in lines)

    # click the second region to select it, Delete deletes it
    page.mouse.click(at(0.6), y)
    page.wait_for_selector("#segment-list li.picked")
    quiet(page)
    page.keyboard.press("Delete")
    said(page, "deleted")
    shown(page, 1)
    assert len(segments(corpus)) == 1

    # select the first and drag its end edge from 1.2 s to 1.6 s
    page.mouse.click(at(0.2), y)
    page.wait_for_selector("#segment-list li.picked")
    quiet(page)
    drag(0.3, 0.4)
    said(page, "end moved to")
    (end,) = segments(corpus)["end_s"].astype(float)
    assert abs(end - 1.6) < 0.05

    # undo, step by step: the edge, the deleted region, then both additions
    for remaining, ends in ((1, 1.2), (2, 1.2), (1, 1.2), (0, None)):
        quiet(page)
        page.click("#undo-button")
        said(page, "undid change")
        shown(page, remaining)
        stored = segments(corpus)
        assert len(stored) == remaining
        if ends is not None:
            assert abs(float(stored["end_s"].iloc[0]) - ends) < 0.05
    assert [e["action"] for e in history(corpus)][-4:] == ["undo"] * 4

    # the history view names each segment edit: which segment, its span and label
    page.click("#history-button")
    page.wait_for_function("() => document.querySelectorAll('#side-list li').length === 8")
    lines = page.locator("#side-list li").all_inner_texts()
    first_add = lines[-1]  # newest first
    assert "add_segments" in first_add and "seg-000001 none -> 0." in first_add, first_add
    assert first_add.endswith(" s technique=palm_mute")
    assert "delete_segment" in lines[-3] and "-> none" in lines[-3]
    page.close()


class TechniqueRun:
    """Stands in for ``--run``: a model of ``technique`` that hears a palm mute for two
    seconds, then bends (sure of both), as RunLabels.predict_row answers."""

    label_column = "technique"

    def predict_row(self, row) -> dict:
        labels = ["palm_mute", "palm_mute", "bend", "bend"]
        return {
            "label": "palm_mute",
            "confidence": 1.0,
            "probabilities": {"palm_mute": 0.5, "bend": 0.5},
            "times_s": [0.0, 1.0, 2.0, 3.0],
            "labels_over_time": labels,
            "confidence_over_time": [1.0] * 4,
        }

    def queue(self, manifest) -> list[dict]:
        return []


@pytest.fixture
def run_server(tmp_path: Path):
    """The review app with :class:`TechniqueRun`, served by uvicorn in a thread."""
    import socket
    import threading

    import uvicorn

    from guitarlab.corpus.segments import add_segments
    from guitarlab.review import create_app

    root = post_corpus(tmp_path / "corpus", guitars=("ST",), tones=("raw",), seconds=SECONDS)
    spans = [(0.0, 2.0, "palm_mute"), (2.0, 4.0, "bend")]
    add_segments(
        root,
        TAKE,
        [{"start_s": a, "end_s": b, "technique": v} for a, b, v in spans],
        origin="review",
    )
    token = "t0ken"
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    app = create_app(root, token=token, labels=TechniqueRun())
    config = uvicorn.Config(app, log_level="warning", lifespan="off", log_config=None)
    uvi = uvicorn.Server(config)
    thread = threading.Thread(target=uvi.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/?token={token}#row={TAKE}-raw"
    finally:
        uvi.should_exit = True
        thread.join(10)
        sock.close()


def test_the_models_label_per_second_in_the_segments_colours(run_server: str, browser) -> None:  # noqa: F811
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(WAIT_MS)
    page.goto(run_server)
    page.wait_for_function("() => document.getElementById('model-strip').dataset.drawn === '4'")
    shown(page, 2)
    assert page.input_value("#segment-column") == "technique"  # the run's column first
    # the strip's first and last second are drawn in the colour of the segment they agree with
    colours = page.evaluate(
        """() => {
          const strip = document.getElementById('model-strip');
          const g = strip.getContext('2d');
          const pixel = (f) => [...g.getImageData(Math.floor(strip.width * f), 4, 1, 1).data.slice(0, 3)];
          const key = (n) => getComputedStyle(document.querySelector(
            `#segment-keys [data-key="${n}"] i`)).backgroundColor.match(/\\d+/g).map(Number);
          const wave = document.getElementById('waveform');
          const top = (f) => [...wave.getContext('2d').getImageData(Math.floor(wave.width * f), 1, 1, 1).data.slice(0, 3)];
          return {early: pixel(0.1), late: pixel(0.9), bend: key(1), palm_mute: key(2),
                  region_early: top(0.1), region_late: top(0.9)};
        }"""
    )
    assert page.inner_text("#segment-keys").split() == ["1", "bend", "2", "palm_mute"]
    assert colours["early"] == colours["palm_mute"] == colours["region_early"]
    assert colours["late"] == colours["bend"] == colours["region_late"]
    assert colours["bend"] != colours["palm_mute"]
    page.close()
