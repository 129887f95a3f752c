"""Level meter and gain advice on signals of known level."""

from __future__ import annotations

import numpy as np
import pytest

from guitarlab.corpus.levels import SILENCE_DBFS
from guitarlab.recorder.meter import (
    LevelMeter,
    advice_text,
    gain_advice_db,
    level_bar,
    meter_line,
)

RATE = 48000


def sine(amplitude: float, seconds: float = 1.0, freq_hz: float = 441.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def feed(meter: LevelMeter, audio: np.ndarray, block: int = 1024):
    reading = meter.last
    for start in range(0, len(audio), block):
        reading = meter.update(audio[start : start + block])
    return reading


def test_sine_of_known_level_reads_its_peak_and_rms():
    reading = feed(LevelMeter(RATE), sine(0.25))
    assert reading.max_peak_dbfs == pytest.approx(20 * np.log10(0.25), abs=0.01)
    assert reading.total_rms_dbfs == pytest.approx(20 * np.log10(0.25 / np.sqrt(2)), abs=0.02)
    assert reading.rms_dbfs == pytest.approx(-15.05, abs=0.1)
    assert not reading.clip and reading.clipped_samples == 0
    # audio time metered (frames / rate), not a wall-clock time
    assert reading.seconds == pytest.approx(1.0, abs=1024 / RATE)


def test_peak_hold_stays_then_falls_and_clip_light_sticks():
    meter = LevelMeter(RATE, hold_s=0.5, fall_db_per_s=20.0)
    loud = np.concatenate([sine(1.0, 0.1), sine(0.01, 0.3)])
    reading = feed(meter, loud)
    assert reading.clip  # full-scale sine peaks at 1.0
    assert reading.hold_dbfs == pytest.approx(0.0, abs=0.01)  # still held after 0.3 s
    reading = feed(meter, sine(0.01, 1.0))
    assert reading.clip  # the clip light stays on
    assert reading.peak_dbfs == pytest.approx(-40.0, abs=0.1)
    assert -40.1 < reading.hold_dbfs < -5.0  # falling towards the new level
    assert reading.max_peak_dbfs == pytest.approx(0.0, abs=0.01)


def test_silence_reads_floor_without_nan():
    reading = feed(LevelMeter(RATE), np.zeros(4800, np.float32))
    assert reading.peak_dbfs == SILENCE_DBFS and reading.total_rms_dbfs == SILENCE_DBFS
    assert "-inf" in meter_line(reading)


@pytest.mark.parametrize(
    ("amplitude", "target", "expected_db"),
    [(0.125, -12.0, 6.02), (0.5, -12.0, -5.98), (0.25, -6.0, 6.04)],
)
def test_gain_advice_lands_the_peak_on_the_target(amplitude, target, expected_db):
    peak = feed(LevelMeter(RATE), sine(amplitude)).max_peak_dbfs
    advice = gain_advice_db(peak, target_peak_dbfs=target)
    assert advice == pytest.approx(expected_db, abs=0.05)
    # applying the advice puts the measured peak on the target
    after = feed(LevelMeter(RATE), sine(amplitude * 10 ** (advice / 20))).max_peak_dbfs
    assert after == pytest.approx(target, abs=0.05)


def test_clipped_passage_advises_turning_down_at_least_6_db():
    peak = feed(LevelMeter(RATE), np.clip(sine(2.0), -1, 1)).max_peak_dbfs
    advice = gain_advice_db(peak, target_peak_dbfs=-12.0)
    assert advice <= -6.0
    assert "down" in advice_text(advice, clipped=True)
    assert "measure again" in advice_text(advice, clipped=True)


def test_advice_text_for_no_signal_and_right_gain():
    assert "no signal" in advice_text(gain_advice_db(SILENCE_DBFS))
    assert "right" in advice_text(0.4)
    assert "up by 6.0 dB" in advice_text(6.0)


def test_level_bar_spans_floor_to_full_scale():
    assert level_bar(0.0, width=10) == "#" * 10
    assert level_bar(-60.0, width=10) == "." * 10
    assert level_bar(-30.0, width=10) == "#" * 5 + "." * 5
