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


def test_centroids_and_band_energies_come_out_the_same_in_small_batches(monkeypatch) -> None:
    """The baselines read a memory-mapped split batch by batch (flat memory on long windows)."""
    from guitarlab.train.evaluate import band_energies

    rng = np.random.default_rng(0)
    windows = rng.standard_normal((37, 512))
    whole_c = baselines.spectral_centroid_hz(windows, 16000)
    whole_e = band_energies(windows)
    monkeypatch.setattr(baselines, "CHUNK_SAMPLES", 3 * 512)
    assert [len(part) for _, part in baselines.window_chunks(windows)] == [3] * 12 + [1]
    np.testing.assert_allclose(baselines.spectral_centroid_hz(windows, 16000), whole_c)
    np.testing.assert_allclose(band_energies(windows), whole_e)


def test_baselines_read_a_window_view_as_they_read_the_stacked_windows(monkeypatch) -> None:
    """A dataset split's windows (a WindowView over its audio) need not be stacked first."""
    from guitarlab.datasets.windows import WindowView
    from guitarlab.train.evaluate import band_energies

    audio = np.random.default_rng(1).standard_normal(6000).astype(np.float32)
    view = WindowView(audio, np.arange(0, 5000, 128), 512)  # overlapping, as datasets are
    stacked = np.asarray(view)
    monkeypatch.setattr(baselines, "CHUNK_SAMPLES", 5 * 512)
    np.testing.assert_allclose(
        baselines.spectral_centroid_hz(view, 16000),
        baselines.spectral_centroid_hz(stacked[:, :, 0], 16000),
    )
    np.testing.assert_allclose(band_energies(view), band_energies(stacked[:, :, 0]))
    np.testing.assert_allclose(band_energies(view.subset([3, 7])), band_energies(stacked[[3, 7]]))
