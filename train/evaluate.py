"""Evaluate a run on its dataset's held-out clips: windows, the post's file-level vote, a baseline.

The post's headline number is file-level: the windows of each held-out test clip are
put through the network, their outputs averaged, and the clip gets one decision
(15 of 16 files right in the post). Window accuracy and a majority vote are reported
beside it, and the features model (:mod:`train.features`: log-mel statistics into a
cross-validated SVM or logistic regression), trained on the same train split, is the
baseline every network has to beat; a network that loses to it says so.

Every headline comes with what it should be judged against: the majority-class rate
("always saying les_paul would score 50 %"), balanced accuracy, per-class recall and
precision, ROC AUC, the baselines, and a table per manifest column that varies among
the test files, so a shortcut (one tone, one fret band) shows.

Scores, group tables and both baselines are in one module because they share the
per-file vote and are reported together.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from guitarlab.corpus.errors import TrainError
from guitarlab.datasets.meta import DatasetMeta
from guitarlab.datasets.windows import WindowView
from guitarlab.train.baselines import centroid_threshold, window_chunks

GROUP_COLUMNS = ("guitar", "phrase", "tone")
# manifest columns that describe a file's provenance or levels, never a group to compare
NOT_GROUPS = {
    "id", "path", "sha256", "source", "preset_hash", "sample_rate", "channels", "frames",
    "subtype", "peak_dbfs", "rms_dbfs", "gain_db", "recorded_at", "device", "notes", "status",
    "synth_params", "checks", "dropouts", "dropped_frames", "stalls", "dropout_detail",
    "input_gain_db", "label", "predicted", "majority", "correct", "mean_probability",
    "confidence", "file", "file_rate", "file_frames", "take", "excluded", "exclude_spans",
}  # fmt: skip
BASELINE_MAX_WINDOWS = 20_000  # training windows the centroid threshold reads
BASELINE_FOLDER = "baseline"  # where evaluate keeps the features model it trained


def _quiet(_line: str) -> None:
    """The default ``echo``: evaluation from Python prints nothing."""


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
    scores: dict = field(default_factory=dict)
    window_scores: dict = field(default_factory=dict)
    report_path: Path | None = None
    model_kind: str = "network"
    auto: dict = field(default_factory=dict)

    @property
    def balanced_accuracy(self) -> float:
        return float(self.scores.get("balanced_accuracy", float("nan")))

    @property
    def loses_to_features(self) -> str | None:
        """One line when this network scores below the features model on the same split
        (balanced accuracy of files), else None."""
        return loses_line(self.model_kind, self.balanced_accuracy, self.baseline)

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
            "model_kind": self.model_kind,
            "scores": _jsonable_scores(self.scores),
            "window_scores": _jsonable_scores(self.window_scores),
            "files": self.files.to_dict(orient="records"),
        }


# ----------------------------------------------------------------------------- votes (pure)


def file_votes(
    window_probs: list[np.ndarray], labels: np.ndarray, n_classes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The post's mean vote and a majority vote per clip.

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
        with two classes that is "mean > 0.5 -> class 1", as in the post),
    majority_pred : (n_clips,) most frequent window decision.
    """
    mean_probs = np.stack([p.mean(axis=0) for p in window_probs])
    mean_pred = mean_probs.argmax(axis=1)
    majority = np.array(
        [np.bincount(p.argmax(axis=1), minlength=n_classes).argmax() for p in window_probs]
    )
    return mean_probs, mean_pred, majority


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts ``[true, predicted]`` (scikit-learn's, with every class as a row)."""
    from sklearn.metrics import confusion_matrix as sk_confusion

    return sk_confusion(truth, predicted, labels=list(range(n_classes)))


def honest_scores(labels: np.ndarray, probs: np.ndarray, label_names: list[str]) -> dict:
    """Accuracy with what to judge it by: the majority-class rate of these labels,
    balanced accuracy (mean per-class recall), ROC AUC (one-vs-rest for more than two
    classes; None when a class is missing) and a per-class recall/precision table.

    Examples
    --------
    >>> s = honest_scores(np.array([1, 1, 0]), np.array([[.2, .8], [.3, .7], [.4, .6]]), ["a", "b"])
    >>> round(s["accuracy"], 3), s["balanced_accuracy"], s["majority_label"]
    (0.667, 0.5, 'b')
    """
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        precision_recall_fscore_support,
        roc_auc_score,
    )

    labels = np.asarray(labels, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    n_classes = len(label_names)
    predicted = probs.argmax(axis=1)
    counts = np.bincount(labels, minlength=n_classes)
    majority = int(counts.argmax())
    present = counts > 0
    auc = None
    if present.sum() >= 2 and present.all():
        if n_classes == 2:
            auc = float(roc_auc_score(labels, probs[:, 1]))
        else:
            normalized = probs / probs.sum(axis=1, keepdims=True)
            auc = float(roc_auc_score(labels, normalized, multi_class="ovr"))
    precision, recall, _, support = precision_recall_fscore_support(
        labels, predicted, labels=list(range(n_classes)), zero_division=0
    )
    per_class = pd.DataFrame(
        {
            "label": label_names,
            "support": support.astype(int),
            "recall": recall.round(4),
            "precision": precision.round(4),
            "predicted_as": np.bincount(predicted, minlength=n_classes).astype(int),
        }
    )
    return {
        "accuracy": float(accuracy_score(labels, predicted)),
        "balanced_accuracy": float(balanced_accuracy_score(labels, predicted))
        if len(labels)
        else float("nan"),
        "majority_label": label_names[majority],
        "majority_rate": float(counts[majority] / max(1, counts.sum())),
        "roc_auc": auc,
        "per_class": per_class,
    }


def headline(scores: dict, *, what: str = "files") -> str:
    """One line: accuracy, balanced accuracy, and what always saying the majority would get."""
    auc = scores.get("roc_auc")
    auc_text = f", ROC AUC {auc:.3f}" if auc is not None else ""
    return (
        f"{what}: accuracy {scores['accuracy']:.2%}, balanced accuracy "
        f"{scores['balanced_accuracy']:.2%}{auc_text}; always saying {scores['majority_label']} "
        f"would score {scores['majority_rate']:.0%}"
    )


def group_table(files: pd.DataFrame, column: str) -> pd.DataFrame:
    """Files, right, accuracy and (with two or more labels in a group) balanced accuracy
    per value of ``column``, values in :func:`natural_key` order (fret 2 before fret 10)."""
    from sklearn.metrics import balanced_accuracy_score

    rows = []
    groups = sorted(files.groupby(column, sort=False), key=lambda item: natural_key(item[0]))
    for value, group in groups:
        row = {
            column: value,
            "files": len(group),
            "correct": int(group["correct"].sum()),
            "accuracy": float(group["correct"].mean()),
        }
        if "label" in group and group["label"].nunique() > 1:
            row["balanced_accuracy"] = float(
                balanced_accuracy_score(group["label"], group["predicted"])
            )
        rows.append(row)
    return pd.DataFrame(rows)


def fret_band(fret) -> str:
    """Open and low (0-4), middle (5-8) or high (9+) positions, for a per-band table."""
    try:
        value = int(float(fret))
    except (TypeError, ValueError):
        return "unknown"
    return "0-4" if value <= 4 else "5-8" if value <= 8 else "9+"


def natural_key(value) -> list[tuple[int, float | str]]:
    """Sort key that reads numbers as numbers: 0, 1, 2, ..., 10 (not 0, 1, 10, 2), "06" as
    6, "fret9" before "fret10", numbers before text.

    Examples
    --------
    >>> sorted(["10", "6", "12", "0", "x"], key=natural_key)
    ['0', '6', '10', '12', 'x']
    >>> sorted(["e-fret10", "e-fret9", "0-4", "9+", "5-8"], key=natural_key)
    ['0-4', '5-8', '9+', 'e-fret9', 'e-fret10']
    """
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        number = None
    if number is not None and np.isfinite(number):
        return [(0, number)]
    parts = re.split(r"(\d+(?:\.\d+)?)", text)
    return [(0, float(p)) if i % 2 else (1, p) for i, p in enumerate(parts) if p]


def natural_sorted(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """``frame``'s rows in :func:`natural_key` order of ``column`` (stable, new index)."""
    order = sorted(range(len(frame)), key=lambda i: natural_key(frame[column].iloc[i]))
    return frame.iloc[order].reset_index(drop=True)


def varying_columns(files: pd.DataFrame) -> list[str]:
    """The label-like columns whose values differ among the test files (the per-group tables)."""
    columns = []
    for column in files.columns:
        if column in NOT_GROUPS or column.startswith("_"):
            continue
        distinct = files[column].astype(str).nunique()
        if distinct > 1 and (distinct < len(files) or column in GROUP_COLUMNS):
            columns.append(column)
    return columns


def _jsonable_scores(scores: dict) -> dict:
    return {
        k: (v.to_dict(orient="records") if isinstance(v, pd.DataFrame) else v)
        for k, v in scores.items()
    }


# ----------------------------------------------------------------------------- baseline (pure)


def band_energies(windows: np.ndarray, *, n_bands: int = 24) -> np.ndarray:
    """Log energy in ``n_bands`` log-spaced FFT bands per window: ``(N, n_bands)``.

    Frequencies are in FFT bins, so the feature needs no sample rate; the bands run from
    bin 1 to Nyquist. Windows are ``(N, L)`` or ``(N, L, 1)``.
    """
    length = windows.shape[1]
    n_bins = length // 2 + 1
    edges = np.unique(np.geomspace(1, n_bins, n_bands + 1).astype(int))
    out = np.empty((len(windows), len(edges) - 1), dtype=np.float64)
    for start, part in window_chunks(windows):
        power = np.abs(np.fft.rfft(part, axis=1)) ** 2
        cumulative = np.concatenate([np.zeros((len(part), 1)), np.cumsum(power, axis=1)], axis=1)
        band = cumulative[:, edges[1:]] - cumulative[:, edges[:-1]]
        out[start : start + len(part)] = np.log10(band / length + 1e-12)
    return out


def logistic_baseline(features: np.ndarray, labels: np.ndarray, *, seed: int = 0):
    """scikit-learn's logistic regression on standardized features, classes balanced."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(
        StandardScaler(),
        LogisticRegression(max_iter=1000, class_weight="balanced", random_state=seed),
    )
    return model.fit(features, labels)


def loses_line(model_kind: str, balanced: float, baseline: dict) -> str | None:
    """ "The network scores below the features model ..." when it does, else None."""
    base = (baseline or {}).get("file_balanced_accuracy")
    if model_kind != "network" or base is None or not np.isfinite(balanced) or balanced >= base:
        return None
    return (
        f"The network scores below the features model on this split (balanced accuracy "
        f"{balanced:.2f} against {base:.2f}): use --model features, or --model auto to "
        "choose by the validation split"
    )


def baseline_scores(
    X_train: np.ndarray,
    y_train: np.ndarray,
    clip_windows: list[np.ndarray],
    clip_labels: np.ndarray,
    n_classes: int,
    *,
    seed: int = 0,
    sample_rate: int | None = None,
    features_model=None,
    takes: np.ndarray | None = None,
    starts: np.ndarray | None = None,
) -> dict:
    """Window and file-level (mean vote) scores of the features model on the test clips.

    ``features_model`` is used as it is (a features run, an auto run's candidate, one
    evaluate kept); otherwise one is fitted on the training windows, its folds over
    ``takes``. With two classes and a sample rate, the best spectral-centroid threshold on
    the training windows is added (``centroid_window_accuracy``).
    """
    from guitarlab.train.features import FEATURES_NAME, FeatureSettings, fit_features

    y_train = np.asarray(y_train, dtype=np.int64)
    scores: dict = {}
    if features_model is None and sample_rate:
        from guitarlab.train.config import TrainConfig, spectrogram_frames

        window = int(X_train.shape[1])
        settings = FeatureSettings(
            sample_rate=int(sample_rate), **spectrogram_frames(window, TrainConfig(verbose=0))
        )
        features_model = fit_features(
            X_train, y_train, n_classes=n_classes, settings=settings, takes=takes,
            starts=starts, seed=seed,
        )  # fmt: skip
    if features_model is not None:
        probs = [features_model.predict_proba(w) for w in clip_windows]
        window_right = np.concatenate(
            [p.argmax(axis=1) == label for p, label in zip(probs, clip_labels, strict=True)]
        )
        mean_probs, mean_pred, _ = file_votes(probs, clip_labels, n_classes)
        file_scores = honest_scores(clip_labels, mean_probs, [str(i) for i in range(n_classes)])
        scores = {
            "name": FEATURES_NAME,
            "classifier": features_model.describe(),
            "window_accuracy": float(window_right.mean()),
            "file_accuracy": float(np.mean(mean_pred == clip_labels)),
            "file_balanced_accuracy": file_scores["balanced_accuracy"],
            "file_roc_auc": file_scores["roc_auc"],
            "train_windows": int(features_model.cv.get("train_windows", len(y_train))),
        }
    if n_classes == 2 and sample_rate:
        if len(y_train) > BASELINE_MAX_WINDOWS:
            pick = np.sort(
                np.random.default_rng(seed).choice(
                    len(y_train), BASELINE_MAX_WINDOWS, replace=False
                )
            )
            y_train = y_train[pick]
            # a dataset split's windows stay on disk: features are computed a chunk at a time
            X_train = X_train.subset(pick) if isinstance(X_train, WindowView) else X_train[pick]
        test = np.concatenate([_flat(w) for w in clip_windows])
        test_labels = np.repeat(clip_labels, [len(w) for w in clip_windows])
        right = centroid_threshold(X_train, y_train, int(sample_rate))(test) == test_labels
        scores["centroid_window_accuracy"] = float(right.mean())
        if all(np.any(test_labels == c) for c in (0, 1)):
            recalls = [right[test_labels == c].mean() for c in (0, 1)]
            scores["centroid_window_balanced_accuracy"] = float(np.mean(recalls))
    return scores


def _flat(windows: np.ndarray) -> np.ndarray:
    """``(N, L[, 1])`` -> ``(N, L)``, without a copy where the layout allows."""
    windows = np.asarray(windows)
    return windows.reshape(len(windows), -1)


# ----------------------------------------------------------------------------- I/O edge


def clip_probabilities(
    model, clips: list, n_classes: int, *, batch_size: int = 256
) -> list[np.ndarray]:
    """Class probabilities ``(n_windows, n_classes)`` of every clip, in one predict call."""
    from guitarlab.train.features import model_probabilities

    windows = np.concatenate([np.asarray(c.windows, dtype=np.float32) for c in clips])
    probs = model_probabilities(model, windows, n_classes, batch_size=batch_size)
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
    rows: pd.DataFrame | None = None,
    features_model=None,
    echo: Callable[[str], None] | None = None,
) -> dict:
    """Predict every window of every clip and build the tables (no files written).

    ``rows``: the manifest rows of the clips (indexed by id); their label-like columns
    that vary among the test files (pickup, position, fret, ...) get a table each.
    ``features_model``: the baseline (fitted on ``train_arrays`` when None).
    ``echo`` is told each step, so a long evaluation shows where it is.
    """
    echo = echo or _quiet
    if not clips:
        raise TrainError("the test split has no clips; rebuild the dataset with a test span")
    n_classes = len(label_names)
    n_windows = sum(len(c.windows) for c in clips)
    echo(f"evaluate: predicting {len(clips)} test files ({n_windows} windows) ...")
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
    if rows is not None and len(rows):
        extra = [c for c in rows.columns if c not in files.columns and c not in NOT_GROUPS]
        files = files.join(rows[extra], on="id")
        if "fret" in files:
            files["fret_band"] = files["fret"].map(fret_band)
    window_probs = probs
    result = {
        "window_accuracy": float(np.mean(probs.argmax(axis=1) == window_labels)),
        "file_accuracy": float(np.mean(mean_pred == labels)),
        "majority_accuracy": float(np.mean(majority == labels)),
        "n_windows": int(len(probs)),
        "files": files,
        "groups": {c: group_table(files, c) for c in varying_columns(files)},
        "confusion": confusion_matrix(labels, mean_pred, n_classes),
        "baseline": {},
        "scores": honest_scores(labels, mean_probs, label_names),
        "window_scores": honest_scores(window_labels, window_probs, label_names),
    }
    if train_arrays is not None:
        echo("evaluate: scoring baselines (features model, spectral-centroid threshold) ...")
        result["baseline"] = baseline_scores(
            train_arrays[0],  # windows read on demand: the baseline draws a sample of them
            np.asarray(train_arrays[1]),
            [np.asarray(c.windows) for c in clips],
            labels,
            n_classes,
            sample_rate=sample_rate,
            features_model=features_model,
        )
    return result


def evaluate_run(
    run_dir: str | os.PathLike,
    dataset_dir: str | os.PathLike | None = None,
    *,
    baseline: bool = True,
    report: bool = True,
    echo: Callable[[str], None] | None = None,
) -> Evaluation:
    """Evaluate a run folder on the test clips of its dataset (or ``dataset_dir``).

    Writes ``evaluation.json`` and ``files.csv`` into the run folder and, with
    ``report=True``, ``report.md`` with its PNGs. Returns the :class:`Evaluation`.
    ``echo`` (e.g. ``print``) is told each step: loading, predicting, baselines, report.

    Examples
    --------
    >>> ev = evaluate_run("my-run")  # doctest: +SKIP
    >>> print(f"{ev.file_accuracy:.2%} of files right")  # doctest: +SKIP
    """
    from guitarlab.datasets.folder import open_dataset
    from guitarlab.train.rundir import load_run
    from guitarlab.train.runmeta import update_run_meta

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
    echo = echo or _quiet
    echo(f"evaluate: loading the model of {run_dir}")
    model = info.load_model()
    train_arrays = ds.arrays("train") if baseline else None
    result = evaluate_clips(
        model,
        ds.eval_clips("test"),
        info.label_names,
        train_arrays=train_arrays,
        sample_rate=int(ds.sample_rate),
        rows=manifest_rows(ds.meta),
        features_model=baseline_features_model(info, ds, model, echo=echo) if baseline else None,
        echo=echo,
    )
    evaluation = Evaluation(
        run_dir=Path(run_dir),
        dataset_dir=Path(dataset_dir),
        label_names=info.label_names,
        model_kind={"features": "features", "average": "average"}.get(info.config.model, "network"),
        auto=info.meta.auto.to_dict() if info.meta.auto else {},
        **result,
    )
    run_dir = Path(run_dir)
    (run_dir / "evaluation.json").write_text(
        json.dumps(evaluation.as_dict(), indent=2, default=_plain)
    )
    evaluation.files.to_csv(run_dir / "files.csv", index=False)
    update_run_meta(
        run_dir,
        metrics={
            "test_window_accuracy": evaluation.window_accuracy,
            "test_file_accuracy": evaluation.file_accuracy,
            "test_majority_accuracy": evaluation.majority_accuracy,
            "test_file_balanced_accuracy": evaluation.balanced_accuracy,
            "test_file_roc_auc": evaluation.scores.get("roc_auc"),
            "test_majority_class_rate": evaluation.scores.get("majority_rate"),
            "baseline_file_accuracy": evaluation.baseline.get("file_accuracy"),
            "baseline_file_balanced_accuracy": evaluation.baseline.get("file_balanced_accuracy"),
        },
    )
    if report:
        from guitarlab.train.report import write_report

        echo(f"evaluate: writing {run_dir / 'report.md'} and its plots ...")
        evaluation.report_path = write_report(run_dir, evaluation)
    return evaluation


def baseline_features_model(info, ds, model, echo: Callable[[str], None] | None = None):
    """The features model to show beside this run on ``ds``: the run itself when it is
    one, else one already fitted on this dataset's train split (an auto run's candidate,
    or the one an earlier evaluate kept in ``baseline/``), else a new one, kept there."""
    from guitarlab.corpus.errors import GuitarlabError
    from guitarlab.train.auto import dataset_key, train_features
    from guitarlab.train.features import FEATURES_JSON, FeaturesModel, read_features_json

    if info.config.model == "features":
        return model
    if info.config.model == "average":
        return model.members[0]  # the features model the run averages with its network
    folders = [info.run_dir / "candidates" / "features", info.run_dir / BASELINE_FOLDER]
    for folder in folders:
        if not (folder / FEATURES_JSON).is_file():
            continue
        try:
            if read_features_json(folder).get("dataset") == dataset_key(ds):
                return FeaturesModel.load(folder)
        except (GuitarlabError, OSError, ValueError):
            continue  # another scikit-learn, a broken file: fit a new one
    (echo or _quiet)("evaluate: fitting the features baseline on the train split ...")
    features = train_features(ds, info.config)
    features.save(folders[-1], dataset=dataset_key(ds))
    return features


def manifest_rows(dataset_meta: DatasetMeta) -> pd.DataFrame | None:
    """The corpus manifest a dataset was built from, indexed by id (None when it is gone)."""
    from guitarlab.corpus.errors import GuitarlabError
    from guitarlab.corpus.manifest import load_manifest

    corpus = dataset_meta.corpus
    if not corpus or not (Path(corpus) / "manifest.csv").is_file():
        return None
    try:
        frame = load_manifest(corpus)
    except GuitarlabError:
        return None
    return frame.drop_duplicates("id").set_index("id")


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
