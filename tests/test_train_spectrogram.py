"""The spectrogram branch (log-mel frames inside the model), the ensemble, and their runs."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")

import keras  # noqa: E402

from benchmarks.model_sets import sine_square  # noqa: E402
from guitarlab.corpus.errors import TrainError  # noqa: E402
from guitarlab.train.config import TrainConfig, spectrogram_frames  # noqa: E402
from guitarlab.train.fit import fit  # noqa: E402
from guitarlab.train.models import (  # noqa: E402
    LogMelFrames,
    SpectralStats,
    ensemble,
    lstm_fcn,
    spectrogram_lstm_fcn,
)
from guitarlab.train.rundir import load_run  # noqa: E402


def numpy_log_mel(windows: np.ndarray, mel: np.ndarray, *, frame: int, hop: int) -> np.ndarray:
    """The same features written plainly: Hann frames, |rfft|^2, mel sum, dB, minus the mean."""
    n_frames = 1 + (windows.shape[1] - frame) // hop
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(frame) / frame)  # periodic
    out = []
    for w in windows:
        frames = np.stack([w[i * hop : i * hop + frame] * hann for i in range(n_frames)])
        power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
        db = 10 * np.log10(power @ mel + 1e-10)
        out.append(db - db.mean())
    return np.stack(out)


def test_log_mel_layer_shape_and_agreement_with_numpy_stft():
    rate, frame, hop = 16000, 256, 64
    layer = LogMelFrames(rate, frame_length=frame, hop_length=hop, n_mels=32)
    rng = np.random.default_rng(0)
    t = np.arange(2000) / rate
    windows = np.stack([np.sin(2 * np.pi * 440 * t), rng.standard_normal(2000) * 0.1])
    frames = np.asarray(layer(windows[:, :, None].astype(np.float32)))
    assert frames.shape == (2, 1 + (2000 - frame) // hop, 32)
    assert layer.compute_output_shape((None, 2000, 1)) == (None, frames.shape[1], 32)
    expected = numpy_log_mel(windows, np.asarray(layer.mel_matrix()), frame=frame, hop=hop)
    # float32 FFT: exact to 0.05 dB within 20 dB of the mean, to 1 dB in the quiet corners
    loud = expected > -20
    assert np.abs(frames - expected)[loud].max() < 0.05
    np.testing.assert_allclose(frames, expected, atol=1.0)
    # the 440 Hz sine puts its energy in the mel band around 440 Hz
    centre = np.asarray(layer.mel_matrix())[round(440 / (rate / frame))].argmax()
    assert frames[0].mean(axis=0).argmax() == centre


def test_log_mel_is_loudness_normalized():
    layer = LogMelFrames(16000, frame_length=256, hop_length=128, n_mels=16)
    x = np.random.default_rng(1).standard_normal((1, 1024, 1)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(layer(x)), np.asarray(layer(10 * x)), atol=1e-3)


def test_band_norm_removes_a_fixed_filter_and_keeps_what_changes_over_time():
    """Three partials that come and go; a 'cable' scales each by its own constant gain.
    Per band that is a constant in dB: band norm removes it, loudness norm does not."""
    rate, n = 44100, 16384
    t = np.arange(n) / rate
    partials = (600.0, 2400.0, 7000.0)
    envelopes = [0.2 + np.abs(np.sin(2 * np.pi * (k + 1) * t / (n / rate))) for k in range(3)]
    voice = [env * np.sin(2 * np.pi * f * t) for env, f in zip(envelopes, partials, strict=True)]
    dry = sum(voice)
    wet = sum(g * v for g, v in zip((1.0, 3.0, 0.2), voice, strict=True))  # a fixed filter
    layer = LogMelFrames(rate, n_mels=32, norm="band")
    mel = np.asarray(layer.mel_matrix())
    bands = sorted({int(np.argmax(mel[int(f * 1024 / rate)])) for f in partials})
    windows = np.stack([dry, wet]).astype(np.float32)[:, :, None]
    band = np.asarray(layer(windows))[:, :, bands]
    loud = np.asarray(LogMelFrames(rate, n_mels=32)(windows))[:, :, bands]
    assert np.abs(band[0] - band[1]).max() < 0.5  # dB
    assert np.abs(loud[0] - loud[1]).max() > 5.0
    assert band[0].std(axis=0).min() > 1.0  # the envelopes' movement is still there
    with pytest.raises(TrainError, match="mel norm"):
        LogMelFrames(rate, norm="treble")


def test_spectral_stats_are_band_correlations_and_the_mean_spectrum():
    """Every pair of bands' correlation over the frames, then each band's mean; a fixed
    filter (a constant per band in dB) moves only the mean spectrum."""
    rng = np.random.default_rng(2)
    frames = 10 * rng.standard_normal((2, 40, 5)).astype(np.float32)  # dB-sized
    frames[:, :, 1] += 0.8 * frames[:, :, 0]  # two bands that move together
    stats = np.asarray(SpectralStats()(frames))
    assert stats.shape == (2, 5 * 4 // 2 + 5)
    assert SpectralStats().compute_output_shape((None, 40, 5)) == (None, 15)
    rows, cols = np.triu_indices(5, 1)
    for b in range(2):
        corr = np.corrcoef(frames[b].T)
        np.testing.assert_allclose(stats[b, :10], corr[rows, cols], atol=1e-3)
        np.testing.assert_allclose(stats[b, 10:], frames[b].mean(axis=0), atol=1e-5)
    assert stats[:, 0].min() > 0.5  # bands 0 and 1
    filtered = np.asarray(SpectralStats()(frames + np.array([3.0, -6.0, 0.0, 12.0, -1.0], "f4")))
    np.testing.assert_allclose(filtered[:, :10], stats[:, :10], atol=1e-4)
    np.testing.assert_allclose(
        filtered[:, 10:] - stats[:, 10:], [[3, -6, 0, 12, -1]] * 2, atol=1e-4
    )
    silent = np.asarray(SpectralStats()(np.full((1, 10, 3), -100.0, "f4")))
    assert np.isfinite(silent).all() and np.abs(silent[0, :3]).max() == 0.0


def test_spectral_stats_model_shares_one_stft_and_reloads(tmp_path):
    model = spectrogram_lstm_fcn(
        8000, 2, sample_rate=44100, filters=(8, 16, 8), mel_norm="band", spectral_stats=True
    )
    assert model.get_layer("spectral_stats").output.shape == (None, 64 * 63 // 2 + 64)
    assert sum(isinstance(layer, LogMelFrames) for layer in model.layers) == 1
    t = np.arange(8000) / 44100
    x = np.stack(
        [np.sin(2 * np.pi * 220 * t) * np.linspace(1, 0.1, 8000), np.sign(np.sin(t * 900))]
    )
    x = x.astype(np.float32)[:, :, None]
    band = keras.Model(model.inputs, model.get_layer("band_norm").output)(x)
    expected = LogMelFrames(44100, norm="band")(x)  # what mel_norm="band" reads without the branch
    np.testing.assert_allclose(np.asarray(band), np.asarray(expected), atol=1e-3)
    model.save(tmp_path / "stats.keras")
    again = keras.saving.load_model(tmp_path / "stats.keras")
    np.testing.assert_allclose(np.asarray(again(x)), np.asarray(model(x)), atol=1e-6)
    with pytest.raises(TrainError, match="spectral_stats reads log-mel frames"):
        TrainConfig(input="wave", spectral_stats=True)
    assert TrainConfig(model="ensemble", spectral_stats=True).spectral_stats


def test_spectrogram_model_shapes_and_squeeze_excite():
    model = spectrogram_lstm_fcn(8000, 3, sample_rate=44100, filters=(8, 16, 8))
    assert model.output_shape == (None, 3)
    assert model.get_layer("log_mel").compute_output_shape((None, 8000, 1)) == (None, 28, 64)
    assert sum(isinstance(layer, keras.layers.Multiply) for layer in model.layers) == 2
    with pytest.raises(TrainError, match="shorter than one spectrogram frame"):
        spectrogram_lstm_fcn(500, 2, sample_rate=44100)


def test_spectrogram_frames_fit_short_series():
    assert spectrogram_frames(8000, TrainConfig()) == {
        "frame_length": 1024,
        "hop_length": 256,
        "n_mels": 64,
    }
    small = spectrogram_frames(128, TrainConfig())
    assert small["frame_length"] == 32 and 1 + (128 - 32) // small["hop_length"] >= 4


def test_ensemble_is_the_mean_of_its_members_and_reloads(tmp_path):
    wave = lstm_fcn(1024, 2, filters=(4, 8), kernels=(3, 3))
    spec = spectrogram_lstm_fcn(
        1024,
        2,
        sample_rate=16000,
        filters=(4, 8),
        kernels=(3, 3),
        frame_length=256,
        hop_length=128,
        n_mels=16,
    )
    both = ensemble([wave, spec])
    x = np.random.default_rng(2).standard_normal((5, 1024, 1)).astype(np.float32)
    expected = (np.asarray(wave(x, training=False)) + np.asarray(spec(x, training=False))) / 2
    np.testing.assert_allclose(np.asarray(both(x, training=False)), expected, atol=1e-6)
    both.save(tmp_path / "e.keras")
    again = keras.models.load_model(tmp_path / "e.keras", compile=False)
    np.testing.assert_allclose(np.asarray(again(x, training=False)), expected, atol=1e-6)
    with pytest.raises(TrainError, match="at least two"):
        ensemble([wave])


@pytest.mark.parametrize(
    ("model", "input_kind", "stats"),
    [
        ("lstm-fcn", "spectrogram", False),
        ("lstm-fcn", "spectrogram", True),
        ("ensemble", "wave", False),
    ],
)
def test_spectrogram_and_ensemble_runs_learn_the_smoke_set(tmp_path, model, input_kind, stats):
    X, y = sine_square(300, seed=0)
    X_test, y_test = sine_square(100, seed=5)
    config = TrainConfig(
        model=model, input=input_kind, filters=(8, 16, 8), epochs=8, fine_tune_epochs=2,
        spectral_stats=stats, verbose=0,
    )  # fmt: skip
    run = fit(X, y, out=tmp_path / "run", config=config, X_test=X_test, y_test=y_test)
    assert run.metrics["test_window_accuracy"] >= 0.9
    info = load_run(run.run_dir)
    assert info.config.model == model and info.config.input == input_kind
    assert info.config.spectral_stats == stats
    reloaded = info.load_model()
    outputs = np.asarray(reloaded(X_test[:, :, None], training=False))[:, 0]
    assert np.mean((outputs > 0.5) == y_test) >= 0.9


def test_spectrogram_model_widens_and_an_ensemble_refuses_clearly():
    from guitarlab.train.models import widen_output

    spec = spectrogram_lstm_fcn(
        1024, 2, sample_rate=16000, filters=(4, 8), kernels=(3, 3), frame_length=256,
        hop_length=128, n_mels=16,
    )  # fmt: skip
    x = np.random.default_rng(3).standard_normal((4, 1024, 1)).astype(np.float32)
    wide = widen_output(spec, 3)
    old = np.asarray(spec(x, training=False))[:, 0]
    new = np.asarray(wide(x, training=False))
    np.testing.assert_allclose(new[:, 1] / (new[:, 0] + new[:, 1]), old, atol=1e-5)
    both = ensemble([lstm_fcn(1024, 2, filters=(4,), kernels=(3,)), spec])
    with pytest.raises(TrainError, match="cannot be widened"):
        widen_output(both, 3)


def test_model_benchmark_table_on_the_smoke_set():
    from benchmarks.bench_model import markdown, measure

    results = measure(quick=True, protocols=("sine-square",), models=("spectrogram",), echo=print)
    assert set(results) == {
        ("sine-square", "spectrogram"),
        ("sine-square", "baseline"),
        ("sine-square", "centroid"),
    }
    (run,) = results[("sine-square", "spectrogram")]
    assert run["files"] == 100 and 0.0 <= run["balanced"] <= 1.0
    text = markdown(results, machine="test", quick=True)
    assert "| sine-square | spectrogram | 1 |" in text and "| sine-square | baseline | 1 |" in text


def test_model_benchmark_configures_every_model_on_every_protocol():
    """Each protocol's demo model, with the wave, spectrogram or ensemble input asked for."""
    from benchmarks.bench_model import MODELS, PROTOCOLS, _config

    for protocol in PROTOCOLS:
        for model in MODELS:
            config = _config(model, 0, False, protocol)
            assert config.input == ("wave" if model == "wave" else "spectrogram")
            assert config.spectral_stats == (protocol == "guitar-holdout" and model != "wave")
