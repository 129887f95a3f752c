"""Baselines a classifier has to beat, on the same windows: one feature, one threshold.

A model of the pickup should beat the best spectral-centroid threshold (brightness alone);
if it does not, it learned brightness.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["centroid_threshold", "centroid_threshold_accuracy", "spectral_centroid_hz"]


CHUNK_SAMPLES = 1 << 23  # samples per FFT batch (64 MiB of float64): memory stays flat


def window_chunks(windows: np.ndarray, *, samples: int | None = None):
    """``(start, float64 (n, L) rows)`` batches of ``(N, L[, 1])`` windows small enough to
    transform at once.

    A dataset's windows may be gigabytes on disk (a memory-mapped file, a ``WindowView``);
    a batch of 8 M samples (or ``samples``) keeps the FFT's copies under a few hundred MB
    whatever the window length.
    """
    step = max(1, (samples or CHUNK_SAMPLES) // max(1, windows.shape[1]))
    for start in range(0, len(windows), step):
        part = np.asarray(windows[start : start + step], dtype=np.float64)
        yield start, part.reshape(len(part), -1)


def spectral_centroid_hz(windows: np.ndarray, sample_rate: int) -> np.ndarray:
    """Spectral centroid of each window (``(n, length[, 1])``, or one ``(length,)``) in Hz.

    Each window's mean is removed and a Hann taper applied; silent windows give 0.
    """
    if np.ndim(windows) == 1:
        windows = np.asarray(windows)[None, :]
    freqs = np.fft.rfftfreq(windows.shape[1], 1.0 / sample_rate)
    taper = np.hanning(windows.shape[1])
    out = np.empty(len(windows))
    for start, part in window_chunks(windows):
        part = (part - part.mean(axis=1, keepdims=True)) * taper
        spectrum = np.abs(np.fft.rfft(part, axis=1))
        total = spectrum.sum(axis=1)
        out[start : start + len(part)] = np.where(
            total > 0, spectrum @ freqs / np.where(total > 0, total, 1.0), 0.0
        )
    return out


def centroid_threshold(
    train_windows: np.ndarray, train_labels: np.ndarray, sample_rate: int
) -> Callable[[np.ndarray], np.ndarray]:
    """The best single spectral-centroid threshold on the training windows, as a classifier.

    The baseline a classifier has to beat: labels are 0/1, the threshold and its direction
    (which class lies above) are chosen to maximise training accuracy. Returns a function
    from windows to predicted 0/1 labels.
    """
    train_c = spectral_centroid_hz(train_windows, sample_rate)
    train_labels = np.asarray(train_labels).astype(int)
    order = np.argsort(train_c)
    sorted_c, sorted_y = train_c[order], train_labels[order]
    # predicting 1 above threshold i: correct = zeros below + ones above
    zeros_below = np.concatenate([[0], np.cumsum(sorted_y == 0)])
    ones_above = np.concatenate([np.cumsum((sorted_y == 1)[::-1])[::-1], [0]])
    above_is_one = (zeros_below + ones_above) / len(sorted_y)
    best_up, best_down = int(np.argmax(above_is_one)), int(np.argmin(above_is_one))
    up = above_is_one[best_up] >= 1.0 - above_is_one[best_down]
    cut = best_up if up else best_down
    edges = np.concatenate([[-np.inf], (sorted_c[:-1] + sorted_c[1:]) / 2.0, [np.inf]])

    def predict(windows: np.ndarray) -> np.ndarray:
        above = spectral_centroid_hz(windows, sample_rate) > edges[cut]
        return (above if up else ~above).astype(int)

    return predict


def centroid_threshold_accuracy(
    train_windows: np.ndarray,
    train_labels: np.ndarray,
    test_windows: np.ndarray,
    test_labels: np.ndarray,
    sample_rate: int,
) -> float:
    """Accuracy on the test windows of the best single centroid threshold on the train ones."""
    predict = centroid_threshold(train_windows, train_labels, sample_rate)
    return float(np.mean(predict(test_windows) == np.asarray(test_labels).astype(int)))
