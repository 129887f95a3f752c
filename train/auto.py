"""Run folders for the features model, and ``--model auto``: train the candidates that fit
the data, keep the one the validation split prefers.

``fit_features_dataset`` is ``fit_dataset`` for the features model (:mod:`train.features`):
the same run.json, so ``evaluate``, ``predict``, ``review --run`` and ``retrain`` read it
like a network's run. ``fit_auto`` trains the features model and the spectrogram network
at the demo's laptop size, each into ``candidates/<name>/``, scores both on the
dataset's validation split (held-out takes or spans, never the test split), copies the
winner into the run folder and records every candidate's validation and test scores and
why it chose as it did in run.json (``auto``). The test scores are computed after the
choice and only reported.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from guitarlab.corpus.atomic import atomic_path
from guitarlab.corpus.defaults import VERSION
from guitarlab.corpus.errors import TrainError
from guitarlab.train.config import TrainConfig, spectrogram_frames
from guitarlab.train.features import (
    FEATURES_JSON,
    FEATURES_MODEL,
    AveragedModel,
    FeatureSettings,
    FeaturesModel,
    fit_features,
    model_probabilities,
    sklearn_version,
)
from guitarlab.train.rundir import MODEL_KERAS, RUN_JSON, Run, prepare_out
from guitarlab.train.runmeta import (
    AutoChoice,
    RunMeta,
    load_run_meta,
    read_run_meta,
    write_run_meta,
)

# The network candidate is the run's own network options (network_candidate): TrainConfig's
# defaults are the laptop model (train.config.LAPTOP_MODEL, which the demo trains too).
AUTO_NETWORK_MODEL = "lstm-fcn"
CANDIDATES = "candidates"
FEATURES_CANDIDATE = "features"
NETWORK_CANDIDATE = "spectrogram-network"
AVERAGE_CANDIDATE = "average"  # the two above, probabilities averaged (nothing more trained)


def feature_settings(config: TrainConfig, window: int, sample_rate: int) -> FeatureSettings:
    """The features model's settings for a window: the spectrogram network's frames and
    mel bands (``--frame``, ``--n-mels`` apply to both)."""
    return FeatureSettings(sample_rate=int(sample_rate), **spectrogram_frames(window, config))


def train_features(ds, config: TrainConfig) -> FeaturesModel:
    """The features model fitted on a dataset folder's train split, its folds over the
    split's takes (``windows.csv``)."""
    X, y = ds.arrays("train")
    table = ds.windows("train")
    if len(table) != len(y):
        raise TrainError(f"{ds.path}: windows.csv does not match the train split; rebuild it")
    return fit_features(
        X,
        np.asarray(y),
        n_classes=ds.n_classes,
        settings=feature_settings(config, int(ds.window), int(ds.sample_rate)),
        takes=table["take"].astype(str).to_numpy(),
        starts=table["start"].to_numpy(),
        seed=config.seed,
    )


def dataset_key(ds) -> dict:
    """What a saved features model was fitted on: the dataset folder, its manifest hash
    and window (a model is reused only on the very same training windows)."""
    return {"dir": str(Path(ds.path).resolve()), "hash": ds.hash, "window": int(ds.window)}


def split_scores(model, ds, split: str) -> dict | None:
    """File-level (mean vote) and window balanced accuracy of ``model`` on one split's clips;
    None when the split is empty."""
    from guitarlab.corpus.errors import DatasetError
    from guitarlab.train.evaluate import file_votes, honest_scores

    try:
        clips = ds.eval_clips(split)
    except (DatasetError, KeyError, FileNotFoundError):
        return None
    if not clips:
        return None
    n = ds.n_classes
    windows = np.concatenate([np.asarray(c.windows, dtype=np.float32) for c in clips])
    probs = model_probabilities(model, windows, n)
    bounds = np.cumsum([0] + [len(c.windows) for c in clips])
    per_clip = [probs[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    labels = np.array([int(c.label) for c in clips])
    mean_probs, _, _ = file_votes(per_clip, labels, n)
    names = list(ds.label_names)
    files = honest_scores(labels, mean_probs, names)
    windows_scores = honest_scores(np.repeat(labels, np.diff(bounds)), probs, names)
    return {
        "file_balanced_accuracy": files["balanced_accuracy"],
        "file_accuracy": files["accuracy"],
        "file_roc_auc": files["roc_auc"],
        "window_balanced_accuracy": windows_scores["balanced_accuracy"],
        "files": len(clips),
        "windows": int(len(probs)),
    }


def fit_features_dataset(
    dataset_dir: str | os.PathLike,
    out: str | os.PathLike,
    config: TrainConfig,
    *,
    dataset_factory=None,
) -> Run:
    """Train the features model on a dataset folder's train split into run folder ``out``.

    Seconds on a laptop, no TensorFlow. run.json is a network run's (config, labels,
    window, rate, data) plus ``features`` (settings, scikit-learn version, what the
    cross-validation tried and chose); ``--resume`` trains it again.
    """
    from guitarlab.datasets.folder import open_dataset
    from guitarlab.train.fit import _split_or_none, dataset_info

    out = Path(out)
    if config.resume and (out / RUN_JSON).is_file():
        out.mkdir(parents=True, exist_ok=True)  # no epochs to resume: it trains again
    else:
        prepare_out(
            out,
            TrainConfig.from_dict({**config.as_dict(), "resume": False}),
            dataset_dir=str(dataset_dir),
        )
    started_at = time.strftime("%Y-%m-%dT%H:%M:%S")
    started = time.perf_counter()
    ds = (dataset_factory or open_dataset)(dataset_dir)
    y_train = np.asarray(ds.arrays("train")[1])
    if len(y_train) == 0:
        raise TrainError(f"{dataset_dir}: the train split is empty; rebuild the dataset")
    data = dataset_info(ds, dataset_dir, y_train, _split_or_none(ds, "val"))
    model = train_features(ds, config)
    print(f"[guitarlab] features model: {model.describe()}", flush=True)
    model.save(out, dataset=dataset_key(ds))
    metrics: dict = {}
    val = split_scores(model, ds, "val")
    if val:
        metrics["val_file_balanced_accuracy"] = val["file_balanced_accuracy"]
        metrics["val_window_balanced_accuracy"] = val["window_balanced_accuracy"]
    if _split_or_none(ds, "test") is not None:
        X_test, y_test = ds.arrays("test")
        predicted = model.predict_proba(X_test).argmax(axis=1)
        metrics["test_window_accuracy"] = float(np.mean(predicted == np.asarray(y_test)))
        metrics["test_windows"] = int(len(y_test))
    info = RunMeta(
        guitarlab_version=VERSION,
        status="finished",
        config={**config.as_dict(), "model": "features", "resume": False},
        label_names=list(ds.label_names),
        window=int(ds.window),
        channels=1,
        sample_rate=int(ds.sample_rate),
        data=data,
        device="CPU (scikit-learn)",
        features={
            "settings": model.settings.as_dict(),
            "sklearn_version": sklearn_version(),
            "cv": model.cv,
        },
        started_at=started_at,
        train_seconds_this_session=round(time.perf_counter() - started, 3),
        metrics=metrics,
        history={},
        finished_at=time.strftime("%Y-%m-%dT%H:%M:%S"),
    )
    write_run_meta(out, info)
    return Run(run_dir=out, model=model, history={}, metrics=metrics, info=info)


# ----------------------------------------------------------------------------- auto


def network_candidate(config: TrainConfig) -> TrainConfig:
    """The network ``--model auto`` (and ``average``) trains beside the features model: the
    run's own options as an LSTM-FCN, so what the user gave applies to it (the laptop
    model by default, the post's full model with ``--full-model``). The one place that
    decides it, for the command line, :func:`fit_dataset` and a retrain alike."""
    return TrainConfig.from_dict({**config.as_dict(), "model": AUTO_NETWORK_MODEL})


def missing_validation(ds, dataset_dir: str | os.PathLike) -> str | None:
    """Why ``--model auto`` cannot choose on this dataset (it has no validation split), or
    None when it can: the one check behind :func:`default_model` and :func:`fit_auto`."""
    from guitarlab.train.fit import _split_or_none

    if _split_or_none(ds, "val") is not None:
        return None
    return (
        f"{dataset_dir} has no validation split to choose a model by; rebuild it with "
        "--val take (or --val span) for --model auto, or give --model features"
    )


def choose(candidates: list[dict]) -> tuple[dict, str]:
    """The candidate with the best validation score, and why, in one sentence.

    Ordered by file-level balanced accuracy on the validation split, then window-level
    balanced accuracy; a tie goes to the earlier candidate (the features model: cheaper
    to train and to run). Only ``val_*`` keys are read: the test split cannot sway it.

    Examples
    --------
    >>> best, why = choose([
    ...     {"name": "features", "val_file_balanced_accuracy": 0.9, "val_window_balanced_accuracy": 0.8},
    ...     {"name": "net", "val_file_balanced_accuracy": 0.9, "val_window_balanced_accuracy": 0.85},
    ... ])
    >>> best["name"]
    'net'
    """
    if not candidates:
        raise TrainError("no candidate model to choose from")

    def key(row: dict) -> tuple[float, float]:
        return (row["val_file_balanced_accuracy"], row["val_window_balanced_accuracy"])

    best = candidates[0]
    for row in candidates[1:]:
        if key(row) > key(best):
            best = row
    others = "; ".join(
        f"{row['name']} {row['val_file_balanced_accuracy']:.3f} "
        f"(windows {row['val_window_balanced_accuracy']:.3f})"
        for row in candidates
        if row is not best
    )
    why = (
        f"{best['name']} has the best validation balanced accuracy: "
        f"{best['val_file_balanced_accuracy']:.3f} of files (windows "
        f"{best['val_window_balanced_accuracy']:.3f}) against {others}; ranked by files, then "
        "windows, a tie going to the cheaper model; the test split was not read"
    )
    return best, why


def default_model(
    *,
    dataset_dir: str | os.PathLike | None,
    out: str | os.PathLike,
    full_model: bool = False,
    resume: bool = False,
) -> tuple[str, str | None]:
    """The model ``guitarlab train`` trains when ``--model`` is not given, and why when it
    is not ``auto``.

    ``auto`` is the default: no one model is best on every protocol (MODEL.md: the features
    model wins on single notes and sessions, the spectrogram network on guitars never
    heard), so the default trains both and keeps what the validation split prefers. It
    needs a dataset folder with a validation split; arrays (``--npz``), ``--full-model``
    and a dataset without validation get the network, and ``--resume`` the run's own kind.
    """
    if resume:
        meta = read_run_meta(out)
        if (meta and meta.requested_model == "auto") or (Path(out) / CANDIDATES).is_dir():
            return "auto", None
        return (meta.model if meta else "") or "lstm-fcn", None
    if dataset_dir is None:
        return "lstm-fcn", None
    if full_model:
        return "lstm-fcn", None
    from guitarlab.datasets.folder import open_dataset

    why = missing_validation(open_dataset(dataset_dir), dataset_dir)
    if why:
        return AUTO_NETWORK_MODEL, f"{why}; this trains the spectrogram network alone"
    return "auto", None


def _copy(src: Path, dst: Path) -> None:
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def fit_auto(
    dataset_dir: str | os.PathLike,
    out: str | os.PathLike,
    config: TrainConfig,
    *,
    network: TrainConfig | None = None,
    only: str | None = None,
    dataset_factory=None,
) -> Run:
    """``--model auto``: train the features model and the spectrogram network (``network``,
    default :func:`network_candidate`), and keep whichever of them, or their average,
    has the best validation score (``only="average"``: keep the average, ``--model average``).

    The run folder holds the winner's model(s) and run.json (so every command uses it as a
    run of that kind) plus ``auto``: each candidate's validation and test scores, the
    choice and why. Each trained candidate's own run stays in ``candidates/<name>/``.
    The run folder's lock is held throughout: one writer per run folder.
    """
    from guitarlab.corpus.outputs import output_lock

    with output_lock(out, error=TrainError):
        return _fit_auto(
            dataset_dir, out, config, network=network, only=only, dataset_factory=dataset_factory
        )


def _fit_auto(dataset_dir, out, config, *, network, only, dataset_factory) -> Run:
    from guitarlab.datasets.folder import open_dataset
    from guitarlab.train.fit import fit_dataset

    out = Path(out)
    ds = (dataset_factory or open_dataset)(dataset_dir)
    why = missing_validation(ds, dataset_dir) if only is None else None
    if why:
        raise TrainError(why)
    if config.resume and (out / CANDIDATES).is_dir():
        out.mkdir(parents=True, exist_ok=True)  # each candidate resumes on its own
    else:
        prepare_out(
            out,
            TrainConfig.from_dict({**config.as_dict(), "resume": False}),
            dataset_dir=str(dataset_dir),
        )
    factory = dataset_factory or open_dataset
    network = network or network_candidate(config)
    folders = {
        FEATURES_CANDIDATE: out / CANDIDATES / FEATURES_CANDIDATE,
        NETWORK_CANDIDATE: out / CANDIDATES / NETWORK_CANDIDATE,
    }
    configs = {
        FEATURES_CANDIDATE: TrainConfig.from_dict(
            {**config.as_dict(), "model": "features", "resume": config.resume}
        ),
        NETWORK_CANDIDATE: TrainConfig.from_dict(
            {
                **network.as_dict(),
                "resume": config.resume and (folders[NETWORK_CANDIDATE] / RUN_JSON).exists(),
            }
        ),
    }
    rows, models = [], {}
    for name, folder in folders.items():
        meta = read_run_meta(folder)
        if config.resume and meta and meta.finished:
            print(f"[guitarlab] auto: {name} already trained in {folder}", flush=True)
            from guitarlab.train.rundir import load_run

            models[name] = load_run(folder).load_model()
        else:
            print(f"[guitarlab] auto: training the {name} candidate into {folder}", flush=True)
            models[name] = fit_dataset(
                dataset_dir, folder, configs[name], dataset_factory=factory
            ).model
    models[AVERAGE_CANDIDATE] = AveragedModel(
        [models[FEATURES_CANDIDATE], models[NETWORK_CANDIDATE]], n_classes=ds.n_classes
    )
    for name, model in models.items():
        val = split_scores(model, ds, "val") or {}  # none only with only=: nothing to choose
        rows.append(
            {
                "name": name,
                "run": str(folders[name]) if name in folders else None,
                "model": {FEATURES_CANDIDATE: "features", AVERAGE_CANDIDATE: "average"}.get(
                    name, network.model
                ),
                "val_file_balanced_accuracy": val.get("file_balanced_accuracy"),
                "val_window_balanced_accuracy": val.get("window_balanced_accuracy"),
                "val_files": val.get("files"),
            }
        )
    if only is None:
        best, why = choose(rows)
    else:
        best = next(row for row in rows if row["name"] == only)
        why = f"{only} was asked for (--model {best['model']})"
    print(f"[guitarlab] {'auto: ' if only is None else ''}{why}", flush=True)
    for row in rows:  # reported only, after the choice
        test = split_scores(models[row["name"]], ds, "test") or {}
        row["test_file_balanced_accuracy"] = test.get("file_balanced_accuracy")
        row["test_window_balanced_accuracy"] = test.get("window_balanced_accuracy")
        row["test_files"] = test.get("files")
        row["chosen"] = row is best
    keep = {
        FEATURES_CANDIDATE: [
            (FEATURES_CANDIDATE, FEATURES_MODEL),
            (FEATURES_CANDIDATE, FEATURES_JSON),
        ],
        NETWORK_CANDIDATE: [(NETWORK_CANDIDATE, MODEL_KERAS), (NETWORK_CANDIDATE, "history.csv")],
    }
    keep[AVERAGE_CANDIDATE] = keep[FEATURES_CANDIDATE] + keep[NETWORK_CANDIDATE]
    for candidate, name in keep[best["name"]]:
        if (folders[candidate] / name).is_file():
            _copy(folders[candidate] / name, out / name)
    if best["name"] == AVERAGE_CANDIDATE:  # the network's run.json, both models named
        info = load_run_meta(folders[NETWORK_CANDIDATE])
        info = replace(
            info,
            config={**info.config, "model": "average"},
            features=load_run_meta(folders[FEATURES_CANDIDATE]).features,
            metrics={
                "val_file_balanced_accuracy": best["val_file_balanced_accuracy"],
                "val_window_balanced_accuracy": best["val_window_balanced_accuracy"],
            },
        )
    else:
        info = load_run_meta(folders[best["name"]])
    info = replace(
        info,
        auto=AutoChoice(chosen=best["name"], why=why, candidates=rows),
        requested_model="auto" if only is None else only,
    )
    write_run_meta(out, info)
    return Run(
        run_dir=out,
        model=models[best["name"]],
        history=info.history,
        metrics=dict(info.metrics),
        info=info,
    )
