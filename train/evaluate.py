"""Evaluate a run on its dataset's held-out clips: windows, the seed's file-level vote, a baseline.

The seed's headline number is file-level: the windows of each held-out test clip are
put through the network, their outputs averaged, and the clip gets one decision
(15 of 16 files right in the post). Window accuracy and a majority vote are reported
beside it, and a logistic regression on log band energies (numpy/scipy only), trained
on the same train split, shows what the network adds over a plain spectral feature.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from guitarlab.errors import TrainError

GROUP_COLUMNS = ("guitar", "phrase", "tone")
BASELINE_NAME = "logistic regression on log band energies"
BASELINE_MAX_WINDOWS = 20_000


@dataclass
class Evaluation:
    """Numbers and tables of one evaluation; :meth:`as_dict` is what evaluation.json holds.

    ``files`` has one row per test clip: id, guitar, phrase, tone, label, predicted,
    mean_probability (the averaged probability of the *true* label, so < 0.5 with two
    classes means wrong), confidence (of the predicted label), majority, correct.
    """

    run_dir: Path
    dataset_dir: Path
    label_names: list[str]
    window_accuracy: float
    file_accuracy: float
    majority_accuracy: float
    n_windows: int
    files: pd.DataFrame
    groups: dict[str, pd.DataFrame]
    confusion: np.ndarray
    baseline: dict = field(default_factory=dict)
    report_path: Path | None = None

    def as_dict(self) -> dict:
        return {
            "run_dir": str(self.run_dir),
            "dataset_dir": str(self.dataset_dir),
            "label_names": self.label_names,
            "window_accuracy": self.window_accuracy,
            "file_accuracy": self.file_accuracy,
            "majority_accuracy": self.majority_accuracy,
            "n_windows": self.n_windows,
            "n_files": len(self.files),
            "confusion": self.confusion.tolist(),
            "baseline": self.baseline,
            "files": self.files.to_dict(orient="records"),
        }


# ----------------------------------------------------------------------------- votes (pure)


def file_votes(
    window_probs: list[np.ndarray], labels: np.ndarray, n_classes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The seed's mean vote and a majority vote per clip.

    Parameters
    ----------
    window_probs
        One ``(n_windows, n_classes)`` probability array per clip.
    labels
        True label index per clip.

    Returns
    -------
    mean_probs : (n_clips, n_classes) averaged probabilities,
    mean_pred : (n_clips,) argmax of the averaged probabilities (ties go to the lower index;
        with two classes that is "mean > 0.5 -> class 1", as in the seed),
    majority_pred : (n_clips,) most frequent window decision.
    """
    mean_probs = np.stack([p.mean(axis=0) for p in window_probs])
    mean_pred = mean_probs.argmax(axis=1)
    majority = np.array(
        [np.bincount(p.argmax(axis=1), minlength=n_classes).argmax() for p in window_probs]
    )
    return mean_probs, mean_pred, majority


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts ``[true, predicted]``."""
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(truth, int), np.asarray(predicted, int)), 1)
    return matrix


def group_table(files: pd.DataFrame, column: str) -> pd.DataFrame:
    """Files, right and accuracy per value of ``column`` (guitar, phrase or tone)."""
    grouped = files.groupby(column, sort=True)["correct"]
    table = pd.DataFrame({"files": grouped.size(), "correct": grouped.sum()}).reset_index()
    table["accuracy"] = table["correct"] / table["files"]
    return table


# ----------------------------------------------------------------------------- baseline (pure)


def band_energies(windows: np.ndarray, *, n_bands: int = 24, chunk: int = 2048) -> np.ndarray:
    """Log energy in ``n_bands`` log-spaced FFT bands per window: ``(N, n_bands)``.

    Frequencies are in FFT bins, so the feature needs no sample rate; the bands run from
    bin 1 to Nyquist. Windows are ``(N, L)`` or ``(N, L, 1)``.
    """
    windows = np.asarray(windows)
    if windows.ndim == 3:
        windows = windows[:, :, 0]
    length = windows.shape[1]
    n_bins = length // 2 + 1
    edges = np.unique(np.geomspace(1, n_bins, n_bands + 1).astype(int))
    out = np.empty((len(windows), len(edges) - 1), dtype=np.float64)
    for start in range(0, len(windows), chunk):
        part = np.asarray(windows[start : start + chunk], dtype=np.float64)
        power = np.abs(np.fft.rfft(part, axis=1)) ** 2
        cumulative = np.concatenate([np.zeros((len(part), 1)), np.cumsum(power, axis=1)], axis=1)
        band = cumulative[:, edges[1:]] - cumulative[:, edges[:-1]]
        out[start : start + chunk] = np.log10(band / length + 1e-12)
    return out


@dataclass
class LogisticBaseline:
    """Multinomial logistic regression with L2, fit by L-BFGS (scipy), on standardized features."""

    mean: np.ndarray
    std: np.ndarray
    weights: np.ndarray  # (features + 1, classes)

    @classmethod
    def fit(
        cls, features: np.ndarray, labels: np.ndarray, n_classes: int, *, l2: float = 1e-3
    ) -> LogisticBaseline:
        from scipy.optimize import minimize

        mean, std = features.mean(axis=0), features.std(axis=0) + 1e-9
        design = np.hstack([(features - mean) / std, np.ones((len(features), 1))])
        onehot = np.eye(n_classes)[labels]

        def loss_grad(flat):
            weights = flat.reshape(design.shape[1], n_classes)
            logits = design @ weights
            logits -= logits.max(axis=1, keepdims=True)
            log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
            loss = -(onehot * log_probs).sum() / len(design) + l2 * (weights[:-1] ** 2).sum()
            grad = design.T @ (np.exp(log_probs) - onehot) / len(design)
            grad[:-1] += 2 * l2 * weights[:-1]
            return loss, grad.ravel()

        start = np.zeros(design.shape[1] * n_classes)
        result = minimize(loss_grad, start, jac=True, method="L-BFGS-B", options={"maxiter": 500})
        return cls(mean, std, result.x.reshape(design.shape[1], n_classes))

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        design = np.hstack([(features - self.mean) / self.std, np.ones((len(features), 1))])
        logits = design @ self.weights
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        return probs / probs.sum(axis=1, keepdims=True)


def baseline_scores(
    X_train: np.ndarray,
    y_train: np.ndarray,
    clip_windows: list[np.ndarray],
    clip_labels: np.ndarray,
    n_classes: int,
    *,
    seed: int = 0,
    sample_rate: int | None = None,
) -> dict:
    """Window and file-level (mean vote) accuracy of the band-energy baseline.

    With two classes and a sample rate, the synthetic guitar's one-feature baseline (the
    best spectral-centroid threshold) is added as ``centroid_window_accuracy``.
    """
    y_train = np.asarray(y_train, dtype=np.int64)
    if len(y_train) > BASELINE_MAX_WINDOWS:
        pick = np.sort(
            np.random.default_rng(seed).choice(len(y_train), BASELINE_MAX_WINDOWS, replace=False)
        )
        X_train, y_train = X_train[pick], y_train[pick]
    model = LogisticBaseline.fit(band_energies(X_train), y_train, n_classes)
    probs = [model.predict_proba(band_energies(w)) for w in clip_windows]
    window_right = np.concatenate(
        [p.argmax(axis=1) == label for p, label in zip(probs, clip_labels, strict=True)]
    )
    _, mean_pred, _ = file_votes(probs, clip_labels, n_classes)
    scores = {
        "name": BASELINE_NAME,
        "window_accuracy": float(window_right.mean()),
        "file_accuracy": float(np.mean(mean_pred == clip_labels)),
        "train_windows": int(len(y_train)),
    }
    if n_classes == 2 and sample_rate:
        try:
            from guitarlab.recorder.synth import centroid_threshold_accuracy
        except ImportError:
            return scores
        test = np.concatenate([_flat(w) for w in clip_windows])
        test_labels = np.repeat(clip_labels, [len(w) for w in clip_windows])
        scores["centroid_window_accuracy"] = centroid_threshold_accuracy(
            _flat(X_train), y_train, test, test_labels, int(sample_rate)
        )
    return scores


def _flat(windows: np.ndarray) -> np.ndarray:
    windows = np.asarray(windows, dtype=np.float64)
    return windows.reshape(len(windows), -1)


# ----------------------------------------------------------------------------- I/O edge


def clip_probabilities(
    model, clips: list, n_classes: int, *, batch_size: int = 256
) -> list[np.ndarray]:
    """Class probabilities ``(n_windows, n_classes)`` of every clip, in one predict call."""
    from guitarlab.train.models import probabilities

    windows = np.concatenate([np.asarray(c.windows, dtype=np.float32) for c in clips])
    probs = probabilities(model.predict(windows, batch_size=batch_size, verbose=0), n_classes)
    bounds = np.cumsum([0] + [len(c.windows) for c in clips])
    return [probs[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def evaluate_clips(
    model,
    clips: list,
    label_names: list[str],
    *,
    train_arrays: tuple[np.ndarray, np.ndarray] | None = None,
    batch_size: int = 256,
    sample_rate: int | None = None,
) -> dict:
    """Predict every window of every clip and build the tables (no files written)."""
    if not clips:
        raise TrainError("the test split has no clips; rebuild the dataset with a test span")
    n_classes = len(label_names)
    per_clip = clip_probabilities(model, clips, n_classes, batch_size=batch_size)
    probs = np.concatenate(per_clip)
    labels = np.array([int(c.label) for c in clips])
    mean_probs, mean_pred, majority = file_votes(per_clip, labels, n_classes)
    window_labels = np.repeat(labels, [len(c.windows) for c in clips])
    files = pd.DataFrame(
        {
            "id": [c.id for c in clips],
            "guitar": [c.guitar for c in clips],
            "phrase": [c.phrase for c in clips],
            "tone": [c.tone for c in clips],
            "label": [label_names[i] for i in labels],
            "predicted": [label_names[i] for i in mean_pred],
            "mean_probability": mean_probs[np.arange(len(labels)), labels].round(4),
            "confidence": mean_probs[np.arange(len(labels)), mean_pred].round(4),
            "majority": [label_names[i] for i in majority],
            "correct": mean_pred == labels,
        }
    )
    result = {
        "window_accuracy": float(np.mean(probs.argmax(axis=1) == window_labels)),
        "file_accuracy": float(np.mean(mean_pred == labels)),
        "majority_accuracy": float(np.mean(majority == labels)),
        "n_windows": int(len(probs)),
        "files": files,
        "groups": {c: group_table(files, c) for c in GROUP_COLUMNS},
        "confusion": confusion_matrix(labels, mean_pred, n_classes),
        "baseline": {},
    }
    if train_arrays is not None:
        result["baseline"] = baseline_scores(
            np.asarray(train_arrays[0]),
            np.asarray(train_arrays[1]),
            [np.asarray(c.windows) for c in clips],
            labels,
            n_classes,
            sample_rate=sample_rate,
        )
    return result


def evaluate_run(
    run_dir: str | os.PathLike,
    dataset_dir: str | os.PathLike | None = None,
    *,
    baseline: bool = True,
    report: bool = True,
) -> Evaluation:
    """Evaluate a run folder on the test clips of its dataset (or ``dataset_dir``).

    Writes ``evaluation.json`` and ``files.csv`` into the run folder and, with
    ``report=True``, ``report.md`` with its PNGs. Returns the :class:`Evaluation`.

    Examples
    --------
    >>> ev = evaluate_run("my-run")
    >>> print(f"{ev.file_accuracy:.2%} of files right")
    """
    from guitarlab.datasets.folder import open_dataset
    from guitarlab.train.fit import load_run, update_run_json

    info = load_run(run_dir)
    dataset_dir = Path(dataset_dir) if dataset_dir else info.dataset_dir
    if dataset_dir is None:
        raise TrainError(
            f"{run_dir} was trained from arrays; pass --dataset with a dataset folder to evaluate on"
        )
    ds = open_dataset(dataset_dir)
    if list(ds.label_names) != info.label_names:
        raise TrainError(
            f"{dataset_dir} has labels {list(ds.label_names)} but the run was trained on "
            f"{info.label_names}; evaluate on a dataset with the same labels"
        )
    if int(ds.window) != info.window:
        raise TrainError(
            f"{dataset_dir} has windows of {ds.window} samples but the run expects {info.window}"
        )
    model = info.load_model()
    train_arrays = ds.arrays("train") if baseline else None
    result = evaluate_clips(
        model,
        ds.eval_clips("test"),
        info.label_names,
        train_arrays=train_arrays,
        sample_rate=int(ds.sample_rate),
    )
    evaluation = Evaluation(
        run_dir=Path(run_dir),
        dataset_dir=Path(dataset_dir),
        label_names=info.label_names,
        **result,
    )
    run_dir = Path(run_dir)
    (run_dir / "evaluation.json").write_text(
        json.dumps(evaluation.as_dict(), indent=2, default=_plain)
    )
    evaluation.files.to_csv(run_dir / "files.csv", index=False)
    update_run_json(
        run_dir,
        metrics={
            "test_window_accuracy": evaluation.window_accuracy,
            "test_file_accuracy": evaluation.file_accuracy,
            "test_majority_accuracy": evaluation.majority_accuracy,
            "baseline_file_accuracy": evaluation.baseline.get("file_accuracy"),
        },
    )
    if report:
        from guitarlab.train.report import write_report

        evaluation.report_path = write_report(run_dir, evaluation)
    return evaluation


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
