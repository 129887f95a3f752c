"""Importing a folder of existing files: labels, takes, sources, idempotency, bad files."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import write_tone

from guitarlab.cli import cli
from guitarlab.datasets import manifest as mf
from guitarlab.datasets.importer import import_folder, labels_from_name
from guitarlab.errors import ManifestError


def test_seed_names_become_labels_takes_and_sources(tmp_path: Path, seed_folder: Path) -> None:
    root = tmp_path / "c"
    report = import_folder(seed_folder, root, progress=False)
    assert len(report.added) == 16 and not report.skipped
    frame = mf.load_manifest(root)
    assert set(frame["guitar"]) == {"stratocaster", "les_paul"}
    assert set(frame.loc[frame["guitar"] == "les_paul", "pickup"]) == {"humbucker"}
    assert frame["take"].nunique() == 4  # 2 guitars x 2 phrases, all tones of one share a take
    renders = frame[frame["tone"] != "raw"]
    raws = frame[frame["tone"] == "raw"].set_index("take")["id"]
    assert (renders["source"] == renders["take"].map(raws)).all()
    assert all(p.startswith("takes/") for p in frame.loc[frame["tone"] == "raw", "path"])
    assert all(p.startswith("tones/") for p in renders["path"])
    row = frame.set_index("id").loc["les_paul-lead-t001-crunch"]
    assert row["sample_rate"] == 44100 and row["frames"] == 22050 and row["subtype"] == "PCM_24"
    assert -30 < row["rms_dbfs"] < row["peak_dbfs"] < 0


def test_importing_twice_adds_nothing(tmp_path: Path, seed_folder: Path) -> None:
    root = tmp_path / "c"
    import_folder(seed_folder, root, progress=False)
    again = import_folder(seed_folder, root, progress=False)
    assert again.added == [] and len(again.already_present) == 16
    assert len(mf.load_manifest(root)) == 16


def test_pattern_and_folder_labels(tmp_path: Path) -> None:
    src = tmp_path / "tele"
    write_tone(src / "riff_raw.wav")
    write_tone(src / "riff_clean.flac", freq_hz=300)
    write_tone(src / "riff_lead.aiff", freq_hz=330)
    root = tmp_path / "c"
    report = import_folder(
        src,
        root,
        pattern="{phrase}_{tone}",
        labels={"guitar": "Telecaster", "pickup": "single_coil"},
        progress=False,
    )
    assert len(report.added) == 3
    frame = mf.load_manifest(root)
    assert set(frame["guitar"]) == {"telecaster"} and frame["take"].nunique() == 1
    assert labels_from_name("LP_lead_crunch")["pickup"] == "humbucker"
    assert labels_from_name("nonsense") is None
    assert labels_from_name("tele_riff_clean_3", "{guitar}_{phrase}_{tone}_{take}")["take"] == "3"


def test_bad_files_are_reported_and_the_rest_imported(tmp_path: Path, seed_folder: Path) -> None:
    (seed_folder / "LP_lead_fuzz.wav").write_bytes(b"RIFF not really a wav")
    (seed_folder / "my recording.wav").write_bytes(
        (seed_folder / "ST_lead_raw.wav").read_bytes()[:-4] + b"abcd"
    )
    root = tmp_path / "c"
    result = CliRunner().invoke(cli, ["import", str(seed_folder), "--corpus", str(root)])
    assert result.exit_code == 1
    assert "LP_lead_fuzz.wav: cannot read audio" in result.output
    assert "my recording.wav: name does not fit" in result.output
    assert "Traceback" not in result.output
    assert len(mf.load_manifest(root)) == 16
    assert mf.check_manifest(root) == []


def test_bad_pattern_and_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"pattern field \{colour\} is unknown"):
        import_folder(tmp_path, tmp_path / "c", pattern="{colour}_{tone}")
    with pytest.raises(ManifestError, match="no such folder"):
        import_folder(tmp_path / "missing", tmp_path / "c")


def test_cli_help_has_examples() -> None:
    runner = CliRunner()
    for args in (["import"], ["manifest", "check"], ["manifest", "summary"], ["corpus", "init"]):
        result = runner.invoke(cli, [*args, "--help"])
        assert result.exit_code == 0 and "guitarlab " in result.output.split("Example")[-1]
