"""Adding rows appends to manifest.csv (issue 32): no row lost to concurrent writers,
a kill mid-append or a torn last line, and the file stays what pandas and people read."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from guitarlab.cli import cli
from guitarlab.corpus import appends, audit
from guitarlab.corpus import manifest as mf
from guitarlab.corpus.errors import ManifestError


def _row(n: int, **extra) -> dict:
    take = mf.take_key("tele", "lead", n)
    return {
        "id": mf.row_id(take, "raw"),
        "path": f"takes/{take}-raw.wav",
        "guitar": "tele",
        "phrase": "lead",
        "tone": "raw",
        "take": take,
        "sample_rate": 44100,
        "channels": 1,
        "frames": 100,
        "sha256": "0" * 64,
        **extra,
    }


def _commit_takes(root: str, worker: int, count: int) -> None:
    """A writer process: ``count`` real files, each committed on its own (stage + commit)."""
    rng = np.random.default_rng(worker)
    for i in range(count):
        take = mf.take_key(f"g{worker}", "lead", i + 1)
        row = {"id": f"{take}-raw", "path": f"takes/{take}-raw.wav", "guitar": f"g{worker}",
               "phrase": "lead", "tone": "raw", "take": take}  # fmt: skip
        mf.commit_audio(root, row, 0.1 * rng.standard_normal(2000).astype(np.float32), 44100)


def test_concurrent_writer_processes_lose_no_row(tmp_path: Path) -> None:
    root = str(mf.init_corpus(tmp_path / "c"))
    mf.append_rows(root, [_row(1)])  # the index exists, so the writers append through it
    ctx = mp.get_context("spawn")
    workers = [ctx.Process(target=_commit_takes, args=(root, w, 15)) for w in range(3)]
    for proc in workers:
        proc.start()
    for proc in workers:
        proc.join(timeout=600)
        assert proc.exitcode == 0
    frame = mf.load_manifest(root)
    assert len(frame) == 46 and frame["id"].is_unique
    raw = pd.read_csv(Path(root) / "manifest.csv")  # what a person opens stays one table
    assert len(raw) == 46 and list(raw.columns) == mf.COLUMNS
    problems = audit.check_manifest(root)
    assert [p.message for p in problems] == ["missing file takes/tele-lead-t001-raw.wav"]


KILLED_WRITER = textwrap.dedent(
    """
    import os, signal, sys
    from guitarlab.corpus import appends
    from guitarlab.corpus import manifest as mf

    root, mode = sys.argv[1], sys.argv[2]
    real = appends._write_all
    def half_then_kill(fd, data):  # the kill lands mid-append, deterministically
        os.write(fd, data[: len(data) // 2 + 7])  # mid-line
        os.kill(os.getpid(), signal.SIGKILL)
    batch = 0
    while True:
        if mode == "half" and batch == 3:
            appends._write_all = half_then_kill
        rows = []
        for i in range(200):
            take = mf.take_key("tele", "lead", batch * 200 + i + 1)
            rows.append({"id": f"{take}-raw", "path": f"takes/{take}-raw.wav", "guitar": "tele",
                         "phrase": "lead", "tone": "raw", "take": take, "sample_rate": 44100,
                         "channels": 1, "frames": 100, "sha256": "0" * 64,
                         "notes": "a note, with a comma and a \\"quote\\""})
        mf.append_rows(root, rows)
        print(batch, flush=True)  # committed: append_rows returned
        batch += 1
    """
)


def _start_writer(root: Path, mode: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(root), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_kill_9_mid_append_is_completed_by_the_next_writer(tmp_path: Path, capfd) -> None:
    root = mf.init_corpus(tmp_path / "c")
    proc = _start_writer(root, "half")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, err
    assert out.split() == ["0", "1", "2"]  # three batches committed, the fourth killed
    data = (root / "manifest.csv").read_bytes()
    assert not data.endswith(b"\n")  # torn mid-line, and the journal is there
    assert (root / appends.JOURNAL_NAME).exists()
    # a reader sees every committed row, the whole lines the killed append wrote (100 of
    # its 200) and not the half one, and says so
    assert len(mf.load_manifest(root)) == 700
    assert "cut off" in capfd.readouterr().err
    # the next writer completes the killed append from its journal
    mf.append_rows(root, [_row(5000)])
    assert "completed an append of 200 row(s)" in capfd.readouterr().err
    frame = mf.load_manifest(root)
    assert len(frame) == 801 and frame["id"].is_unique
    assert frame["notes"].iloc[700] == 'a note, with a comma and a "quote"'
    assert not (root / appends.JOURNAL_NAME).exists()
    assert len(pd.read_csv(root / "manifest.csv")) == 801


def test_kill_9_at_a_random_moment_keeps_every_committed_row(tmp_path: Path) -> None:
    root = mf.init_corpus(tmp_path / "c")
    proc = _start_writer(root, "loop")
    done = []
    while len(done) < 4:  # let it commit a few batches, then kill it wherever it is
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        done.append(int(line))
    time.sleep(float(np.random.default_rng().uniform(0, 0.05)))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    done += [int(line) for line in proc.stdout.read().split()]
    frame = mf.load_manifest(root)  # loads, whatever the kill cut
    assert len(frame) >= 200 * len(done) and frame["id"].is_unique
    mf.append_rows(root, [_row(9000)])  # the next writer repairs; nothing is lost
    after = mf.load_manifest(root)
    assert len(after) % 200 == 1 and len(after) >= 200 * len(done) + 1
    assert set(frame["id"]) <= set(after["id"])


def test_a_torn_last_line_is_dropped_with_one_warning_and_good_rows_stay(
    tmp_path: Path, capfd
) -> None:
    root = mf.init_corpus(tmp_path / "c")
    mf.append_rows(root, [_row(1), _row(2)])
    path = root / "manifest.csv"
    half = "tele-lead-t003-raw,takes/tele-lead-t003-raw.wav,tele,,le"
    with open(path, "a", encoding="utf-8") as handle:  # another program cut off mid-line
        handle.write(half)
    assert list(mf.load_manifest(root)["id"]) == ["tele-lead-t001-raw", "tele-lead-t002-raw"]
    assert "cut off" in capfd.readouterr().err
    mf.append_rows(root, [_row(4)])
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "dropped" in err[0] and "tele-lead-t003-raw" in err[0]
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert list(frame["id"]) == ["tele-lead-t001-raw", "tele-lead-t002-raw", "tele-lead-t004-raw"]
    assert half not in path.read_text()


def test_a_whole_last_line_without_its_newline_is_kept(tmp_path: Path, capfd) -> None:
    root = mf.init_corpus(tmp_path / "c")
    mf.append_rows(root, [_row(1)])
    path = root / "manifest.csv"
    path.write_bytes(path.read_bytes().rstrip(b"\n"))  # as some spreadsheets save it
    mf.append_rows(root, [_row(2)])
    assert capfd.readouterr().err == ""
    assert list(mf.load_manifest(root)["id"]) == ["tele-lead-t001-raw", "tele-lead-t002-raw"]


def test_appends_keep_the_header_escape_cells_and_read_back(tmp_path: Path) -> None:
    root = mf.init_corpus(tmp_path / "c")
    mf.append_rows(root, [_row(1, mic="sm57")])
    path = root / "manifest.csv"
    # a person reorders columns in a spreadsheet (CRLF lines, a BOM)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    order = ["mic", *[c for c in frame.columns if c != "mic"][::-1]]
    text = frame[order].to_csv(index=False, lineterminator="\r\n")
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    mf.append_rows(root, [_row(2, notes="=1+2", gain_db=-3.5)])  # no mic: an empty cell
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert list(raw.columns) == order and raw["mic"].tolist() == ["sm57", ""]
    assert raw["notes"].iloc[1] == "'=1+2" and raw["gain_db"].iloc[1] == "-3.5"
    assert path.read_bytes().endswith(b"\r\n") and path.read_bytes().count(b"\r\n") == 3
    loaded = mf.load_manifest(root)
    assert loaded["notes"].iloc[1] == "=1+2" and loaded["frames"].iloc[1] == 100
    # a column the header lacks: this one commit rewrites the file with it
    mf.append_rows(root, [_row(3, room="b")])
    assert mf.load_manifest(root)["room"].tolist() == ["", "", "b"]


def test_an_append_never_reads_the_manifest_once_the_index_matches(
    tmp_path: Path, monkeypatch
) -> None:
    root = mf.init_corpus(tmp_path / "c")
    mf.append_rows(root, [_row(n) for n in range(1, 50)])

    def no_read(*args, **kwargs):
        raise AssertionError("the whole manifest was read to append one row")

    monkeypatch.setattr(mf, "load_manifest", no_read)
    monkeypatch.setattr(appends.pd, "read_csv", no_read)
    mf.append_rows(root, [_row(50)])
    with pytest.raises(ManifestError, match="'tele-lead-t007-raw' is already in the manifest"):
        mf.append_rows(root, [_row(7)])
    monkeypatch.undo()
    assert len(mf.load_manifest(root)) == 50


def test_the_index_follows_edits_by_hand(tmp_path: Path) -> None:
    root = mf.init_corpus(tmp_path / "c")
    mf.append_rows(root, [_row(1), _row(2)])
    path = root / "manifest.csv"
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame = pd.concat([frame.iloc[[1]], pd.DataFrame([{**frame.iloc[0], "id": "x-1"}])])
    frame.to_csv(path, index=False)  # t001 deleted, a row x-1 added, outside guitarlab
    mf.append_rows(root, [_row(1)])  # t001 is free again
    with pytest.raises(ManifestError, match="'x-1' is already"):
        mf.append_rows(root, [{**_row(3), "id": "x-1"}])
    assert sorted(mf.load_manifest(root)["id"]) == [
        "tele-lead-t001-raw",
        "tele-lead-t002-raw",
        "x-1",
    ]


def test_a_full_disk_mid_append_leaves_the_manifest_as_it_was(tmp_path: Path, monkeypatch) -> None:
    import errno

    root = mf.init_corpus(tmp_path / "c")
    mf.append_rows(root, [_row(1)])
    before = (root / "manifest.csv").read_bytes()

    def half_then_full(fd, data):
        os.write(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(appends, "_write_all", half_then_full)
    with pytest.raises(ManifestError, match="disk full"):
        mf.append_rows(root, [_row(2), _row(3)])
    assert (root / "manifest.csv").read_bytes() == before
    assert not (root / appends.JOURNAL_NAME).exists()


def test_compact_rewrites_in_schema_order(tmp_path: Path) -> None:
    root = mf.init_corpus(tmp_path / "c")
    mf.append_rows(root, [_row(1, mic="sm57")])
    path = root / "manifest.csv"
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame[frame.columns[::-1]].to_csv(path, index=False)
    result = CliRunner().invoke(cli, ["manifest", "compact", str(root)])
    assert result.exit_code == 0 and "compacted: 1 row(s)" in result.output
    assert list(pd.read_csv(path).columns) == [*mf.COLUMNS, "mic"]


def test_appended_lines_are_byte_for_byte_what_a_full_save_writes(tmp_path: Path) -> None:
    root = mf.init_corpus(tmp_path / "c")
    mf.append_rows(root, [_row(1, mic="sm57", fret="5")])  # adds the columns: a rewrite
    odd = [
        _row(2, sample_rate="48000", frames=100.0, gain_db=-3.25, rms_dbfs=float("nan")),
        _row(3, peak_dbfs=-0.1234567, notes='comma, "quote"\nand a newline', mic="=A1"),
        _row(4, pickup=None, fret=12, mic="'quoted", player="-dash", channels="x"),
        _row(5, gain_db="2.5", notes="+1 555", mic=float("nan"), fret=3.0),
    ]
    mf.append_rows(root, odd)
    appended = (root / "manifest.csv").read_bytes()
    mf.compact_manifest(root)
    assert (root / "manifest.csv").read_bytes() == appended
    frame = mf.load_manifest(root)
    assert frame["notes"].iloc[2] == 'comma, "quote"\nand a newline'
    assert frame["mic"].tolist() == ["sm57", "", "=A1", "'quoted", ""]


def test_a_damaged_manifest_without_its_last_newline_is_refused_untouched(
    tmp_path: Path,
) -> None:
    root = mf.init_corpus(tmp_path / "c")
    mf.append_rows(root, [_row(1)])
    path = root / "manifest.csv"
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    path.write_bytes(frame.to_csv(index=False, sep=";").encode().rstrip(b"\n"))
    before = path.read_bytes()
    with pytest.raises(ManifestError, match="semicolons"):
        mf.append_rows(root, [_row(2)])
    assert path.read_bytes() == before
