"""The README stays a short front page and every link in it and in docs/ leads somewhere.

The brief asks the README itself for the two commands, the real session with an audio
interface, the manifest's columns and how to retrain on a grown corpus; the rest lives in
docs/, and a moved section must not leave a dead link or picture behind.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from guitarlab.corpus.manifest import COLUMNS

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _prose(text: str) -> str:
    """The text outside fenced code blocks, where links are links."""
    return re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)


def _anchors(text: str) -> set[str]:
    """GitHub's anchor for every heading: lower case, punctuation dropped, spaces to -."""
    heads = re.findall(r"^#{1,6} (.+)$", _prose(text), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in heads}


def test_the_readme_is_a_short_front_page_with_what_the_brief_asks() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) < 250
    for needed in (
        "make demo",
        "make test",
        "## A real session with an audio interface",
        'guitarlab level --corpus my-corpus --guitar stratocaster --device "Scarlett"',
        "guitarlab record --corpus my-corpus",
        "## Retraining on a grown corpus",
        "guitarlab retrain --corpus my-corpus --from my-run",
        "## The manifest",
    ):
        assert needed in readme, needed
    first_cells = re.findall(r"^\| (`.+?`) \|", readme, re.M)
    named = {name for cell in first_cells for name in re.findall(r"`(\w+)`", cell)}
    assert set(COLUMNS) <= named, set(COLUMNS) - named


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_and_picture_resolves(page: Path) -> None:
    dead = []
    for target in LINK.findall(_prose(page.read_text())):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: not checked offline
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        missing = not file.exists()
        if missing or (
            anchor and file.suffix == ".md" and anchor not in _anchors(file.read_text())
        ):
            dead.append(target)
    assert not dead, f"{page.name}: dead links {dead}"


def test_the_docs_pages_are_all_linked_from_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    for page in PAGES[1:]:
        assert f"(docs/{page.name})" in readme, page.name
