"""``guitarlab audio-server``: the virtual interface a newcomer runs instead of hardware.

Real PulseAudio (skipped where it cannot start, failing in CI like the other server
tests): the command runs other commands inside it, its loopback brings the output
back into the input sample for sample, a tone preset in the loop distorts the return
without moving it, SIGTERM leaves nothing behind, and a wrong device name is one line
before anyone is asked to play.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import audio_server_or_skip, write_tone
from scipy.signal import correlate

from guitarlab.corpus.manifest import init_corpus, load_manifest

pytestmark = pytest.mark.server
RATE = 48000
GUITARLAB = [sys.executable, "-m", "guitarlab"]
SERVER = [*GUITARLAB, "audio-server"]


def run(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def can_start():
    """Skip the module (off CI) where no PulseAudio can start; CI must have it."""
    audio_server_or_skip(RATE).stop()


def bursts(seconds: float, *, every_s: float = 0.5, burst_s: float = 0.15, seed: int = 0):
    """Noise bursts, a fresh one every ``every_s``: each one finds its own lag."""
    rng = np.random.default_rng(seed)
    audio = np.zeros(int(seconds * RATE), np.float32)
    starts = list(range(int(0.1 * RATE), audio.size - int(every_s * RATE), int(every_s * RATE)))
    for start in starts:
        audio[start : start + int(burst_s * RATE)] = 0.25 * rng.standard_normal(int(burst_s * RATE))
    return audio, starts, int(burst_s * RATE)


def play_and_capture(played: np.ndarray) -> np.ndarray:
    """Play on the default output while recording the default input, as reamp does:
    two streams of the recorder's own (``open_output``, ``open_input``)."""
    from guitarlab.recorder import devices

    inp = devices.resolve_device("pulse", kind="input")
    out = devices.resolve_device("pulse", kind="output")
    captured: list[np.ndarray] = []
    first = threading.Event()
    position = [0]

    def record(indata, frames, time_info, status) -> None:
        captured.append(indata[:, 0].copy())
        first.set()

    def play(outdata, frames, time_info, status) -> None:
        block = played[position[0] : position[0] + frames]
        outdata[:] = 0.0
        outdata[: block.size, 0] = block
        position[0] += frames

    streams = [devices.open_input(inp, sample_rate=RATE, channels=1, callback=record)]
    try:
        streams[0].start()
        assert first.wait(10)
        streams.append(devices.open_output(out, sample_rate=RATE, channels=1, callback=play))
        streams[1].start()
        time.sleep(played.size / RATE + 1.5)
    finally:
        devices.stop_streams(streams)
    return np.concatenate(captured)


def burst_lags(recorded: np.ndarray, played: np.ndarray, starts: list[int], length: int):
    """The lag of each burst in the recording, searched around the whole signal's lag."""
    whole = int(np.argmax(correlate(recorded, played, mode="full", method="fft"))) - (
        played.size - 1
    )
    lags = []
    for start in starts:
        ref = played[start : start + length]
        lo = max(0, start + whole - 2000)
        seg = recorded[lo : start + whole + length + 2000]
        c = correlate(seg, ref, mode="valid", method="fft")
        lags.append(lo + int(np.argmax(np.abs(c))) - start)
    return whole, lags


# ---------------------------------------------------------------- commands inside it


def test_devices_inside_lists_the_virtual_interface_and_exit_codes_pass_through(can_start):
    done = run([*SERVER, "--", *GUITARLAB, "devices"])
    assert done.returncode == 0, done.stderr
    names = [line.split()[1] for line in done.stdout.splitlines()[1:]]
    assert {"pulse", "guitarlab_in"} <= set(names)
    failed = run([*SERVER, "--", sys.executable, "-c", "import sys; sys.exit(3)"])
    assert failed.returncode == 3
    missing = run([*SERVER, "--", "no-such-command-h4"])
    assert missing.returncode == 1
    assert missing.stderr.strip().count("\n") == 0 and "no-such-command-h4" in missing.stderr


def test_level_and_record_inside_with_play_write_a_calibration_and_a_take(can_start, tmp_path):
    corpus = init_corpus(tmp_path / "corpus")
    riff = write_tone(tmp_path / "riff.wav", seconds=2.0, rate=RATE, amplitude=0.2)
    level = run(
        [*SERVER, "--", *GUITARLAB, "level", "--corpus", str(corpus), "--guitar", "strat"]
        + ["--device", "pulse", "--seconds", "1", "--play", str(riff)]
    )
    assert level.returncode == 0, level.stderr
    assert "calibration saved for strat" in level.stdout
    assert (corpus / "calibration.json").exists()
    record = run(
        [*SERVER, "--", *GUITARLAB, "record", "--corpus", str(corpus), "--guitar", "strat"]
        + ["--phrase", "riff", "--seconds", "1", "--count-in", "0", "--no-click"]
        + ["--device", "pulse", "--play", str(riff)]
    )
    assert record.returncode == 0, record.stderr
    row = load_manifest(corpus).iloc[0]
    audio, rate = sf.read(corpus / row["path"], dtype="float32")
    assert rate == RATE and audio.size == RATE
    # the riff (RMS 0.2 / sqrt 2: -17 dBFS) came through, not silence
    assert float(row["rms_dbfs"]) == pytest.approx(-17.0, abs=1.5)


def test_play_feeds_the_input_on_repeat_for_a_command_without_play(can_start, tmp_path):
    corpus = init_corpus(tmp_path / "corpus")
    riff = write_tone(tmp_path / "riff.wav", seconds=0.3, rate=RATE, amplitude=0.2)
    done = run(
        [*SERVER, "--play", str(riff), "--", *GUITARLAB, "record", "--corpus", str(corpus)]
        + ["--guitar", "strat", "--phrase", "riff", "--seconds", "1.5", "--count-in", "0"]
        + ["--no-click", "--device", "pulse"]
    )
    assert done.returncode == 0, done.stderr
    row = load_manifest(corpus).iloc[0]
    audio, _ = sf.read(corpus / row["path"], dtype="float32")
    # a 0.3 s riff on repeat: sound in every quarter of the 1.5 s take
    quarters = np.array_split(audio[int(0.3 * RATE) :], 4)
    assert all(np.sqrt(np.mean(q**2)) > 0.05 for q in quarters)


def test_wrong_device_name_is_one_line_before_the_player_is_asked(can_start, tmp_path):
    corpus = init_corpus(tmp_path / "corpus")
    run_dir = tmp_path / "run"  # a features run's files, enough for predict's own checks
    run_dir.mkdir()
    (run_dir / "run.json").write_text('{"config": {"model": "features"}}')
    (run_dir / "model.joblib").write_bytes(b"")
    for command in (
        ["level", "--corpus", str(corpus), "--guitar", "strat", "--device", "Scarlett"],
        ["record", "--corpus", str(corpus), "--guitar", "strat", "--phrase", "riff"]
        + ["--seconds", "1", "--device", "Scarlett"],
        ["predict", str(run_dir), "--device", "Scarlett"],  # before the model loads
    ):
        done = run([*SERVER, "--", *GUITARLAB, *command])
        assert done.returncode == 1
        lines = done.stderr.strip().splitlines()
        assert lines == [lines[-1]] and "'Scarlett' not found" in lines[0], done.stderr
        assert "pulse" in lines[0]  # names what would work
        assert "play" not in done.stdout + done.stderr.replace("'guitarlab devices'", "")
    assert load_manifest(corpus).empty


def test_devices_without_an_audio_server_says_so_and_fails(tmp_path):
    cards = Path("/proc/asound/cards")
    if cards.exists() and "no soundcards" not in cards.read_text():
        pytest.skip("this machine has sound cards: devices lists them")
    env = {
        **os.environ,
        "PULSE_SERVER": f"unix:{tmp_path / 'nothing'}",
        "HOME": str(tmp_path),
        "XDG_RUNTIME_DIR": str(tmp_path),
    }
    done = subprocess.run(
        [*GUITARLAB, "devices"], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip().count("\n") == 0
    assert "no audio devices" in done.stderr and "guitarlab audio-server" in done.stderr


# ---------------------------------------------------------------- staying up


def test_without_command_prints_exports_and_sigterm_removes_everything(can_start):
    server = subprocess.Popen(
        SERVER, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        lines = [server.stdout.readline() for _ in range(6)]
        exports = dict(
            line.removeprefix("export ").strip().split("=", 1)
            for line in lines
            if line.startswith("export ")
        )
        assert set(exports) == {
            "PULSE_SERVER",
            "PULSE_CLIENTCONFIG",
            "XDG_RUNTIME_DIR",
            "HOME",
            "GUITARLAB_SOURCE_DEVICE",
        }
        assert "--device pulse" in lines[-1]
        folder = Path(exports["HOME"])
        assert folder.is_dir() and exports["PULSE_SERVER"] == f"unix:{folder / 'native'}"
        # the printed lines are all another shell needs
        listed = subprocess.run(
            [*GUITARLAB, "devices"],
            capture_output=True,
            text=True,
            env={**os.environ, **exports},
            timeout=60,
            check=False,
        )
        assert listed.returncode == 0 and "guitarlab_in" in listed.stdout
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
        assert not folder.exists()
        gone = subprocess.run(
            ["pactl", "info"], env={**os.environ, **exports}, capture_output=True, check=False
        )
        assert gone.returncode != 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


# ---------------------------------------------------------------- the loop


def test_loopback_returns_the_output_identical_at_one_fixed_lag():
    from guitarlab.recorder import devices

    server = audio_server_or_skip(RATE, loopback=True)
    try:
        assert server.default_output == "guitarlab_in"
        played, starts, length = bursts(4.0)
        recorded = play_and_capture(played)
    finally:
        server.stop()
    devices.reinitialize()
    whole, lags = burst_lags(recorded, played, starts, length)
    assert lags == [whole] * len(starts)  # one lag from the first burst to the last
    rec = recorded[max(whole, 0) :]
    ref = played[max(-whole, 0) :]
    n = min(rec.size, ref.size)
    assert np.corrcoef(rec[:n], ref[:n])[0, 1] >= 0.99


def test_through_crunch_distorts_the_return_but_keeps_it_aligned():
    """The tone chain distorts the return, and a stream comes back at one lag.

    A software loop keeps its lag only while the machine keeps up: a stall of the loop
    process (a test machine's cores busy with other work) shifts it for the rest of the
    stream (reamp measures the lag of every take, so it still aligns). So up to three
    fresh servers are tried and one stream must hold one lag from edge to edge; every
    one must be distorted."""
    from guitarlab.through import through_command

    t = np.arange(int(4.0 * RATE)) / RATE
    gate = (np.sin(2 * np.pi * 2.0 * t) > 0).astype(np.float32)  # 250 ms on, 250 ms off
    played = (0.3 * np.sin(2 * np.pi * 220.0 * t) * gate).astype(np.float32)
    edges = np.flatnonzero(np.diff(gate) > 0)[1:-1]
    spreads = []
    for _ in range(3):
        server = audio_server_or_skip(RATE, through=through_command("crunch", rate=RATE))
        try:
            assert server.default_output == "guitarlab_out" and server.through.poll() is None
            recorded = play_and_capture(played)
            through = server.through
        finally:
            server.stop()
        assert through.poll() is not None  # the loop stops with the server
        assert rms(recorded) > 0.05
        # odd harmonics of a clipped sine: far above the dry sine's
        assert harmonics(recorded) > 20 * harmonics(played) + 0.05
        # aligned: every gate edge comes back at the same lag
        envelope = np.convolve(np.abs(recorded), np.ones(480) / 480, mode="same")
        threshold = 0.5 * envelope.max()
        lag = int(np.argmax(envelope[edges[0] :] > threshold))  # the first edge's round trip
        rel = [int(np.argmax(envelope[e + lag - 2400 :] > threshold)) - 2400 for e in edges]
        spreads.append(rel)
        if max(rel) - min(rel) <= 2:
            break
    assert max(spreads[-1]) - min(spreads[-1]) <= 2, spreads  # the same lag, edge after edge


def harmonics(x: np.ndarray) -> float:
    """Energy at the 3rd and 5th harmonic of 220 Hz over the fundamental's."""
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    freqs = np.fft.rfftfreq(x.size, 1 / RATE)

    def band(f: float) -> float:
        return spectrum[(freqs > f - 20) & (freqs < f + 20)].max()

    return (band(660.0) + band(1100.0)) / band(220.0)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x))))


def test_the_amp_keeps_its_state_from_block_to_block():
    """Block by block through the loop equals the whole signal through the chain at once:
    no clicks or resets at block edges (a stateless loop would restart filters each block)."""
    from guitarlab.augment.presets import chain_from_preset, get_presets
    from guitarlab.recorder.loopback import BLOCK_FRAMES, BlockLoop
    from guitarlab.through import preset_process

    t = np.arange(RATE // 2) / RATE
    signal_in = (0.3 * np.sin(2 * np.pi * 196.0 * t)).astype(np.float32)
    board = chain_from_preset(get_presets(["crunch"])[0])
    board.reset()
    loop = BlockLoop(preset_process("crunch", rate=RATE))
    streamed = np.concatenate(
        [
            loop(np.stack([block, block], axis=1))  # the monitor is stereo
            for block in np.split(signal_in, signal_in.size // BLOCK_FRAMES)
        ]
    )
    board.reset()
    whole = np.asarray(board(signal_in.reshape(1, -1), float(RATE)), np.float32).reshape(-1)
    assert loop.frames == signal_in.size and streamed.shape == signal_in.shape
    np.testing.assert_allclose(streamed, np.clip(whole, -1, 1), atol=1e-4)
    assert rms(streamed - signal_in) > 0.05  # and it is not the dry signal


def test_predict_live_inside_hears_the_played_file(can_start, tmp_path):
    """The README's live step: a features run (two tones, trained in seconds) labels what
    ``--play`` feeds the virtual input, a high tone high and a low one low."""
    from click.testing import CliRunner

    from guitarlab.cli import cli
    from guitarlab.corpus.intake import import_folder
    from guitarlab.datasets.build import build_dataset

    rate, rng = 16000, np.random.default_rng(0)
    t = np.arange(2 * rate) / rate
    wavs = tmp_path / "wavs"
    wavs.mkdir()
    for name, freq_hz in (("low", 110.0), ("high", 880.0)):
        for k in range(6):  # levels and noise floors vary, so only the pitch tells them apart
            audio = rng.uniform(0.05, 0.3) * np.sin(2 * np.pi * freq_hz * (1 + 0.01 * k) * t)
            audio += rng.uniform(0, 0.01) * rng.standard_normal(t.size)
            sf.write(wavs / f"{name}_p{k}.wav", audio.astype(np.float32), rate, subtype="PCM_16")
    import_folder(wavs, tmp_path / "corpus", pattern="{guitar}_{phrase}", progress=False)
    build_dataset(
        tmp_path / "corpus",
        tmp_path / "dataset",
        label="guitar",
        window=8000,
        hop=4000,
        test_where="phrase == 'p5'",
        val_where="phrase == 'p4'",
        progress=False,
    )
    run_dir = tmp_path / "run"
    trained = CliRunner().invoke(
        cli,
        ["train", "--dataset", str(tmp_path / "dataset"), "--out", str(run_dir)]
        + ["--model", "features"],
    )
    assert trained.exit_code == 0, trained.output
    for name, freq_hz in (("high", 900.0), ("low", 112.0)):
        played = tmp_path / f"{name}.wav"
        sf.write(played, (0.2 * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32), rate)
        done = run(
            [*SERVER, "--play", str(played), "--", *GUITARLAB, "predict", str(run_dir)]
            + ["--device", "pulse", "--seconds", "2.5"]
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("listening on pulse at 16000 Hz")
        labels = [line.split()[2] for line in done.stdout.splitlines()[1:]]
        assert len(labels) >= 2 and set(labels) == {name}, done.stdout
