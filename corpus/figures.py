"""Headless matplotlib for every stage's PNGs (reports, meters, spectra)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend: pictures are files, never windows.

    Imported on first use so commands that draw nothing start without matplotlib.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | os.PathLike, *, dpi: int = 100, tight: bool = True) -> Path:
    """Write ``fig`` as a PNG at ``path`` (its folder created), close it, return the path.

    ``tight=False`` keeps a layout the caller arranged itself (a legend outside the axes).
    """
    if tight:
        fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    return path


SPECTRUM_BAND_HZ = (50.0, 10_000.0)  # where a guitar's level is measured for normalizing


def average_spectrum(
    audio: np.ndarray, sample_rate: int, *, nperseg: int = 4096
) -> tuple[np.ndarray, np.ndarray]:
    """Long-term average spectrum (Welch): frequencies in Hz (DC dropped) and power in dB/Hz."""
    from scipy import signal

    mono = np.asarray(audio, dtype=np.float64)
    if mono.ndim > 1:
        mono = mono.mean(axis=1)
    freqs, power = signal.welch(mono, fs=sample_rate, nperseg=min(nperseg, max(16, mono.size)))
    return freqs[1:], 10 * np.log10(power[1:] + 1e-20)


def band_mean_db(
    freqs: np.ndarray, db: np.ndarray, band: tuple[float, float] = SPECTRUM_BAND_HZ
) -> float:
    """Mean of a dB spectrum over ``band`` on a log-frequency grid (each octave weighs the
    same, as the eye reads a log axis; linear bins would let the treble decide).

    Examples
    --------
    >>> f = np.geomspace(20, 20_000, 500)
    >>> round(band_mean_db(f, np.full(f.size, -30.0)), 6)
    -30.0
    """
    lo, hi = band[0], min(band[1], float(freqs[-1]))
    grid = np.geomspace(max(lo, float(freqs[0])), hi, 256)
    return float(np.interp(grid, freqs, db).mean())


def normalize_spectrum(
    freqs: np.ndarray, db: np.ndarray, band: tuple[float, float] = SPECTRUM_BAND_HZ
) -> np.ndarray:
    """``db`` shifted to a 0 dB mean over ``band``: the shape stays, the loudness goes.

    Why: a guitar 3 dB louder sits 3 dB above the others at every frequency, which hides
    the difference a reader looks for (a single coil's treble against a humbucker's).
    """
    return np.asarray(db) - band_mean_db(freqs, db, band)


def place_legend(ax, entries: int) -> None:
    """A legend that never covers the title or (for many entries) the curves: inside at
    matplotlib's best spot for a few entries, outside to the right for more."""
    if entries <= 5:
        ax.legend(fontsize=8, loc="best")
    else:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)


def draw_spectra(
    ax,
    curves: dict[str, tuple[np.ndarray, np.ndarray]],
    sample_rate: int,
    *,
    title: str,
    normalized: bool = True,
) -> None:
    """Draw ``label -> (freqs, dB)`` on a log-frequency axis with a legend."""
    for label, (freqs, db) in curves.items():
        ax.semilogx(freqs, db, label=label, lw=1.2)
    ylabel = "dB relative to its mean (50 Hz-10 kHz)" if normalized else "power (dB/Hz)"
    ax.set(xlabel="frequency (Hz)", ylabel=ylabel, title=title)
    ax.set_xlim(40, sample_rate / 2)
    if normalized:
        ax.axhline(0.0, color="grey", lw=0.6, ls=":")
    place_legend(ax, len(curves))


def plot_spectra(
    takes: dict[str, np.ndarray],
    sample_rate: int,
    path: str | os.PathLike,
    *,
    responses: dict[str, Callable[[np.ndarray], np.ndarray]] | None = None,
    normalize: bool = True,
) -> Path:
    """Long-term average spectra of ``takes`` (label -> audio), optionally beside responses.

    With ``normalize`` (the default) each spectrum is shifted to a 0 dB mean over
    50 Hz-10 kHz, so curves differ by shape, not by how loud each take was.
    ``responses`` maps a label to a function from frequencies (Hz) to linear gain and adds
    a second panel with each magnitude response. Writes a PNG and returns its path.
    """
    plt = pyplot()

    panels = 2 if responses else 1
    fig, axes = plt.subplots(
        1, panels, figsize=(6.5 * panels, 4.0), squeeze=False, layout="constrained"
    )
    curves = {}
    for label, audio in takes.items():
        freqs, db = average_spectrum(audio, sample_rate)
        curves[label] = (freqs, normalize_spectrum(freqs, db) if normalize else db)
    title = "average spectrum, level-normalized" if normalize else "average spectrum"
    draw_spectra(axes[0, 0], curves, sample_rate, title=title, normalized=normalize)
    if responses:
        freqs = np.geomspace(40, sample_rate / 2 * 0.95, 600)
        for label, response in responses.items():
            gain = response(freqs)
            axes[0, 1].semilogx(freqs, 20 * np.log10(gain + 1e-12), label=label)
        axes[0, 1].set(xlabel="frequency (Hz)", ylabel="gain (dB)", title="pickup circuit response")
        place_legend(axes[0, 1], len(responses))
    return save_figure(fig, path, tight=False)


def waveform_envelope(audio: np.ndarray, points: int) -> tuple[np.ndarray, np.ndarray]:
    """Min and max of a (mono-mixed) signal in ``points`` equal slices: a waveform to draw.

    Examples
    --------
    >>> lo, hi = waveform_envelope(np.array([0.0, 1.0, -1.0, 0.5]), 2)
    >>> lo.tolist(), hi.tolist()
    ([0.0, -1.0], [1.0, 0.5])
    """
    mono = np.asarray(audio, dtype=np.float32)
    if mono.ndim > 1:
        mono = mono.mean(axis=1)
    points = max(1, min(int(points), mono.size))
    edges = np.linspace(0, mono.size, points + 1).astype(np.int64)
    lo = np.minimum.reduceat(mono, edges[:-1]) if mono.size else np.zeros(points)
    hi = np.maximum.reduceat(mono, edges[:-1]) if mono.size else np.zeros(points)
    return lo, hi


def spectrogram_png(
    audio: np.ndarray,
    sample_rate: int,
    *,
    width_px: int = 1000,
    height_px: int = 200,
    max_hz: float = 12_000.0,
) -> bytes:
    """A spectrogram (dB, linear frequency up to ``max_hz``) filling the whole PNG, no axes,
    so x maps linearly to time and a page can draw a playback cursor over it."""
    import io

    from scipy import signal

    plt = pyplot()
    mono = np.asarray(audio, dtype=np.float64)
    if mono.ndim > 1:
        mono = mono.mean(axis=1)
    nperseg = min(1024, max(16, mono.size))
    freqs, _, power = signal.spectrogram(mono, fs=sample_rate, nperseg=nperseg)
    keep = freqs <= max_hz
    db = 10 * np.log10(power[keep] + 1e-12)
    fig = plt.figure(figsize=(width_px / 100, height_px / 100), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=db.max() - 90, vmax=db.max())
    ax.set_axis_off()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()
