"""Features models on the session protocols, one vector per note: ``python -m
benchmarks.bench_session [--seeds 0,1,2]`` prints the MODEL.md table ("A session's notes").

The synthetic note library of ``guitarlab.synth.session`` (one guitar, three pickup
settings, every string at frets 0-12), split two ways:

- ``session-notes``: frets 0-5 train, frets 6-12 test;
- ``session-strings``: the low strings (E, A, D) train, the high ones (G, B, e) test.

Each note is read from its onset (the first 20 ms frame within 30 dB of the loudest) for
``NOTE_S`` seconds, scaled to -20 dBFS RMS, and described as log-mel mean and spread
(64 bands, the issue's features baseline), the pitch-aware harmonic profile
(``guitarlab.train.pitch``: harmonics 1-40 by number, loudness removed), that profile
on the open string's harmonic numbers (``profile_by_length``: it needs the fret, here
from the manifest, so it is an upper bound for audio whose fret is unknown), and each
profile beside the log-mel statistics.
Classifiers: logistic regression and an RBF SVM on standardized features, C (and gamma)
chosen by cross-validation over the training notes grouped by what the test changes
(leave frets out for session-notes, leave one string out for session-strings), scored by
balanced accuracy; the test notes are scored once. ``--matched`` measures the session's
hard variant (one resonance, no hum, one knob setting: only the sensing geometry differs). Written as its own script because the
project's features model (``--model features``) had not landed when it was measured.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

# protocol -> (test query over the manifest, the column cross-validation groups by)
SPLITS = {
    "session-notes": ("fret >= 6", "fret"),
    "session-strings": ("string <= 3", "string"),
}
FEATURES = (
    "log-mel",
    "harmonics",
    "log-mel + harmonics",
    "harmonics by length",
    "log-mel + harmonics by length",
)
CLASSIFIERS = ("logistic", "svm")
NOTE_S = 1.0
TARGET_DBFS = -20.0


def onset_index(audio: np.ndarray, sample_rate: int, *, below_peak_db: float = 30.0) -> int:
    """Start of the first 20 ms frame whose RMS is within ``below_peak_db`` of the loudest."""
    hop = int(0.02 * sample_rate)
    frames = audio[: audio.size // hop * hop].reshape(-1, hop)
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    return int(np.argmax(rms >= rms.max() * 10 ** (-below_peak_db / 20))) * hop


def log_mel_stats(note: np.ndarray, sample_rate: int, *, n_mels: int = 64) -> np.ndarray:
    """Mean and spread over frames (1024 samples, hop 256) of 64 log-mel bands (40 Hz up)."""
    frame = 1024

    def mel(hz):
        return 1127.0 * np.log1p(np.asarray(hz, dtype=np.float64) / 700.0)

    bins = mel(np.linspace(0.0, sample_rate / 2, frame // 2 + 1))[:, None]
    edges = np.linspace(mel(40.0), mel(sample_rate / 2), n_mels + 2)
    weights = np.maximum(
        0.0,
        np.minimum((bins - edges[:-2]) / (edges[1:-1] - edges[:-2]),
                   (edges[2:] - bins) / (edges[2:] - edges[1:-1])),
    )  # fmt: skip
    frames = np.lib.stride_tricks.sliding_window_view(note, frame)[::256] * np.hanning(frame)
    db = 10 * np.log10(np.abs(np.fft.rfft(frames, axis=1)) ** 2 @ weights + 1e-10)
    return np.concatenate([db.mean(axis=0), db.std(axis=0)])


def note_features(audio: np.ndarray, sample_rate: int) -> dict[str, np.ndarray]:
    """The three descriptions of one note file (``FEATURES``)."""
    from guitarlab.train.pitch import harmonic_profile

    start = onset_index(audio, sample_rate)
    note = audio[start : start + int(NOTE_S * sample_rate)].astype(np.float64)
    note = note * 10 ** (TARGET_DBFS / 20) / max(np.sqrt(np.mean(note**2)), 1e-9)
    mel = log_mel_stats(note, sample_rate)
    harmonics = harmonic_profile(note, sample_rate).astype(np.float64)
    return {"log-mel": mel, "harmonics": harmonics, "log-mel + harmonics": np.r_[mel, harmonics]}


def corpus_features(corpus: Path):
    """``(manifest, {feature: (n_files, d)})`` of every note file in ``corpus``."""
    import soundfile as sf

    from guitarlab.corpus.manifest import load_manifest
    from guitarlab.train.pitch import profile_by_length

    manifest = load_manifest(corpus)
    rows = [note_features(*sf.read(corpus / path, dtype="float32")) for path in manifest["path"]]
    for row, fret in zip(rows, manifest["fret"].astype(int), strict=True):
        row["harmonics by length"] = profile_by_length(row["harmonics"], fret)
        row["log-mel + harmonics by length"] = np.r_[row["log-mel"], row["harmonics by length"]]
    return manifest, {name: np.stack([r[name] for r in rows]) for name in FEATURES}


def fit_and_score(
    X: np.ndarray, y: np.ndarray, groups: np.ndarray, train: np.ndarray, classifier: str
) -> dict:
    """Choose the hyperparameters by grouped CV on the training notes; score the test notes."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score, roc_auc_score
    from sklearn.model_selection import GridSearchCV, GroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    if classifier == "logistic":
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
        grid = {"logisticregression__C": [0.01, 0.1, 1.0, 10.0, 100.0]}
    else:
        model = make_pipeline(StandardScaler(), SVC(probability=True, random_state=0))
        d = X.shape[1]
        grid = {"svc__C": [0.1, 1.0, 10.0, 100.0], "svc__gamma": [0.1 / d, 1.0 / d, 10.0 / d]}
    folds = GroupKFold(n_splits=min(3, len(set(groups[train]))))
    search = GridSearchCV(model, grid, cv=folds, scoring="balanced_accuracy")
    search.fit(X[train], y[train], groups=groups[train])
    test = ~train
    probs = search.predict_proba(X[test])[:, 1]
    predicted = search.predict(X[test])
    return {
        "balanced": float(balanced_accuracy_score(y[test], predicted)),
        "auc": float(roc_auc_score(y[test], probs)),
        "right": int(np.sum(predicted == y[test])),
        "files": int(test.sum()),
        "cv": float(search.best_score_),
        "params": {k.split("__")[1]: v for k, v in search.best_params_.items()},
        "recall": {
            str(c): float(np.mean(predicted[y[test] == c] == c)) for c in np.unique(y[test])
        },
    }


def measure(seeds=(0, 1, 2), protocols=tuple(SPLITS), echo=print, *, matched=False) -> dict:
    """``{(protocol, feature, classifier): [result per seed]}``; one corpus per seed
    (``matched``: the session's hard variant, see ``session_options``).

    The log-mel rows are measured twice more with the folds the project's features model
    uses (random whole notes, ``CV: random notes``): whether cross-validation that
    does not hold out what the test holds out still picks hyperparameters that transfer.
    """
    from guitarlab.synth.session import session_to_corpus

    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="guitarlab-session-") as tmp:
        for seed in seeds:
            started = time.perf_counter()
            corpus = Path(tmp) / f"session-{seed}"
            session_to_corpus(corpus, seed=seed, matched=matched, progress=False)
            manifest, features = corpus_features(corpus)
            echo(f"   seed {seed}: {len(manifest)} notes in {time.perf_counter() - started:.0f} s")
            y = (manifest["pickup"] == "single_coil").to_numpy().astype(int)
            numbers = manifest.assign(
                fret=manifest["fret"].astype(int), string=manifest["string"].astype(int)
            )
            for protocol in protocols:
                query, by = SPLITS[protocol]
                train = ~numbers.eval(query).to_numpy()
                groups = numbers[by].to_numpy()
                shuffled = np.random.default_rng(seed).permutation(len(y)) % 3
                for feature in FEATURES:
                    for classifier in CLASSIFIERS:
                        result = fit_and_score(features[feature], y, groups, train, classifier)
                        results.setdefault((protocol, feature, classifier), []).append(result)
                        if feature != "log-mel":
                            continue
                        name = f"{classifier} (CV: random notes)"
                        result = fit_and_score(features[feature], y, shuffled, train, classifier)
                        results.setdefault((protocol, feature, name), []).append(result)
                        echo(
                            f"   {protocol} seed {seed} {feature} {classifier}: "
                            f"{result['balanced']:.3f} (cv {result['cv']:.2f}, {result['params']})"
                        )
    return results


def markdown(results: dict) -> str:
    """One row per protocol, features and classifier: files right per seed, balanced
    accuracy and AUC (mean, range), per-class recall (mean), the CV score."""

    def spread(values):
        values = np.asarray(values, dtype=float)
        if len(values) == 1:
            return f"{values[0]:.2f}"
        return f"{values.mean():.2f} ({values.min():.2f}-{values.max():.2f})"

    lines = [
        "| protocol | features | classifier | seeds | files right | balanced accuracy | ROC AUC "
        "| recall humbucker / single coil | CV balanced |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (protocol, feature, classifier), runs in results.items():
        right = ", ".join(f"{r['right']}/{r['files']}" for r in runs)
        recall = " / ".join(f"{np.mean([r['recall'][c] for r in runs]):.2f}" for c in ("0", "1"))
        lines.append(
            f"| {protocol} | {feature} | {classifier} | {len(runs)} | {right} | "
            f"{spread([r['balanced'] for r in runs])} | {spread([r['auc'] for r in runs])} | "
            f"{recall} | {spread([r['cv'] for r in runs])} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_session", description=__doc__)
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds [default: 0,1,2]")
    parser.add_argument("--protocols", default=",".join(SPLITS), help="comma-separated protocols")
    parser.add_argument(
        "--matched",
        action="store_true",
        help="the hard variant: one resonance, no hum, one knob setting for every pickup setting",
    )
    args = parser.parse_args(argv)
    seeds = tuple(int(s) for s in args.seeds.split(",") if s)
    protocols = tuple(p for p in args.protocols.split(",") if p)
    unknown = sorted(set(protocols) - set(SPLITS))
    if unknown:
        parser.error(f"unknown protocol {unknown[0]!r}; known: {', '.join(SPLITS)}")
    started = time.perf_counter()
    warnings.filterwarnings("ignore", category=FutureWarning)  # SVC(probability=True) in 1.9
    print(markdown(measure(seeds, protocols, matched=args.matched)))
    print(f"{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
