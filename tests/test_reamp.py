"""Reamping: the pure alignment core on arrays, then ``guitarlab reamp`` through a loopback.

The loopback is the virtual interface's: the ALSA device ``guitarlab_in`` plays into the
test input's sink, whose monitor is the default capture source, so what reamp plays comes
back as a plain loop. Playing to ``pulse`` (the headphones' sink) is a cable unplugged:
the input hears silence.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from scipy.signal import correlate

from guitarlab.cli import cli
from guitarlab.corpus.errors import RecorderError
from guitarlab.corpus.levels import rms_dbfs
from guitarlab.corpus.manifest import commit_audio, init_corpus, load_manifest, manifest_row
from guitarlab.recorder import reamp
from guitarlab.recorder.reamp import (
    ReturnCheck,
    aligned_take,
    correlation,
    measure_return,
    playback,
    reamp_corpus,
    return_problem,
)

RATE = 48000


def _guitarish(seconds: float, rate: int = RATE, seed: int = 0) -> np.ndarray:
    """Plucked decaying harmonics, a new note every 0.25 s: periodic, like a guitar."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(0.25 * rate)) / rate
    notes = []
    for _ in range(int(seconds / 0.25)):
        f0 = 110.0 * 2 ** (rng.integers(0, 24) / 12)
        note = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 6)) * np.exp(-6 * t)
        notes.append(0.2 * note)
    return np.concatenate(notes).astype(np.float32)


def _loop(played: np.ndarray, latency: int, *, gain: float = 0.5, noise: float = 1e-3):
    """What a plain analog loop returns: ``played`` late, quieter, with a little hiss."""
    rng = np.random.default_rng(5)
    out = np.zeros(len(played), np.float64)
    out[latency:] = gain * played[: len(played) - latency]
    return (out + noise * rng.standard_normal(len(out))).astype(np.float32)


# ---------------------------------------------------------------- the pure core


def test_latency_is_found_to_the_sample_and_removed() -> None:
    take = _guitarish(1.0)
    played, layout = playback(take, RATE)
    returned = _loop(played, 3217)
    check = measure_return(returned, layout, RATE)
    assert (check.latency_samples, check.drift_samples, check.polarity) == (3217, 0, 1)
    assert return_problem(check, RATE) is None
    back = aligned_take(returned, check, layout)
    assert len(back) == len(take) and correlation(back, take) > 0.99
    inverted = measure_return(-returned, layout, RATE)  # many amps invert the phase
    assert (inverted.latency_samples, inverted.polarity) == (3217, -1)


def test_unplugged_and_drifting_returns_are_refused() -> None:
    played, layout = playback(_guitarish(1.0), RATE)
    silent = np.zeros(len(played), np.float32)
    hiss = 0.01 * np.random.default_rng(2).standard_normal(len(played)).astype(np.float32)
    for returned in (silent, hiss):
        check = measure_return(returned, layout, RATE)
        assert "does not correlate" in return_problem(check, RATE)
    # two clocks: the input runs 3 samples slow over the take
    slipped = np.insert(_loop(played, 500), layout.take_start + 20000, np.zeros(3, np.float32))
    check = measure_return(slipped, layout, RATE)
    assert (check.latency_samples, check.end_latency_samples) == (500, 503)
    assert "drifted by 3 samples" in return_problem(check, RATE)
    assert return_problem(ReturnCheck(500, 501, 50.0, 1), RATE) is None  # 1 sample is allowed


def test_a_distorting_amp_still_gives_the_latency() -> None:
    """Through the crunch preset (drive, EQ, a cabinet IR) the bursts still stand out."""
    from guitarlab.augment.presets import chain_from_preset, get_presets
    from guitarlab.augment.render import render

    played, layout = playback(_guitarish(1.0), RATE)
    chain = chain_from_preset(get_presets("crunch")[0])
    amp = render(played, RATE, chain)
    returned = np.concatenate([np.zeros(777, np.float32), amp[:-777]])
    check = measure_return(returned, layout, RATE)
    assert return_problem(check, RATE) is None
    assert abs(check.latency_samples - 777) <= 5  # the cabinet's own delay is a few samples


def test_matched_level_is_lowered_to_fit_the_output() -> None:
    take = np.array([0.1, -0.5], np.float32)  # peaks at -6 dBFS
    assert reamp.play_gain_db(take, 3.0) == 3.0
    assert reamp.play_gain_db(take, 12.0) == pytest.approx(5.02, abs=0.01)
    assert reamp.play_gain_db(take, float("nan")) == 0.0


def test_tone_names_are_checked(tmp_path: Path) -> None:
    corpus = init_corpus(tmp_path / "corpus")
    for bad in ("raw", "My Amp", ""):
        with pytest.raises(RecorderError, match="--tone"):
            reamp_corpus(corpus, tone=bad)
    with pytest.raises(RecorderError, match="no raw take to reamp"):
        reamp_corpus(corpus, tone="amp")


# ---------------------------------------------------------------- through the virtual interface


def _add_take(root: Path, take: str, audio: np.ndarray, *, guitar: str, role: str = "") -> None:
    rid = f"{take}-raw" + (f"-{role}" if role else "")
    row = manifest_row(
        id=rid,
        path=f"takes/{rid}.wav",
        guitar=guitar,
        phrase="lead",
        take=take,
        columns={"rms_dbfs": rms_dbfs(audio)},
        role=role,
    )
    commit_audio(root, row, audio, RATE)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """Two guitars' takes (2 s) and a take recorded with a DI and a microphone."""
    root = init_corpus(tmp_path / "corpus")
    _add_take(root, "strat-lead-t001", _guitarish(2.0, seed=1), guitar="strat")
    _add_take(root, "paul-lead-t001", _guitarish(2.0, seed=2), guitar="paul")
    both = _guitarish(2.0, seed=3)
    _add_take(root, "paul-lead-t002", both, guitar="paul", role="di")
    _add_take(root, "paul-lead-t002", 0.3 * both[::-1].copy(), guitar="paul", role="mic")
    return root


LOOP = ["--output-device", "guitarlab_in", "--input-device", "pulse"]


def _lag(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.argmax(correlate(a, b, mode="full", method="fft"))) - (len(b) - 1)


@pytest.mark.server
def test_reamp_through_a_loopback_stores_aligned_renders_a_dataset_can_use(
    server, corpus: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    result = runner.invoke(
        cli, ["reamp", "--corpus", str(corpus), "--tone", "loop", "--calibrate", *LOOP]
    )
    assert result.exit_code == 0, result.output
    assert "calibrated loop: latency" in result.output and "3 take(s) reamped" in result.output
    calibration = (corpus / "reamp.json").read_text()
    assert '"loop"' in calibration and '"latency_samples"' in calibration
    frame = load_manifest(corpus)
    reamped = frame[frame["tone"] == "loop"].set_index("source")
    assert sorted(reamped["id"]) == [
        "paul-lead-t001-loop",
        "paul-lead-t002-loop-di",  # the DI of a two-input take, never its microphone
        "strat-lead-t001-loop",
    ]
    assert reamped.loc["paul-lead-t002-raw-di", "role"] == "di"
    raws = frame[frame["tone"] == "raw"].set_index("id")
    for source, row in reamped.iterrows():
        raw, _ = sf.read(corpus / raws.loc[source, "path"], dtype="float32")
        back, _ = sf.read(corpus / row["path"], dtype="float32")
        assert back.shape == raw.shape and row["take"] == raws.loc[source, "take"]
        assert abs(_lag(back, raw)) <= 1  # aligned with its take to within 1 sample
        assert correlation(back, raw) >= 0.99 and float(row["reamp_correlation"]) >= 0.99
        assert int(row["reamp_latency_samples"]) > 0 and row["reamp_drift_samples"] == "0"
        assert row["device"] == "guitarlab_in -> pulse" and row["recorded_at"]
        assert float(row["input_gain_db"]) == pytest.approx(
            min(float(raws.loc[source, "gain_db"]), -1.0 - float(raws.loc[source, "peak_dbfs"])),
            abs=0.01,
        )
    again = runner.invoke(cli, ["reamp", "--corpus", str(corpus), "--tone", "loop", *LOOP])
    assert again.exit_code == 0, again.output
    assert "3 take(s) already reamped to loop: skipped" in again.output
    assert len(load_manifest(corpus)) == len(frame)  # idempotent
    out = tmp_path / "dataset"
    build = ["dataset", "build", "--corpus", str(corpus), "--out", str(out)]
    build += ["--window", "4000", "--test-windows", "4", "--where", "role != 'mic'"]
    result = runner.invoke(cli, build)
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["dataset", "check", str(out)])
    assert result.exit_code == 0 and "ok:" in result.output, result.output
    from guitarlab.datasets.folder import open_dataset

    tones = set(open_dataset(out).windows("train")["id"].str.rsplit("-", n=1).str[-1])
    assert {"raw", "loop", "di"} <= tones  # raw, reamped and the reamped DI all in it


@pytest.mark.server
def test_an_unplugged_return_is_refused_and_a_stopped_run_resumes(server, corpus: Path) -> None:
    before = load_manifest(corpus)
    # the output plays to the headphones' sink, which the input does not hear
    result = CliRunner().invoke(
        cli,
        ["reamp", "--corpus", str(corpus), "--tone", "amp", "--output-device", "pulse"],
    )
    assert result.exit_code == 1, result.output
    assert "does not correlate" in result.output and "nothing was stored" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 2
    assert len(load_manifest(corpus)) == len(before)
    assert not [p for p in (corpus / "tones").iterdir()]  # no file, no temp
    assert not list((corpus / ".reserved").glob("*.json"))

    def stop_at_second(rid: str, number: int, total: int) -> None:
        if number == 2:
            raise KeyboardInterrupt  # Ctrl-C while the second take plays

    with pytest.raises(KeyboardInterrupt):
        reamp_corpus(
            corpus, tone="amp", output_device="guitarlab_in", input_device="pulse",
            on_take=stop_at_second,
        )  # fmt: skip
    first = load_manifest(corpus)
    assert list(first.loc[first["tone"] == "amp", "id"]) == ["strat-lead-t001-amp"]
    report = reamp_corpus(corpus, tone="amp", output_device="guitarlab_in", input_device="pulse")
    assert report.skipped == ["strat-lead-t001-raw"]
    assert sorted(r["id"] for r in report.added) == ["paul-lead-t001-amp", "paul-lead-t002-amp-di"]
    assert len(list((corpus / "tones").glob("*.wav"))) == 3


def test_a_return_missing_one_burst_is_a_glitch_to_play_again() -> None:
    """A stream that starts late loses the first burst, not the second: not 'unplugged'."""
    played, layout = playback(_guitarish(1.0), RATE)
    returned = _loop(played, 800)
    returned[: layout.first_marker + 800 + layout.marker_frames] = 0.0
    check = measure_return(returned, layout, RATE)
    assert check.prominence < reamp.MIN_PROMINENCE <= check.end_prominence
    assert "start of the return is missing" in return_problem(check, RATE)


@pytest.mark.server
def test_reamp_with_the_default_devices_through_a_virtual_amp(server, tmp_path: Path) -> None:
    """``audio-server --through crunch -- guitarlab reamp``: no devices named, a distorting
    loop with a software round trip of about a second; the render still lines up."""
    import os
    import subprocess
    import sys

    root = init_corpus(tmp_path / "corpus")
    _add_take(root, "strat-lead-t001", _guitarish(2.0, seed=1), guitar="strat")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PULSE_", "GUITARLAB_"))}
    guitarlab = [sys.executable, "-m", "guitarlab"]
    command = [*guitarlab, "audio-server", "--through", "crunch", "--", *guitarlab, "reamp"]
    command += ["--corpus", str(root), "--tone", "crunch_amp"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 take(s) reamped to crunch_amp" in done.stdout
    frame = load_manifest(root).set_index("id")
    row = frame.loc["strat-lead-t001-crunch_amp"]
    raw, _ = sf.read(root / frame.loc["strat-lead-t001-raw", "path"], dtype="float32")
    back, _ = sf.read(root / row["path"], dtype="float32")
    assert back.shape == raw.shape and row["source"] == "strat-lead-t001-raw"
    assert int(row["reamp_latency_samples"]) > 0.1 * RATE  # the software loop's buffers
    assert 0.3 < float(row["reamp_correlation"]) < 0.99  # distorted, yet the same playing
    assert abs(_lag(back, raw)) <= 5  # aligned but for the cabinet's own few samples
