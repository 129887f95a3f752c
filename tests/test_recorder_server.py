"""The recorder against a real audio server: PulseAudio with null sinks, started per module.

A known signal (or the synthetic guitar) is played into the server's test input while
``record_take`` captures it through sounddevice, exactly the path of a user's interface.
Skipped only when the server cannot start here and ``CI`` is not set; in CI it fails.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from scipy.signal import chirp, correlate

from guitarlab.cli import cli
from guitarlab.corpus.checks import findings_from_json
from guitarlab.corpus.errors import RecorderError
from guitarlab.corpus.levels import rms_dbfs
from guitarlab.corpus.manifest import init_corpus, load_manifest
from guitarlab.recorder.session import record_take
from guitarlab.recorder.take import Stall

pytestmark = pytest.mark.server
RATE = 48000
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def corpus(tmp_path):
    return init_corpus(tmp_path / "corpus")


def test_signal(seconds: float, rate: int = RATE, amplitude: float = 0.3) -> np.ndarray:
    """A chirp with 20 ms of leading silence (the first ms of a playback come out as zeros)."""
    t = np.arange(int(seconds * rate)) / rate
    audio = amplitude * chirp(t, 80.0, seconds, 5000.0) * np.minimum(1.0, t / 0.05)
    audio[: int(0.02 * rate)] = 0.0
    return audio.astype(np.float32)


test_signal.__test__ = False  # a helper, not a test


def aligned(recorded: np.ndarray, played: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Both signals cut to their overlap after the lag found by cross-correlation."""
    lag = int(np.argmax(correlate(recorded, played, mode="full", method="fft"))) - (len(played) - 1)
    rec = recorded[max(lag, 0) :]
    ref = played[max(-lag, 0) :]
    n = min(len(rec), len(ref))
    return rec[:n], ref[:n], lag


def test_played_signal_comes_back_identical_with_click_kept_out(server, corpus):
    played = test_signal(2.5)
    row = record_take(
        corpus,
        guitar="Stratocaster",
        pickup="single_coil",
        phrase="backing",
        seconds=2.0,
        rate=RATE,
        subtype="PCM_24",
        device="pulse",
        channel=1,
        bpm=240,
        count_in=1,
        click=True,  # the click plays on the output the whole time: it must not be in the take
        player="tester",
        discard_on_interrupt=False,
        source_audio=played,
    )
    path = corpus / row["path"]
    info = sf.info(path)
    assert (info.samplerate, info.subtype, info.channels, info.frames) == (
        RATE,
        "PCM_24",
        1,
        2 * RATE,
    )
    recorded, _ = sf.read(path, dtype="float32")
    rec, ref, lag = aligned(recorded, played)
    assert 0 <= lag < 0.2 * RATE  # latency, measured rather than assumed
    body = slice(int(0.06 * RATE), len(rec) - 10)
    assert np.corrcoef(rec[body], ref[body])[0, 1] >= 0.99
    assert rms_dbfs(rec[body]) == pytest.approx(rms_dbfs(ref[body]), abs=0.5)
    assert (
        np.abs(recorded[: max(lag - 50, 0)]).max(initial=0.0) < 1e-3
    )  # no click before the signal
    frame = load_manifest(corpus)
    assert list(frame["id"]) == ["stratocaster-backing-t001-raw"]
    stored = frame.iloc[0]
    assert stored["path"] == "takes/stratocaster-backing-t001-raw.wav"
    assert (stored["guitar"], stored["pickup"], stored["phrase"], stored["tone"]) == (
        "stratocaster",
        "single_coil",
        "backing",
        "raw",
    )
    assert (stored["take"], stored["device"], stored["player"], stored["status"]) == (
        "stratocaster-backing-t001",
        "pulse",
        "tester",
        "",
    )
    assert int(stored["sample_rate"]) == RATE and int(stored["frames"]) == 2 * RATE
    assert stored["gain_db"] == pytest.approx(-20.0 - stored["rms_dbfs"], abs=0.01)
    assert stored["recorded_at"].startswith("20") and stored["dropouts"] == "0"
    assert stored["dropped_frames"] == "0"
    assert findings_from_json(stored["checks"]) == []
    # the next take of the same guitar and phrase gets the next number
    again = record_take(
        corpus,
        guitar="stratocaster",
        phrase="backing",
        seconds=0.5,
        device="pulse",
        count_in=0,
        click=False,
        source_audio=played,
    )
    assert again["take"] == "stratocaster-backing-t002"


def test_synthetic_guitar_through_the_server_at_44100(server, corpus):
    synth = pytest.importorskip("guitarlab.synth.render")
    played = synth.render_take("stratocaster", "backing", seconds=2.5, sample_rate=44100, seed=3)
    played = np.asarray(played, dtype=np.float32)
    played[: int(0.02 * 44100)] = 0.0
    row = record_take(
        corpus,
        guitar="stratocaster",
        pickup="single_coil",
        phrase="backing",
        seconds=2.0,
        rate=44100,
        device="pulse",
        count_in=0,
        click=False,
        source_audio=played,
    )
    recorded, rate = sf.read(corpus / row["path"], dtype="float32")
    assert rate == 44100 and sf.info(corpus / row["path"]).subtype == "PCM_24"
    rec, ref, _ = aligned(recorded, played)
    body = slice(int(0.1 * rate), len(rec) - 10)
    assert np.corrcoef(rec[body], ref[body])[0, 1] >= 0.99
    assert rms_dbfs(rec[body]) == pytest.approx(rms_dbfs(ref[body]), abs=0.5)


def test_callback_stall_is_reported_as_a_dropout(server, corpus):
    row = record_take(
        corpus,
        guitar="les_paul",
        phrase="lead",
        seconds=2.5,
        device="pulse",
        count_in=0,
        click=False,
        source_audio=test_signal(3.0),
        stall=Stall("callback", at_s=0.8, seconds=0.8),
    )
    # the server buffers a short callback stall: reported as late audio, or as lost frames
    assert int(row["stalls"]) + int(row["dropouts"]) >= 1
    assert '"at_s":0.8' in row["dropout_detail"] or '"at_s":0.9' in row["dropout_detail"]


def test_writer_stall_loses_frames_that_are_counted_and_filled(server, corpus):
    row = record_take(
        corpus,
        guitar="les_paul",
        phrase="lead",
        seconds=2.0,
        device="pulse",
        count_in=0,
        click=False,
        source_audio=test_signal(2.5),
        stall=Stall("writer", at_s=0.5, seconds=1.0),
        queue_s=0.2,
    )
    assert int(row["dropped_frames"]) > 0.4 * RATE
    assert row["frames"] == 2 * RATE  # silence fills the gap, the timeline is kept
    assert "queue_full" in row["dropout_detail"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"device": "no_such_interface"}, "input device 'no_such_interface' not found; known: "),
        ({"channel": 64}, "has 32 input channel(s); channel 64 is not available"),
        ({"rate": 1000}, "--rate 1000 is not a sample rate"),
        ({"subtype": "MP3"}, "--subtype 'MP3' is not a WAV subtype"),
    ],
)
def test_unsupported_device_channel_rate_are_one_line_errors(server, corpus, options, message):
    kwargs = {"device": "pulse", "seconds": 1.0, **options}
    with pytest.raises(RecorderError) as caught:
        record_take(corpus, guitar="strat", phrase="backing", **kwargs)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert not list((corpus / "takes").iterdir())


def test_stop_keeps_a_partial_take_and_discard_drops_it(server, corpus):
    for discard in (False, True):
        stop = threading.Event()
        threading.Timer(1.5, stop.set).start()
        row = record_take(
            corpus,
            guitar="strat",
            phrase="riff",
            seconds=10.0,
            device="pulse",
            count_in=0,
            click=False,
            source_audio=test_signal(10.0),
            stop=stop,
            discard_on_interrupt=discard,
        )
        if discard:
            assert row is None
        else:
            assert row["status"] == "partial" and 0 < row["frames"] < 10 * RATE
    assert len(load_manifest(corpus)) == 1
    assert len(list((corpus / "takes").glob("*.wav"))) == 1


# ---------------------------------------------------------------- the CLI in a subprocess


def _start_record(
    server, corpus: Path, tmp_path: Path, seconds: float = 20.0, *, sigint_ignored: bool = False
):
    """``guitarlab record`` in a subprocess playing a steady sine; returns it and its stderr lines.

    ``sigint_ignored`` starts it as a non-interactive shell starts a background job, with
    SIGINT ignored."""
    sine = 0.25 * np.sin(2 * np.pi * 330.0 * np.arange(int((seconds + 1) * RATE)) / RATE)
    sine[: int(0.02 * RATE)] = 0.0
    play = tmp_path / "sine.wav"
    sf.write(play, sine.astype(np.float32), RATE, subtype="FLOAT")
    command = [
        sys.executable,
        "-m",
        "guitarlab",
        "record",
        "--corpus",
        str(corpus),
        "--guitar",
        "strat",
        "--phrase",
        "backing",
        "--seconds",
        str(seconds),
        "--count-in",
        "0",
        "--no-click",
        "--device",
        "pulse",
        "--play",
        str(play),
        "--player",
        "killer",
    ]
    env = {**os.environ, **server.env}
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
        if sigint_ignored
        else None,
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in process.stderr], daemon=True).start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            assert process.poll() is None, process.stdout.read()
            continue
        if line.startswith("recording"):
            return process, time.monotonic()
    process.kill()
    pytest.fail("the recorder did not start recording within 30 s")


def test_sigkill_leaves_a_readable_take_that_recover_adds(server, corpus, tmp_path):
    process, started = _start_record(server, corpus, tmp_path)
    time.sleep(2.0)
    process.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    process.wait(timeout=10)
    path = corpus / "takes" / "strat-backing-t001-raw.wav"
    audio, rate = sf.read(path, dtype="float32")  # opens without any repair
    held_s = len(audio) / rate
    assert killed - started - 1.0 <= held_s <= killed - started + 0.2
    tail = audio[-int(0.25 * RATE) :]
    assert rms_dbfs(tail) == pytest.approx(rms_dbfs(np.array([0.25, -0.25]) / np.sqrt(2)), abs=0.5)
    assert load_manifest(corpus).empty
    result = CliRunner().invoke(cli, ["recover", "--corpus", str(corpus)])
    assert result.exit_code == 0, result.output
    assert "recovered takes/strat-backing-t001-raw.wav" in result.output
    row = load_manifest(corpus).iloc[0]
    assert (row["status"], row["player"], row["device"]) == ("partial", "killer", "pulse")
    assert int(row["frames"]) == len(audio)
    assert (
        "nothing to recover" in CliRunner().invoke(cli, ["recover", "--corpus", str(corpus)]).output
    )


@pytest.mark.parametrize("sigint_ignored", [False, True])
def test_sigint_stops_and_keeps_a_partial_take(server, corpus, tmp_path, sigint_ignored):
    process, started = _start_record(server, corpus, tmp_path, sigint_ignored=sigint_ignored)
    time.sleep(1.5)
    process.send_signal(signal.SIGINT)
    stopped = time.monotonic()
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 0, out
    assert "(PARTIAL)" in out
    row = load_manifest(corpus).iloc[0]
    assert row["status"] == "partial"
    assert stopped - started - 1.0 <= int(row["frames"]) / RATE <= stopped - started + 0.5


# ---------------------------------------------------------------- devices and level


def test_devices_lists_the_server_and_test_plays_back(server):
    runner = CliRunner()
    listed = runner.invoke(cli, ["devices"])
    assert listed.exit_code == 0 and "pulse" in listed.output and "guitarlab_in" in listed.output
    test = runner.invoke(
        cli, ["devices", "--test", "--device", "pulse", "--output-device", "guitarlab_in"]
    )
    assert test.exit_code == 0, test.output
    assert "the path works" in test.output


def test_level_advises_gain_and_saves_calibration(server, corpus, tmp_path):
    tone = (10 ** (-18 / 20)) * np.sin(2 * np.pi * 220.0 * np.arange(3 * RATE) / RATE)
    tone[: int(0.02 * RATE)] = 0.0
    sf.write(tmp_path / "tone.wav", tone.astype(np.float32), RATE, subtype="FLOAT")
    result = CliRunner().invoke(
        cli,
        [
            "level",
            "--corpus",
            str(corpus),
            "--guitar",
            "strat",
            "--device",
            "pulse",
            "--seconds",
            "1.5",
            "--play",
            str(tmp_path / "tone.wav"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "loudest peak -18.0 dBFS" in result.output
    assert "turn the interface gain up by 6.0 dB" in result.output
    assert '"strat"' in (corpus / "calibration.json").read_text()


def test_record_command_takes_several_in_a_row(server, corpus, tmp_path):
    sf.write(tmp_path / "chirp.wav", test_signal(1.0), RATE, subtype="FLOAT")
    result = CliRunner().invoke(
        cli,
        [
            "record",
            "--corpus",
            str(corpus),
            "--guitar",
            "tele",
            "--pickup",
            "single_coil",
            "--phrase",
            "riff",
            "--seconds",
            "0.5",
            "--count-in",
            "0",
            "--no-click",
            "--takes",
            "2",
            "--pause",
            "0",
            "--device",
            "pulse",
            "--play",
            str(tmp_path / "chirp.wav"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "takes/tele-riff-t001-raw.wav: 0.5 s" in result.output
    assert "takes/tele-riff-t002-raw.wav: 0.5 s" in result.output
    frame = load_manifest(corpus)
    assert list(frame["take"]) == ["tele-riff-t001", "tele-riff-t002"]
    assert set(frame["pickup"]) == {"single_coil"}
