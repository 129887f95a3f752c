"""Checks on takes: clipping, silence, dead channel, DC offset, low level, hum, drift."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from guitarlab.cli import cli
from guitarlab.corpus.checks import (
    check_take,
    findings_from_json,
    findings_to_json,
    hum_level_db,
)

RATE = 44100


def guitarish(seconds: float = 3.0, amplitude: float = 0.25, seed: int = 1) -> np.ndarray:
    """Plucked notes (decaying harmonics at pitches away from mains harmonics) with a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    out = np.zeros_like(t)
    notes_hz = [110.0, 146.8, 196.0, 246.9, 329.6, 220.0]
    for start, f0 in zip(np.arange(0, 3.0, 0.5), notes_hz, strict=True):
        m = t >= start
        tau = t[m] - start
        for k in range(1, 6):
            out[m] += np.exp(-3 * tau) * np.sin(2 * np.pi * f0 * k * tau) / k
    out = amplitude * out / np.max(np.abs(out))
    return (out + 1e-4 * rng.standard_normal(t.size)).astype(np.float32)


def names(findings) -> set[str]:
    return {f.check for f in findings}


def test_clean_take_has_no_findings():
    assert check_take(guitarish(), RATE) == []


def test_clipping_counts_samples_and_says_where():
    audio = guitarish()
    audio[RATE : RATE + 30] = 1.0
    audio[2 * RATE : 2 * RATE + 20] = -1.0
    findings = check_take(audio, RATE)
    clip = next(f for f in findings if f.check == "clipping")
    assert clip.severity == "error"
    assert clip.value == 50
    assert clip.at_s == pytest.approx([1.0, 2.0], abs=1e-3)
    assert findings[0].check == "clipping"  # errors first


def test_silence_and_dead_channel():
    silent = check_take(np.zeros(RATE, np.float32), RATE)
    assert names(silent) == {"silence"} and silent[0].severity == "error"
    stereo = np.stack([guitarish(), np.zeros(3 * RATE, np.float32)], axis=1)
    dead = [f for f in check_take(stereo, RATE) if f.check == "dead_channel"]
    assert len(dead) == 1 and "channel 2" in dead[0].message


def test_dc_offset_found_and_small_offset_ignored():
    assert "dc_offset" in names(check_take(guitarish() + 0.05, RATE))
    assert "dc_offset" not in names(check_take(guitarish() + 0.001, RATE))


def test_level_too_low_for_the_target():
    quiet = guitarish(amplitude=0.02)  # -34 dBFS peak, 22 dB under -12
    assert "level_low" in names(check_take(quiet, RATE, target_peak_dbfs=-12.0))
    assert "level_low" not in names(check_take(quiet, RATE, target_peak_dbfs=-40.0))


@pytest.mark.parametrize("mains_hz", [50.0, 60.0])
def test_mains_hum_is_found_with_its_frequency(mains_hz):
    t = np.arange(3 * RATE) / RATE
    hum = 0.02 * sum(np.sin(2 * np.pi * mains_hz * k * t) / k for k in (1, 2, 3))
    findings = check_take(guitarish() + hum.astype(np.float32), RATE)
    found = [f for f in findings if f.check == "hum"]
    assert len(found) == 1 and f"{mains_hz:.0f} Hz" in found[0].message
    assert hum_level_db(guitarish(), RATE, mains_hz=mains_hz) < -40.0


def test_drift_from_calibration():
    audio = guitarish(amplitude=0.25)  # peak -12 dBFS
    assert "drift" in names(check_take(audio, RATE, calibrated_peak_dbfs=-20.0))
    assert "drift" not in names(check_take(audio, RATE, calibrated_peak_dbfs=-13.0))


def test_findings_round_trip_through_json():
    audio = guitarish() + 0.05
    audio[100:110] = 1.0
    findings = check_take(audio, RATE)
    again = findings_from_json(findings_to_json(findings))
    assert [(f.check, f.severity, f.message) for f in again] == [
        (f.check, f.severity, f.message) for f in findings
    ]
    assert findings_from_json("") == []


def test_check_command_reports_and_sets_exit_code(tmp_path):
    good, bad = tmp_path / "good.wav", tmp_path / "bad.wav"
    sf.write(good, guitarish(), RATE, subtype="PCM_24")
    clipped = guitarish()
    clipped[RATE : RATE + 100] = 1.0
    sf.write(bad, clipped, RATE, subtype="PCM_24")
    ok = CliRunner().invoke(cli, ["check", str(good)])
    assert ok.exit_code == 0 and "ok: no clipping" in ok.output
    result = CliRunner().invoke(cli, ["check", str(good), str(bad)])
    assert result.exit_code == 1
    assert "bad.wav: error: clipping: 100 sample(s)" in result.output
