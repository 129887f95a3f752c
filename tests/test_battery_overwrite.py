"""Never destroy what is not yours (issue 29): --overwrite, SIGTERM leftovers, output locks.

Every case goes through the real command line and checks what a user would: the exit
code, one error line naming the folder, and that the corpus or dataset is byte for byte
as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import write_tone
from filelock import FileLock
from test_battery import (  # noqa: F401  (base_corpus is the fixture of that module)
    assert_one_line_error,
    base_corpus,
    run,
    snapshot,
)

from guitarlab.corpus.outputs import MARKER_NAME, lock_path

SMALL = ("--window", "2000", "--test-windows", "3", "--quiet")


def tree(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (hidden ones too), by relative path."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def build(corpus: Path, out: Path, *extra: str):
    return run("dataset", "build", "--corpus", corpus, "--out", out, *SMALL, *extra)


def no_overwrite_advice(line: str) -> None:
    assert "--overwrite" not in line, f"advises the flag that would destroy it: {line}"


@pytest.fixture
def corpus(base_corpus: Path, tmp_path: Path) -> Path:  # noqa: F811
    """A fresh copy of test_battery's two-guitar corpus."""
    copy = tmp_path / "corpus"
    shutil.copytree(base_corpus, copy)
    return copy


@pytest.fixture
def dataset(corpus: Path, tmp_path: Path) -> Path:
    out = tmp_path / "ds"
    result = build(corpus, out)
    assert result.exit_code == 0, result.output
    return out


# ---------------------------------------------------------------- dataset build --overwrite


@pytest.mark.parametrize(
    "where, says",
    [
        (lambda c: c, "is the corpus"),
        (lambda c: c.parent, "holds the corpus"),
        (lambda c: c / "takes", "is inside the corpus"),
    ],
    ids=["corpus", "its-parent", "its-takes"],
)
@pytest.mark.parametrize("overwrite", [True, False], ids=["overwrite", "plain"])
def test_build_never_replaces_the_corpus(corpus: Path, where, says: str, overwrite: bool) -> None:
    before, out = snapshot(corpus), where(corpus)
    result = build(corpus, out, *(["--overwrite"] if overwrite else []))
    line = assert_one_line_error(result, str(out), says)
    no_overwrite_advice(line)
    assert snapshot(corpus) == before and len(before) == 5


@pytest.mark.parametrize("overwrite", [True, False], ids=["overwrite", "plain"])
def test_build_never_replaces_a_folder_of_other_files(
    corpus: Path, tmp_path: Path, overwrite: bool
) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("three years of work\n")
    (mine / "notes").mkdir()
    (mine / "notes" / "a.txt").write_text("a\n")
    before = tree(mine)
    result = build(corpus, mine, *(["--overwrite"] if overwrite else []))
    line = assert_one_line_error(result, str(mine), "guitarlab did not make")
    no_overwrite_advice(line)
    assert tree(mine) == before


def test_build_replaces_its_own_dataset_only_with_overwrite(corpus: Path, dataset: Path) -> None:
    marker = json.loads((dataset / MARKER_NAME).read_text())
    assert marker["made_by"] == "guitarlab" and marker["purpose"] == "dataset"
    before = tree(dataset)
    line = assert_one_line_error(build(corpus, dataset), str(dataset), "--overwrite")
    assert "holds a dataset" in line and tree(dataset) == before
    again = build(corpus, dataset, "--overwrite", "--seed", "3")
    assert again.exit_code == 0, again.output
    assert json.loads((dataset / "dataset.json").read_text())["options"]["seed"] == 3
    assert (dataset / MARKER_NAME).is_file()
    assert [
        p.name for p in dataset.parent.iterdir() if p.name.endswith((".building", ".old"))
    ] == []


def test_a_dataset_built_before_the_marker_is_still_replaceable(
    corpus: Path, dataset: Path
) -> None:
    (dataset / MARKER_NAME).unlink()  # as folders built by older guitarlab versions are
    result = build(corpus, dataset, "--overwrite", "--seed", "4")
    assert result.exit_code == 0, result.output
    assert json.loads((dataset / "dataset.json").read_text())["options"]["seed"] == 4


def test_build_never_replaces_the_dataset_it_reads(corpus: Path, dataset: Path) -> None:
    before = tree(dataset)
    result = build(corpus, dataset, "--overwrite", "--held-out-from", dataset)
    line = assert_one_line_error(result, str(dataset), "is the dataset")
    no_overwrite_advice(line)
    assert tree(dataset) == before


def test_build_never_replaces_a_marked_folder_that_holds_a_corpus(
    corpus: Path, dataset: Path
) -> None:
    kept = dataset / "keep" / "corpus"  # someone keeps a corpus inside a dataset folder
    shutil.copytree(corpus, kept)
    before = snapshot(kept)
    result = build(corpus, dataset, "--overwrite")
    no_overwrite_advice(assert_one_line_error(result, str(dataset), "holds the corpus"))
    assert snapshot(kept) == before


def test_build_refuses_another_kind_of_guitarlab_folder(corpus: Path, tmp_path: Path) -> None:
    exported = tmp_path / "exported"
    assert run("export", "--corpus", corpus, "--out", exported, "--quiet").exit_code == 0
    before = tree(exported)
    result = build(corpus, exported, "--overwrite")
    line = assert_one_line_error(result, str(exported), "an export guitarlab made, not a dataset")
    no_overwrite_advice(line)
    assert tree(exported) == before


# ---------------------------------------------------------------- export --overwrite


def test_export_never_replaces_the_dataset_or_corpus_it_reads(corpus: Path, dataset: Path) -> None:
    before_ds, before_corpus = tree(dataset), snapshot(corpus)
    for out, says in ((dataset, "is the dataset"), (corpus, "is the corpus")):
        for flags in (["--overwrite"], []):
            result = run(
                "export", "--corpus", corpus, "--dataset", dataset, "--out", out, "--quiet", *flags
            )
            no_overwrite_advice(assert_one_line_error(result, str(out), says))
    assert tree(dataset) == before_ds and snapshot(corpus) == before_corpus


def test_export_never_replaces_a_folder_of_other_files(corpus: Path, tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "photo.jpg").write_bytes(b"\xff\xd8 not really")
    before = tree(mine)
    result = run("export", "--corpus", corpus, "--out", mine, "--overwrite", "--quiet")
    no_overwrite_advice(assert_one_line_error(result, str(mine), "guitarlab did not make"))
    assert tree(mine) == before
    done = run("export", "--corpus", corpus, "--out", tmp_path / "ex", "--quiet")
    assert done.exit_code == 0, done.output
    again = run("export", "--corpus", corpus, "--out", tmp_path / "ex", "--quiet", "--overwrite")
    assert again.exit_code == 0, again.output


# ---------------------------------------------------------------- train's run folder


def test_train_never_writes_into_the_dataset_a_corpus_or_other_files(
    corpus: Path, dataset: Path, tmp_path: Path
) -> None:
    pytest.importorskip("tensorflow")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "history.csv").write_text("my own numbers\n")
    before_ds, before_corpus, before_mine = tree(dataset), snapshot(corpus), tree(mine)
    for out, says in (
        (dataset, "is the dataset"),
        (corpus, "is the corpus"),
        (mine, "guitarlab did not make for a training run"),
    ):
        result = run("train", "--dataset", dataset, "--out", out, "--epochs", "1")
        assert_one_line_error(result, str(out), says)
    assert tree(dataset) == before_ds and snapshot(corpus) == before_corpus
    assert tree(mine) == before_mine
    assert not list(corpus.glob(".*lock"))


@pytest.mark.parametrize("protocol", ["post", "guitar-holdout"])
def test_demo_never_builds_its_workspace_inside_a_corpus(corpus: Path, protocol: str) -> None:
    before, names = snapshot(corpus), sorted(p.name for p in corpus.rglob("*"))
    for out, says in ((corpus, "is the corpus"), (corpus / "takes", "is inside the corpus")):
        result = run("demo", "--out", out, "--protocol", protocol, "--direct", "--seconds", "1")
        assert_one_line_error(result, str(out), says)
    assert snapshot(corpus) == before
    assert sorted(p.name for p in corpus.rglob("*")) == names  # nothing added either


# ---------------------------------------------------------------- locks on outputs


def test_a_second_build_or_export_into_a_locked_out_is_refused(
    corpus: Path, dataset: Path, tmp_path: Path
) -> None:
    before = tree(dataset)
    with FileLock(lock_path(dataset), timeout=0):  # as a running build holds it
        result = build(corpus, dataset, "--overwrite")
        assert_one_line_error(result, str(dataset), "another guitarlab process is writing it")
        out = tmp_path / "ex"
        with FileLock(lock_path(out), timeout=0):
            result = run("export", "--corpus", corpus, "--out", out, "--quiet")
            assert_one_line_error(result, str(out), "another guitarlab process is writing it")
        assert not out.exists()
    assert tree(dataset) == before
    assert build(corpus, dataset, "--overwrite").exit_code == 0  # free again


def test_train_or_resume_on_a_run_another_process_writes_is_refused(
    dataset: Path, tmp_path: Path
) -> None:
    pytest.importorskip("tensorflow")
    out = tmp_path / "run"
    out.mkdir()
    (out / "run.json").write_text('{"status": "running"}\n')
    before = tree(out)
    with FileLock(lock_path(out), timeout=0):  # as the running `train` holds it
        for extra in (["--resume"], []):
            result = run("train", "--dataset", dataset, "--out", out, "--epochs", "1", *extra)
            assert_one_line_error(result, str(out), "another guitarlab process is writing it")
    assert tree(out) == before


# ---------------------------------------------------------------- SIGTERM and SIGKILL leftovers


@pytest.fixture(scope="module")
def long_corpus(tmp_path_factory) -> Path:
    """A corpus whose build takes a few seconds: 12 takes of 20 s."""
    src = tmp_path_factory.mktemp("long-src")
    for gi, guitar in enumerate(("tele", "lp")):
        for take in range(1, 7):
            write_tone(
                src / f"{guitar}_backing_{take}.wav",
                freq_hz=200.0 + 60 * gi + 5 * take,
                seconds=20.0,
                subtype="PCM_16",
            )
    corpus = tmp_path_factory.mktemp("long") / "corpus"
    result = run("import", src, "--corpus", corpus, "--pattern", "{guitar}_{phrase}_{take}")
    assert result.exit_code == 0, result.output
    return corpus


def start_build(corpus: Path, out: Path) -> subprocess.Popen:
    args = ["dataset", "build", "--corpus", str(corpus), "--out", str(out), "--quiet"]
    # a small hop: hundreds of thousands of windows, so the build is still writing
    return start(*args, "--window", "2000", "--hop", "20", "--test-windows", "3")


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "guitarlab", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )


def wait_for_temp(
    process: subprocess.Popen, out: Path, suffix: str = ".building", timeout_s: float = 120.0
) -> Path:
    """The command's temp folder, as soon as it appears (fails if the command ends first)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = list(out.parent.glob(f".{out.name}.*{suffix}"))
        if found:
            return found[0]
        if process.poll() is not None:
            pytest.fail(f"the build ended before its temp folder was seen: {process.stderr.read()}")
        time.sleep(0.005)
    process.kill()
    pytest.fail("no temp folder appeared")


def test_sigterm_during_build_removes_its_temp_folder(long_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    process = start_build(long_corpus, out)
    wait_for_temp(process, out)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr
    assert "Traceback" not in stderr and "stopped by SIGTERM" in stderr
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith((".building", ".old"))]
    assert not out.exists()


def test_sigterm_during_export_removes_its_temp_folder(long_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "ex"
    process = start("export", "--corpus", str(long_corpus), "--out", str(out), "--quiet")
    wait_for_temp(process, out, ".exporting")
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr
    assert "Traceback" not in stderr and "stopped by SIGTERM" in stderr
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith((".exporting", ".old"))]
    assert not out.exists()


def test_a_sigkilled_build_leaves_a_temp_folder_the_next_build_removes(
    long_corpus: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ds"
    process = start_build(long_corpus, out)
    temp = wait_for_temp(process, out)
    process.kill()  # SIGKILL: nothing can clean up
    process.communicate(timeout=60)
    assert temp.is_dir()
    other = tmp_path / ".ds-other.abcd1234.building"  # another folder's: not ours to remove
    other.mkdir()
    result = build(long_corpus, out)
    assert result.exit_code == 0, result.output
    line = assert_one_line_error(result, "removed 1 unfinished folder", temp.name, code=0)
    assert str(out) in line
    assert not temp.exists() and other.is_dir()


def test_an_export_removes_the_temp_folder_a_killed_export_left(
    corpus: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ex"
    left = tmp_path / ".ex.k1ll3d_x.exporting"  # the name mkdtemp gives, as SIGKILL leaves it
    left.mkdir()
    (left / "train").mkdir()
    (left / "train" / "half.wav").write_bytes(b"RIFF")
    result = run("export", "--corpus", corpus, "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    assert_one_line_error(result, "removed 1 unfinished folder", left.name, str(out), code=0)
    assert not left.exists() and (out / "README.md").is_file()


def test_a_dataset_a_kill_left_moved_aside_is_put_back_not_removed(
    corpus: Path, tmp_path: Path
) -> None:
    """SIGKILL between atomic_folder's two renames: ``out`` gone, the old one in ``.old``."""
    out = tmp_path / "ds"
    assert build(corpus, out).exit_code == 0
    before = tree(out)
    aside = tmp_path / ".ds.k1ll3d_x.old"
    aside.mkdir()
    os.replace(out, aside / "ds")
    (tmp_path / ".ds.k1ll3d_y.building").mkdir()  # the finished new one, never moved in
    result = build(corpus, out)  # no --overwrite: the old dataset is the user's to replace
    assert_one_line_error(result, "put back", str(out), aside.name)
    line = assert_one_line_error(result, str(out), "pass --overwrite")
    assert "put back" not in line
    assert tree(out) == before
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".ds.k1ll3d")]


def test_two_real_builds_into_one_out_the_second_is_refused(
    long_corpus: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ds"
    first = start_build(long_corpus, out)
    wait_for_temp(first, out)  # the first is writing now, under the lock
    first.send_signal(signal.SIGSTOP)  # and stays there while the second starts
    try:
        second = start_build(long_corpus, out)
        _, err = second.communicate(timeout=120)
    finally:
        first.send_signal(signal.SIGCONT)
    assert second.returncode == 1, err
    lines = [line for line in err.splitlines() if "another guitarlab process is writing" in line]
    assert len(lines) == 1 and str(out) in lines[0] and "Traceback" not in err
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert json.loads((out / "dataset.json").read_text())["options"]["hop"] == 20


def test_a_failure_between_the_renames_puts_the_old_folder_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from guitarlab.corpus import atomic

    out = tmp_path / "ds"
    out.mkdir()
    (out / "dataset.json").write_text("{}\n")
    real, calls = os.replace, []

    def second_fails(src, dst):
        calls.append(dst)
        if len(calls) == 2:  # the old folder is aside, the new one not yet in place
            raise KeyboardInterrupt
        return real(src, dst)

    monkeypatch.setattr(atomic.os, "replace", second_fails)
    with pytest.raises(KeyboardInterrupt), atomic.atomic_folder(out, suffix=".building") as work:
        (work / "dataset.json").write_text('{"new": true}\n')
    monkeypatch.undo()
    assert (out / "dataset.json").read_text() == "{}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]
