"""Output folders: what guitarlab may replace, who may write it now, and what a kill left.

One rule for every stage that writes a folder (``dataset build``, ``export``, ``train``):

- a folder is *guitarlab's* for a purpose when a marker file inside says so
  (:data:`MARKER_NAME`, written when the folder is made), or when it holds that stage's
  own meta file (``dataset.json``, ``run.json``: folders made before the marker existed);
- it is never the corpus or dataset the command reads, nor inside or above one, nor inside
  any corpus (a folder with ``manifest.csv``), nor a folder that holds a corpus;
- ``--overwrite`` replaces only a folder that is guitarlab's for that same purpose;
  anything else is refused in one line that does not advise a flag that would destroy it;
- while a process writes a folder it holds a lock beside it (``.NAME.guitarlab-lock``),
  so a second writer is refused instead of racing it;
- temp folders a killed writer left beside it (``.NAME.<random>.building``) are removed
  by the next writer of the same folder, which says so in one line.

Examples
--------
>>> made_for("no-such-folder") is None
True
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import re
import shutil
import sys
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path

from guitarlab.corpus.atomic import atomic_folder, write_text_atomic
from guitarlab.corpus.defaults import VERSION
from guitarlab.corpus.errors import GuitarlabError

MARKER_NAME = ".guitarlab-output.json"
CORPUS_FILE = "manifest.csv"  # what makes a folder a corpus (corpus.manifest.MANIFEST_NAME)
LOCK_SUFFIX = ".guitarlab-lock"
TEMP_SUFFIXES = (".building", ".exporting", ".old")  # atomic_folder's temp and aside folders
PURPOSE_WORDS = {"dataset": "a dataset", "export": "an export", "run": "a training run"}

Echo = Callable[[str], None]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def made_for(folder: str | os.PathLike, *, legacy: str | None = None) -> str | None:
    """The purpose guitarlab made ``folder`` for (``"dataset"``, ``"export"``, ``"run"``).

    Read from the marker file; without one, a folder holding ``legacy`` (the stage's own
    meta file, a JSON object) counts as made for ``legacy``'s purpose and gives ``"legacy"``.
    None when the folder is not guitarlab's (or does not exist).
    """
    folder = Path(folder)
    marker = folder / MARKER_NAME
    if marker.is_file():
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(marker.read_text(encoding="utf-8"))
            if isinstance(data, dict) and data.get("made_by") == "guitarlab":
                return str(data.get("purpose"))
        return None
    if legacy and (folder / legacy).is_file():
        with contextlib.suppress(OSError, ValueError):
            if isinstance(json.loads((folder / legacy).read_text(encoding="utf-8")), dict):
                return "legacy"
    return None


def write_marker(folder: str | os.PathLike, purpose: str) -> Path:
    """Mark ``folder`` as made by guitarlab for ``purpose``: only such folders are replaced."""
    record = {
        "made_by": "guitarlab",
        "purpose": purpose,
        "guitarlab_version": VERSION,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return write_text_atomic(Path(folder) / MARKER_NAME, json.dumps(record, indent=1) + "\n")


def _is_empty_folder(path: Path, ignore: tuple[str, ...] = ()) -> bool:
    """Nothing in it but the marker (and names matching ``ignore``)."""
    return path.is_dir() and not any(
        p.name != MARKER_NAME and not any(fnmatch.fnmatch(p.name, pat) for pat in ignore)
        for p in path.iterdir()
    )


def _corpus_above(path: Path) -> Path | None:
    for folder in (path, *path.parents):
        if (folder / CORPUS_FILE).is_file():
            return folder
    return None


def refuse_inside_corpus(
    out: str | os.PathLike,
    *,
    option: str = "--out",
    error: type[GuitarlabError] = GuitarlabError,
) -> None:
    """Refuse ``out`` when it is a corpus or inside one: outputs live next to corpora."""
    corpus = _corpus_above(Path(out).resolve())
    if corpus is not None:
        where = (
            "is the corpus" if corpus == Path(out).resolve() else f"is inside the corpus {corpus}"
        )
        raise error(f"{option} {out} {where}; choose a folder outside every corpus")


def _corpus_below(path: Path) -> Path | None:
    for folder, _dirs, files in os.walk(path):
        if CORPUS_FILE in files:
            return Path(folder)
    return None


def check_output(
    out: str | os.PathLike,
    *,
    purpose: str,
    inputs: Mapping[str, str | os.PathLike | None] | None = None,
    overwrite: bool | None = False,
    legacy: str | None = None,
    option: str = "--out",
    error: type[GuitarlabError] = GuitarlabError,
    ignore: tuple[str, ...] = (),
) -> bool:
    """Refuse ``out`` unless it may be written for ``purpose``; True when it is ours already.

    Parameters
    ----------
    out : path
        The folder a command is about to write (create, replace or add to).
    purpose : {"dataset", "export", "run"}
        What the command makes there; only a folder made for the same purpose is replaced.
    inputs : mapping of name -> path
        The folders the command reads (``{"corpus": ..., "dataset": ...}``): ``out`` may be
        none of them, nor inside or above one.
    overwrite : bool or None
        Whether the user asked to replace a folder that is ours; None when the command
        adds to its own folder instead (``train``, which has its own resume rules).
    legacy : str, optional
        The stage's meta file name: a folder holding it is ours even without a marker.
    ignore : tuple of str
        Name patterns that do not make a folder non-empty (a run's ``worker-*`` folders,
        which other workers of the same run may create first).

    Raises
    ------
    error
        One line naming the folder and what to do.
    """
    given = Path(out)
    target = given.resolve()
    for name, folder in (inputs or {}).items():
        if folder is None:
            continue
        source = Path(folder).resolve()
        if target == source:
            raise error(
                f"{option} {given} is the {name} {folder} this command reads; choose another {option}"
            )
        if source in target.parents:
            raise error(
                f"{option} {given} is inside the {name} {folder}; write it next to the {name}, "
                f"e.g. {option} {source.name}-{purpose}"
            )
        if target in source.parents:
            raise error(f"{option} {given} holds the {name} {folder}; choose another {option}")
    refuse_inside_corpus(given, option=option, error=error)
    if not target.exists():
        return False
    if not target.is_dir():
        raise error(f"{option} {given} is a file; choose a folder name")
    if _is_empty_folder(target, ignore):
        return False
    what = PURPOSE_WORDS.get(purpose, purpose)
    found = made_for(target, legacy=legacy)
    if found is None:
        files = f" (no {MARKER_NAME}" + (f" or {legacy})" if legacy else ")")
        raise error(
            f"{option} {given} holds files guitarlab did not make for {what}{files}; "
            f"choose another {option}: a new or empty folder"
        )
    if found not in (purpose, "legacy"):
        raise error(
            f"{option} {given} is {PURPOSE_WORDS.get(found, found)} guitarlab made, not {what}; "
            f"choose another {option}"
        )
    below = _corpus_below(target)
    if below is not None:
        raise error(f"{option} {given} holds the corpus {below}; choose another {option}")
    if overwrite is False:
        raise error(
            f"{option} {given} exists and is not empty (it holds {what}); pass --overwrite to "
            f"replace it, or choose another {option}"
        )
    return True


def lock_path(out: str | os.PathLike) -> Path:
    """The lock file of an output folder: beside it, as the folder itself may be replaced."""
    target = Path(out).resolve()
    return target.with_name(f".{target.name}{LOCK_SUFFIX}")


@contextlib.contextmanager
def output_lock(
    out: str | os.PathLike,
    *,
    error: type[GuitarlabError] = GuitarlabError,
    option: str = "--out",
) -> Iterator[Path]:
    """Hold ``out``'s lock while inside; refuse at once when another process holds it.

    Why: two builds into one ``--out`` both exited 0 (the last won), and a ``train
    --resume`` on a run another ``train`` was writing read half-written checkpoints.
    """
    from filelock import FileLock, Timeout

    path = lock_path(out)
    refuse_inside_corpus(out, option=option, error=error)  # not even a lock file in one
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise error(
            f"{option} {out}: another guitarlab process is writing it (lock {path.name}); "
            f"wait for it to finish or choose another {option}"
        ) from None
    try:
        yield path
    finally:
        lock.release()


def refuse_if_locked(
    out: str | os.PathLike, *, error: type[GuitarlabError] = GuitarlabError, option: str = "--out"
) -> None:
    """Refuse at once when another process writes ``out`` (before a long planning step)."""
    if lock_path(out).parent.is_dir():
        with output_lock(out, error=error, option=option):
            pass


def leftovers(out: str | os.PathLike) -> list[Path]:
    """Temp folders that a killed writer of ``out`` left beside it (``.NAME.<rnd>.building``).

    Only safe to remove while holding ``out``'s lock: a live writer would hold it.
    """
    target = Path(out).resolve()
    if not target.parent.is_dir():
        return []
    suffixes = "|".join(re.escape(s) for s in TEMP_SUFFIXES)
    pattern = re.compile(rf"\.{re.escape(target.name)}\.[a-z0-9_]{{8}}({suffixes})")
    return sorted(p for p in target.parent.iterdir() if pattern.fullmatch(p.name) and p.is_dir())


def _size_mb(folder: Path) -> float:
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total / 1e6


def remove_leftovers(out: str | os.PathLike, *, echo: Echo = _stderr) -> list[Path]:
    """Remove what :func:`leftovers` finds, saying so in one line; returns what was removed.

    A kill between ``atomic_folder``'s two renames leaves ``out`` missing and the old
    folder inside a ``.old`` leftover: that one is put back first, never removed.
    """
    found = leftovers(out)
    target = Path(out).resolve()
    if not (target.exists() or target.is_symlink()):
        for aside in (p for p in found if p.name.endswith(".old")):
            if (aside / target.name).exists():
                os.replace(aside / target.name, target)
                echo(f"[guitarlab] put back {out}, which a killed run had moved to {aside.name}")
                break
    if found:
        size = sum(_size_mb(p) for p in found)
        for folder in found:
            shutil.rmtree(folder, ignore_errors=True)
        echo(
            f"[guitarlab] removed {len(found)} unfinished folder(s) a killed run left beside "
            f"{out}: {', '.join(p.name for p in found)} ({size:.1f} MB)"
        )
    return found


@contextlib.contextmanager
def replace_output(
    out: str | os.PathLike,
    *,
    purpose: str,
    suffix: str,
    inputs: Mapping[str, str | os.PathLike | None] | None = None,
    overwrite: bool = False,
    legacy: str | None = None,
    error: type[GuitarlabError] = GuitarlabError,
    echo: Echo = _stderr,
) -> Iterator[Path]:
    """Write ``out`` whole through a temp folder, under its lock, after the checks.

    Holds the lock, removes the temp folders a killed run left (putting back an ``out`` it
    had moved aside), checks ``out`` again (it may have changed since the command
    started), then yields a temp folder (marked for
    ``purpose``) that replaces ``out`` on success. On an error, Ctrl-C or SIGTERM the
    temp folder is removed and ``out`` is left as it was.
    """
    with output_lock(out, error=error):
        remove_leftovers(out, echo=echo)  # first: it may put back an old ``out`` to check
        check_output(
            out, purpose=purpose, inputs=inputs, overwrite=overwrite, legacy=legacy, error=error
        )
        try:
            with atomic_folder(out, suffix=suffix) as work:
                write_marker(work, purpose)
                yield work
        except SystemExit as exc:
            if exc.code == 143:
                echo(f"[guitarlab] stopped by SIGTERM: the unfinished {out} was removed")
            raise
