"""Windows and standardization, and the one preprocessing path: pure numpy, no files.

``window`` cuts a signal into fixed-length frames like ``librosa.util.frame`` (a strided
view, no copy); ``standardize`` is the post's per-file z-score. ``prepare`` (mono,
resample, standardize) is how dataset build and prediction both turn a file into the
signal they cut windows from, so a model never sees a window prepared another way.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from guitarlab.corpus.audio import mono_at_rate
from guitarlab.corpus.errors import DatasetError

# Below this standard deviation a file is treated as silent and only mean-centred.
SILENT_STD = 1e-8


def n_windows(frames: int, *, length: int, hop: int | None = None) -> int:
    """How many whole windows of ``length`` samples, ``hop`` apart, fit in ``frames`` samples.

    Examples
    --------
    >>> n_windows(96_000, length=8_000)
    12
    >>> n_windows(10, length=4, hop=2)
    4
    """
    length, hop = _check_length_hop(length, hop)
    frames = int(frames)
    return 0 if frames < length else (frames - length) // hop + 1


def window_starts(frames: int, *, length: int, hop: int | None = None) -> np.ndarray:
    """Start samples (int64) of every whole window in ``frames`` samples, in time order."""
    length, hop = _check_length_hop(length, hop)
    return np.arange(n_windows(frames, length=length, hop=hop), dtype=np.int64) * hop


def window(audio: np.ndarray, *, length: int, hop: int | None = None) -> np.ndarray:
    """Cut a mono signal into windows: ``(n_windows, length)``, a read-only strided view.

    ``hop`` defaults to ``length`` (non-overlapping windows, the post's setup). The tail
    that does not fill a whole window is dropped.

    Examples
    --------
    >>> window(np.arange(10.0), length=4, hop=3)
    array([[0., 1., 2., 3.],
           [3., 4., 5., 6.],
           [6., 7., 8., 9.]])
    """
    length, hop = _check_length_hop(length, hop)
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise DatasetError(
            f"window() needs a mono signal of shape (frames,), got shape {audio.shape}; mix it down first"
        )
    if audio.shape[0] < length:
        raise DatasetError(
            f"a signal of {audio.shape[0]} samples is shorter than one window of {length}; use a shorter --window"
        )
    view = np.lib.stride_tricks.sliding_window_view(audio, length)
    return view[::hop]


def covered_spans(starts: np.ndarray, length: int) -> np.ndarray:
    """``(k, 2)`` sample spans ``[first, stop)`` that windows of ``length`` at sorted
    ``starts`` cover, windows that overlap or touch merged into one span.

    A dataset folder stores these spans of each file once, however much its windows overlap.

    Examples
    --------
    >>> covered_spans(np.array([0, 2, 4, 20]), 4).tolist()
    [[0, 8], [20, 24]]
    """
    starts = np.asarray(starts, dtype=np.int64)
    if starts.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    if np.any(np.diff(starts) < 0):
        raise DatasetError("window starts must be sorted to store their spans")
    breaks = np.flatnonzero(np.diff(starts) > length) + 1
    firsts = starts[np.concatenate([[0], breaks])]
    stops = starts[np.concatenate([breaks - 1, [starts.size - 1]])] + length
    return np.stack([firsts, stops], axis=1)


class WindowView:
    """``(N, length, 1)`` windows read from one audio array at ``starts``, copied on demand.

    Indexing gives what the same index of an ``(N, length, 1)`` array gives (an int: one
    window, a slice, mask or index array: a new array of those windows), so training,
    evaluation and export read a dataset split as if every window were stored whole,
    while overlapping windows share their samples on disk.

    Examples
    --------
    >>> x = WindowView(np.arange(10, dtype=np.float32), np.array([0, 3, 6]), 4)
    >>> x.shape, x[1, :, 0].tolist(), x[[0, 2]].shape
    ((3, 4, 1), [3.0, 4.0, 5.0, 6.0], (2, 4, 1))
    """

    ndim = 3

    def __init__(self, audio: np.ndarray, starts: np.ndarray, length: int) -> None:
        self.audio = audio
        self.starts = np.asarray(starts, dtype=np.int64)
        self.length = int(length)
        self.dtype = np.dtype(audio.dtype)
        self.shape = (int(self.starts.size), self.length, 1)
        if self.starts.size and (
            int(self.starts.min()) < 0 or int(self.starts.max()) + self.length > audio.shape[0]
        ):
            raise DatasetError(
                f"window starts reach past the {audio.shape[0]} stored samples; rebuild the dataset"
            )

    def __len__(self) -> int:
        return self.shape[0]

    def subset(self, index) -> WindowView:
        """The windows at ``index`` as another view: a sample of a split, still on disk."""
        return WindowView(self.audio, self.starts[index], self.length)

    def _windows(self, index) -> np.ndarray:
        starts = self.starts[index]
        if starts.ndim == 0:
            first = int(starts)
            return np.asarray(self.audio[first : first + self.length])[:, None]
        out = np.empty((starts.size, self.length, 1), dtype=self.dtype)
        for row, first in enumerate(starts.tolist()):
            out[row, :, 0] = self.audio[first : first + self.length]
        return out

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, tuple):
            windows = self._windows(key[0])
            return windows[(slice(None), *key[1:])] if windows.ndim == 3 else windows[key[1:]]
        return self._windows(key)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self._windows(slice(None))
        return out if dtype is None else out.astype(dtype, copy=False)

    def __iter__(self):
        return (self._windows(i) for i in range(len(self)))


# Windows quieter than this (RMS, dB re full scale, before any gain or standardization)
# hold no playing: the lead-in of a note file, the gap between phrases, digital silence.
SILENCE_FLOOR_DBFS = -60.0


def window_rms_dbfs(windows) -> np.ndarray:
    """RMS level of each window ``(N, L)``, ``(N, L, 1)`` or :class:`WindowView` in dBFS
    (silence: -inf -> -200).

    Summed in float64 a window at a time: no float64 copy of every window at once, and a
    ``WindowView`` is never stacked (10-20x faster on a take's windows).

    Examples
    --------
    >>> window_rms_dbfs(np.full((1, 4), 0.1)).round(1)
    array([-20.])
    """
    if isinstance(windows, WindowView):
        parts = (windows.audio[s : s + windows.length] for s in windows.starts.tolist())
        count, length = len(windows), windows.length
    else:
        flat = np.asarray(windows)
        flat = flat.reshape(len(flat), -1)
        parts, (count, length) = iter(flat), flat.shape
    power = np.zeros(count)
    for i, part in enumerate(parts):
        samples = np.asarray(part, dtype=np.float64)
        power[i] = np.dot(samples, samples)
    rms = np.sqrt(power / max(length, 1))
    return 20.0 * np.log10(np.maximum(rms, 1e-10))


def sounding(windows, *, floor_dbfs: float = SILENCE_FLOOR_DBFS) -> np.ndarray:
    """The energy gate: True for each window louder than ``floor_dbfs`` (something played).

    Examples
    --------
    >>> sounding(np.stack([np.zeros(4), np.full(4, 0.1)])).tolist()
    [False, True]
    """
    return window_rms_dbfs(windows) > float(floor_dbfs)


def _check_length_hop(length: int, hop: int | None) -> tuple[int, int]:
    length = int(length)
    hop = length if hop is None else int(hop)
    if length < 1:
        raise DatasetError(f"window length must be at least 1 sample, got {length}")
    if hop < 1:
        raise DatasetError(f"hop must be at least 1 sample, got {hop}")
    return length, hop


def mean_std(audio: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation of a signal (population std, like ``np.std``)."""
    audio = np.asarray(audio)
    if audio.size == 0:
        raise DatasetError("cannot standardize an empty signal")
    # float32 pairwise sums (numpy's reduction) are accurate to ~1e-7 * log2(n) here
    mean = float(audio.sum(dtype=np.float32)) / audio.size
    centred = audio - np.float32(mean)
    var = float(np.square(centred, out=centred).sum(dtype=np.float32)) / audio.size
    return mean, float(np.sqrt(max(var, 0.0)))


def standardize_in_place(audio: np.ndarray) -> bool:
    """Per-file z-score of a float32 array in place; True when it is silent (only centred).

    A float32 pairwise sum for the mean, then a BLAS dot product of the centred signal for
    the variance: no temporary copy, so a long file costs no second buffer.
    """
    if audio.size == 0:
        raise DatasetError("cannot standardize an empty signal")
    mean = float(audio.sum(dtype=np.float32)) / audio.size
    audio -= np.float32(mean)
    std = math.sqrt(max(float(np.dot(audio, audio)) / audio.size, 0.0))
    if std <= SILENT_STD:
        return True
    audio *= np.float32(1.0 / std)
    return False


def standardize(
    audio: np.ndarray, *, mean: float | None = None, std: float | None = None
) -> np.ndarray:
    """Subtract the mean and divide by the standard deviation, as a new float32 array.

    Without ``mean``/``std`` the signal's own statistics are used (the post's per-file
    standardization, :func:`standardize_in_place`); pass the training set's to standardize
    like a trained model expects. A silent signal (std below ``SILENT_STD``) is only
    mean-centred, never divided by ~0.

    Examples
    --------
    >>> x = standardize(np.array([1.0, 2.0, 3.0]))
    >>> round(float(x.mean()), 6), round(float(x.std()), 6)
    (0.0, 1.0)
    """
    audio = np.array(audio, dtype=np.float32)  # a copy: the caller's array is left alone
    if mean is None and std is None:
        standardize_in_place(audio)
        return audio
    if mean is None or std is None:
        own_mean, own_std = mean_std(audio)
        mean = own_mean if mean is None else mean
        std = own_std if std is None else std
    audio -= np.float32(mean)
    audio *= np.float32(1.0 / std if std > SILENT_STD else 1.0)
    return audio


STANDARDIZE_MODES = ("file", "train", "none")


class Prepared(NamedTuple):
    """What :func:`prepare` returns: the signal to window and what was done to it."""

    audio: np.ndarray
    notes: list[str]
    silent: bool


def standardize_as(
    audio: np.ndarray,
    mode: str,
    *,
    standardization: dict | None = None,
    offset: int = 0,
    in_place: bool = False,
) -> tuple[np.ndarray, bool]:
    """Standardize a mono signal the way a dataset says: ``(audio, silent)``.

    ``mode`` ``"file"``: its own z-score over ``audio[offset:]`` (the windowed part, after
    a skipped silent lead-in); ``"train"``: the training set's ``standardization``
    (``{"mean": ..., "std": ...}``); ``"none"``: as is. ``in_place`` reuses the buffer.
    """
    if mode not in STANDARDIZE_MODES:
        raise DatasetError(
            f"unknown standardize {mode!r}; use one of {', '.join(STANDARDIZE_MODES)}"
        )
    audio = np.asarray(audio, dtype=np.float32) if in_place else np.array(audio, dtype=np.float32)
    if mode == "file":
        return audio, standardize_in_place(audio[int(offset) :])
    if mode == "train":
        stats = standardization or {}
        if "mean" not in stats or "std" not in stats:
            raise DatasetError("standardize=train needs the training set's mean and std")
        mean, std = float(stats["mean"]), float(stats["std"])
        audio -= np.float32(mean)
        audio *= np.float32(1.0 / std if std > SILENT_STD else 1.0)
    return audio, False


def prepare(
    audio: np.ndarray,
    sample_rate: int,
    *,
    target_rate: int,
    standardize: str = "file",
    standardization: dict | None = None,
    gain_db: float | None = None,
    offset: int = 0,
) -> Prepared:
    """The one preprocessing path: mono, resample, standardize; then cut with :func:`window`.

    Dataset build and prediction both go through these two steps
    (:func:`~guitarlab.corpus.audio.mono_at_rate`, then :func:`standardize_as`), so a
    window predicted from a WAV equals the same window read from the dataset folder.

    Examples
    --------
    >>> out = prepare(np.ones((8, 2)) * [1, 3], 8000, target_rate=8000)
    >>> out.audio.tolist(), out.notes, out.silent
    ([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], ['2 channels mixed to mono'], True)
    """
    mono, notes = mono_at_rate(audio, sample_rate, target_rate=target_rate, gain_db=gain_db)
    prepared, silent = standardize_as(
        mono, standardize, standardization=standardization, offset=offset, in_place=True
    )
    return Prepared(prepared, notes, silent)


def to_mono(audio: np.ndarray) -> np.ndarray:
    """Average the channels of ``(frames, channels)`` audio; mono input is returned as is."""
    audio = np.asarray(audio)
    if audio.ndim == 1:
        return audio
    if audio.ndim != 2:
        raise DatasetError(f"audio must be (frames,) or (frames, channels), got {audio.shape}")
    if audio.shape[1] == 1:
        return audio[:, 0]
    return audio.mean(axis=1, dtype=np.float32)


# Onset detection: a frame is "sound" when its RMS comes within this many dB of the
# loudest frame of the file (relative, so it works at any recording level).
ONSET_THRESHOLD_DB = -30.0
ONSET_FRAME_MS = 5.0


def first_sound_sample(
    audio: np.ndarray,
    sample_rate: int,
    *,
    threshold_db: float = ONSET_THRESHOLD_DB,
    frame_ms: float = ONSET_FRAME_MS,
) -> int:
    """Sample index where a signal's first sound starts: the silent lead-in's length.

    The signal is cut into ``frame_ms`` frames; the first frame whose RMS is within
    ``threshold_db`` of the loudest frame's RMS is the onset, and its first sample is
    returned (so the onset is on the frame grid, never after the sound starts). A silent
    (or empty) signal returns 0, so nothing is ever trimmed from it.

    Parameters
    ----------
    audio : np.ndarray, shape (frames,) or (frames, channels)
        The signal; channels are averaged.
    sample_rate : int
        Samples per second of ``audio``.
    threshold_db : float
        How far below the loudest frame (a negative number of dB) still counts as sound.
    frame_ms : float
        Frame length in milliseconds: the onset's resolution.

    Examples
    --------
    >>> x = np.concatenate([np.zeros(4400), 0.5 * np.ones(4400)])
    >>> first_sound_sample(x, 44100)
    4400
    >>> first_sound_sample(np.zeros(100), 44100)
    0
    """
    if int(sample_rate) < 1:
        raise DatasetError(f"sample_rate must be a positive number of Hz, got {sample_rate}")
    if not float(threshold_db) < 0:
        raise DatasetError(
            f"threshold_db must be negative (dB below the loudest frame), got {threshold_db}"
        )
    mono = np.asarray(to_mono(np.asarray(audio)), dtype=np.float64)
    frame = max(1, int(round(float(frame_ms) * int(sample_rate) / 1000.0)))
    n = mono.shape[0] // frame
    if n == 0:
        return 0
    energy = np.square(mono[: n * frame]).reshape(n, frame).mean(axis=1)
    loudest = float(energy.max())
    if loudest <= SILENT_STD**2:
        return 0
    sound = np.flatnonzero(energy >= loudest * 10.0 ** (float(threshold_db) / 10.0))
    return int(sound[0]) * frame
