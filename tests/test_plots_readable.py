"""Plots people read at a glance (issue 33 item 5): spectra.png level-normalized and per
pickup type, training curves readable with one epoch, legends that cover no title."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from scipy import signal

from guitarlab.corpus import plots
from guitarlab.corpus.figures import SPECTRUM_BAND_HZ, band_mean_db, pyplot
from guitarlab.corpus.intake import import_folder
from guitarlab.corpus.manifest import load_manifest

RATE = 44100
PNG = b"\x89PNG\r\n\x1a\n"

# guitar, pickup, amplitude, brightness: the humbucker guitar is 20 dB louder and dark
GUITARS = [
    ("strat", "single_coil", 0.02, "bright"),
    ("tele", "single_coil", 0.03, "bright"),
    ("lp", "humbucker", 0.3, "dark"),
]


def _noise(amplitude: float, brightness: str, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(2 * RATE)
    if brightness == "dark":
        sos = signal.butter(2, 800, "lowpass", fs=RATE, output="sos")
    else:
        sos = signal.butter(1, 1500, "highpass", fs=RATE, output="sos")
    tone = signal.sosfilt(sos, noise)
    return amplitude * tone / np.sqrt(np.mean(tone**2))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("plots")
    src = root / "src"
    src.mkdir()
    for i, (guitar, pickup, amplitude, brightness) in enumerate(GUITARS):
        for take in (1, 2):
            audio = _noise(amplitude, brightness, seed=10 * i + take)
            sf.write(src / f"{guitar}-{pickup}-riff-{take}.wav", audio, RATE, subtype="PCM_24")
    corpus = root / "c"
    import_folder(
        src,
        corpus,
        pattern="{guitar}-{pickup}-{phrase}-{take}",
        labels={"tone": "raw"},
        progress=False,
    )
    return corpus


def _at(spectra: plots.GuitarSpectra, curve: np.ndarray, hz: float) -> float:
    return float(np.interp(hz, spectra.freqs, curve))


def test_spectra_are_level_normalized_so_the_shape_shows(corpus: Path) -> None:
    frame = load_manifest(corpus)
    spectra = plots.guitar_spectra(corpus, frame)
    assert len(spectra.guitars) == 3
    # every guitar's curve has the same (0 dB) mean over the band, whatever its loudness
    means = [band_mean_db(spectra.freqs, db) for db in spectra.guitars.values()]
    assert np.allclose(means, 0.0, atol=1e-9)
    # ... and what was taken off is the loudness difference (lp recorded 20 dB louder)
    levels = spectra.levels_db
    assert levels["lp"] - levels["strat"] > 10
    # before normalizing the loud dark guitar sat above the bright one even in the treble
    by_name = {label.split(" ")[0]: db for label, db in spectra.guitars.items()}
    raw_lp = by_name["lp"] + levels["lp"]
    raw_strat = by_name["strat"] + levels["strat"]
    assert _at(spectra, raw_lp, 4000) > _at(spectra, raw_strat, 4000)
    # normalized, the single coil's treble shows as a shape: above the humbucker at 4 kHz,
    # below it in the bass
    assert _at(spectra, by_name["strat"], 4000) > _at(spectra, by_name["lp"], 4000) + 10
    assert _at(spectra, by_name["strat"], 150) < _at(spectra, by_name["lp"], 150)
    # the legend still says how loud each guitar was
    assert all("RMS -" in label and "dBFS" in label for label in spectra.guitars)


def test_one_curve_per_pickup_type_the_mean_of_its_guitars(corpus: Path) -> None:
    frame = load_manifest(corpus)
    spectra = plots.guitar_spectra(corpus, frame)
    assert sorted(spectra.pickups) == ["humbucker (1 guitar(s))", "single_coil (2 guitar(s))"]
    by_name = {label.split(" ")[0]: db for label, db in spectra.guitars.items()}
    single = spectra.pickups["single_coil (2 guitar(s))"]
    assert np.allclose(single, (by_name["strat"] + by_name["tele"]) / 2)
    assert abs(band_mean_db(spectra.freqs, single)) < 1e-9
    hum = spectra.pickups["humbucker (1 guitar(s))"]
    assert _at(spectra, single, 4000) > _at(spectra, hum, 4000) + 10
    # without a pickup column (or with it empty) there is no pickup panel
    assert plots.guitar_spectra(corpus, frame.drop(columns=["pickup"])).pickups == {}
    assert plots.guitar_spectra(corpus, frame.assign(pickup="")).pickups == {}


def _legends_clear_of_titles(fig) -> None:
    """No legend's box meets any axes title's box, in the figure as drawn."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    titles = [ax.title.get_window_extent(renderer) for ax in fig.axes if ax.get_title()]
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend()] + list(fig.legends)
    assert legends, "no legend drawn"
    for legend in legends:
        box = legend.get_window_extent(renderer)
        assert not any(box.overlaps(title) for title in titles), (box, titles)


@pytest.fixture
def saved_figures(monkeypatch: pytest.MonkeyPatch) -> list:
    """The figures handed to save_figure (checked as drawn, then written as usual)."""
    from guitarlab.corpus import figures as corpus_figures

    figures: list = []
    original = corpus_figures.save_figure

    def keep(fig, path, **kwargs):
        fig.canvas.draw()
        _legends_clear_of_titles(fig)
        figures.append(fig)
        return original(fig, path, **kwargs)

    for module in ("guitarlab.corpus.plots", "guitarlab.train.report"):
        monkeypatch.setattr(f"{module}.save_figure", keep)
    monkeypatch.setattr(corpus_figures, "save_figure", keep)
    return figures


def test_spectra_png_has_a_panel_per_pickup_and_legends_clear_of_titles(
    corpus: Path, tmp_path: Path, saved_figures: list
) -> None:
    frame = load_manifest(corpus)
    out = plots.plot_guitar_spectra(corpus, frame, tmp_path / "spectra.png")
    assert out.read_bytes()[:8] == PNG and out.stat().st_size > 10_000
    fig = saved_figures[-1]
    assert [ax.get_title() for ax in fig.axes] == [
        "average spectrum per guitar, level-normalized",
        "per pickup type (mean of its guitars)",
    ]
    assert len(fig.axes[0].get_lines()) == 3 + 1  # a line per guitar and the 0 dB line
    # many guitars: the legend moves outside, still clear of the title
    many = pd.concat([frame.assign(guitar=f"{g}{i}") for i, g in enumerate("abcdefg")])
    many = many[many["guitar"].str.len() > 0]
    plots.plot_guitar_spectra(corpus, many, tmp_path / "many.png")
    legend = saved_figures[-1].axes[0].get_legend()
    assert legend.get_bbox_to_anchor() is not None and len(legend.get_texts()) == 7


def test_band_mean_is_over_the_band_on_a_log_axis() -> None:
    freqs = np.linspace(1, 22050, 4096)
    db = np.where(freqs < 1000, 0.0, -20.0)  # 50-1000 Hz is 4.3 of 7.6 octaves
    share = np.log(1000 / SPECTRUM_BAND_HZ[0]) / np.log(SPECTRUM_BAND_HZ[1] / SPECTRUM_BAND_HZ[0])
    assert band_mean_db(freqs, db) == pytest.approx(-20 * (1 - share), abs=0.3)


@pytest.mark.parametrize("epochs", [1, 12])
def test_training_curves_readable_with_one_epoch(
    tmp_path: Path, saved_figures: list, epochs: int
) -> None:
    from guitarlab.train.report import plot_training_curves

    history = pd.DataFrame(
        {
            "epoch": range(epochs),
            "loss": np.linspace(0.9, 0.3, epochs),
            "val_loss": np.linspace(1.0, 0.4, epochs),
            "accuracy": np.linspace(0.5, 0.9, epochs),
            "val_accuracy": np.linspace(0.45, 0.85, epochs),
        }
    )
    out = plot_training_curves(history, tmp_path / "curves.png")
    assert out.read_bytes()[:8] == PNG
    fig = saved_figures[-1]
    for ax in fig.axes:
        lines = ax.get_lines()
        assert len(lines) == 2
        for line in lines:
            assert line.get_marker() == "o"
            assert line.get_markersize() >= (6 if epochs == 1 else 3)
        lo, hi = ax.get_xlim()
        assert lo < 1 and hi > epochs and hi - lo <= epochs + 1.01  # whole epochs, no 0.94-1.06
        values = [t.get_text() for t in ax.texts]
        assert (len(values) == 2) == (epochs == 1)  # one epoch: its values written beside it
    pyplot().close("all")


def test_predict_plot_legend_is_beside_the_panels(tmp_path: Path, saved_figures: list) -> None:
    from types import SimpleNamespace

    from guitarlab.train.predict import plot_over_time

    preds = [
        SimpleNamespace(
            path=f"take{i}.wav",
            label="a",
            confidence=0.8,
            times_s=np.arange(4.0),
            confidence_over_time=np.full(4, 0.8),
            labels_over_time=["a", "b", "a", "a"],
        )  # fmt: skip
        for i in range(2)
    ]
    plot_over_time(preds, tmp_path / "p.png")
    assert (tmp_path / "p.png").read_bytes()[:8] == PNG
    assert saved_figures[-1].legends  # checked clear of both titles by the fixture
