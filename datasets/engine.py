"""One pass over the audio of a dataset build, in this process, in N processes or on Dask.

The driver (``stream.stream_windows``) knows before any sample is read where every file's
windows go: each split's spans and their place in the split's ``.npy`` follow from the
file headers and the plan. So a file is a self-contained task (:class:`FileTask`): read
its bytes once (a block at a time, each hashed and decoded as it arrives), check their
sha256 against the manifest, mix, resample, standardize, and write its spans straight
into the preallocated split files at their offsets (``os.pwrite``). Tasks may run in any
order on any process or machine; the bytes land in the same places, so a build with
``--jobs 4`` or on a Dask cluster is the 1-job build bit for bit. ``--jobs N`` is N
processes, each one file at a time, sent files in tasks that shrink as the build goes
(:func:`task_files`); one job is this process alone, one file after another on one
core. Only small results (mixed, silent, the training windows' sums) come back, and the
driver adds them up in file order.

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
import threading
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


# A file's bytes are hashed and decoded as each block arrives, while it is still in the
# core's cache (a WAV's bytes are never held whole), and PCM is converted a cache-sized
# block at a time rather than in three passes over the whole file (24-bit: 0.7x the time,
# measured over 64 one-minute files)
READ_BLOCK = 1 << 20
DECODE_BLOCK = 1 << 16  # samples


def read_samples(path: str, sha256: str = "", *, scratch: bool = False) -> tuple[np.ndarray, bool]:
    """A file's samples as float32 (``(frames,)``, or ``(frames, channels)``) and whether
    they can hold NaN (float files), its bytes read from disk once, each block hashed and
    (a PCM or float WAV) decoded as it arrives; with ``sha256``, checked against it.

    A WAV's bytes are never held whole: a block at a time goes from the disk through the
    hash into the samples, in one reused buffer, so a file costs its samples' memory and
    no copy of its bytes. ``scratch``: the samples are this thread's reused buffer too,
    valid until its next call (a build's files, one at a time: no fresh pages to fault
    in per file).
    """
    digest = hashlib.sha256() if sha256 else None
    try:
        with open(path, "rb", buffering=0) as handle:
            length = os.fstat(handle.fileno()).st_size
            head = bytearray(min(length, HEAD_BYTES))
            del head[_read_into(handle, memoryview(head), digest) :]
            found = _wav_data(head, length) if length > len(head) else None
            if found is not None and _pcm_layout(*found[0], found[2]) is not None:
                fmt, at, size, _ = found
                audio = _stream_pcm(path, handle, head, fmt, at, size, digest, scratch)
                may_be_nan = fmt[0] == 3
            else:  # a short file, or not a plain WAV: read whole, then decoded
                data = head + bytearray(max(0, length - len(head)))
                got = len(head) + _read_into(handle, memoryview(data)[len(head) :], digest)
                del data[got:]  # shorter than its size a moment ago: the sha256 differs
                audio = None
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror})") from None
    check_sha256(path, digest, sha256)
    if audio is None:
        audio, may_be_nan = decode(data, path)
    return audio, may_be_nan


HEAD_BYTES = 1 << 16  # a WAV's header chunks are read first, and must lie in these


def check_sha256(path: str, digest, sha256: str) -> None:
    """One line when a file's bytes (hashed into ``digest``) are not its manifest row's."""
    if digest is not None and digest.hexdigest() != sha256:
        raise DatasetError(
            f"{path}: sha256 differs from its manifest row: the file changed since it was "
            "added; run 'guitarlab manifest check'"
        )


def _read_into(handle, view: memoryview, digest) -> int:
    """Fill ``view`` from ``handle`` a block at a time, each hashed as it arrives; the
    bytes read (fewer at the end of the file)."""
    got = 0
    while got < len(view):
        n = handle.readinto(view[got : got + READ_BLOCK])
        if not n:
            break
        if digest is not None:
            digest.update(view[got : got + n])
        got += n
    return got


def _stream_pcm(
    path: str, handle, head: bytearray, fmt: tuple, at: int, size: int, digest, scratch: bool
) -> np.ndarray:
    """The data chunk's samples, decoded a block of whole frames at a time as it is read
    (the first bytes from ``head``); the rest of the file is read to the end for the hash."""
    _, channels, block, bits = fmt
    width = bits // 8
    count = size // width
    audio = _scratch_samples(count) if scratch else np.empty(count, dtype=np.float32)
    # whole frames a read, at least the header block's worth, at most the data
    step = min(max(READ_BLOCK // block, -(-len(head) // block), 1) * block, size)
    buffer = _scratch_bytes(1 + step)  # byte 0 stays before the block: the 24-bit decoder reads it
    view = memoryview(buffer)[: 1 + step]
    filled = max(0, min(len(head), at + size) - at)  # the data's first bytes, read with the head
    view[1 : 1 + filled] = head[at : at + filled]
    done = 0
    while done < size:
        want = min(step, size - done)
        if filled < want:
            filled += _read_into(handle, view[1 + filled : 1 + want], digest)
            if filled < want:
                raise DatasetError(
                    f"{path}: shorter than its size a moment ago: the file changed while it "
                    "was read; run the build again"
                )
        _pcm_samples(buffer, 1, want, *fmt, out=audio[done // width :])
        view[1 : 1 + filled - want] = view[1 + want : 1 + filled]
        done, filled = done + want, filled - want
    if digest is not None:  # the chunks after the data
        while _read_into(handle, view, digest) == len(view):
            pass
    del view
    return audio if channels == 1 else audio.reshape(-1, channels)


_SCRATCH = threading.local()


def release_scratch() -> None:
    """Give this thread's buffers back (a long-lived process keeps no file's worth)."""
    _SCRATCH.__dict__.clear()


def _scratch_bytes(size: int) -> bytearray:
    """This thread's read buffer of at least ``size`` bytes: a file's blocks pass through it
    and never leave it, so it is reused by every read (a fresh zeroed megabyte per file
    cost as much as decoding a 5 s take)."""
    buffer = getattr(_SCRATCH, "bytes", None)
    if buffer is None or len(buffer) < size:
        buffer = _SCRATCH.bytes = bytearray(size)
    return buffer


def _scratch_samples(count: int) -> np.ndarray:
    """This thread's float32 buffer of at least ``count`` samples (grown, never shrunk)."""
    samples = getattr(_SCRATCH, "samples", None)
    if samples is None or samples.size < count:
        samples = _SCRATCH.samples = np.empty(count, dtype=np.float32)
    return samples[:count]


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
    found = _wav_data(data, len(data))
    if found is None:
        return None
    fmt, at, size, _ = found
    audio = _pcm_samples(data, at, size, *fmt)
    return None if audio is None else (audio, fmt[0] == 3)


def wav_header(path: str) -> tuple[int, int, int] | None:
    """``(rate, channels, frames)`` of a PCM 16/24/32 or float WAV from its first 4 KB, or
    None for anything else (and a WAV whose data runs past its end): one small read where
    libsndfile's header parse and the cut-off check took two opens (a build of 1,600 takes
    plans 0.1 s sooner)."""
    with open(path, "rb") as handle:
        length = os.fstat(handle.fileno()).st_size
        head = handle.read(1 << 12)
    found = _wav_data(head, length)
    if found is None or _pcm_layout(*found[0], found[2]) is None:
        return None
    (_, channels, block, _), _, size, rate = found
    return rate, channels, size // block


def _wav_data(head: bytes | bytearray, length: int) -> tuple[tuple, int, int, int] | None:
    """``((tag, channels, block, bits), at, size, rate)`` of the data chunk of a
    ``length``-byte WAV whose first bytes are ``head`` (its format chunk among them), or
    None."""
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    pos, fmt = 12, None
    while pos + 8 <= len(head):
        chunk, size = head[pos : pos + 4], int.from_bytes(head[pos + 4 : pos + 8], "little")
        body = pos + 8
        if chunk == b"fmt ":
            if size < 16 or body + size > len(head):
                return None
            tag, channels, rate, _, block, bits = struct.unpack_from("<HHIIHH", head, body)
            if tag == 0xFFFE:  # WAVE_FORMAT_EXTENSIBLE: the subformat's first two bytes
                if size < 40:
                    return None
                tag = struct.unpack_from("<H", head, body + 24)[0]
            fmt = (tag, channels, block, bits)
        elif chunk == b"data":
            if fmt is None or body + size > length:
                return None
            return fmt, body, size, rate
        pos = body + size + (size & 1)  # chunks are padded to an even length
    return None


def _pcm_layout(tag: int, channels: int, block: int, bits: int, size: int) -> int | None:
    """The samples (all channels) in ``size`` bytes of a format this module decodes, or None."""
    if channels < 1 or block != channels * (bits // 8) or bits % 8 or size % block:
        return None
    if not ((tag == 3 and bits == 32) or (tag == 1 and bits in (16, 24, 32))):
        return None
    return size // (bits // 8)


def _pcm_samples(
    data: bytes | bytearray,
    at: int,
    size: int,
    tag: int,
    channels: int,
    block: int,
    bits: int,
    out: np.ndarray | None = None,
) -> np.ndarray | None:
    """The samples of ``size`` bytes at ``at`` as float32 (in ``out``, flat, when given)."""
    count = _pcm_layout(tag, channels, block, bits, size)  # samples, all channels
    if count is None:
        return None
    audio = np.empty(count, dtype=np.float32) if out is None else out[:count]
    if tag == 3:
        np.copyto(audio, np.frombuffer(data, dtype="<f4", count=count, offset=at))
    elif bits == 16:
        shorts = np.frombuffer(data, dtype="<i2", count=count, offset=at)
        for first in range(0, count, DECODE_BLOCK):
            part = audio[first : first + DECODE_BLOCK]
            np.copyto(part, shorts[first : first + DECODE_BLOCK], casting="unsafe")
            part *= np.float32(1.0 / (1 << 15))
    elif bits == 24:
        if at < 1:
            return None
        # each sample as the little-endian int32 that ends with its 3 bytes (the byte
        # before it in the low byte, then cleared): v * 2^8, exact in float32, scaled by
        # 2^-31. A contiguous copy first (a strided int32 is 3x slower to compute on),
        # converted in place, a cache-sized block at a time
        wide = np.ndarray((count,), dtype="<i4", buffer=data, offset=at - 1, strides=(3,))
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
    else:
        np.copyto(audio, np.frombuffer(data, dtype="<i4", count=count, offset=at), casting="unsafe")
        audio *= np.float32(1.0 / (1 << 31))
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
    path: str,
    *,
    rate: int,
    target_rate: int,
    gain_db: float | None = None,
    sha256: str = "",
    scratch: bool = False,
) -> tuple[np.ndarray, bool]:
    """One file read once (checked against ``sha256`` when given): mono float32 at
    ``target_rate`` with ``gain_db`` applied; ``(audio, was_mixed)``. ``scratch``: see
    :func:`read_samples` (the audio may be its reused buffer)."""
    audio, may_be_nan = read_samples(path, sha256, scratch=scratch)
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


def window_file(task: FileTask, *, scratch: bool = True) -> FileResult:
    """Read, check, prepare and write one file's windows (see the module docstring).
    ``scratch``: the samples go into this thread's reused buffer (a local build's files
    come one after another; a Dask worker's threads take one file each, and keep none)."""
    audio, mixed = load_file(
        task.path,
        rate=task.file_rate,
        target_rate=task.rate,
        gain_db=task.gain_db,
        sha256=task.sha256,
        scratch=scratch,
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
# Files go to a worker in tasks that shrink as the build goes: each about the audio left
# over TASK_SHARE tasks a process, so the first are large (sending a task costs ~1 ms each
# way, as much as a 5 s take's work) and the last are single files (the processes finish
# together); a task carries at least MIN_TASK_AUDIO samples (~1.5 s at 44.1 kHz)
TASK_SHARE = 4
MIN_TASK_AUDIO = 1 << 16


@dataclass(frozen=True)
class Workers:
    """Where a build's files are read: ``processes`` (1: this one), and how many files
    each task sent to a process carries, in file order (``task_files``; after the last,
    one at a time)."""

    processes: int = 1
    task_files: tuple[int, ...] = ()

    def map(self, fn: Callable, items: Iterable) -> Iterator:
        """``fn`` over ``items``, results in order (``corpus.parallel.map_ordered``)."""
        return parallel.map_ordered(
            fn, items, jobs=self.processes, error=DatasetError, chunk=self.task_files or 1
        )


IN_THIS_PROCESS = Workers()  # one file after another, here


def build_workers(jobs: int | None, frames: list[int]) -> Workers:
    """The processes for a build of files of ``frames`` samples: ``jobs`` as asked, or for
    0 (every core) one per core, but no more than the audio keeps busy; and the files
    each task carries (:func:`task_files`)."""
    cores, total = resolve_jobs(jobs), sum(int(f) for f in frames)
    processes = cores if jobs else max(1, min(cores, total // AUDIO_PER_WORKER))
    if processes <= 1 or not frames:
        return Workers(processes)
    return Workers(processes, task_files(frames, processes))


def task_files(frames: list[int], processes: int) -> tuple[int, ...]:
    """Files per task, in file order: each task about the audio left over ``TASK_SHARE *
    processes`` (and at least ``MIN_TASK_AUDIO``), so few tasks travel and none is left
    running long after the rest (the guided schedule of OpenMP).

    Examples
    --------
    >>> task_files([100_000] * 40, 2)
    (5, 4, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1)
    """
    sizes, left, first = [], sum(int(f) for f in frames), 0
    while first < len(frames):
        share = max(left / (TASK_SHARE * processes), MIN_TASK_AUDIO)
        stop, audio = first + 1, int(frames[first])
        while stop < len(frames) and audio + int(frames[stop]) <= share:
            audio += int(frames[stop])
            stop += 1
        sizes.append(stop - first)
        left -= audio
        first = stop
    return tuple(sizes)


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
        return
    try:
        yield from workers.map(window_file, tasks)
    finally:  # the processes end with the build; this one goes on without the buffer
        release_scratch()


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
    from guitarlab.datasets.windows import WindowView, first_sound_sample, sounding

    audio, _ = load_file(probe.path, rate=probe.file_rate, target_rate=probe.rate)
    if probe.kind == "first_sound":
        return first_sound_sample(audio, probe.rate)
    if probe.kind == "onsets":
        return probe.windowing.starts(audio, probe.rate)
    windows = WindowView(audio, probe.starts, probe.window)
    return probe.starts[~sounding(windows, floor_dbfs=probe.floor_dbfs)]


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
            functools.partial(window_file, scratch=False),
            tasks,
            key=[f"dataset-{t.index}-{run}" for t in tasks],
            pure=False,
        )
        try:
            for future in futures:
                result = future.result()
                future.release()
                yield result
        except BaseException:
            client.cancel(futures)
            raise
