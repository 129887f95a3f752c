"""Import an existing folder of WAV/FLAC/AIFF files into a corpus.

Labels come from file names (the post's ``ST_lead_crunch.wav`` out of the box, or a
template such as ``{guitar}_{string}_fret{fret}_rr{take}`` that fills any manifest
column), from a CSV of per-file labels (``--labels``), or from fixed values for a whole
folder. Files are matched by sha256, so importing the same folder twice adds nothing.

Takes: files that differ only in their tone are renders of one take (the post's
layout). A folder whose files would otherwise collapse into one take (every file a
``raw`` of the same labels) gets one take per file; ``take="file"`` asks for that
always, and ``take="session"`` (any column) makes each value of that column one take.

One module because name patterns, labels.csv, planning, reservation, copy-in and commit
are one import transaction, read top to bottom.
"""

from __future__ import annotations

import os
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from guitarlab.corpus.atomic import finish_temp, temp_name
from guitarlab.corpus.audio import (
    AUDIO_SUFFIXES,
    file_columns,
    read_audio,
    refuse_too_short,
    sha256_file,
)
from guitarlab.corpus.checks import check_take, findings_to_json
from guitarlab.corpus.defaults import POST, post_alias
from guitarlab.corpus.errors import AudioFileError, ManifestError
from guitarlab.corpus.manifest import (
    LABEL_COLUMNS,
    MANIFEST_NAME,
    RAW_TONE,
    TAKES_DIR,
    TONES_DIR,
    commit_rows,
    empty_manifest,
    init_corpus,
    load_manifest,
    manifest_row,
    os_reason,
    reserve_rows,
    resolve_audio_path,
    row_id,
    slugify,
)

POST_PATTERN = POST
POST_GUITARS = {"st": ("stratocaster", "single_coil"), "lp": ("les_paul", "humbucker")}
# The usual pattern fields; any other column name works too ({string}, {fret}, {session}).
PATTERN_FIELDS = (*LABEL_COLUMNS, "take", "player")
# Columns measured from the file or written by guitarlab: never taken from a name or a CSV.
COMPUTED_COLUMNS = (
    "id",
    "path",
    "source",
    "preset_hash",
    "sample_rate",
    "channels",
    "frames",
    "subtype",
    "peak_dbfs",
    "rms_dbfs",
    "gain_db",
    "sha256",
    "recorded_at",
    "device",
    "status",
)
# Label values that become lower-case slugs; every other column keeps its text as written.
SLUG_COLUMNS = (*LABEL_COLUMNS, "player")
# A pattern that names one of these describes single notes: the phrase defaults to "note".
NOTE_FIELDS = ("string", "fret", "position")
NOTE_PHRASE = "note"
TAKE_AUTO, TAKE_FILE = "auto", "file"
# Column of a --labels CSV that names the file, first match wins (else the first column).
LABELS_KEY_COLUMNS = ("file", "filename", "file_name", "path", "name")
COLUMN_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class ImportReport:
    """What an import did: ids added, files already present, files skipped and why.

    ``table`` holds one row per file that was (or, in a dry run, would be) imported;
    ``notes`` are things worth knowing that are not errors.
    """

    added: list[str] = field(default_factory=list)
    already_present: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failed_checks: list[tuple[str, str]] = field(default_factory=list)
    table: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # --annotations: one line per annotation file joined (or, dry, that would be), and
    # (file, one-line reason) for each that could not be (the files stay imported)
    segments: list[str] = field(default_factory=list)
    annotation_errors: list[tuple[str, str]] = field(default_factory=list)


def check_column_name(name: str, *, what: str) -> str:
    """``name`` if a pattern field or CSV column may fill it; else a one-line error."""
    if not COLUMN_RE.match(name):
        raise ManifestError(
            f"{what} {name!r} is not a usable column name; use letters, digits and _ (e.g. fret)"
        )
    if name in COMPUTED_COLUMNS:
        raise ManifestError(
            f"{what} {name!r} is computed by guitarlab, not taken from a name; rename it "
            f"(e.g. {{{name}_label}}) or leave it out"
        )
    return name


def _tokens(pattern: str) -> list[tuple[str, str]]:
    """``[("lit", "_fret"), ("field", "fret"), ...]`` of a template."""
    tokens, position = [], 0
    for match in re.finditer(r"{([^{}]*)}", pattern):
        if match.start() > position:
            tokens.append(("lit", pattern[position : match.start()]))
        tokens.append(("field", match.group(1)))
        position = match.end()
    if position < len(pattern):
        tokens.append(("lit", pattern[position:]))
    return tokens


def check_pattern(pattern: str) -> list[str]:
    """The fields of a template, in order; a one-line error for a bad one."""
    if post_alias(pattern) == POST_PATTERN:
        return list(LABEL_COLUMNS)
    names = [text for kind, text in _tokens(pattern) if kind == "field"]
    if not names:
        raise ManifestError(
            f"pattern {pattern!r} names no field; write e.g. '{{guitar}}_{{phrase}}_{{tone}}'"
        )
    for name in names:
        if not COLUMN_RE.match(name):
            raise ManifestError(
                f"pattern field {{{name}}} is unknown; use a column name such as "
                + ", ".join("{" + f + "}" for f in (*PATTERN_FIELDS, "string", "fret"))
            )
        check_column_name(name, what="pattern field")
    if len(set(names)) != len(names):
        raise ManifestError(f"pattern {pattern!r} names a field twice")
    return names


def pattern_readings(stem: str, pattern: str, *, limit: int = 2) -> list[dict[str, str]]:
    """Every way (up to ``limit``) an anchored template splits a file stem into fields.

    Fields match one or more characters (``{take}``: digits), literal text matches
    itself regardless of case. One reading: the name fits; none: it does not; two: the
    name is ambiguous under this pattern.

    Examples
    --------
    >>> pattern_readings("Strat_E2_fret03_rr1", "{guitar}_{string}_fret{fret}_rr{take}")
    [{'guitar': 'Strat', 'string': 'E2', 'fret': '03', 'take': '1'}]
    >>> len(pattern_readings("ibanez_sc_note_stereo", "{guitar}_{phrase}_{tone}"))
    2
    """
    tokens = _tokens(pattern)
    low = stem.lower()
    found: list[dict[str, str]] = []

    def walk(index: int, position: int, got: dict[str, str]) -> None:
        if len(found) >= limit:
            return
        if index == len(tokens):
            if position == len(stem):
                found.append(dict(got))
            return
        kind, text = tokens[index]
        if kind == "lit":
            if low.startswith(text.lower(), position):
                walk(index + 1, position + len(text), got)
            return
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        for end in range(position + 1, len(stem) + 1):
            value = stem[position:end]
            if text == "take" and not value[-1].isdigit():
                break
            if following is None and end != len(stem):
                continue
            if (
                following
                and following[0] == "lit"
                and not low.startswith(following[1].lower(), end)
            ):
                continue
            got[text] = value
            walk(index + 1, end, got)
            del got[text]
            if len(found) >= limit:
                return

    walk(0, 0, {})
    return found


def clean_value(column: str, value: str) -> str:
    """A label as the manifest stores it: a slug for label columns, else the text stripped."""
    value = str(value).strip()
    if column == "take":
        return str(int(value)) if value.isdigit() else value
    return slugify(value) if column in SLUG_COLUMNS else value


def _reading_text(reading: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in reading.items())


def labels_from_name(stem: str, pattern: str = POST_PATTERN) -> dict[str, str] | None:
    """Labels parsed from a file stem, or None when the name does not fit.

    A name the pattern reads in more than one way is refused with a ``ManifestError``
    that names both readings.

    Examples
    --------
    >>> labels_from_name("LP_lead_crunch")["guitar"]
    'les_paul'
    >>> labels_from_name("tele_riff_clean", "{guitar}_{phrase}_{tone}")["tone"]
    'clean'
    """
    if post_alias(pattern) == POST_PATTERN:
        match = re.match(r"^(ST|LP)_([A-Za-z0-9]+)_([A-Za-z0-9]+)$", stem, re.IGNORECASE)
        if not match:
            return None
        guitar, pickup = POST_GUITARS[match.group(1).lower()]
        return {
            "guitar": guitar,
            "pickup": pickup,
            "phrase": slugify(match.group(2)),
            "tone": slugify(match.group(3)),
        }
    check_pattern(pattern)
    readings = pattern_readings(stem, pattern)
    if not readings:
        return None
    if len(readings) > 1:
        raise ManifestError(
            f"{stem}: pattern {pattern!r} reads this name two ways "
            f"({_reading_text(readings[0])} | {_reading_text(readings[1])}); "
            "add the literal text between fields or fix a field with --guitar/--phrase/--tone"
        )
    return {k: clean_value(k, v) for k, v in readings[0].items()}


def read_labels_csv(path: str | os.PathLike) -> dict[str, dict[str, str]]:
    """A CSV of per-file labels as ``{file name or relative path: {column: value}}``.

    The file column is the first of ``file``, ``filename``, ``file_name``, ``path``,
    ``name`` (else the first column); every other column is a manifest column. Empty
    cells are left out, so they never blank a label that the name or an option gives.
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: no such labels file; give a CSV with a 'file' column")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ManifestError(
            f"{path}: not a readable CSV ({reason}); save it as UTF-8 CSV"
        ) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    lowered = {c.lower(): c for c in frame.columns}
    key = next((lowered[k] for k in LABELS_KEY_COLUMNS if k in lowered), frame.columns[0])
    columns = [c for c in frame.columns if c != key]
    if not columns:
        raise ManifestError(f"{path}: only a {key!r} column; add columns of labels (e.g. pickup)")
    for column in columns:
        check_column_name(column, what=f"{path.name} column")
    out: dict[str, dict[str, str]] = {}
    for number, (_, row) in enumerate(frame.iterrows(), start=2):
        name = _normal_key(row[key])
        if not name:
            raise ManifestError(f"{path}: line {number} has no file name in column {key!r}")
        if name in out:
            raise ManifestError(f"{path}: {name!r} is listed twice (line {number}); keep one row")
        out[name] = {c: str(row[c]).strip() for c in columns if str(row[c]).strip()}
    return out


def _normal_key(name: str) -> str:
    name = str(name).strip().replace("\\", "/")
    while name.startswith("./"):
        name = name[2:]
    return name


def _csv_labels(
    table: dict[str, dict[str, str]], folded: dict[str, str], rel: str, path: Path, used: set[str]
) -> dict[str, str]:
    """The CSV row of one file: by relative path, file name, or either without suffix."""
    for key in (rel, path.name, rel.rsplit(".", 1)[0], path.stem):
        name = key if key in table else folded.get(key.lower())
        if name is not None:
            used.add(name)
            return table[name]
    return {}


@dataclass
class _Planned:
    path: Path
    rel: str
    found: dict[str, str]
    digest: str
    take: str = ""
    id: str = ""


def _take_mode(take: str | None) -> str:
    mode = (take or TAKE_AUTO).strip()
    if mode.startswith("{") and mode.endswith("}"):
        mode = mode[1:-1]
    if mode in (TAKE_AUTO, TAKE_FILE):
        return mode
    return check_column_name(mode, what="--take column")


def _next_number(used: set[str], base: str) -> int:
    prefix = f"{base}-t"
    numbers = [
        int(t[len(prefix) :]) for t in used if t.startswith(prefix) and t[len(prefix) :].isdigit()
    ]
    return max(numbers, default=0) + 1


def _assign_takes(
    planned: list[_Planned], mode: str, name_fields: list[str], manifest_takes: set[str]
) -> None:
    """Give every planned file its take and id (see the module docstring for the rules)."""
    groups: dict[tuple, list[_Planned]] = {}
    for item in planned:
        found = item.found
        if mode == TAKE_FILE:
            key: tuple = ("file", item.rel)
        elif mode == TAKE_AUTO:
            key = tuple(sorted((k, v) for k, v in found.items() if k != "tone"))
        else:
            key = (found["guitar"], found["phrase"], slugify(found[mode]))
        groups.setdefault(key, []).append(item)
    if mode == TAKE_AUTO:  # a group that repeats a tone is not renders of one take
        split: dict[tuple, list[_Planned]] = {}
        for key, items in groups.items():
            if max(Counter(i.found["tone"] for i in items).values()) > 1:
                for item in items:
                    split[("file", item.rel)] = [item]
            else:
                split[key] = items
        groups = split
    used = set(manifest_takes)
    named: set[str] = set()
    for items in groups.values():
        found = items[0].found
        base = "-".join(
            [found["guitar"], found["phrase"]]
            + [slugify(found[k]) for k in name_fields if found.get(k)]
        )
        number = int(found["take"]) if str(found.get("take", "")).isdigit() else None
        if mode not in (TAKE_AUTO, TAKE_FILE):
            value = slugify(found[mode])
            base = f"{found['guitar']}-{found['phrase']}"
            number = int(value) if value.isdigit() else None
            take = f"{base}-{value}" if number is None else f"{base}-t{number:03d}"
        elif number is not None and f"{base}-t{number:03d}" not in named:
            take = f"{base}-t{number:03d}"
        else:
            take = f"{base}-t{_next_number(used, base):03d}"
        used.add(take)
        named.add(take)
        tones = Counter(i.found["tone"] for i in items)
        for item in items:
            tone = item.found["tone"]
            item.take = take
            item.id = row_id(take, tone, slugify(item.path.stem) if tones[tone] > 1 else "")


def import_folder(
    src: str | os.PathLike,
    corpus: str | os.PathLike,
    *,
    pattern: str = POST_PATTERN,
    labels: dict[str, str] | None = None,
    player: str = "",
    take: str | None = None,
    labels_csv: str | os.PathLike | None = None,
    dry_run: bool = False,
    progress: bool = True,
    annotations: str | os.PathLike | None = None,
    annotation_column: str | None = None,
) -> ImportReport:
    """Copy every audio file under ``src`` into ``corpus`` and add its manifest row.

    Parameters
    ----------
    pattern : str
        ``"post"`` (the 2019 post's ``ST_lead_crunch.wav``) or a template over the file stem such as
        ``"{guitar}_{string}_fret{fret}_rr{take}"``; any ``{column}`` fills that column.
        The template is anchored at both ends and a name it can read in two ways is
        refused (``ManifestError``), before anything is copied.
    labels : dict, optional
        Fixed labels (guitar, pickup, phrase, tone) for every file; they override the
        name and the CSV.
    take : str, optional
        ``"auto"`` (default): files that differ only in tone share a take, and files that
        would collapse into one take (same labels, same tone) get one take each;
        ``"file"``: one take per file; a column name (``"session"``): one take per value.
    labels_csv : path, optional
        CSV of per-file labels (file name or relative path, then columns); its values
        override what the name gives.
    dry_run : bool
        Plan only: ``report.table`` lists what would be imported; nothing is written.
    annotations : path, optional
        A folder of annotation files (``.xml`` IDMT-SMT-Guitar, ``.jams``; ``.txt``
        Audacity tracks with ``annotation_column``) joined to the audio files by stem
        (IDMT: its ``annotation/`` beside ``audio/``): each becomes segments of its file's
        take (:mod:`guitarlab.corpus.segments`), also for files already in the corpus.
    """
    src = Path(src)
    if not src.is_dir():
        raise ManifestError(
            f"{src}: no such folder; give the folder that holds your WAV/FLAC/AIFF files"
        )
    fixed = {k: slugify(v) for k, v in (labels or {}).items() if v}
    pattern = post_alias(pattern)
    fields = check_pattern(pattern) if pattern != POST_PATTERN else []
    mode = _take_mode(take)
    table = read_labels_csv(labels_csv) if labels_csv else {}
    notes_by_stem = annotation_index(annotations, column=annotation_column) if annotations else {}
    if dry_run:
        manifest = (
            load_manifest(corpus) if (Path(corpus) / MANIFEST_NAME).exists() else empty_manifest()
        )
    else:
        init_corpus(corpus)
        manifest = load_manifest(corpus)
    known_sha = set(manifest["sha256"])
    report = ImportReport()
    files = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise ManifestError(f"{src}: no .wav, .flac or .aiff files found")

    planned, present_sha = _plan_files(
        src, files, pattern, fields, mode, fixed, (labels_csv, table), known_sha, report
    )
    name_fields = _name_fields(fields, planned)
    if dry_run:
        chosen_dry = _plan_ids(manifest, planned, mode, name_fields, report, player)
        if annotations:
            pairs = [(item.path, row["take"]) for item, row in chosen_dry]
            pairs += _present_takes(manifest, present_sha)
            join_annotations(corpus, pairs, notes_by_stem, annotation_column, report, dry_run=True)
        return report
    # take numbers and ids are chosen under the lock, against the manifest and the ids
    # other writers have reserved; the files are copied to temp names and moved in
    # together with their rows (commit_rows)
    chosen: list[tuple[_Planned, dict]] = []

    def choose(frame: pd.DataFrame) -> list[dict]:
        chosen[:] = _plan_ids(frame, planned, mode, name_fields, report, player)
        return [
            {"id": labels_row["id"], "take": labels_row["take"], "path": labels_row["path"]}
            for _, labels_row in chosen
        ]

    reservation = reserve_rows(corpus, choose)
    try:
        _copy_and_commit(corpus, chosen, set(manifest["id"]), report, progress)
    finally:
        reservation.release()
    if annotations:
        added_ids = set(report.added)
        pairs = [(item.path, row["take"]) for item, row in chosen if row["id"] in added_ids]
        pairs += _present_takes(load_manifest(corpus), present_sha)
        join_annotations(corpus, pairs, notes_by_stem, annotation_column, report)
    return report


def _plan_files(
    src: Path,
    files: list[Path],
    pattern: str,
    fields: list[str],
    mode: str,
    fixed: dict[str, str],
    csv: tuple[str | os.PathLike | None, dict[str, dict[str, str]]],
    known_sha: set[str],
    report: ImportReport,
) -> tuple[list[_Planned], dict[Path, str]]:
    """Each file's labels (name, CSV, options) and digest: the files to import, and those
    already in the corpus (by digest, for ``--annotations``). ``csv`` is the labels CSV's
    path and its table. Files that cannot be imported go to ``report.skipped`` with the
    reason; a bad name or CSV value raises."""
    labels_csv, table = csv
    folded = {name.lower(): name for name in table}
    planned: list[_Planned] = []
    used_csv: set[str] = set()
    present_sha: dict[Path, str] = {}  # files already in the corpus, for --annotations
    for path in files:
        rel = path.relative_to(src).as_posix()
        try:
            parsed = labels_from_name(path.stem, pattern) or {}
        except ManifestError as exc:
            text = str(exc)
            text = text[len(path.stem) :] if text.startswith(f"{path.stem}: ") else f": {text}"
            raise ManifestError(f"{path.name}{text}") from None
        try:
            from_csv = {
                k: clean_value(k, v)
                for k, v in _csv_labels(table, folded, rel, path, used_csv).items()
            }
        except ManifestError as exc:
            raise ManifestError(f"{Path(labels_csv).name}, row of {rel}: {exc}") from None
        found = {**parsed, **from_csv, **fixed}
        if not parsed and not {"guitar", "phrase"} <= set(found):
            report.skipped.append(
                (
                    str(path),
                    f"name does not fit the pattern {pattern!r}; rename it or pass "
                    "--pattern/--guitar/--phrase/--labels",
                )
            )
            continue
        found.setdefault("tone", RAW_TONE)
        if not found.get("phrase") and set(fields) & set(NOTE_FIELDS):
            found["phrase"] = NOTE_PHRASE
        missing = [k for k in ("guitar", "phrase") if not found.get(k)]
        if missing:
            report.skipped.append((str(path), f"no {missing[0]} label; pass --{missing[0]}"))
            continue
        if mode not in (TAKE_AUTO, TAKE_FILE) and not found.get(mode):
            report.skipped.append(
                (
                    str(path),
                    f"no {mode!r} value for --take {mode}; name it in --pattern or --labels",
                )
            )
            continue
        try:
            digest = sha256_file(path)
        except OSError as exc:
            report.skipped.append((str(path), f"cannot read ({exc.strerror})"))
            continue
        if digest in known_sha:
            report.already_present.append(str(path))
            present_sha[path] = digest
            continue
        known_sha.add(digest)
        planned.append(_Planned(path, rel, found, digest))
    if table and len(used_csv) < len(table):
        unused = sorted(set(table) - used_csv)
        report.notes.append(
            f"{Path(labels_csv).name}: {len(unused)} row(s) name no file under {src} "
            f"(e.g. {unused[0]!r})"
        )

    return planned, present_sha


def _name_fields(fields: list[str], planned: list[_Planned]) -> list[str]:
    """The columns a take's name is made of, after guitar and phrase.

    The name's own fields (stable across imports); pickup and player from a CSV or an
    option only when they tell files of one guitar and phrase apart.
    """
    name_fields = [f for f in fields if f not in ("guitar", "phrase", "tone", "take")]
    for column in [c for c in ("pickup", "player") if c not in fields]:
        values: dict[tuple[str, str], set[str]] = {}
        for item in planned:
            pair = (item.found["guitar"], item.found["phrase"])
            values.setdefault(pair, set()).add(item.found.get(column, ""))
        if any(len(v) > 1 for v in values.values()):
            name_fields.append(column)
    return name_fields


def _copy_and_commit(
    corpus: str | os.PathLike,
    chosen: list[tuple[_Planned, dict]],
    known_ids: set[str],
    report: ImportReport,
    progress: bool,
) -> None:
    """Copy the chosen files in under temp names and commit them with their rows.

    A file whose audio another import added meanwhile is left out (``already_present``);
    on any failure the temp files are removed and nothing is committed.
    """
    items: list[tuple[dict, Path]] = []
    try:
        for item, labels_row in tqdm(chosen, desc="import", unit="file", disable=not progress):
            row = _copy_in(corpus, item, labels_row, report)
            if row is not None:
                items.append(row)
        ids = {row["id"] for row, _ in items}
        for row, _ in items:  # a raw file that was skipped leaves its renders without a source
            if row["source"] and row["source"] not in ids and row["source"] not in known_ids:
                row["source"] = ""
        late: list[str] = []

        listed_sha: dict[int, set] = {}

        def keep(frame: pd.DataFrame, row: dict) -> bool:  # another import added the same audio
            shas = listed_sha.setdefault(id(frame), set(frame["sha256"]))
            if row["sha256"] in shas:
                late.append(row["id"])
                return False
            return True

        added = commit_rows(corpus, items, keep=keep)
    except BaseException:
        for _, tmp in items:
            tmp.unlink(missing_ok=True)
        raise
    report.added = [row["id"] for row in added]
    source_of = {row["id"]: row["notes"] for row, _ in items}
    report.already_present += [source_of[rid].removeprefix("imported from ") for rid in late]


def _plan_ids(
    frame: pd.DataFrame,
    planned: list[_Planned],
    mode: str,
    name_fields: list[str],
    report: ImportReport,
    player: str = "",
) -> list[tuple[_Planned, dict]]:
    """Takes and ids for the planned files against ``frame``; the labels of each row."""
    _assign_takes(planned, mode, name_fields, set(frame["take"]))
    raw_count = Counter(i.take for i in planned if i.found["tone"] == RAW_TONE)
    raw_of_take = {
        t: i for t, i in zip(frame["take"], frame["id"], strict=True) if i.endswith(f"-{RAW_TONE}")
    }
    for item in planned:
        if item.found["tone"] == RAW_TONE:
            raw_of_take[item.take] = item.id if raw_count[item.take] == 1 else ""
    existing_ids = set(frame["id"])
    planned_ids: set[str] = set()
    report.table.clear()
    out = []
    for item in planned:
        path, found, tone, rid = item.path, item.found, item.found["tone"], item.id
        if rid in existing_ids or rid in planned_ids:
            report.skipped.append(
                (
                    str(path),
                    f"id {rid} is already in the corpus with other audio; import it with another --pattern or --take",
                )
            )
            continue
        extras = {
            k: v for k, v in found.items() if k not in ("take", "player") and k not in LABEL_COLUMNS
        }
        labels_row = {
            "id": rid,
            "guitar": found["guitar"],
            "pickup": found.get("pickup", ""),
            "phrase": found["phrase"],
            "tone": tone,
            "take": item.take,
            "player": found.get("player", "") or player,
            **extras,
        }
        report.table.append({"file": item.rel, **labels_row})
        planned_ids.add(rid)
        folder = TAKES_DIR if tone == RAW_TONE else TONES_DIR
        labels_row["path"] = f"{folder}/{rid}{path.suffix.lower()}"
        labels_row["source"] = raw_of_take.get(item.take, "") if tone != RAW_TONE else ""
        out.append((item, labels_row))
    return out


def _copy_in(
    corpus: str | os.PathLike, item: _Planned, labels_row: dict, report: ImportReport
) -> tuple[dict, Path] | None:
    """Check one file (length, header, take checks) and copy it to a temp name beside its
    final path; the row and the temp file, or None when it is skipped (``report``)."""
    path = item.path
    try:
        columns = file_columns(path)  # refuses NaN/infinite samples and a file cut off
        audio, rate = read_audio(path)
        refuse_too_short(int(columns["frames"]), rate, path)
    except AudioFileError as exc:
        report.table[:] = [r for r in report.table if r["id"] != labels_row["id"]]
        report.skipped.append((str(path), str(exc).split(": ", 1)[-1]))
        return None
    findings = check_take(audio, rate) if labels_row["tone"] == RAW_TONE else []
    errors = [f for f in findings if f.severity == "error"]
    if errors:  # imported like a recorded take (row and checks kept), but the exit is 1
        report.failed_checks.append(
            (str(path), "; ".join(f"{f.check}: {f.message}" for f in errors))
        )
    dest = resolve_audio_path(corpus, labels_row["path"])
    tmp = temp_name(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, tmp)
        finish_temp(tmp)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ManifestError(f"{dest}: cannot copy {path.name} in ({os_reason(exc)})") from exc
    if sha256_file(tmp) != item.digest:
        tmp.unlink(missing_ok=True)
        raise ManifestError(f"{path}: changed while it was copied; import it again")
    fields = {
        **labels_row,
        "recorded_at": datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc).isoformat(
            timespec="seconds"
        ),
        "device": "import",
        "notes": f"imported from {path.name}",
    }
    row = manifest_row(columns=columns, **fields)
    if labels_row["tone"] == RAW_TONE:
        row["checks"] = findings_to_json(findings)
    return row, tmp


# ---------------------------------------------------------------- --annotations


def annotation_index(
    folder: str | os.PathLike, *, column: str | None = None
) -> dict[str, list[Path]]:
    """The annotation files under ``folder`` by lower-case stem (``.xml``, ``.jams``, and
    ``.txt`` Audacity tracks when ``column`` names the column their text goes to)."""
    from guitarlab.corpus.annotations import FORMATS

    folder = Path(folder)
    if not folder.is_dir():
        raise ManifestError(
            f"{folder}: no such folder; --annotations takes the folder of annotation files "
            "(IDMT-SMT-Guitar: the annotation/ beside audio/)"
        )
    suffixes = {s for s, kind in FORMATS.items() if kind != "audacity" or column}
    index: dict[str, list[Path]] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix.lower() in suffixes:
            index.setdefault(path.stem.lower(), []).append(path)
    if not index:
        raise ManifestError(
            f"{folder}: no annotation files ({', '.join(sorted(suffixes))}) in it"
            + ("" if column else "; Audacity .txt tracks need --annotation-column")
        )
    return index


def _present_takes(manifest: pd.DataFrame, present: dict[Path, str]) -> list[tuple[Path, str]]:
    """``(file, take)`` for files the corpus already had (matched by sha256)."""
    take_of = dict(zip(manifest["sha256"].astype(str), manifest["take"].astype(str), strict=True))
    return [(path, take_of[sha]) for path, sha in present.items() if sha in take_of]


def join_annotations(
    corpus: str | os.PathLike,
    pairs: list[tuple[Path, str]],
    index: dict[str, list[Path]],
    column: str | None,
    report: ImportReport,
    *,
    dry_run: bool = False,
) -> None:
    """Add each audio file's annotation (same stem) as segments of the file's take.

    A file whose annotation cannot be read or placed (a span past the take's end) is
    listed in ``report.annotation_errors``; the audio stays imported. Importing again
    replaces the columns an annotation brings, so a rerun adds nothing twice.
    """
    from guitarlab.corpus.annotations import dumps_summary, read_annotation_file
    from guitarlab.corpus.segments import add_segments

    used: set[Path] = set()
    unmatched = 0
    for path, take in pairs:
        hits = index.get(path.stem.lower(), [])
        if not hits:
            unmatched += 1
            continue
        if len(hits) > 1:
            names = ", ".join(str(h) for h in hits[:3])
            report.annotation_errors.append(
                (
                    str(path),
                    f"{path.name}: several annotation files share its name ({names}); keep one",
                )
            )
            continue
        (note,) = hits
        used.add(note)
        try:
            found = read_annotation_file(note, column=column)
            if not dry_run and found.segments:
                add_segments(
                    corpus, take, found.segments, origin=found.origin, replace_column=found.columns
                )
        except ManifestError as exc:
            text = str(exc)
            text = text if text.startswith(note.name) else f"{note.name}: {text}"
            report.annotation_errors.append((str(note), text))
            continue
        verb = "would add" if dry_run else "added"
        report.segments.append(f"{note.name}: {verb} {dumps_summary(found, take=take)}")
    if unmatched:
        report.notes.append(
            f"{unmatched} imported file(s) have no annotation file of the same name"
        )
    spare = sum(len(v) for v in index.values()) - len(used)
    if spare:
        report.notes.append(f"{spare} annotation file(s) match no imported audio file by name")
