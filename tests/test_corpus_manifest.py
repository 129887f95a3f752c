"""The manifest contract: schema, atomic locked writes, the check and the summary."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from guitarlab.cli import cli
from guitarlab.corpus import audit
from guitarlab.corpus import manifest as mf
from guitarlab.corpus.errors import ManifestError
from guitarlab.corpus.intake import import_folder


def _row(i: int, worker: int = 0) -> dict:
    take = mf.take_key("stratocaster", "backing", worker * 1000 + i + 1)
    return {
        "id": mf.row_id(take, "raw"),
        "path": f"takes/{take}-raw.wav",
        "guitar": "stratocaster",
        "phrase": "backing",
        "tone": "raw",
        "take": take,
        "sample_rate": 44100,
        "channels": 1,
        "frames": 100,
        "sha256": "0" * 64,
    }


def _append_many(root: str, worker: int, count: int) -> None:
    for i in range(count):
        mf.append_rows(root, [_row(i, worker)])


def test_init_creates_an_empty_corpus(tmp_path: Path) -> None:
    root = mf.init_corpus(tmp_path / "c")
    assert (
        (root / "manifest.csv").exists() and (root / "takes").is_dir() and (root / "tones").is_dir()
    )
    assert "guitarlab" in (root / "README.txt").read_text()
    frame = mf.load_manifest(root)
    assert frame.empty and list(frame.columns) == mf.COLUMNS


def test_unknown_columns_survive_a_round_trip(tmp_path: Path) -> None:
    root = mf.init_corpus(tmp_path / "c")
    mf.append_rows(root, [{**_row(0), "mic": "sm57", "notes": "a, b"}])
    mf.update_manifest(root, lambda f: f)
    frame = mf.load_manifest(root)
    assert frame.loc[0, "mic"] == "sm57" and frame.loc[0, "notes"] == "a, b"
    assert frame.loc[0, "sample_rate"] == 44100
    assert list(frame.columns[: len(mf.COLUMNS)]) == mf.COLUMNS


def test_append_refuses_duplicates_and_incomplete_rows(tmp_path: Path) -> None:
    root = mf.init_corpus(tmp_path / "c")
    mf.append_rows(root, [_row(0)])
    with pytest.raises(ManifestError, match="already in the manifest"):
        mf.append_rows(root, [_row(0)])
    with pytest.raises(ManifestError, match="missing required field.*guitar"):
        mf.append_rows(root, [{**_row(1), "guitar": ""}])
    assert len(mf.load_manifest(root)) == 1


def test_four_processes_appending_concurrently_lose_no_row(tmp_path: Path) -> None:
    root = str(mf.init_corpus(tmp_path / "c"))
    ctx = mp.get_context("spawn")
    workers = [ctx.Process(target=_append_many, args=(root, w, 250)) for w in range(4)]
    for proc in workers:
        proc.start()
    for proc in workers:
        proc.join(timeout=600)
        assert proc.exitcode == 0
    frame = mf.load_manifest(root)
    assert len(frame) == 1000 and frame["id"].is_unique
    # rows point at no files, so the only problems are the missing files (no corruption)
    problems = audit.check_manifest(root)
    assert len(problems) == 1000 and all("missing file" in p.message for p in problems)
    assert not list(Path(root).glob(".manifest.*"))  # no temp files left behind


def test_check_names_every_problem(tmp_path: Path, post_folder: Path) -> None:
    root = tmp_path / "c"
    import_folder(post_folder, root, progress=False)
    assert audit.check_manifest(root) == []
    frame = mf.load_manifest(root)
    ids = list(frame["id"])
    # corrupt several rows, each in its own way
    frame.loc[0, "guitar"] = ""
    frame.loc[1, "pickup"] = "Single Coil!"
    frame.loc[2, "path"] = "../outside.wav"
    frame.loc[3, "path"] = "/abs/file.wav"
    frame.loc[4, "frames"] = 5
    frame.loc[5, "source"] = "no-such-row"
    frame.loc[6, "sha256"] = "f" * 64
    frame = pd.concat([frame, frame.iloc[[7]]], ignore_index=True)  # duplicate id
    (root / frame.loc[8, "path"]).unlink()  # missing file
    frame.to_csv(root / "manifest.csv", index=False)
    text = "\n".join(str(p) for p in audit.check_manifest(root))
    assert f"{ids[0]}: guitar is empty" in text
    assert f"{ids[1]}: pickup 'Single Coil!' is malformed" in text
    assert f"{ids[2]}: path '../outside.wav' points outside the corpus" in text
    assert f"{ids[3]}: path '/abs/file.wav' is absolute" in text
    assert f"{ids[4]}: header says frames=22050 but the row says 5" in text
    assert f"{ids[5]}: source 'no-such-row' points at no row" in text
    assert f"{ids[6]}: sha256 mismatch" in text
    assert f"{ids[7]}: duplicate id" in text
    assert f"{ids[8]}: missing file" in text
    # renders of the deleted raw file report their missing source
    raw_take = frame.loc[8, "take"]
    if frame.loc[8, "tone"] == "raw":
        assert "render whose source file" in text and raw_take in text


def test_cli_check_exit_codes_and_fix_levels(tmp_path: Path, post_folder: Path) -> None:
    root = tmp_path / "c"
    import_folder(post_folder, root, progress=False)
    runner = CliRunner()
    ok = runner.invoke(cli, ["manifest", "check", str(root)])
    assert ok.exit_code == 0 and "no problems" in ok.output
    frame = mf.load_manifest(root)
    frame.loc[0, "rms_dbfs"] = 0.0
    frame.to_csv(root / "manifest.csv", index=False)
    fixed = runner.invoke(cli, ["manifest", "check", str(root), "--fix-levels"])
    assert fixed.exit_code == 0
    assert mf.load_manifest(root).loc[0, "rms_dbfs"] == pytest.approx(
        frame.loc[1, "rms_dbfs"], abs=40
    )
    assert mf.load_manifest(root).loc[0, "rms_dbfs"] < -3
    (root / frame.loc[0, "path"]).unlink()
    bad = runner.invoke(cli, ["manifest", "check", str(root)])
    assert bad.exit_code == 1 and f"{frame.loc[0, 'id']}: missing file" in bad.output


def test_summary_shows_balance_and_levels(tmp_path: Path, post_folder: Path) -> None:
    root = tmp_path / "c"
    import_folder(post_folder, root, progress=False)
    counts, levels = audit.summary_tables(mf.load_manifest(root))
    assert len(counts) == 16 and set(counts["files"]) == {1}
    assert counts["minutes"].sum() == pytest.approx(16 * 0.5 / 60, abs=0.01)
    assert set(levels["guitar"]) == {"stratocaster", "les_paul"}
    result = CliRunner().invoke(cli, ["manifest", "summary", str(root), "--takes"])
    assert (
        result.exit_code == 0 and "les_paul" in result.output and "RMS difference" in result.output
    )


def test_missing_corpus_is_one_line_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["manifest", "check", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert "no such corpus folder" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_summary_lists_every_label_column_and_counts_by_them(tmp_path: Path) -> None:
    from conftest import write_tone

    src = tmp_path / "notes"
    for pickup in ("sc", "hb"):
        for fret in (0, 6, 12):
            write_tone(
                src / f"{pickup}_E2_fret{fret:02d}_rr1.wav",
                seconds=0.1,
                rate=8000,
                freq_hz=100 + fret * 10 + (pickup == "hb"),
            )
    root = tmp_path / "c"
    import_folder(
        src, root, pattern="{pickup}_{string}_fret{fret}_rr{take}", labels={"guitar": "ibanez"},
        progress=False,
    )  # fmt: skip
    columns = audit.column_summary(mf.load_manifest(root)).set_index("column")
    assert list(columns.index) == ["pickup", "string", "fret"]
    assert columns.loc["fret", "counts"] == "00 (2), 06 (2), 12 (2)"
    assert columns.loc["pickup", "values"] == 2
    result = CliRunner().invoke(cli, ["manifest", "summary", str(root), "--by", "pickup,fret"])
    assert result.exit_code == 0, result.output
    assert "label columns" in result.output and "00 (2), 06 (2), 12 (2)" in result.output
    assert result.output.splitlines()[0].split() == [
        "guitar", "phrase", "tone", "pickup", "fret", "files", "minutes",
    ]  # fmt: skip
    bad = CliRunner().invoke(cli, ["manifest", "summary", str(root), "--by", "colour"])
    assert bad.exit_code == 1 and "no column 'colour'" in bad.output
