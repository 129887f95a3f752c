"""Corpus pictures: level meters per take and average spectra per guitar (matplotlib PNGs).

What a user checks before training: are the guitars level-matched (the post matched
input levels), and where do their spectra differ.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from guitarlab.corpus.audio import read_audio
from guitarlab.corpus.errors import ManifestError
from guitarlab.corpus.figures import (
    average_spectrum,
    band_mean_db,
    draw_spectra,
    normalize_spectrum,
    pyplot,
    save_figure,
)
from guitarlab.corpus.levels import DEFAULT_TARGET_PEAK_DBFS, DEFAULT_TARGET_RMS_DBFS
from guitarlab.corpus.manifest import RAW_TONE, resolve_audio_path

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


@dataclass
class GuitarSpectra:
    """Level-normalized average spectra of a corpus's raw takes (what ``spectra.png`` draws).

    ``guitars`` and ``pickups`` map a legend label to a dB curve over ``freqs`` whose mean
    over 50 Hz-10 kHz is 0 dB; ``levels_db`` is the mean each guitar's curve lost (the
    legend says each guitar's RMS level instead, as the level meters do). ``pickups`` is
    empty without a ``pickup`` column; each pickup's curve is the mean of its guitars'
    normalized curves, so no guitar counts more for being louder or longer.
    """

    sample_rate: int
    freqs: np.ndarray
    guitars: dict[str, np.ndarray] = field(default_factory=dict)
    pickups: dict[str, np.ndarray] = field(default_factory=dict)
    levels_db: dict[str, float] = field(default_factory=dict)


def guitar_spectra(corpus: str | os.PathLike, frame: pd.DataFrame) -> GuitarSpectra:
    """The average spectrum of each guitar's raw takes (and each pickup type's), normalized."""
    raw = raw_rows(frame)
    rates = set(raw["sample_rate"].astype(int))
    if len(rates) > 1:
        raise ManifestError(
            f"raw takes at several sample rates ({sorted(rates)}); plot a corpus of one rate"
        )
    rate = rates.pop()

    def spectrum(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        parts = []
        for rel in rows["path"]:
            audio, _ = read_audio(resolve_audio_path(corpus, rel))
            audio = audio.mean(axis=1) if audio.ndim == 2 else audio
            parts.append(audio[: int(MAX_SPECTRUM_SECONDS * rate)])
        return average_spectrum(np.concatenate(parts), rate)

    result = None
    by_guitar: dict[str, np.ndarray] = {}
    for guitar, rows in raw.groupby("guitar", sort=True):
        freqs, db = spectrum(rows)
        level = band_mean_db(freqs, db)
        by_guitar[str(guitar)] = db - level
        if result is None:
            result = GuitarSpectra(sample_rate=rate, freqs=freqs)
        result.levels_db[str(guitar)] = level
    assert result is not None  # raw_rows refuses a corpus without raw takes
    for guitar, rows in raw.groupby("guitar", sort=True):
        label = f"{guitar} ({len(rows)} take(s)"
        rms = pd.to_numeric(rows.get("rms_dbfs"), errors="coerce").dropna()
        if len(rms):  # the loudness normalizing hid, as the meters show it
            label += f", RMS {10 * np.log10(np.mean(10 ** (rms / 10))):.1f} dBFS"
        result.guitars[label + ")"] = by_guitar[str(guitar)]
    if "pickup" in raw.columns:
        pickups = raw["pickup"].fillna("").astype(str).str.strip()
        for pickup in sorted(set(pickups) - {""}):
            rows = raw[pickups == pickup]
            curves = []
            for guitar, guitar_rows in rows.groupby("guitar", sort=True):
                if len(guitar_rows) == len(raw[raw["guitar"] == guitar]):
                    curves.append(by_guitar[str(guitar)])  # all its takes: computed above
                else:  # a guitar played on several pickups: this pickup's takes only
                    freqs, db = spectrum(guitar_rows)
                    curves.append(normalize_spectrum(freqs, db))
            label = f"{pickup} ({len(curves)} guitar(s))"
            result.pickups[label] = np.mean(curves, axis=0)
    return result


def plot_guitar_spectra(
    corpus: str | os.PathLike, frame: pd.DataFrame, path: str | os.PathLike
) -> Path:
    """``spectra.png``: each guitar's level-normalized average spectrum (the post's bright
    vs warm as a shape, not a level) and, with a ``pickup`` column, one line per pickup."""
    spectra = guitar_spectra(corpus, frame)
    plt = pyplot()
    panels = 2 if spectra.pickups else 1
    fig, axes = plt.subplots(
        1, panels, figsize=(6.5 * panels, 4.2), squeeze=False, layout="constrained"
    )
    rate = spectra.sample_rate
    draw_spectra(
        axes[0, 0],
        {label: (spectra.freqs, db) for label, db in spectra.guitars.items()},
        rate,
        title="average spectrum per guitar, level-normalized",
    )
    if spectra.pickups:
        draw_spectra(
            axes[0, 1],
            {label: (spectra.freqs, db) for label, db in spectra.pickups.items()},
            rate,
            title="per pickup type (mean of its guitars)",
        )
    return save_figure(fig, path, dpi=110, tight=False)
