"""augment/cluster.py: ``augment --engine dask`` on real Dask clusters of worker processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import import_raw_takes, two_raw_takes

from guitarlab.augment import renders as augment_renders
from guitarlab.augment.cluster import render_task
from guitarlab.augment.presets import get_presets
from guitarlab.augment.renders import plan_jobs, render_corpus
from guitarlab.cli import cli
from guitarlab.corpus.audit import check_manifest
from guitarlab.corpus.errors import AugmentError
from guitarlab.corpus.manifest import load_manifest

distributed = pytest.importorskip("distributed")
CORE = ["clean", "crunch", "distorted"]


@pytest.fixture(scope="module")
def raw_folder(tmp_path_factory) -> Path:
    return two_raw_takes(tmp_path_factory.mktemp("cluster") / "raw-wavs")


make_corpus = import_raw_takes


@pytest.fixture(scope="module")
def reference(raw_folder: Path, tmp_path_factory) -> dict[str, str]:
    """sha256 of every render from the single-process engine."""
    root = make_corpus(raw_folder, tmp_path_factory.mktemp("local") / "corpus")
    render_corpus(root, tones=CORE, progress=False)
    return rendered(root)


@pytest.fixture(scope="module")
def cluster():
    """A LocalCluster of two worker processes (one thread each), shared by the tests
    that pass --scheduler; its scheduler runs in this process, so its log can be read."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as started:
        yield started


def rendered(root: Path) -> dict[str, str]:
    frame = load_manifest(root)
    tones = frame[frame["tone"] != "raw"]
    return dict(zip(tones["id"], tones["sha256"], strict=True))


def no_temps(root: Path) -> bool:
    return not list((root / "tones").glob(".*.part*"))


def test_a_local_cluster_of_two_processes_writes_the_same_files_as_the_local_engine(
    raw_folder: Path, reference: dict[str, str], tmp_path: Path
) -> None:
    root = make_corpus(raw_folder, tmp_path / "corpus")
    args = ["augment", "--corpus", str(root), "--tones", ",".join(CORE), "--quiet"]
    done = CliRunner().invoke(cli, args + ["--engine", "dask", "--workers", "2"])
    assert done.exit_code == 0, done.output
    assert "rendered 6 file(s)" in done.output
    assert rendered(root) == reference  # same ids, same sha256
    assert check_manifest(root) == [] and no_temps(root)
    again = CliRunner().invoke(cli, args + ["--engine", "dask", "--workers", "2"])
    assert again.exit_code == 0 and "nothing to render" in again.output


def test_a_killed_run_resumes_and_renders_only_the_rest(
    raw_folder: Path, reference: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The driver dies after its first commit; its LocalCluster's workers die with it
    and leave the renders they finished as temp files, which the next run removes."""
    root = make_corpus(raw_folder, tmp_path / "corpus")
    real = augment_renders._append_new
    commits = []

    def killed_on_second_commit(where, batch):
        commits.append([row["id"] for row, _ in batch])
        if len(commits) >= 2:  # the driver dies here: finished renders stay temp files
            raise KeyboardInterrupt
        return real(where, batch)

    monkeypatch.setattr(augment_renders, "BATCH_FILES", 1)
    monkeypatch.setattr(augment_renders, "_append_new", killed_on_second_commit)
    with pytest.raises(KeyboardInterrupt):
        render_corpus(root, tones=CORE, engine="dask", workers=2, progress=False)
    first = rendered(root)
    assert list(first) == commits[0]
    assert not no_temps(root)  # what the kill left behind
    monkeypatch.undo()

    rest = render_corpus(root, tones=CORE, engine="dask", workers=2, progress=False)
    assert sorted(rest) == sorted(set(reference) - set(first))
    assert rendered(root) == reference
    assert check_manifest(root) == [] and no_temps(root)


def test_a_failing_file_is_retried_then_reported_by_file_and_the_rest_is_kept(
    raw_folder: Path, reference: dict[str, str], cluster, tmp_path: Path
) -> None:
    root = make_corpus(raw_folder, tmp_path / "corpus")
    broken = root / "takes" / "les_paul-lead-t001-raw.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot audio")  # damaged after it was listed
    result = CliRunner().invoke(
        cli,
        [
            "augment",
            "--corpus",
            str(root),
            "--tones",
            ",".join(CORE),
            "--engine",
            "dask",
            "--scheduler",
            cluster.scheduler_address,
            "--retries",
            "1",
            "--quiet",
        ],
    )
    assert result.exit_code == 1
    line = result.output.strip()
    assert "\n" not in line and "Traceback" not in result.output
    assert "3 of 6 render(s) failed after 1 retries (the other 3 are in the manifest)" in line
    for tone in CORE:
        assert f"les_paul-lead-t001-{tone} from takes/les_paul-lead-t001-raw.wav" in line
    assert rendered(root) == {k: v for k, v in reference.items() if k.startswith("strat")}
    # each failing task ran twice: once, then its one retry
    starts = [
        key
        for key, start, finish, *_ in cluster.scheduler.transition_log
        if str(key).startswith("augment-les_paul-lead-t001-clean-") and finish == "processing"
    ]
    assert len(starts) == 2
    assert no_temps(root)


def test_a_worker_that_cannot_see_the_corpus_fails_with_one_line(
    raw_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real worker process whose view of the corpus path differs from the driver's.

    The path is ``/proc/self/cwd/corpus``: each process resolves it through its own
    working directory, as each machine resolves a path through its own mounts. The
    driver runs in ``tmp_path`` (where the corpus is); the worker, started with
    ``dask worker`` like on another machine, runs in an empty folder.
    """
    make_corpus(raw_folder, tmp_path / "corpus")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(tmp_path)
    with distributed.LocalCluster(n_workers=0, dashboard_address=":0") as scheduler_only:
        address = scheduler_only.scheduler_address
        worker = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", address]
            + ["--nworkers", "1", "--nthreads", "1", "--no-dashboard", "--no-nanny"],
            cwd=elsewhere,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            with distributed.Client(address) as client:
                client.wait_for_workers(1, timeout=60)
            result = CliRunner().invoke(
                cli,
                ["augment", "--corpus", "/proc/self/cwd/corpus", "--tones", "clean"]
                + ["--engine", "dask", "--scheduler", address, "--quiet"],
            )
        finally:
            worker.terminate()
            worker.wait(timeout=30)
    assert result.exit_code == 1
    line = result.output.strip()
    assert "\n" not in line and "Traceback" not in result.output
    assert line.startswith("Error: Dask worker tcp://")
    assert "cannot see the corpus at /proc/self/cwd/corpus (no manifest.csv)" in line
    assert rendered(tmp_path / "corpus") == {}


def test_the_task_checks_the_corpus_too_and_options_are_checked(
    raw_folder: Path, tmp_path: Path
) -> None:
    root = make_corpus(raw_folder, tmp_path / "corpus")
    (job,) = plan_jobs(load_manifest(root), get_presets(["clean"]), where="guitar=les_paul")
    with pytest.raises(AugmentError, match=r"cannot see the corpus at /nonexistent"):
        render_task("/nonexistent", job)
    row, tmp = render_task(str(root), job)  # what a worker returns: a row and a temp file
    assert row["id"] == job.id and Path(tmp).exists() and Path(tmp).name.startswith(".")
    Path(tmp).unlink()
    with pytest.raises(AugmentError, match="add --engine dask"):
        render_corpus(root, tones=["clean"], scheduler="tcp://localhost:1", progress=False)
    with pytest.raises(AugmentError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        render_corpus(
            root,
            tones=["clean"],
            engine="dask",
            scheduler="tcp://127.0.0.1:9",
            progress=False,
        )
