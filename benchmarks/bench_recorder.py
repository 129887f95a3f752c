"""The recorder through a real audio server: lost frames, writer CPU share, input latency.

A 60 s take (quick: 5 s) of a known noise-like signal is played into the PulseAudio
null sink while ``record_take`` captures its monitor, the path a user's interface takes.
Figures are ratios against references from the same run: frames kept over frames
requested (goal 1.0, i.e. 0 dropped), frames received over what the wall clock says
should have arrived (goal ~1.0), writer-thread CPU seconds over audio seconds (goal
< 0.05) and the round-trip latency of the test path (output buffer, server, input
buffer) found by cross-correlation, in blocks of 1024 frames.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from benchmarks.common import Row

RATE = 48000
BLOCK_FRAMES = 1024


def _known_signal(seconds: float) -> np.ndarray:
    """Band-limited noise at -15 dBFS RMS with 20 ms of leading silence (one clear peak in xcorr)."""
    rng = np.random.default_rng(7)
    noise = rng.standard_normal(int(seconds * RATE))
    spectrum = np.fft.rfft(noise)
    freqs = np.fft.rfftfreq(noise.size, 1 / RATE)
    spectrum[(freqs < 80) | (freqs > 6000)] = 0
    audio = np.fft.irfft(spectrum, noise.size)
    audio *= 10 ** (-15 / 20) / np.sqrt(np.mean(audio**2))
    audio[: int(0.02 * RATE)] = 0.0
    return audio.astype(np.float32)


def run(quick: bool) -> list[Row]:
    from scipy.signal import correlate

    from guitarlab.corpus.audio import read_audio
    from guitarlab.corpus.manifest import init_corpus
    from guitarlab.recorder.server import audio_server
    from guitarlab.recorder.session import record_take

    seconds = 5.0 if quick else 60.0
    played = _known_signal(seconds + 1.0)
    stats_box = []
    with tempfile.TemporaryDirectory() as tmp, audio_server(rate=RATE):
        corpus = init_corpus(Path(tmp) / "corpus")
        row = record_take(
            corpus,
            guitar="bench",
            phrase="backing",
            seconds=seconds,
            rate=RATE,
            device="pulse",
            count_in=0,
            click=False,
            source_audio=played,
            on_stats=stats_box.append,
        )
        recorded, _ = read_audio(corpus / row["path"])
    stats = stats_box[0]
    window = recorded[: 2 * RATE]
    lag = int(np.argmax(correlate(window, played[: 2 * RATE], mode="full", method="fft")))
    lag -= 2 * RATE - 1
    rec = recorded[max(lag, 0) :]
    ref = played[max(-lag, 0) : max(-lag, 0) + len(rec)]
    rec = rec[: len(ref)]
    # per second at the first lag: a second below 0.99 had a gap in playback or capture
    seconds_ok = [
        np.corrcoef(rec[i : i + RATE], ref[i : i + RATE])[0, 1] >= 0.99
        for i in range(int(0.05 * RATE), len(rec) - RATE + 1, RATE)
    ]
    requested = int(seconds * RATE)
    lossy = sum(d.kind != "stall" for d in stats.dropouts)
    name = "recorder"
    notes = f"{seconds:.0f} s take through a PulseAudio null sink"
    return [
        Row(
            name,
            "frames kept / frames requested",
            float(requested - stats.dropped_frames),
            "frames",
            "frames requested",
            float(requested),
            "1.0 (0 dropped)",
            f"{stats.dropped_frames} dropped; {lossy} lossy and {len(stats.dropouts) - lossy} late-but-complete event(s); {notes}",
        ),
        Row(
            name,
            "frames received / frames the wall clock expects",
            float(stats.frames_in_span),
            "frames",
            "wall time first to last block x rate",
            float(stats.clock_span_s * RATE),
            "~1.0",
            "frames after the first block over the time they took to arrive",
        ),
        Row(
            name,
            "writer CPU seconds / audio seconds",
            float(max(stats.writer_cpu_s, 1e-6)),
            "s",
            "audio seconds",
            float(seconds),
            "< 0.05",
            "thread CPU time of the writer thread (queue -> libsndfile, meter, clock check)",
        ),
        Row(
            name,
            "round-trip latency (played -> recorded) by correlation",
            float(max(lag, 1)) / RATE * 1000.0,
            "ms",
            "one 1024-frame block",
            BLOCK_FRAMES / RATE * 1000.0,
            "a few blocks",
            f"{sum(seconds_ok)}/{len(seconds_ok)} one-second windows correlate >= 0.99 with what was played",
        ),
    ]
