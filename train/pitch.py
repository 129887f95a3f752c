"""A pitch-aware view of a single note: its spectrum by harmonic number, not by hertz.

A humbucker's comb filter and the pluck position act on mode numbers: on a string of
vibrating length ``L`` a sensing point ``d`` from the bridge weights mode ``n`` by
``sin(n pi d / L)``, and two coils ``s`` apart cancel the modes near ``n = L / s``.
The same fret on another string has the same comb at the same harmonic numbers, at
other hertz (a 2 kHz notch on the low E is near 5 kHz on the high e at that fret).
A model that reads log-mel bands learns where the notch sits in hertz for the strings
it trained on; :func:`harmonic_profile` gives it the amplitudes of harmonics 1..K
instead, which stay put when the string changes.

By harmonic number the comb still moves with the fret (a notch at ``n = L / d`` moves
down an octave of harmonics as ``L`` halves at the 12th fret); where the fret is known
(a note library's manifest), :func:`profile_by_length` puts the profile on the axis
``n / L``, where a sensing point's notches stay put for every string and fret.

Pure numpy: :func:`estimate_f0` (YIN), :func:`harmonic_amplitudes`,
:func:`harmonic_profile` (both together, loudness removed) and :func:`profile_by_length`.

Examples
--------
>>> sr = 44100
>>> t = np.arange(sr) / sr
>>> note = sum(np.sin(2 * np.pi * 110.0 * k * t) / k for k in range(1, 30))
>>> round(estimate_f0(note, sr), 1)
110.0
>>> profile = harmonic_profile(note, sr, n_harmonics=4)
>>> np.round(profile - profile[0], 1).tolist()  # 1/k amplitudes: -20 log10 k dB
[0.0, -6.0, -9.5, -12.0]
"""

from __future__ import annotations

import numpy as np

__all__ = ["estimate_f0", "harmonic_amplitudes", "harmonic_profile", "profile_by_length"]

FLOOR_DB = -80.0  # harmonics above the band (or lost in the noise) read as this


def _yin_frame(x: np.ndarray, tau_min: int, tau_max: int, threshold: float) -> float:
    """YIN's period (samples, interpolated) of one frame ``x`` of ``w + tau_max`` samples."""
    w = x.size - tau_max
    n = 1 << int(np.ceil(np.log2(x.size + w)))
    r = np.fft.irfft(np.fft.rfft(x, n) * np.conj(np.fft.rfft(x[:w], n)), n)[: tau_max + 1]
    energy = np.concatenate([[0.0], np.cumsum(x * x)])
    e_tau = energy[w : w + tau_max + 1] - energy[: tau_max + 1]  # sum of x[tau : tau + w]^2
    d = energy[w] + e_tau - 2.0 * r
    d[0] = 0.0
    cumulative = np.cumsum(d[1:])
    cmnd = np.ones_like(d)
    cmnd[1:] = d[1:] * np.arange(1, tau_max + 1) / np.where(cumulative > 0, cumulative, 1.0)
    below = np.flatnonzero(cmnd[tau_min:] < threshold)
    if below.size:
        tau = tau_min + int(below[0])
        while tau + 1 <= tau_max and cmnd[tau + 1] < cmnd[tau]:
            tau += 1
    else:
        tau = tau_min + int(np.argmin(cmnd[tau_min:]))
    if 0 < tau < tau_max:  # parabolic interpolation of the dip
        a, b, c = cmnd[tau - 1], cmnd[tau], cmnd[tau + 1]
        denom = a - 2 * b + c
        return tau + (0.5 * (a - c) / denom if denom > 0 else 0.0)
    return float(tau)


def estimate_f0(
    audio: np.ndarray,
    sample_rate: int,
    *,
    fmin_hz: float = 70.0,
    fmax_hz: float = 1400.0,
    frame_s: float = 0.05,
    frames: int = 5,
    threshold: float = 0.15,
) -> float:
    """The fundamental of a single note, in Hz (YIN over a few frames, median in log).

    ``audio`` is the note from its onset on (mono); frames are taken from its loudest
    stretch, where the string rings and the pick noise has died. The defaults cover a
    guitar in standard tuning (low E, 82 Hz, to the high e's 24th fret, 1.3 kHz).
    """
    x = np.asarray(audio, dtype=np.float64).reshape(-1)
    tau_min = max(2, int(sample_rate / fmax_hz))
    tau_max = int(np.ceil(sample_rate / fmin_hz))
    w = max(int(frame_s * sample_rate), 2 * tau_max)
    span = w + tau_max
    if x.size < span:
        raise ValueError(f"{x.size} samples: a note needs at least {span} for f0")
    starts = np.linspace(0, x.size - span, max(frames * 3, 1)).astype(int)
    level = np.array([np.sum(x[s : s + span] ** 2) for s in starts])
    chosen = np.sort(starts[np.argsort(level)[::-1][:frames]])
    periods = [_yin_frame(x[s : s + span], tau_min, tau_max, threshold) for s in chosen]
    return float(sample_rate / np.exp(np.median(np.log(periods))))


def harmonic_amplitudes(
    audio: np.ndarray, sample_rate: int, f0_hz: float, *, n_harmonics: int = 40,
    top_hz: float = 18000.0,
) -> np.ndarray:  # fmt: skip
    """Magnitude of harmonics ``1..n_harmonics`` of a note at ``f0_hz`` (linear, ``(K,)``).

    Each harmonic is the largest bin of the Hann-windowed spectrum near where it should
    be; the search follows the string's stretch (inharmonicity pushes harmonic ``k``
    above ``k f0``) by stepping from the previous harmonic found. Harmonics above
    ``top_hz`` or 0.45 of the rate are NaN.
    """
    x = np.asarray(audio, dtype=np.float64).reshape(-1)
    spectrum = np.abs(np.fft.rfft((x - x.mean()) * np.hanning(x.size)))
    bin_hz = sample_rate / x.size
    top = min(top_hz, 0.45 * sample_rate)
    out = np.full(n_harmonics, np.nan)
    previous, step = 0.0, f0_hz
    for k in range(n_harmonics):
        expected = previous + step
        if expected + 0.3 * f0_hz > top:
            break
        lo = int(np.floor((expected - 0.3 * f0_hz) / bin_hz))
        hi = int(np.ceil((expected + 0.3 * f0_hz) / bin_hz)) + 1
        peak = lo + int(np.argmax(spectrum[lo:hi]))
        out[k] = spectrum[peak]
        found = peak * bin_hz
        if k > 0:  # the spacing grows slowly with the stretch; never jump by a whole f0
            step = float(np.clip(found - previous, 0.9 * f0_hz, 1.15 * f0_hz))
        previous = found if k > 0 else f0_hz
    return out


def harmonic_profile(
    audio: np.ndarray, sample_rate: int, f0_hz: float | None = None, *, n_harmonics: int = 40,
    floor_db: float = FLOOR_DB,
) -> np.ndarray:  # fmt: skip
    """Harmonics 1..K in dB relative to the note's total harmonic energy: ``(K,)`` float32.

    Loudness-free (a note played twice as hard gives the same profile) and pitch-free
    (the same string shape at another pitch gives the same profile); harmonics above the
    band or below ``floor_db`` read as ``floor_db``. ``f0_hz`` defaults to
    :func:`estimate_f0`.
    """
    if f0_hz is None:
        f0_hz = estimate_f0(audio, sample_rate)
    amps = harmonic_amplitudes(audio, sample_rate, f0_hz, n_harmonics=n_harmonics)
    power = np.nansum(amps**2)
    if not power > 0:
        return np.full(n_harmonics, floor_db, dtype=np.float32)
    db = 10.0 * np.log10(np.where(np.isnan(amps), 0.0, amps**2) / power + 1e-30)
    return np.maximum(db, floor_db).astype(np.float32)


def profile_by_length(profile: np.ndarray, fret: int | float) -> np.ndarray:
    """A harmonic profile at ``fret`` read on the open string's harmonic numbers: ``(K,)``.

    Harmonic ``n`` of a string stopped at ``fret`` has the shape of harmonic
    ``n * 2 ** (fret / 12)`` of the open string along the bridge end, so value ``j`` is
    the profile interpolated at ``(j + 1) * 2 ** (-fret / 12)``: the pickup's notches land
    on the same index at every fret (and, with :func:`harmonic_profile`, every string).

    Examples
    --------
    >>> profile_by_length(np.array([0.0, -6.0, -9.5, -12.0]), 12).tolist()
    [0.0, 0.0, -3.0, -6.0]
    """
    profile = np.asarray(profile, dtype=np.float64)
    n = np.arange(1, profile.size + 1, dtype=np.float64)
    return np.interp(n * 2.0 ** (-float(fret) / 12.0), n, profile).astype(np.float32)
