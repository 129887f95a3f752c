"""The amp in the virtual loop: blocks of the output's monitor, processed, played into the input.

``guitarlab audio-server --through crunch`` stands a pedalboard chain in for the amp a
player would reamp through: what is played to the virtual output (``guitarlab_out``)
is read back from its monitor, run through a stateful process block by block (like an
amp, it keeps its filter and envelope state between blocks) and played into the virtual
input (``guitarlab_in``). The core (:class:`BlockLoop`) is pure numpy; :func:`run_loop`
is the thin edge with one full-duplex stream, so input and output keep one clock and
the round trip stays constant for the life of the loop.

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

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from guitarlab.corpus.errors import RecorderError

MONITOR_DEVICE = "guitarlab_out_monitor"
"""ALSA device (defined by the audio server) that records what is played to the output."""

INPUT_DEVICE = "guitarlab_in"
"""ALSA device (defined by the audio server) that plays into the virtual input."""

BLOCK_FRAMES = 512
"""Frames per block: ~11 ms at 48 kHz, small next to the stream buffers."""

Process = Callable[[np.ndarray], np.ndarray]


@dataclass
class BlockLoop:
    """Mixes each block to mono, runs it through ``process`` and returns it, same length.

    Why a class: the process keeps its state between blocks (a distortion's filters,
    a limiter's envelope, a cabinet's convolution tail), and the counters tell whether
    the stream ever lost a block (which would shift the round trip).
    """

    process: Process | None = None
    frames: int = 0
    blocks: int = 0
    xruns: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __call__(self, block: np.ndarray) -> np.ndarray:
        """``(frames,)`` or ``(frames, channels)`` in, mono float32 ``(frames,)`` out."""
        block = np.asarray(block, dtype=np.float32)
        mono = block.mean(axis=1) if block.ndim == 2 else block.reshape(-1)
        out = mono if self.process is None else np.asarray(self.process(mono), np.float32)
        out = out.reshape(-1)
        if out.size != mono.size:  # a process that delays by dropping samples would drift
            fixed = np.zeros(mono.size, np.float32)
            fixed[: min(out.size, mono.size)] = out[: mono.size]
            out = fixed
        out = np.nan_to_num(out, nan=0.0, posinf=1.0, neginf=-1.0)
        with self._lock:
            self.frames += mono.size
            self.blocks += 1
        return np.clip(out, -1.0, 1.0)


def run_loop(
    process: Process | None,
    *,
    sample_rate: int,
    stop: threading.Event,
    source: str = MONITOR_DEVICE,
    sink: str = INPUT_DEVICE,
    block_frames: int = BLOCK_FRAMES,
    on_ready: Callable[[], None] | None = None,
) -> BlockLoop:
    """Run the loop from ``source`` to ``sink`` until ``stop`` is set; returns its counters.

    One full-duplex stream carries both directions, so what goes in and what comes out
    share one clock: the loop adds a fixed delay for as long as it runs (``xruns``
    counts the blocks where the stream reported an overflow or underflow).
    """
    from guitarlab.recorder import devices

    inp = devices.resolve_device(source, kind="input")
    out = devices.resolve_device(sink, kind="output")
    loop = BlockLoop(process)

    def callback(indata, outdata, frames, time_info, status) -> None:
        if status.input_overflow or status.output_underflow:
            loop.xruns += 1
        outdata[:] = loop(indata).reshape(-1, 1)

    stream = devices.open_duplex(
        inp,
        out,
        sample_rate=sample_rate,
        channels=(min(2, inp.max_input_channels), 1),
        callback=callback,
        block_frames=block_frames,
    )
    try:
        stream.start()
    except Exception as exc:
        devices.stop_streams([stream])
        raise RecorderError(
            f"cannot start the loop from {source!r} to {sink!r} ({' '.join(str(exc).split())})"
        ) from exc
    try:
        if on_ready is not None:
            on_ready()
        while not stop.wait(0.2):
            if not devices.stream_running(stream):
                raise RecorderError(
                    f"the loop from {source!r} to {sink!r} stopped (its audio server went away)"
                )
    finally:
        devices.stop_streams([stream])
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
