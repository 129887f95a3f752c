"""augment/render.py: every built-in preset keeps length and timing, and the tones are what
their names say (measured distortion and crest-factor reduction)."""

from __future__ import annotations

import numpy as np
import pedalboard
import pytest
from scipy import signal

from guitarlab.augment.presets import chain_from_preset, load_presets
from guitarlab.augment.render import render
from guitarlab.corpus.errors import AugmentError

RATE = 44100
PRESETS = load_presets()


def plucks(seconds: float = 2.0, *, seed: int = 0, rate: int = RATE) -> np.ndarray:
    """Guitar-like test signal: decaying harmonic notes with sharp attacks, plus a little noise."""
    rng = np.random.default_rng(seed)
    frames = int(seconds * rate)
    audio = np.zeros(frames)
    t = np.arange(rate // 2) / rate
    for _ in range(int(seconds * 8)):
        f0 = rng.uniform(82.0, 660.0)
        start = rng.integers(0, frames - t.size)
        note = sum(
            np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6)) / k**1.3 for k in range(1, 15)
        )
        audio[start : start + t.size] += 0.08 * note * np.exp(-t * rng.uniform(4, 10))
    return (audio + 0.001 * rng.standard_normal(frames)).astype(np.float32)


def sine(freq_hz: float = 220.0, *, seconds: float = 1.0, amplitude: float = 0.25) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def xcorr_lag(rendered: np.ndarray, source: np.ndarray, *, max_lag: int = 3000) -> int:
    corr = signal.correlate(rendered, source, mode="full", method="fft")
    lags = signal.correlation_lags(rendered.size, source.size)
    keep = np.abs(lags) <= max_lag
    return int(lags[keep][np.argmax(np.abs(corr[keep]))])


def thd(audio: np.ndarray, f0: float) -> float:
    """Total harmonic distortion (harmonics 2..15 over the fundamental), amplitude ratio."""
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(audio.size)))
    freqs = np.fft.rfftfreq(audio.size, 1 / RATE)

    def amp(f: float) -> float:
        i = int(np.argmin(np.abs(freqs - f)))
        return float(spectrum[max(0, i - 3) : i + 4].max())

    harmonics = [amp(f0 * k) for k in range(2, 16) if f0 * k < RATE / 2]
    return float(np.sqrt(np.sum(np.square(harmonics))) / amp(f0))


def crest_db(audio: np.ndarray) -> float:
    return float(20 * np.log10(np.max(np.abs(audio)) / np.sqrt(np.mean(audio**2))))


@pytest.fixture(scope="module")
def source() -> np.ndarray:
    return plucks()


@pytest.fixture(scope="module")
def renders(source: np.ndarray) -> dict[str, np.ndarray]:
    return {name: render(source, RATE, chain_from_preset(p)) for name, p in PRESETS.items()}


def test_the_built_ins_include_the_core_tones_and_effects() -> None:
    assert {"clean", "crunch", "distorted"} <= set(PRESETS)
    plugins = {step["plugin"] for p in PRESETS.values() for step in p["chain"]}
    assert {"Compressor", "Delay", "Chorus", "Phaser", "Reverb", "Convolution"} <= plugins


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_is_finite_same_length_within_full_scale_and_aligned(
    name: str, source: np.ndarray, renders: dict[str, np.ndarray]
) -> None:
    out = renders[name]
    assert out.shape == source.shape and out.dtype == np.float32
    assert np.all(np.isfinite(out))
    assert np.max(np.abs(out)) <= 1.0
    assert np.sqrt(np.mean(out**2)) > 1e-3  # not silent
    assert xcorr_lag(out, source) == 0


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_rendering_twice_is_bit_identical(
    name: str, source: np.ndarray, renders: dict[str, np.ndarray]
) -> None:
    again = render(source, RATE, chain_from_preset(PRESETS[name]))
    assert np.array_equal(again, renders[name])


@pytest.mark.parametrize("name", ["clean", "crunch", "distorted"])
def test_core_tones_stay_aligned_on_other_performances_and_on_noise(name: str) -> None:
    chain = chain_from_preset(PRESETS[name])
    for seed in (1, 2):
        take = plucks(1.0, seed=seed)
        assert xcorr_lag(render(take, RATE, chain), take) == 0
    noise = (0.1 * np.random.default_rng(3).standard_normal(RATE)).astype(np.float32)
    assert xcorr_lag(render(noise, RATE, chain), noise) == 0


def test_distortion_and_crest_reduction_grow_clean_crunch_distorted(
    source: np.ndarray, renders: dict[str, np.ndarray]
) -> None:
    tone = sine(220.0)
    settle = RATE // 4  # skip the compressor/limiter attack
    distortion = [
        thd(render(tone, RATE, chain_from_preset(PRESETS[n]))[settle:], 220.0)
        for n in ("clean", "crunch", "distorted")
    ]
    assert distortion[0] < 0.02 < distortion[1] < distortion[2]
    reduction = [crest_db(source) - crest_db(renders[n]) for n in ("clean", "crunch", "distorted")]
    assert reduction[0] < 1.5 < reduction[1] < reduction[2]


def test_stereo_and_other_rates_keep_shape_and_alignment() -> None:
    take = plucks(1.0, rate=48000)
    stereo = np.stack([take, 0.5 * take], axis=1)
    out = render(stereo, 48000, chain_from_preset(PRESETS["crunch"]))
    assert out.shape == stereo.shape
    assert xcorr_lag(out[:, 0], take) == 0 and xcorr_lag(out[:, 1], take) == 0


def test_plugin_latency_and_ir_predelay_are_compensated(tmp_path) -> None:
    import soundfile as sf

    take = plucks(1.0)
    shifted = render(take, RATE, pedalboard.Pedalboard([pedalboard.PitchShift(semitones=0)]))
    assert xcorr_lag(shifted, take) == 0
    ir = np.zeros(300, dtype=np.float32)
    ir[200], ir[201] = 1.0, 0.3  # 200 samples of pre-delay, as captured IRs have
    sf.write(tmp_path / "room.wav", ir, RATE, subtype="FLOAT")
    preset = {
        "name": "predelay",
        "chain": [{"plugin": "Convolution", "impulse_response_filename": "room.wav"}],
        "_dir": str(tmp_path),
    }
    chain = chain_from_preset(preset)
    assert chain.delay_s == pytest.approx(200 / RATE)
    assert xcorr_lag(render(take, RATE, chain), take) == 0


@pytest.mark.parametrize(
    "audio, rate",
    [
        (np.zeros((0,), np.float32), RATE),
        (np.zeros((2, 3, 4), np.float32), RATE),
        (np.array([0.0, np.nan], np.float32), RATE),
        (np.zeros(10, np.float32), 0),
    ],
)
def test_bad_input_is_a_clear_error(audio: np.ndarray, rate: int) -> None:
    with pytest.raises(AugmentError):
        render(audio, rate, pedalboard.Pedalboard([pedalboard.Gain(gain_db=1)]))


def test_the_cabinet_convolution_matches_pedalboards_plugin() -> None:
    """render runs cabinet IRs itself (faster); the sound is the plugin's, minus the delay."""
    preset = {
        "name": "cab_only",
        "chain": [
            {"plugin": "Gain", "gain_db": 3},
            {"plugin": "Convolution", "impulse_response_filename": "builtin:cab_4x12.wav"},
            {"plugin": "Gain", "gain_db": 18},
        ],
    }
    chain = chain_from_preset(preset)
    take = plucks(1.0)
    delay = round(chain.delay_s * RATE)
    assert delay == 1023  # the shipped linear-phase IR's centre
    by_plugin = chain(np.pad(take, (0, delay)), RATE)[delay:]  # the chain used directly
    ours = render(take, RATE, chain)
    assert np.max(np.abs(ours - by_plugin)) < 1e-3 * np.max(np.abs(by_plugin))
