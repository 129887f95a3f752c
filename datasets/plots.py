"""Corpus pictures: level meters per take and average spectra per guitar (matplotlib PNGs).

What a user checks before training: are the guitars level-matched (the seed matched
input levels), and where do their spectra differ.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from guitarlab.corpus.audio import read_audio
from guitarlab.corpus.errors import ManifestError
from guitarlab.corpus.levels import DEFAULT_TARGET_PEAK_DBFS, DEFAULT_TARGET_RMS_DBFS
from guitarlab.corpus.manifest import RAW_TONE, resolve_audio_path
from guitarlab.corpus.plotting import plot_spectra, pyplot, save_figure

MAX_SPECTRUM_SECONDS = 60.0


def raw_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The recorded takes (tone ``raw``), which is what level matching is about."""
    raw = frame[frame["tone"] == RAW_TONE]
    if raw.empty:
        raise ManifestError("the corpus has no raw takes to plot; record or import some first")
    return raw.sort_values(["guitar", "phrase", "take"])


def plot_levels(
    frame: pd.DataFrame,
    path: str | os.PathLike,
    *,
    target_peak_dbfs: float = DEFAULT_TARGET_PEAK_DBFS,
    target_rms_dbfs: float = DEFAULT_TARGET_RMS_DBFS,
) -> Path:
    """A level meter per raw take: peak and RMS dBFS bars, coloured by guitar, with targets."""
    raw = raw_rows(frame)
    plt = pyplot()
    guitars = sorted(raw["guitar"].unique())
    colours = {g: plt.cm.tab10(i % 10) for i, g in enumerate(guitars)}
    x = np.arange(len(raw))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.5 * len(raw) + 2), 4.0), constrained_layout=True)
    floor = min(-60.0, float(np.nanmin(raw["rms_dbfs"])) - 6)
    bar_colours = [colours[g] for g in raw["guitar"]]
    ax.bar(x, raw["peak_dbfs"] - floor, bottom=floor, color=bar_colours, alpha=0.35)
    ax.bar(x, raw["rms_dbfs"] - floor, bottom=floor, width=0.5, color=bar_colours)
    lines = [
        ax.axhline(target_peak_dbfs, color="k", ls="--", lw=1),
        ax.axhline(target_rms_dbfs, color="grey", ls=":", lw=1),
        ax.axhline(0.0, color="red", lw=1),
    ]
    ax.set_xticks(x, raw["take"], rotation=60, ha="right", fontsize=7)
    ax.set_ylim(floor, 3)
    ax.set_ylabel("dBFS (wide bar: peak, narrow: RMS)")
    ax.set_title("levels of the raw takes")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[g]) for g in guitars] + lines
    names = [
        *guitars,
        f"peak target {target_peak_dbfs:g}",
        f"RMS target {target_rms_dbfs:g}",
        "full scale",
    ]
    ax.legend(handles, names, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return save_figure(fig, path, dpi=110, tight=False)


def plot_guitar_spectra(
    corpus: str | os.PathLike, frame: pd.DataFrame, path: str | os.PathLike
) -> Path:
    """Long-term average spectrum of each guitar's raw takes (the seed's bright vs warm)."""
    raw = raw_rows(frame)
    rates = set(raw["sample_rate"].astype(int))
    if len(rates) > 1:
        raise ManifestError(
            f"raw takes at several sample rates ({sorted(rates)}); plot a corpus of one rate"
        )
    rate = rates.pop()
    takes = {}
    for guitar, rows in raw.groupby("guitar", sort=True):
        parts = []
        for rel in rows["path"]:
            audio, _ = read_audio(resolve_audio_path(corpus, rel))
            audio = audio.mean(axis=1) if audio.ndim == 2 else audio
            parts.append(audio[: int(MAX_SPECTRUM_SECONDS * rate)])
        takes[f"{guitar} ({len(parts)} take(s))"] = np.concatenate(parts)
    return plot_spectra(takes, rate, path)
