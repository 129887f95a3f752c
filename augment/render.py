"""Render audio through a plugin chain: arrays in, arrays out, nothing on disk.

A render must stay time-aligned with its source sample for sample (the leak-free split
holds out the same time span of every render of a take), so:

- the output has exactly the input's frames and channels;
- plugins' reported latency is compensated (pedalboard does this when ``reset=True``);
- a cabinet IR (a fully wet Convolution step of a ``ToneChain``) is applied here as an
  FFT convolution of the whole signal, and its bulk delay (the IR's peak) is removed by
  keeping the convolution from that sample on;
- tails of delays, reverbs and IRs that would run past the end are computed on
  ``tail_s`` seconds of padding (none by default) and trimmed at the source's end.

The FFT convolution gives pedalboard's Convolution output (same IR normalisation) within
float rounding, several times faster than the plugin on Linux builds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pedalboard

from guitarlab.corpus.errors import AugmentError

if TYPE_CHECKING:
    from guitarlab.augment.presets import ImpulseResponse

# pedalboard (JUCE) scales an IR to 0.125 / sqrt(energy of its loudest channel)
IR_NORMALISATION = 0.125


def _planar(audio: np.ndarray) -> np.ndarray:
    """``(frames,)`` or ``(frames, channels)`` -> float32 ``(channels, frames)``."""
    if audio.ndim == 1:
        return audio[np.newaxis, :]
    return np.ascontiguousarray(audio.T)


def ir_taps(ir: ImpulseResponse, sample_rate: int) -> np.ndarray:
    """The IR as the convolution uses it: at ``sample_rate``, normalised like pedalboard's."""
    taps = ir.samples.astype(np.float64)
    if ir.sample_rate != sample_rate:
        from scipy import signal  # here: scipy.signal takes ~1 s to import, IRs are rare

        step = np.gcd(int(sample_rate), int(ir.sample_rate))
        taps = signal.resample_poly(taps, sample_rate // step, ir.sample_rate // step, axis=1)
    energy = float(np.max(np.sum(taps**2, axis=1)))
    return (taps * (IR_NORMALISATION / np.sqrt(energy))).astype(np.float32)


def convolve_aligned(planar: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Convolve ``(channels, frames)`` with ``taps`` and drop the IR's bulk delay.

    A mono IR applies to every channel; an IR with as many channels as the audio applies
    channel by channel; otherwise its first channel is used.
    """
    if taps.shape[0] != planar.shape[0]:
        taps = taps[:1]
    from scipy import signal  # here, not at import: augment --help need not load it

    peak = int(np.argmax(np.max(np.abs(taps), axis=0)))
    wet = signal.oaconvolve(planar, taps, mode="full", axes=1)
    return np.ascontiguousarray(wet[:, peak : peak + planar.shape[1]], dtype=np.float32)


def _process(plugins: list, planar: np.ndarray, sample_rate: int) -> np.ndarray:
    if not plugins:
        return planar
    out = pedalboard.Pedalboard(plugins)(planar, float(sample_rate), reset=True)
    return np.asarray(out, dtype=np.float32)


def render(
    audio: np.ndarray,
    sample_rate: int,
    chain: pedalboard.Pedalboard,
    *,
    tail_s: float = 0.0,
) -> np.ndarray:
    """Process ``audio`` through ``chain`` and return it time-aligned, same shape as the input.

    Parameters
    ----------
    audio : np.ndarray
        ``(frames,)`` mono or ``(frames, channels)``, as ``read_audio`` returns it.
    sample_rate : int
        Rate of ``audio`` in Hz; plugins and IRs adapt to it.
    chain : pedalboard.Pedalboard
        Usually ``chain_from_preset(preset)`` (a ``ToneChain``, whose cabinet IRs are
        convolved here with their delay removed); any Pedalboard works.
    tail_s : float
        Zeros processed after the end and then trimmed, for plugins that only emit their
        last samples when fed more input.

    Returns
    -------
    np.ndarray
        float32, the same shape as ``audio``.

    Examples
    --------
    >>> import numpy as np, pedalboard
    >>> x = np.zeros(1000, dtype=np.float32); x[10] = 0.5
    >>> y = render(x, 44100, pedalboard.Pedalboard([pedalboard.Gain(gain_db=6)]))
    >>> y.shape, int(np.argmax(y))
    ((1000,), 10)
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim not in (1, 2) or audio.shape[0] == 0:
        raise AugmentError(
            f"audio of shape {audio.shape} cannot be rendered; give (frames,) or (frames, channels) with frames > 0"
        )
    if not np.all(np.isfinite(audio)):
        raise AugmentError("audio holds NaN or infinite samples; re-export the source file")
    if int(sample_rate) <= 0:
        raise AugmentError(f"sample_rate {sample_rate} must be a positive number of Hz")
    sample_rate = int(sample_rate)
    planar = _planar(audio)
    frames = planar.shape[1]
    pad = max(0, int(round(tail_s * sample_rate)))
    if pad:
        planar = np.pad(planar, ((0, 0), (0, pad)))
    plugins = list(chain)
    irs = getattr(chain, "irs", None) or {}
    start = 0
    for index in sorted(irs):
        planar = _process(plugins[start:index], planar, sample_rate)
        planar = convolve_aligned(planar, ir_taps(irs[index], sample_rate))
        start = index + 1
    planar = _process(plugins[start:], planar, sample_rate)[:, :frames]
    check_output(planar)
    return np.ascontiguousarray(planar[0] if audio.ndim == 1 else planar.T)


# a render with more than this share of its samples at full scale is garbage, not a tone
FULL_SCALE_SHARE = 0.5


def check_output(audio: np.ndarray) -> None:
    """Refuse a render that is NaN/infinite or mostly at full scale (``AugmentError``)."""
    if not np.all(np.isfinite(audio)):
        raise AugmentError(
            "the chain's output holds NaN or infinite samples; check the preset's values"
        )
    if audio.size and np.mean(np.abs(audio) >= 0.999) > FULL_SCALE_SHARE:
        share = float(np.mean(np.abs(audio) >= 0.999))
        raise AugmentError(
            f"{share:.0%} of the chain's output is at full scale; lower the preset's "
            "gain_db/drive_db (or the input level)"
        )
