"""Train an LSTM-FCN into a run folder: from arrays (``fit``) or a dataset folder (``fit_dataset``).

A run folder holds everything needed to evaluate, predict, resume or fine-tune:

- ``model.keras``: the model to use (seed schedule: after the last epoch; paper schedule:
  the weights with the lowest training loss, as in the authors' code),
- ``best.keras`` (lowest validation loss, or training loss without validation),
  ``last.keras`` (last finished epoch, with optimizer state) and ``state.json``,
- ``run.json``: every option, the data source and its hash, guitarlab's version, label
  names, window, sample rate, the device, metrics and the history,
- ``history.csv`` (one row per epoch) and ``logs/`` (TensorBoard).

Schedules: ``"seed"`` = Adam ``lr`` for ``epochs`` then ``fine_tune_lr`` for
``fine_tune_epochs`` (the post recompiled, which resets Adam's moments; so do we);
``"paper"`` = Adam ``lr`` with ReduceLROnPlateau on the training loss (factor
``1/cbrt(2)``, patience 100, floor 1e-4), balanced class weights, batch 128.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from guitarlab.corpus.atomic import write_text_atomic
from guitarlab.corpus.defaults import SYNTH_RATE, VERSION
from guitarlab.corpus.errors import TrainError
from guitarlab.train import distributed

MODELS = ("lstm-fcn", "alstm-fcn", "ensemble")
INPUTS = ("wave", "spectrogram")
CLASS_WEIGHTS = ("auto", "balanced", "none")

CALIBRATION_WINDOWS = 1024  # training windows that set BatchNorm statistics
SCHEDULES = ("seed", "paper")
PRECISIONS = ("float32", "mixed_float16")
DISTRIBUTES = ("auto", "none", "mirrored", "multiworker")
RUN_JSON = "run.json"
STATE_JSON = "state.json"
PAPER_BATCH = 128
SEED_BATCH = 32


@dataclass
class TrainConfig:
    """Every training option; the defaults are the seed's (see seed/PROTOCOL.md).

    ``batch=None`` means 32 for the seed schedule and 128 for the paper's;
    ``class_weights``: ``"balanced"`` weighs each class by ``n / (k * count)``, ``"none"``
    not at all, ``"auto"`` balances when the training classes are unequal. ``input``:
    ``"wave"`` (the seed's LSTM-FCN on samples) or ``"spectrogram"`` (an MLSTM-FCN on
    log-mel frames computed in the model); ``model="ensemble"`` averages one of each.
    ``frame_length``/``hop_length``/``n_mels`` of None fit the window (see
    :func:`spectrogram_frames`). ``val_fraction`` is used only by :func:`fit` when no
    validation arrays are given (a random hold-out, as in the seed: fine for independent
    windows, leaky for renders of one take), and never by the paper schedule, which picks
    its checkpoint by training loss and so trains on every row.
    """

    model: str = "lstm-fcn"
    input: str = "wave"
    layout: str = "paper"
    cells: int = 8
    dropout: float = 0.8
    filters: tuple[int, ...] = (128, 256, 128)
    kernels: tuple[int, ...] = (8, 5, 3)
    epochs: int = 10
    fine_tune_epochs: int = 5
    lr: float = 1e-3
    fine_tune_lr: float = 1e-4
    batch: int | None = None
    schedule: str = "seed"
    precision: str = "float32"
    distribute: str = "auto"
    seed: int = 0
    resume: bool = False
    val_fraction: float = 0.2
    class_weights: str = "auto"
    frame_length: int | None = None
    hop_length: int | None = None
    n_mels: int | None = None
    verbose: int = 1

    def __post_init__(self) -> None:
        self.filters = tuple(int(f) for f in self.filters)
        self.kernels = tuple(int(k) for k in self.kernels)
        if self.class_weights is None or self.class_weights is True:
            self.class_weights = "auto" if self.class_weights is None else "balanced"
        elif self.class_weights is False:
            self.class_weights = "none"
        for name, value, known in (
            ("model", self.model, MODELS),
            ("input", self.input, INPUTS),
            ("class_weights", self.class_weights, CLASS_WEIGHTS),
            ("schedule", self.schedule, SCHEDULES),
            ("precision", self.precision, PRECISIONS),
            ("distribute", self.distribute, DISTRIBUTES),
            ("layout", self.layout, ("paper", "seed")),
        ):
            if value not in known:
                raise TrainError(f"{name} {value!r} is unknown; use one of: {', '.join(known)}")
        if self.epochs < 0 or self.fine_tune_epochs < 0 or self.total_epochs < 1:
            raise TrainError(
                f"epochs={self.epochs}, fine_tune_epochs={self.fine_tune_epochs}: train at least one epoch"
            )
        if self.batch is not None and self.batch < 1:
            raise TrainError(f"batch={self.batch} must be at least 1")
        if not 0.0 <= self.val_fraction < 1.0:
            raise TrainError(f"val_fraction={self.val_fraction} must be in [0, 1)")

    @property
    def batch_size(self) -> int:
        if self.batch is not None:
            return int(self.batch)
        return PAPER_BATCH if self.schedule == "paper" else SEED_BATCH

    @property
    def total_epochs(self) -> int:
        return self.epochs + (self.fine_tune_epochs if self.schedule == "seed" else 0)

    def class_weight(self, y: np.ndarray, n_classes: int) -> dict[int, float] | None:
        """Keras ``class_weight`` for training labels ``y``, or None (see ``class_weights``)."""
        counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=n_classes)
        if self.class_weights == "none" or (
            self.class_weights == "auto" and len(set(counts[counts > 0])) <= 1
        ):
            return None
        return balanced_class_weights(y, n_classes)

    def as_dict(self) -> dict:
        return {**asdict(self), "filters": list(self.filters), "kernels": list(self.kernels)}

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class Run:
    """What a finished training returns: the folder, the model in memory and its numbers."""

    run_dir: Path
    model: object
    history: dict[str, list[float]]
    metrics: dict[str, float]
    info: dict = field(default_factory=dict)


@dataclass
class RunInfo:
    """A run folder read back: what :func:`load_run` returns."""

    run_dir: Path
    config: TrainConfig
    label_names: list[str]
    model_path: Path
    dataset_dir: Path | None
    window: int
    sample_rate: int | None
    standardize: str
    standardization: dict | None
    meta: dict

    @property
    def n_classes(self) -> int:
        return len(self.label_names)

    def load_model(self, which: str = "model"):
        """Load ``model.keras`` (or ``best``/``last``) with guitarlab's custom layers."""
        import keras

        from guitarlab.train import models  # noqa: F401  (registers AttentionLSTM)

        path = self.run_dir / f"{which}.keras"
        if not path.is_file():
            raise TrainError(f"{path}: no such checkpoint; the run may not have finished")
        return keras.models.load_model(path, compile=False)


def keras_verbose(verbose: int) -> int:
    """Keras's progress bar (1) only on a terminal; one line per epoch (2) in a log file."""
    return 2 if verbose == 1 and not sys.stdout.isatty() else verbose


def load_run(run_dir: str | os.PathLike) -> RunInfo:
    """Read a run folder's ``run.json`` (raises TrainError when it is not a run)."""
    run_dir = Path(run_dir)
    path = run_dir / RUN_JSON
    if not path.is_file():
        raise TrainError(
            f"{run_dir}: not a run folder (no {RUN_JSON}); give the --out folder of 'guitarlab train'"
        )
    meta = json.loads(path.read_text())
    data = meta.get("data", {})
    dataset = data.get("dataset_dir")
    return RunInfo(
        run_dir=run_dir,
        config=TrainConfig.from_dict(meta["config"]),
        label_names=list(meta["label_names"]),
        model_path=run_dir / "model.keras",
        dataset_dir=Path(dataset) if dataset else None,
        window=int(meta["window"]),
        sample_rate=meta.get("sample_rate"),
        standardize=data.get("standardize", "none"),
        standardization=data.get("standardization"),
        meta=meta,
    )


# ----------------------------------------------------------------------------- devices


def describe_devices() -> str:
    """Which device TensorFlow trains on, in words: 'GPU:0 NVIDIA H100 ...' or 'CPU'."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "CPU (TensorFlow sees no GPU)"
    names = []
    for index, gpu in enumerate(gpus):
        details = tf.config.experimental.get_device_details(gpu)
        names.append(f"GPU:{index} {details.get('device_name', '')}".strip())
    return ", ".join(names)


def choose_strategy(distribute: str):
    """A ``tf.distribute`` strategy and a line that says what it spans.

    ``auto``: MultiWorkerMirrored when ``TF_CONFIG`` lists several workers (trained by
    :func:`guitarlab.train.distributed.fit_multiworker`, as Keras 3's fit fails there),
    Mirrored when there are several GPUs, else the default (one device). ``mirrored`` mirrors over all
    GPUs, or over the logical CPUs when there is no GPU (how the tests exercise it).

    MultiWorkerMirroredStrategy must exist before TensorFlow starts its runtime, so it is
    created first, before anything else touches TensorFlow in the process.
    """
    import tensorflow as tf

    if distribute == "auto" and distributed.cluster_workers() > 1:
        distribute = "multiworker"
    if distribute == "multiworker":
        if not os.environ.get("TF_CONFIG"):
            raise TrainError(
                "--distribute multiworker needs TF_CONFIG (cluster and task) in the environment of every worker"
            )
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        return strategy, f"MultiWorkerMirroredStrategy, {strategy.num_replicas_in_sync} replica(s)"
    gpus = tf.config.list_logical_devices("GPU")
    if distribute == "auto":
        distribute = "mirrored" if len(gpus) > 1 else "none"
    if distribute == "none":
        return tf.distribute.get_strategy(), f"one device: {describe_devices()}"
    devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
    strategy = tf.distribute.MirroredStrategy(devices=devices)
    return strategy, f"MirroredStrategy over {', '.join(devices)}"


def is_chief() -> bool:
    """Whether this process writes the run: the ``chief`` task, else worker 0 when the
    cluster has no chief (TensorFlow's convention); always without TF_CONFIG."""
    tf_config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = tf_config.get("task", {})
    if task.get("type", "chief") == "chief":
        return True
    has_chief = bool(tf_config.get("cluster", {}).get("chief"))
    return task.get("type") == "worker" and int(task.get("index", 0)) == 0 and not has_chief


# ----------------------------------------------------------------------------- callbacks


def _callback_base():
    import keras

    return keras.callbacks.Callback


class _Callbacks:
    """The run's own callbacks, built lazily so importing this module does not load TF."""

    @staticmethod
    def seed_schedule(epochs: int, lr: float, fine_tune_lr: float):
        class SeedSchedule(_callback_base()):
            """Adam at ``lr`` for ``epochs``, then ``fine_tune_lr`` with fresh moments."""

            def on_epoch_begin(self, epoch, logs=None):
                optimizer = self.model.optimizer
                inner = getattr(optimizer, "inner_optimizer", optimizer)
                if epoch == epochs and epoch > 0:
                    for variable in inner.variables:
                        if (
                            "iteration" not in variable.path
                            and "learning_rate" not in variable.path
                        ):
                            variable.assign(np.zeros(variable.shape, dtype=variable.dtype))
                rate = lr if epoch < epochs else fine_tune_lr
                inner.learning_rate.assign(rate)

        return SeedSchedule()

    @staticmethod
    def epoch_state(run_dir: Path, monitor: str, best_callback, config: TrainConfig):
        class EpochState(_callback_base()):
            """Save ``last.keras`` and ``state.json`` after every epoch, for ``--resume``."""

            def on_epoch_end(self, epoch, logs=None):
                self.model.save(run_dir / "last.keras")
                state = {
                    "epoch": int(epoch),
                    "config": config.as_dict(),
                    "monitor": monitor,
                    "best": float(best_callback.best),
                    "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                }
                write_text_atomic(run_dir / STATE_JSON, json.dumps(state))

        return EpochState()

    @staticmethod
    def batch_norm_statistics(windows: np.ndarray | None):
        class BatchNormStatistics(_callback_base()):
            """Exact BatchNorm statistics on training windows before every validation pass
            and every checkpoint (see :func:`~guitarlab.train.models.recalibrate_batch_norm`);
            put it first, so the checkpoints save the re-estimated statistics."""

            stale = False

            def on_train_batch_end(self, batch, logs=None):
                self.stale = True

            def _recalibrate(self):
                if self.stale and windows is not None and len(windows):
                    from guitarlab.train.models import recalibrate_batch_norm

                    recalibrate_batch_norm(self.model, windows)
                self.stale = False

            def on_test_begin(self, logs=None):
                self._recalibrate()

            def on_epoch_end(self, epoch, logs=None):
                self._recalibrate()

        return BatchNormStatistics()

    @staticmethod
    def nan_guard():
        class NanGuard(_callback_base()):
            """Stop at the first NaN/inf loss and remember where, so fit can say so."""

            nan_at: tuple[int, int] | None = None
            epoch = 0

            def on_epoch_begin(self, epoch, logs=None):
                self.epoch = epoch

            def on_train_batch_end(self, batch, logs=None):
                loss = (logs or {}).get("loss")
                if loss is not None and not math.isfinite(float(loss)):
                    self.nan_at = (self.epoch, batch)
                    self.model.stop_training = True

        return NanGuard()

    @staticmethod
    def tensorboard(log_dir: Path):
        """Keras's TensorBoard callback, or per-epoch scalars written with TF alone.

        The ``tensorboard`` package is needed to *view* logs; without it installed the
        event files are still written (by ``tf.summary.write``), so a later install sees them.
        """
        import importlib.util

        import keras

        if importlib.util.find_spec("tensorboard") is not None:
            return keras.callbacks.TensorBoard(log_dir=str(log_dir), write_graph=False)

        class EpochScalars(_callback_base()):
            def on_train_begin(self, logs=None):
                import tensorflow as tf

                self.writers = {
                    kind: tf.summary.create_file_writer(str(log_dir / kind))
                    for kind in ("train", "validation")
                }

            def on_epoch_end(self, epoch, logs=None):
                import tensorflow as tf
                from tensorflow.core.framework.summary_pb2 import SummaryMetadata

                meta = SummaryMetadata()
                meta.plugin_data.plugin_name = "scalars"
                for key, value in (logs or {}).items():
                    kind = "validation" if key.startswith("val_") else "train"
                    with self.writers[kind].as_default():
                        tf.summary.write(
                            f"epoch_{key.removeprefix('val_')}",
                            tf.constant(float(value)),
                            step=epoch,
                            metadata=meta,
                        )
                for writer in self.writers.values():
                    writer.flush()

        return EpochScalars()

    @staticmethod
    def eta_line(total_epochs: int, first_epoch: int, stream=None):
        class EtaLine(_callback_base()):
            """The run's overall progress: a line before each epoch's bar (elapsed, ETA)
            and one at the end; printed between Keras's bars, never inside one."""

            def on_train_begin(self, logs=None):
                self.start = time.perf_counter()

            def _say(self, text: str) -> None:
                print(f"[guitarlab] {text}", file=stream or sys.stdout, flush=True)

            def on_epoch_begin(self, epoch, logs=None):
                done = epoch - first_epoch
                elapsed = time.perf_counter() - self.start
                if done == 0:
                    self._say(f"epochs {epoch + 1}-{total_epochs} of {total_epochs} to go")
                    return
                left = (total_epochs - epoch) * elapsed / done
                self._say(
                    f"{epoch}/{total_epochs} epochs done; elapsed {_clock(elapsed)}, ETA {_clock(left)}"
                )

            def on_train_end(self, logs=None):
                elapsed = time.perf_counter() - self.start
                self._say(f"{total_epochs}/{total_epochs} epochs done in {_clock(elapsed)}")

        return EtaLine()


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


# ----------------------------------------------------------------------------- training core


def spectrogram_frames(window: int, config: TrainConfig) -> dict:
    """Frame, hop and mel bands for a window: 1024/256/64 when the window allows (23 ms
    frames at 44.1 kHz: two periods of the low E string), smaller for short series
    (at least 4 frames per window, at most one mel band per 4 FFT bins)."""
    frame = config.frame_length or min(1024, 2 ** int(math.log2(max(8, window // 4))))
    hop = config.hop_length or max(1, frame // 4)
    n_mels = config.n_mels or max(4, min(64, frame // 8))
    return {"frame_length": int(frame), "hop_length": int(hop), "n_mels": int(n_mels)}


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


def balanced_class_weights(y: np.ndarray, n_classes: int) -> dict[int, float]:
    """``n / (k * count_c)`` per class (sklearn's 'balanced'); classes absent get 1."""
    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=n_classes)
    total = counts.sum()
    return {c: (float(total / (n_classes * n)) if n else 1.0) for c, n in enumerate(counts)}


def _prepare_out(out: Path, config: TrainConfig) -> int:
    """Create the run folder; return the first epoch to train (0, or after the last saved).

    A run writes ``run.json`` with ``"status": "running"`` when it starts, ``state.json``
    and ``last.keras`` after every epoch, and the final ``run.json`` (with ``finished_at``)
    at the end. Resuming a run killed before its first epoch ended starts it again.
    """
    state_path = out / STATE_JSON
    if config.resume:
        if state_path.is_file() and (out / "last.keras").is_file():
            return int(json.loads(state_path.read_text())["epoch"]) + 1
        if (out / RUN_JSON).is_file():
            print(f"[guitarlab] {out}: no epoch was saved yet; starting at epoch 1", flush=True)
            return 0
        raise TrainError(
            f"{out}: nothing to resume (no {STATE_JSON}/last.keras); start without --resume"
        )
    if (out / RUN_JSON).exists() or state_path.exists():
        raise TrainError(
            f"{out} already holds a run; pass --resume to continue it or choose another --out"
        )
    out.mkdir(parents=True, exist_ok=True)
    return 0


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


def _resumed_config(out: Path, given: TrainConfig) -> TrainConfig:
    """The options a run was started with (from state.json), keeping only ``verbose`` new."""
    stored = json.loads((out / STATE_JSON).read_text()).get("config")
    if not stored:
        return given
    config = TrainConfig.from_dict({**stored, "resume": True, "verbose": given.verbose})
    if config != given:
        changed = [
            f.name for f in fields(TrainConfig) if getattr(config, f.name) != getattr(given, f.name)
        ]
        print(
            f"[guitarlab] resuming with the run's own options; ignored: {', '.join(changed)}",
            flush=True,
        )
    return config


def _train(
    *,
    out: Path,
    config: TrainConfig,
    window: int,
    channels: int,
    label_names: list[str],
    make_data: Callable[[bool, TrainConfig], tuple],
    y_train: np.ndarray,
    data_info: dict,
    initial_model=None,
    callbacks: list | None = None,
    calibration_windows: np.ndarray | None = None,
) -> Run:
    """The loop shared by fit and fit_dataset.

    ``make_data(even, config)`` returns ``(train, validation or None, extra fit kwargs)``;
    ``even`` asks for batches that split evenly over several replicas (drop the last
    partial one). A resumed run goes on with the options it was started with.
    """
    import keras

    n_classes = len(label_names)
    run_dir = out
    if not is_chief():
        # the standard multi-worker pattern: only the chief writes the run; another worker
        # writes its checkpoints (for --resume) to its own folder, removed when it finishes
        out = out / f"worker-{distributed.task_index()}"
    first_epoch = _prepare_out(out, config)
    if first_epoch > 0:
        config = _resumed_config(out, config)
    strategy, strategy_line = choose_strategy(config.distribute)  # first: see its docstring
    custom_loop = distributed.needs_custom_loop(strategy)
    if custom_loop:  # before the model: building it under the strategy is collective too
        distributed.same_on_every_worker(strategy, first_epoch + 1, "the epoch to start at")
    keras.utils.set_random_seed(config.seed + first_epoch)
    device = describe_devices()
    print(f"[guitarlab] training on {device}; {strategy_line}", flush=True)
    train_data, val_data, fit_kwargs = make_data(strategy.num_replicas_in_sync > 1, config)
    if strategy.num_replicas_in_sync > 1 and not custom_loop:
        # each replica normalizes its own slice of a batch: see distributed.mix_batches
        train_data = distributed.mix_batches(train_data, config.seed)
    sample_rate = data_info.pop("sample_rate", None)
    info = {
        "guitarlab_version": VERSION,
        "status": "running",
        "config": config.as_dict(),
        "label_names": list(label_names),
        "window": int(window),
        "channels": int(channels),
        "sample_rate": sample_rate,
        "data": data_info,
        "device": device,
        "strategy": strategy_line,
        "loop": "custom multi-worker loop" if custom_loop else "keras fit",
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    if first_epoch == 0:
        _write_json(out / RUN_JSON, info)

    with strategy.scope():
        if first_epoch > 0:
            from guitarlab.train import models  # noqa: F401  (custom layers)

            model = keras.models.load_model(out / "last.keras")
        else:
            if initial_model is not None:
                _check_initial_model(initial_model, window, channels, n_classes)
            model = initial_model or _build_model(config, window, channels, n_classes, sample_rate)
            _compile(model, config, n_classes)

    monitor = "val_loss" if val_data is not None and config.schedule == "seed" else "loss"
    best = keras.callbacks.ModelCheckpoint(
        str(out / "best.keras"), monitor=monitor, save_best_only=True, mode="min"
    )
    state_path = out / STATE_JSON
    if first_epoch > 0:
        best.best = float(json.loads(state_path.read_text()).get("best", np.inf))
    nan_guard = _Callbacks.nan_guard()
    schedule = (
        _Callbacks.seed_schedule(config.epochs, config.lr, config.fine_tune_lr)
        if config.schedule == "seed"
        else keras.callbacks.ReduceLROnPlateau(
            monitor="loss", factor=1.0 / np.cbrt(2.0), patience=100, min_lr=1e-4, mode="min"
        )
    )
    batch_norm = _Callbacks.batch_norm_statistics(calibration_windows)
    run_callbacks = [
        batch_norm,
        schedule,
        nan_guard,
        keras.callbacks.CSVLogger(str(out / "history.csv"), append=first_epoch > 0),
        _Callbacks.tensorboard(out / "logs"),
        best,
        _Callbacks.epoch_state(out, monitor, best, config),
        _Callbacks.eta_line(config.total_epochs, first_epoch),
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
            f"or check {data_info.get('dataset_dir') or 'the data'} for silent or clipped files"
        )
    if config.schedule == "paper" and (out / "best.keras").is_file():
        model.load_weights(out / "best.keras")  # best by training loss, as the paper's code
    if calibration_windows is not None and len(calibration_windows):
        from guitarlab.train.models import recalibrate_batch_norm

        recalibrate_batch_norm(model, calibration_windows)
    model.save(out / "model.keras")

    history = _read_history(out / "history.csv")
    metrics = {k: v[-1] for k, v in history.items() if k != "epoch" and v}
    info = {
        **info,
        "status": "finished",
        "class_weight": class_weight,
        "train_seconds_this_session": round(seconds, 3),
        "metrics": metrics,
        "history": history,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    _write_json(out / RUN_JSON, info)
    if out != run_dir:
        shutil.rmtree(out, ignore_errors=True)
        print(
            f"[guitarlab] worker {distributed.task_index()} done; the chief writes the run folder",
            flush=True,
        )
        with contextlib.suppress(OSError):
            run_dir.rmdir()  # only when empty: it made the folder, the chief wrote nothing there
    return Run(run_dir=run_dir, model=model, history=history, metrics=metrics, info=info)


def _read_history(path: Path) -> dict[str, list[float]]:
    import pandas as pd

    if not path.is_file():
        return {}
    frame = pd.read_csv(path)
    return {str(c): [float(v) for v in frame[c]] for c in frame.columns}


def _write_json(path: Path, data: dict) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, default=_json_default))


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def update_run_json(run_dir: str | os.PathLike, **updates) -> dict:
    """Merge ``updates`` into a run's ``run.json`` (e.g. test metrics); returns the new dict."""
    path = Path(run_dir) / RUN_JSON
    data = json.loads(path.read_text())
    for key, value in updates.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key].update(value)
        else:
            data[key] = value
    _write_json(path, data)
    return data


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
    data_info = {
        "source": source,
        "dataset_dir": None,
        "hash": _array_hash(X, y_codes),
        "standardize": "none",
        "n_train": int(len(X)),
        "n_val": int(len(X_val)) if X_val is not None else 0,
    }
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
        if is_chief():
            run.info = update_run_json(run.run_dir, metrics=test)
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


def dataset_standardization(meta: dict) -> tuple[str, dict | None]:
    """How a dataset standardized its windows: ("file" | "train" | "none", train stats or None).

    Reads ``meta["standardization"] = {"mode": ..., "mean": ..., "std": ...}`` (or an older
    ``meta["standardize"]`` string).
    """
    stats = meta.get("standardization")
    mode = (stats or {}).get("mode") if isinstance(stats, dict) else None
    mode = mode or meta.get("standardize") or "file"
    if mode == "train":
        if not isinstance(stats, dict) or "mean" not in stats or "std" not in stats:
            raise TrainError(
                "the dataset says standardize=train but stores no mean/std; rebuild it"
            )
        return mode, {"mean": float(stats["mean"]), "std": float(stats["std"])}
    return mode, None


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

    standardize, standardization = dataset_standardization(ds.meta)
    if ds.meta.get("leaky"):
        print(
            f"[guitarlab] note: {dataset_dir} validates on random windows (leaky across renders "
            "of a take); validation numbers will look better than the test split",
            flush=True,
        )
    data_info = {
        "source": "dataset",
        "dataset_dir": str(Path(dataset_dir).resolve()),
        "hash": ds.hash,
        "standardize": standardize,
        "standardization": standardization,
        "sample_rate": int(ds.sample_rate),
        "n_train": int(len(y_train)),
        "n_val": int(len(y_val) if y_val is not None else 0),
        "leaky": bool(ds.meta.get("leaky", False)),
        "dataset_meta": {
            k: v for k, v in ds.meta.items() if isinstance(v, str | int | float | bool)
        },
    }
    run = _train(
        out=Path(out),
        config=config,
        window=int(ds.window),
        channels=1,
        label_names=list(ds.label_names),
        make_data=make_data,
        y_train=y_train,
        data_info=data_info,
        initial_model=initial_model,
        callbacks=callbacks,
        calibration_windows=calibration_sample(ds.arrays("train")[0], config.seed),
    )
    if _split_or_none(ds, "test") is not None:
        X_test, y_test = ds.arrays("test")
        test = window_metrics(run.model, np.asarray(X_test), np.asarray(y_test), ds.n_classes)
        run.metrics.update(test)
        if is_chief():
            run.info = update_run_json(run.run_dir, metrics=test)
    return run
