"""``manifest check`` re-reads only what changed (issue 32): the cache notices a changed
file (new mtime, or a swapped inode with the same mtime), ``--full`` reads them all."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from guitarlab.cli import cli
from guitarlab.corpus import audio, audit
from guitarlab.corpus import manifest as mf

RATE = 8000


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """Six short takes committed the usual way, their files written over a second ago."""
    root = mf.init_corpus(tmp_path / "c")
    rng = np.random.default_rng(0)
    for n in range(1, 7):
        take = mf.take_key("tele", "lead", n)
        row = {"id": f"{take}-raw", "path": f"takes/{take}-raw.wav", "guitar": "tele",
               "phrase": "lead", "tone": "raw", "take": take}  # fmt: skip
        mf.commit_audio(root, row, 0.1 * rng.standard_normal(800).astype(np.float32), RATE)
    old = (os.stat(root / "takes").st_mtime_ns // 1_000_000_000 - 10) * 1_000_000_000
    for wav in (root / "takes").iterdir():  # not "just changed": the cache may keep them
        os.utime(wav, ns=(old, old))
    return root


@pytest.fixture
def reads(monkeypatch) -> list[str]:
    """The files a check opens (header read), in order."""
    opened: list[str] = []
    real = audio.audio_info

    def counting(path):
        opened.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(audio, "audio_info", counting)
    return opened


def _rewrite_samples(path: Path, *, keep_mtime: bool) -> None:
    """Same size, other samples; with ``keep_mtime`` the old mtime is put back."""
    stat = path.stat()
    data, rate = sf.read(path, dtype="float32")
    sf.write(path, -data, rate, subtype="PCM_24")
    assert path.stat().st_size == stat.st_size
    if keep_mtime:
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_a_second_check_reads_no_file(corpus: Path, reads: list[str]) -> None:
    assert audit.check_manifest(corpus) == []
    assert len(reads) == 6
    cache = json.loads((corpus / audit.CHECK_CACHE_NAME).read_text())
    assert len(cache["files"]) == 6
    reads.clear()
    assert audit.check_manifest(corpus, jobs=2) == []
    assert reads == []


def test_a_changed_file_of_the_same_size_is_read_again(corpus: Path, reads: list[str]) -> None:
    audit.check_manifest(corpus)
    target = corpus / "takes" / "tele-lead-t002-raw.wav"
    _rewrite_samples(target, keep_mtime=False)
    reads.clear()
    problems = audit.check_manifest(corpus)
    assert reads == [target.name]
    assert [p.id for p in problems] == ["tele-lead-t002-raw"]
    assert "sha256 mismatch" in problems[0].message


def test_a_file_swapped_in_with_the_same_mtime_is_read_again(
    corpus: Path, reads: list[str]
) -> None:
    audit.check_manifest(corpus)
    target = corpus / "takes" / "tele-lead-t003-raw.wav"
    stat = target.stat()
    swap = target.with_name("swap.tmp")
    swap.write_bytes(target.read_bytes()[:-4] + b"\x01\x02\x03\x04")  # same size, new inode
    os.utime(swap, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(swap, target)
    assert target.stat().st_mtime_ns == stat.st_mtime_ns
    assert target.stat().st_ino != stat.st_ino
    reads.clear()
    problems = audit.check_manifest(corpus)
    assert reads == [target.name]
    assert [p.id for p in problems] == ["tele-lead-t003-raw"]


def test_an_edited_row_is_seen_with_no_file_read(corpus: Path, reads: list[str]) -> None:
    audit.check_manifest(corpus)
    frame = mf.load_manifest(corpus)
    frame.loc[0, "frames"] = 5
    frame.to_csv(corpus / "manifest.csv", index=False)
    reads.clear()
    problems = audit.check_manifest(corpus)
    assert reads == [] and [str(p) for p in problems] == [
        "tele-lead-t001-raw: header says frames=800 but the row says 5"
    ]


def test_a_file_rewritten_with_its_mtime_put_back_is_read_again(
    corpus: Path, reads: list[str]
) -> None:
    audit.check_manifest(corpus)
    target = corpus / "takes" / "tele-lead-t004-raw.wav"
    _rewrite_samples(target, keep_mtime=True)  # size, mtime and inode as before: ctime moved
    reads.clear()
    problems = audit.check_manifest(corpus)
    assert reads == [target.name] and [p.id for p in problems] == ["tele-lead-t004-raw"]


def test_full_reads_every_file_and_no_sha_is_remembered_as_unverified(
    corpus: Path, reads: list[str]
) -> None:
    assert audit.check_manifest(corpus, verify_sha256=False) == []
    reads.clear()
    assert audit.check_manifest(corpus) == []  # read without sha256: read again with it
    assert len(reads) == 6
    reads.clear()
    audit.check_manifest(corpus)
    assert reads == []
    assert audit.check_manifest(corpus, full=True, jobs=2) == []
    assert sorted(reads) == sorted(p.name for p in (corpus / "takes").iterdir())


def test_cli_check_full_and_jobs(corpus: Path) -> None:
    runner = CliRunner()
    first = runner.invoke(cli, ["manifest", "check", str(corpus), "--jobs", "2"])
    assert first.exit_code == 0 and "ok: 6 row(s), no problems" in first.output
    assert (corpus / audit.CHECK_CACHE_NAME).exists()
    _rewrite_samples(corpus / "takes" / "tele-lead-t005-raw.wav", keep_mtime=False)
    cached = runner.invoke(cli, ["manifest", "check", str(corpus)])
    assert cached.exit_code == 1 and "tele-lead-t005-raw: sha256 mismatch" in cached.output
    full = runner.invoke(cli, ["manifest", "check", str(corpus), "--full", "--jobs", "1"])
    assert full.exit_code == 1 and full.output == cached.output
    every = runner.invoke(cli, ["manifest", "check", str(corpus), "--full", "--jobs", "0"])
    assert every.exit_code == 1 and every.output == cached.output  # 0: every core
    bad = runner.invoke(cli, ["manifest", "check", str(corpus), "--jobs", "-1"])
    assert bad.exit_code == 2 and "--jobs" in bad.output


def test_the_library_checks_on_every_core_by_default(corpus: Path, monkeypatch) -> None:
    """``check_manifest``'s default (what ``manifest check`` shows) is 0, every core; a
    negative count is one line naming --jobs."""
    from guitarlab.corpus.errors import ManifestError
    from guitarlab.corpus.parallel import resolve_jobs

    seen: list[int] = []
    real = audit._read_files
    monkeypatch.setattr(audit, "_read_files", lambda *a: seen.append(a[3]) or real(*a))
    assert audit.check_manifest(corpus) == [] and seen == [resolve_jobs(0)]
    with pytest.raises(ManifestError, match="--jobs -1"):
        audit.check_manifest(corpus, jobs=-1)


def test_jobs_in_worker_processes_find_the_same(corpus: Path, monkeypatch) -> None:
    monkeypatch.setattr(audit, "PROCESS_MIN_FILES", 2)  # 6 files: processes, not threads
    _rewrite_samples(corpus / "takes" / "tele-lead-t006-raw.wav", keep_mtime=False)
    threads = audit.check_manifest(corpus, full=True, jobs=1)
    processes = audit.check_manifest(corpus, full=True, jobs=2)
    assert [str(p) for p in processes] == [str(p) for p in threads]
    assert [p.id for p in processes] == ["tele-lead-t006-raw"]
