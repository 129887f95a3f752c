"""Render audio through a plugin chain: arrays in, arrays out, nothing on disk.

A render must stay time-aligned with its source sample for sample (the leak-free split
holds out the same time span of every render of a take), so:

- the output has exactly the input's frames and channels;
- plugins' reported latency is compensated (pedalboard does this when ``reset=True``);
- the bulk delay of fully wet impulse responses (``ToneChain.delay_s``) is removed by
  padding the input with that many zeros, processing, and dropping the first samples;
- tails of delays and reverbs that would run past the end are cut at the source's end.
"""

from __future__ import annotations

import numpy as np
import pedalboard

from guitarlab.errors import AugmentError


def _planar(audio: np.ndarray) -> np.ndarray:
    """``(frames,)`` or ``(frames, channels)`` -> float32 ``(channels, frames)``."""
    if audio.ndim == 1:
        return audio[np.newaxis, :]
    return np.ascontiguousarray(audio.T)


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
        Usually ``chain_from_preset(preset)``; its ``delay_s`` (if any) is removed.
    tail_s : float
        Extra zeros processed after the end (then trimmed), for plugins that only emit
        their last samples when fed more input.

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
    planar = _planar(audio)
    frames = planar.shape[1]
    shift = int(round(float(getattr(chain, "delay_s", 0.0)) * sample_rate))
    pad = shift + max(0, int(round(tail_s * sample_rate)))
    if pad:
        planar = np.pad(planar, ((0, 0), (0, pad)))
    out = chain(planar, float(sample_rate), reset=True)
    out = np.asarray(out, dtype=np.float32)[:, shift : shift + frames]
    return np.ascontiguousarray(out[0] if audio.ndim == 1 else out.T)
