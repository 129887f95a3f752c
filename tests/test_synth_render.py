"""The synthetic guitar: determinism, pickup physics in measurements, musical sanity, corpus."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from guitarlab.cli import cli
from guitarlab.corpus.audit import check_manifest
from guitarlab.corpus.errors import RecorderError
from guitarlab.corpus.levels import peak_dbfs
from guitarlab.corpus.manifest import load_manifest
from guitarlab.synth import family
from guitarlab.synth import render as synth
from guitarlab.synth import takes as synth_takes
from guitarlab.synth.render import Note, render_notes, render_take
from guitarlab.train import baselines

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
            float(np.median(baselines.spectral_centroid_hz(windows, 44100))),
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
    assert clash.exit_code == 1 and "other parameters; pick another --first-take" in clash.output
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
    accuracy = baselines.centroid_threshold_accuracy(train_x, train_y, test_x, test_y, 44100)
    print(f"spectral-centroid threshold baseline, window accuracy: {accuracy:.3f}")
    assert 0.55 <= accuracy <= 0.95


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


# ---------------------------------------------------------------- the family


def test_family_has_three_kinds_and_every_position_renders() -> None:
    from guitarlab.synth.family import family_table, resolve_guitars

    assert len(family.family_guitars("single_coil")) >= 3
    assert len(family.family_guitars("humbucker")) >= 3
    assert family.family_guitars("p90") == ["les_paul_special"]
    assert resolve_guitars("all") == list(family.FAMILY) == family.family_guitars()
    assert "superstrat_split" in family_table() and "p90" in family_table()
    for guitar, row in family.FAMILY.items():
        for position in row["positions"]:
            labels = synth.guitar_labels(guitar, position)
            assert labels["pickup"] == row["pickup"]
            audio = render_take(
                guitar, "lead", seconds=0.4, sample_rate=RATE,
                options={"pickup_position": position},
            )  # fmt: skip
            assert np.all(np.isfinite(audio)) and np.std(audio) > 1e-4


def _first_notch(modes: np.ndarray, weights: np.ndarray) -> float:
    """Mode number of the first local minimum of the per-mode sensitivity."""
    inner = np.flatnonzero((weights[1:-1] < weights[:-2]) & (weights[1:-1] < weights[2:])) + 1
    return float(modes[inner[0]])


def test_humbucker_comb_notch_moves_with_its_place_along_the_string() -> None:
    """A humbucker senses sin(k d) cos(k s / 2): a notch where a mode has a node at the
    pickup's centre (mode L/d, so it moves with d) and one set by the coil spacing (L/s)."""
    from guitarlab.synth.family import humbucker_comb

    length = synth.GUITARS["les_paul"]["scale_mm"]
    notches = {}
    for position in ("neck", "bridge"):
        modes, weights = humbucker_comb("les_paul", position, string=6)
        d = synth.GUITARS["les_paul"]["pickups"][position]["bass_mm"]
        notches[position] = _first_notch(modes, weights)
        assert abs(notches[position] - length / d) / (length / d) < 0.03
        spacing_notch = length / 18.0  # both positions: a null near mode 35
        near = np.abs(modes - spacing_notch) < 0.5
        assert weights[near].min() < 0.03 * weights.max()
    assert notches["bridge"] > 2.5 * notches["neck"]  # the bridge pickup's notch is higher
    # fretting shortens the string: the notch (in Hz) moves with the note too
    modes, weights = humbucker_comb("les_paul", "bridge", string=6, fret=12)
    assert abs(_first_notch(modes, weights) - length / 2 / 48.0) < 0.2


def test_split_coil_responds_like_a_single_coil() -> None:
    from guitarlab.synth import guitar as sg
    from guitarlab.synth.family import humbucker_comb

    full = synth.GUITARS["superstrat"]["pickups"]["bridge"]
    split = synth.GUITARS["superstrat_split"]["pickups"]["bridge"]
    assert split["kind"] == "single_coil" and split["hum"] > 0
    one_coil = {  # a plain single coil where the humbucker's neck-side coil sits
        "pickup": "single_coil",
        "pickups": {
            "bridge": {
                **split,
                "bass_mm": full["bass_mm"] + 9.0,
                "treble_mm": full["treble_mm"] + 9.0,
            }
        },
    }
    n = np.arange(1, 80, dtype=float)
    for string in range(6):
        ours = sg.pickup_weights(synth.GUITARS["superstrat_split"], ["bridge"], string, 600.0, n)
        plain = sg.pickup_weights(one_coil, ["bridge"], string, 600.0, n)
        assert np.allclose(ours, plain)
    # no spacing notch: mode L/s keeps its level, unlike the humbucker's
    length = synth.GUITARS["superstrat"]["scale_mm"]
    modes, hb = humbucker_comb("superstrat", "bridge", string=1)
    _, sc = humbucker_comb("superstrat_split", "bridge", string=1)
    near = np.abs(modes - length / 18.0) < 0.5
    assert hb[near].min() < 0.03 * hb.max() and sc[near].min() > 0.1 * sc.max()
    # electrically: the split's resonance lies among the single coils', above the humbuckers'
    freqs = np.geomspace(500.0, 15000.0, 2000)

    def peak(guitar: str, position: str) -> float:
        response = synth.pickup_response(guitar, freqs, options={"pickup_position": position})
        return float(freqs[np.argmax(response)])

    singles = [peak(g, "bridge") for g in ("stratocaster", "telecaster", "jazzmaster")]
    humbuckers = [peak(g, "bridge") for g in ("les_paul", "sg", "es335", "superstrat")]
    assert min(singles) * 0.9 <= peak("superstrat_split", "bridge") <= max(singles) * 1.1
    assert peak("superstrat_split", "bridge") > max(humbuckers)


def test_randomize_draws_every_position_and_hum_down_to_none() -> None:
    from guitarlab.synth.family import randomize_options

    draws = [randomize_options("stratocaster", take=t, seed=0) for t in range(1, 80)]
    assert {d["pickup_position"] for d in draws} == set(family.FAMILY["stratocaster"]["positions"])
    assert any(d["hum"] == 0.0 for d in draws) and max(d["hum"] for d in draws) > 1.0
    assert all(d["humbucker_hum"] > 0 for d in draws)  # humbuckers hum a little too
    tones = [d["tone_knob"] for d in draws]
    assert min(tones) < 6 and tones.count(10.0) > 10
    assert draws[0] == randomize_options("stratocaster", take=1, seed=0)
    assert draws[0] != randomize_options("stratocaster", take=1, seed=1)


def test_new_options_at_neutral_values_keep_the_default_sound() -> None:
    args = dict(take=1, seconds=2.0, sample_rate=RATE)
    for guitar in ("stratocaster", "les_paul"):
        plain = render_take(guitar, "lead", **args)
        neutral = render_take(
            guitar, "lead", **args, options={"humbucker_hum": 0.0, "pluck_position": 0.18}
        )
        assert np.array_equal(plain, neutral)
    params = json.loads(
        synth.synth_params(
            "les_paul",
            "lead",
            take=1,
            seed=0,
            seconds=60.0,
            bpm=120.0,
            key="A",
            sample_rate=44100,
            options=None,
        )  # fmt: skip
    )
    assert "randomized" not in params and "humbucker_hum" not in params["options"]


def test_randomized_takes_differ_and_render_again_from_synth_params(tmp_path: Path) -> None:
    import soundfile as sf

    corpus = tmp_path / "family"
    added = synth_takes.synth_to_corpus(
        corpus, guitars=["jazzmaster", "sg"], phrases=["lead"], takes=2, seconds=1.5,
        sample_rate=RATE, randomize=True, progress=False,
    )  # fmt: skip
    frame = load_manifest(corpus)
    assert len(added) == 4 and check_manifest(corpus) == []
    assert set(frame["pickup"]) == {"single_coil", "humbucker"}
    params = [json.loads(p) for p in frame["synth_params"]]
    assert all(p["randomized"] for p in params)
    assert len({json.dumps(p["options"], sort_keys=True) for p in params}) == 4
    audio = {}
    for _, row in frame.iterrows():
        recorded, rate = sf.read(corpus / row["path"], dtype="float32")
        assert rate == RATE and np.array_equal(recorded, family.render_params(row["synth_params"]))
        assert row["position"] == json.loads(row["synth_params"])["options"]["pickup_position"]
        audio[row["id"]] = recorded
    assert not np.array_equal(audio["sg-lead-t001-raw"], audio["sg-lead-t002-raw"])
    again = synth_takes.synth_to_corpus(
        corpus, guitars=["jazzmaster", "sg"], phrases=["lead"], takes=2, first_take=1,
        seconds=1.5, sample_rate=RATE, randomize=True, progress=False,
    )  # fmt: skip
    assert again == []


def test_cli_notes_one_file_per_string_and_fret(tmp_path: Path) -> None:
    corpus = tmp_path / "notes"
    args = ["synth", "--corpus", str(corpus), "--guitars", "les_paul_special", "--notes",
            "--seconds", "0.6", "--rate", str(RATE), "--quiet"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    frame = load_manifest(corpus)
    notes = frame[frame["phrase"] == "note"]
    assert len(notes) == 6 * 13 and len(frame) == 6 * 13 + len(synth_family_chords())
    pairs = {(int(s), int(f)) for s, f in zip(notes["string"], notes["fret"], strict=True)}
    assert pairs == {(s, f) for s in range(1, 7) for f in range(13)}
    assert set(frame["pickup"]) == {"p90"} and check_manifest(corpus) == []
    import soundfile as sf

    def read(string: int, fret: int) -> np.ndarray:
        return sf.read(corpus / f"takes/les_paul_special-note-s{string}-f{fret:02d}-t001-raw.wav")[
            0
        ]

    high = read(1, 5)  # string 1 is the high e: fret 5 is A4
    assert np.max(np.abs(high[: int(0.15 * RATE)])) < 0.05 * np.max(np.abs(high))  # hum only
    assert (
        abs(1200 * math.log2(_yin_f0(high[int(0.3 * RATE) : int(0.55 * RATE)], RATE) / 440.0)) < 10
    )
    low = read(6, 0)  # string 6 is the low E
    f0 = _yin_f0(low[int(0.3 * RATE) : int(0.58 * RATE)], RATE)
    assert abs(1200 * math.log2(f0 / 82.41)) < 10
    tail = np.abs(high[-int(0.05 * RATE) :]).max()
    assert tail < np.abs(high).max()  # it decays


def synth_family_chords() -> dict:
    from guitarlab.synth.family import CHORDS

    return CHORDS


def test_cli_lists_the_family_and_names_bad_input(tmp_path: Path) -> None:
    listing = CliRunner().invoke(cli, ["synth", "--list"])
    assert listing.exit_code == 0 and "les_paul_special" in listing.output
    assert "humbucker" in listing.output and "single_coil" in listing.output
    help_text = CliRunner().invoke(cli, ["synth", "--help"]).output
    for flag in ("--randomize", "--notes", "--list"):
        assert flag in help_text
    assert help_text.count("Example") >= 4
    bad = CliRunner().invoke(
        cli, ["synth", "--corpus", str(tmp_path / "c"), "--guitars", "all", "--pickup-position",
              "middle", "--quiet"],
    )  # fmt: skip
    assert bad.exit_code == 1 and "has no pickup position 'middle'; known:" in bad.output
    assert len(bad.output.strip().splitlines()) == 1
    unknown = CliRunner().invoke(cli, ["synth", "--corpus", str(tmp_path / "c"), "--guitars", "jm"])
    assert unknown.exit_code == 1 and "known: stratocaster" in unknown.output
    assert "(or all, single_coil, humbucker, p90)" in unknown.output


def test_another_build_moves_the_comb_the_aperture_and_the_resonance() -> None:
    """pickup_place/width/winding make another instrument of the same model: the comb
    notch follows the pickup's distance, a wider window loses more treble partials, more
    turns lower the resonance; unset (or 1) is the preset, bit for bit."""
    preset = synth.GUITARS["les_paul"]
    assert synth.built_guitar("les_paul", synth.resolve_options("les_paul")) is preset
    args = dict(take=1, seconds=1.0, sample_rate=RATE)
    plain = render_take("les_paul", "lead", **args)
    assert np.array_equal(
        plain, render_take("les_paul", "lead", **args, options={"pickup_place": 1.0})
    )
    moved = synth.built_guitar("les_paul", {"pickup_place": 1.2, "pickup_width": 1.3})
    bridge, old = moved["pickups"]["bridge"], preset["pickups"]["bridge"]
    assert bridge["bass_mm"] == pytest.approx(1.2 * old["bass_mm"])
    assert bridge["coil_spacing_mm"] == pytest.approx(1.3 * old["coil_spacing_mm"])
    n = np.arange(1, 60, dtype=float)
    notch = n[np.argmin(np.abs(bridge_weights(preset, n))[3:]) + 3]
    moved_notch = n[np.argmin(np.abs(bridge_weights(moved, n))[3:]) + 3]
    assert moved_notch < notch  # farther from the bridge: the node-at-the-pickup notch drops
    strat = synth.GUITARS["stratocaster"]
    wide = synth.built_guitar("stratocaster", {"pickup_width": 1.5})
    treble = slice(20, None)  # modes 21-59: a wider window averages them away
    assert (
        np.abs(bridge_weights(wide, n))[treble].mean()
        < 0.8 * np.abs(bridge_weights(strat, n))[treble].mean()
    )
    grid = np.geomspace(500, 15000, 400)

    def peak(winding: float) -> float:
        gain = synth.pickup_response("stratocaster", grid, options={"pickup_winding": winding})
        return float(grid[np.argmax(gain)])

    assert peak(1.3) < peak(1.0) < peak(0.77)
    with pytest.raises(RecorderError, match="pickup_winding=3 is out of range"):
        render_take("les_paul", "lead", **args, options={"pickup_winding": 3})


def bridge_weights(spec: dict, n: np.ndarray) -> np.ndarray:
    """Per-mode sensitivity of the guitar's bridge pickup on the low E string."""
    from guitarlab.synth.guitar import pickup_weights

    return pickup_weights(spec, ["bridge"], 0, spec["scale_mm"], n)


def test_builds_are_drawn_apart_from_the_other_draws_and_render_again(tmp_path: Path) -> None:
    from guitarlab.synth.family import randomize_options

    for take in range(1, 30):
        plain = randomize_options("telecaster", take=take, seed=3, salt="lead")
        built = randomize_options("telecaster", take=take, seed=3, salt="lead", builds=True)
        assert {**built, **dict.fromkeys(synth.BUILD_OPTIONS)} == plain
        assert 0.8 <= built["pickup_place"] <= 1.25
        assert 0.75 <= built["pickup_width"] <= 1.33 and 0.75 <= built["pickup_winding"] <= 1.33
    import soundfile as sf

    corpus = tmp_path / "builds"
    base = ["synth", "--corpus", str(corpus), "--guitars", "sg", "--seconds", "1", "--rate", str(RATE), "--quiet"]  # fmt: skip
    refused = CliRunner().invoke(cli, [*base, "--builds"])
    assert refused.exit_code == 2 and "use it with --randomize" in refused.output
    assert not (corpus / "manifest.csv").exists()
    made = CliRunner().invoke(cli, [*base, "--phrases", "lead", "--takes", "2", "--randomize", "--builds"])  # fmt: skip
    assert made.exit_code == 0, made.output
    notes = CliRunner().invoke(cli, [*base, "--notes", "--randomize", "--builds"])
    assert notes.exit_code == 0, notes.output
    frame = load_manifest(corpus)
    assert check_manifest(corpus) == [] and len(frame) > 2
    places = set()
    for _, row in frame.iterrows():
        places.add(json.loads(row["synth_params"])["options"]["pickup_place"])
        recorded, _ = sf.read(corpus / row["path"], dtype="float32")
        assert np.array_equal(recorded, family.render_params(row["synth_params"]))
    assert len(places) == len(frame)  # each take and note file is another instrument


def test_takes_rendered_in_two_processes_are_the_same_files_and_rows(tmp_path: Path) -> None:
    """``synth --jobs 2`` renders in worker processes; the corpus must not change by a bit."""
    made = {}
    for jobs in (1, 2):
        corpus = tmp_path / f"jobs{jobs}"
        result = CliRunner().invoke(
            cli,
            ["synth", "--corpus", str(corpus), "--guitars", "stratocaster,les_paul",
             "--randomize", "--takes", "2", "--seconds", "1", "--jobs", str(jobs), "--quiet"],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        rows = load_manifest(corpus)
        made[jobs] = (
            rows[["id", "path", "sha256", "synth_params"]].to_dict("records"),
            {p.name: p.read_bytes() for p in sorted((corpus / "takes").glob("*.wav"))},
        )
    assert len(made[1][1]) == 8  # 2 guitars x 2 phrases x 2 takes
    assert made[2] == made[1]
