"""Baselines a classifier has to beat, on the same windows: one feature, one threshold.

A model of the pickup should beat the best spectral-centroid threshold (brightness alone);
if it does not, it learned brightness.
"""

from __future__ import annotations

import numpy as np

__all__ = ["centroid_threshold_accuracy", "spectral_centroid_hz"]


def spectral_centroid_hz(windows: np.ndarray, sample_rate: int) -> np.ndarray:
    """Spectral centroid of each window (rows of ``windows``, shape ``(n, length)``) in Hz.

    Each window's mean is removed and a Hann taper applied; silent windows give 0.
    """
    windows = np.atleast_2d(np.asarray(windows, dtype=np.float64))
    windows = windows - windows.mean(axis=1, keepdims=True)
    spectrum = np.abs(np.fft.rfft(windows * np.hanning(windows.shape[1]), axis=1))
    freqs = np.fft.rfftfreq(windows.shape[1], 1.0 / sample_rate)
    total = spectrum.sum(axis=1)
    return np.where(total > 0, spectrum @ freqs / np.where(total > 0, total, 1.0), 0.0)


def centroid_threshold_accuracy(
    train_windows: np.ndarray,
    train_labels: np.ndarray,
    test_windows: np.ndarray,
    test_labels: np.ndarray,
    sample_rate: int,
) -> float:
    """Accuracy on the test windows of the best single centroid threshold on the train ones.

    The baseline a classifier has to beat: labels are 0/1, the threshold and its direction
    (which class lies above) are chosen to maximise training accuracy.
    """
    train_c = spectral_centroid_hz(train_windows, sample_rate)
    test_c = spectral_centroid_hz(test_windows, sample_rate)
    train_labels = np.asarray(train_labels).astype(int)
    test_labels = np.asarray(test_labels).astype(int)
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
    predict = test_c > edges[cut]
    predict = predict if up else ~predict
    return float(np.mean(predict.astype(int) == test_labels))
