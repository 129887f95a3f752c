"""Train an LSTM-FCN into a run folder: from arrays (``fit``) or a dataset folder (``fit_dataset``).

The training loop shared by both. The options are in :mod:`guitarlab.train.config`, the
run folder's files in :mod:`guitarlab.train.rundir`, the callbacks in
:mod:`guitarlab.train.callbacks`, devices and strategies in :mod:`guitarlab.train.distributed`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from guitarlab.corpus.defaults import POST, SYNTH_RATE, VERSION
from guitarlab.corpus.errors import TrainError
from guitarlab.corpus.outputs import output_lock
from guitarlab.datasets.meta import DatasetMeta
from guitarlab.train import distributed
from guitarlab.train.callbacks import Callbacks, keras_verbose
from guitarlab.train.config import CALIBRATION_WINDOWS, TrainConfig, spectrogram_frames
from guitarlab.train.rundir import (
    MODEL_KERAS,
    STATE_JSON,
    Run,
    prepare_out,
    read_history,
    resumed_config,
)
from guitarlab.train.runmeta import RunData, RunMeta, update_run_meta, write_run_meta


def _build_model(
    config: TrainConfig, window: int, channels: int, n_classes: int, sample_rate: int | None
):
    from guitarlab.train.models import ensemble, lstm_fcn, spectrogram_lstm_fcn

    common = {
        "channels": channels,
        "lstm_cells": config.cells,
        "dropout": config.dropout,
        "filters": config.filters,
        "kernels": config.kernels,
        "dtype_policy": "mixed_float16" if config.precision == "mixed_float16" else None,
    }

    def wave():
        return lstm_fcn(
            window,
            n_classes,
            layout=config.layout,
            attention=config.model == "alstm-fcn",
            **common,
        )

    def spectrogram():
        return spectrogram_lstm_fcn(
            window,
            n_classes,
            sample_rate=int(sample_rate or SYNTH_RATE),
            **spectrogram_frames(window, config),
            mel_norm=config.mel_norm,
            spectral_stats=config.spectral_stats,
            **common,
        )

    if config.model == "ensemble":
        return ensemble([wave(), spectrogram()])
    return spectrogram() if config.input == "spectrogram" else wave()


def _compile(model, config: TrainConfig, n_classes: int) -> None:
    import keras

    optimizer = keras.optimizers.Adam(learning_rate=config.lr)
    if config.precision == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    if n_classes == 2:
        loss = "binary_crossentropy"
        accuracy = keras.metrics.BinaryAccuracy(name="accuracy")
    else:
        loss = "sparse_categorical_crossentropy"
        accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    model.compile(optimizer=optimizer, loss=loss, metrics=[accuracy])


def _check_initial_model(model, window: int, channels: int, n_classes: int) -> None:
    """Refuse a model that cannot be fine-tuned on these windows and labels, in one line."""
    units = 1 if n_classes == 2 else n_classes
    if tuple(model.input_shape[1:]) != (window, channels):
        raise TrainError(
            f"the initial model reads windows of shape {tuple(model.input_shape[1:])} but the data "
            f"has ({window}, {channels}); rebuild the dataset with --window {model.input_shape[1]}"
        )
    if model.output_shape[-1] != units:
        raise TrainError(
            f"the initial model has {model.output_shape[-1]} output unit(s) but {n_classes} labels "
            f"need {units}; widen it first with guitarlab.train.models.widen_output(model, {n_classes})"
        )


def _train(*, out: Path, **kwargs) -> Run:
    """Train while holding the run folder's lock (see ``_train_locked`` for the loop).

    Why: a second ``train`` or a ``train --resume`` on a run another process is writing
    read its half-saved checkpoints; now it is refused in one line. Another worker of a
    multi-worker run writes only its own folder and takes no lock.
    """
    if not distributed.is_chief():
        return _train_locked(out=out, **kwargs)
    with output_lock(out, error=TrainError):
        return _train_locked(out=out, **kwargs)


def _train_locked(
    *,
    out: Path,
    config: TrainConfig,
    window: int,
    channels: int,
    label_names: list[str],
    make_data: Callable[[bool, TrainConfig], tuple],
    y_train: np.ndarray,
    data_info: RunData,
    sample_rate: int | None = None,
    initial_model=None,
    callbacks: list | None = None,
    calibration_windows: np.ndarray | None = None,
) -> Run:
    """The loop shared by fit and fit_dataset.

    ``make_data(even, config)`` returns ``(train, validation or None, extra fit kwargs)``;
    ``even`` asks for batches that split evenly over several replicas (drop the last
    partial one). A resumed run goes on with the options it was started with.
    """
    from guitarlab.train.startup import import_tensorflow

    import_tensorflow()
    import keras

    n_classes = len(label_names)
    run_dir = out
    if not distributed.is_chief():
        # the standard multi-worker pattern: only the chief writes the run; another worker
        # writes its checkpoints (for --resume) to its own folder, removed when it finishes
        out = out / f"worker-{distributed.task_index()}"
    first_epoch = prepare_out(out, config, dataset_dir=data_info.dataset_dir)
    if first_epoch > 0:
        config = resumed_config(out, config)
    strategy, strategy_line = distributed.choose_strategy(
        config.distribute
    )  # first: see its docstring
    custom_loop = distributed.needs_custom_loop(strategy)
    if custom_loop:  # before the model: building it under the strategy is collective too
        distributed.same_on_every_worker(strategy, first_epoch + 1, "the epoch to start at")
    keras.utils.set_random_seed(config.seed + first_epoch)
    device = distributed.describe_devices()
    print(f"[guitarlab] training on {device}; {strategy_line}", flush=True)
    train_data, val_data, fit_kwargs = make_data(strategy.num_replicas_in_sync > 1, config)
    if strategy.num_replicas_in_sync > 1 and not custom_loop:
        # each replica normalizes its own slice of a batch: see distributed.mix_batches
        train_data = distributed.mix_batches(train_data, config.seed)
    info = RunMeta(
        guitarlab_version=VERSION,
        status="running",
        config=config.as_dict(),
        label_names=list(label_names),
        window=int(window),
        channels=int(channels),
        sample_rate=sample_rate,
        data=data_info,
        device=device,
        strategy=strategy_line,
        loop="custom multi-worker loop" if custom_loop else "keras fit",
        started_at=time.strftime("%Y-%m-%dT%H:%M:%S"),
    )
    if first_epoch == 0:
        write_run_meta(out, info)

    with strategy.scope():
        if first_epoch > 0:
            model = _resumed_model(out)
        else:
            if initial_model is not None:
                _check_initial_model(initial_model, window, channels, n_classes)
            model = initial_model or _build_model(config, window, channels, n_classes, sample_rate)
            _compile(model, config, n_classes)
    nan_guard = Callbacks.nan_guard()
    run_callbacks = [
        *_run_callbacks(out, config, first_epoch, val_data, nan_guard, calibration_windows),
        *(callbacks or []),
    ]
    class_weight = config.class_weight(y_train, n_classes)
    started = time.perf_counter()
    if first_epoch < config.total_epochs and custom_loop:
        # Keras 3's fit fails across several workers (keras-team/keras#20585)
        distributed.fit_multiworker(
            model,
            strategy,
            train_data,
            val_data,
            n_classes=n_classes,
            epochs=config.total_epochs,
            initial_epoch=first_epoch,
            callbacks=run_callbacks,
            class_weight=class_weight,
            verbose=keras_verbose(config.verbose),
            seed=config.seed,
        )
    elif first_epoch < config.total_epochs:
        model.fit(
            train_data,
            validation_data=val_data,
            epochs=config.total_epochs,
            initial_epoch=first_epoch,
            class_weight=class_weight,
            callbacks=run_callbacks,
            verbose=keras_verbose(config.verbose),
            **(fit_kwargs or {}),
        )
    seconds = time.perf_counter() - started
    if nan_guard.nan_at is not None:
        epoch, batch = nan_guard.nan_at
        raise TrainError(
            f"the loss became NaN at epoch {epoch + 1}, batch {batch}; lower --lr, use --precision float32, "
            f"or check {data_info.dataset_dir or 'the data'} for silent or clipped files"
        )
    _save_final_model(model, out, config, calibration_windows)

    history = read_history(out / "history.csv")
    metrics = {k: v[-1] for k, v in history.items() if k != "epoch" and v}
    info = replace(
        info,
        status="finished",
        class_weight=class_weight,
        train_seconds_this_session=round(seconds, 3),
        metrics=metrics,
        history=history,
        finished_at=time.strftime("%Y-%m-%dT%H:%M:%S"),
    )
    write_run_meta(out, info)
    if out != run_dir:
        shutil.rmtree(out, ignore_errors=True)
        print(
            f"[guitarlab] worker {distributed.task_index()} done; the chief writes the run folder",
            flush=True,
        )
        with contextlib.suppress(OSError):
            run_dir.rmdir()  # only when empty: it made the folder, the chief wrote nothing there
    return Run(run_dir=run_dir, model=model, history=history, metrics=metrics, info=info)


def _resumed_model(out: Path):
    """The model a resumed run stopped with (``last.keras``, with the custom layers)."""
    import keras

    from guitarlab.train import models  # noqa: F401  (custom layers)

    return keras.models.load_model(out / "last.keras")


def _run_callbacks(
    out: Path,
    config: TrainConfig,
    first_epoch: int,
    val_data,
    nan_guard,
    calibration_windows: np.ndarray | None,
) -> list:
    """The run's own callbacks: the schedule, the NaN guard, history.csv, TensorBoard,
    ``best.keras`` (its best so far carried over on resume), the epoch state and the ETA."""
    import keras

    monitor = "val_loss" if val_data is not None and config.schedule == POST else "loss"
    best = keras.callbacks.ModelCheckpoint(
        str(out / "best.keras"), monitor=monitor, save_best_only=True, mode="min"
    )
    if first_epoch > 0:
        best.best = float(json.loads((out / STATE_JSON).read_text()).get("best", np.inf))
    schedule = (
        Callbacks.post_schedule(config.epochs, config.lr, config.fine_tune_lr)
        if config.schedule == POST
        else keras.callbacks.ReduceLROnPlateau(
            monitor="loss", factor=1.0 / np.cbrt(2.0), patience=100, min_lr=1e-4, mode="min"
        )
    )
    return [
        Callbacks.batch_norm_statistics(calibration_windows),
        schedule,
        nan_guard,
        keras.callbacks.CSVLogger(str(out / "history.csv"), append=first_epoch > 0),
        Callbacks.tensorboard(out / "logs"),
        best,
        Callbacks.epoch_state(out, monitor, best, config),
        Callbacks.eta_line(config.total_epochs, first_epoch),
    ]


def _save_final_model(
    model, out: Path, config: TrainConfig, calibration_windows: np.ndarray | None
) -> None:
    """``model.keras``: the paper schedule's best weights (by training loss, as the paper's
    code), batch-norm statistics recalibrated on ``calibration_windows`` when given."""
    if config.schedule == "paper" and (out / "best.keras").is_file():
        model.load_weights(out / "best.keras")
    if calibration_windows is not None and len(calibration_windows):
        from guitarlab.train.models import recalibrate_batch_norm

        recalibrate_batch_norm(model, calibration_windows)
    model.save(out / MODEL_KERAS)


# ----------------------------------------------------------------------------- public API


def as_windows(X: np.ndarray) -> np.ndarray:
    """Arrays as ``(N, L, C)`` float32: 2D ``(N, L)`` becomes ``(N, L, 1)``."""
    X = np.asarray(X, dtype=np.float32)
    if X.ndim == 2:
        X = X[:, :, None]
    if X.ndim != 3:
        raise TrainError(f"X has shape {X.shape}; give (N, L) or (N, L, C) windows")
    if not np.all(np.isfinite(X)):
        raise TrainError("X holds NaN or inf values; clean the data before training")
    return X


def encode_labels(
    y: np.ndarray, label_names: list[str] | None = None
) -> tuple[np.ndarray, list[str]]:
    """Labels as int64 indices into ``label_names`` (from the sorted unique values if None)."""
    y = np.asarray(y).reshape(-1)
    if label_names is None:
        values, codes = np.unique(y, return_inverse=True)
        names = [str(v.item() if hasattr(v, "item") else v) for v in values]
        return codes.astype(np.int64), names
    index = {name: i for i, name in enumerate(label_names)}
    try:
        codes = np.array([index[str(v.item() if hasattr(v, "item") else v)] for v in y])
    except KeyError as exc:
        raise TrainError(
            f"label {exc.args[0]!r} is not among the training labels {label_names}"
        ) from None
    return codes.astype(np.int64), list(label_names)


def fit(
    X: np.ndarray,
    y: np.ndarray,
    *,
    out: str | os.PathLike,
    config: TrainConfig | None = None,
    X_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    X_test: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    initial_model=None,
    callbacks: list | None = None,
    source: str = "arrays",
) -> Run:
    """Train on in-memory windows ``X`` (N, L[, C]) with labels ``y`` into run folder ``out``.

    Labels may be any values (UCR's 1/2, strings); they are mapped to the sorted unique
    values, stored as ``label_names``. Without ``X_val``, ``config.val_fraction`` of the
    windows is held out at random. ``X_test`` is evaluated once at the end into run.json.

    Examples
    --------
    >>> run = fit(X, y, out="runs/ucr", config=TrainConfig(epochs=3, fine_tune_epochs=0))  # doctest: +SKIP
    """
    config = config or TrainConfig()
    if config.model in ("features", "average", "auto"):
        raise TrainError(
            f"--model {config.model} reads a dataset folder (its takes make the "
            "cross-validation folds); give --dataset instead of arrays"
        )
    X = as_windows(X)
    y_codes, label_names = encode_labels(y)
    if len(y_codes) != len(X):
        raise TrainError(f"X has {len(X)} windows but y has {len(y_codes)} labels")
    if len(label_names) < 2:
        raise TrainError(f"y holds one label ({label_names}); a classifier needs at least two")
    if X_val is None and config.val_fraction > 0 and len(X) >= 10 and config.schedule != "paper":
        order = np.random.default_rng(config.seed).permutation(len(X))
        n_val = max(1, int(round(config.val_fraction * len(X))))
        X_val, y_val_codes = X[order[:n_val]], y_codes[order[:n_val]]
        X, y_codes = X[order[n_val:]], y_codes[order[n_val:]]
    elif X_val is not None:
        X_val = as_windows(X_val)
        y_val_codes, _ = encode_labels(y_val, label_names)
    val = (X_val, y_val_codes) if X_val is not None else None
    data_info = RunData(
        source=source,
        dataset_dir=None,
        hash=_array_hash(X, y_codes),
        standardize="none",
        n_train=int(len(X)),
        n_val=int(len(X_val)) if X_val is not None else 0,
    )
    run = _train(
        out=Path(out),
        config=config,
        window=X.shape[1],
        channels=X.shape[2],
        label_names=label_names,
        make_data=lambda even, cfg: _array_data(X, y_codes, val, cfg, even),
        y_train=y_codes,
        data_info=data_info,
        initial_model=initial_model,
        callbacks=callbacks,
        calibration_windows=calibration_sample(X, config.seed),
    )
    if X_test is not None:
        X_test = as_windows(X_test)
        y_test_codes, _ = encode_labels(y_test, label_names)
        test = window_metrics(run.model, X_test, y_test_codes, len(label_names))
        run.metrics.update(test)
        if distributed.is_chief():
            run.info = update_run_meta(run.run_dir, metrics=test)
    return run


def calibration_sample(windows: np.ndarray, seed: int) -> np.ndarray:
    """Up to CALIBRATION_WINDOWS training windows (random, read in file order) as (N, L, C)."""
    count = min(len(windows), CALIBRATION_WINDOWS)
    pick = np.sort(np.random.default_rng(seed).choice(len(windows), count, replace=False))
    return as_windows(np.asarray(windows[pick]))


def _array_data(X, y, val, config: TrainConfig, even: bool) -> tuple:
    """Arrays for model.fit; as a tf.data pipeline with whole batches when ``even``."""
    if not even:
        return X, val, {"y": y, "batch_size": config.batch_size, "shuffle": True}
    import tensorflow as tf

    def batches(x, labels, shuffle):
        data = tf.data.Dataset.from_tensor_slices((x, labels))
        if shuffle:
            data = data.shuffle(len(x), seed=config.seed, reshuffle_each_iteration=True)
        return data.batch(config.batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)

    val_data = (
        batches(*val, False) if val is not None and len(val[1]) >= config.batch_size else None
    )
    return batches(X, y, True), val_data, {"shuffle": False}


def window_metrics(model, X: np.ndarray, y: np.ndarray, n_classes: int) -> dict[str, float]:
    """Window-level test accuracy of ``model`` on ``X`` (N, L, C) with integer labels ``y``."""
    from guitarlab.train.models import probabilities

    probs = probabilities(model.predict(X, batch_size=256, verbose=0), n_classes)
    return {
        "test_window_accuracy": float(np.mean(probs.argmax(axis=1) == y)),
        "test_windows": int(len(y)),
    }


def _array_hash(X: np.ndarray, y: np.ndarray) -> str:
    import hashlib

    digest = hashlib.sha256()
    digest.update(str(X.shape).encode())
    digest.update(np.ascontiguousarray(X[:: max(1, len(X) // 256)]).tobytes())
    digest.update(np.ascontiguousarray(y).tobytes())
    return digest.hexdigest()[:16]


def _split_or_none(ds, split: str):
    from guitarlab.corpus.errors import DatasetError

    try:
        _, y = ds.arrays(split)
    except (DatasetError, KeyError, FileNotFoundError):
        return None
    return None if len(y) == 0 else y


def dataset_standardization(meta: DatasetMeta) -> tuple[str, dict | None]:
    """How a dataset standardized its windows: ("file" | "train" | "none", train stats or None).

    Reads ``meta.standardization = {"mode": ..., "mean": ..., "std": ...}`` (or an older
    ``standardize`` string).
    """
    stats = meta.standardization
    mode = (stats or {}).get("mode") if isinstance(stats, dict) else None
    mode = mode or meta.extra.get("standardize") or "file"
    if mode == "train":
        if not isinstance(stats, dict) or "mean" not in stats or "std" not in stats:
            raise TrainError(
                "the dataset says standardize=train but stores no mean/std; rebuild it"
            )
        return mode, {"mean": float(stats["mean"]), "std": float(stats["std"])}
    return mode, None


def dataset_info(ds, dataset_dir, y_train: np.ndarray, y_val: np.ndarray | None) -> RunData:
    """run.json's ``data``: where the windows came from and how they were prepared (what
    predict needs to prepare a file the same way); notes a leaky validation split."""
    standardize, standardization = dataset_standardization(ds.meta)
    if ds.meta.leaky:
        print(
            f"[guitarlab] note: {dataset_dir} validates on random windows (leaky across renders "
            "of a take); validation numbers will look better than the test split",
            flush=True,
        )
    return RunData(
        source="dataset",
        dataset_dir=str(Path(dataset_dir).resolve()),
        hash=ds.hash,
        standardize=standardize,
        standardization=standardization,
        n_train=int(len(y_train)),
        n_val=int(len(y_val) if y_val is not None else 0),
        leaky=bool(ds.meta.leaky),
        dataset_meta={
            k: v for k, v in ds.meta.to_dict().items() if isinstance(v, str | int | float | bool)
        },
    )


def fit_dataset(
    dataset_dir: str | os.PathLike,
    out: str | os.PathLike,
    config: TrainConfig | None = None,
    *,
    initial_model=None,
    callbacks: list | None = None,
    dataset_factory: Callable | None = None,
) -> Run:
    """Train on a dataset folder's train split (tf.data, prefetched), validating on its val split.

    ``initial_model`` fine-tunes an existing model (e.g. :func:`load_run(...).load_model()`,
    widened with :func:`~guitarlab.train.models.widen_output` for new labels).
    The test split's window accuracy goes into run.json; ``guitarlab evaluate`` does the rest.
    """
    from guitarlab.datasets.folder import open_dataset

    config = config or TrainConfig()
    if config.model in ("features", "average", "auto"):
        from guitarlab.train.auto import fit_auto, fit_features_dataset

        if config.model in ("average", "auto"):  # the network: auto.network_candidate
            return fit_auto(  # it holds the run folder's lock itself
                dataset_dir, out, config,
                only="average" if config.model == "average" else None,
                dataset_factory=dataset_factory,
            )  # fmt: skip
        with output_lock(out, error=TrainError):  # as _train: one writer per run folder
            if initial_model is not None:
                print("[guitarlab] the features model trains from scratch (seconds)", flush=True)
            return fit_features_dataset(dataset_dir, out, config, dataset_factory=dataset_factory)
    ds = (dataset_factory or open_dataset)(dataset_dir)
    y_train = np.asarray(ds.arrays("train")[1])
    if len(y_train) == 0:
        raise TrainError(f"{dataset_dir}: the train split is empty; rebuild the dataset")
    y_val = _split_or_none(ds, "val")

    def make_data(even: bool, config: TrainConfig) -> tuple:
        train = ds.tf_dataset(
            "train",
            batch_size=config.batch_size,
            shuffle=True,
            seed=config.seed,
            drop_remainder=even,
        )
        has_val = y_val is not None and (not even or len(y_val) >= config.batch_size)
        val = (
            ds.tf_dataset("val", batch_size=config.batch_size, shuffle=False, drop_remainder=even)
            if has_val
            else None
        )
        return train, val, {"shuffle": False}  # tf.data shuffles each epoch itself

    data_info = dataset_info(ds, dataset_dir, y_train, y_val)
    run = _train(
        out=Path(out),
        config=config,
        window=int(ds.window),
        channels=1,
        label_names=list(ds.label_names),
        make_data=make_data,
        y_train=y_train,
        data_info=data_info,
        sample_rate=int(ds.sample_rate),
        initial_model=initial_model,
        callbacks=callbacks,
        calibration_windows=calibration_sample(ds.arrays("train")[0], config.seed),
    )
    if _split_or_none(ds, "test") is not None:
        X_test, y_test = ds.arrays("test")
        test = window_metrics(run.model, np.asarray(X_test), np.asarray(y_test), ds.n_classes)
        run.metrics.update(test)
        if distributed.is_chief():
            run.info = update_run_meta(run.run_dir, metrics=test)
    return run
