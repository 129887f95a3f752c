"""Every training option in one dataclass, with the laptop's defaults, and the names it accepts.

The defaults (:class:`TrainConfig`) are the laptop model: the MLSTM-FCN on log-mel frames
at 16/32/16 filters, 12 + 3 epochs, the best model in MODEL.md and minutes on two cores.
:data:`FULL_MODEL` is the post's own GPU-sized wave LSTM-FCN (``--full-model``).

Schedules: ``"post"`` (the 2019 post's) = Adam ``lr`` for ``epochs`` then ``fine_tune_lr`` for
``fine_tune_epochs`` (the post recompiled, which resets Adam's moments; so do we);
``"paper"`` = Adam ``lr`` with ReduceLROnPlateau on the training loss (factor
``1/cbrt(2)``, patience 100, floor 1e-4), balanced class weights, batch 128.

Light to import (numpy loads inside the two functions that count labels): the command
line takes its option defaults and choices from here at start-up.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

from guitarlab.corpus.defaults import POST, post_alias
from guitarlab.corpus.errors import TrainError

if TYPE_CHECKING:
    import numpy as np

# "features": log-mel statistics into a cross-validated scikit-learn classifier
# (train.features); "average": it and the spectrogram network, probabilities averaged;
# "auto": whichever of the three the validation split prefers (train.auto)
MODELS = ("lstm-fcn", "alstm-fcn", "ensemble", "features", "average", "auto")
INPUTS = ("wave", "spectrogram")
MEL_NORMS = ("loudness", "band")  # see train.models.LogMelFrames
CLASS_WEIGHTS = ("auto", "balanced", "none")
LAYOUTS = ("paper", POST)  # how the LSTM reads the window: see train.models

CALIBRATION_WINDOWS = 1024  # training windows that set BatchNorm statistics
SCHEDULES = (POST, "paper")
PRECISIONS = ("float32", "mixed_float16")
DISTRIBUTES = ("auto", "none", "mirrored", "multiworker")
PAPER_BATCH = 128
POST_BATCH = 32
# The post's LSTM-FCN on the window's samples at full size, 10 + 5 epochs: what a GPU runs
# to reproduce the post (``train --full-model``, ``demo --full-model``). On a 9-take corpus
# on two cores one epoch took about 8 minutes and 5 GB (BENCHMARKS.md, memory).
FULL_MODEL = {
    "input": "wave",
    "filters": (128, 256, 128),
    "kernels": (8, 5, 3),
    "cells": 8,
    "epochs": 10,
    "fine_tune_epochs": 5,
}


@dataclass
class TrainConfig:
    """Every training option; the defaults are the laptop model (the post's schedule and
    LSTM-FCN design, on log-mel frames at 16/32/16 filters; :data:`FULL_MODEL` is the post's
    own size and input: the wave LSTM-FCN at 128/256/128 filters, 10 + 5 epochs).

    ``batch=None`` means 32 for the post schedule and 128 for the paper's;
    ``class_weights``: ``"balanced"`` weighs each class by ``n / (k * count)``, ``"none"``
    not at all, ``"auto"`` balances when the training classes are unequal. ``input``:
    ``"wave"`` (the post's LSTM-FCN on samples) or ``"spectrogram"`` (an MLSTM-FCN on
    log-mel frames computed in the model); ``model="ensemble"`` averages one of each.
    ``frame_length``/``hop_length``/``n_mels`` of None fit the window (see
    :func:`spectrogram_frames`); ``mel_norm`` says what the spectrogram keeps (``"loudness"``
    removes only gain, ``"band"`` every fixed filter: see ``LogMelFrames``);
    ``spectral_stats`` adds the branch that reads how the mel bands move together
    (``SpectralStats``). ``val_fraction`` is used only by :func:`fit` when no validation
    arrays are given (a random hold-out, as in the post: fine for independent windows, leaky
    for renders of one take), and never by the paper schedule, which picks its checkpoint
    by training loss and so trains on every row.
    """

    model: str = "lstm-fcn"
    input: str = "spectrogram"
    layout: str = "paper"
    cells: int = 8
    dropout: float = 0.8
    filters: tuple[int, ...] = (16, 32, 16)
    kernels: tuple[int, ...] = (8, 5, 3)
    epochs: int = 12
    fine_tune_epochs: int = 3
    lr: float = 1e-3
    fine_tune_lr: float = 1e-4
    batch: int | None = None
    schedule: str = POST
    precision: str = "float32"
    distribute: str = "auto"
    seed: int = 0
    resume: bool = False
    val_fraction: float = 0.2
    class_weights: str = "auto"
    frame_length: int | None = None
    hop_length: int | None = None
    n_mels: int | None = None
    mel_norm: str = "loudness"
    spectral_stats: bool = False
    verbose: int = 1

    def __post_init__(self) -> None:
        self.filters = tuple(int(f) for f in self.filters)
        self.kernels = tuple(int(k) for k in self.kernels)
        if self.class_weights is None or self.class_weights is True:
            self.class_weights = "auto" if self.class_weights is None else "balanced"
        elif self.class_weights is False:
            self.class_weights = "none"
        self.schedule, self.layout = post_alias(self.schedule), post_alias(self.layout)
        for name, value, known in (
            ("model", self.model, MODELS),
            ("input", self.input, INPUTS),
            ("mel_norm", self.mel_norm, MEL_NORMS),
            ("class_weights", self.class_weights, CLASS_WEIGHTS),
            ("schedule", self.schedule, SCHEDULES),
            ("precision", self.precision, PRECISIONS),
            ("distribute", self.distribute, DISTRIBUTES),
            ("layout", self.layout, LAYOUTS),
        ):
            if value not in known:
                raise TrainError(f"{name} {value!r} is unknown; use one of: {', '.join(known)}")
        if self.epochs < 0 or self.fine_tune_epochs < 0 or self.total_epochs < 1:
            raise TrainError(
                f"epochs={self.epochs}, fine_tune_epochs={self.fine_tune_epochs}: train at least one epoch"
            )
        if self.spectral_stats and self.input != "spectrogram" and self.model != "ensemble":
            raise TrainError(
                "spectral_stats reads log-mel frames; use it with input 'spectrogram' (or the ensemble)"
            )
        if self.batch is not None and self.batch < 1:
            raise TrainError(f"batch={self.batch} must be at least 1")
        self._check_numbers()
        if not 0.0 <= self.val_fraction < 1.0:
            raise TrainError(f"val_fraction={self.val_fraction} must be in [0, 1)")

    def _check_numbers(self) -> None:
        """Refuse sizes and rates the model cannot be built or trained with, in one line
        naming the option (Keras would stop later with a traceback, or train on NaN)."""
        for name, rate in (("lr", self.lr), ("fine_tune_lr", self.fine_tune_lr)):
            if not (math.isfinite(rate) and 0 < rate <= 1):
                raise TrainError(f"{name}={rate}: use a learning rate above 0 and at most 1")
        if not 0 <= self.dropout < 1:  # nan fails too
            raise TrainError(f"dropout={self.dropout}: use 0 <= dropout < 1")
        counts = [("cells", self.cells)] + [("filters", f) for f in self.filters]
        counts += [("kernels", k) for k in self.kernels]
        counts += [(n, v) for n, v in (("n_mels", self.n_mels),) if v is not None]
        for name, value in counts:
            if value < 1:
                raise TrainError(f"{name}: {value} must be at least 1")
        if self.frame_length is not None and self.frame_length < 8:
            raise TrainError(f"frame_length={self.frame_length} must be at least 8 samples")
        if self.hop_length is not None and self.hop_length < 1:
            raise TrainError(f"hop_length={self.hop_length} must be at least 1 sample")

    @property
    def batch_size(self) -> int:
        if self.batch is not None:
            return int(self.batch)
        return PAPER_BATCH if self.schedule == "paper" else POST_BATCH

    @property
    def total_epochs(self) -> int:
        return self.epochs + (self.fine_tune_epochs if self.schedule == POST else 0)

    def class_weight(self, y: np.ndarray, n_classes: int) -> dict[int, float] | None:
        """Keras ``class_weight`` for training labels ``y``, or None (see ``class_weights``)."""
        import numpy as np

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
        if "input" not in data:  # a run.json from before the spectrogram input: the wave model
            data = {**data, "input": "wave"}
        return cls(**{k: v for k, v in data.items() if k in known})


# The laptop model, TrainConfig's own defaults named as one preset: the demo trains it and
# ``--model auto`` offers it as the network candidate (the MLSTM-FCN on log-mel frames, 8
# cells, 16/32/16 filters, 12 + 3 epochs: 16 of 16 on the post's split in about a minute on
# two cores, MODEL.md).
# Arrays (``train --npz``) are any time series, not necessarily audio at 44.1 kHz, so they
# get the post's own input, the series' samples (on sine-square the wave model gets 100 of
# 100 every seed, the spectrogram model 97-99: MODEL.md).
ARRAYS_INPUT = "wave"

LAPTOP_MODEL = {
    key: getattr(TrainConfig(), key)
    for key in ("input", "filters", "kernels", "cells", "epochs", "fine_tune_epochs")
}


# The spectrogram's largest frame and mel bands (see spectrogram_frames)
MAX_FRAME = 1024
MAX_MELS = 64


def train_config(*, full_model: bool = False, arrays: bool = False, **options: Any) -> TrainConfig:
    """The config a ``train`` command asks for: :class:`TrainConfig`'s defaults (the laptop
    model), or :data:`FULL_MODEL`'s shape with ``full_model``, then every option given
    (None: not given). Arrays (``arrays``) get :data:`ARRAYS_INPUT` unless ``input`` is given.

    Examples
    --------
    >>> train_config(full_model=True, epochs=2).filters
    (128, 256, 128)
    >>> train_config(arrays=True, filters=None).input
    'wave'
    """
    given = {key: value for key, value in options.items() if value is not None}
    shape = dict(FULL_MODEL) if full_model else {}
    if arrays and "input" not in given:
        shape["input"] = ARRAYS_INPUT
    return TrainConfig(**{**shape, **given})


def spectrogram_frames(window: int, config: TrainConfig) -> dict:
    """Frame, hop and mel bands for a window: 1024/256/64 when the window allows (23 ms
    frames at 44.1 kHz: two periods of the low E string), smaller for short series
    (at least 4 frames per window, at most one mel band per 4 FFT bins)."""
    frame = config.frame_length or min(MAX_FRAME, 2 ** int(math.log2(max(8, window // 4))))
    hop = config.hop_length or max(1, frame // 4)
    n_mels = config.n_mels or max(4, min(MAX_MELS, frame // 8))
    return {"frame_length": int(frame), "hop_length": int(hop), "n_mels": int(n_mels)}


def balanced_class_weights(y: np.ndarray, n_classes: int) -> dict[int, float]:
    """``n / (k * count_c)`` per class (sklearn's 'balanced'); classes absent get 1."""
    import numpy as np

    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=n_classes)
    total = counts.sum()
    return {c: (float(total / (n_classes * n)) if n else 1.0) for c, n in enumerate(counts)}
