"""Draw ``docs/review-segments.png``: the review page showing a take's segments.

A synthetic take (8 s of a stratocaster lead) gets three ``technique`` segments
(palm_mute, bend, vibrato), ``guitarlab review`` serves the corpus, and headless Chromium
(Debian's ``chromium``, driven by Playwright, as in tests/test_review_browser.py) opens
the take, selects the middle region and photographs the row view.

Run it again after changing the page::

    .venv/bin/python docs/review_segments_picture.py [--out docs/review-segments.png]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REGIONS = [(0.5, 2.5, "palm_mute"), (3.0, 5.0, "bend"), (5.5, 7.5, "vibrato")]
SECONDS = 8.0
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


def make_corpus(root: Path) -> str:
    """A one-take synthetic corpus with :data:`REGIONS` as segments; returns the raw row's id."""
    from guitarlab.corpus.manifest import load_manifest
    from guitarlab.corpus.segments import add_segments
    from guitarlab.synth import synth_to_corpus

    synth_to_corpus(
        root, guitars=("stratocaster",), phrases=("lead",), seconds=SECONDS, progress=False
    )
    row = load_manifest(root).iloc[0]
    spans = [{"start_s": a, "end_s": b, "technique": value} for a, b, value in REGIONS]
    add_segments(root, str(row["take"]), spans, origin="review", who="docs")
    return str(row["id"])


def photograph(address: str, row_id: str, out: Path) -> None:
    """Open ``row_id`` on the page at ``address``, select the middle region, save ``out``."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=FLAGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        page.set_default_timeout(60_000)
        page.goto(f"{address}#row={row_id}")
        page.wait_for_function(
            "() => document.getElementById('waveform').dataset.drawn === '1'"
            f" && document.getElementById('waveform').dataset.segments === '{len(REGIONS)}'"
            " && document.getElementById('spectrogram').complete"
        )
        box = page.locator("#waveform").bounding_box()
        middle = (REGIONS[1][0] + REGIONS[1][1]) / 2 / SECONDS
        page.mouse.click(box["x"] + box["width"] * middle, box["y"] + box["height"] / 2)
        page.wait_for_selector("#segment-list li.picked")
        row = page.locator("#row").bounding_box()
        listed = page.locator("#segment-list").bounding_box()
        bottom = listed["y"] + listed["height"] + 8
        clip = {"x": row["x"], "y": row["y"], "width": row["width"], "height": bottom - row["y"]}
        page.screenshot(path=str(out), clip=clip)
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).with_name("review-segments.png")))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "corpus"
        row_id = make_corpus(root)
        server = subprocess.Popen(
            [sys.executable, "-m", "guitarlab", "review", str(root), "--port", "0"],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            line = server.stdout.readline()
            address = line.split(": ", 1)[1].strip()
            photograph(address, row_id, Path(args.out))
        finally:
            server.terminate()
            server.wait(10)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
