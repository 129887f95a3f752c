"""A shot list: what a recording session still has to play, and the loop that plays it.

A plan (CSV or TOML) lists shots: a guitar, pickup, position and phrase, how many takes,
how long and at what tempo, plus any label column of the player's own. The manifest
says what is done (complete raw takes with the shot's labels), so a session stopped
anywhere resumes where it left off. The loop (:func:`run_session`) records each missing
take with :func:`~guitarlab.recorder.session.record_take` and asks the caller one key:
keep, redo, skip the shot or quit; it never reads the terminal itself.

Examples
--------
>>> shots = parse_plan([(2, {"guitar": "Les Paul", "phrase": "backing", "takes": "2"})],
...                    source="plan.csv")
>>> shots[0].describe(), shots[0].takes, shots[0].seconds
('les_paul, backing', 2, 60.0)
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from guitarlab.corpus.defaults import BPM, BPM_RANGE
from guitarlab.corpus.errors import ManifestError, RecorderError
from guitarlab.corpus.levels import DEFAULT_TARGET_PEAK_DBFS
from guitarlab.corpus.manifest import COLUMNS, RAW_TONE, SLUG_RE, slugify

LABEL_FIELDS = ("guitar", "pickup", "position", "phrase")
"""Label columns every plan knows; ``guitar`` and ``phrase`` are required."""
NUMBER_FIELDS = {"takes": 1, "seconds": 60.0, "bpm": BPM}
"""Number columns and their defaults when a shot leaves them blank."""
TEXT_FIELDS = ("player", "notes")
"""Free-text columns passed to the take's row (``player`` tells shots apart, ``notes`` not)."""
PLAN_FIELDS = (*LABEL_FIELDS, *NUMBER_FIELDS, *TEXT_FIELDS)
KEYS = {"k": "keep", "r": "redo", "s": "skip", "q": "quit"}
"""The one-key answers after a take; only ``k`` keeps it."""
SHOT_TABLE = "shot"
"""The TOML array of tables that lists the shots: ``[[shot]]``."""


class PlanError(RecorderError):
    """A plan with problems: ``problems`` holds one line per problem (file:line: field ...)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Shot:
    """One line of a plan: the labels its takes carry, how many, how long, how fast."""

    line: int
    labels: dict[str, str]
    takes: int = NUMBER_FIELDS["takes"]
    seconds: float = NUMBER_FIELDS["seconds"]
    bpm: float = NUMBER_FIELDS["bpm"]
    notes: str = ""

    @property
    def guitar(self) -> str:
        return self.labels["guitar"]

    @property
    def phrase(self) -> str:
        return self.labels["phrase"]

    @property
    def extra_labels(self) -> dict[str, str]:
        """The labels beyond the manifest's own columns (``position``, the plan's own)."""
        return {k: v for k, v in self.labels.items() if k not in COLUMNS}

    def describe(self) -> str:
        """``stratocaster, single_coil, neck, backing``: the labels a player reads."""
        order = [k for k in self.labels if k not in ("phrase", "player")] + ["phrase"]
        return ", ".join(self.labels[k] for k in order if self.labels.get(k))


@dataclass(frozen=True)
class ShotStatus:
    """A shot and how many of its takes the manifest holds (complete, raw, not excluded)."""

    number: int
    shot: Shot
    done: int

    @property
    def left(self) -> int:
        return max(0, self.shot.takes - self.done)


# ---------------------------------------------------------------- reading a plan


def _reserved_names() -> frozenset[str]:
    from guitarlab.corpus.edits import FIXED_COLUMNS
    from guitarlab.recorder.session import TAKE_ROW_COLUMNS

    taken = set(COLUMNS) | set(FIXED_COLUMNS) | set(TAKE_ROW_COLUMNS)
    return frozenset(taken | {"columns", "target_rms_dbfs"}) - set(PLAN_FIELDS)


def _name_problem(name: str) -> str | None:
    """Why a plan column may not be called ``name`` (already lower-cased), or None."""
    if name in PLAN_FIELDS:
        return None
    if name in _reserved_names():
        return f"column {name!r} is one guitarlab fills for every take; remove or rename it"
    if not SLUG_RE.match(name):
        try:
            hint = f" (e.g. {slugify(name)})"
        except ManifestError:
            hint = ""
        return f"column {name!r} is not a label name; use lower-case letters, digits and _{hint}"
    return None


def parse_plan(
    records: Iterable[tuple[int, dict]], *, source: str, problems: Iterable[str] = ()
) -> list[Shot]:
    """Validate a plan's shots, given as ``(line, {column: value})``; all problems at once.

    Values are slugified like ``record`` does (``Les Paul`` -> ``les_paul``), blank numbers
    take their defaults (``NUMBER_FIELDS``), and a column the plan does not name is a
    label of its own. Raises :class:`PlanError` listing every problem, one line each, as
    ``plan.csv:3: takes 'three' is not a whole number ...``, ``problems`` (the reader's)
    first.
    """
    problems = list(problems)
    records = list(records)
    names = list(dict.fromkeys(k for _, record in records for k in record))
    shots: list[Shot] = []
    seen: dict[tuple, int] = {}
    for line, record in records:
        where = f"{source}:{line}" if line else source
        labels: dict[str, str] = {}
        numbers: dict[str, float] = dict(NUMBER_FIELDS)
        notes = ""
        for name in names:
            value = record.get(name, "")
            if isinstance(value, (list, dict, bool)):
                problems.append(f"{where}: {name} must be text or a number")
                continue
            text = "" if value is None else str(value).strip()
            if name in NUMBER_FIELDS:
                number, problem = _number(name, value, text)
                if problem:
                    problems.append(f"{where}: {problem}")
                elif number is not None:
                    numbers[name] = number
            elif name == "notes":
                notes = text
            elif name == "player":
                labels[name] = text
            elif not text:
                labels[name] = ""
                if name in ("guitar", "phrase"):
                    problems.append(f"{where}: {name} is empty; every shot needs a {name}")
            else:
                try:
                    labels[name] = slugify(text)
                except ManifestError:
                    problems.append(f"{where}: {name} {text!r} has no letters or digits")
        if not {"guitar", "phrase"} <= set(names):
            continue  # reported once below
        labels = {k: labels[k] for k in _label_order(labels)}
        key = tuple(sorted(labels.items()))
        if key in seen and labels["guitar"] and labels["phrase"]:
            problems.append(
                f"{where}: the same shot as line {seen[key]} "
                f"({', '.join(v for v in labels.values() if v)}); give that line more takes instead"
            )
        seen.setdefault(key, line)
        shots.append(
            Shot(
                line=line,
                labels=labels,
                takes=int(numbers["takes"]),
                seconds=float(numbers["seconds"]),
                bpm=float(numbers["bpm"]),
                notes=notes,
            )
        )
    missing = [name for name in ("guitar", "phrase") if name not in names]
    if records and missing:
        problems.append(
            f"{source}: no {' or '.join(missing)} column; every shot needs a guitar and a phrase"
        )
    if not records and not problems:
        problems.append(
            f"{source}: no shots; write one per line under a header such as "
            "guitar,pickup,position,phrase,takes,seconds,bpm"
        )
    if problems:
        raise PlanError(problems)
    return shots


def _label_order(labels: dict[str, str]) -> list[str]:
    """guitar, pickup, position, the plan's own labels, phrase, player: the way one reads."""
    known = [k for k in ("guitar", "pickup", "position") if k in labels]
    own = [k for k in labels if k not in LABEL_FIELDS and k != "player"]
    return known + own + ["phrase"] + (["player"] if "player" in labels else [])


def _number(name: str, value, text: str) -> tuple[float | None, str | None]:
    """A plan's number column: (value, None), (None, None) when blank, or (None, problem)."""
    if text == "":
        return None, None
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if name == "takes":
        if not (math.isfinite(number) and number >= 1 and number == int(number)):
            return None, f"takes {text!r} is not a whole number of 1 or more; write e.g. 3"
        return int(number), None
    if name == "seconds" and not (math.isfinite(number) and number > 0):
        return None, f"seconds {text!r} must be a number above 0, e.g. 60"
    low, high = BPM_RANGE
    if name == "bpm" and not (math.isfinite(number) and low <= number <= high):
        return None, f"bpm {text!r} is out of range; use {low:g}..{high:g}"
    return number, None


def read_plan(path: str | os.PathLike) -> list[Shot]:
    """The shots of a ``.csv`` or ``.toml`` plan file, validated whole (:func:`parse_plan`).

    CSV: a header line, then one shot per line (blank lines and lines starting with ``#``
    are skipped). TOML: one ``[[shot]]`` table per shot; keys at the top are defaults for
    every shot (``seconds = 30``).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise RecorderError(f"{path}: no such plan file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RecorderError(f"{path}: cannot read the plan ({exc}); save it as UTF-8 text") from exc
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _csv_plan(text, source=str(path))
    if suffix == ".toml":
        return _toml_plan(text, source=str(path))
    raise RecorderError(f"{path}: a plan is a .csv or .toml file; rename it or convert it")


def _csv_plan(text: str, *, source: str) -> list[Shot]:
    rows = list(csv.reader(io.StringIO(text)))
    numbered = [
        (line, row)
        for line, row in enumerate(rows, 1)
        if any(cell.strip() for cell in row) and not row[0].lstrip().startswith("#")
    ]
    if not numbered:
        return parse_plan([], source=source)
    header_line, header = numbered[0]
    names = [cell.strip().lower() for cell in header]
    problems = []
    for name in names:
        problem = "a column has no name" if not name else _name_problem(name)
        if problem:
            problems.append(f"{source}:{header_line}: {problem}")
    for name in sorted({n for n in names if n and names.count(n) > 1}):
        problems.append(f"{source}:{header_line}: column {name!r} appears twice")
    records = []
    for line, row in numbered[1:]:
        if len(row) > len(names) and any(cell.strip() for cell in row[len(names) :]):
            problems.append(
                f"{source}:{line}: {len(row)} values for {len(names)} columns; "
                "quote values that contain a comma"
            )
        records.append((line, {name: cell for name, cell in zip(names, row, strict=False) if name}))
    return parse_plan(records, source=source, problems=problems)


def _toml_plan(text: str, *, source: str) -> list[Shot]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        raise RecorderError(
            f"{source}: reading a TOML plan needs Python 3.11 or newer; write the plan as CSV"
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RecorderError(f"{source}: not valid TOML ({exc}); fix that line") from None
    lines = text.splitlines()
    table_lines = [
        number
        for number, line in enumerate(lines, 1)
        if re.match(rf"^\s*\[\[\s*{SHOT_TABLE}\s*\]\]", line)
    ]
    problems: list[str] = []
    defaults = {}
    for key, value in data.items():
        if key == SHOT_TABLE:
            continue
        where = f"{source}:{_key_line(lines, key)}"
        if isinstance(value, dict):
            problems.append(f"{where}: [{key}] is not a shot; write one [[shot]] table per shot")
            continue
        problem = _name_problem(key.lower())
        if problem:
            problems.append(f"{where}: {problem}")
        defaults[key.lower()] = value
    shots = data.get(SHOT_TABLE, [])
    if not isinstance(shots, list) or not all(isinstance(s, dict) for s in shots):
        problems.append(f"{source}: write each shot as a [[shot]] table (two brackets)")
        shots = []
    records = []
    reported: set[str] = set()
    for index, shot in enumerate(shots):
        line = table_lines[index] if index < len(table_lines) else 0
        record = dict(defaults)
        for key, value in shot.items():
            name = key.lower()
            problem = _name_problem(name)
            if problem and name not in reported:
                reported.add(name)
                problems.append(f"{source}:{line}: {problem}")
            record[name] = value
        records.append((line, record))
    return parse_plan(records, source=source, problems=problems)


def _key_line(lines: list[str], key: str) -> int:
    """The line of a top-level ``key = ...`` (0 when it cannot be found)."""
    for number, line in enumerate(lines, 1):
        if re.match(rf"^\s*{re.escape(key)}\s*=", line):
            return number
        if line.lstrip().startswith("["):
            break
    return 0


# ---------------------------------------------------------------- what is done


def takes_done(shot: Shot, manifest: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``shot``'s takes in ``manifest``: raw, complete, not excluded in review,
    with every label of the shot (a label the manifest lacks counts as blank)."""
    from guitarlab.corpus.edits import EXCLUDED

    if manifest.empty:
        return manifest
    blank = pd.Series("", index=manifest.index)
    mask = (manifest["tone"] == RAW_TONE) & (manifest["status"].astype(str) == "")
    mask &= manifest.get(EXCLUDED, blank).astype(str).str.strip() == ""
    for name, value in shot.labels.items():
        mask &= manifest.get(name, blank).astype(str) == value
    return manifest[mask]


def plan_status(shots: list[Shot], manifest: pd.DataFrame) -> list[ShotStatus]:
    """How many takes of each shot are done: distinct ``take`` values, so a take recorded
    from two inputs at once (two rows) counts once."""
    return [
        ShotStatus(number, shot, min(shot.takes, int(takes_done(shot, manifest)["take"].nunique())))
        for number, shot in enumerate(shots, 1)
    ]


def progress_text(statuses: list[ShotStatus]) -> str:
    """``7 of 24 takes recorded``."""
    done = sum(s.done for s in statuses)
    return f"{done} of {sum(s.shot.takes for s in statuses)} takes recorded"


def left_text(statuses: list[ShotStatus]) -> str:
    """``17 to go, about 17 min of playing`` (empty when nothing is left)."""
    left = sum(s.left for s in statuses)
    if not left:
        return ""
    seconds = sum(s.left * s.shot.seconds for s in statuses)
    span = f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"
    return f"{left} to go, about {span} of playing"


def status_table(statuses: list[ShotStatus], *, only_left: bool = True) -> list[str]:
    """The plan as a table (the shots with takes left, unless ``only_left`` is False)."""
    rows = [s for s in statuses if s.left or not only_left]
    if not rows:
        return []
    labels = list(dict.fromkeys(k for s in rows for k in s.shot.labels))
    labels = [k for k in labels if any(s.shot.labels.get(k) for s in rows)]
    header = ["shot", *labels, "takes", "done", "left", "seconds", "bpm"]
    body = [
        [
            str(s.number),
            *(s.shot.labels.get(k, "") or "-" for k in labels),
            str(s.shot.takes),
            str(s.done),
            str(s.left),
            f"{s.shot.seconds:g}",
            f"{s.shot.bpm:g}",
        ]
        for s in rows
    ]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    numeric = {0, *range(len(labels) + 1, len(header))}

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return [line(header), *(line(r) for r in body)]


def calibration_warnings(corpus: str | os.PathLike, shots: list[Shot]) -> list[str]:
    """One line per guitar of the plan that ``guitarlab level`` never calibrated."""
    from guitarlab.recorder.calibration import calibrated_peak, load_calibration

    calibration = load_calibration(corpus)
    guitars = dict.fromkeys(s.guitar for s in shots)
    return [
        f"warning: {guitar} has no level calibration; run 'guitarlab level --corpus {corpus} "
        f"--guitar {guitar}' first, or its takes are checked against the default peak only"
        for guitar in guitars
        if calibrated_peak(calibration, guitar) is None
    ]


# ---------------------------------------------------------------- the session


@dataclass
class SessionReport:
    """What a session did: rows kept, files dropped (redo, skip, quit), shots skipped,
    why it stopped (``"done"``, ``"quit"``, ``"interrupted"``) and the plan's status."""

    kept: list[dict] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    stopped: str = "done"
    statuses: list[ShotStatus] = field(default_factory=list)


def discard_take(corpus: str | os.PathLike, take: str) -> list[str]:
    """Remove a raw take: its rows (one per input), then its files, under the manifest lock.

    Why the whole take: a redo replaces the performance, every input of it. Refused when
    renders of it exist (their ``source`` would point at nothing), and when a row's file is
    not a take file under ``takes/`` or another row uses it too (a hand-edited manifest):
    only a recorded take's own file is ever deleted. Returns the paths removed.
    """
    from guitarlab.corpus.manifest import TAKES_DIR, resolve_audio_path, update_manifest

    root = Path(corpus)
    paths: list[str] = []

    def drop(frame: pd.DataFrame) -> pd.DataFrame:
        rows = frame[(frame["take"] == take) & (frame["tone"] == RAW_TONE)]
        if rows.empty:
            raise RecorderError(f"take {take!r} is not in {root}/manifest.csv")
        if frame["source"].isin(rows["id"]).any():
            raise RecorderError(f"take {take!r} has renders; it cannot be dropped")
        kept = frame[~frame["id"].isin(rows["id"])]
        used = set(kept["path"].astype(str))
        for rel in rows["path"].astype(str):
            if not rel.startswith(f"{TAKES_DIR}/") or rel in used:
                raise RecorderError(
                    f"take {take!r}: its file {rel!r} is not its own recording under "
                    f"{TAKES_DIR}/ (another row uses it, or the manifest was edited); nothing was "
                    "removed: drop the take by hand"
                )
        paths.extend(rows["path"].astype(str))
        return kept

    def unlink(_saved: pd.DataFrame) -> None:
        for rel in paths:
            resolve_audio_path(root, rel).unlink(missing_ok=True)

    update_manifest(root, drop, then=unlink)
    return paths


def run_session(
    corpus: str | os.PathLike,
    shots: list[Shot],
    *,
    choose: Callable[[dict], str],
    say: Callable[[str], None] = print,
    target_peak_dbfs: float = DEFAULT_TARGET_PEAK_DBFS,
    ready: Callable[[ShotStatus], bool] | None = None,
    record: Callable[..., dict | None] | None = None,
    **take_options,
) -> SessionReport:
    """Record every take the manifest does not have yet, asking ``choose(row)`` after each.

    ``choose`` answers one of :data:`KEYS`: ``k`` keeps the take, ``r`` drops it (file
    and row) and records it again under the same take number, ``s`` drops it and moves
    to the next shot (the shot stays missing for next time), ``q`` drops it and stops.
    A take cut short (Ctrl-C) is kept as ``partial``, as ``record_take`` keeps it, and
    stops the session; so does Ctrl-C while ``choose`` waits (the take is kept). Each
    guitar's takes are checked against its ``guitarlab level`` calibration. ``ready(status)``,
    when given, is asked before each shot's first take (time to pick up the next guitar);
    False stops the session.
    ``take_options`` go to ``record`` (default :func:`record_take`): device, channel,
    rate, count_in, click, source_audio, on_progress, stop, and ``channels``/``roles`` to
    record several inputs at once (a take is then one row per input, kept or dropped whole).
    """
    from guitarlab.corpus.manifest import load_manifest
    from guitarlab.recorder.calibration import load_calibration
    from guitarlab.recorder.session import record_take, take_lines

    record = record or record_take
    root = Path(corpus)
    calibration = load_calibration(root).get("guitars", {})
    statuses = plan_status(shots, load_manifest(root))
    report = SessionReport(statuses=statuses)
    done, total = sum(s.done for s in statuses), sum(s.shot.takes for s in statuses)

    def finish(stopped: str) -> SessionReport:
        report.stopped = stopped
        report.statuses = plan_status(shots, load_manifest(root))
        return report

    try:
        for status in statuses:
            shot, number = status.shot, status.done + 1
            if number <= shot.takes and ready is not None and not ready(status):
                say(
                    f"stopped: {done} of {total} takes recorded; run the same command again to go on"
                )
                return finish("quit")
            while number <= shot.takes:
                say(
                    f"Shot {status.number}/{len(statuses)}: {shot.describe()}, take {number} of "
                    f"{shot.takes}, {shot.seconds:g} s at {shot.bpm:g} bpm"
                )
                rows: list[dict] = []  # one per input (--channels 1,2 --roles di,mic)
                row = record(
                    root,
                    rows_out=rows,
                    guitar=shot.guitar,
                    pickup=shot.labels.get("pickup", ""),
                    phrase=shot.phrase,
                    seconds=shot.seconds,
                    bpm=shot.bpm,
                    player=shot.labels.get("player", ""),
                    notes=shot.notes,
                    extra_labels=shot.extra_labels,
                    target_peak_dbfs=float(
                        calibration.get(shot.guitar, {}).get("target_peak_dbfs", target_peak_dbfs)
                    ),
                    **take_options,
                )
                if row is None:  # dropped on interrupt (discard_on_interrupt)
                    say(f"take dropped; stopped at {done} of {total} takes")
                    return finish("interrupted")
                for line in [line for r in rows or [row] for line in take_lines(r)]:
                    say(line)
                if row["status"] == "partial":
                    say(
                        f"stopped: the take is kept as partial (it does not count); {done} of "
                        f"{total} takes recorded; run the same command again to go on"
                    )
                    return finish("interrupted")
                key = choose(row)
                if key not in KEYS:
                    raise RecorderError(f"answer {key!r} is not one of k, r, s, q")
                if key == "k":
                    done += 1
                    number += 1
                    report.kept.append(row)
                    say(f"kept: {done} of {total} takes")
                    continue
                for path in discard_take(root, row["take"]):
                    report.dropped.append(path)
                    say(f"dropped {path}")
                if key == "s":
                    report.skipped.append(status.number)
                    say(f"skipped shot {status.number}: {shot.takes - number + 1} take(s) left")
                    break
                if key == "q":
                    say(
                        f"stopped: {done} of {total} takes recorded; "
                        "run the same command again to go on"
                    )
                    return finish("quit")
    except KeyboardInterrupt:
        say(f"stopped: {done} of {total} takes recorded; run the same command again to go on")
        return finish("interrupted")
    report = finish("done")
    say(progress_text(report.statuses) + (" (some shots skipped)" if report.skipped else ""))
    return report
