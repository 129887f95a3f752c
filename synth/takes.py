"""The synthetic guitar's writers: takes and single notes into a corpus, with their rows.

``synth_to_corpus`` plays phrases (or, with ``notes``, single notes and chords) on
guitars of the family and commits each file with its manifest row
(:func:`~guitarlab.corpus.manifest.manifest_row`), its ``synth_params`` enough to render
it again bit for bit.

Examples
--------
>>> synth_to_corpus("my-corpus", guitars="all", takes=2, seconds=10)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator

import numpy as np

from guitarlab.corpus.defaults import BPM, SYNTH_RATE
from guitarlab.corpus.errors import RecorderError
from guitarlab.corpus.parallel import map_ordered, resolve_jobs
from guitarlab.synth import family as fam
from guitarlab.synth.family import FRETS, note_jobs, note_params, resolve_guitars
from guitarlab.synth.phrases import PHRASES
from guitarlab.synth.render import check_length, guitar_labels, resolve_options, synth_params

PHRASE_SECONDS = 60.0  # a phrase take, as the post's takes
NOTE_SECONDS = 3.0  # a plucked note (or chord) ringing out

__all__ = ["notes_to_corpus", "synth_to_corpus", "write_raw_take"]


def synth_to_corpus(
    corpus: str | os.PathLike,
    *,
    guitars: tuple[str, ...] | list[str] | str = ("stratocaster", "les_paul"),
    phrases: tuple[str, ...] | list[str] = ("backing", "lead"),
    takes: int = 1,
    first_take: int | None = None,
    seconds: float | None = None,
    seed: int = 0,
    bpm: float = BPM,
    key: str = "A",
    sample_rate: int = SYNTH_RATE,
    options: dict | None = None,
    randomize: bool = False,
    builds: bool = False,
    notes: bool = False,
    progress: bool = True,
    jobs: int = 1,
) -> list[str]:
    """Render takes into ``corpus/takes/`` and add their manifest rows; returns the new ids.

    Take numbers continue after the highest existing take of each phrase over all the
    requested guitars, so one call plays the same performances on every guitar. With
    ``first_take`` the numbers are fixed: takes already present with identical
    parameters are skipped (re-running is a no-op), with other parameters it is an error.

    ``guitars`` may name family guitars, ``all`` or a pickup type (see ``FAMILY``). With
    ``randomize`` every take draws its switch position, knobs, cable, pick, strings,
    room hum, rig, timing, tempo and key (``family.randomize_take``; ``options``
    given here override the draws, ``bpm`` and ``key`` are drawn); with ``builds`` as
    well each take is another instrument of its guitar's model (pickups placed, sized
    and wound differently). With ``notes`` the
    call writes single notes instead (``notes_to_corpus``; ``phrases``,
    ``bpm`` and ``key`` do not apply there). ``seconds`` of None: :data:`PHRASE_SECONDS`
    a take, or :data:`NOTE_SECONDS` a note. ``jobs`` renders in that many processes (0: every
    core); the files and rows are the same bit for bit.
    """
    from tqdm import tqdm

    from guitarlab.corpus.manifest import (
        RAW_TONE,
        init_corpus,
        reserve_takes,
        row_id,
        take_key,
    )

    if notes:
        return notes_to_corpus(
            corpus, guitars=guitars, takes=takes, first_take=first_take,
            seconds=NOTE_SECONDS if seconds is None else seconds, seed=seed, randomize=randomize, builds=builds, sample_rate=sample_rate, options=options,
            progress=progress,
        )  # fmt: skip
    guitars = fam.resolve_guitars(guitars)
    for name in guitars:
        resolve_options(name, options)
    for phrase in phrases:
        if phrase not in PHRASES:
            raise RecorderError(f"unknown phrase {phrase!r}; known: {', '.join(PHRASES)}")
    if takes < 1 or (first_take is not None and first_take < 1):
        raise RecorderError(f"takes={takes}, first_take={first_take}: both must be 1 or more")
    seconds = PHRASE_SECONDS if seconds is None else seconds
    check_length(seconds, sample_rate)  # before the corpus folder is made
    root = init_corpus(corpus)

    todo: list[tuple] = []

    def choose(taken):  # under the lock; ids others reserved count as taken too
        planned = []
        for phrase in phrases:
            start = (
                first_take
                if first_take is not None
                else max(taken.next_take_number(g, phrase) for g in guitars)
            )
            for number in range(start, start + takes):
                planned += [(g, phrase, number) for g in guitars]
        candidates: list[tuple] = []
        for name, phrase, number in planned:  # refuse conflicts before rendering anything
            rid = row_id(take_key(name, phrase, number), RAW_TONE)
            if randomize:
                opts, take_bpm, take_key_name = fam.randomize_take(
                    name, phrase, take=number, seed=seed, options=options, builds=builds
                )
            else:
                opts, take_bpm, take_key_name = options, bpm, key
            params = synth_params(
                name, phrase, take=number, seed=seed, seconds=seconds, bpm=take_bpm,
                key=take_key_name, sample_rate=sample_rate, options=opts, randomized=randomize,
            )  # fmt: skip
            candidates.append((name, phrase, number, rid, params))
        files = [(j[3], take_key(*j[:3]), j[4]) for j in candidates]
        new, rows = unwritten(taken, files, again="pick another --first-take")
        todo.extend(candidates[i] for i in new)
        return rows

    reserve_takes(root, choose)  # write_raw_take's commit releases each id with its row
    added: list[str] = []
    renders = rendered([job[4] for job in todo], jobs)
    for (name, phrase, number, rid, params), audio in tqdm(
        zip(todo, renders, strict=True),
        total=len(todo),
        desc="synth takes",
        unit="take",
        disable=not progress,
    ):
        position = json.loads(params)["options"]["pickup_position"]
        write_raw_take(
            root, rid, take_key(name, phrase, number), audio, sample_rate, guitar=name,
            position=position, phrase=phrase, seed=seed, params=params,
            notes=f"synthetic {name}, {position} pickup, performance {number}",
        )  # fmt: skip
        added.append(rid)
    return added


def unwritten(
    taken, files: list[tuple[str, str, str]], *, again: str
) -> tuple[list[int], list[dict]]:
    """Which of ``files`` (``(id, take, synth_params)``) the corpus does not hold yet, as
    indexes into ``files``, and their rows for ``reserve_takes`` (``taken`` is its view,
    under the lock: ids others reserved count as taken too).

    A file already there with the same parameters is kept (a run again adds nothing); the
    same id with other parameters is one line, ``<id> is already in the corpus with
    other parameters; <again>``, before anything is rendered.
    """
    from guitarlab.corpus.manifest import TAKES_DIR

    existing = taken.values([rid for rid, _, _ in files], "synth_params")  # only ids there
    new: list[int] = []
    for index, (rid, _take, params) in enumerate(files):
        if rid not in existing:
            new.append(index)
        elif existing[rid] != params:
            raise RecorderError(f"{rid} is already in the corpus with other parameters; {again}")
    rows = [
        {"id": rid, "take": take, "path": f"{TAKES_DIR}/{rid}.wav", "synth_params": params}
        for rid, take, params in (files[i] for i in new)
    ]
    return new, rows


def rendered(params: list[str], jobs: int = 1) -> Iterator[np.ndarray]:
    """Each take's audio from its parameters, in order, in ``jobs`` processes (0: every
    core). Rendering is pure; the caller writes every file and row itself, one writer."""
    workers = resolve_jobs(jobs, error=RecorderError)
    return map_ordered(fam.render_params, params, jobs=workers, error=RecorderError)


def notes_to_corpus(
    corpus: str | os.PathLike,
    *,
    guitars: tuple[str, ...] | list[str] | str = ("stratocaster", "les_paul"),
    frets: tuple[int, ...] | list[int] = FRETS,
    chords: bool = True,
    takes: int = 1,
    first_take: int | None = None,
    seconds: float = NOTE_SECONDS,
    lead_in_s: float = 0.2,
    seed: int = 0,
    randomize: bool = False,
    builds: bool = False,
    sample_rate: int = SYNTH_RATE,
    options: dict | None = None,
    progress: bool = True,
    jobs: int = 1,
) -> list[str]:
    """One file per string x fret (and a few strummed chords) per guitar; returns new ids.

    Each file is a pluck after ``lead_in_s`` of silence that rings for the rest of
    ``seconds``. Rows get ``phrase`` ``note`` (or ``chord``), ``string`` (1 = high e ..
    6 = low E), ``fret``, ``pickup`` and ``position``. With ``randomize`` each file draws
    its own position, knobs, pick, room and rig. Re-running with the same arguments and
    ``first_take`` adds nothing.

    Examples
    --------
    >>> ids = notes_to_corpus("corpus", guitars="all", randomize=True, progress=False)  # doctest: +SKIP
    """
    from tqdm import tqdm

    from guitarlab.corpus.manifest import (
        RAW_TONE,
        init_corpus,
        reserve_takes,
        row_id,
        take_key,
    )

    names = resolve_guitars(guitars)
    frets = tuple(int(f) for f in frets)
    bad = [f for f in frets if not 0 <= f <= 24]
    if bad or not frets:
        raise RecorderError(f"frets {list(frets)}: use frets 0 to 24")
    check_length(seconds, sample_rate)
    if not 0 <= lead_in_s < seconds:
        raise RecorderError(f"lead_in_s={lead_in_s}: use 0 <= lead_in_s < seconds={seconds}")
    if takes < 1 or (first_take is not None and first_take < 1):
        raise RecorderError(f"takes={takes}, first_take={first_take}: both must be 1 or more")
    for name in names:
        resolve_options(name, options)
    root = init_corpus(corpus)
    todo: list[tuple] = []

    def choose(taken):  # under the lock; ids others reserved count as taken too
        planned = note_jobs(frets, chords)
        start = (
            first_take
            if first_take is not None
            else max(taken.next_take_number(g, planned[0][0]) for g in names)
        )
        candidates: list[tuple] = []
        for number in range(start, start + takes):
            for guitar in names:
                for name, where in planned:
                    take = take_key(guitar, name, number)
                    rid = row_id(take, RAW_TONE)
                    params = note_params(
                        guitar, name, where, take=number, seed=seed, seconds=seconds,
                        lead_in_s=lead_in_s, sample_rate=sample_rate, options=options,
                        randomize=randomize,
                        builds=builds,
                    )  # fmt: skip
                    candidates.append((guitar, name, where, take, rid, params))
        files = [(j[4], j[3], j[5]) for j in candidates]
        new, rows = unwritten(taken, files, again="pick another first_take")
        todo.extend(candidates[i] for i in new)
        return rows

    reservation = reserve_takes(root, choose)
    renders = rendered([job[5] for job in todo], jobs)

    def files():
        for (guitar, _name, where, take, rid, params), audio in tqdm(
            zip(todo, renders, strict=True),
            total=len(todo),
            desc="synth notes",
            unit="file",
            disable=not progress,
        ):
            p = json.loads(params)
            position = p["options"]["pickup_position"]
            what = (
                f"chord {where['chord']}"
                if "chord" in where
                else f"string {where['string']} fret {where['fret']}"
            )
            extra = {"string": str(where.get("string", "")), "fret": str(where.get("fret", ""))}
            yield dict(
                rid=rid, take=take, audio=audio, guitar=guitar, position=position,
                phrase=p["phrase"], params=params, extra=extra,
                notes=f"synthetic {guitar}, {position} pickup, {what}",
            )  # fmt: skip

    added = write_batched(root, files(), sample_rate=sample_rate, seed=seed)
    reservation.release()
    return added


NOTE_BATCH = 50  # rows of small files committed together: the manifest is rewritten per commit


def commit_batch(root: str | os.PathLike, rows: list, *, at_least: int = 1) -> None:
    """Commit the ``(row, temp)`` pairs staged in ``rows`` (``write_raw_take(batch=rows)``)
    once there are ``at_least`` of them, and empty the list."""
    from guitarlab.corpus.manifest import commit_rows

    if rows and len(rows) >= at_least:
        commit_rows(root, rows)
        rows.clear()


def write_batched(
    root: str | os.PathLike, files: Iterable[dict], *, sample_rate: int, seed: int
) -> list[str]:
    """Write each file (``write_raw_take``'s other arguments) and commit the rows
    ``NOTE_BATCH`` at a time, the rest at the end; returns the ids in order.

    Why: notes and session runs write thousands of small files; a commit per file would
    rewrite the manifest as often. One place keeps the batch, the threshold and the last
    commit.
    """
    rows: list[tuple] = []
    added: list[str] = []
    for file in files:
        write_raw_take(root, sample_rate=sample_rate, seed=seed, batch=rows, **file)
        added.append(file["rid"])
        commit_batch(root, rows, at_least=NOTE_BATCH)
    commit_batch(root, rows)
    return added


def write_raw_take(
    root: str | os.PathLike, rid: str, take: str, audio: np.ndarray, sample_rate: int, *,
    guitar: str, position: str, phrase: str, seed: int, params: str, notes: str,
    extra: dict | None = None, batch: list | None = None,
) -> dict:  # fmt: skip
    """Write one synthetic raw file and add its manifest row; returns the row. The one
    row builder of the synthetic guitar.

    The audio goes to a temp name and is moved in with its row (``commit_rows``); with
    ``batch`` the ``(row, temp)`` pair is appended there for the caller to commit.
    """
    from guitarlab.corpus.manifest import TAKES_DIR, commit_rows, manifest_row, stage_audio

    path = f"{TAKES_DIR}/{rid}.wav"
    staged, tmp = stage_audio(root, {"path": path}, audio, sample_rate)
    row = manifest_row(
        id=rid,
        path=path,
        **guitar_labels(guitar, position),
        phrase=phrase,
        take=take,
        columns={k: v for k, v in staged.items() if k != "path"},
        device="synth",
        player=f"synth-seed{seed}",
        notes=notes,
        position=position,
        synth_params=params,
        **(extra or {}),
    )
    if batch is None:
        commit_rows(root, [(row, tmp)])
    else:
        batch.append((row, tmp))
    return row
