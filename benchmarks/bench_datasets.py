"""Dataset build: throughput against plainly reading the same WAVs, and peak memory vs corpus size.

Figures:

- build throughput (seconds of audio per second) over the throughput of reading every
  file with ``soundfile.read`` and nothing else (goal >= 0.9x);
- peak memory of a build at 4x the corpus over 1x, both as the child process's
  ``ru_maxrss`` (a fresh interpreter per build) and as the tracemalloc peak of Python
  and numpy allocations (goal: 4x <= 1.2x of 1x).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import soundfile as sf

from benchmarks.common import Row

RATE = 44100
GUITARS = ("ST", "LP")
PHRASES = ("backing", "lead", "riff", "scale", "chords", "improv", "song", "arpeggio")


def make_corpus(root: Path, *, phrases: int, tones: tuple[str, ...], seconds: float) -> Path:
    """A post-named corpus: guitars x ``phrases`` x ``tones`` files of ``seconds`` each."""
    from guitarlab.corpus.intake import import_folder

    src = root.parent / f"{root.name}-src"
    rng = np.random.default_rng(len(root.name))
    t = np.arange(int(seconds * RATE)) / RATE
    for gi, guitar in enumerate(GUITARS):
        for pi, phrase in enumerate(PHRASES[:phrases]):
            for ti, tone in enumerate(tones):
                freq = 110.0 * (1 + gi) + 7 * pi + 3 * ti
                audio = 0.2 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.size)
                src.mkdir(parents=True, exist_ok=True)
                sf.write(
                    src / f"{guitar}_{phrase}_{tone}.wav",
                    audio.astype(np.float32),
                    RATE,
                    subtype="PCM_24",
                )
    import_folder(src, root, progress=False)
    return root


def make_short_takes(root: Path, *, takes: int, seconds: float) -> Path:
    """A corpus of many short takes, as a session or the guitar-holdout demo makes:
    ``takes`` raw files a guitar, each a quarter second of hiss before its note."""
    from guitarlab.corpus.intake import import_folder

    src = root.parent / f"{root.name}-src"
    src.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(takes)
    t = np.arange(int(seconds * RATE)) / RATE
    lead_in = t < 0.25
    for gi, guitar in enumerate(GUITARS):
        for take in range(takes):
            audio = 0.2 * np.sin(2 * np.pi * (110.0 * (1 + gi) + take % 50) * t) * np.exp(-t)
            audio[lead_in] = 0.0
            audio += 0.001 * rng.standard_normal(t.size)
            name = f"{guitar}_take{take:04d}_raw.wav"
            sf.write(src / name, audio.astype(np.float32), RATE, subtype="PCM_24")
    import_folder(src, root, progress=False)
    return root


def _read_all(files: list[Path]) -> float:
    total = 0.0
    for path in files:
        audio, _ = sf.read(str(path), dtype="float32")
        total += float(audio[0])
    return total


def _read_write_all(files: list[Path], out: Path) -> None:
    """The I/O floor of any build: decode every file and write its samples as float32 .npy."""
    out.mkdir(parents=True)
    for i, path in enumerate(files):
        audio, _ = sf.read(str(path), dtype="float32")
        np.save(out / f"{i}.npy", audio)


class _FreshDirs:
    """A new output folder per timed repetition; old ones are removed between runs, untimed."""

    def __init__(self, base: Path, name: str) -> None:
        self.base, self.name, self.count = base, name, 0

    def clean(self) -> None:
        for old in self.base.glob(f"{self.name}-*"):
            shutil.rmtree(old)

    def next(self) -> Path:
        self.count += 1
        return self.base / f"{self.name}-{self.count}"


_CHILD = """
import json, resource, sys
from guitarlab.datasets.build import build_dataset
build_dataset(sys.argv[1], sys.argv[2], jobs=1, progress=False, overwrite=True)
print(json.dumps({"maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def _child_maxrss_kib(corpus: Path, out: Path) -> float:
    """Peak resident memory of a fresh interpreter that builds one dataset."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, str(corpus), str(out)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return float(json.loads(result.stdout.strip().splitlines()[-1])["maxrss_kib"])


def _traced_peak_bytes(corpus: Path, out: Path) -> float:
    from guitarlab.datasets.build import build_dataset

    tracemalloc.start()
    try:
        build_dataset(corpus, out, jobs=1, progress=False, overwrite=True)
        return float(tracemalloc.get_traced_memory()[1])
    finally:
        tracemalloc.stop()


def _cpu_seconds() -> float:
    """User + system CPU of this process and its finished children (a build's workers)."""
    own, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _fresh_run(work, dirs: _FreshDirs) -> tuple[float, float]:
    """``(wall, cpu)`` seconds of one run into a new folder. Earlier outputs are removed
    and flushed to disk before the clock starts, so no run pays for an earlier one's
    writes (the kernel writes them back in the background on the same cores)."""
    dirs.clean()
    os.sync()
    cpu, start = _cpu_seconds(), time.perf_counter()
    work()
    return time.perf_counter() - start, _cpu_seconds() - cpu


def _in_turns(
    works: dict, dirs: _FreshDirs, repeat: int
) -> dict[object, list[tuple[float, float]]]:
    """``(wall, cpu)`` seconds of every run of each of ``works``, ``repeat`` times, the
    works taking turns (so a slower spell of the machine, which this shared one has,
    falls on all of them alike), each run into a fresh folder."""
    runs: dict[object, list[tuple[float, float]]] = {name: [] for name in works}
    for _ in range(max(1, repeat)):
        for name, work in works.items():
            runs[name].append(_fresh_run(work, dirs))
    dirs.clean()
    return runs


def _two_jobs_row(
    figure: str, corpus: Path, dirs: _FreshDirs, repeat: int, notes: str, **options
) -> Row:
    """The same build with ``jobs=2`` against ``jobs=1``, as audio seconds a second with
    both CPU times: best of ``repeat`` each, the two taking turns (so a slower spell of
    the machine falls on both), each into a fresh folder."""
    from guitarlab.corpus.manifest import load_manifest
    from guitarlab.datasets.build import build_dataset

    audio_s = float(load_manifest(corpus)["frames"].astype(float).sum()) / RATE
    runs = _in_turns(
        {
            jobs: lambda jobs=jobs: build_dataset(
                corpus, dirs.next(), jobs=jobs, progress=False, **options
            )
            for jobs in (1, 2)
        },
        dirs,
        repeat,
    )
    one, two = min(runs[1]), min(runs[2])
    spread = sorted(a[0] / b[0] for a, b in zip(runs[1], runs[2], strict=True))
    return Row(
        "datasets",
        figure,
        audio_s / two[0],
        "audio s/s",
        reference="the same build with 1 job",
        reference_value=audio_s / one[0],
        goal=">= 1.6x on 2 idle cores",
        notes=f"{notes}; CPU {two[1]:.2f} s (2 jobs) vs {one[1]:.2f} s (1 job); turn by turn "
        f"{spread[0]:.2f}-{spread[-1]:.2f}x over {len(spread)} (median "
        f"{spread[len(spread) // 2]:.2f}x); load average "
        f"{os.getloadavg()[0]:.1f} at the end",
    )


def run(quick: bool) -> list[Row]:
    from guitarlab.corpus.manifest import load_manifest
    from guitarlab.datasets.build import build_dataset
    from guitarlab.datasets.engine import build_workers

    seconds = 8.0 if quick else 60.0
    tones = ("raw", "crunch") if quick else ("raw", "clean", "crunch", "distorted")
    repeat = 2 if quick else 5
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-datasets-") as tmp:
        base = Path(tmp)
        # 1x: the post's layout (2 guitars x 2 phrases x tones); 4x: four times the takes
        one = make_corpus(base / "one", phrases=2, tones=tones, seconds=seconds)
        four = make_corpus(base / "four", phrases=8, tones=tones, seconds=seconds)
        manifest = load_manifest(one)
        files = [one / p for p in manifest["path"]]
        audio_s = float(manifest["frames"].astype(float).sum()) / RATE
        _read_all(files)  # warm the page cache for both sides alike
        dirs = _FreshDirs(base, "ds")
        best = {
            name: min(runs)
            for name, runs in _in_turns(
                {
                    "read": lambda: _read_all(files),
                    "floor": lambda: _read_write_all(files, dirs.next()),
                    "one": lambda: build_dataset(one, dirs.next(), jobs=1, progress=False),
                    "default": lambda: build_dataset(one, dirs.next(), progress=False),
                },
                dirs,
                repeat,
            ).items()
        }
        (read_s, read_cpu), (floor_s, _) = best["read"], best["floor"]
        (build_s, build_cpu), (default_s, default_cpu) = best["one"], best["default"]
        size = f"{len(files)} files x {seconds:g} s"
        how = f"{size}, window 8000, span split, per-file standardization"
        rows.append(
            Row(
                "datasets",
                "build throughput",
                audio_s / default_s,
                "audio s/s",
                reference="soundfile.read of the same WAVs",
                reference_value=audio_s / read_s,
                goal=">= 0.9x",
                notes=f"{how}, as built by default (every core: "
                f"{build_workers(0, manifest['frames'].tolist()).processes} process(es) here); CPU {default_cpu:.2f} s vs {read_cpu:.2f} s for the reads",
            )
        )
        rows.append(
            Row(
                "datasets",
                "build throughput, --jobs 1",
                audio_s / build_s,
                "audio s/s",
                reference="soundfile.read of the same WAVs",
                reference_value=audio_s / read_s,
                goal="one core each",
                notes=f"{how}; the build also checks sha256 and writes every sample; CPU "
                f"{build_cpu:.2f} s",
            )
        )
        rows.append(
            Row(
                "datasets",
                "build throughput vs I/O floor",
                audio_s / build_s,
                "audio s/s",
                reference="soundfile.read + np.save of every file as float32",
                reference_value=audio_s / floor_s,
                goal="~1x",
                notes="--jobs 1: the build must write every sample once; this reference does "
                "only that, in one process",
            )
        )
        audio_four_s = float(load_manifest(four)["frames"].astype(float).sum()) / RATE
        jobs_dirs = _FreshDirs(base, "jobs")
        where = (
            f"{audio_four_s / 60:.0f} min of audio in {len(load_manifest(four))} files; "
            f"{os.cpu_count()} cores seen"
        )
        turns = repeat + 2  # the ratio of two noisy timings: more turns than the rest
        rows.append(_two_jobs_row("build throughput, 2 jobs", four, jobs_dirs, turns, where))
        # many short takes, each a task's worth of work or less, silent windows gated out
        short = make_short_takes(base / "short", takes=40 if quick else 400, seconds=5.0)
        rows.append(
            _two_jobs_row(
                "build throughput, many short takes, 2 jobs",
                short,
                jobs_dirs,
                repeat,
                f"{len(load_manifest(short))} takes of 5 s, --skip-silence (as the "
                "guitar-holdout demo builds)",
                skip_silence=True,
            )
        )
        # --onsets finds each file's notes first: CPU work per file, no more writing
        rows.append(
            _two_jobs_row(
                "build throughput --onsets, 2 jobs",
                four,
                jobs_dirs,
                turns,
                "note windows (onset detection per file)",
                onsets=True,
            )
        )
        sizes = _in_turns(
            {
                corpus: lambda corpus=corpus: build_dataset(
                    corpus, dirs.next(), jobs=1, progress=False
                )
                for corpus in (one, four)
            },
            dirs,
            max(1, repeat - 2),
        )
        build_one_s, build_four_s = (min(sizes[corpus])[0] for corpus in (one, four))
        rows.append(
            Row(
                "datasets",
                "build throughput at 4x corpus",
                audio_four_s / build_four_s,
                "audio s/s",
                reference="build throughput at 1x corpus",
                reference_value=audio_s / build_one_s,
                goal="~1x (cost linear in the corpus)",
                notes=f"--jobs 1, in turns: {build_four_s:.2f} s for {audio_four_s / 60:.0f} min "
                f"of audio vs {build_one_s:.2f} s for {audio_s / 60:.0f} min",
            )
        )
        dense = build_dataset(one, base / "dense", hop=2000, progress=False)
        meta = json.loads((dense / "dataset.json").read_text())
        stored = sum(f.stat().st_size for f in dense.glob("*.npy"))
        whole = sum(meta["totals"].values()) * (8000 * 4 + 8)  # a float32 window + its label
        rows.append(
            Row(
                "datasets",
                "disk, windows every 2,000 of 8,000",
                stored / 2**20,
                "MiB",
                reference="every window stored whole (float32)",
                reference_value=whole / 2**20,
                goal="well under 1x",
                notes="each split's covered audio stored once, windows as starts in it",
            )
        )
        rss_one = _child_maxrss_kib(one, base / "rss1")
        rss_four = _child_maxrss_kib(four, base / "rss4")
        rows.append(
            Row(
                "datasets",
                "peak RSS at 4x corpus",
                rss_four / 1024,
                "MiB",
                reference="peak RSS at 1x corpus",
                reference_value=rss_one / 1024,
                goal="<= 1.2x",
                notes=f"--jobs 1, a fresh interpreter per build (imports included); 1x = {size}",
            )
        )
        traced_one = _traced_peak_bytes(one, base / "tr1")
        traced_four = _traced_peak_bytes(four, base / "tr4")
        rows.append(
            Row(
                "datasets",
                "tracemalloc peak at 4x corpus",
                traced_four / 2**20,
                "MiB",
                reference="tracemalloc peak at 1x corpus",
                reference_value=traced_one / 2**20,
                goal="<= 1.2x",
                notes="--jobs 1: Python and numpy allocations during the build only",
            )
        )
    return rows


if __name__ == "__main__":  # pragma: no cover
    for row in run(quick="--quick" in sys.argv):
        print(row.as_dict())
