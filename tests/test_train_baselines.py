"""The one-feature baseline: spectral centroid and the best threshold on it."""

from __future__ import annotations

import numpy as np

from guitarlab.train import baselines


def test_centroid_threshold_accuracy_on_known_centroids() -> None:
    rate = 8000
    t = np.arange(512) / rate
    low = np.stack([np.sin(2 * np.pi * f * t) for f in (200, 300, 400)])
    high = np.stack([np.sin(2 * np.pi * f * t) for f in (1500, 2000, 2500)])
    centroids = baselines.spectral_centroid_hz(np.concatenate([low, high]), rate)
    assert np.allclose(centroids, [200, 300, 400, 1500, 2000, 2500], rtol=0.05)
    x, y = np.concatenate([low, high]), np.array([1, 1, 1, 0, 0, 0])
    assert baselines.centroid_threshold_accuracy(x, y, x, y, rate) == 1.0
    assert baselines.centroid_threshold_accuracy(x, y, x, 1 - y, rate) == 0.0
