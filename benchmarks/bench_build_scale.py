"""A grown corpus (issue 32): what a 4-take ``dataset build`` costs at 1k, 10k and 100k rows.

The ``scale`` section's build rows. ``build_rows`` takes the corpora ``bench_scale``
builds (``{rows: corpus}``), adds the same 4 takes to each (2 guitars x 2 takes of 3 s,
44.1 kHz PCM_24, phrase ``bench4``) and times a build that selects them with
``--where "phrase == 'bench4'"``, best of 3, each into a new folder. Goal: the build's
cost does not depend on the manifest's size (100k rows within 2x of 1k): the typed
manifest comes from its cache (``corpus.manifest_cache``) unless the CSV changed, and
only the 4 selected files are opened.

Standalone: ``python -m benchmarks.bench_build_scale [--quick]`` builds its own corpora.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import Row

TAKES = (("bench_strat", 1), ("bench_strat", 2), ("bench_lp", 1), ("bench_lp", 2))
TAKE_SECONDS = 3.0
RATE = 44100
WHERE = "phrase == 'bench4'"


def add_four_takes(root: Path) -> None:
    """The 4 takes, committed the way synth and record commit theirs (appended rows)."""
    from guitarlab.corpus.manifest import commit_rows, manifest_row, stage_audio

    items = []
    t = np.arange(int(TAKE_SECONDS * RATE)) / RATE
    for number, (guitar, index) in enumerate(TAKES):
        take = f"{guitar}-bench4-t{index:03d}"
        rng = np.random.default_rng(number)
        freq = 110.0 * (2 if guitar == "bench_lp" else 1) + 5 * index
        audio = 0.2 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.size)
        path = f"takes/{take}-raw.wav"
        staged, tmp = stage_audio(root, {"path": path}, audio.astype(np.float32), RATE)
        row = manifest_row(
            id=f"{take}-raw",
            path=path,
            guitar=guitar,
            phrase="bench4",
            take=take,
            columns={k: v for k, v in staged.items() if k != "path"},
            device="bench",
        )
        items.append((row, tmp))
    commit_rows(root, items)


def _build_seconds(root: Path, out: Path, repeat: int) -> tuple[float, float, float]:
    """The 4-take build's seconds: the first after the takes were added (the manifest
    parsed and its cache written), the best of ``repeat`` after it (the cache read), and
    loading the manifest alone without the cache."""
    import shutil

    from guitarlab.corpus.manifest import load_manifest
    from guitarlab.datasets.build import build_dataset

    times = []
    for n in range(1 + max(1, repeat)):
        target = out / f"ds{n}"
        start = time.perf_counter()
        build_dataset(root, target, where=WHERE, label="guitar", test_windows=4, progress=False)
        times.append(time.perf_counter() - start)
        shutil.rmtree(target)
    start = time.perf_counter()
    load_manifest(root)
    return times[0], min(times[1:]), time.perf_counter() - start


def build_rows(corpora: dict[int, Path], quick: bool) -> list[Row]:
    """One row per corpus size: the 4-take build's seconds against the smallest corpus's."""
    seconds: dict[int, tuple[float, float, float]] = {}
    repeat = 2 if quick else 3
    with tempfile.TemporaryDirectory(prefix="bench-build-scale-") as tmp:
        for rows, root in sorted(corpora.items()):
            add_four_takes(root)
            seconds[rows] = _build_seconds(root, Path(tmp), repeat)
    small = min(seconds)
    out = []
    for rows, (first_s, build_s, load_s) in sorted(seconds.items()):
        out.append(
            Row(
                "scale",
                f"dataset build of 4 takes (12 s of audio) in a {rows:,}-row corpus",
                build_s,
                "s",
                reference=f"the same build in a {small:,}-row corpus",
                reference_value=seconds[small][1],
                goal="<= 2x",
                notes=f"--where {WHERE!r}, 1 job, best of {repeat} with the manifest's cache; "
                f"the first build after the takes were appended {first_s:.2f} s (parses the "
                f"CSV, writes the cache); load_manifest of the {rows + len(TAKES):,} rows "
                f"alone {load_s:.2f} s",
            )
        )
    return out


def run(quick: bool = False) -> list[Row]:
    """Standalone: the corpora of ``bench_scale`` (its sizes), then :func:`build_rows`."""
    from benchmarks.bench_scale import QUICK_SIZES, SIZES, build_corpus

    with tempfile.TemporaryDirectory(prefix="bench-build-scale-corpora-") as tmp:
        corpora = {
            n: build_corpus(Path(tmp) / f"c{n}", n) for n in (QUICK_SIZES if quick else SIZES)
        }
        return build_rows(corpora, quick)


if __name__ == "__main__":  # pragma: no cover
    for row in run(quick="--quick" in sys.argv):
        print(row.as_dict())
