"""Synthetic guitar: how much faster than real time one core renders a take.

The reference is the audio's own duration: a ratio of 10 means a 60 s take renders in
6 s, so the demo's 2 guitars x 2 phrases render in seconds and a live stream never
starves. Rendering runs in a child process pinned to one BLAS thread (the note renderer
is one matrix product per note). The full run also reports the default corpus's
one-feature baseline (a spectral-centroid threshold), the number that shows the task
is not trivial, and the family's guitar-holdout baselines: on randomized takes of
every family guitar, trained on some guitars and scored on guitars never seen, the
shortcuts (a centroid or loudness threshold, a logistic regression on the log band
energies below 300 Hz) score near chance while all 24 log bands still carry the
pickup type.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from benchmarks.common import Row

_CHILD = r"""
import json, sys, time
from guitarlab.synth.render import render_take, stream_take
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

    from guitarlab.synth.render import render_take
    from guitarlab.train.baselines import centroid_threshold_accuracy

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


WINDOW = 8000
LOW_BAND_HZ = 300.0


def family_windows(
    *, seconds: float = 12.0, takes: int = 3, seed: int = 0, sample_rate: int = 44100,
    phrases: tuple[str, ...] = ("backing", "lead"),
) -> dict:  # fmt: skip
    """Randomized takes of every family guitar, cut into 8000-sample windows.

    Returns ``{"windows": (N, 8000) per-file standardized, "level_db": (N,) raw window RMS,
    "guitar": (N,), "pickup": (N,)}``, the inputs of :func:`holdout_scores`.
    """
    import numpy as np

    from guitarlab.synth.family import randomized_takes

    parts: dict[str, list] = {
        "windows": [], "level_db": [], "guitar": [], "pickup": [], "file": []
    }  # fmt: skip
    for guitar, phrase, take, label, audio in randomized_takes(
        phrases=phrases, takes=takes, seconds=seconds, seed=seed, sample_rate=sample_rate
    ):
        audio = audio.astype(np.float64)
        cut = audio[: audio.size // WINDOW * WINDOW].reshape(-1, WINDOW)
        parts["windows"].append((cut - audio.mean()) / (audio.std() + 1e-12))
        parts["level_db"].append(10 * np.log10(np.mean(cut**2, axis=1) + 1e-20))
        parts["guitar"].append(np.full(len(cut), guitar))
        parts["pickup"].append(np.full(len(cut), label))
        parts["file"].append(np.full(len(cut), f"{guitar}-{phrase}-{take}"))
    return {k: np.concatenate(v) for k, v in parts.items()}


def holdout_scores(data: dict, *, sample_rate: int = 44100) -> dict[str, dict[str, list[float]]]:
    """Balanced accuracy, single coil vs humbucker, on guitars never seen in training.

    Every fold holds out one single-coil and one humbucker guitar (all pairs; the
    superstrat and its split setting share a body, so holding out one drops both from
    training) and trains on the rest; P-90s sit out of this two-class task. Feature
    sets: the best spectral-centroid threshold, the best loudness threshold, a logistic
    regression on the log band energies below 300 Hz (hum and the low strings) and one
    on all 24 log band energies. Returns ``{feature set: {"window": [score per fold],
    "file": [...]}}``; a file's decision is the majority of its windows.
    """
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    from guitarlab.train.baselines import spectral_centroid_hz
    from guitarlab.train.evaluate import band_energies

    keep = np.isin(data["pickup"], ["single_coil", "humbucker"])
    guitar, y = data["guitar"][keep], (data["pickup"][keep] == "humbucker").astype(int)
    files = data["file"][keep]
    windows = data["windows"][keep]
    bands = band_energies(windows)
    n_bins = WINDOW // 2 + 1
    edges = np.unique(np.geomspace(1, n_bins, 25).astype(int))
    low = edges[1:] * sample_rate / WINDOW <= LOW_BAND_HZ
    features = {
        "spectral-centroid threshold": spectral_centroid_hz(windows, sample_rate)[:, None],
        "loudness threshold (raw window RMS)": data["level_db"][keep][:, None],
        "logistic regression, log band energies < 300 Hz": bands[:, low],
        "logistic regression, all 24 log band energies": bands,
    }
    body = np.array([g.removesuffix("_split") for g in guitar])
    singles = sorted(set(guitar[y == 0]))
    humbuckers = sorted(set(guitar[y == 1]))
    scores = {name: {"window": [], "file": []} for name in features}
    for s in singles:
        for h in humbuckers:
            test = np.isin(guitar, [s, h])
            train = ~np.isin(body, [s.removesuffix("_split"), h.removesuffix("_split")])
            for name, x in features.items():
                if x.shape[1] == 1:
                    model = DecisionTreeClassifier(max_depth=1, class_weight="balanced")
                else:
                    model = make_pipeline(
                        StandardScaler(),
                        LogisticRegression(class_weight="balanced", max_iter=2000),
                    )
                model.fit(x[train], y[train])
                predicted = model.predict(x[test])
                scores[name]["window"].append(balanced_accuracy_score(y[test], predicted))
                names, index = np.unique(files[test], return_inverse=True)
                votes = np.bincount(index, weights=predicted) / np.bincount(index)
                truth = np.bincount(index, weights=y[test]) / np.bincount(index)
                scores[name]["file"].append(balanced_accuracy_score(truth, votes > 0.5))
    return scores


def family_rows(*, seconds: float, takes: int, seed: int = 0) -> list[Row]:
    """The shortcut baselines and the band-energy regression on held-out guitars."""
    import numpy as np

    data = family_windows(seconds=seconds, takes=takes, seed=seed)
    scores = holdout_scores(data)
    n_files = len(set(data["file"]))
    rows = []
    for name, by in scores.items():
        window, file = np.array(by["window"]), np.array(by["file"])
        shortcut = "all 24" not in name
        rows.append(
            Row(
                benchmark="synth",
                figure=f"randomized family, held-out guitars, single coil vs humbucker: {name}",
                value=float(window.mean()),
                unit="balanced accuracy (windows)",
                reference="chance",
                reference_value=0.5,
                goal="<= 0.65: no shortcut" if shortcut else "> the shortcuts: learnable",
                notes=(
                    f"{len(window)} folds (one single-coil + one humbucker guitar held out), "
                    f"range {window.min():.2f}-{window.max():.2f}; file vote {file.mean():.3f}; "
                    f"{n_files} takes of {seconds:g} s, --randomize, seed {seed}"
                ),
            )
        )
    return rows


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
        rows += family_rows(seconds=12.0, takes=3)
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
