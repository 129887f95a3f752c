"""``run.json`` as a typed record: what a run folder says about itself.

Training writes it through :func:`write_run_meta` (:meth:`RunMeta.to_dict`) and every
reader gets it back through :func:`load_run_meta` (:meth:`RunMeta.from_dict`), so a field
has one name and one type in the code rather than a string key in each module that reads
it (the pattern of ``datasets.meta.DatasetMeta`` for ``dataset.json``). Older files still
read: a field they lack takes its default, a key this guitarlab does not know is kept as it
was; a file without the fields a run cannot be used without (its options, label names and
window) says, in one line naming ``run.json`` and the field, to retrain.

Examples
--------
>>> meta = RunMeta.from_dict({"config": {"model": "features"}, "label_names": ["LP", "ST"],
...     "window": 8000, "data": {"dataset_dir": "ds", "standardize": "file"}})
>>> meta.model, meta.n_classes, meta.data.standardize, meta.finished
('features', 2, 'file', False)
>>> RunMeta.from_dict(meta.to_dict()) == meta
True
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from guitarlab.corpus.atomic import write_text_atomic
from guitarlab.corpus.errors import TrainError
from guitarlab.train.config import TrainConfig

RUN_JSON = "run.json"
# Without these a run cannot be loaded (its model's options, outputs and input length).
REQUIRED = ("config", "label_names", "window")
RETRAIN = "retrain or restore the run"


def _fill(cls, data: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of ``cls`` in ``data``, the rest in ``extra`` (kept as read)."""
    known = {f.name for f in fields(cls)} - {"extra"}
    return {
        **{key: value for key, value in data.items() if key in known},
        "extra": {key: value for key, value in data.items() if key not in known},
    }


def _plain(record, order: tuple[str, ...], optional: tuple[str, ...]) -> dict[str, Any]:
    """``record``'s fields in file order, an optional one left out while it is None."""
    out = {key: getattr(record, key) for key in order}
    for key in optional:
        if out[key] is None:
            del out[key]
    out.update(record.extra)
    return out


@dataclass(eq=True)
class RunData:
    """run.json's ``data``: where the training windows came from and how they were
    prepared (what predict needs to prepare a file the same way)."""

    source: str | None = None  # "dataset", "arrays" or "npz:<file>"
    dataset_dir: str | None = None  # absolute; None for arrays
    hash: str | None = None  # the dataset's manifest hash, or the arrays' own
    standardize: str = "none"  # "file", "train" or "none"
    standardization: dict[str, float] | None = None  # {"mean", "std"} for "train"
    n_train: int | None = None
    n_val: int | None = None
    leaky: bool | None = None  # validation on random windows (a dataset's ``leaky``)
    dataset_meta: dict[str, Any] | None = None  # the dataset's scalar fields, as built
    extra: dict[str, Any] = field(default_factory=dict)

    ORDER = (
        "source", "dataset_dir", "hash", "standardize", "standardization", "n_train",
        "n_val", "leaky", "dataset_meta",
    )  # fmt: skip
    OPTIONAL = ("standardization", "leaky", "dataset_meta")  # arrays runs have none

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written as run.json's ``data``."""
        return _plain(self, self.ORDER, self.OPTIONAL)

    @classmethod
    def from_dict(cls, data: Any, *, source: str = RUN_JSON) -> RunData:
        """The record from run.json's ``data`` (None in a file that lacks it: empty)."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise TrainError(f"{source}: invalid data (not a mapping); {RETRAIN}")
        return cls(**_fill(cls, data))


@dataclass(eq=True)
class AutoChoice:
    """run.json's ``auto``: the candidates ``--model auto`` trained, the one it kept and why."""

    chosen: str
    why: str = ""
    candidates: list[dict[str, Any]] = field(default_factory=list)  # one row per candidate
    extra: dict[str, Any] = field(default_factory=dict)

    ORDER = ("chosen", "why", "candidates")

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written as run.json's ``auto`` (and evaluation.json's)."""
        return _plain(self, self.ORDER, ())

    @classmethod
    def from_dict(cls, data: Any, *, source: str = RUN_JSON) -> AutoChoice | None:
        """The record from run.json's ``auto``, None when the run was not an auto run."""
        if data is None:
            return None
        if not isinstance(data, dict) or "chosen" not in data:
            raise TrainError(f"{source}: invalid auto (no chosen candidate); {RETRAIN}")
        return cls(**_fill(cls, data))


@dataclass(eq=True)
class RunMeta(Mapping):
    """Every field of ``run.json``, in the order the file lists them.

    A network run writes it with ``status="running"`` when it starts and again, finished,
    at the end; a features run once, finished; an auto run copies the chosen candidate's
    and adds ``auto`` and ``requested_model``; evaluate adds its test ``metrics``.
    """

    config: dict[str, Any]  # ``TrainConfig.as_dict()``, as recorded (see ``train_config``)
    label_names: list[str]
    window: int
    guitarlab_version: str | None = None
    status: str | None = None  # "running" or "finished"
    channels: int = 1
    sample_rate: int | None = None  # None for arrays: predict needs a dataset run
    data: RunData = field(default_factory=RunData)
    device: str | None = None
    strategy: str | None = None  # a network's distribution strategy
    loop: str | None = None  # "keras fit" or the custom multi-worker loop
    features: dict[str, Any] | None = None  # the features model's settings, versions, cv
    started_at: str | None = None
    class_weight: dict[Any, float] | None = None
    train_seconds_this_session: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    history: dict[str, list[float]] = field(default_factory=dict)  # one list per column
    finished_at: str | None = None
    auto: AutoChoice | None = None
    requested_model: str | None = None  # "auto" or "average" when ``--model`` asked for it
    extra: dict[str, Any] = field(default_factory=dict)  # keys this version does not know

    # The order run.json lists its keys in.
    ORDER = (
        "guitarlab_version", "status", "config", "label_names", "window", "channels",
        "sample_rate", "data", "device", "strategy", "loop", "features", "started_at",
        "class_weight", "train_seconds_this_session", "metrics", "history", "finished_at",
        "auto", "requested_model",
    )  # fmt: skip
    # Written only by the runs that have them (a network's, a finished one's, auto's).
    OPTIONAL = (
        "strategy", "loop", "features", "class_weight", "train_seconds_this_session",
        "finished_at", "auto", "requested_model",
    )  # fmt: skip

    @property
    def model(self) -> str:
        """The ``--model`` the run folder holds ("" when the file does not say)."""
        return str(self.config.get("model") or "")

    @property
    def train_config(self) -> TrainConfig:
        """The recorded options as a :class:`TrainConfig` (older runs: the wave model)."""
        return TrainConfig.from_dict(self.config)

    @property
    def n_classes(self) -> int:
        return len(self.label_names)

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def finished(self) -> bool:
        return self.status == "finished"

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written as ``run.json``."""
        out = _plain(self, self.ORDER, self.OPTIONAL)
        out["data"] = self.data.to_dict()
        if self.auto is not None:
            out["auto"] = self.auto.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Any, *, source: str = RUN_JSON, partial: bool = False) -> RunMeta:
        """The record from a parsed ``run.json``; ``source`` names it in errors.

        Raises a one-line :class:`TrainError` naming ``source`` and the field for a missing
        or invalid required field. ``partial=True`` reads what a run folder says so far
        (a missing required field is empty), for checks made before a run is loaded."""
        if not isinstance(data, dict):
            raise TrainError(f"{source}: corrupt (not a JSON object); {RETRAIN}")
        missing = [key for key in REQUIRED if key not in data]
        unfinished = " (the run has not finished)" if data.get("status") == "running" else ""
        if missing and not partial:
            raise TrainError(
                f"{source}: incomplete, no {', '.join(missing)}{unfinished}; {RETRAIN}"
            )
        values = {"config": {}, "label_names": [], "window": 0, **data}
        if not isinstance(values["config"], dict):
            raise TrainError(
                f"{source}: incomplete, its config is not a mapping{unfinished}; {RETRAIN}"
            )
        names = values["label_names"]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise TrainError(f"{source}: invalid label_names (not a list of names); {RETRAIN}")
        window, least = values["window"], 0 if partial else 1
        if isinstance(window, bool) or not isinstance(window, int) or window < least:
            raise TrainError(
                f"{source}: invalid window {window!r} (a positive whole number of samples); "
                f"{RETRAIN}"
            )
        values["data"] = RunData.from_dict(values.get("data"), source=source)
        values["auto"] = AutoChoice.from_dict(values.get("auto"), source=source)
        return cls(**_fill(cls, values))

    # Read-only mapping access (``meta["metrics"]``, ``dict(meta)``) to the JSON values, for
    # callers (scripts, notebooks) written against the dict run.json used to be. guitarlab's
    # own modules use the attributes.
    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _parse(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:  # cut short, not JSON, not text
        raise TrainError(f"{path}: corrupt ({exc}); {RETRAIN}") from None


def load_run_meta(run_dir: str | os.PathLike) -> RunMeta:
    """A run folder's ``run.json``, checked to be a usable run, as its typed record.

    One-line :class:`TrainError` when the folder has no run.json, or it is corrupt or lacks
    a field a run cannot be used without."""
    path = Path(run_dir) / RUN_JSON
    if not path.is_file():
        raise TrainError(
            f"{run_dir}: not a run folder (no {RUN_JSON}); give the --out folder of 'guitarlab train'"
        )
    return RunMeta.from_dict(_parse(path), source=str(path))


def read_run_meta(run_dir: str | os.PathLike) -> RunMeta | None:
    """What a run folder's ``run.json`` says so far, None when there is none.

    For the checks made before a run is loaded (which model file to look for, is it still
    running, resume which kind): a required field the file lacks is empty rather than an
    error. A file that is not JSON is still a one-line :class:`TrainError`."""
    path = Path(run_dir) / RUN_JSON
    if not path.is_file():
        return None
    return RunMeta.from_dict(_parse(path), source=str(path), partial=True)


def write_run_meta(run_dir: str | os.PathLike, meta: RunMeta) -> None:
    """Write ``meta`` as the run folder's ``run.json``, atomically (a reader, or a kill,
    sees the old file or the whole new one)."""
    text = json.dumps(meta.to_dict(), indent=2, default=_json_default)
    write_text_atomic(Path(run_dir) / RUN_JSON, text)


def update_run_meta(run_dir: str | os.PathLike, **updates: Any) -> RunMeta:
    """Merge ``updates`` into a run's ``run.json`` (e.g. test ``metrics``: a dict field is
    updated key by key, any other replaced); returns the new record."""
    meta = load_run_meta(run_dir)
    known = {f.name for f in fields(RunMeta)} - {"extra"}
    for key, value in updates.items():
        current = getattr(meta, key) if key in known else meta.extra.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            current.update(value)
        elif key in known:
            setattr(meta, key, value)
        else:
            meta.extra[key] = value
    write_run_meta(run_dir, meta)
    return meta
