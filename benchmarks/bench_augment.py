"""Augment: how much faster than real time the core tones render, on one and two threads.

The reference is the audio's own duration: 300x means the three core tones of a 60 s
take (180 s of output) render in 0.6 s. Two threads render different files at once
(pedalboard releases the GIL); their throughput is compared with one thread's on the
same work in the same run. The whole post-layout corpus (4 raw takes x 3 tones) adds
reading, 24-bit writing, checksums and manifest rows.

The test signal is a pluck train (decaying harmonic notes), cheap to make; pedalboard's
cost does not depend on what is played.
"""

from __future__ import annotations

import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from benchmarks.common import Row, best_seconds
from guitarlab.augment.presets import CORE_TONES

RATE = 44100
POST_TAKES = (
    ("stratocaster", "backing"),
    ("stratocaster", "lead"),
    ("les_paul", "backing"),
    ("les_paul", "lead"),
)


def plucks(seconds: float, *, seed: int = 0) -> np.ndarray:
    """A guitar-like pluck train at -20 dBFS-ish RMS, float32 mono."""
    rng = np.random.default_rng(seed)
    frames = int(seconds * RATE)
    audio = np.zeros(frames)
    t = np.arange(RATE // 2) / RATE
    harmonics = np.arange(1, 15)[:, None]
    for _ in range(int(seconds * 4)):
        f0 = rng.uniform(82.0, 660.0)
        start = rng.integers(0, frames - t.size)
        note = (np.sin(2 * np.pi * f0 * harmonics * t) / harmonics**1.3).sum(axis=0)
        audio[start : start + t.size] += 0.08 * note * np.exp(-t * rng.uniform(4, 10))
    return (audio + 0.001 * rng.standard_normal(frames)).astype(np.float32)


def _render_all(audio: np.ndarray, names: list[str], *, workers: int) -> None:
    """Render ``audio`` through each preset in ``names``, each job building its own chain."""
    from guitarlab.augment.presets import chain_from_preset, load_presets
    from guitarlab.augment.render import render

    presets = load_presets()

    def job(name: str) -> None:
        render(audio, RATE, chain_from_preset(presets[name]))

    if workers == 1:
        for name in names:
            job(name)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(job, names))


def _post_corpus(root: Path, seconds: float) -> Path:
    from guitarlab.corpus.audio import write_audio_atomic
    from guitarlab.corpus.intake import import_folder

    src = root / "src"
    for index, (guitar, phrase) in enumerate(POST_TAKES):
        write_audio_atomic(src / f"{guitar}-{phrase}-raw.wav", plucks(seconds, seed=index), RATE)
    import_folder(src, root / "corpus", pattern="{guitar}-{phrase}-{tone}", progress=False)
    return root / "corpus"


def _corpus_seconds(seconds: float, workers: int) -> float:
    from guitarlab.augment.renders import render_corpus

    with tempfile.TemporaryDirectory(prefix="bench-augment-") as tmp:
        corpus = _post_corpus(Path(tmp), seconds)
        start = time.perf_counter()
        added = render_corpus(corpus, tones=list(CORE_TONES), workers=workers, progress=False)
        elapsed = time.perf_counter() - start
    assert len(added) == len(POST_TAKES) * len(CORE_TONES)
    return elapsed


def _load() -> str:
    """Other processes' load: a second thread only helps when a second core is idle."""
    try:
        return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    except OSError:
        return f"{os.cpu_count()} cores"


def run(quick: bool) -> list[Row]:
    """Realtime factors of the core tones (60 s of audio; 10 s when ``quick``)."""
    seconds = 10.0 if quick else 60.0
    repeat = 1 if quick else 3
    audio = plucks(seconds)
    _render_all(audio[: RATE // 10], list(CORE_TONES), workers=1)  # warm up imports and caches
    rows = []
    for name in CORE_TONES:
        spent = best_seconds(lambda n=name: _render_all(audio, [n], workers=1), repeat=repeat)
        rows.append(
            Row(
                "augment",
                f"render {seconds:g} s through {name}, 1 thread",
                seconds / spent,
                "s audio per s compute",
                "real time",
                1.0,
                ">= 300x",
                f"{spent:.3f} s",
            )
        )
    three = list(CORE_TONES)
    one = best_seconds(lambda: _render_all(audio, three, workers=1), repeat=repeat)
    rows.append(
        Row(
            "augment",
            f"render {seconds:g} s through the 3 core tones, 1 thread",
            3 * seconds / one,
            "s audio per s compute",
            "real time",
            1.0,
            ">= 300x per core",
            f"{one:.3f} s for {3 * seconds:g} s of output",
        )
    )
    six = three * 2
    one_six = best_seconds(lambda: _render_all(audio, six, workers=1), repeat=repeat)
    two_six = best_seconds(lambda: _render_all(audio, six, workers=2), repeat=repeat)
    rows.append(
        Row(
            "augment",
            f"render 2 x 3 core tones of {seconds:g} s, 2 threads",
            6 * seconds / two_six,
            "s audio per s compute",
            "the same work on 1 thread",
            6 * seconds / one_six,
            "ratio >= 1.8",
            f"1 thread {one_six:.3f} s, 2 threads {two_six:.3f} s; {_load()}",
        )
    )
    corpus_one = _corpus_seconds(seconds, workers=1)
    corpus_two = _corpus_seconds(seconds, workers=2)
    output_s = len(POST_TAKES) * len(CORE_TONES) * seconds
    rows.append(
        Row(
            "augment",
            f"render_corpus post layout (4 takes x 3 tones, {seconds:g} s each), 1 worker",
            output_s / corpus_one,
            "s audio per s wall",
            "in-memory rendering of the core tones, 1 thread",
            3 * seconds / one,
            "none: the ratio shows what reading, 24-bit writing and sha256 cost",
            f"{corpus_one:.3f} s incl. reading, 24-bit writing, sha256, manifest",
        )
    )
    rows.append(
        Row(
            "augment",
            f"render_corpus post layout (4 takes x 3 tones, {seconds:g} s each), 2 workers",
            output_s / corpus_two,
            "s audio per s wall",
            "the same corpus with 1 worker",
            output_s / corpus_one,
            "ratio >= 1.8",
            f"{corpus_two:.3f} s; {_load()}",
        )
    )
    return rows


if __name__ == "__main__":  # pragma: no cover
    for row in run(quick=False):
        print(row.as_dict())
