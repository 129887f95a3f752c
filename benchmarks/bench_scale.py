"""A grown corpus (issue 32): what one more take and a check cost at 1k, 10k and 100k rows.

Figures, each against a reference measured in the same run on the same corpus:

- appending one take (a 0.5 s file staged, then ``commit_rows``) over the old way of
  adding it, which read and rewrote the whole manifest (``update_manifest``); and the
  append at 100k rows over the append at 1k (goal <= 3x);
- ``guitarlab synth`` adding one take, the whole command in a fresh process (imports,
  ``reserve_takes``, render, commit), at every size over at 1k (goal <= 3x at 100k);
- ``manifest check`` with nothing changed (every file's stat against the cache) over
  ``pd.read_csv`` of the same manifest, and the CLI's wall time at 100k (goal <= 10 s on
  2 cores); the first check (cache empty) with 2 threads over 1.

The corpora are built fast: every row has its own tiny WAV file (400 frames at 8 kHz,
844 bytes, each with its own samples and sha256), written as bytes, and a manifest
saved by the same writer a full save uses. Other issue-32 rows (the review app's first
page, a 4-take dataset build) add a function to ``MEASURES``: it gets ``{rows: corpus}``.
"""

from __future__ import annotations

import hashlib
import io
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from benchmarks.bench_build_scale import build_rows
from benchmarks.bench_review_scale import review_rows
from benchmarks.common import Row, best_seconds

SIZES = (1_000, 10_000, 100_000)
QUICK_SIZES = (200, 2_000)
TINY_RATE = 8000
TINY_FRAMES = 400
TAKE_RATE = 44100
GUITARS = ("stratocaster", "telecaster", "les_paul", "sg", "jazzmaster", "superstrat")


def tiny_wav_template() -> tuple[bytes, int]:
    """A tiny PCM_16 WAV's bytes and the offset of its samples (patched per file)."""
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal(TINY_FRAMES)).astype(np.float32)
    buffer = io.BytesIO()
    sf.write(buffer, audio, TINY_RATE, subtype="PCM_16", format="WAV")
    data = buffer.getvalue()
    return data, data.index(b"data") + 8


def build_corpus(root: Path, rows: int) -> Path:
    """A corpus of ``rows`` files in takes/, one row each (see the module docstring)."""
    from guitarlab.corpus.manifest import _typed, _write_atomic, init_corpus, manifest_path

    init_corpus(root)
    template, at = tiny_wav_template()
    shas, ids, paths, takes, guitars = [], [], [], [], []
    for n in range(rows):
        guitar = GUITARS[n % len(GUITARS)]
        take = f"{guitar}-lead-t{n + 1:06d}"
        data = template[:at] + n.to_bytes(4, "little") + template[at + 4 :]
        path = f"takes/{take}-raw.wav"
        with open(root / path, "wb") as handle:
            handle.write(data)
        shas.append(hashlib.sha256(data).hexdigest())
        ids.append(f"{take}-raw")
        paths.append(path)
        takes.append(take)
        guitars.append(guitar)
    frame = pd.DataFrame(
        {
            "id": ids,
            "path": paths,
            "guitar": guitars,
            "pickup": "single_coil",
            "phrase": "lead",
            "tone": "raw",
            "take": takes,
            "sample_rate": TINY_RATE,
            "channels": 1,
            "frames": TINY_FRAMES,
            "subtype": "PCM_16",
            "peak_dbfs": -9.5,
            "rms_dbfs": -20.0,
            "gain_db": 0.0,
            "sha256": shas,
            "recorded_at": "2026-12-07T00:00:00+00:00",
            "device": "synth",
            "player": "synth-seed0",
            "notes": "synthetic stratocaster, bridge pickup, string 3 fret 5",
            "string": "3",
            "fret": "5",
        }
    )
    _write_atomic(manifest_path(root), _typed(frame))
    return root


def _take_row(root: Path, number: int) -> tuple[dict, Path]:
    """A 0.5 s take staged beside its path: ``(row, temp)`` as synth and record make them."""
    from guitarlab.corpus.manifest import manifest_row, stage_audio

    take = f"bench-lead-t{number:06d}"
    rng = np.random.default_rng(number)
    audio = (0.1 * rng.standard_normal(TAKE_RATE // 2)).astype(np.float32)
    path = f"takes/{take}-raw.wav"
    staged, tmp = stage_audio(root, {"path": path}, audio, TAKE_RATE)
    row = manifest_row(
        id=f"{take}-raw",
        path=path,
        guitar="bench",
        phrase="lead",
        take=take,
        columns={k: v for k, v in staged.items() if k != "path"},
        device="bench",
    )
    return row, tmp


def _append_new(root: Path, number: int) -> None:
    from guitarlab.corpus.manifest import commit_rows

    commit_rows(root, [_take_row(root, number)])


def _append_old(root: Path, number: int) -> None:
    """The write path before issue 32: load, add, rewrite the whole file, locked."""
    from guitarlab.corpus.manifest import update_manifest

    row, tmp = _take_row(root, number)
    os.replace(tmp, root / row["path"])
    update_manifest(root, lambda frame: pd.concat([frame, pd.DataFrame([row])], ignore_index=True))


def append_rows(corpora: dict[int, Path], quick: bool) -> list[Row]:
    """One take appended: the new append against the old full rewrite, at every size."""
    out, new_at, old_at, first_at = [], {}, {}, {}
    counter = iter(range(1, 1_000_000))
    for rows, root in corpora.items():
        old_at[rows] = best_seconds(lambda root=root: _append_old(root, next(counter)), repeat=2)
        start = time.perf_counter()
        _append_new(root, next(counter))  # the index is rebuilt: the file was rewritten
        first_at[rows] = time.perf_counter() - start
    for _ in range(9):  # the sizes in turn, so other sessions' disk load hits them alike
        for rows, root in corpora.items():
            seconds = best_seconds(lambda root=root: _append_new(root, next(counter)), repeat=1)
            new_at[rows] = min(new_at.get(rows, seconds), seconds)
    for rows in corpora:
        out.append(
            Row(
                "scale",
                f"append one take (0.5 s file staged + commit_rows), {rows:,} rows",
                new_at[rows],
                "s",
                "old append (read + rewrite the whole manifest)",
                old_at[rows],
                "< 1 at 10k rows and up",
                f"best of 9 taken in turn with the other sizes; the first append after a "
                f"rewrite rebuilds the ids/paths index: {first_at[rows]:.3f} s",
            )
        )
    small, big = min(new_at), max(new_at)
    out.append(
        Row(
            "scale",
            f"append one take at {big:,} rows over at {small:,}",
            new_at[big],
            "s",
            f"append at {small:,} rows",
            new_at[small],
            "<= 3x",
            "journaled append + fsync; ids and paths checked in .guitarlab-index.sqlite",
        )
    )
    return out


SYNTH_ONE_TAKE = ["synth", "--guitars", "stratocaster", "--phrases", "lead", "--takes", "1",
                  "--seconds", "1"]  # fmt: skip


def _synth_seconds(root: Path) -> tuple[float, float]:
    """``(wall, CPU)`` seconds of ``guitarlab synth`` adding one 1 s take to ``root`` in a
    fresh process (imports, reservation, render, commit: what the user waits for). The
    CPU time (user + system) barely moves with other sessions' load; the wall time does."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "guitarlab", *SYNTH_ONE_TAKE, "--corpus", str(root)],
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert done.returncode == 0 and "added 1 take(s)" in done.stdout, done.stderr[-2000:]
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return seconds, cpu


def synth_rows(corpora: dict[int, Path], quick: bool) -> list[Row]:
    """``guitarlab synth`` adding one take, the whole command, at every size against 1k."""
    repeat = 3 if quick else 7
    first = {rows: _synth_seconds(root)[0] for rows, root in corpora.items()}  # index rebuilt?
    times: dict[int, list[tuple[float, float]]] = {rows: [] for rows in corpora}
    for _ in range(repeat):  # the sizes in turn, so other sessions' load hits them alike
        for rows, root in corpora.items():
            times[rows].append(_synth_seconds(root))
    best = {rows: min(wall for wall, _ in runs) for rows, runs in times.items()}
    cpu = {rows: min(c for _, c in runs) for rows, runs in times.items()}
    median = {rows: sorted(wall for wall, _ in runs)[repeat // 2] for rows, runs in times.items()}
    small = min(best)
    return [
        Row(
            "scale",
            f"guitarlab synth, one take (whole command, fresh process), {rows:,} rows",
            best[rows],
            "s",
            f"the same command at {small:,} rows",
            best[small],
            "<= 3x at 100k rows",
            f"`guitarlab {' '.join(SYNTH_ONE_TAKE)}`, best of {repeat} runs taken in turn "
            f"with the other sizes (median {median[rows]:.2f} s); CPU {cpu[rows]:.2f} s "
            f"({cpu[rows] / cpu[small]:.2f}x the {small:,}-row run's); the first run "
            f"{first[rows]:.2f} s; load average {os.getloadavg()[0]:.1f}",
        )
        for rows in sorted(best)
    ]


def _cli_check_seconds(root: Path) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "guitarlab", "manifest", "check", str(root), "--jobs", "2"],
        capture_output=True,
        text=True,
    )
    return time.perf_counter() - start, done.stdout.strip().splitlines()[-1]


def check_rows(corpora: dict[int, Path], quick: bool) -> list[Row]:
    """``manifest check`` with nothing changed, and the first (uncached) check's threads."""
    from guitarlab.corpus.audit import CHECK_CACHE_NAME, PROCESS_MIN_FILES, check_manifest

    out = []
    time.sleep(1.1)  # files written in the last second are not trusted to the cache
    for rows, root in corpora.items():
        (root / CHECK_CACHE_NAME).unlink(missing_ok=True)
        start = time.perf_counter()
        first = check_manifest(root, jobs=2)
        first_s = time.perf_counter() - start
        assert len(first) == 0, first[:3]
        cached = best_seconds(lambda root=root: check_manifest(root, jobs=2), repeat=3)
        manifest = root / "manifest.csv"
        read = best_seconds(lambda manifest=manifest: pd.read_csv(manifest), repeat=3)
        out.append(
            Row(
                "scale",
                f"manifest check, nothing changed, {rows:,} rows",
                cached,
                "s",
                "pd.read_csv of the manifest",
                read,
                "",
                f"check_manifest(jobs=2), best of 3; the first check (cache empty) {first_s:.1f} s",
            )
        )
    big = max(corpora)
    cli_s, last = _cli_check_seconds(corpora[big])
    out.append(
        Row(
            "scale",
            f"guitarlab manifest check, nothing changed, {big:,} rows (wall, a fresh process)",
            cli_s,
            "s",
            "goal",
            10.0,
            "<= 10 s on 2 cores",
            f"says {last!r}; load average {os.getloadavg()[0]:.1f} on this machine",
        )
    )
    for rows in sorted({sorted(corpora)[len(corpora) // 2], big}):
        one = best_seconds(
            lambda rows=rows: check_manifest(corpora[rows], full=True, jobs=1), repeat=1
        )
        two = best_seconds(
            lambda rows=rows: check_manifest(corpora[rows], full=True, jobs=2), repeat=1
        )
        how = "processes" if rows >= PROCESS_MIN_FILES else "threads"
        out.append(
            Row(
                "scale",
                f"manifest check --full, {rows:,} rows: --jobs 2 ({how})",
                two,
                "s",
                "--jobs 1",
                one,
                "< 1",
                "every file read again (header, cut-off check, sha256) on tiny files; "
                f"load average {os.getloadavg()[0]:.1f}",
            )
        )
    return out


MEASURES: list[Callable[[dict[int, Path], bool], list[Row]]] = [
    append_rows,
    synth_rows,
    check_rows,
    build_rows,
    review_rows,
]


def run(quick: bool = False) -> list[Row]:
    sizes = QUICK_SIZES if quick else SIZES
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        corpora = {}
        for rows in sizes:
            start = time.perf_counter()
            corpora[rows] = build_corpus(Path(tmp) / f"c{rows}", rows)
            print(f"   built {rows:,} rows in {time.perf_counter() - start:.1f} s", flush=True)
        os.sync()  # the corpora's 100k files written back now, not during an append's fsync
        out: list[Row] = []
        for measure in MEASURES:
            out += measure(corpora, quick)
            for row in out[-4:]:
                print(f"   {row.figure}: {row.value:.3f} {row.unit}", flush=True)
    return out
