"""Importing a folder of existing files: labels, takes, sources, idempotency, bad files."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import write_tone

from guitarlab.cli import cli
from guitarlab.corpus import audit
from guitarlab.corpus import manifest as mf
from guitarlab.corpus.errors import ManifestError
from guitarlab.corpus.intake import import_folder, labels_from_name, pattern_readings


def test_post_names_become_labels_takes_and_sources(tmp_path: Path, post_folder: Path) -> None:
    root = tmp_path / "c"
    report = import_folder(post_folder, root, progress=False)
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


def test_importing_twice_adds_nothing(tmp_path: Path, post_folder: Path) -> None:
    root = tmp_path / "c"
    import_folder(post_folder, root, progress=False)
    again = import_folder(post_folder, root, progress=False)
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


def test_bad_files_are_reported_and_the_rest_imported(tmp_path: Path, post_folder: Path) -> None:
    (post_folder / "LP_lead_fuzz.wav").write_bytes(b"RIFF not really a wav")
    (post_folder / "my recording.wav").write_bytes(
        (post_folder / "ST_lead_raw.wav").read_bytes()[:-4] + b"abcd"
    )
    root = tmp_path / "c"
    result = CliRunner().invoke(cli, ["import", str(post_folder), "--corpus", str(root)])
    assert result.exit_code == 1
    assert "LP_lead_fuzz.wav: cannot read audio" in result.output
    assert "my recording.wav: name does not fit" in result.output
    assert "Traceback" not in result.output
    assert len(mf.load_manifest(root)) == 16
    assert audit.check_manifest(root) == []


def test_bad_pattern_and_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"pattern field 'sha256' is computed by guitarlab"):
        import_folder(tmp_path, tmp_path / "c", pattern="{sha256}_{tone}")
    with pytest.raises(ManifestError, match=r"pattern field \{1x\} is unknown"):
        import_folder(tmp_path, tmp_path / "c", pattern="{1x}_{tone}")
    with pytest.raises(ManifestError, match="no such folder"):
        import_folder(tmp_path / "missing", tmp_path / "c")


def test_cli_help_has_examples() -> None:
    runner = CliRunner()
    for args in (["import"], ["manifest", "check"], ["manifest", "summary"], ["corpus", "init"]):
        result = runner.invoke(cli, [*args, "--help"])
        assert result.exit_code == 0 and "guitarlab " in result.output.split("Example")[-1]


# ---------------------------------------------------------------- note libraries

NOTE_PATTERN = "{guitar}_{string}_fret{fret}_rr{take}"


def note_folder(folder: Path, *, frets=(0, 3, 6, 9), strings=("E2", "A2")) -> Path:
    """``Strat_E2_fret03_rr1.wav``-style single notes: tiny real WAVs at 8 kHz."""
    for si, string in enumerate(strings):
        for fret in frets:
            write_tone(
                folder / f"Strat_{string}_fret{fret:02d}_rr1.wav",
                seconds=0.2,
                rate=8000,
                freq_hz=82.4 * (1 + si) * 2 ** (fret / 12),
            )
    return folder


def test_note_library_fills_string_fret_and_one_take_per_file(tmp_path: Path) -> None:
    src = note_folder(tmp_path / "notes")
    root = tmp_path / "c"
    result = CliRunner().invoke(
        cli, ["import", str(src), "--corpus", str(root), "--pattern", NOTE_PATTERN]
    )
    assert result.exit_code == 0, result.output
    assert "added 8 file(s)" in result.output
    frame = mf.load_manifest(root).set_index("id")
    assert len(frame) == 8 and frame["take"].nunique() == 8
    assert set(frame["guitar"]) == {"strat"} and set(frame["phrase"]) == {"note"}
    row = frame.loc["strat-note-e2-03-t001-raw"]
    assert (row["string"], row["fret"], row["take"]) == ("E2", "03", "strat-note-e2-03-t001")
    assert sorted(set(frame["fret"])) == ["00", "03", "06", "09"]
    assert audit.check_manifest(root) == []


def test_fixed_labels_give_one_take_per_file_instead_of_collapsing(tmp_path: Path) -> None:
    src = note_folder(tmp_path / "notes", frets=(0, 1, 2))
    root = tmp_path / "c"
    report = import_folder(
        src,
        root,
        pattern="post",
        labels={"guitar": "ibanez", "pickup": "single_coil", "phrase": "note"},
        progress=False,
    )
    assert len(report.added) == 6 and not report.skipped
    frame = mf.load_manifest(root)
    assert frame["take"].nunique() == 6 and set(frame["pickup"]) == {"single_coil"}


def test_take_by_file_and_by_column(tmp_path: Path) -> None:
    src = tmp_path / "sessions"
    for si, session in enumerate(("mon", "tue")):
        for part in ("a", "b"):
            freq_hz = 200 + 50 * si + ord(part)
            write_tone(src / f"{session}_{part}.wav", seconds=0.2, rate=8000, freq_hz=freq_hz)
    fixed = {"guitar": "tele", "phrase": "riff"}
    by_session = import_folder(
        src, tmp_path / "c1", pattern="{session}_{part}", labels=fixed, take="{session}",
        progress=False,
    )  # fmt: skip
    frame = mf.load_manifest(tmp_path / "c1")
    assert len(by_session.added) == 4
    assert sorted(set(frame["take"])) == ["tele-riff-mon", "tele-riff-tue"]
    assert set(frame["session"]) == {"mon", "tue"} and set(frame["part"]) == {"a", "b"}
    import_folder(
        src, tmp_path / "c2", pattern="{session}_{part}", labels=fixed, take="file", progress=False
    )
    assert mf.load_manifest(tmp_path / "c2")["take"].nunique() == 4


def test_labels_csv_joins_by_file_name_or_path(tmp_path: Path) -> None:
    src = note_folder(tmp_path / "notes", frets=(0, 6), strings=("E2",))
    write_tone(src / "sub" / "extra.wav", seconds=0.2, rate=8000, freq_hz=500)
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "file,pickup,player\n"
        "Strat_E2_fret00_rr1.wav,single_coil,Ann\n"
        "Strat_E2_fret06_rr1.wav,humbucker,Ann\n"
        "sub/extra.wav,p90,Bo\n"
        "gone.wav,p90,Bo\n",
        encoding="utf-8",
    )
    root = tmp_path / "c"
    result = CliRunner().invoke(
        cli,
        ["import", str(src), "--corpus", str(root), "--pattern", NOTE_PATTERN,
         "--labels", str(labels), "--guitar", "strat", "--phrase", "note"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "1 row(s) name no file" in result.output and "gone.wav" in result.output
    frame = mf.load_manifest(root)
    by_fret = frame.set_index("fret")
    assert (
        by_fret.loc["00", "pickup"] == "single_coil" and by_fret.loc["06", "pickup"] == "humbucker"
    )
    extra = frame[frame["notes"] == "imported from extra.wav"].iloc[0]
    assert (extra["pickup"], extra["player"], extra["fret"]) == ("p90", "bo", "")
    assert frame["take"].nunique() == 3
    bad = tmp_path / "bad.csv"
    bad.write_text("file,sha256\nx.wav,abc\n", encoding="utf-8")
    result = CliRunner().invoke(
        cli, ["import", str(src), "--corpus", str(root), "--labels", str(bad)]
    )
    assert result.exit_code == 1 and "'sha256' is computed" in result.output
    assert "Traceback" not in result.output


def test_ambiguous_pattern_is_refused_with_both_readings(tmp_path: Path) -> None:
    src = tmp_path / "amb"
    write_tone(src / "ibanez_sc_note_stereo.wav", seconds=0.2, rate=8000)
    root = tmp_path / "c"
    result = CliRunner().invoke(
        cli, ["import", str(src), "--corpus", str(root), "--pattern", "{guitar}_{phrase}_{tone}"]
    )
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert "ibanez_sc_note_stereo.wav" in lines[0] and "two ways" in lines[0]
    assert "guitar=ibanez, phrase=sc, tone=note_stereo" in lines[0]
    assert "guitar=ibanez, phrase=sc_note, tone=stereo" in lines[0]
    assert not (root / "manifest.csv").exists() or mf.load_manifest(root).empty
    assert len(pattern_readings("Strat_E2_fret03_rr1", NOTE_PATTERN)) == 1
    assert pattern_readings("strat_e2_fret03", NOTE_PATTERN) == []


def test_dry_run_prints_the_table_and_writes_nothing(tmp_path: Path) -> None:
    src = note_folder(tmp_path / "notes", frets=(0, 6), strings=("E2",))
    root = tmp_path / "c"
    result = CliRunner().invoke(
        cli, ["import", str(src), "--corpus", str(root), "--pattern", NOTE_PATTERN, "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    header = result.output.splitlines()[0].split()
    assert {"file", "id", "take", "guitar", "string", "fret"} <= set(header)
    assert "Strat_E2_fret06_rr1.wav" in result.output and "strat-note-e2-06-t001" in result.output
    assert "dry run: would add 2 file(s) in 2 take(s)" in result.output
    assert not root.exists()
