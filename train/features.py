"""The features model: loudness-normalized log-mel statistics into a cross-validated
scikit-learn classifier. The baseline every network has to beat, and a model in its own right.

On a real note library (one guitar, three pickup settings, unseen frets) the mean log-mel
spectrum of a note into a plain SVM beat every network the project had (issue 28): a
single note's spectrum carries the pickup, and a few hundred notes are too few for a
network to find it on its own. So this model is first class: ``guitarlab train --model
features`` trains it into a run folder that ``evaluate``, ``predict`` (files and live),
``review --run`` and ``retrain`` use like a network's, and every evaluation of a network
shows it on the same split. On a note library it should read one window per note, the
note's first second (``dataset build --onsets --window 44100 --note-windows 1``): scored a
window of 0.18 s at a time and voted it missed a third of a session's unseen frets.

Pure core (numpy, scikit-learn): :func:`window_features` per window, :func:`fit_features`
chooses the classifier and its C/gamma by cross-validation over training *takes* (never
the test set), and :class:`FeaturesModel` answers like a Keras model (``predict``,
``__call__``) with class probabilities, so callers never branch on the kind. Saving is
``model.joblib`` with ``features.json`` beside it (settings, scikit-learn's version,
the cross-validation); loading refuses another scikit-learn version in one line.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from guitarlab.corpus.atomic import atomic_path, write_text_atomic
from guitarlab.corpus.errors import TrainError
from guitarlab.train.baselines import window_chunks

__all__ = [
    "AveragedModel",
    "FEATURES_JSON",
    "FEATURES_MODEL",
    "FEATURES_NAME",
    "FeatureSettings",
    "FeaturesModel",
    "cv_folds",
    "fit_features",
    "mel_matrix",
    "model_probabilities",
    "pick_candidate",
    "window_features",
]

FEATURES_MODEL = "model.joblib"
FEATURES_JSON = "features.json"
FEATURES_NAME = (
    "features model (log-mel mean and spread, cross-validated SVM or logistic regression)"
)
FEATURE_CHUNK_SAMPLES = 1 << 20  # samples per STFT batch: about 100 MB of frames and spectra
CV_MAX_WINDOWS = 2000  # windows the cross-validation sees (an SVM's fit grows as n^2)
FIT_MAX_WINDOWS = 6000  # windows the chosen classifier is fitted on
MAX_FOLDS = 4


@dataclass(frozen=True)
class FeatureSettings:
    """How a window becomes a feature vector; stored in ``features.json`` and ``run.json``.

    ``target_dbfs``: each window is scaled to this RMS first (loudness is how hard a
    note was picked, not the pickup). ``frame_length``/``hop_length``/``n_mels`` are the
    spectrogram network's (:func:`~guitarlab.train.config.spectrogram_frames`), so both
    models read the same frames.
    """

    sample_rate: int
    frame_length: int = 1024
    hop_length: int = 256
    n_mels: int = 64
    fmin_hz: float = 40.0
    target_dbfs: float = -20.0

    @property
    def n_features(self) -> int:
        return 2 * self.n_mels

    def as_dict(self) -> dict:
        return asdict(self)


def mel_matrix(
    sample_rate: int, frame_length: int, n_mels: int, *, fmin_hz: float = 40.0
) -> np.ndarray:
    """``(frame_length // 2 + 1, n_mels)`` triangular HTK-mel weights from FFT bins to bands
    (the same scale as the spectrogram network's ``tf.signal`` matrix; DC gets no weight)."""

    def mel(hz):
        return 1127.0 * np.log1p(np.asarray(hz, dtype=np.float64) / 700.0)

    bins = mel(np.linspace(0.0, sample_rate / 2.0, frame_length // 2 + 1))[:, None]
    edges = np.linspace(mel(fmin_hz), mel(sample_rate / 2.0), n_mels + 2)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bins - lower) / (centre - lower)
    falling = (upper - bins) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights[0] = 0.0
    return weights


def window_features(windows, settings: FeatureSettings) -> np.ndarray:
    """``(N, 2 * n_mels)`` float32: per mel band, the mean and the standard deviation over
    the window's frames of its log energy (dB), each window first scaled to
    ``target_dbfs`` RMS.

    ``windows`` is ``(N, L)``, ``(N, L, 1)`` or a dataset split's ``WindowView``; it is read
    a batch at a time, so memory stays bounded whatever N. A silent window gives the
    floor's constant features rather than NaN.

    Examples
    --------
    >>> s = FeatureSettings(sample_rate=8000, frame_length=256, hop_length=64, n_mels=8)
    >>> t = np.arange(2048) / 8000
    >>> f = window_features(np.stack([np.sin(2 * np.pi * 220 * t), np.zeros(2048)]), s)
    >>> f.shape, bool(np.isfinite(f).all())
    ((2, 16), True)
    """
    length = int(windows.shape[1])
    frame = settings.frame_length
    if length < frame:
        raise TrainError(
            f"windows of {length} samples are shorter than one {frame}-sample frame; "
            "use a longer --window or a smaller --frame"
        )
    weights = mel_matrix(settings.sample_rate, frame, settings.n_mels, fmin_hz=settings.fmin_hz)
    taper = np.hanning(frame)
    target = 10.0 ** (settings.target_dbfs / 20.0)
    out = np.empty((len(windows), settings.n_features), dtype=np.float32)
    for start, part in window_chunks(windows, samples=FEATURE_CHUNK_SAMPLES):
        part = part - part.mean(axis=1, keepdims=True)
        rms = np.sqrt(np.mean(part**2, axis=1, keepdims=True))
        part = part * np.where(rms > 1e-8, target / np.maximum(rms, 1e-8), 1.0)
        frames = np.lib.stride_tricks.sliding_window_view(part, frame, axis=1)
        frames = frames[:, :: settings.hop_length] * taper
        power = np.abs(np.fft.rfft(frames, axis=-1)) ** 2 / frame
        decibels = 10.0 * np.log10(power @ weights + 1e-10)
        out[start : start + len(part), : settings.n_mels] = decibels.mean(axis=1)
        out[start : start + len(part), settings.n_mels :] = decibels.std(axis=1)
    return out


# ----------------------------------------------------------------------------- choosing


def cv_folds(
    labels: np.ndarray,
    takes: np.ndarray | None,
    starts: np.ndarray | None = None,
    *,
    seed: int = 0,
) -> tuple[list[tuple[np.ndarray, np.ndarray]], str]:
    """Cross-validation folds over training takes, and a line saying what they hold out.

    Whole takes when every class has at least two (stratified by label, so no fold trains
    on one class); otherwise each take is cut into three spans of time (by ``starts``, so
    the renders of one moment of a take stay together) and spans are held out. An empty
    list means too little data to cross-validate: the default classifier is used.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    labels = np.asarray(labels)
    n = len(labels)
    if takes is None:
        takes = np.zeros(n, dtype=object)
    takes = np.asarray(takes).astype(str)

    def folds(groups: np.ndarray) -> list:
        per_class = [len(set(groups[labels == c])) for c in np.unique(labels)]
        k = min(MAX_FOLDS, min(per_class)) if per_class else 0
        if len(per_class) < 2 or k < 2:
            return []
        splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        return [
            (train, test)
            for train, test in splitter.split(np.zeros(n), labels, groups)
            if len(np.unique(labels[train])) == len(per_class)
        ]

    whole = folds(takes)
    if len(whole) >= 2:
        return whole, f"{len(whole)} folds of whole training takes"
    if starts is not None:
        starts = np.asarray(starts, dtype=np.int64)
        spans = np.empty(n, dtype=object)
        for take in np.unique(takes):
            mine = takes == take
            cuts = np.quantile(starts[mine], [1 / 3, 2 / 3])
            spans[mine] = [f"{take}#{b}" for b in np.searchsorted(cuts, starts[mine], "right")]
        by_span = folds(spans.astype(str))
        if len(by_span) >= 2:
            return by_span, (
                f"{len(by_span)} folds of spans of training takes (a third of each take "
                "held out at a time: too few takes of a class to hold out whole ones)"
            )
    return [], "no cross-validation (too few training takes); default C"


# The grid. RBF gammas are multiples of 1/d (d features, each standardized): scikit-learn's
# default 1/d reached too far on a session's unseen strings (0.58 balanced per note, a
# tenth of it 0.95; MODEL.md, "A session's notes"), so the grid starts ten times below it.
# The logistic C stops at 0.01: 0.001 lost 0.05-0.20 on unseen strings there.
LOGISTIC_C = (0.01, 0.1, 1.0, 10.0)
SVM_GAMMA_TIMES_D = (0.1, 0.3, 1.0, 3.0)
SVM_C = (1.0, 10.0, 100.0)


def _candidates(n_features: int, seed: int) -> list[tuple[str, dict]]:
    """(name, parameters) of every classifier tried, most regularized first: the logistic
    regression (linear) by C, then the RBF SVM by gamma (reach), then C. A tie in the
    cross-validation goes to the earlier one (:func:`pick_candidate`)."""
    out = [("logistic", {"C": c}) for c in LOGISTIC_C]
    out += [("svm", {"C": c, "gamma": g / n_features}) for g in SVM_GAMMA_TIMES_D for c in SVM_C]
    return out


def pick_candidate(tried: list[dict]) -> dict:
    """The candidate with the best cross-validated balanced accuracy; among those tied
    with it, the first in ``tried`` (which :func:`_candidates` orders most regularized
    first).

    Why: folds of training takes cannot see what the test set changes (unseen frets or
    strings), and on a note library every candidate often scores 1.00 over them; the
    smoothest of the tied boundaries is the one that transferred (MODEL.md).

    Examples
    --------
    >>> pick_candidate([
    ...     {"classifier": "logistic", "C": 0.01, "cv_balanced_accuracy": 0.9},
    ...     {"classifier": "logistic", "C": 0.1, "cv_balanced_accuracy": 1.0},
    ...     {"classifier": "svm", "C": 1.0, "gamma": 0.01, "cv_balanced_accuracy": 1.0},
    ... ])["C"]
    0.1
    """
    if not tried:
        raise TrainError("no classifier was cross-validated")
    top = max(row["cv_balanced_accuracy"] for row in tried)
    return next(row for row in tried if row["cv_balanced_accuracy"] >= top - 1e-9)


def _pipeline(name: str, params: dict, *, seed: int, probability: bool):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    if name == "logistic":
        classifier = LogisticRegression(
            C=params["C"],
            max_iter=2000,
            class_weight="balanced",
            random_state=seed,
            solver="newton-cholesky",  # 128 features: a few exact Newton steps, not 100s of L-BFGS
        )
    else:
        classifier = SVC(
            kernel="rbf", C=params["C"], gamma=params["gamma"], class_weight="balanced"
        )
        if probability:  # Platt scaling on held-out thirds (scikit-learn's way since 1.9)
            classifier = CalibratedClassifierCV(classifier, method="sigmoid", cv=3, ensemble=False)
    return Pipeline([("scale", StandardScaler()), ("classify", classifier)])


def _sample(n: int, limit: int, seed: int) -> np.ndarray:
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))


def _subset(windows, index: np.ndarray):
    return windows.subset(index) if hasattr(windows, "subset") else windows[index]


def fit_features(
    windows,
    labels: np.ndarray,
    *,
    n_classes: int,
    settings: FeatureSettings,
    takes: np.ndarray | None = None,
    starts: np.ndarray | None = None,
    seed: int = 0,
) -> FeaturesModel:
    """Fit the features model on training windows, choosing its classifier (logistic
    regression or RBF SVM) and C/gamma by balanced accuracy over folds of training takes.

    ``takes`` (and ``starts``) are the windows' take and start sample (a dataset's
    ``windows("train")`` table): folds never split a take's moment between training and
    scoring. Up to ``FIT_MAX_WINDOWS`` windows (a random sample) are used, and
    ``CV_MAX_WINDOWS`` of them for the folds. Only training windows are ever read.
    """
    from threadpoolctl import threadpool_limits

    # one BLAS thread: these fits are small, and BLAS threads fighting over a busy laptop's
    # cores made each logistic regression 10-15 times slower (0.86 s against 0.06 s)
    with threadpool_limits(limits=1):
        return _fit_features(
            windows, labels, n_classes=n_classes, settings=settings, takes=takes,
            starts=starts, seed=seed,
        )  # fmt: skip


def _fit_features(windows, labels, *, n_classes, settings, takes, starts, seed) -> FeaturesModel:
    from sklearn.metrics import balanced_accuracy_score

    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) != len(windows):
        raise TrainError(f"{len(windows)} windows but {len(labels)} labels")
    if len(np.unique(labels)) < 2:
        raise TrainError("the training windows hold one label; a classifier needs at least two")
    started = time.perf_counter()
    pick = _sample(len(labels), FIT_MAX_WINDOWS, seed)
    features = window_features(_subset(windows, pick), settings)
    y = labels[pick]
    takes = None if takes is None else np.asarray(takes)[pick]
    starts = None if starts is None else np.asarray(starts)[pick]
    cv_pick = _sample(len(y), CV_MAX_WINDOWS, seed + 1)
    folds, how = cv_folds(
        y[cv_pick],
        None if takes is None else takes[cv_pick],
        None if starts is None else starts[cv_pick],
        seed=seed,
    )
    tried = []
    for name, params in _candidates(settings.n_features, seed) if folds else []:
        scores = []
        for train, test in folds:
            model = _pipeline(name, params, seed=seed, probability=False)
            model.fit(features[cv_pick][train], y[cv_pick][train])
            predicted = model.predict(features[cv_pick][test])
            scores.append(balanced_accuracy_score(y[cv_pick][test], predicted))
        tried.append({"classifier": name, **params, "cv_balanced_accuracy": float(np.mean(scores))})
    if tried:
        best = pick_candidate(tried)  # a tie: the most regularized
        name = best["classifier"]
        params = {k: v for k, v in best.items() if k in ("C", "gamma")}
    else:
        best, name, params = None, "logistic", {"C": 1.0}
    pipeline = _pipeline(name, params, seed=seed, probability=True)
    pipeline.fit(features, y)
    cv = {
        "folds": how,
        "classifier": name,
        "params": params,
        "cv_balanced_accuracy": None if best is None else best["cv_balanced_accuracy"],
        "tried": tried,
        "train_windows": int(len(y)),
        "cv_windows": int(len(cv_pick)),
        "seconds": round(time.perf_counter() - started, 2),
    }
    return FeaturesModel(
        pipeline, settings, n_classes=n_classes, window=int(windows.shape[1]), cv=cv
    )


# ----------------------------------------------------------------------------- the model


def sklearn_version() -> str:
    import sklearn

    return str(sklearn.__version__)


@dataclass
class FeaturesModel:
    """A fitted features model that answers like a Keras model: ``predict(windows)`` and
    ``model(windows)`` give ``(N, n_classes)`` probabilities, so evaluation, prediction and
    review use it exactly as they use a network (:func:`~guitarlab.train.models.probabilities`
    passes them through)."""

    pipeline: object
    settings: FeatureSettings
    n_classes: int
    window: int
    cv: dict = field(default_factory=dict)
    kind: str = "features"

    @property
    def input_shape(self) -> tuple:
        return (None, self.window, 1)

    def predict_proba(self, windows) -> np.ndarray:
        """Class probabilities ``(N, n_classes)`` of windows ``(N, L[, 1])``; classes the
        training never saw get 0."""
        probs = np.zeros((len(windows), self.n_classes))
        if len(windows):
            features = window_features(windows, self.settings)
            probs[:, self.pipeline.classes_] = self.pipeline.predict_proba(features)
        return probs

    def predict(self, windows, batch_size: int | None = None, verbose: int = 0) -> np.ndarray:
        """Keras's ``predict``: the probabilities (``batch_size`` and ``verbose`` ignored)."""
        return self.predict_proba(windows)

    def __call__(self, windows, training: bool = False) -> np.ndarray:
        return self.predict_proba(np.asarray(windows))

    def describe(self) -> str:
        """One line: which classifier the cross-validation chose, with its parameters."""
        params = ", ".join(f"{k}={v:.3g}" for k, v in self.cv.get("params", {}).items())
        score = self.cv.get("cv_balanced_accuracy")
        scored = f", cross-validated balanced accuracy {score:.2f}" if score is not None else ""
        return f"{self.cv.get('classifier', '?')} ({params}){scored}; {self.cv.get('folds', '')}"

    def save(self, folder: str | os.PathLike, **extra) -> Path:
        """``model.joblib`` and ``features.json`` (settings, scikit-learn version, the
        cross-validation, and ``extra``) into ``folder``, each written atomically."""
        import joblib

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / FEATURES_MODEL) as tmp:
            joblib.dump(self.pipeline, tmp)
        meta = {
            "kind": self.kind,
            "settings": self.settings.as_dict(),
            "n_classes": self.n_classes,
            "window": self.window,
            "sklearn_version": sklearn_version(),
            "cv": self.cv,
            **extra,
        }
        write_text_atomic(folder / FEATURES_JSON, json.dumps(meta, indent=2))
        return folder / FEATURES_MODEL

    @classmethod
    def load(cls, folder: str | os.PathLike) -> FeaturesModel:
        """Read a saved features model; a TrainError (one line, "retrain") when it was
        saved by another scikit-learn version, whose pickles need not load right."""
        import joblib

        folder = Path(folder)
        meta = read_features_json(folder)
        if meta.get("sklearn_version") != sklearn_version():
            raise TrainError(
                f"{folder}: the features model was saved with scikit-learn "
                f"{meta.get('sklearn_version')} and this is {sklearn_version()}; retrain it "
                "with 'guitarlab train --model features'"
            )
        path = folder / FEATURES_MODEL
        if not path.is_file():
            raise TrainError(f"{path}: missing; the run did not finish, train it again")
        return cls(
            joblib.load(path),
            FeatureSettings(**meta["settings"]),
            n_classes=int(meta["n_classes"]),
            window=int(meta["window"]),
            cv=meta.get("cv", {}),
        )


def read_features_json(folder: str | os.PathLike) -> dict:
    """``features.json`` of a folder holding a features model (TrainError when missing)."""
    path = Path(folder) / FEATURES_JSON
    if not path.is_file():
        raise TrainError(f"{path}: missing; the run did not finish, train it again")
    return json.loads(path.read_text())


@dataclass
class AveragedModel:
    """Several models as one: the mean of their class probabilities (``--model average``:
    the features model and the spectrogram network). Answers like a Keras model, as
    :class:`FeaturesModel` does."""

    members: list
    n_classes: int
    kind: str = "average"

    @property
    def input_shape(self) -> tuple:
        return tuple(self.members[0].input_shape)

    def predict_proba(self, windows) -> np.ndarray:
        return np.mean([model_probabilities(m, windows, self.n_classes) for m in self.members], 0)

    def predict(self, windows, batch_size: int | None = None, verbose: int = 0) -> np.ndarray:
        return self.predict_proba(windows)

    def __call__(self, windows, training: bool = False) -> np.ndarray:
        return self.predict_proba(np.asarray(windows))


def model_probabilities(model, windows, n_classes: int, *, batch_size: int = 256) -> np.ndarray:
    """Class probabilities ``(N, n_classes)`` of windows ``(N, L, 1)`` from a run's model,
    a network, the features model or their average: the one call evaluate, predict, live,
    review and retrain make, so none of them asks which kind a run holds (and the features
    model never loads TensorFlow)."""
    if isinstance(model, FeaturesModel | AveragedModel):
        return model.predict_proba(windows)
    from guitarlab.train.models import probabilities

    windows = np.asarray(windows, dtype=np.float32)
    if len(windows) <= batch_size:  # one small batch: a direct call skips predict()'s setup
        outputs = np.asarray(model(windows, training=False))
    else:
        outputs = model.predict(windows, batch_size=batch_size, verbose=0)
    return probabilities(outputs, n_classes)
