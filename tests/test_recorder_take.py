"""The take writer without a device: blocks fed to its callback from a thread, as PortAudio does."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
import wave
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf

from guitarlab.corpus.errors import RecorderError
from guitarlab.recorder.take import ClockCheck, Stall, TakeWriter, open_streaming_wav, repair_header

RATE = 48000
BLOCK = 1024


def feed(writer: TakeWriter, audio: np.ndarray, *, realtime: bool = False, overflow_at=()):
    """Call the writer's callback block by block from another thread (like the audio thread)."""

    def run():
        began = time.monotonic()
        for index, start in enumerate(range(0, len(audio), BLOCK)):
            block = audio[start : start + BLOCK].reshape(-1, 1)
            status = SimpleNamespace(input_overflow=index in overflow_at)
            writer.callback(block, len(block), None, status)
            if realtime:  # sleep to fixed deadlines, so a busy machine does not add up lateness
                time.sleep(max(0.0, began + (start + len(block)) / RATE - time.monotonic()))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()


def ramp(seconds: float) -> np.ndarray:
    rng = np.random.default_rng(0)
    return (0.5 * rng.uniform(-1, 1, int(seconds * RATE))).astype(np.float32)


def test_blocks_reach_the_file_exactly_and_only_after_arm(tmp_path):
    path = tmp_path / "take.wav"
    writer = TakeWriter(path, sample_rate=RATE, max_frames=RATE)
    writer.start()
    feed(writer, np.ones(4 * BLOCK, np.float32))  # before arm: the count-in, dropped
    writer.arm()
    audio = ramp(1.5)
    feed(writer, audio)
    stats = writer.finish()
    written, rate = sf.read(path, dtype="float32")
    info = sf.info(path)
    assert (rate, info.subtype, len(written)) == (RATE, "PCM_24", RATE)  # stops at max_frames
    np.testing.assert_allclose(written, audio[:RATE], atol=2**-22)
    assert stats.frames_written == RATE and stats.dropouts == []
    assert stats.writer_cpu_s >= 0.0


def test_header_is_valid_while_the_take_is_still_open(tmp_path):
    """What a SIGKILL leaves: the file as it is before close, readable by every reader."""
    path = tmp_path / "open.wav"
    writer = TakeWriter(path, sample_rate=RATE)
    writer.start()
    writer.arm()
    feed(writer, ramp(0.5))
    deadline = time.monotonic() + 5
    while writer.stats.frames_written < 0.5 * RATE and time.monotonic() < deadline:
        time.sleep(0.01)
    snapshot = tmp_path / "snapshot.wav"
    shutil.copy(path, snapshot)  # copy while the writer still holds the file open
    writer.finish()
    assert sf.info(snapshot).frames == int(0.5 * RATE)
    with wave.open(str(snapshot)) as handle:  # Python's wave trusts only the header
        assert handle.getnframes() == int(0.5 * RATE)


def test_repair_header_of_a_file_killed_without_auto_update(tmp_path):
    path = tmp_path / "killed.wav"
    script = (
        "import soundfile as sf, numpy as np, os, signal, sys\n"
        f"f = sf.SoundFile({str(path)!r}, 'w', samplerate={RATE}, channels=1, subtype='PCM_24')\n"
        f"f.write(np.full({RATE}, 0.25, np.float32)); f.flush()\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    subprocess.run([sys.executable, "-c", script], check=False)
    with pytest.raises(wave.Error), wave.open(str(path)) as handle:
        handle.getnframes()
    assert repair_header(path) == RATE
    with wave.open(str(path)) as handle:
        assert handle.getnframes() == RATE
    with pytest.raises(RecorderError, match="cannot repair"):
        repair_header(tmp_path / "missing.wav")


def test_writer_stall_with_a_short_queue_is_a_dropout_with_silence_in_the_gap(tmp_path):
    path = tmp_path / "stalled.wav"
    writer = TakeWriter(
        path, sample_rate=RATE, queue_s=0.1, stall=Stall("writer", at_s=0.2, seconds=0.5)
    )
    writer.start()
    writer.arm()
    audio = np.full(int(1.5 * RATE), 0.5, np.float32)
    feed(writer, audio, realtime=True)
    stats = writer.finish()
    lost = [d for d in stats.dropouts if d.kind == "queue_full"]
    assert lost and stats.dropped_frames > 0.2 * RATE
    assert lost[0].at_s == pytest.approx(0.35, abs=0.2)
    written, _ = sf.read(path, dtype="float32")
    assert len(written) == len(audio)  # the timeline is kept
    assert np.count_nonzero(written == 0.0) == sum(d.missing_frames for d in lost)


def test_driver_overflow_flags_are_counted(tmp_path):
    writer = TakeWriter(tmp_path / "o.wav", sample_rate=RATE)
    writer.start()
    writer.arm()
    feed(writer, ramp(0.5), overflow_at=(3, 10))
    stats = writer.finish()
    assert stats.overflow_blocks == 2
    assert [d.kind for d in stats.dropouts] == ["overflow", "overflow"]
    assert stats.dropouts[0].at_s == pytest.approx(3 * BLOCK / RATE)


def test_clock_check_steady_lost_and_late():
    def run(arrivals):
        clock = ClockCheck(RATE)
        received = 0
        for frames, t in arrivals:
            received += frames
            clock.update(received, t)
        return clock.finish()

    block_s = BLOCK / RATE
    steady = [(BLOCK, i * block_s) for i in range(200)]
    assert run(steady) == []
    # 0.5 s of audio never arrives at 1 s: received stays behind the clock for good
    lost = [(BLOCK, i * block_s + (0.5 if i * block_s > 1.0 else 0.0)) for i in range(200)]
    events = run(lost)
    assert [e.kind for e in events] == ["clock"]
    assert events[0].missing_frames == pytest.approx(0.5 * RATE, rel=0.05)
    assert events[0].at_s == pytest.approx(1.0, abs=0.05)
    # 0.5 s late, then a burst catches up: a stall, nothing lost
    late = [
        (BLOCK, max(i * block_s, 1.5) if i * block_s > 1.0 else i * block_s) for i in range(200)
    ]
    events = run(late)
    assert [e.kind for e in events] == ["stall"]
    assert events[0].late_s == pytest.approx(0.5, abs=0.05) and events[0].missing_frames == 0


def test_bad_subtype_and_folder_are_one_line_errors(tmp_path):
    with pytest.raises(RecorderError, match="cannot create the take"):
        open_streaming_wav(tmp_path / "x.wav", sample_rate=RATE, subtype="VORBIS")
    with pytest.raises(RecorderError, match="must be 'writer' or 'callback'"):
        TakeWriter(tmp_path / "y.wav", sample_rate=RATE, stall=Stall("disk", 0, 0))


def test_disk_full_is_one_clear_error_and_the_audio_so_far_is_kept(tmp_path):
    """A file-size limit makes writes fail the way a full disk does."""
    path = tmp_path / "full.wav"
    script = f"""
import resource, signal, threading
from types import SimpleNamespace
import numpy as np
from guitarlab.recorder.take import TakeWriter
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
writer = TakeWriter({str(path)!r}, sample_rate={RATE})
writer.start()
resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
writer.arm()
block = np.full(({BLOCK}, 1), 0.25, np.float32)
for _ in range(60):
    writer.callback(block, {BLOCK}, None, SimpleNamespace(input_overflow=False))
stats = writer.finish()
print(stats.error)
print(stats.frames_written)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    error, frames = done.stdout.strip().splitlines()
    assert error.startswith(f"writing {path} failed after") and "is the disk full?" in error
    assert 0 < int(frames) < 60 * BLOCK
    audio, _ = sf.read(path, dtype="float32")  # the audio before the failure is readable
    assert len(audio) >= int(frames) - BLOCK and np.allclose(audio[:1000], 0.25, atol=1e-6)
