"""Generate the cabinet impulse response the built-in presets use (``ir/cab_4x12.wav``).

The IR is synthesized, not captured, so the project can ship and regenerate it without
licensing questions: the magnitude response of a cascade of biquads shaped like a
closed-back 4x12 guitar cabinet (low-end resonance, a mid scoop, a presence peak and a
steep roll-off above 5 kHz, where a speaker cone stops reproducing), made into a
linear-phase FIR. Linear phase delays every frequency by the same number of samples
(the IR's peak, its centre), so the renderer can remove that delay exactly and a
render stays time-aligned with its source whatever the guitar plays. The IR is scaled
to unit energy (pedalboard's Convolution normalizes by energy).

Run ``python -m guitarlab.augment.make_cab_ir`` to rewrite the shipped file; the output
is deterministic, byte for byte.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy import signal
from scipy.io import wavfile

IR_DIR = Path(__file__).resolve().parent / "ir"
CAB_IR_NAME = "cab_4x12.wav"
CAB_IR_RATE = 44100
CAB_IR_FRAMES = 2048

# (kind, frequency_hz, gain_db, q): the 4x12 cabinet's broad response.
CAB_SHAPE: tuple[tuple[str, float, float, float], ...] = (
    ("highpass", 75.0, 0.0, 0.707),
    ("peak", 110.0, 4.0, 1.4),
    ("peak", 400.0, -3.0, 0.9),
    ("peak", 1200.0, 1.5, 2.0),
    ("peak", 2500.0, 4.5, 1.2),
    ("peak", 3400.0, 2.0, 3.0),
    ("lowpass", 5000.0, 0.0, 0.707),
    ("lowpass", 5500.0, 0.0, 0.9),
)


def _biquad(kind: str, frequency_hz: float, gain_db: float, q: float, rate: int) -> np.ndarray:
    """One second-order section (b0, b1, b2, 1, a1, a2) from the RBJ cookbook."""
    w0 = 2.0 * np.pi * frequency_hz / rate
    alpha = np.sin(w0) / (2.0 * q)
    cos_w0 = np.cos(w0)
    if kind == "peak":
        amp = 10.0 ** (gain_db / 40.0)
        b = [1 + alpha * amp, -2 * cos_w0, 1 - alpha * amp]
        a = [1 + alpha / amp, -2 * cos_w0, 1 - alpha / amp]
    elif kind == "lowpass":
        b = [(1 - cos_w0) / 2, 1 - cos_w0, (1 - cos_w0) / 2]
        a = [1 + alpha, -2 * cos_w0, 1 - alpha]
    elif kind == "highpass":
        b = [(1 + cos_w0) / 2, -(1 + cos_w0), (1 + cos_w0) / 2]
        a = [1 + alpha, -2 * cos_w0, 1 - alpha]
    else:
        raise ValueError(f"unknown section kind {kind!r}")
    return np.array(b + a, dtype=np.float64) / a[0]


def cab_impulse_response(
    *, sample_rate: int = CAB_IR_RATE, frames: int = CAB_IR_FRAMES
) -> np.ndarray:
    """The cabinet IR as float32 ``(frames,)``, odd length, linear phase, peak at the centre.

    Examples
    --------
    >>> ir = cab_impulse_response()
    >>> int(np.argmax(np.abs(ir))) == (ir.size - 1) // 2
    True
    """
    frames = frames - 1 if frames % 2 == 0 else frames
    sos = np.stack([_biquad(*section, sample_rate) for section in CAB_SHAPE])
    n_fft = 8 * frames
    _, response = signal.sosfreqz(sos, worN=n_fft // 2 + 1, whole=False, fs=sample_rate)
    zero_phase = np.fft.irfft(np.abs(response), n=n_fft)
    half = frames // 2
    taps = np.concatenate([zero_phase[-half:], zero_phase[: half + 1]])
    taps *= signal.windows.blackman(frames)
    taps /= np.sqrt(np.sum(taps**2))
    return taps.astype(np.float32)


def write_cab_ir(folder: str | Path = IR_DIR) -> Path:
    """Write ``cab_4x12.wav`` (32-bit float WAV) into ``folder`` and return its path.

    scipy's writer is used because libsndfile stamps float WAVs with the time of writing
    (a PEAK chunk), which would make the shipped file, and every preset hash, change.
    """
    path = Path(folder) / CAB_IR_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    wavfile.write(str(path), CAB_IR_RATE, cab_impulse_response())
    return path


if __name__ == "__main__":  # pragma: no cover
    print(write_cab_ir(sys.argv[1] if len(sys.argv) > 1 else IR_DIR))
