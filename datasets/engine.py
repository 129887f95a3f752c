"""One pass over the audio of a dataset build, in this process, in N processes or on Dask.

The driver (``stream.stream_windows``) knows before any sample is read where every file's
windows go: each split's spans and their place in the split's ``.npy`` follow from the
file headers and the plan. So a file is a self-contained task (:class:`FileTask`): read
its bytes once, check their sha256 against the manifest, decode, mix, resample,
standardize, and write its spans straight into the preallocated split files at their
offsets (``os.pwrite``). Tasks may run in any order on any process or machine; the
bytes land in the same places, so a build with ``--jobs 4`` or on a Dask cluster is the
1-job build bit for bit. ``--jobs N`` is N processes, one file each; one job is this
process alone, one file after another on one core. Only small results (mixed, silent,
the training windows' sums) come back, and the driver adds them up in file order.

Pure numpy and soundfile: no pandas or tqdm, so a worker process starts fast.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import io
import os
import struct
import sys
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from guitarlab.corpus import parallel
from guitarlab.corpus.audio import mono_at_rate
from guitarlab.corpus.cluster import check_engine
from guitarlab.corpus.errors import DISK_FULL_ERRNOS, DatasetError
from guitarlab.datasets.windows import standardize_as

FLOAT32 = np.dtype(np.float32)


# ---------------------------------------------------------------- reading one file once


# A file's bytes are hashed as each block arrives, while it is still in the core's cache,
# and PCM is decoded a cache-sized block at a time rather than in three passes over the
# whole file (24-bit: 0.7x the time, measured over 64 one-minute files)
READ_BLOCK = 1 << 20
DECODE_BLOCK = 1 << 16  # samples


def read_checked(path: str, sha256: str = "") -> bytearray:
    """A file's bytes, read once; with ``sha256`` checked against the manifest's (each
    block hashed as it arrives)."""
    digest = hashlib.sha256() if sha256 else None
    try:
        with open(path, "rb", buffering=0) as handle:
            data = bytearray(os.fstat(handle.fileno()).st_size)
            view, got = memoryview(data), 0
            while got < len(data):
                n = handle.readinto(view[got : got + READ_BLOCK])
                if not n:
                    break
                if digest is not None:
                    digest.update(view[got : got + n])
                got += n
            del view
            if got < len(data):  # shorter than its size a moment ago: the sha256 differs
                del data[got:]
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror})") from None
    if digest is not None and digest.hexdigest() != sha256:
        raise DatasetError(
            f"{path}: sha256 differs from its manifest row: the file changed since it was "
            "added; run 'guitarlab manifest check'"
        )
    return data


def decode_wav(data: bytes | bytearray) -> np.ndarray | None:
    """Samples of an in-memory PCM 16/24/32-bit or float32 WAV as float32, or None.

    ``(frames,)`` for mono, ``(frames, channels)`` otherwise: the values ``soundfile.read(...,
    dtype="float32")`` gives, bit for bit (integers scaled by 1/2^(bits-1), floats as
    stored), at numpy speed (2-3x libsndfile for 24-bit). None for anything else (other
    formats, a chunk that runs past the end, a torn last frame): the caller then lets
    libsndfile read it, and its errors.

    Examples
    --------
    >>> buffer = io.BytesIO()
    >>> sf.write(buffer, np.array([0.5, -0.25], dtype=np.float32), 8000, subtype="PCM_16", format="WAV")
    >>> decode_wav(buffer.getvalue()).tolist()
    [0.5, -0.25]
    """
    found = _decode_wav(data)
    return None if found is None else found[0]


def _decode_wav(data: bytes | bytearray) -> tuple[np.ndarray, bool] | None:
    """:func:`decode_wav`, and whether the samples were stored as floats (may hold NaN)."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    pos, fmt = 12, None
    while pos + 8 <= len(data):
        chunk, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        body = pos + 8
        if chunk == b"fmt ":
            if size < 16 or body + size > len(data):
                return None
            tag, channels, _, _, block, bits = struct.unpack_from("<HHIIHH", data, body)
            if tag == 0xFFFE:  # WAVE_FORMAT_EXTENSIBLE: the subformat's first two bytes
                if size < 40:
                    return None
                tag = struct.unpack_from("<H", data, body + 24)[0]
            fmt = (tag, channels, block, bits)
        elif chunk == b"data":
            if fmt is None or body + size > len(data):
                return None
            audio = _pcm_samples(data, body, size, *fmt)
            return None if audio is None else (audio, fmt[0] == 3)
        pos = body + size + (size & 1)  # chunks are padded to an even length
    return None


def _pcm_samples(
    data: bytes | bytearray, at: int, size: int, tag: int, channels: int, block: int, bits: int
) -> np.ndarray | None:
    if channels < 1 or block != channels * (bits // 8) or bits % 8 or size % block:
        return None
    count = size // (bits // 8)  # samples, all channels
    if tag == 3 and bits == 32:
        audio = np.frombuffer(data, dtype="<f4", count=count, offset=at).astype(np.float32)
    elif tag == 1 and bits == 16:
        audio = np.empty(count, dtype=np.float32)
        shorts = np.frombuffer(data, dtype="<i2", count=count, offset=at)
        for first in range(0, count, DECODE_BLOCK):
            part = audio[first : first + DECODE_BLOCK]
            np.copyto(part, shorts[first : first + DECODE_BLOCK], casting="unsafe")
            part *= np.float32(1.0 / (1 << 15))
    elif tag == 1 and bits == 24 and at >= 1 and count:
        # each sample as the little-endian int32 that ends with its 3 bytes (the byte
        # before it in the low byte, then cleared): v * 2^8, exact in float32, scaled by
        # 2^-31. A contiguous copy first (a strided int32 is 3x slower to compute on),
        # converted in place, a cache-sized block at a time
        wide = np.ndarray((count,), dtype="<i4", buffer=data, offset=at - 1, strides=(3,))
        audio = np.empty(count, dtype=np.float32)
        ints = audio.view(np.int32)
        for first in range(0, count, DECODE_BLOCK):
            part = ints[first : first + DECODE_BLOCK]
            np.copyto(part, wide[first : first + DECODE_BLOCK])
            part &= np.int32(-256)
            np.multiply(
                part,
                np.float32(1.0 / (1 << 31)),
                out=audio[first : first + DECODE_BLOCK],
                dtype=np.float32,
                casting="unsafe",
            )
    elif tag == 1 and bits == 32:
        audio = np.frombuffer(data, dtype="<i4", count=count, offset=at).astype(np.float32)
        audio *= np.float32(1.0 / (1 << 31))
    else:
        return None
    return audio if channels == 1 else audio.reshape(-1, channels)


def decode(data: bytes | bytearray, path: str) -> tuple[np.ndarray, bool]:
    """Samples of a file's bytes as float32, and whether they can hold NaN (float files).

    PCM and float WAVs through :func:`decode_wav`; anything else (FLAC, AIFF, 8-bit) through
    libsndfile from memory, so the file is still read from disk once.
    """
    found = _decode_wav(data)
    if found is not None:
        return found
    try:
        with sf.SoundFile(io.BytesIO(data)) as handle:
            audio = handle.read(handle.frames, dtype="float32", always_2d=False)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise DatasetError(f"{path}: cannot read audio ({str(exc).splitlines()[0]})") from None
    return audio, True


def load_file(
    path: str, *, rate: int, target_rate: int, gain_db: float | None = None, sha256: str = ""
) -> tuple[np.ndarray, bool]:
    """One file read once (checked against ``sha256`` when given): mono float32 at
    ``target_rate`` with ``gain_db`` applied; ``(audio, was_mixed)``."""
    return prepare_bytes(
        read_checked(path, sha256), path, rate=rate, target_rate=target_rate, gain_db=gain_db
    )


def prepare_bytes(
    data: bytes | bytearray, path: str, *, rate: int, target_rate: int, gain_db: float | None = None
) -> tuple[np.ndarray, bool]:
    """A file's bytes as mono float32 at ``target_rate`` with ``gain_db``; (audio, was_mixed)."""
    audio, may_be_nan = decode(data, path)
    mixed = audio.ndim == 2 and audio.shape[1] > 1
    audio, _ = mono_at_rate(
        audio, rate, target_rate=target_rate, gain_db=gain_db, source=path if may_be_nan else ""
    )
    return np.ascontiguousarray(audio), mixed


# ---------------------------------------------------------------- one file, one task


@dataclass(frozen=True)
class Target:
    """Where a split's spans of one file go: the split's ``.npy`` and the byte offset of
    the first span's first sample in it (the spans follow back to back)."""

    path: str
    byte_offset: int
    spans: np.ndarray  # (k, 2) int64 [first, stop) samples of the file


@dataclass(frozen=True)
class FileTask:
    """Everything a worker needs to window one file, decided by the driver beforehand."""

    index: int
    path: str
    sha256: str
    file_rate: int
    rate: int
    frames: int
    gain_db: float | None
    standardize: str
    offset: int
    window: int
    targets: tuple[Target, ...] = ()
    train_starts: np.ndarray | None = None  # with --standardize train: the training windows


@dataclass
class FileResult:
    """What comes back from a task: small, added up by the driver in file order."""

    index: int
    mixed: bool = False
    silent: bool = False
    # per run of back-to-back training windows: float64 sum, sum of squares, samples
    train_sums: list[tuple[float, float, int]] = field(default_factory=list)


def window_file(task: FileTask) -> FileResult:
    """Read, check, prepare and write one file's windows (see the module docstring)."""
    audio, mixed = prepare_bytes(
        read_checked(task.path, task.sha256),
        task.path,
        rate=task.file_rate,
        target_rate=task.rate,
        gain_db=task.gain_db,
    )
    if audio.shape[0] != task.frames:
        raise DatasetError(
            f"{task.path}: {audio.shape[0]} samples read, header said {task.frames}; the file "
            "changed, run the build again"
        )
    silent = False
    if task.standardize == "file":  # over the windowed part: a silent lead-in is no data
        audio, silent = standardize_as(audio, "file", offset=task.offset, in_place=True)
    result = FileResult(task.index, mixed=mixed, silent=silent)
    if task.train_starts is not None:  # over windows, as trained on
        for block in window_blocks(audio, task.train_starts, task.window):
            result.train_sums.append(
                (
                    float(block.sum(dtype=np.float64)),
                    float(np.square(block, dtype=np.float64).sum()),
                    int(block.size),
                )
            )
    for target in task.targets:
        fd = os.open(target.path, os.O_WRONLY)
        try:
            position = target.byte_offset
            for first, stop in target.spans.tolist():
                chunk = memoryview(audio[first:stop]).cast("B")
                while chunk:
                    written = os.pwrite(fd, chunk, position)
                    chunk, position = chunk[written:], position + written
        finally:
            os.close(fd)
    return result


def window_blocks(audio: np.ndarray, starts: np.ndarray, window: int):
    """The windows at ``starts`` as ``(n, window)`` blocks: runs of back-to-back windows
    are reshaped views of ``audio`` (no copy); anything else is gathered."""
    if starts.size == 0:
        return
    breaks = np.flatnonzero(np.diff(starts) != window) + 1
    for run in np.split(starts, breaks):
        first = int(run[0])
        yield audio[first : first + run.size * window].reshape(run.size, window)


def preallocate_npy(path: Path, length: int, dtype: np.dtype = FLOAT32) -> int:
    """An ``.npy`` of ``length`` items whose data the tasks fill in; its header's size.

    The data is never written twice: the file's blocks are reserved whole first (Linux
    ``fallocate``: they read as zeros and cost no write, a full disk is refused here
    before any audio is read, and each task's ``pwrite`` then only fills them in, a third
    faster than into a hole); where the filesystem cannot, the file is sparse.
    """
    with open(path, "wb") as handle:
        header = {
            "descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
            "fortran_order": False,
            "shape": (int(length),),
        }
        np.lib.format.write_array_header_1_0(handle, header)
        header_bytes = handle.tell()
        size = header_bytes + int(length) * np.dtype(dtype).itemsize
        handle.flush()
        reserve_blocks(handle.fileno(), size, path)
        handle.truncate(size)
    return header_bytes


def reserve_blocks(fd: int, size: int, path: str | os.PathLike) -> None:
    """Reserve ``size`` bytes of disk for an open file, or leave it to grow sparse where
    the system cannot (not Linux, a filesystem without ``fallocate``); a full disk is a
    one-line :class:`DatasetError` naming the file."""
    fallocate = _fallocate()
    if fallocate is None or size <= 0:
        return
    if fallocate(fd, 0, 0, size) == 0:
        return
    code = ctypes.get_errno()
    if code in DISK_FULL_ERRNOS:
        raise DatasetError(
            f"{path}: {size / 2**30:.2f} GiB do not fit on its disk ({os.strerror(code)}); "
            "free some space, or build fewer rows or a shorter window overlap"
        )


@functools.cache
def _fallocate():
    """libc's ``fallocate(2)`` (never ``posix_fallocate``, which writes zeros where the
    filesystem cannot reserve), or None off Linux."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        call = ctypes.CDLL(None, use_errno=True).fallocate
    except (OSError, AttributeError):
        return None
    call.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)
    call.restype = ctypes.c_int
    return call


# ---------------------------------------------------------------- running the tasks


def resolve_jobs(jobs: int | None) -> int:
    """``--jobs``: a number of processes, 0 (or None) for every core this process may use."""
    return parallel.resolve_jobs(jobs, error=DatasetError)


# With --jobs 0, one worker process per this many samples of audio (6.3 minutes at
# 44.1 kHz, ~0.07 s of work), up to one per core: a worker costs a fork and its first
# task, which a few seconds of audio would not repay
AUDIO_PER_WORKER = 1 << 24
# Files go to a worker in tasks of about this many samples (95 s at 44.1 kHz), and at least
# TASKS_PER_WORKER tasks a worker: sending a task costs ~1 ms each way, as much as a 5 s
# take's work (1,600 short takes cost 43 % more CPU with 2 processes sent one at a time)
AUDIO_PER_TASK = 1 << 22
TASKS_PER_WORKER = 4


@dataclass(frozen=True)
class Workers:
    """Where a build's files are read: ``processes`` (1: this one), ``files_per_task``
    sent to a process at once."""

    processes: int = 1
    files_per_task: int = 1

    def map(self, fn: Callable, items: Iterable) -> Iterator:
        """``fn`` over ``items``, results in order (``corpus.parallel.map_ordered``)."""
        return parallel.map_ordered(
            fn, items, jobs=self.processes, error=DatasetError, chunk=self.files_per_task
        )


IN_THIS_PROCESS = Workers()  # one file after another, here


def build_workers(jobs: int | None, frames: list[int]) -> Workers:
    """The processes for a build of files of ``frames`` samples: ``jobs`` as asked, or for
    0 (every core) one per core, but no more than the audio keeps busy; and how many files
    each task carries."""
    cores, total = resolve_jobs(jobs), sum(int(f) for f in frames)
    processes = cores if jobs else max(1, min(cores, total // AUDIO_PER_WORKER))
    if processes <= 1 or not frames:
        return Workers(processes)
    by_audio = AUDIO_PER_TASK * len(frames) // max(total, 1)
    for_balance = -(-len(frames) // (TASKS_PER_WORKER * processes))
    return Workers(processes, max(1, min(by_audio, for_balance)))


def run_tasks(
    tasks: Iterable[FileTask],
    *,
    workers: Workers = IN_THIS_PROCESS,
    engine: str = "local",
    scheduler: str | None = None,
    work: Path | None = None,
) -> Iterator[FileResult]:
    """The tasks' results in task order, however they ran.

    ``engine="local"``: in ``workers``' processes (one: here, one file after another, on
    one core); ``"dask"``: on the cluster at ``scheduler`` (or a LocalCluster of
    ``workers.processes``), whose workers must see ``work`` (the folder being built) at
    the same path.
    """
    check_engine(engine, scheduler, error=DatasetError)
    if engine == "dask":
        yield from _run_dask(tasks, jobs=workers.processes, scheduler=scheduler, work=work)
    else:
        yield from workers.map(window_file, tasks)


# ---------------------------------------------------------------- looks before the plan


@dataclass(frozen=True)
class Probe:
    """A look at one file as recorded (no gain, no standardization) that the plan needs
    before any window is placed: its first sound (``--trim-silence``), its note windows
    (``--onsets``: ``windowing`` is an ``onsets.OnsetWindows``) or which of ``starts``
    are below the gate (``--skip-silence``)."""

    path: str
    file_rate: int
    rate: int
    kind: str
    windowing: object = None
    starts: np.ndarray | None = None
    window: int = 0
    floor_dbfs: float = 0.0


def probe_audio(probe: Probe) -> int | np.ndarray:
    """What :class:`Probe` asks, from the file read once."""
    from guitarlab.datasets.windows import first_sound_sample, sounding

    audio, _ = load_file(probe.path, rate=probe.file_rate, target_rate=probe.rate)
    if probe.kind == "first_sound":
        return first_sound_sample(audio, probe.rate)
    if probe.kind == "onsets":
        return probe.windowing.starts(audio, probe.rate)
    starts = probe.starts
    blocks = np.stack([audio[s : s + probe.window] for s in starts])
    return starts[~sounding(blocks, floor_dbfs=probe.floor_dbfs)]


def folder_problem(folder: str, dask_worker=None) -> str | None:
    """Why this Dask worker cannot write the dataset folder being built, or None."""
    if os.path.isdir(folder) and os.access(folder, os.W_OK):
        return None
    from guitarlab.corpus.cluster import worker_name

    return (
        f"Dask worker {worker_name(dask_worker)} cannot write {folder}; every worker needs the "
        "corpus and the dataset folder on a shared filesystem at the same path"
    )


def _run_dask(
    tasks: list[FileTask], *, jobs: int, scheduler: str | None, work: Path | None
) -> Iterator[FileResult]:
    from guitarlab.corpus.cluster import dask_client

    where = str(Path(work).absolute()) if work is not None else ""
    with dask_client(scheduler, workers=max(1, jobs), error=DatasetError) as client:
        if where:
            answers = client.run(folder_problem, where)
            if not answers:
                raise DatasetError("the Dask cluster has no workers; start some with 'dask worker'")
            problems = [p for p in answers.values() if p]
            if problems:
                raise DatasetError(problems[0])
        run = uuid.uuid4().hex[:8]
        futures = client.map(
            window_file, tasks, key=[f"dataset-{t.index}-{run}" for t in tasks], pure=False
        )
        try:
            for future in futures:
                result = future.result()
                future.release()
                yield result
        except BaseException:
            client.cancel(futures)
            raise
