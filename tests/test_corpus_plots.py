"""Corpus pictures: a level meter per raw take and the average spectrum per guitar."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from guitarlab.cli import cli
from guitarlab.corpus import manifest as mf
from guitarlab.corpus.errors import ManifestError
from guitarlab.corpus.intake import import_folder
from guitarlab.corpus.plots import plot_guitar_spectra, plot_levels


def test_summary_plots_levels_and_spectra(tmp_path: Path, post_folder: Path) -> None:
    root = tmp_path / "c"
    import_folder(post_folder, root, progress=False)
    result = CliRunner().invoke(
        cli, ["manifest", "summary", str(root), "--plot", str(tmp_path / "p")]
    )
    assert result.exit_code == 0, result.output
    for name in ("levels.png", "spectra.png"):
        picture = tmp_path / "p" / name
        assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and picture.stat().st_size > 5000


def test_plots_need_raw_takes(tmp_path: Path, post_folder: Path) -> None:
    root = tmp_path / "c"
    import_folder(post_folder, root, progress=False)
    renders_only = mf.load_manifest(root).query("tone != 'raw'")
    with pytest.raises(ManifestError, match="no raw takes"):
        plot_levels(renders_only, tmp_path / "levels.png")
    with pytest.raises(ManifestError, match="no raw takes"):
        plot_guitar_spectra(root, renders_only, tmp_path / "spectra.png")
