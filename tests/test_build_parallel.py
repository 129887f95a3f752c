"""dataset build in one pass over the audio, files in parallel (--jobs) and on Dask.

What a user checks: the dataset built with 2 jobs, or on a 2-process Dask LocalCluster,
is the 1-job dataset bit for bit; one job stays in this process and a build uses every
core unless told otherwise; every file is read from disk once (its sha256 checked on
those bytes); a changed file stops the build in one line.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import errno
import hashlib
import io
import json
import os
import resource
import signal
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from conftest import write_tone

from guitarlab.cli import cli
from guitarlab.corpus import parallel
from guitarlab.corpus.errors import DatasetError
from guitarlab.corpus.intake import import_folder
from guitarlab.corpus.manifest import load_manifest
from guitarlab.datasets import engine
from guitarlab.datasets.build import build_dataset
from guitarlab.datasets.engine import decode_wav
from guitarlab.datasets.folder import check_dataset

# each file a different format: the fast decoder's and libsndfile's paths both run
FORMATS = {
    "raw": ("PCM_24", 1),
    "clean": ("PCM_16", 2),
    "crunch": ("FLOAT", 1),
    "lead": ("PCM_U8", 1),  # libsndfile decodes this one (from the bytes already read)
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """6 takes x 3 tones of 1 s in PCM 16/24, float and 8-bit, mono and stereo."""
    base = tmp_path_factory.mktemp("parallel")
    src = base / "src"
    for gi, guitar in enumerate(("ST", "LP")):
        for pi, phrase in enumerate(("backing", "lead", "riff")):
            for ti, tone in enumerate(("raw", "clean", "crunch")):
                subtype, channels = FORMATS["lead" if phrase == "lead" else tone]
                write_tone(
                    src / f"{guitar}_{phrase}_{tone}.wav",
                    seconds=1.0,
                    freq_hz=110.0 * (1 + gi) + 10 * pi + 3 * ti,
                    amplitude=0.1 + 0.05 * ti,
                    channels=channels,
                    subtype=subtype,
                )
    import_folder(src, base / "corpus", progress=False)
    return base / "corpus"


def folder_bytes(path: Path) -> dict[str, bytes]:
    """Every file of a dataset folder, dataset.json and the output marker without their
    creation times."""
    out = {}
    for item in sorted(path.iterdir()):
        data = item.read_bytes()
        if item.name in ("dataset.json", ".guitarlab-output.json"):
            meta = json.loads(data)
            meta.pop("created_at")
            data = json.dumps(meta, sort_keys=True).encode()
        out[item.name] = data
    return out


@pytest.mark.parametrize("standardize", ["file", "train"])
def test_two_jobs_write_the_one_job_dataset_bit_for_bit(corpus, tmp_path, standardize) -> None:
    options = dict(window=4000, hop=1500, test_windows=3, standardize=standardize, progress=False)
    one = build_dataset(corpus, tmp_path / "one", jobs=1, **options)
    two = build_dataset(corpus, tmp_path / "two", jobs=2, **options)
    a, b = folder_bytes(one), folder_bytes(two)
    assert sorted(a) == sorted(b) and "train_audio.npy" in a
    assert [name for name in a if a[name] != b[name]] == []
    assert check_dataset(two) == []
    meta = json.loads((two / "dataset.json").read_text())
    assert any("mixed to mono" in note for note in meta["notes"])  # the stereo files
    x = np.load(two / "train_audio.npy")
    assert x.dtype == np.float32 and np.isfinite(x).all() and float(np.abs(x).max()) > 0.5


def test_each_file_is_read_once_and_pcm_is_not_decoded_twice(corpus, tmp_path, monkeypatch):
    reads: list[str] = []
    real = engine.read_samples

    def counting(path: str, sha256: str = "", **options):
        assert sha256, "the manifest's sha256 is checked on the bytes read"
        reads.append(path)
        return real(path, sha256, **options)

    monkeypatch.setattr(engine, "read_samples", counting)
    monkeypatch.setattr(sf, "read", lambda *a, **k: pytest.fail("a second read of a file"))
    build_dataset(corpus, tmp_path / "ds", window=4000, test_windows=3, jobs=1, progress=False)
    rows = load_manifest(corpus)
    assert sorted(reads) == sorted(str((corpus / p).absolute()) for p in rows["path"])


@pytest.mark.parametrize("jobs, engine_name", [(1, "local"), (2, "local"), (2, "dask")])
def test_a_file_changed_since_import_stops_the_build_in_one_line(tmp_path, jobs, engine_name):
    if engine_name == "dask":
        pytest.importorskip("distributed")
    src = tmp_path / "src"
    for gi, guitar in enumerate(("ST", "LP")):
        for tone in ("raw", "clean"):
            write_tone(src / f"{guitar}_lead_{tone}.wav", seconds=1.0, freq_hz=200.0 + 50 * gi)
    corpus = tmp_path / "corpus"
    import_folder(src, corpus, progress=False)
    changed = corpus / load_manifest(corpus)["path"].iloc[-1]
    write_tone(changed, seconds=1.0, freq_hz=440.0)  # same length, other samples
    with pytest.raises(DatasetError) as caught:
        build_dataset(
            corpus,
            tmp_path / "ds",
            window=4000,
            test_windows=3,
            jobs=jobs,
            engine=engine_name,
            progress=False,
        )
    message = str(caught.value)
    assert "\n" not in message and changed.name in message and "sha256" in message
    assert not (tmp_path / "ds").exists()


def test_cli_jobs_and_a_scheduler_without_dask(corpus, tmp_path) -> None:
    runner = CliRunner()
    out = tmp_path / "ds"
    args = ["dataset", "build", "--corpus", str(corpus), "--out", str(out), "--window", "4000"]
    args += ["--test-windows", "3"]
    result = runner.invoke(cli, [*args, "--jobs", "2", "--quiet"])
    assert result.exit_code == 0, result.output
    assert check_dataset(out) == []
    result = runner.invoke(cli, [*args, "--overwrite", "--scheduler", "tcp://127.0.0.1:1"])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "--engine dask" in result.output and len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("looks", [["--skip-silence"], ["--onsets", "--hop", "1000"]])
def test_the_pass_before_the_plan_shows_its_progress_unless_quiet(corpus, tmp_path, looks):
    """--skip-silence and --onsets read every file before any window is placed: a long
    wait on a large corpus, so it has its own bar, as the window pass has."""
    name = "gate" if "--skip-silence" in looks else "onsets"
    args = ["dataset", "build", "--corpus", str(corpus), "--window", "4000", *looks]
    args += ["--test-windows", "3"]
    for quiet in (False, True):
        out = tmp_path / f"ds-{quiet}"
        done = subprocess.run(
            [sys.executable, "-m", "guitarlab", *args, "--out", str(out)]
            + (["--quiet"] if quiet else []),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        lines = done.stderr.replace("\r", "\n").splitlines()
        bars = [line for line in lines if line.startswith(f"{name}: ")]  # the bar's own name
        if quiet:
            assert bars == []
        else:
            assert any(line.startswith(f"{name}: 100%") and "18/18" in line for line in bars)


def wav_bytes(audio: np.ndarray, subtype: str) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, audio, 44100, subtype=subtype, format="WAV")
    return buffer.getvalue()


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "PCM_32", "FLOAT"])
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("frames", [3001, 2 * engine.DECODE_BLOCK + 17])  # 1, and 3-5 blocks
def test_decode_wav_gives_libsndfiles_samples_bit_for_bit(subtype, channels, frames) -> None:
    rng = np.random.default_rng(7)
    audio = rng.uniform(-1.0, 1.0, (frames, channels)).astype(np.float32)
    audio[:3] = [[-1.0] * channels, [0.0] * channels, [np.float32(0.9999999)] * channels]
    data = wav_bytes(audio if channels > 1 else audio[:, 0], subtype)
    expected = sf.read(io.BytesIO(data), dtype="float32")[0]
    got = decode_wav(data)
    assert got is not None and got.dtype == np.float32 and got.shape == expected.shape
    assert np.array_equal(got, expected)


def test_decode_wav_walks_chunks_and_leaves_the_rest_to_libsndfile() -> None:
    audio = np.linspace(-0.5, 0.5, 101, dtype=np.float32)
    data = wav_bytes(audio, "PCM_24")
    fmt_at = data.index(b"fmt ")
    junk = b"JUNK" + struct.pack("<I", 5) + b"abcde\x00"  # odd size, padded
    moved = data[:fmt_at] + junk + data[fmt_at:]
    moved = moved[:4] + struct.pack("<I", len(moved) - 8) + moved[8:]
    assert np.array_equal(decode_wav(moved), sf.read(io.BytesIO(moved), dtype="float32")[0])
    assert decode_wav(data[:-2]) is None  # a torn last frame: libsndfile decides
    assert decode_wav(wav_bytes(audio, "PCM_U8")) is None
    assert decode_wav(b"fLaC" + bytes(40)) is None


def _with_trailing_chunk(data: bytes) -> bytes:
    """A WAV with a LIST chunk after its data, as some editors save tags."""
    tagged = data + b"LIST" + struct.pack("<I", 9) + b"INFOtags\x01\x00"  # odd size, padded
    return tagged[:4] + struct.pack("<I", len(tagged) - 8) + tagged[8:]


@pytest.mark.parametrize(
    "subtype, channels", [("PCM_16", 2), ("PCM_24", 1), ("PCM_32", 1), ("FLOAT", 2)]
)
def test_a_wav_is_read_a_block_at_a_time_into_libsndfiles_samples(
    tmp_path, monkeypatch, subtype, channels
) -> None:
    # small blocks: the header block ends mid-frame, then many reads, none on a block edge
    monkeypatch.setattr(engine, "HEAD_BYTES", 1001)
    monkeypatch.setattr(engine, "READ_BLOCK", 4099)
    rng = np.random.default_rng(3)
    audio = rng.uniform(-1.0, 1.0, (20_011, channels)).astype(np.float32)
    path = tmp_path / "take.wav"
    path.write_bytes(
        _with_trailing_chunk(wav_bytes(audio if channels > 1 else audio[:, 0], subtype))
    )
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    expected = sf.read(path, dtype="float32")[0]
    got, may_be_nan = engine.read_samples(str(path), sha)
    assert got.dtype == np.float32 and np.array_equal(got, expected)
    assert may_be_nan == (subtype == "FLOAT")
    # every byte is hashed, the chunk after the samples too
    data = bytearray(path.read_bytes())
    data[-2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match="sha256 differs"):
        engine.read_samples(str(path), sha)


def test_a_torn_or_foreign_file_is_read_whole_and_left_to_libsndfile(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(engine, "HEAD_BYTES", 1001)
    audio = np.linspace(-0.5, 0.5, 5001, dtype=np.float32)
    torn = tmp_path / "torn.wav"
    torn.write_bytes(wav_bytes(audio, "PCM_24")[:-2])  # its data chunk runs past the end
    assert np.array_equal(engine.read_samples(str(torn))[0], sf.read(torn, dtype="float32")[0])
    flac = tmp_path / "take.flac"
    sf.write(flac, audio, 44100, subtype="PCM_16")
    sha = hashlib.sha256(flac.read_bytes()).hexdigest()
    assert np.array_equal(engine.read_samples(str(flac), sha)[0], sf.read(flac, dtype="float32")[0])


@pytest.mark.parametrize("subtype, channels", [("PCM_16", 2), ("PCM_24", 1), ("FLOAT", 1)])
def test_a_wav_header_is_read_as_libsndfile_reads_it(tmp_path, subtype, channels) -> None:
    path = tmp_path / "take.wav"
    audio = np.zeros((4410, channels), dtype=np.float32)
    sf.write(path, audio if channels > 1 else audio[:, 0], 22050, subtype=subtype)
    path.write_bytes(_with_trailing_chunk(path.read_bytes()))
    info = sf.info(str(path))
    assert engine.wav_header(str(path)) == (22050, channels, 4410)
    assert (info.samplerate, info.channels, info.frames) == (22050, channels, 4410)
    path.write_bytes(path.read_bytes()[:-100])  # cut off: libsndfile and the check decide
    assert engine.wav_header(str(path)) is None
    sf.write(tmp_path / "take.flac", audio[:, 0], 22050)
    assert engine.wav_header(str(tmp_path / "take.flac")) is None


def test_scratch_samples_are_reused_within_a_thread_only(tmp_path) -> None:
    path = tmp_path / "take.wav"
    path.write_bytes(wav_bytes(np.linspace(-0.5, 0.5, 40_000, dtype=np.float32), "PCM_16"))
    first, _ = engine.read_samples(str(path), scratch=True)
    second, _ = engine.read_samples(str(path), scratch=True)
    assert np.shares_memory(first, second)  # no fresh pages for the next file
    own, _ = engine.read_samples(str(path))
    assert not np.shares_memory(own, second) and np.array_equal(own, second)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        other = pool.submit(lambda: engine.read_samples(str(path), scratch=True)[0]).result()
    assert not np.shares_memory(other, second)
    engine.release_scratch()  # what a build does when its files are done
    assert not np.shares_memory(engine.read_samples(str(path), scratch=True)[0], second)


def test_a_build_in_this_process_keeps_no_buffer_after_it(corpus, tmp_path) -> None:
    build_dataset(corpus, tmp_path / "ds", window=4000, test_windows=3, jobs=1, progress=False)
    assert getattr(engine._SCRATCH, "samples", None) is None


def test_dask_engine_writes_the_local_engines_windows_bit_for_bit(corpus, tmp_path) -> None:
    pytest.importorskip("distributed")
    options = dict(window=4000, hop=2000, test_windows=3, progress=False)
    local = build_dataset(corpus, tmp_path / "local", **options)
    on_dask = build_dataset(corpus, tmp_path / "dask", engine="dask", jobs=2, **options)
    a, b = folder_bytes(local), folder_bytes(on_dask)
    assert sorted(a) == sorted(b)
    assert [name for name in a if a[name] != b[name]] == []


@pytest.mark.parametrize(
    "looks",
    [dict(trim_silence=True, skip_silence=True, gate_dbfs=-20.0), dict(onsets=True, hop=1000)],
)
def test_the_looks_before_the_plan_run_in_the_jobs_too(corpus, tmp_path, looks) -> None:
    options = dict(window=4000, test_windows=3, progress=False, **looks)
    one = build_dataset(corpus, tmp_path / "one", jobs=1, **options)
    two = build_dataset(corpus, tmp_path / "two", jobs=2, **options)
    a, b = folder_bytes(one), folder_bytes(two)
    assert [name for name in a if a[name] != b[name]] == []
    notes = " ".join(json.loads((two / "dataset.json").read_text())["notes"])
    assert ("--onsets" if "onsets" in looks else "--skip-silence") in notes


_PIDS: list[Path] = []  # where the file-windowing processes note their pid


def _window_file_noting_pid(task):
    from threadpoolctl import threadpool_info

    blas = max(lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas")
    with open(_PIDS[0], "a", encoding="utf-8") as handle:
        handle.write(f"{os.getpid()}:{blas}\n")
    return _REAL_WINDOW_FILE(task)


_REAL_WINDOW_FILE = engine.window_file


def test_one_job_stays_in_this_process_and_the_default_uses_every_core_one_blas_thread_each(
    corpus, tmp_path, monkeypatch
) -> None:
    """18 s of audio: by default no process is worth starting, unless a worker's share
    is made small enough; then every core (three here) gets one."""
    options = dict(window=4000, test_windows=3, progress=False)
    monkeypatch.setattr(engine, "window_file", _window_file_noting_pid)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1, 2}, raising=False)
    pids = {}
    for name, jobs, share in (
        ("one", {"jobs": 1}, 1000),
        ("small", {}, engine.AUDIO_PER_WORKER),
        ("default", {}, 1000),
    ):
        monkeypatch.setattr(engine, "AUDIO_PER_WORKER", share)
        monkeypatch.setattr(sys.modules[__name__], "_PIDS", [tmp_path / f"{name}.pids"])
        build_dataset(corpus, tmp_path / name, **jobs, **options)
        noted = [line.split(":") for line in (tmp_path / f"{name}.pids").read_text().split()]
        pids[name] = [pid for pid, _ in noted]
        # one BLAS thread in each process: --jobs N is N cores, never N times the cores
        assert {blas for _, blas in noted} == {"1"}
    here = {str(os.getpid())}
    assert len(pids["one"]) == 18 and set(pids["one"]) == here
    assert len(pids["small"]) == 18 and set(pids["small"]) == here
    workers = set(pids["default"])
    assert len(pids["default"]) == 18 and not workers & here
    assert 1 < len(workers) <= 3  # three "cores": three worker processes


def _die(_item) -> None:
    import os as _os

    _os._exit(9)  # a worker killed mid-file (the OOM killer, kill -9)


def test_a_worker_that_dies_is_one_line(corpus) -> None:
    with pytest.raises(DatasetError) as caught:
        list(engine.Workers(processes=2).map(_die, [1, 2, 3]))
    assert "worker process died" in str(caught.value) and "\n" not in str(caught.value)


def _square(x: int) -> int:
    return x * x


_MEET: list = []  # a Barrier(2) the pool's forked processes inherit
_MET: dict = {}  # in each process: the pass it last met the other one in


def _pid(item: tuple[str, int]) -> int:
    """This process's id, after it met the other process once in this pass (item's
    first part): both processes of the pool take items, however the items are dealt."""
    run = item[0]
    if _MET.get("run") != run:
        _MET["run"] = run
        _MEET[0].wait(timeout=120)  # a bug hangs no test run: it fails in two minutes
    return os.getpid()


def _pids(run: str) -> set[int]:
    return set(parallel.map_ordered(_pid, [(run, i) for i in range(8)], jobs=2))


def test_passes_inside_shared_pools_fork_their_processes_once(monkeypatch) -> None:
    monkeypatch.setattr(sys.modules[__name__], "_MEET", [parallel.pool_context().Barrier(2)])
    with parallel.shared_pools():
        first, second = _pids("first"), _pids("second")
        assert first == second and len(first) == 2 and os.getpid() not in first
        with pytest.raises(DatasetError, match="worker process died"):  # a pool breaks...
            list(engine.Workers(processes=2).map(_die, [1, 2, 3]))
        third = _pids("third")  # ...the next is new
        assert len(third) == 2 and not third & first
    apart = _pids("apart")
    assert not apart & third  # outside, each map its own processes, shut down after it


@pytest.mark.parametrize("chunk", [1, 3, (9, 5, 2)])
def test_the_ordered_map_keeps_order_in_chunks_and_draws_a_generator_lazily(chunk) -> None:
    drawn: list[int] = []

    def items():
        for i in range(40):
            drawn.append(i)
            yield i

    results = parallel.map_ordered(_square, items(), jobs=2, chunk=chunk)
    first = next(results)
    assert first == 0 and len(drawn) < 40  # a few tasks ahead, not all of them
    assert [first, *results] == [i * i for i in range(40)]


def test_build_workers_fit_the_audio_and_the_cores(monkeypatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1}, raising=False)
    minute = 60 * 44100
    assert engine.build_workers(1, [minute] * 64) == engine.Workers(1)
    assert engine.build_workers(0, [minute] * 4).processes == 1  # 4 min: not worth a fork
    # every file in exactly one task, in order; tasks shrink to single files at the end
    for frames in ([minute] * 64, [5 * 44100] * 1600, [44100] * 18, [minute, 5 * 44100] * 30):
        workers = engine.build_workers(2, frames)
        sizes = workers.task_files
        assert workers.processes == 2 and sum(sizes) == len(frames)
        assert list(sizes) == sorted(sizes, reverse=True) and sizes[-1] == 1
    # 64 one-minute files: 27 tasks, not 64 (each is ~0.01 s of work and ~1 ms to send)
    assert engine.build_workers(0, [minute] * 64).task_files[:4] == (8, 7, 6, 5)
    # 1,600 takes of 5 s: a few dozen tasks, the first of 200 takes
    sizes = engine.build_workers(0, [5 * 44100] * 1600).task_files
    assert sizes[0] == 200 and len(sizes) < 60


def _small_disk() -> None:
    """In the child: no file may grow past 200 kB (writes and reservations past it fail
    with EFBIG, as on a full disk)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))


def test_a_dataset_that_does_not_fit_on_the_disk_is_one_line_and_leaves_nothing(
    corpus, tmp_path
) -> None:
    out = tmp_path / "ds"
    args = ["dataset", "build", "--corpus", str(corpus), "--out", str(out), "--window", "4000"]
    args += ["--test-windows", "3"]
    done = subprocess.run(
        [sys.executable, "-m", "guitarlab", *args, "--quiet"],
        capture_output=True,
        text=True,
        preexec_fn=_small_disk,
        timeout=300,
    )
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert len(errors) == 1 and errors[0].startswith("Error: "), done.stderr
    assert "train_audio.npy" in errors[0] and "do not fit on its disk" in errors[0]
    left = sorted(p.name for p in tmp_path.iterdir())
    assert not out.exists() and left == [".ds.guitarlab-lock"]  # the lock every build keeps


def test_split_files_are_reserved_whole_or_else_left_sparse(tmp_path, monkeypatch) -> None:
    length = 1_000_000  # 4 MB of float32
    head = engine.preallocate_npy(tmp_path / "reserved.npy", length)
    reserved = tmp_path / "reserved.npy"
    assert reserved.stat().st_size == head + 4 * length
    if engine._fallocate() is not None:  # Linux: the blocks are the file's already
        assert reserved.stat().st_blocks * 512 >= 4 * length
    assert np.load(reserved).tolist()[:3] == [0.0, 0.0, 0.0]

    def cannot(fd, mode, offset, size):  # a filesystem without fallocate
        ctypes.set_errno(errno.EOPNOTSUPP)
        return -1

    monkeypatch.setattr(engine, "_fallocate", lambda: cannot)
    engine.preallocate_npy(tmp_path / "sparse.npy", length)
    sparse = tmp_path / "sparse.npy"
    assert sparse.stat().st_size == head + 4 * length
    assert sparse.stat().st_blocks * 512 < 4 * length


def test_a_dask_worker_that_cannot_see_the_folder_says_so(tmp_path) -> None:
    assert engine.folder_problem(str(tmp_path)) is None
    problem = engine.folder_problem(str(tmp_path / "elsewhere"))
    assert "cannot write" in problem and "shared filesystem" in problem


def test_the_scale_benchmark_times_a_four_take_build_per_size(tmp_path) -> None:
    from benchmarks import bench_build_scale, bench_scale

    corpora = {n: bench_scale.build_corpus(tmp_path / f"c{n}", n) for n in (20, 60)}
    rows = bench_build_scale.build_rows(corpora, quick=True)
    assert [r.figure.split(" in a ")[1] for r in rows] == ["20-row corpus", "60-row corpus"]
    assert all(r.value > 0 and r.ratio is not None and "first build" in r.notes for r in rows)
    assert len(load_manifest(corpora[60])) == 64  # the 4 takes were added
