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


def plot_spectra(
    takes: dict[str, np.ndarray],
    sample_rate: int,
    path: str | os.PathLike,
    *,
    responses: dict[str, Callable[[np.ndarray], np.ndarray]] | None = None,
) -> Path:
    """Long-term average spectra of ``takes`` (label -> audio), optionally beside responses.

    ``responses`` maps a label to a function from frequencies (Hz) to linear gain and adds
    a second panel with each magnitude response. Writes a PNG and returns its path.
    """
    from scipy import signal

    plt = pyplot()

    panels = 2 if responses else 1
    fig, axes = plt.subplots(1, panels, figsize=(6.5 * panels, 4.0), squeeze=False)
    for label, audio in takes.items():
        freqs, power = signal.welch(
            np.asarray(audio, dtype=np.float64), fs=sample_rate, nperseg=4096
        )
        axes[0, 0].semilogx(freqs[1:], 10 * np.log10(power[1:] + 1e-20), label=label, lw=1)
    axes[0, 0].set(xlabel="frequency (Hz)", ylabel="power (dB/Hz)", title="average spectrum")
    axes[0, 0].set_xlim(40, sample_rate / 2)
    axes[0, 0].legend(fontsize=8)
    if responses:
        freqs = np.geomspace(40, sample_rate / 2 * 0.95, 600)
        for label, response in responses.items():
            gain = response(freqs)
            axes[0, 1].semilogx(freqs, 20 * np.log10(gain + 1e-12), label=label)
        axes[0, 1].set(xlabel="frequency (Hz)", ylabel="gain (dB)", title="pickup circuit response")
        axes[0, 1].legend(fontsize=8)
    return save_figure(fig, path)


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
