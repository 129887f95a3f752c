"""Shell completion of names the shell cannot know: presets, guitars, run folders.

click completes options and paths by itself once the shell is set up
(``eval "$(_GUITARLAB_COMPLETE=bash_source guitarlab)"``); these ``shell_complete``
callbacks add the values. They run on every Tab press, so they read files with the
standard library only (no pandas, no pedalboard) and never raise: a corpus that is not
there or a manifest that does not parse completes nothing.
"""

from __future__ import annotations

import csv
import importlib.util
import os
from pathlib import Path

import click
from click.shell_completion import CompletionItem

# The corpus layout (corpus/manifest.py's MANIFEST_NAME and PRESETS_DIR, a test keeps them
# equal): importing that module would load pandas on every Tab press.
MANIFEST_NAME = "manifest.csv"
PRESETS_DIR = "presets"
RUN_JSON = "run.json"  # train/rundir.py's RUN_JSON


def _builtin_presets_folder() -> Path | None:
    spec = importlib.util.find_spec("guitarlab.augment")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / PRESETS_DIR


def _corpus_given(ctx: click.Context) -> Path | None:
    """The ``--corpus`` already typed on the command line, if any."""
    corpus = ctx.params.get("corpus")
    return Path(corpus) if corpus else None


def preset_names(corpus: str | os.PathLike | None = None) -> list[str]:
    """The built-in preset names and ``CORPUS/presets/*.json``'s, sorted (file stems)."""
    folders = [_builtin_presets_folder()]
    if corpus:
        folders.append(Path(corpus) / PRESETS_DIR)
    names = set()
    for folder in folders:
        if folder is not None and folder.is_dir():
            names.update(path.stem for path in folder.glob("*.json"))
    return sorted(names)


def complete_presets(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Preset names; after a comma (``--tones clean,cr``) the last name, the rest kept."""
    done, _, last = incomplete.rpartition(",")
    prefix = f"{done}," if done else ""
    taken = set(done.split(",")) if done else set()
    names = preset_names(_corpus_given(ctx))
    if param.name == "tone":  # import --tone: dry takes are "raw"
        names = ["raw", *names]
    return [
        CompletionItem(prefix + name)
        for name in names
        if name.startswith(last) and name not in taken
    ]


def guitar_names(corpus: str | os.PathLike) -> list[str]:
    """The guitars the corpus's manifest names, sorted (empty when it cannot be read)."""
    try:
        with open(Path(corpus) / MANIFEST_NAME, newline="", encoding="utf-8") as handle:
            return sorted({row.get("guitar") or "" for row in csv.DictReader(handle)} - {""})
    except (OSError, csv.Error, UnicodeDecodeError):
        return []


def complete_guitars(
    ctx: click.Context, _param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Guitars already in the corpus given by ``--corpus`` (typed before ``--guitar``)."""
    corpus = _corpus_given(ctx)
    if corpus is None:
        return []
    return [CompletionItem(name) for name in guitar_names(corpus) if name.startswith(incomplete)]


def run_folders(incomplete: str) -> list[str]:
    """Folders beside what is typed that hold a training run (a ``run.json``)."""
    head, sep, stem = incomplete.rpartition(os.sep)
    typed_folder = head + sep  # kept as typed, so the shell's prefix matches
    try:
        entries = sorted(Path(typed_folder or ".").iterdir())
    except OSError:
        return []
    return [
        typed_folder + entry.name
        for entry in entries
        if entry.name.startswith(stem) and (entry / RUN_JSON).is_file()
    ]


def complete_runs(
    _ctx: click.Context, _param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Run folders (``train --out``'s, with a run.json) for evaluate, predict, retrain --from."""
    return [CompletionItem(path) for path in run_folders(incomplete)]
