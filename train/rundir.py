"""The run folder: what a training writes, and reading it back.

A run folder holds everything needed to evaluate, predict, resume or fine-tune:

- ``model.keras``: the model to use (post schedule: after the last epoch; paper schedule:
  the weights with the lowest training loss, as in the authors' code),
- ``best.keras`` (lowest validation loss, or training loss without validation),
  ``last.keras`` (last finished epoch, with optimizer state) and ``state.json``,
- ``run.json``: every option, the data source and its hash, guitarlab's version, label
  names, window, sample rate, the device, metrics and the history (the typed record
  :class:`~guitarlab.train.runmeta.RunMeta`),
- ``history.csv`` (one row per epoch) and ``logs/`` (TensorBoard).

A features-model run (``--model features``) holds ``model.joblib`` and ``features.json``
instead of the ``.keras`` files; ``--model average`` both; an ``auto`` run its chosen
model and ``candidates/<name>/`` runs; ``evaluate`` keeps the features model it fits
beside a network in ``baseline/``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from pathlib import Path

from guitarlab.corpus.errors import TrainError
from guitarlab.corpus.outputs import check_output, write_marker
from guitarlab.train.config import TrainConfig
from guitarlab.train.runmeta import RUN_JSON, RunMeta, load_run_meta

MODEL_KERAS = "model.keras"
MODEL_JOBLIB = "model.joblib"  # the features model (train.features)
STATE_JSON = "state.json"


def model_file(model: str) -> str:
    """The file a finished run of this ``--model`` keeps its model in."""
    return MODEL_JOBLIB if model == "features" else MODEL_KERAS


def check_model_file(path: str | os.PathLike) -> None:
    """Refuse a ``.keras`` file that is cut short or damaged, before TensorFlow loads.

    Why: Keras reports such a file as "File not found" for a file that exists. A ``.keras``
    file is a zip archive; this reads it once and checks every member's CRC (a few MB).
    """
    import zipfile

    path = Path(path)
    if path.suffix != ".keras" or not path.is_file():
        return
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise TrainError(
            f"{path}: corrupt, not a complete .keras archive ({exc}); retrain or restore the run"
        ) from None
    if bad is not None:
        raise TrainError(f"{path}: corrupt ({bad} fails its checksum); retrain or restore the run")


def _load_error(path: Path, exc: Exception) -> TrainError:
    """A model file that exists but does not load: corrupt, in one line."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return TrainError(
        f"{path}: corrupt, cannot load it ({type(exc).__name__}{': ' + text if text else ''}); "
        "retrain or restore the run"
    )


@dataclass
class Run:
    """What a finished training returns: the folder, the model in memory and its numbers."""

    run_dir: Path
    model: object
    history: dict[str, list[float]]
    metrics: dict[str, float]
    info: RunMeta | None = None  # the run.json written


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
    meta: RunMeta

    @property
    def n_classes(self) -> int:
        return len(self.label_names)

    @property
    def is_network(self) -> bool:
        """A Keras network (fine-tunable, widenable); False for the features model and
        for its average with a network."""
        return self.config.model not in ("features", "average")

    def load_model(self, which: str = "model"):
        """Load ``model.keras`` (or ``best``/``last``) with guitarlab's custom layers, or the
        features model (:class:`~guitarlab.train.features.FeaturesModel`, same ``predict``).

        Both answer ``predict(windows)`` and ``model(windows)`` with class outputs, so the
        callers (evaluate, predict, live, review, retrain) never ask which kind it is.
        """
        if self.config.model == "average":  # model.joblib and model.keras, averaged
            from dataclasses import replace

            from guitarlab.train.features import AveragedModel

            features = replace(self, config=replace(self.config, model="features"))
            network = replace(self, config=replace(self.config, model="lstm-fcn"))
            members = [features.load_model(), network.load_model(which)]
            return AveragedModel(members, n_classes=self.n_classes)
        if not self.is_network:
            from guitarlab.train.features import FEATURES_JSON, FeaturesModel

            try:
                return FeaturesModel.load(self.run_dir)
            except TrainError:
                raise
            except Exception as exc:  # a damaged pickle raises whatever it meets
                bad = FEATURES_JSON if isinstance(exc, json.JSONDecodeError) else MODEL_JOBLIB
                raise _load_error(self.run_dir / bad, exc) from None
        from guitarlab.train import models  # noqa: F401, I001  (quiet TF import, custom layers)

        import keras

        path = self.run_dir / f"{which}.keras"
        if not path.is_file():
            raise TrainError(f"{path}: no such checkpoint; the run may not have finished")
        check_model_file(path)
        try:
            return keras.models.load_model(path, compile=False)
        except Exception as exc:  # an intact zip with a damaged config or weights inside
            raise _load_error(path, exc) from None


def load_run(run_dir: str | os.PathLike) -> RunInfo:
    """Read a run folder's ``run.json`` (raises TrainError when it is not a run)."""
    run_dir = Path(run_dir)
    meta = load_run_meta(run_dir)
    config = meta.train_config
    dataset = meta.data.dataset_dir
    return RunInfo(
        run_dir=run_dir,
        config=config,
        label_names=list(meta.label_names),
        model_path=run_dir / model_file(config.model),
        dataset_dir=Path(dataset) if dataset else None,
        window=meta.window,
        sample_rate=meta.sample_rate,
        standardize=meta.data.standardize,
        standardization=meta.data.standardization,
        meta=meta,
    )


def prepare_out(out: Path, config: TrainConfig, *, dataset_dir: str | None = None) -> int:
    """Create the run folder; return the first epoch to train (0, or after the last saved).

    A run writes ``run.json`` with ``"status": "running"`` when it starts, ``state.json``
    and ``last.keras`` after every epoch, and the final ``run.json`` (with ``finished_at``)
    at the end. Resuming a run killed before its first epoch ended starts it again.
    The folder must be new, empty or a run (marker or ``run.json``), and never the dataset
    ``dataset_dir`` it reads or a folder in or around it, nor inside a corpus: training
    never writes its files among someone else's.
    """
    check_output(
        out,
        purpose="run",
        inputs={"dataset": dataset_dir},
        overwrite=None,
        legacy=RUN_JSON,
        error=TrainError,
        ignore=("worker-*",),
    )
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
    write_marker(out, "run")
    return 0


def resumed_config(out: Path, given: TrainConfig) -> TrainConfig:
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


def read_history(path: Path) -> dict[str, list[float]]:
    import pandas as pd

    if not path.is_file():
        return {}
    frame = pd.read_csv(path)
    return {str(c): [float(v) for v in frame[c]] for c in frame.columns}
