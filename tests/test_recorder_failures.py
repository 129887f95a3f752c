"""The recorder's "never lose audio" failure paths, against a real audio server.

A full disk is simulated for real (``RLIMIT_FSIZE`` in a subprocess, ``SIGXFSZ`` ignored,
so libsndfile's writes fail with EFBIG exactly as on a full disk); a device that stops
delivering audio is a PulseAudio source suspended mid-take. Each must end in one line
that names the problem and what to do, with the audio captured so far kept.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from guitarlab.corpus.manifest import init_corpus, load_manifest
from guitarlab.recorder.server import SINK_IN

pytestmark = pytest.mark.server
RATE = 48000
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def corpus(tmp_path):
    return init_corpus(tmp_path / "corpus")


def _sine_file(tmp_path: Path, seconds: float) -> Path:
    sine = 0.25 * np.sin(2 * np.pi * 330.0 * np.arange(int(seconds * RATE)) / RATE)
    sine[: int(0.02 * RATE)] = 0.0
    path = tmp_path / "sine.wav"
    sf.write(path, sine.astype(np.float32), RATE, subtype="FLOAT")
    return path


def _record_cli(server, corpus: Path, args: list[str], preexec=None, timeout_s: float = 30.0):
    """``guitarlab record`` in a subprocess against the server; returns the finished process."""
    # no shared memory with the server: libpulse's memfd pools count against RLIMIT_FSIZE
    client_conf = corpus.parent / "client.conf"
    client_conf.write_text("autospawn = no\nenable-shm = no\n")
    command = [sys.executable, "-m", "guitarlab", "record", "--corpus", str(corpus)]
    command += ["--guitar", "strat", "--phrase", "backing", "--count-in", "0", "--no-click"]
    command += ["--device", "pulse", *args]
    return subprocess.run(
        command,
        cwd=REPO,
        env={**os.environ, **server.env, "PULSE_CLIENTCONFIG": str(client_conf)},
        capture_output=True,
        text=True,
        timeout=timeout_s,
        preexec_fn=preexec,
    )


def _error_lines(stderr: str) -> list[str]:
    """stderr without the progress lines the recorder prints when not on a terminal."""
    return [line for line in stderr.splitlines() if line.strip() and not line.endswith(" ...")]


# ---------------------------------------------------------------- disk full


FSIZE_LIMIT = 150_000  # bytes: ~1 s of 24-bit mono at 48 kHz; the manifest stays far below


def _small_disk() -> None:
    """In the child: files may not grow past FSIZE_LIMIT, and writes past it fail (EFBIG)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (FSIZE_LIMIT, FSIZE_LIMIT))


def test_disk_full_is_one_line_and_keeps_the_audio_written(server, corpus, tmp_path):
    play = _sine_file(tmp_path, 4.0)
    done = _record_cli(server, corpus, ["--seconds", "3", "--play", str(play)], _small_disk)
    path = corpus / "takes" / "strat-backing-t001-raw.wav"
    assert done.returncode == 1, done.stderr
    errors = _error_lines(done.stderr)
    assert "Traceback" not in done.stderr
    assert len(errors) == 1, done.stderr
    assert errors[0].startswith("Error: ") and str(path) in errors[0]
    assert "File too large" in errors[0] and "is the disk full? free space" in errors[0]
    assert "row strat-backing-t001-raw, partial" in errors[0]
    audio, rate = sf.read(path, dtype="float32")
    info = sf.info(path)
    assert (rate, info.subtype) == (RATE, "PCM_24")
    expected = (FSIZE_LIMIT - 44) // 3
    assert expected - 2 * 1024 <= len(audio) <= expected
    # what was written is the played sine, not silence or garbage
    tail = audio[-int(0.25 * RATE) :]
    assert np.sqrt(np.mean(tail**2)) == pytest.approx(0.25 / np.sqrt(2), rel=0.06)
    row = load_manifest(corpus).iloc[0]
    assert (row["status"], int(row["frames"])) == ("partial", len(audio))
    assert row["path"] == "takes/strat-backing-t001-raw.wav"


# ---------------------------------------------------------------- the device stops delivering


def _pactl(server, *args: str) -> None:
    subprocess.run(["pactl", *args], env={**os.environ, **server.env}, check=True, timeout=10)


def _start_long_take(server, corpus: Path, tmp_path: Path) -> subprocess.Popen:
    """``guitarlab record`` of a 10 s sine in a subprocess, returned once it is recording."""
    play = _sine_file(tmp_path, 11.0)
    command = [sys.executable, "-m", "guitarlab", "record", "--corpus", str(corpus)]
    command += ["--guitar", "strat", "--phrase", "backing", "--count-in", "0", "--no-click"]
    command += ["--device", "pulse", "--seconds", "10", "--play", str(play)]
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env={**os.environ, **server.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in process.stderr:
        if line.startswith("recording"):
            return process
    process.kill()
    pytest.fail(f"the recorder never started recording: {process.communicate()}")


def _check_cut_short(
    process: subprocess.Popen, corpus: Path, cut_s: float, err: str, message: str
) -> None:
    """One error line, exit 1, and the take up to the cut kept as a partial row."""
    assert process.returncode == 1, err
    assert "Traceback" not in err
    errors = _error_lines(err)  # PortAudio's "Expression ... failed" lines would show here
    assert len(errors) == 1, err
    assert errors[0].startswith(f"Error: input 'pulse' {message} after ")
    assert "check the device and record again" in errors[0]
    assert "row strat-backing-t001-raw, partial" in errors[0]
    row = load_manifest(corpus).iloc[0]
    assert row["status"] == "partial"
    audio, rate = sf.read(corpus / row["path"], dtype="float32")
    assert int(row["frames"]) == len(audio) and rate == RATE
    assert cut_s - 0.5 <= len(audio) / RATE <= cut_s + 1.0  # what arrived before the cut
    tail = audio[-int(0.25 * RATE) :]
    assert np.sqrt(np.mean(tail**2)) == pytest.approx(0.25 / np.sqrt(2), rel=0.06)


def test_input_that_stops_delivering_is_one_line_and_keeps_the_audio(server, corpus, tmp_path):
    """The test input's sink suspended mid-take: no more frames, as when a USB interface is pulled.

    PortAudio neither errors nor returns from stopping such a stream: the recorder's
    watchdog must turn the silence into an error, and the process must still exit.
    """
    process = _start_long_take(server, corpus, tmp_path)
    try:
        time.sleep(1.0)
        _pactl(server, "suspend-sink", SINK_IN, "1")
        _, err = process.communicate(timeout=20)  # exits: PortAudio alone would hang here
    finally:
        if process.poll() is None:
            process.kill()
        _pactl(server, "suspend-sink", SINK_IN, "0")
    # the watchdog's message and about 1 s of audio kept, not the end of the 10 s take
    _check_cut_short(process, corpus, 1.0, err, "stopped delivering audio")


def test_audio_server_that_dies_mid_take_is_one_line_and_keeps_the_audio(server, corpus, tmp_path):
    """A second server, killed with SIGKILL while recording: the device is gone for good."""
    from guitarlab.recorder.server import start_audio_server

    doomed = start_audio_server(rate=RATE)
    try:
        process = _start_long_take(doomed, corpus, tmp_path)
        try:
            time.sleep(1.0)
            doomed.process.kill()
            _, err = process.communicate(timeout=20)
        finally:
            if process.poll() is None:
                process.kill()
    finally:
        doomed.stop()
    _check_cut_short(process, corpus, 1.0, err, "went away")  # PortAudio's own error
    assert "(unplugged, or its audio server stopped)" in err


# ---------------------------------------------------------------- what the device cannot do


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--channel", "64"],
            "Error: device 'pulse' has 32 input channel(s); channel 64 is not available "
            "(use --channel 1..32)",
        ),
        (
            # an ALSA device that plays into the server but cannot capture at any rate
            ["--device", SINK_IN, "--rate", "96000"],
            f"Error: cannot record from device '{SINK_IN}' at any rate tried (96000 or 44100 Hz, "
            "1 channel(s)): ",
        ),
    ],
)
def test_channel_or_device_the_interface_lacks_is_one_line(server, corpus, args, expected):
    done = _record_cli(server, corpus, ["--seconds", "1", *args])
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    errors = _error_lines(done.stderr)  # ALSA's own complaints on stderr would show here
    assert len(errors) == 1, done.stderr
    line = errors[0]
    assert line.startswith(expected), done.stderr
    if "any rate" in expected:
        assert line.endswith(
            "pick another input from 'guitarlab devices' and try it with 'guitarlab devices --test'"
        )
    assert not list((corpus / "takes").iterdir())  # nothing half-made is left behind
    assert load_manifest(corpus).empty


def test_disk_too_full_for_the_row_leaves_the_take_for_recover(server, corpus, tmp_path):
    """500 bytes: ~150 frames of audio fit, the manifest with its new row does not."""
    limit = 500

    def tiny_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    play = _sine_file(tmp_path, 2.0)
    done = _record_cli(server, corpus, ["--seconds", "1", "--play", str(play)], tiny_disk)
    assert done.returncode == 1, done.stderr
    errors = _error_lines(done.stderr)
    assert len(errors) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "File too large" in errors[0] and "its row could not be written either" in errors[0]
    assert errors[0].endswith(f"run 'guitarlab recover --corpus {corpus}' to add it")
    assert load_manifest(corpus).empty
    path = corpus / "takes" / "strat-backing-t001-raw.wav"
    frames = sf.info(path).frames
    assert frames == (limit - 44) // 3
    recovered = subprocess.run(
        [sys.executable, "-m", "guitarlab", "recover", "--corpus", str(corpus)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert recovered.returncode == 0, recovered.stderr
    assert "recovered takes/strat-backing-t001-raw.wav" in recovered.stdout
    row = load_manifest(corpus).iloc[0]
    assert (row["status"], int(row["frames"]), row["device"]) == ("partial", frames, "pulse")


def test_disk_full_before_the_take_starts_leaves_nothing_behind(server, corpus):
    """100 bytes: the WAV header fits, the take's label sidecar does not."""

    def full_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100, 100))

    done = _record_cli(server, corpus, ["--seconds", "1"], full_disk)
    assert done.returncode == 1, done.stderr
    errors = _error_lines(done.stderr)
    assert len(errors) == 1 and "Traceback" not in done.stderr, done.stderr
    # the first file written is the take number's reservation (see manifest.reserve_rows)
    assert errors[0] == (
        f"Error: {corpus / '.reserved'}: cannot reserve ids (File too large: is the disk "
        "full? free some space and run this again)"
    )
    assert not list((corpus / "takes").iterdir())
    assert not list((corpus / ".reserved").iterdir())
    assert load_manifest(corpus).empty


def test_level_with_an_input_that_stops_is_one_line_and_saves_nothing(server, corpus, tmp_path):
    play = _sine_file(tmp_path, 11.0)
    command = [sys.executable, "-m", "guitarlab", "level", "--corpus", str(corpus)]
    command += ["--guitar", "strat", "--device", "pulse", "--seconds", "10", "--play", str(play)]
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env={**os.environ, **server.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for line in process.stderr:
            if line.startswith("recording"):
                break
        time.sleep(1.0)
        _pactl(server, "suspend-sink", SINK_IN, "1")
        _, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
        _pactl(server, "suspend-sink", SINK_IN, "0")
    assert process.returncode == 1, err
    errors = _error_lines(err)
    assert len(errors) == 1 and "Traceback" not in err, err
    assert errors[0].startswith("Error: input 'pulse' stopped delivering audio after ")
    assert errors[0].endswith("(unplugged?); check the device and measure again")
    assert not (corpus / "calibration.json").exists()
