"""The amp in the virtual loop: what the output plays, processed, played into the input.

``guitarlab audio-server --through crunch`` stands a pedalboard chain in for the amp a
player would reamp through: what is played to the virtual output (``guitarlab_out``)
is recorded from its monitor, run through a stateful process block by block (like an
amp, it keeps its filter and envelope state between blocks) and played into the virtual
input (``guitarlab_in``). The core (:class:`BlockLoop`) is pure numpy; :func:`run_loop`
is the thin edge, two PulseAudio streams through ``parec`` and ``pacat``.

Why not PortAudio here: through ALSA's pulse plugin the loop's round trip jumped by up
to a second whenever a new stream joined the output (the server re-renders it, a
"rewind"); PulseAudio's own clients take rewinds in their stride, and every sample read
is written once, so the loop adds one fixed delay (``PLAYBACK_LATENCY_MS`` plus a
block) for as long as it runs.

The process is any callable ``block -> block`` (mono float32, same length); the
recorder does not build tone chains itself (``guitarlab.through`` builds one from an
augment preset), so this module depends on the corpus only.

Examples
--------
>>> import numpy as np
>>> loop = BlockLoop(lambda block: 2.0 * block)
>>> loop(np.full((4, 2), 0.25, np.float32)).tolist()
[0.5, 0.5, 0.5, 0.5]
>>> loop.frames, loop.blocks
(4, 1)
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from guitarlab.corpus.errors import RecorderError

OUTPUT_MONITOR = "guitarlab_out.monitor"
"""PulseAudio source that hears what is played to the virtual output."""

INPUT_SINK = "guitarlab_in"
"""PulseAudio sink (and ALSA device) that plays into the virtual input."""

INPUT_DEVICE = INPUT_SINK

BLOCK_FRAMES = 480
"""Frames per block: 10 ms at 48 kHz."""

PLAYBACK_LATENCY_MS = 200
"""The loop's playback buffer: room for a busy machine (an underrun would move the lag)."""

Process = Callable[[np.ndarray], np.ndarray]


@dataclass
class BlockLoop:
    """Mixes each block to mono, runs it through ``process`` and returns it, same length.

    Why a class: the process keeps its state between blocks (a distortion's filters,
    a limiter's envelope, a cabinet's convolution tail), and the counters say how much
    went through.
    """

    process: Process | None = None
    frames: int = 0
    blocks: int = 0

    def __call__(self, block: np.ndarray) -> np.ndarray:
        """``(frames,)`` or ``(frames, channels)`` in, mono float32 ``(frames,)`` out."""
        block = np.asarray(block, dtype=np.float32)
        mono = block.mean(axis=1) if block.ndim == 2 else block.reshape(-1)
        out = mono if self.process is None else np.asarray(self.process(mono), np.float32)
        out = out.reshape(-1)
        if out.size != mono.size:  # a process that dropped or added samples would drift
            fixed = np.zeros(mono.size, np.float32)
            fixed[: min(out.size, mono.size)] = out[: mono.size]
            out = fixed
        out = np.nan_to_num(out, nan=0.0, posinf=1.0, neginf=-1.0)
        self.frames += mono.size
        self.blocks += 1
        return np.clip(out, -1.0, 1.0)


def _pulse_command(tool: str, device: str, sample_rate: int, latency_ms: int) -> list[str]:
    return [
        tool,
        f"--device={device}",
        "--raw",
        "--format=float32le",
        f"--rate={int(sample_rate)}",
        "--channels=1",
        f"--latency-msec={int(latency_ms)}",
    ]


def run_loop(
    process: Process | None,
    *,
    sample_rate: int,
    stop: threading.Event,
    source: str = OUTPUT_MONITOR,
    sink: str = INPUT_SINK,
    block_frames: int = BLOCK_FRAMES,
    playback_latency_ms: int = PLAYBACK_LATENCY_MS,
    on_ready: Callable[[], None] | None = None,
) -> BlockLoop:
    """Run the loop from PulseAudio ``source`` to ``sink`` until ``stop`` is set.

    Returns its counters. The server is the one ``PULSE_SERVER`` names (the audio
    server's environment). Raises ``RecorderError`` when either stream ends on its own.
    """
    loop = BlockLoop(process)
    streams: list[subprocess.Popen] = []
    try:
        try:
            record = subprocess.Popen(
                _pulse_command("parec", source, sample_rate, 10),
                stdout=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
            )
            streams.append(record)
            play = subprocess.Popen(
                _pulse_command("pacat", sink, sample_rate, playback_latency_ms),
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
            )
            streams.append(play)
        except OSError as exc:
            raise RecorderError(
                f"cannot start {exc.filename or 'parec/pacat'} ({exc.strerror}); install pulseaudio-utils"
            ) from exc
        assert record.stdout is not None and play.stdin is not None
        size = int(block_frames) * 4
        while not stop.is_set():
            data = record.stdout.read(size)
            if len(data) < size:
                if stop.is_set():
                    break
                raise RecorderError(
                    f"the loop's recording of {source!r} ended (its audio server went away)"
                )
            try:
                play.stdin.write(loop(np.frombuffer(data, np.float32)).tobytes())
                play.stdin.flush()
            except (BrokenPipeError, OSError) as exc:
                raise RecorderError(
                    f"the loop's playback into {sink!r} ended (its audio server went away)"
                ) from exc
            if loop.blocks == 1 and on_ready is not None:
                on_ready()  # audio flows: what is played from now on comes back
    finally:
        for stream in streams:
            if stream.poll() is None:
                stream.terminate()
            try:
                stream.wait(timeout=5)
            except subprocess.TimeoutExpired:
                stream.kill()
                stream.wait()
    return loop


def looped_block(audio: np.ndarray, start: int, frames: int) -> np.ndarray:
    """``frames`` samples of ``audio`` from ``start``, wrapping round: a riff played on repeat.

    >>> looped_block(np.arange(4, dtype=np.float32), 3, 6).tolist()
    [3.0, 0.0, 1.0, 2.0, 3.0, 0.0]
    """
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if audio.size == 0:
        return np.zeros(frames, np.float32)
    index = (start + np.arange(frames)) % audio.size
    return audio[index]


def start_player(audio: np.ndarray, *, sample_rate: int, device: str = INPUT_DEVICE):
    """Play mono ``audio`` on repeat into ``device`` (the virtual input): the guitar.

    Returns the running stream; stop it with ``devices.stop_streams([stream])``.
    """
    from guitarlab.recorder import devices

    out = devices.resolve_device(device, kind="output")
    position = [0]

    def callback(outdata, frames, time_info, status) -> None:
        outdata[:] = looped_block(audio, position[0], frames).reshape(-1, 1)
        position[0] += frames

    stream = devices.open_output(out, sample_rate=sample_rate, channels=1, callback=callback)
    stream.start()
    return stream
