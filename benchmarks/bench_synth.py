"""Synthetic guitar: how much faster than real time one core renders a take.

The reference is the audio's own duration: a ratio of 10 means a 60 s take renders in
6 s, so the demo's 2 guitars x 2 phrases render in seconds and a live stream never
starves. Rendering runs in a child process pinned to one BLAS thread (the note renderer
is one matrix product per note). The full run also reports the default corpus's
one-feature baseline (a spectral-centroid threshold), the number that shows the task
is not trivial.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from benchmarks.common import Row

_CHILD = r"""
import json, sys, time
from guitarlab.recorder.synth import render_take, stream_take
seconds, repeat = float(sys.argv[1]), int(sys.argv[2])
out = {}
for guitar in ("stratocaster", "les_paul"):
    for phrase in ("backing", "lead"):
        best = float("inf")
        for _ in range(repeat):
            start = time.perf_counter()
            render_take(guitar, phrase, seconds=seconds)
            best = min(best, time.perf_counter() - start)
        out[f"{guitar}/{phrase}"] = best
start = time.perf_counter()
next(iter(stream_take("stratocaster", "backing", seconds=seconds, block_frames=1024)))
out["first_block"] = time.perf_counter() - start
print(json.dumps(out))
"""


def _one_core_timings(seconds: float, repeat: int) -> dict:
    env = {
        **os.environ,
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(seconds), str(repeat)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _baseline_accuracy(seconds: float) -> float:
    import numpy as np

    from guitarlab.recorder.synth import centroid_threshold_accuracy, render_take

    def windows(take: int) -> tuple:
        data, labels = [], []
        for label, guitar in enumerate(("stratocaster", "les_paul")):
            for phrase in ("backing", "lead"):
                audio = render_take(guitar, phrase, take=take, seconds=seconds)
                cut = audio[: audio.size // 8000 * 8000].reshape(-1, 8000)
                data.append(cut)
                labels.append(np.full(len(cut), label))
        return np.concatenate(data), np.concatenate(labels)

    (a, b), (c, d) = windows(1), windows(2)
    return 0.5 * (
        centroid_threshold_accuracy(a, b, c, d, 44100)
        + centroid_threshold_accuracy(c, d, a, b, 44100)
    )


def run(quick: bool) -> list[Row]:
    """Realtime factors of 60 s takes (10 s when ``quick``) on one core."""
    seconds = 10.0 if quick else 60.0
    timings = _one_core_timings(seconds, repeat=1 if quick else 3)
    rows = []
    for name, compute_s in timings.items():
        if name == "first_block":
            continue
        guitar, phrase = name.split("/")
        rows.append(
            Row(
                benchmark="synth",
                figure=f"render {seconds:g} s {phrase} on {guitar}, 1 core",
                value=seconds / compute_s,
                unit="s audio per s compute",
                reference="real time (1 s of audio per second)",
                reference_value=1.0,
                goal=">= 10x real time",
                notes=f"{compute_s:.3f} s compute at 44.1 kHz",
            )
        )
    rows.append(
        Row(
            benchmark="synth",
            figure=f"stream_take first block latency ({seconds:g} s take)",
            value=timings["first_block"],
            unit="s",
            reference="take duration",
            reference_value=seconds,
            goal="ratio < 0.01 (renders chunk by chunk)",
        )
    )
    if not quick:
        accuracy = _baseline_accuracy(60.0)
        rows.append(
            Row(
                benchmark="synth",
                figure="centroid-threshold baseline on the default corpus (8000-sample windows, take 1 <-> take 2)",
                value=accuracy,
                unit="window accuracy",
                reference="chance",
                reference_value=0.5,
                goal="0.6-0.9: not trivial",
            )
        )
    return rows
