"""The synthetic guitar: determinism, pickup physics in measurements, musical sanity, corpus."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from guitarlab.cli import cli
from guitarlab.datasets.manifest import check_manifest, load_manifest
from guitarlab.errors import RecorderError
from guitarlab.recorder import synth
from guitarlab.recorder.levels import peak_dbfs
from guitarlab.recorder.synth import Note, render_notes, render_take

RATE = 22050


@pytest.fixture(scope="module")
def backing_pair() -> dict[str, np.ndarray]:
    """The same 6 s backing performance on a Stratocaster and a Les Paul at 44.1 kHz."""
    return {
        g: render_take(g, "backing", take=3, seed=5, seconds=6.0)
        for g in ("stratocaster", "les_paul")
    }


def _spectrum(audio: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
    power = np.abs(np.fft.rfft(audio.astype(np.float64) * np.hanning(audio.size))) ** 2
    return np.fft.rfftfreq(audio.size, 1.0 / rate), power


def _onsets_s(audio: np.ndarray, rate: int, hop_s: float = 0.004) -> np.ndarray:
    """Onsets: 12 ms rises of the smoothed log envelope of the high-passed signal."""
    hp = np.diff(audio.astype(np.float64))
    hop = int(hop_s * rate)
    power = np.mean(hp[: hp.size // hop * hop].reshape(-1, hop) ** 2, axis=1)
    env_db = 10 * np.log10(np.convolve(power, np.ones(3) / 3, mode="same") + 1e-12)
    rise = env_db[3:] - env_db[:-3]
    loud_db = env_db.max() - 30.0  # ignore hum and noise in the gaps
    peaks = [
        i
        for i in range(6, rise.size - 6)
        if rise[i] > 4.0 and rise[i] == rise[i - 6 : i + 7].max() and env_db[i + 3] > loud_db
    ]
    return (np.array(peaks) + 1.5) * hop_s


def _yin_f0(audio: np.ndarray, rate: int, fmin: float = 60.0, fmax: float = 1200.0) -> float:
    """Fundamental frequency by the YIN cumulative-mean difference (first dip below 0.15)."""
    x = audio.astype(np.float64)
    max_lag, size = int(rate / fmin), x.size - int(rate / fmin)
    diff = np.array([np.sum((x[:size] - x[lag : lag + size]) ** 2) for lag in range(max_lag)])
    cmnd = diff[1:] * np.arange(1, max_lag) / np.cumsum(diff[1:])
    lags = np.arange(1, max_lag)
    ok = (lags >= rate / fmax) & (cmnd < 0.15)
    lag = int(lags[np.argmax(ok)])
    while lag + 1 < max_lag - 1 and cmnd[lag] < cmnd[lag - 1]:
        lag += 1  # walk down to the local minimum
    a, b, c = cmnd[lag - 2], cmnd[lag - 1], cmnd[lag]
    shift = 0.5 * (a - c) / (a - 2 * b + c) if (a - 2 * b + c) else 0.0
    return rate / (lag + shift)


# ---------------------------------------------------------------- determinism and the API


def test_render_is_bit_identical_and_streams_the_same_audio() -> None:
    args = dict(take=2, seed=7, seconds=3.0, sample_rate=RATE)
    first = render_take("stratocaster", "lead", **args)
    second = render_take("stratocaster", "lead", **args)
    assert first.dtype == np.float32 and first.shape == (round(3.0 * RATE),)
    assert np.array_equal(first, second)
    assert np.max(np.abs(first)) <= 1.0 and np.std(first) > 1e-3
    blocks = list(synth.stream_take("stratocaster", "lead", block_frames=1000, **args))
    assert all(b.size == 1000 for b in blocks[:-1]) and np.array_equal(
        np.concatenate(blocks), first
    )


def test_another_take_is_another_performance_same_take_keeps_its_timing() -> None:
    args = dict(seconds=4.0, sample_rate=RATE)
    strat = render_take("stratocaster", "backing", take=1, **args)
    paul = render_take("les_paul", "backing", take=1, **args)
    other = render_take("stratocaster", "backing", take=2, **args)
    on_strat, on_paul, on_other = (_onsets_s(a, RATE) for a in (strat, paul, other))
    nearest = np.array([np.min(np.abs(on_paul - t)) for t in on_strat])
    assert len(on_strat) > 10 and np.median(nearest) < 0.012
    score1 = synth.make_score("backing", take=1, seed=0, seconds=4.0, bpm=120, key="A")
    score2 = synth.make_score("backing", take=2, seed=0, seconds=4.0, bpm=120, key="A")
    assert [(n.string, n.fret) for n in score1] != [(n.string, n.fret) for n in score2]
    assert not np.array_equal(strat, other)


@pytest.mark.parametrize(
    ("guitar", "options", "message"),
    [
        ("banjo", {}, "unknown guitar 'banjo'; known: stratocaster"),
        ("les_paul", {"pickup_position": "middle"}, "no pickup position 'middle'; known: neck"),
        ("stratocaster", {"tone_knob": 11}, "tone_knob=11 is out of range; use 0 to 10"),
        ("stratocaster", {"reverb": 1}, "unknown synth option 'reverb'"),
    ],
)
def test_bad_guitars_and_options_are_named(guitar: str, options: dict, message: str) -> None:
    with pytest.raises(RecorderError, match=message.replace("(", r"\(")):
        render_take(guitar, "lead", seconds=1.0, sample_rate=RATE, options=options)


def test_labels_and_presets_are_data() -> None:
    assert synth.guitar_labels("stratocaster") == {
        "guitar": "stratocaster",
        "pickup": "single_coil",
    }
    assert synth.guitar_labels("les_paul") == {"guitar": "les_paul", "pickup": "humbucker"}
    assert synth.guitar_labels("telecaster")["pickup"] == "single_coil"
    assert json.loads(json.dumps(synth.GUITARS)) == synth.GUITARS


# ---------------------------------------------------------------- physics in measurements


def test_single_coil_is_brighter_than_humbucker(backing_pair: dict) -> None:
    stats = {}
    for guitar, audio in backing_pair.items():
        freqs, power = _spectrum(audio, 44100)
        windows = audio[: audio.size // 8000 * 8000].reshape(-1, 8000)
        stats[guitar] = (
            float(np.median(synth.spectral_centroid_hz(windows, 44100))),
            10 * np.log10(power[freqs > 5000].sum() / power.sum()),
        )
    print("centroid Hz, energy above 5 kHz dB:", stats)
    assert stats["stratocaster"][0] > 1.1 * stats["les_paul"][0]
    assert stats["stratocaster"][1] > stats["les_paul"][1] + 6.0


def test_humbucker_is_hotter_before_level_matching(backing_pair: dict) -> None:
    assert peak_dbfs(backing_pair["les_paul"]) > peak_dbfs(backing_pair["stratocaster"]) + 3.0


def _hum_prominence_db(audio: np.ndarray, rate: int, hz: float) -> float:
    """Power at ``hz`` over the median power of the bins 5-15 Hz to either side."""
    freqs, power = _spectrum(audio, rate)
    at = power[np.abs(freqs - hz) < 0.3].max()
    around = power[(np.abs(freqs - hz) > 5) & (np.abs(freqs - hz) < 15)]
    return float(10 * np.log10(at / np.median(around)))


@pytest.mark.parametrize("mains_hz", [50.0, 60.0])
def test_mains_hum_only_in_single_coils(mains_hz: float) -> None:
    options = {"mains_hz": mains_hz}
    takes = {
        g: render_take(g, "lead", take=1, seconds=6.0, sample_rate=RATE, options=options)
        for g in ("stratocaster", "les_paul")
    }
    strat = [_hum_prominence_db(takes["stratocaster"], RATE, k * mains_hz) for k in (1, 3)]
    paul = [_hum_prominence_db(takes["les_paul"], RATE, k * mains_hz) for k in (1, 3)]
    print(f"hum prominence at {mains_hz} Hz and 3x: strat {strat}, les paul {paul}")
    assert strat[0] > 20.0 and strat[1] > 12.0 and max(paul) < 10.0
    # positions 2 and 4 of a Stratocaster are hum-cancelling (reverse-wound middle coil)
    quiet = render_take(
        "stratocaster", "lead", take=1, seconds=6.0, sample_rate=RATE,
        options={**options, "pickup_position": "bridge+middle"},
    )  # fmt: skip
    assert _hum_prominence_db(quiet, RATE, mains_hz) < 10.0


@pytest.mark.parametrize(
    ("guitar", "peak_hz"), [("stratocaster", 4000.0), ("telecaster", 4500.0), ("les_paul", 2500.0)]
)
def test_resonance_peak_lands_where_the_options_put_it(guitar: str, peak_hz: float) -> None:
    freqs = np.geomspace(500.0, 15000.0, 2000)
    response = synth.pickup_response(
        guitar, freqs, sample_rate=44100, options={"resonance_hz": peak_hz}
    )
    found = freqs[np.argmax(response)]
    assert abs(found - peak_hz) / peak_hz < 0.03
    assert response.max() > 1.1 * response[0]  # a real peak, not a plain low-pass
    with pytest.raises(RecorderError, match="above what this pickup"):
        synth.pickup_response(guitar, freqs, options={"resonance_hz": 14000.0})


def test_default_resonances_and_the_tone_knob() -> None:
    freqs = np.geomspace(500.0, 15000.0, 2000)
    peak = {
        g: freqs[np.argmax(synth.pickup_response(g, freqs))] for g in ("stratocaster", "les_paul")
    }
    assert 4500 <= peak["stratocaster"] <= 8000 and 2000 <= peak["les_paul"] <= 4200
    dark = synth.pickup_response("stratocaster", freqs, options={"tone_knob": 3.0})
    assert freqs[np.argmax(dark)] < 0.7 * peak["stratocaster"]


def test_resonance_shows_in_a_render_of_a_bright_excitation() -> None:
    """Many hard, near-bridge plucks of a high note: the spectrum envelope peaks at the resonance."""
    notes = [
        Note(start_s=0.05 * i, dur_s=0.05, string=5, fret=7 + i % 5, velocity=1.0, pluck_frac=0.05)
        for i in range(40)
    ]
    options = {"resonance_hz": 3000.0, "pick_attack": 1.0, "pickup_position": "bridge"}
    audio = render_notes("les_paul", notes, seconds=2.0, sample_rate=44100, options=options)
    freqs, power = _spectrum(audio, 44100)
    bands = np.geomspace(1000, 12000, 25)
    level = [
        power[(freqs >= lo) & (freqs < hi)].mean()
        for lo, hi in zip(bands[:-1], bands[1:], strict=True)
    ]
    slope_free = np.array(level) * np.sqrt(bands[:-1] * bands[1:])  # undo about -3 dB/oct
    peak_band = np.sqrt(bands[:-1] * bands[1:])[int(np.argmax(slope_free))]
    assert 2000 < peak_band < 4500


def test_interface_clips_when_the_gain_is_too_hot() -> None:
    args = dict(take=1, seconds=3.0, sample_rate=RATE)
    normal = render_take("les_paul", "backing", **args)
    hot = render_take("les_paul", "backing", **args, options={"preamp_gain_db": 24.0})
    assert peak_dbfs(normal) < -1.0 and np.mean(np.abs(normal) >= 0.999) == 0.0
    assert np.mean(np.abs(hot) >= 0.999) > 0.001
    # 24-bit quantization: every sample is a multiple of 2^-23
    assert np.array_equal(np.round(hot * 2**23), hot * 2**23)


# ---------------------------------------------------------------- musical sanity


def test_backing_onsets_fall_on_the_16th_and_8th_grid() -> None:
    seconds = 8.0  # two bars of 16ths, then two bars of 8ths at 120 BPM
    audio = render_take("stratocaster", "backing", take=1, seconds=seconds, sample_rate=RATE)
    onsets = _onsets_s(audio, RATE)
    first, second = onsets[onsets < seconds / 2], onsets[onsets >= seconds / 2]

    def off_grid(times: np.ndarray, step_s: float) -> np.ndarray:
        return np.abs(times - np.round(times / step_s) * step_s)

    assert len(first) >= 12 and len(second) >= 5
    assert np.mean(off_grid(first, 0.125) < 0.03) >= 0.85
    assert np.mean(off_grid(second, 0.25) < 0.03) >= 0.85
    # the busy half really plays 16ths: onsets between the 8ths
    assert np.sum(off_grid(first, 0.25) > 0.09) >= 3


@pytest.mark.parametrize(
    ("string", "fret", "expected_hz"),
    [(0, 0, 82.41), (1, 7, 164.81), (3, 2, 220.0), (5, 5, 440.0), (5, 12, 659.26)],
)
def test_note_fundamentals_match_the_requested_pitch(
    string: int, fret: int, expected_hz: float
) -> None:
    note = Note(start_s=0.0, dur_s=1.0, string=string, fret=fret, velocity=0.8)
    audio = render_notes("stratocaster", [note], seconds=0.6, sample_rate=RATE)
    f0 = _yin_f0(audio[int(0.1 * RATE) : int(0.4 * RATE)], RATE)
    assert abs(1200 * math.log2(f0 / expected_hz)) < 10.0  # cents


def test_a_whole_step_bend_raises_the_pitch() -> None:
    bend = Note(start_s=0.0, dur_s=1.0, string=4, fret=8, velocity=0.9, bend_semitones=2.0,
                bend_at_s=0.3, bend_time_s=0.1)  # fmt: skip
    audio = render_notes("les_paul", [bend], seconds=1.0, sample_rate=RATE)
    before = _yin_f0(audio[int(0.05 * RATE) : int(0.25 * RATE)], RATE)
    after = _yin_f0(audio[int(0.5 * RATE) : int(0.8 * RATE)], RATE)
    assert abs(1200 * math.log2(after / before) - 200.0) < 15.0


# ---------------------------------------------------------------- corpus and CLI


def test_cli_writes_takes_the_manifest_check_accepts(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    args = ["synth", "--corpus", str(corpus), "--seconds", "1.5", "--rate", str(RATE), "--quiet"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    frame = load_manifest(corpus)
    assert len(frame) == 4 and check_manifest(corpus) == []
    assert set(frame["guitar"]) == {"stratocaster", "les_paul"}
    assert set(frame["pickup"]) == {"single_coil", "humbucker"}
    assert set(frame["device"]) == {"synth"} and set(frame["tone"]) == {"raw"}
    assert (frame["subtype"] == "PCM_24").all() and (frame["frames"] == int(1.5 * RATE)).all()
    params = json.loads(frame.loc[0, "synth_params"])
    assert params["take"] == 1 and params["options"]["pickup_position"]
    # same performance on both guitars: the take numbers line up
    assert sorted(frame["take"]) == sorted(
        f"{g}-{p}-t001" for g in ("stratocaster", "les_paul") for p in ("backing", "lead")
    )
    # idempotent with a fixed take number, continues otherwise
    again = CliRunner().invoke(cli, args + ["--first-take", "1"])
    assert again.exit_code == 0 and "added 0 take(s)" in again.output
    more = CliRunner().invoke(cli, args + ["--phrases", "lead"])
    assert more.exit_code == 0 and "stratocaster-lead-t002-raw" in more.output
    clash = CliRunner().invoke(cli, args + ["--first-take", "1", "--tone-knob", "4"])
    assert clash.exit_code == 1 and "other parameters" in clash.output
    assert len(load_manifest(corpus)) == 6 and check_manifest(corpus) == []


def test_cli_names_the_known_guitars(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["synth", "--corpus", str(tmp_path / "c"), "--guitars", "strat", "--quiet"]
    )
    assert result.exit_code == 1
    assert (
        "Error: unknown guitar 'strat'; known: stratocaster, les_paul, telecaster" in result.output
    )


# ---------------------------------------------------------------- realism: a one-feature baseline


def test_centroid_threshold_is_a_useful_but_weak_baseline() -> None:
    """One centroid threshold, picked on take 1, scored on take 2, on 8000-sample windows.

    The defaults must not make the task trivial (real guitars are not separated by one
    number): the printed accuracy has to lie well between chance and perfect.
    """

    def windows(take: int) -> tuple[np.ndarray, np.ndarray]:
        data, labels = [], []
        for label, guitar in enumerate(("stratocaster", "les_paul")):
            for phrase in ("backing", "lead"):
                audio = render_take(guitar, phrase, take=take, seconds=20.0)
                cut = audio[: audio.size // 8000 * 8000].reshape(-1, 8000)
                data.append(cut)
                labels.append(np.full(len(cut), label))
        return np.concatenate(data), np.concatenate(labels)

    train_x, train_y = windows(1)
    test_x, test_y = windows(2)
    accuracy = synth.centroid_threshold_accuracy(train_x, train_y, test_x, test_y, 44100)
    print(f"spectral-centroid threshold baseline, window accuracy: {accuracy:.3f}")
    assert 0.55 <= accuracy <= 0.95


def test_centroid_threshold_accuracy_on_known_centroids() -> None:
    rate = 8000
    t = np.arange(512) / rate
    low = np.stack([np.sin(2 * np.pi * f * t) for f in (200, 300, 400)])
    high = np.stack([np.sin(2 * np.pi * f * t) for f in (1500, 2000, 2500)])
    centroids = synth.spectral_centroid_hz(np.concatenate([low, high]), rate)
    assert np.allclose(centroids, [200, 300, 400, 1500, 2000, 2500], rtol=0.05)
    x, y = np.concatenate([low, high]), np.array([1, 1, 1, 0, 0, 0])
    assert synth.centroid_threshold_accuracy(x, y, x, y, rate) == 1.0
    assert synth.centroid_threshold_accuracy(x, y, x, 1 - y, rate) == 0.0


def test_benchmark_quick_run_gives_finite_positive_rows() -> None:
    from benchmarks import bench_synth

    rows = bench_synth.run(quick=True)
    assert rows and all(math.isfinite(r.value) and r.value > 0 for r in rows)
    assert all(r.ratio is None or (math.isfinite(r.ratio) and r.ratio > 0) for r in rows)


def test_plot_spectra_writes_a_png(tmp_path: Path, backing_pair: dict) -> None:
    out = synth.plot_spectra(
        backing_pair, 44100, tmp_path / "fig" / "spectra.png",
        responses={"stratocaster": None, "les_paul": None},
    )  # fmt: skip
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
