"""Precise BatchNorm (recalibrate_batch_norm): exact statistics, every layer, bounded memory."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

pytest.importorskip("tensorflow")

import keras  # noqa: E402

from guitarlab.train.models import (  # noqa: E402
    batch_norm_plan,
    lstm_fcn,
    recalibrate_batch_norm,
    spectrogram_lstm_fcn,
)


def _norms(model) -> list:
    return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]


def _layer_by_layer(model, windows: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The reference: each layer's whole input in float64 at once, one layer after the
    other (each later layer sees the statistics just set on the ones before), numpy's
    mean and variance."""
    stats = []
    for norm in _norms(model):
        inputs = np.asarray(keras.Model(model.inputs[0], norm.input)(windows), np.float64)
        flat = inputs.reshape(-1, inputs.shape[-1])
        norm.moving_mean.assign(flat.mean(axis=0).astype(np.float32))
        norm.moving_variance.assign(flat.var(axis=0).astype(np.float32))
        stats.append((flat.mean(axis=0), flat.var(axis=0)))
    return stats


def _twin(model):
    """A second model with the same weights, and gammas and betas moved off 1 and 0 so that a
    later layer's input really depends on the earlier layers' statistics."""
    rng = np.random.default_rng(1)
    for norm in _norms(model):
        norm.gamma.assign(rng.uniform(0.5, 2.0, norm.gamma.shape).astype(np.float32))
        norm.beta.assign(rng.normal(0.0, 1.0, norm.beta.shape).astype(np.float32))
    twin = keras.models.clone_model(model)
    twin.set_weights(model.get_weights())
    return twin


@pytest.mark.parametrize(
    "build",
    [
        lambda: lstm_fcn(64, 2, filters=(4, 6, 4), kernels=(5, 3, 3)),
        lambda: spectrogram_lstm_fcn(
            2048,
            3,
            sample_rate=16000,
            filters=(4, 6, 4),
            frame_length=256,
            hop_length=128,
            n_mels=16,
            spectral_stats=True,
        ),
    ],
    ids=["wave", "spectrogram-with-stats"],
)
def test_statistics_equal_the_layer_by_layer_float64_reference(build):
    model = build()
    twin = _twin(model)
    rng = np.random.default_rng(0)
    windows = rng.normal(0.0, 1.0, (37, model.input_shape[1], 1)).astype(np.float32)
    expected = _layer_by_layer(model, windows)

    # 5 windows a batch: several batches and a short last one
    assert recalibrate_batch_norm(twin, windows, batch_size=5) == len(expected)
    for norm, (mean, variance) in zip(_norms(twin), expected, strict=True):
        np.testing.assert_allclose(np.asarray(norm.moving_mean), mean, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(np.asarray(norm.moving_variance), variance, rtol=1e-3, atol=1e-5)


def test_layers_that_depend_on_no_other_batch_norm_share_one_pass():
    model = spectrogram_lstm_fcn(
        2048,
        2,
        sample_rate=16000,
        filters=(4, 6, 4),
        frame_length=256,
        hop_length=128,
        n_mels=16,
        spectral_stats=True,
    )
    plan = batch_norm_plan(model)
    assert [len(norms) for _, norms, _ in plan] == [2, 1, 1]  # stats_norm beside block 1
    assert "stats_norm" in {norm.name for norm in plan[0][1]}
    assert batch_norm_plan(model) is plan  # built once per model


class _Windows:
    """Windows handed out by slice, remembering how many each read asked for."""

    def __init__(self, windows: np.ndarray):
        self.windows, self.reads = windows, []

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index):
        part = self.windows[index]
        self.reads.append(len(part))
        return part


def _traced_peak_bytes(work) -> int:
    """Bytes numpy (and Python) allocated at the peak of ``work()``, above what was there."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        work()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("window, filters", [(256, (4, 8)), (2048, (16, 64))])
def test_memory_stays_bounded_as_window_and_filters_grow(window, filters):
    """The second model's activations are 32 times the first's (48 windows x 2,048 x 64
    filters: 25 MB in float32, 50 MB as one float64 copy); both stay under the same bound."""
    budget = 2**20
    model = lstm_fcn(window, 2, filters=filters, kernels=(3,) * len(filters))
    windows = np.random.default_rng(0).normal(size=(48, window)).astype(np.float32)
    batch_norm_plan(model)  # building the extractors is not what is measured
    recalibrate_batch_norm(model, windows[:2])  # nor TensorFlow's first call

    reader = _Windows(windows)
    peak = _traced_peak_bytes(lambda: recalibrate_batch_norm(model, reader, memory_bytes=budget))
    assert peak < 2 * budget, f"{peak / 2**20:.1f} MiB traced at the peak"
    # TensorFlow's batches are bounded too: every window read once per pass (one pass per
    # block), at most as many at a time as the pass's widest activation allows
    passes = np.split(
        np.array(reader.reads), np.flatnonzero(np.cumsum(reader.reads) % 48 == 0)[:-1] + 1
    )
    assert [int(p.sum()) for p in passes] == [48, 48]
    for reads, channels in zip(passes, filters, strict=True):
        assert reads.max() * window * channels * 4 <= budget
