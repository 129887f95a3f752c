"""The take writer: the audio callback only queues blocks, a writer thread streams them to disk.

Nothing heavy runs on the audio thread, so a slow disk or a busy CPU costs queue space,
not audio. The WAV is opened with libsndfile's header auto-update
(``SFC_SET_UPDATE_HEADER_AUTO``): the header is rewritten after every block, so a process
killed with SIGKILL leaves a file every reader opens with all the audio written so far.

Dropouts are counted three ways: PortAudio's input-overflow flag, blocks the callback
could not queue (the writer fell behind; the gap is filled with silence so the take
keeps its timeline), and frames received compared with the wall clock (some audio
servers never report an overflow).
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from guitarlab.corpus.audio import DEFAULT_SUBTYPE
from guitarlab.corpus.errors import RecorderError
from guitarlab.recorder.meter import LevelMeter

SFC_SET_UPDATE_HEADER_AUTO = 0x1061


def open_streaming_wav(
    path: str | os.PathLike, *, sample_rate: int, channels: int = 1, subtype: str = DEFAULT_SUBTYPE
) -> sf.SoundFile:
    """A WAV opened for writing whose header stays valid after every write."""
    try:
        handle = sf.SoundFile(
            str(path),
            mode="w",
            samplerate=int(sample_rate),
            channels=int(channels),
            subtype=subtype,
            format="WAV",
        )
    except (sf.LibsndfileError, RuntimeError, ValueError, OSError) as exc:
        raise RecorderError(
            f"{path}: cannot create the take ({' '.join(str(exc).split())}); check the folder and --subtype"
        ) from exc
    sf._snd.sf_command(handle._file, SFC_SET_UPDATE_HEADER_AUTO, sf._ffi.NULL, sf._snd.SF_TRUE)
    return handle


def repair_header(path: str | os.PathLike) -> int:
    """Rewrite the header of a WAV left by a killed process; returns its frame count.

    libsndfile reads such files by their size; opening in ``'r+'`` and closing writes the
    sizes into the header so every other reader (Python's ``wave``, sox) agrees.
    """
    try:
        with sf.SoundFile(str(path), mode="r+") as handle:
            frames = handle.frames
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise RecorderError(
            f"{path}: cannot repair the header ({' '.join(str(exc).split())}); the file may be empty or not a WAV"
        ) from exc
    return int(frames)


@dataclass(frozen=True)
class Dropout:
    """Audio that went missing (or arrived late) at ``at_s`` seconds into the take.

    ``kind``: ``overflow`` (the driver said so), ``queue_full`` (the writer fell behind;
    the gap holds silence), ``clock`` (fewer frames than the wall clock says were lost),
    ``stall`` (audio stopped for ``late_s`` then caught up; nothing lost).
    """

    kind: str
    at_s: float
    missing_frames: int = 0
    late_s: float = 0.0

    def as_dict(self) -> dict:
        data = asdict(self)
        data["at_s"] = round(self.at_s, 3)
        data["late_s"] = round(self.late_s, 3)
        return data

    def describe(self) -> str:
        if self.kind == "stall":
            return f"at {self.at_s:.2f}s audio stalled for {self.late_s:.2f}s, then caught up (nothing lost)"
        if self.kind == "overflow":
            return f"at {self.at_s:.2f}s the driver reported an input overflow"
        return f"at {self.at_s:.2f}s {self.missing_frames} frame(s) lost ({self.kind})"


class ClockCheck:
    """Frames received against the wall clock: finds audio that stopped arriving.

    ``lead`` is frames received minus frames the clock says should have arrived. It
    jitters by about a block and starts with a burst; a fall of more than ``tolerance_s``
    below its running best is an event. If the lead comes back the audio was late (a
    stall, reported from ``report_stall_s``); if it settles lower, frames were lost.
    """

    def __init__(
        self,
        sample_rate: int,
        *,
        tolerance_s: float = 0.1,
        settle_s: float = 1.0,
        report_stall_s: float = 0.25,
    ):
        self.rate = int(sample_rate)
        self.tolerance = tolerance_s * self.rate
        self.settle = settle_s * self.rate
        self.report_stall_s = report_stall_s
        self.events: list[Dropout] = []
        self._t0: float | None = None
        self._best = -np.inf
        self._event: dict | None = None
        self._lead = 0.0

    def update(self, received_frames: int, arrival_s: float) -> None:
        """Call after each block with the total frames so far and the block's arrival time."""
        if self._t0 is None:
            self._t0 = arrival_s - received_frames / self.rate
        lead = received_frames - (arrival_s - self._t0) * self.rate
        self._lead = lead
        if self._event is None:
            if lead < self._best - self.tolerance:
                self._event = {
                    "at": received_frames,
                    "low": lead,
                    "ref": lead,
                    "ref_at": received_frames,
                }
            else:
                self._best = max(self._best, lead)
            return
        event = self._event
        event["low"] = min(event["low"], lead)
        if lead >= self._best - self.tolerance / 2:
            self._close(late=True)
        elif abs(lead - event["ref"]) > self.tolerance / 2:
            event["ref"], event["ref_at"] = lead, received_frames
        elif received_frames - event["ref_at"] >= self.settle:
            self._close(late=False)

    def _close(self, *, late: bool) -> None:
        event, self._event = self._event, None
        at_s = event["at"] / self.rate
        if late:
            late_s = (self._best - event["low"]) / self.rate
            if late_s >= self.report_stall_s:  # shorter ones are scheduling jitter under load
                self.events.append(Dropout("stall", at_s, 0, late_s))
        else:
            missing = int(round(self._best - self._lead))
            self.events.append(Dropout("clock", at_s, missing, missing / self.rate))
            self._best = self._lead

    def finish(self) -> list[Dropout]:
        """Close an open event (lost if the lead never came back) and return all events."""
        if self._event is not None:
            if self._best - self._lead > self.tolerance:
                self._close(late=False)
            else:
                self._close(late=True)
        return list(self.events)


@dataclass
class Stall:
    """A test hook: delay the ``writer`` thread or the audio ``callback`` once, at ``at_s``."""

    where: str
    at_s: float
    seconds: float


@dataclass
class TakeStats:
    """What happened during a take, for the row and the benchmark."""

    frames_written: int = 0
    frames_queued: int = 0
    overflow_blocks: int = 0
    dropouts: list[Dropout] = field(default_factory=list)
    writer_cpu_s: float = 0.0
    first_callback_s: float | None = None
    armed_wall_s: float = 0.0
    clock_span_s: float = 0.0
    frames_in_span: int = 0
    error: str = ""

    @property
    def clock_ratio(self) -> float:
        """Frames received per frame the wall clock expects, first to last block (~1.0)."""
        return self.frames_in_span / self.clock_span_s if self.clock_span_s > 0 else float("nan")

    @property
    def dropped_frames(self) -> int:
        return int(sum(d.missing_frames for d in self.dropouts))


class TakeWriter:
    """Streams one take to ``path``: give :meth:`callback` to an input stream.

    Frames arriving before :meth:`arm` are ignored (count-in, stream start); after
    ``max_frames`` the take is complete and :attr:`complete` is set. ``linked`` are more
    ``(path, channel)`` files written from other inputs of the same blocks: every file
    gets the same frames, so inputs recorded together stay sample-aligned.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        sample_rate: int,
        channel: int = 1,
        subtype: str = DEFAULT_SUBTYPE,
        max_frames: int | None = None,
        queue_s: float = 30.0,
        block_frames: int = 1024,
        meter: LevelMeter | None = None,
        stall: Stall | None = None,
        linked: Sequence[tuple[str | os.PathLike, int]] = (),
    ) -> None:
        if stall is not None and stall.where not in ("writer", "callback"):
            raise RecorderError(f"stall.where {stall.where!r} must be 'writer' or 'callback'")
        self.path = Path(path)
        self.rate = int(sample_rate)
        self.column = int(channel) - 1
        self.linked = [(Path(p), int(c) - 1) for p, c in linked]
        self._columns = [self.column] + [c for _, c in self.linked]
        self._linked_handles: list[sf.SoundFile] = []
        self.subtype = subtype
        self.max_frames = max_frames
        self.meter = meter
        self.stall = stall
        self.stats = TakeStats()
        self.clock = ClockCheck(self.rate)
        self.first_callback = threading.Event()
        self.complete = threading.Event()
        self._queue: queue.Queue = queue.Queue(
            maxsize=max(2, int(queue_s * self.rate / max(block_frames, 1)))
        )
        self._armed = False
        self._frames_in = 0
        self._handle: sf.SoundFile | None = None
        self._thread: threading.Thread | None = None
        self._opened_at = 0.0
        self._armed_at = 0.0
        self._stalled = False

    # ------------------------------------------------------------ the audio thread

    def callback(self, indata: np.ndarray, frames: int, time_info, status) -> None:
        """The PortAudio callback: copy the block into the queue, nothing else."""
        now = time.monotonic()
        if not self.first_callback.is_set():
            self.stats.first_callback_s = now - self._opened_at
            self.first_callback.set()
        if not self._armed or self.complete.is_set():
            return
        take = frames
        if self.max_frames is not None:
            take = min(frames, self.max_frames - self._frames_in)
        if self.linked:  # (frames, files): one column per file
            block = indata[:take, self._columns].copy()
        else:
            block = indata[:take, self.column].copy()
        overflow = bool(getattr(status, "input_overflow", False))
        if (
            self.stall is not None
            and self.stall.where == "callback"
            and not self._stalled
            and self._frames_in >= self.stall.at_s * self.rate
        ):
            self._stalled = True
            time.sleep(self.stall.seconds)
        # when the queue is full the writer sees the gap in frame numbers and fills it
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait((self._frames_in, block, now, overflow))
        self._frames_in += take
        if self.max_frames is not None and self._frames_in >= self.max_frames:
            self.complete.set()

    # ------------------------------------------------------------ control

    def start(self) -> None:
        """Create the file and start the writer thread (not yet recording: see :meth:`arm`)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open_streaming_wav(self.path, sample_rate=self.rate, subtype=self.subtype)
        try:
            for path, _ in self.linked:
                self._linked_handles.append(
                    open_streaming_wav(path, sample_rate=self.rate, subtype=self.subtype)
                )
        except BaseException:
            for handle in [self._handle, *self._linked_handles]:
                handle.close()
            for path in [self.path, *(p for p, _ in self.linked)]:
                path.unlink(missing_ok=True)
            self._handle, self._linked_handles = None, []
            raise
        self._opened_at = time.monotonic()
        self._thread = threading.Thread(target=self._write_loop, name="take-writer", daemon=True)
        self._thread.start()

    def arm(self) -> None:
        """Start keeping frames (after the count-in)."""
        self._armed_at = time.monotonic()
        self._armed = True

    @property
    def frames_captured(self) -> int:
        return self._frames_in

    def finish(self) -> TakeStats:
        """Stop taking frames, drain the queue, close the file; returns the stats."""
        self._armed = False
        self.complete.set()
        if self._thread is not None:
            while self._thread.is_alive():
                try:
                    self._queue.put(None, timeout=0.1)
                    break
                except queue.Full:
                    continue
            self._thread.join()
            self._thread = None
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        for handle in self._linked_handles:
            handle.close()
        self._linked_handles = []
        self.stats.frames_queued = self._frames_in
        self.stats.armed_wall_s = time.monotonic() - self._armed_at if self._armed_at else 0.0
        self.stats.dropouts = sorted(
            self.stats.dropouts + self.clock.finish(), key=lambda d: d.at_s
        )
        return self.stats

    # ------------------------------------------------------------ the writer thread

    def _write_loop(self) -> None:
        cpu_start = time.thread_time()
        written = 0
        first_arrival, first_end = None, 0
        while True:
            item = self._queue.get()
            if item is None:
                break
            start, block, arrival, overflow = item
            if start > written:
                gap = start - written
                self.stats.dropouts.append(Dropout("queue_full", written / self.rate, gap))
                shape = (gap, len(self._columns)) if self.linked else gap
                self._write(np.zeros(shape, np.float32))
                written += gap
            if overflow:
                self.stats.overflow_blocks += 1
                self.stats.dropouts.append(Dropout("overflow", start / self.rate))
            self._write(block)
            written += len(block)
            self.clock.update(start + len(block), arrival)
            if first_arrival is None:
                first_arrival, first_end = arrival, start + len(block)
            else:
                self.stats.clock_span_s = arrival - first_arrival
                self.stats.frames_in_span = start + len(block) - first_end
            if self.meter is not None:
                self.meter.update(block)
            if (
                self.stall is not None
                and self.stall.where == "writer"
                and not self._stalled
                and written >= self.stall.at_s * self.rate
            ):
                self._stalled = True
                time.sleep(self.stall.seconds)
        self.stats.writer_cpu_s = time.thread_time() - cpu_start

    def _write(self, block: np.ndarray) -> None:
        if self.stats.error or self._handle is None:
            return
        try:
            if self.linked:  # the first column to the take, the others to their files
                self._handle.write(np.ascontiguousarray(block[:, 0]))
                for handle, column in zip(self._linked_handles, block[:, 1:].T, strict=True):
                    handle.write(np.ascontiguousarray(column))
            else:
                self._handle.write(block)
            self.stats.frames_written += len(block)
        except Exception as exc:  # disk full, a file size limit, a removed drive
            self.stats.frames_written = self._frames_on_disk()
            self.stats.error = (
                f"writing {self.path} failed after {self.stats.frames_written / self.rate:.1f} s "
                f"({_write_failure_reason(self._handle, exc)}); is the disk full? free space "
                "(or record shorter takes) and record again"
            )

    def _frames_on_disk(self) -> int:
        """Frames libsndfile managed to write, a failed block's partial frames included."""
        try:
            return int(self._handle.tell())  # libsndfile's write position; .frames lags
        except Exception:  # pragma: no cover - the handle is still open here
            return self.stats.frames_written


def _write_failure_reason(handle: sf.SoundFile, exc: Exception) -> str:
    """The system's reason for a failed write ("No space left on device"), not "System error"."""
    reason = ""
    with contextlib.suppress(Exception):
        reason = sf._ffi.string(sf._snd.sf_strerror(handle._file)).decode(errors="replace")
    reason = reason.removeprefix("System error").strip(" :.")
    if not reason or reason == "No Error":  # a short write: libsndfile kept no errno
        reason = _probe_append(handle.name)
    return reason or " ".join(str(exc).split()) or "short write"


def _probe_append(path: str) -> str:
    """Append one byte to ``path`` and take it back: the OS names why the file cannot grow."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    except OSError as exc:
        return exc.strerror or ""
    try:
        size = os.fstat(fd).st_size
        os.write(fd, b"\0")
        os.ftruncate(fd, size)
    except OSError as exc:
        return exc.strerror or ""
    finally:
        os.close(fd)
    return ""
