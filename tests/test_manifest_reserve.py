"""Reserving a take costs what it adds (issue 32): the next take number and the ids taken
come from the ids/paths index, never from a read of manifest.csv, and writers in several
processes never get the same take number."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from guitarlab.corpus import appends
from guitarlab.corpus import manifest as mf
from guitarlab.corpus.errors import ManifestError


def _row(guitar: str, n: int) -> dict:
    take = mf.take_key(guitar, "lead", n)
    return {"id": mf.row_id(take, "raw"), "path": f"takes/{take}-raw.wav", "guitar": guitar,
            "phrase": "lead", "tone": "raw", "take": take, "sample_rate": 44100,
            "channels": 1, "frames": 100, "sha256": "0" * 64}  # fmt: skip


def _next_take(guitar: str):
    """A ``choose`` for ``reserve_takes``: the next take of ``guitar`` playing ``lead``."""

    def choose(taken: mf.Taken) -> list[dict]:
        number = taken.next_take_number(guitar, "lead")
        take = mf.take_key(guitar, "lead", number)
        return [{"id": f"{take}-raw", "take": take, "path": f"takes/{take}-raw.wav"}]

    return choose


def _no_read(monkeypatch) -> None:
    def read(*args, **kwargs):
        raise AssertionError("the whole manifest was read to reserve one take")

    monkeypatch.setattr(mf, "load_manifest", read)
    monkeypatch.setattr(appends.pd, "read_csv", read)
    monkeypatch.setattr(mf.pd, "read_csv", read)


def test_a_reservation_never_reads_the_manifest_once_the_index_matches(
    tmp_path: Path, monkeypatch
) -> None:
    root = mf.init_corpus(tmp_path / "c")
    mf.append_rows(root, [_row("tele", n) for n in range(1, 41)] + [_row("strat", 7)])
    _no_read(monkeypatch)
    first = mf.reserve_takes(root, _next_take("tele"))
    second = mf.reserve_takes(root, _next_take("tele"))  # sees the first's reservation
    strat = mf.reserve_takes(root, _next_take("strat"))
    assert first.ids == ["tele-lead-t041-raw"]
    assert second.ids == ["tele-lead-t042-raw"]
    assert strat.ids == ["strat-lead-t008-raw"]
    with pytest.raises(ManifestError, match="'tele-lead-t007-raw' is already in the manifest"):
        mf.reserve_takes(root, lambda taken: [_row("tele", 7)])
    with pytest.raises(ManifestError, match="'tele-lead-t041-raw' is already"):
        mf.reserve_takes(root, lambda taken: [_row("tele", 41)])  # reserved, not listed
    for reservation in (first, second, strat):
        reservation.release()
    assert mf.reservations(root) == []


def test_the_next_take_number_is_the_manifest_s_after_edits_by_hand(tmp_path: Path) -> None:
    root = mf.init_corpus(tmp_path / "c")
    mf.append_rows(root, [_row("tele", n) for n in (1, 2, 9)])
    with mf.reserve_takes(root, _next_take("tele")) as reservation:
        assert reservation.ids == ["tele-lead-t010-raw"]
    path = root / "manifest.csv"
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    extra = {**frame.iloc[0], "id": "x", "path": "takes/x.wav", "take": "=tele-lead-t500"}
    odd = [{**frame.iloc[0], "id": f"odd{n}", "path": f"takes/odd{n}.wav", "take": take}
           for n, take in enumerate(["tele-lead-t", "tele-lead-t2x", "a-t1-t2", "tele-lead-t0011"])]  # fmt: skip
    frame = pd.concat([frame.iloc[:2], pd.DataFrame([extra, *odd])])
    frame.to_csv(path, index=False)  # t009 deleted, odd takes added, outside guitarlab
    loaded = mf.load_manifest(root)
    assert mf.next_take_number(loaded, "tele", "lead") == 12  # "=tele..." is not a tele take
    with mf.reserve_takes(root, _next_take("tele")) as reservation:
        assert reservation.ids == ["tele-lead-t012-raw"]
    with mf.reserve_takes(root, _next_take("a")) as reservation:
        assert reservation.ids == ["a-lead-t001-raw"]


def test_a_format_1_index_is_rebuilt(tmp_path: Path, monkeypatch) -> None:
    root = mf.init_corpus(tmp_path / "c")
    mf.append_rows(root, [_row("tele", n) for n in (1, 2)])
    file = appends.open_manifest(root)
    index = root / appends.INDEX_NAME
    index.unlink()
    with sqlite3.connect(index) as conn:  # the index as the last release wrote it
        conn.execute("CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT)")
        conn.execute("CREATE TABLE rows (id TEXT, path TEXT)")
        conn.execute("INSERT INTO meta VALUES ('key', ?)", ("1" + file.key[1:],))
    with mf.reserve_takes(root, _next_take("tele")) as reservation:
        assert reservation.ids == ["tele-lead-t003-raw"]
    _no_read(monkeypatch)  # rebuilt once: the next reservation reads nothing
    with mf.reserve_takes(root, _next_take("tele")) as reservation:
        assert reservation.ids == ["tele-lead-t003-raw"]


def test_without_sqlite_the_reservation_reads_the_manifest(tmp_path: Path, monkeypatch) -> None:
    root = mf.init_corpus(tmp_path / "c")
    mf.append_rows(root, [_row("tele", n) for n in (1, 5)])
    monkeypatch.setattr(appends, "synced_index", lambda *args, **kwargs: None)
    with mf.reserve_takes(root, _next_take("tele")) as reservation:
        assert reservation.ids == ["tele-lead-t006-raw"]
        assert mf.reserve_takes(root, _next_take("tele")).ids == ["tele-lead-t007-raw"]


def test_values_read_the_manifest_only_for_listed_ids(tmp_path: Path, monkeypatch) -> None:
    root = mf.init_corpus(tmp_path / "c")
    mf.append_rows(root, [_row("tele", 1), {**_row("tele", 2), "synth_params": '{"a": 1}'}])
    seen: list[dict] = []

    def choose(taken: mf.Taken) -> list[dict]:
        seen.append(taken.values(["tele-lead-t003-raw"], "synth_params"))  # free: no read
        return [{**_row("tele", 3), "synth_params": '{"b": 2}'}]

    loads = []
    real = mf.load_manifest
    monkeypatch.setattr(mf, "load_manifest", lambda root: loads.append(root) or real(root))
    with mf.reserve_takes(root, choose):
        ids = ["tele-lead-t001-raw", "tele-lead-t002-raw", "tele-lead-t003-raw", "x"]
        with mf.reserve_takes(
            root, lambda taken: seen.append(taken.values(ids, "synth_params")) or []
        ):
            pass
    assert seen == [{}, {"tele-lead-t001-raw": "", "tele-lead-t002-raw": '{"a": 1}',
                         "tele-lead-t003-raw": '{"b": 2}'}]  # fmt: skip
    assert len(loads) == 1  # only the second asked about listed rows


def _reserve_in_a_process(root: str, count: int, barrier, out) -> None:
    """A writer: ``count`` reservations of the next tele take, all held until every writer
    has made its own (a released number may be handed out again, a held one never)."""
    numbers = [mf.reserve_takes(root, _next_take("tele")).rows[0]["take"] for _ in range(count)]
    barrier.wait(timeout=300)
    out.put(numbers)
    barrier.wait(timeout=300)


def test_writers_in_three_processes_never_share_a_take_number(tmp_path: Path) -> None:
    root = mf.init_corpus(tmp_path / "c")
    mf.append_rows(root, [_row("tele", n) for n in range(1, 21)])
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(3), ctx.Queue()
    workers = [
        ctx.Process(target=_reserve_in_a_process, args=(str(root), 8, barrier, out))
        for _ in range(3)
    ]
    for proc in workers:
        proc.start()
    takes = [take for _ in workers for take in out.get(timeout=300)]
    for proc in workers:
        proc.join(timeout=300)
        assert proc.exitcode == 0
    assert sorted(takes) == [mf.take_key("tele", "lead", n) for n in range(21, 45)]
    assert mf.reservations(root) == []  # each writer's exit released what it held


def test_the_raw_level_reference_comes_from_the_index(tmp_path: Path, monkeypatch) -> None:
    root = mf.init_corpus(tmp_path / "c")
    levels = [("tele", "raw", "", -20.0), ("strat", "raw", "", -24.0), ("lp", "raw", "", -26.0),
              ("strat", "raw", "mic", -30.0), ("sg", "raw", "", -200.0),
              ("strat", "crunch", "", -10.0), ("jazz", "raw", "", None)]  # fmt: skip
    rows = [
        {**_row(guitar, n), "id": f"r{n}", "tone": tone, "role": role, "rms_dbfs": rms}
        for n, (guitar, tone, role, rms) in enumerate(levels, start=1)
    ]
    mf.append_rows(root, [*rows, {**_row("strat", 99), "phrase": "riff", "rms_dbfs": -5.0}])

    def asked() -> list:
        return [
            mf.raw_level_reference(root, guitar="tele", phrase="lead"),
            mf.raw_level_reference(root, guitar="tele", phrase="lead", role="mic"),
            mf.raw_level_reference(root, guitar="strat", phrase="riff"),
        ]

    with monkeypatch.context() as patch:  # no index: the manifest answers
        patch.setattr(appends, "synced_index", lambda *args, **kwargs: None)
        from_manifest = asked()
    _no_read(monkeypatch)
    assert asked() == from_manifest == [pytest.approx(-25.0), pytest.approx(-30.0), None]


def test_a_recorded_take_is_checked_against_other_guitars_without_reading_the_manifest(
    tmp_path: Path, monkeypatch
) -> None:
    import numpy as np
    import soundfile as sf

    from guitarlab.recorder.session import take_row

    root = mf.init_corpus(tmp_path / "c")
    others = [{**_row("strat", n), "rms_dbfs": -20.0} for n in (1, 2)]
    mf.append_rows(root, [*others, {**_row("strat", 3), "role": "mic", "rms_dbfs": -40.0}])
    path = root / "takes" / "tele-lead-t001-raw.wav"
    sf.write(path, np.full(4410, 0.01, np.float32), 44100, subtype="PCM_24")  # -40 dBFS RMS
    labels = {"id": "tele-lead-t001-raw", "guitar": "tele", "phrase": "lead",
              "take": "tele-lead-t001"}  # fmt: skip
    _no_read(monkeypatch)
    row = take_row(root, path, labels)
    assert "-20.0 dB RMS from the other guitars' lead takes (-20.0 dBFS" in row["checks"]
    row = take_row(root, path, {**labels, "role": "mic"})  # compared with the microphone
    assert "level_match" not in row["checks"]


def test_a_rebuilt_index_reads_escaped_cells_as_the_manifest_does(tmp_path: Path) -> None:
    root = mf.init_corpus(tmp_path / "c")
    mf.append_rows(root, [{**_row("tele", 1), "id": "-x", "take": "+tele-lead-t001"}])
    assert b"'-x" in (root / "manifest.csv").read_bytes()  # kept from a spreadsheet's formulas
    (root / appends.INDEX_NAME).unlink()  # rebuilt from the CSV by the next reservation
    with pytest.raises(ManifestError, match="'-x' is already in the manifest"):
        mf.reserve_takes(root, lambda taken: [{"id": "-x", "path": "takes/y.wav"}])
    with mf.reserve_takes(root, _next_take("+tele")) as reservation:
        assert reservation.ids == ["+tele-lead-t002-raw"]
