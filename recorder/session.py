"""The recording edge: a take from an input device into ``takes/<id>.wav`` plus its manifest row.

``record_take`` opens the input, plays the count-in and the click on the output (never
into the take), optionally plays a given array into a second output (the synthetic
guitar in the demo and the tests reaches the input the way a real guitar does), streams
the take to disk through :class:`~guitarlab.recorder.take.TakeWriter`, checks it and
appends its row. Ctrl-C or ``stop`` keeps what was recorded, marked ``partial``.
``record_takes`` records several in a row: the pauses, Ctrl-C and SIGTERM, the verdict.

One module so that one take's life (count-in, stream, meter, writer, checks, row,
commit) reads top to bottom.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import soundfile as sf

from guitarlab.corpus.audio import DEFAULT_SUBTYPE
from guitarlab.corpus.checks import Finding, check_take, findings_to_json
from guitarlab.corpus.defaults import BPM, BPM_RANGE, RECORD_RATE
from guitarlab.corpus.errors import GuitarlabError, RecorderError
from guitarlab.corpus.levels import DEFAULT_TARGET_PEAK_DBFS
from guitarlab.recorder import devices
from guitarlab.recorder.calibration import (
    calibrated_peak,
    load_calibration,
    reference_mismatch,
)
from guitarlab.recorder.meter import LevelMeter, MeterReading
from guitarlab.recorder.take import Dropout, Stall, TakeStats, TakeWriter

FIRST_CALLBACK_TIMEOUT_S = 5.0
INPUT_SILENT_TIMEOUT_S = 3.0
SOURCE_DEVICE_ENV = "GUITARLAB_SOURCE_DEVICE"


@dataclass(frozen=True)
class Progress:
    """What the screen shows during a take: phase, time and the meter."""

    phase: str  # "waiting", "count-in", "recording"
    elapsed_s: float
    remaining_s: float
    reading: MeterReading | None
    beat: int = 0


# ---------------------------------------------------------------- pure helpers


def click_block(
    start_frame: int,
    frames: int,
    sample_rate: int,
    *,
    bpm: float,
    beats_per_bar: int = 4,
    click_ms: float = 30.0,
    level: float = 0.3,
) -> np.ndarray:
    """``frames`` samples of a metronome starting at ``start_frame`` (accented first beat)."""
    positions = start_frame + np.arange(frames)
    beat_frames = sample_rate * 60.0 / bpm
    beat = np.floor(positions / beat_frames)
    into_beat = positions - beat * beat_frames
    click_frames = click_ms * 1e-3 * sample_rate
    freq_hz = np.where(beat % beats_per_bar == 0, 2000.0, 1400.0)
    envelope = np.where(into_beat < click_frames, np.exp(-into_beat / (click_frames / 5)), 0.0)
    return (level * envelope * np.sin(2 * np.pi * freq_hz * into_beat / sample_rate)).astype(
        np.float32
    )


def count_in_seconds(count_in_bars: int, bpm: float, beats_per_bar: int = 4) -> float:
    """Length of the count-in: ``count_in_bars`` bars at ``bpm``."""
    return max(0, int(count_in_bars)) * beats_per_bar * 60.0 / float(bpm)


# ---------------------------------------------------------------- output streams


class _Player:
    """An output-stream callback reading from a generator function of (start, frames)."""

    def __init__(self, render: Callable[[int, int], np.ndarray], channels: int) -> None:
        self.render = render
        self.channels = channels
        self.position = 0

    def callback(self, outdata: np.ndarray, frames: int, time_info, status) -> None:
        block = self.render(self.position, frames)
        if block.ndim == 2:  # one column per output channel (a signal for each input)
            outdata[:] = block[:, np.minimum(np.arange(self.channels), block.shape[1] - 1)]
        else:
            outdata[:] = np.repeat(block.reshape(-1, 1), self.channels, axis=1)
        self.position += frames


def _array_render(audio: np.ndarray) -> Callable[[int, int], np.ndarray]:
    """Blocks of ``audio``: mono plays on every channel, ``(frames, n)`` one column each."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim > 1 and audio.shape[1] == 1:
        audio = audio[:, 0]

    def render(start: int, frames: int) -> np.ndarray:
        out = np.zeros((frames, *audio.shape[1:]), np.float32)
        chunk = audio[start : start + frames]
        out[: len(chunk)] = chunk
        return out

    return render


def _open_player(
    device: devices.DeviceInfo, render: Callable, sample_rate: int
) -> tuple[object, _Player]:
    channels = min(2, device.max_output_channels)
    devices.check_settings(device, kind="output", sample_rate=sample_rate, channels=channels)
    player = _Player(render, channels)
    stream = devices.open_output(
        device, sample_rate=sample_rate, channels=channels, callback=player.callback
    )
    return stream, player


# ---------------------------------------------------------------- the take


def _check_arguments(
    seconds: float, rate: int, channel: int, *, subtype: str = DEFAULT_SUBTYPE, bpm: float = BPM
) -> None:
    if not seconds > 0:
        raise RecorderError(f"--seconds {seconds} must be more than 0")
    if not 8000 <= int(rate) <= 384000:
        raise RecorderError(f"--rate {rate} is not a sample rate; use e.g. 44100 or 48000")
    if subtype not in sf.available_subtypes("WAV"):
        raise RecorderError(
            f"--subtype {subtype!r} is not a WAV subtype; use {DEFAULT_SUBTYPE} (default), "
            "PCM_16 or FLOAT"
        )
    if int(channel) < 1:
        raise RecorderError(f"--channel {channel} must be 1 or more (the interface input number)")
    low, high = BPM_RANGE
    if not low <= float(bpm) <= high:
        raise RecorderError(f"--bpm {bpm} is out of range; use {low:g}..{high:g}")


TAKE_ROW_COLUMNS = ("role", "dropouts", "stalls", "dropped_frames", "dropout_detail", "checks")
"""The extra columns :func:`take_row` fills itself (a label may not take their names)."""
_ROW_ARGUMENTS = ("columns", "target_rms_dbfs")  # manifest_row's other keyword arguments


def _check_extra_labels(extra_labels: dict[str, str] | None) -> dict[str, str]:
    """Label columns a take may add: slug names that no writer fills, text values."""
    from guitarlab.corpus.manifest import COLUMNS, SLUG_RE

    reserved = (*COLUMNS, *TAKE_ROW_COLUMNS, *_ROW_ARGUMENTS)
    checked = {}
    for name, value in (extra_labels or {}).items():
        if not SLUG_RE.match(str(name)) or name in reserved:
            raise RecorderError(
                f"label {name!r} cannot be a column of a take (a lower-case slug that no "
                "manifest column already has, e.g. position)"
            )
        checked[str(name)] = str(value)
    return checked


def _take_path(root: Path, guitar: str, phrase: str) -> tuple[str, str, Path]:
    """Reserve the next take of ``guitar`` and ``phrase`` (under the manifest lock, so two
    recorders never pick one number); ``commit_rows`` releases it with the row."""
    take, ((rid, path),) = _take_paths(root, guitar, phrase, [""])
    return take, rid, path


def _take_paths(
    root: Path, guitar: str, phrase: str, roles: Sequence[str]
) -> tuple[str, list[tuple[str, Path]]]:
    """Reserve the next take with one file per input ``role`` (``<take>-raw-<role>``, or
    ``<take>-raw`` for the one input of an ordinary take): one take number for them all."""
    from guitarlab.corpus.manifest import RAW_TONE, TAKES_DIR, reserve_takes, row_id, take_key

    def choose(taken) -> list[dict]:  # the index answers: no read of a large manifest
        number = taken.next_take_number(guitar, phrase)
        while True:
            take = take_key(guitar, phrase, number)
            rids = [row_id(take, RAW_TONE, role) for role in roles]
            if not any((root / TAKES_DIR / f"{rid}.wav").exists() for rid in rids):
                return [{"id": rid, "take": take, "path": f"{TAKES_DIR}/{rid}.wav"} for rid in rids]
            number += 1

    rows = reserve_takes(root, choose).rows
    return rows[0]["take"], [(row["id"], root / row["path"]) for row in rows]


def check_inputs(
    channel: int, channels: Sequence[int] | None, roles: Sequence[str] | None
) -> list[tuple[int, str]]:
    """``(channel, role)`` of every input a take records: ``[(channel, "")]`` for one input.

    Several inputs need as many distinct roles (slugs: ``di``, ``mic``) as distinct channels.

    Examples
    --------
    >>> check_inputs(1, [1, 2], ["DI", "mic"])
    [(1, 'di'), (2, 'mic')]
    >>> check_inputs(3, None, None)
    [(3, '')]
    """
    from guitarlab.corpus.manifest import slugify

    if not channels:
        if roles:
            raise RecorderError("--roles names the inputs of --channels; add --channels 1,2")
        return [(int(channel), "")]
    channels = [int(c) for c in channels]
    roles = [slugify(r) for r in roles or []]
    if len(roles) != len(channels):
        raise RecorderError(
            f"--channels {','.join(map(str, channels))} needs one role per input; give "
            f"--roles with {len(channels)} names, e.g. --roles di,mic"
        )
    if any(c < 1 for c in channels) or len(set(channels)) != len(channels):
        raise RecorderError(
            f"--channels {','.join(map(str, channels))}: give distinct interface inputs, 1 or more"
        )
    if len(set(roles)) != len(roles):
        raise RecorderError(f"--roles {','.join(roles)}: every input needs its own role")
    return list(zip(channels, roles, strict=True))


def sidecar_path(take_path: Path) -> Path:
    """Labels written beside a take while it records, so ``recover`` can label it after a kill."""
    return take_path.with_name(f".{take_path.stem}.json")


def take_row(
    root: Path,
    path: Path,
    labels: dict,
    *,
    status: str = "",
    stats: TakeStats | None = None,
    extra_findings: list[Finding] | None = None,
) -> dict:
    """The manifest row of a raw take on disk: labels, header, levels, gain_db, checks."""
    from guitarlab.corpus.audio import file_columns, read_audio
    from guitarlab.corpus.manifest import manifest_row, raw_level_reference, relative_audio_path

    columns = file_columns(path)
    audio, rate = read_audio(path)
    calibration = load_calibration(root)
    guitar = labels["guitar"]
    findings = check_take(
        audio,
        rate,
        target_peak_dbfs=float(labels.get("target_peak_dbfs", DEFAULT_TARGET_PEAK_DBFS)),
        calibrated_peak_dbfs=calibrated_peak(calibration, guitar),
    )
    role = labels.get("role", "")  # a microphone is compared with microphones
    reference = raw_level_reference(  # from the index: no read of a large manifest
        root, guitar=guitar, phrase=labels["phrase"], role=role
    )
    mismatch = reference_mismatch(reference, phrase=labels["phrase"], rms_dbfs=columns["rms_dbfs"])
    if mismatch:
        findings.append(Finding("level_match", "warning", mismatch, value=columns["rms_dbfs"]))
    findings += extra_findings or []
    dropouts: list[Dropout] = stats.dropouts if stats else []
    return manifest_row(
        **labels.get("extra_labels", {}),
        id=labels["id"],
        path=relative_audio_path(root, path),
        guitar=guitar,
        pickup=labels.get("pickup", ""),
        phrase=labels["phrase"],
        take=labels["take"],
        columns=columns,
        target_rms_dbfs=float(calibration["target_rms_dbfs"]),
        recorded_at=labels.get("recorded_at", ""),
        device=labels.get("device", ""),
        player=labels.get("player", ""),
        notes=labels.get("notes", ""),
        status=status,
        role=role,
        # extra columns are text in the manifest: store them as text so "0" stays "0"
        dropouts=str(sum(d.kind != "stall" for d in dropouts)),
        stalls=str(sum(d.kind == "stall" for d in dropouts)),
        dropped_frames=str(int(sum(d.missing_frames for d in dropouts))),
        dropout_detail=json.dumps([d.as_dict() for d in dropouts], separators=(",", ":")),
        checks=findings_to_json(findings),
    )


def take_lines(row: dict) -> list[str]:
    """What a take prints: its file, length and levels, dropouts, then its check findings."""
    from guitarlab.corpus.checks import findings_from_json, findings_text

    seconds = int(row["frames"]) / int(row["sample_rate"])
    state = " (PARTIAL)" if row.get("status") == "partial" else ""
    lines = [
        f"{row['path']}{state}: {seconds:.1f} s, peak {row['peak_dbfs']:.1f} dBFS, "
        f"RMS {row['rms_dbfs']:.1f} dBFS, gain_db {row['gain_db']:+.1f}"
    ]
    if int(row.get("dropouts") or 0) or int(row.get("stalls") or 0):
        lines += ["dropout: " + Dropout(**d).describe() for d in json.loads(row["dropout_detail"])]
    return lines + findings_text(findings_from_json(row.get("checks") or "[]"))


def record_take(
    corpus: str | os.PathLike,
    *,
    guitar: str,
    pickup: str = "",
    phrase: str,
    seconds: float,
    rate: int = RECORD_RATE,
    subtype: str = DEFAULT_SUBTYPE,
    device: str | int | None = None,
    channel: int = 1,
    bpm: float = BPM,
    count_in: int = 1,
    click: bool = True,
    player: str = "",
    discard_on_interrupt: bool = False,
    source_audio: np.ndarray | None = None,
    source_device: str | int | None = None,
    click_device: str | int | None = None,
    target_peak_dbfs: float = DEFAULT_TARGET_PEAK_DBFS,
    notes: str = "",
    stop: threading.Event | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    stall: Stall | None = None,
    queue_s: float = 30.0,
    on_stats: Callable[[TakeStats], None] | None = None,
    extra_labels: dict[str, str] | None = None,
    channels: Sequence[int] | None = None,
    roles: Sequence[str] | None = None,
    rows_out: list[dict] | None = None,
) -> dict | None:
    """Record one take into ``corpus`` and append its row; returns the row.

    Returns None when the take was interrupted and ``discard_on_interrupt`` is set.
    ``source_audio`` (mono float32 at ``rate``) is played into ``source_device``
    (default: ``$GUITARLAB_SOURCE_DEVICE``, set by :func:`~guitarlab.recorder.server.audio_server`)
    from the moment recording starts. ``stall`` and ``queue_s`` are test hooks;
    ``on_stats`` receives the writer's :class:`TakeStats` (the benchmark's figures).
    ``extra_labels`` are more label columns for the row (a shot list's ``position``...),
    kept in the sidecar too so ``recover`` labels the take the same.
    ``channels`` and ``roles`` record several inputs at once (see :func:`record_inputs`);
    ``rows_out`` then receives every input's row, and the first input's row is returned.
    A take cut short (Ctrl-C, ``stop``, a write error) is kept with status ``partial``.

    Failures end in one ``RecorderError`` line, the audio so far kept and its row added
    (partial): a full disk (the OS's reason, e.g. "No space left on device"), an input
    that delivers nothing for ``INPUT_SILENT_TIMEOUT_S`` (PortAudio does not report
    that, so a watchdog does) or one PortAudio stopped (device or server gone). Streams
    that will not stop are aborted after 1 s so the process can still exit. If the row
    cannot be written either, the take and its sidecar stay for ``guitarlab recover``.
    """
    from guitarlab.corpus.appends import open_manifest
    from guitarlab.corpus.manifest import slugify

    _check_arguments(seconds, rate, channel, subtype=subtype, bpm=bpm)
    inputs = check_inputs(channel, channels, roles)
    open_channels = max(c for c, _ in inputs)
    extra_labels = _check_extra_labels(extra_labels)
    root = Path(corpus)
    open_manifest(root)  # a missing or damaged corpus fails before any device is opened
    guitar, phrase = slugify(guitar), slugify(phrase)
    pickup = slugify(pickup) if pickup else ""
    in_dev = devices.resolve_device(device, kind="input")
    devices.check_settings(in_dev, kind="input", sample_rate=rate, channels=open_channels)
    count_in_s = count_in_seconds(count_in, bpm)
    out_dev = devices.resolve_device(click_device, kind="output") if (click or count_in_s) else None
    src_dev = None
    if source_audio is not None:
        src_dev = devices.resolve_device(
            source_device or os.environ.get(SOURCE_DEVICE_ENV) or None, kind="output"
        )
    take, files = _take_paths(root, guitar, phrase, [role for _, role in inputs])
    (rid, path), ids, paths = files[0], [f[0] for f in files], [f[1] for f in files]
    labels = {
        "take": take,
        "guitar": guitar,
        "pickup": pickup,
        "phrase": phrase,
        "player": player,
        "device": in_dev.name,
        "notes": notes,
        "target_peak_dbfs": target_peak_dbfs,
        "recorded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "extra_labels": extra_labels,
    }
    file_labels = _file_labels(labels, ids, [role for _, role in inputs])
    writer = TakeWriter(
        path,
        sample_rate=rate,
        channel=inputs[0][0],
        linked=[(p, c) for p, (c, _) in zip(paths[1:], inputs[1:], strict=True)],
        subtype=subtype,
        max_frames=int(round(seconds * rate)),
        meter=LevelMeter(rate),
        stall=stall,
        queue_s=queue_s,
    )
    _start_take(root, writer, ids, paths, file_labels)
    interrupted, error = False, ""
    streams: list = []
    with devices.quiet_c_stderr():
        try:
            _run_take(
                writer,
                streams,
                in_dev=in_dev,
                out_dev=out_dev,
                src_dev=src_dev,
                rate=rate,
                channel=open_channels,
                seconds=seconds,
                bpm=bpm,
                count_in_s=count_in_s,
                click=click,
                source_audio=source_audio,
                stop=stop,
                on_progress=on_progress,
            )
        except KeyboardInterrupt:
            interrupted = True
        except RecorderError as exc:
            error = str(exc)
        finally:
            devices.stop_streams(streams)
            stats = writer.finish()
    if on_stats is not None:
        on_stats(stats)
    if stats.error:
        error = error or stats.error
    complete = writer.frames_captured >= int(round(seconds * rate))
    if (interrupted or (stop is not None and stop.is_set())) and not complete:
        interrupted = True
    if interrupted and discard_on_interrupt or stats.frames_written == 0:
        _drop_take(root, ids, paths)
        if error:
            raise RecorderError(error)
        if not interrupted:
            raise RecorderError(f"no audio was recorded from {in_dev.name!r}; check the device")
        return None
    status = "partial" if (interrupted or error or not complete) else ""
    rows = _commit_take(root, paths, file_labels, status=status, stats=stats, error=error)
    row = rows[0]
    if rows_out is not None:
        rows_out.extend(rows)
    if error:
        kept_s = int(row["frames"]) / rate
        raise RecorderError(f"{error} (the {kept_s:.1f} s before it are kept: row {rid}, partial)")
    return row


def _file_labels(labels: dict, ids: list[str], roles: list[str]) -> list[dict]:
    """One sidecar's and row's labels per input: the same take, timing and labels, each
    its own id (first, as in the manifest) and role."""
    return [
        {"id": file_id, **labels, "role": role} for file_id, role in zip(ids, roles, strict=True)
    ]


def _start_take(
    root: Path, writer: TakeWriter, ids: list[str], paths: list[Path], file_labels: list[dict]
) -> None:
    """Start the writer and leave each file's labels beside it (a sidecar, for ``recover``).

    A failure gives the reserved ids back and leaves nothing behind: a full disk before
    the take starts is one ``RecorderError`` line.
    """
    from guitarlab.corpus.manifest import release_ids

    try:
        writer.start()
    except BaseException:
        release_ids(root, ids)
        raise
    try:
        for file_path, file_label in zip(paths, file_labels, strict=True):
            sidecar_path(file_path).write_text(json.dumps(file_label), encoding="utf-8")
    except OSError as exc:  # a disk full before the take starts: leave nothing behind
        writer.finish()
        _drop_take(root, ids, paths)
        raise RecorderError(
            f"{sidecar_path(paths[0])}: cannot write the take's labels ({exc.strerror or exc}); "
            "is the disk full? free space and record again"
        ) from exc


def _drop_take(root: Path, ids: list[str], paths: list[Path]) -> None:
    """Give the take's reserved ids back and remove its files and sidecars."""
    from guitarlab.corpus.manifest import release_ids

    release_ids(root, ids)
    for file_path in paths:
        file_path.unlink(missing_ok=True)
        sidecar_path(file_path).unlink(missing_ok=True)


def _commit_take(
    root: Path,
    paths: list[Path],
    file_labels: list[dict],
    *,
    status: str,
    stats: TakeStats,
    error: str,
) -> list[dict]:
    """Each input's row, checked and committed at once; then the sidecars go.

    After a write ``error`` the disk that refused the audio may refuse the manifest too:
    the take and its sidecars then stay on disk for ``recover``, said in one line.
    """
    from guitarlab.corpus.manifest import commit_rows

    try:
        rows = [
            take_row(root, file_path, file_label, status=status, stats=stats)
            for file_path, file_label in zip(paths, file_labels, strict=True)
        ]
        commit_rows(root, [(r, None) for r in rows])  # the files are at their reserved names
    except (GuitarlabError, OSError) as exc:
        if not error:
            raise
        reason = " ".join(str(exc).split())
        raise RecorderError(
            f"{error}; the take is kept but its row could not be written either ({reason}): "
            f"once that is fixed, run 'guitarlab recover --corpus {root}' to add it"
        ) from exc
    for file_path in paths:
        sidecar_path(file_path).unlink(missing_ok=True)
    return rows


def record_inputs(
    corpus: str | os.PathLike,
    *,
    channels: Sequence[int],
    roles: Sequence[str],
    **options,
) -> list[dict] | None:
    """Record several interface inputs at once (a DI and a microphone); returns their rows.

    The inputs come from ONE input stream, so their files are sample-aligned. Each input
    gets its own file and row, ``takes/<take>-raw-<role>.wav`` with id
    ``<take>-raw-<role>``: the same ``take``, timing and labels, and ``role`` naming the
    input. A dataset picks one with ``--where "role == 'di'"``; its splits keep the files of
    one take together, like the renders of a take. ``options`` are :func:`record_take`'s.
    None when the take was interrupted and discarded.

    Examples
    --------
    >>> rows = record_inputs(corpus, channels=[1, 2], roles=["di", "mic"],   # doctest: +SKIP
    ...                      guitar="strat", phrase="lead", seconds=30, device="Scarlett")
    >>> [row["id"] for row in rows]                                         # doctest: +SKIP
    ['strat-lead-t001-raw-di', 'strat-lead-t001-raw-mic']
    """
    rows: list[dict] = []
    first = record_take(corpus, channels=channels, roles=roles, rows_out=rows, **options)
    return rows if first is not None else None


def _run_take(
    writer: TakeWriter,
    streams: list,
    *,
    in_dev,
    out_dev,
    src_dev,
    rate: int,
    channel: int,
    seconds: float,
    bpm: float,
    count_in_s: float,
    click: bool,
    source_audio,
    stop,
    on_progress,
) -> None:
    """Open the streams (into ``streams``, for the caller to close), count in, arm, wait."""
    in_stream = devices.open_input(
        in_dev, sample_rate=rate, channels=channel, callback=writer.callback
    )
    streams.append(in_stream)
    start = time.monotonic()
    in_stream.start()
    while not writer.first_callback.wait(0.05):
        _progress(on_progress, "waiting", time.monotonic() - start, seconds, None)
        if time.monotonic() - start > FIRST_CALLBACK_TIMEOUT_S:
            raise RecorderError(
                f"input {in_dev.name!r} delivered no audio in {FIRST_CALLBACK_TIMEOUT_S:.0f} s; check the device and 'guitarlab devices --test'"
            )
    count_in_frames = int(round(count_in_s * rate))
    if out_dev is not None:

        def metronome(position: int, frames: int) -> np.ndarray:
            block = click_block(position, frames, rate, bpm=bpm)
            if not click:
                block[max(0, count_in_frames - position) :] = 0.0
            return block

        click_stream, _ = _open_player(out_dev, metronome, rate)
        streams.append(click_stream)
        click_stream.start()
    count_start = time.monotonic()
    while time.monotonic() - count_start < count_in_s:
        elapsed = time.monotonic() - count_start
        _progress(on_progress, "count-in", elapsed, seconds, None, beat=int(elapsed * bpm / 60) + 1)
        time.sleep(0.02)
        if stop is not None and stop.is_set():
            return
    writer.arm()  # before the source starts, so its first sample is in the take
    if src_dev is not None:
        source_stream, _ = _open_player(src_dev, _array_render(source_audio), rate)
        streams.append(source_stream)
        source_stream.start()
    armed = time.monotonic()
    last_frames, last_change = 0, armed
    while not writer.complete.wait(0.1):
        now = time.monotonic()
        captured = writer.frames_captured
        _progress(on_progress, "recording", captured / rate, seconds, writer.meter.last)
        if stop is not None and stop.is_set():
            break
        if writer.stats.error:
            break
        if not devices.stream_running(in_stream):  # PortAudio gave up: the device is gone
            raise RecorderError(
                f"input {in_dev.name!r} went away after {captured / rate:.1f} s (unplugged, or its audio server stopped); check the device and record again"
            )
        if captured != last_frames:
            last_frames, last_change = captured, now
        elif now - last_change > INPUT_SILENT_TIMEOUT_S + (
            writer.stall.seconds if writer.stall else 0
        ):
            raise RecorderError(
                f"input {in_dev.name!r} stopped delivering audio after {captured / rate:.1f} s (unplugged?); check the device and record again"
            )
    _progress(on_progress, "recording", writer.frames_captured / rate, seconds, writer.meter.last)


def _progress(on_progress, phase, elapsed, seconds, reading, beat: int = 0) -> None:
    if on_progress is not None:
        remaining = max(0.0, seconds - elapsed) if phase == "recording" else seconds
        on_progress(Progress(phase, elapsed, remaining, reading, beat))


# ---------------------------------------------------------------- level measurement


def measure_level(
    *,
    seconds: float = 10.0,
    rate: int = RECORD_RATE,
    device: str | int | None = None,
    channel: int = 1,
    source_audio: np.ndarray | None = None,
    source_device: str | int | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> tuple[MeterReading, str]:
    """Meter ``seconds`` of the input (no file); returns the final reading and the device name."""
    import queue

    _check_arguments(seconds, rate, channel)
    in_dev = devices.resolve_device(device, kind="input")
    devices.check_settings(in_dev, kind="input", sample_rate=rate, channels=channel)
    meter = LevelMeter(rate)
    blocks: queue.Queue = queue.Queue()
    started = threading.Event()
    armed = threading.Event()

    def callback(indata, frames, time_info, status) -> None:
        started.set()
        if armed.is_set():
            blocks.put(indata[:, channel - 1].copy())

    streams = []
    with devices.quiet_c_stderr():
        try:
            stream = devices.open_input(
                in_dev, sample_rate=rate, channels=channel, callback=callback
            )
            streams.append(stream)
            stream.start()
            if not started.wait(FIRST_CALLBACK_TIMEOUT_S):
                raise RecorderError(
                    f"input {in_dev.name!r} delivered no audio in {FIRST_CALLBACK_TIMEOUT_S:.0f} s; check the device"
                )
            if source_audio is not None:
                src_dev = devices.resolve_device(
                    source_device or os.environ.get(SOURCE_DEVICE_ENV) or None, kind="output"
                )
                source_stream, _ = _open_player(src_dev, _array_render(source_audio), rate)
                streams.append(source_stream)
                source_stream.start()
            armed.set()
            _meter_until(meter, blocks, stream, in_dev.name, seconds, rate, on_progress)
        finally:
            devices.stop_streams(streams)
    return meter.last, in_dev.name


def _meter_until(meter, blocks, stream, name: str, seconds: float, rate: int, on_progress) -> None:
    """Feed ``seconds`` of queued blocks to the meter; a lost input is a one-line error."""
    import queue

    frames, last_block = 0, time.monotonic()
    while frames < seconds * rate:
        try:
            block = blocks.get(timeout=0.1)
        except queue.Empty:
            if not devices.stream_running(stream):
                raise RecorderError(
                    f"input {name!r} went away after {frames / rate:.1f} s (unplugged, or its audio server stopped); check the device and measure again"
                ) from None
            if time.monotonic() - last_block > INPUT_SILENT_TIMEOUT_S:
                raise RecorderError(
                    f"input {name!r} stopped delivering audio after {frames / rate:.1f} s (unplugged?); check the device and measure again"
                ) from None
            continue
        last_block = time.monotonic()
        meter.update(block)
        frames += len(block)
        _progress(on_progress, "recording", frames / rate, seconds, meter.last)


# ---------------------------------------------------------------- takes in a row


def _sigterm_as_interrupt(signum, frame):  # pragma: no cover - exercised in a subprocess
    raise KeyboardInterrupt


@contextlib.contextmanager
def interrupts_stop_the_take() -> Iterator[None]:
    """SIGTERM and Ctrl-C raise KeyboardInterrupt, so :func:`record_take` keeps the take
    (partial), even when the shell that started us in the background left SIGINT ignored
    (Python then keeps it ignored). The previous handlers are put back on the way out."""
    previous = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)


def failed_checks(row: dict) -> str | None:
    """``"<id> (clipping, hum)"`` when a row's checks found an error, else None."""
    from guitarlab.corpus.checks import findings_from_json

    errors = [f.check for f in findings_from_json(row["checks"]) if f.severity == "error"]
    return f"{row['id']} ({', '.join(errors)})" if errors else None


@dataclass
class TakesReport:
    """What :func:`record_takes` recorded: every input's row, and the rows that failed.

    ``stopped`` is ``done`` (every take), ``partial`` (a take cut short, kept),
    ``discarded`` (a take cut short and dropped) or ``interrupted`` (Ctrl-C in a pause).
    """

    rows: list[dict] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    stopped: str = "done"


def record_takes(
    corpus: str | os.PathLike,
    *,
    takes: int = 1,
    pause_s: float = 5.0,
    say: Callable[[str], None] = print,
    notice: Callable[[str], None] = print,
    after_take: Callable[[], None] | None = None,
    record: Callable[..., dict | None] | None = None,
    **take_options,
) -> TakesReport:
    """Record ``takes`` takes in a row, ``pause_s`` apart, and judge each one's checks.

    Why a library function: ``guitarlab record`` and a script record the same way. Ctrl-C
    or SIGTERM (see :func:`interrupts_stop_the_take`) ends a take as :func:`record_take`
    does, and stops the series; so does Ctrl-C during a pause. Each input's row prints
    :func:`take_lines` through ``say``; the pause announces itself through ``notice``;
    ``after_take`` runs after each take (a progress line ends). A row whose checks found
    an error is kept and listed in ``failed`` (a caller must not take it for a good one).
    ``take_options`` go to ``record`` (default :func:`record_take`).
    """
    record = record or record_take
    report = TakesReport()
    with interrupts_stop_the_take():
        for number in range(1, takes + 1):
            if number > 1:
                notice(f"next take in {pause_s:.0f} s (Ctrl-C to stop)")
                try:
                    time.sleep(pause_s)
                except KeyboardInterrupt:
                    report.stopped = "interrupted"
                    break
            rows: list[dict] = []  # one per input (--channels 1,2 --roles di,mic)
            row = record(corpus, rows_out=rows, **take_options)
            if after_take is not None:
                after_take()
            if row is None:
                say("take discarded")
                report.stopped = "discarded"
                break
            for each in rows or [row]:
                report.rows.append(each)
                for line in take_lines(each):
                    say(line)
                if (failed := failed_checks(each)) is not None:
                    report.failed.append(failed)
            if row["status"] == "partial":
                report.stopped = "partial"
                break
    return report
