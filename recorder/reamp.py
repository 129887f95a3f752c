"""Reamping: play raw takes out of the interface, through the player's amp, and record the return.

The way a studio reamps a DI (and Neural Amp Modeler's capture plays its signal out and
records it back): each raw take, at its matched level (``gain_db``), goes out of an
output into the amp or pedals; the input records what comes back. The return is stored
as a render of its take, ``tones/<take>-<tone>.wav`` with ``tone`` the name given,
``source`` the take's row and the provenance in the row, so it joins every split like a
pedalboard render.

What is played is the take between two short noise bursts (:func:`playback`). Each burst
is found in the return by cross-correlation with what was played: the first gives the
round-trip latency that is removed, the second whether the latency moved while the take
played (two clocks drifting, an underrun). A return where a burst does not stand out
(a cable unplugged, the amp off) or that drifted is refused and nothing is stored.

Pure core on numpy arrays (:func:`playback`, :func:`measure_return`,
:func:`return_problem`, :func:`aligned_take`); the edge (:func:`reamp_corpus`,
:func:`calibrate_loop`) plays through :func:`~guitarlab.recorder.devices.play_and_record`
and commits rows through :func:`~guitarlab.corpus.manifest.commit_rows` like ``augment``:
a take already reamped to the tone is skipped, a kill leaves at most a temp file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from scipy.signal import correlate

from guitarlab.corpus.errors import RecorderError

MARKER_S = 0.1
"""Length of each noise burst around a take."""
MARKER_RMS = 0.05
"""Level of the bursts (-26 dBFS RMS): heard clearly through an amp, never clipping."""
LEAD_S = 2.0
"""Silence before the first burst: a duplex stream over two ALSA devices (PulseAudio)
starts its input late, by 0.45 s to over 1 s on a loaded machine (measured), which must
not take the burst with it."""
GAP_S = 0.25
"""Silence between a burst and the take, so an amp's or a reverb's tail does not overlap."""
MAX_LATENCY_S = 2.0
"""Longest round trip searched for; the recording runs this long after the last burst
(a software loop, e.g. ``audio-server --through``, buffers more than a second)."""
EARLY_S = 1.9
"""How much earlier than played a burst may come back: two streams that did not start
together (the input late) show as a negative latency, removed the same way."""
DRIFT_RETRIES = 2
"""A take whose return drifted (an underrun on a busy machine) is played again this often."""
MIN_PROMINENCE = 12.0
"""A burst's correlation peak over the spread of the rest: noise or silence reach ~5."""
MAX_DRIFT_SAMPLES = 1
"""How far the latency at the end of a take may differ from the start."""
MAX_PEAK_DBFS = -1.0
"""A take is played at its matched level, lowered if needed so it peaks at most here."""
PLAY_LATENCY_S = 0.25
"""Stream buffers: large, so a busy machine does not underrun and shift the return."""
CALIBRATION_NAME = "reamp.json"
CALIBRATION_SECONDS = 1.0
INPUT_GAIN_COLUMN = "input_gain_db"  # the column augment's renders use for the same trim


# ---------------------------------------------------------------- the pure core


def marker(sample_rate: int, *, seconds: float = MARKER_S) -> np.ndarray:
    """The burst played around each take: white noise at ``MARKER_RMS``, 5 ms fades.

    White noise correlates with itself at one lag only, so its return gives the latency
    to the sample; seeded, so it is the same burst every time.

    Examples
    --------
    >>> burst = marker(48000)
    >>> burst.shape, round(float(np.sqrt(np.mean(burst**2))), 3)
    ((4800,), 0.05)
    """
    n = int(round(seconds * sample_rate))
    noise = np.random.default_rng(31).standard_normal(n)
    fade = min(n // 2, int(0.005 * sample_rate))
    ramp = np.sin(np.linspace(0.0, np.pi / 2, fade)) ** 2
    noise[:fade] *= ramp
    noise[n - fade :] *= ramp[::-1]
    return (MARKER_RMS * noise).astype(np.float32)


@dataclass(frozen=True)
class Layout:
    """Where the bursts and the take sit in what is played, in samples."""

    first_marker: int
    take_start: int
    take_frames: int
    last_marker: int
    marker_frames: int
    total: int


def playback(take: np.ndarray, sample_rate: int) -> tuple[np.ndarray, Layout]:
    """What is played for one take: lead-in, burst, gap, the take, gap, burst, room to return.

    Examples
    --------
    >>> played, layout = playback(np.zeros(1000, np.float32), 8000)
    >>> layout.take_start, layout.last_marker, len(played) == layout.total
    (18800, 48000, True)
    """
    take = np.asarray(take, dtype=np.float32).reshape(-1)
    burst = marker(sample_rate)
    lead, gap = int(LEAD_S * sample_rate), int(GAP_S * sample_rate)
    tail = int(MAX_LATENCY_S * sample_rate)
    # the bursts lie further apart than one search window, so neither is taken for the other
    apart = int((EARLY_S + MAX_LATENCY_S) * sample_rate) + len(burst)
    end_gap = max(gap, apart - (len(burst) + gap + len(take)))
    parts = [np.zeros(lead), burst, np.zeros(gap), take, np.zeros(end_gap), burst, np.zeros(tail)]
    played = np.concatenate(parts).astype(np.float32)
    take_start = lead + len(burst) + gap
    layout = Layout(
        first_marker=lead,
        take_start=take_start,
        take_frames=len(take),
        last_marker=take_start + len(take) + end_gap,
        marker_frames=len(burst),
        total=len(played),
    )
    return played, layout


def find_marker(
    returned: np.ndarray, burst: np.ndarray, *, at: int, max_latency: int, early: int = 0
) -> tuple[int, float, int]:
    """``(latency, prominence, polarity)`` of ``burst``, played at ``at``, in ``returned``.

    The latency is the lag (-``early``..``max_latency`` samples) of the largest
    cross-correlation;
    its prominence is that peak over the RMS of the correlation away from it (``inf``
    when that is all zero, as through a digital loopback of silence; 0 for a silent
    return). A return of noise only peaks at about 5.
    """
    low = max(0, at - int(early))
    segment = np.asarray(returned, dtype=np.float64)[low : at + len(burst) + max_latency]
    if len(segment) < len(burst):
        return 0, 0.0, 1
    xc = correlate(segment, burst.astype(np.float64), mode="valid", method="fft")
    magnitude = np.abs(xc)
    lag = int(np.argmax(magnitude))
    peak = float(magnitude[lag])
    away = np.ones(len(xc), dtype=bool)
    away[max(0, lag - len(burst)) : lag + len(burst)] = False
    spread = float(np.sqrt(np.mean(xc[away] ** 2))) if away.any() else 0.0
    if peak <= 1e-9 * len(burst) * MARKER_RMS:  # digital silence
        return lag + low - at, 0.0, 1
    prominence = peak / spread if spread > 0 else float("inf")
    return lag + low - at, prominence, 1 if xc[lag] >= 0 else -1


@dataclass(frozen=True)
class ReturnCheck:
    """What the two bursts say about a return."""

    latency_samples: int
    end_latency_samples: int
    prominence: float  # of the first burst
    polarity: int
    end_prominence: float = float("inf")

    @property
    def drift_samples(self) -> int:
        return self.end_latency_samples - self.latency_samples


def measure_return(returned: np.ndarray, layout: Layout, sample_rate: int) -> ReturnCheck:
    """Find both bursts of :func:`playback` in ``returned`` (recorded while it played)."""
    burst = marker(sample_rate)
    search = {"max_latency": int(MAX_LATENCY_S * sample_rate), "early": int(EARLY_S * sample_rate)}
    start, p1, polarity = find_marker(returned, burst, at=layout.first_marker, **search)
    end, p2, _ = find_marker(returned, burst, at=layout.last_marker, **search)
    return ReturnCheck(start, end, p1, polarity, p2)


def return_problem(
    check: ReturnCheck,
    sample_rate: int,
    *,
    min_prominence: float = MIN_PROMINENCE,
    max_drift_samples: int = MAX_DRIFT_SAMPLES,
) -> str | None:
    """Why a return cannot be stored (no burst came back, the latency moved), or None.

    Examples
    --------
    >>> return_problem(ReturnCheck(100, 100, 80.0, 1), 48000) is None
    True
    >>> return_problem(ReturnCheck(100, 104, 80.0, 1), 48000)[:36]
    'the return drifted by 4 samples (0.0'
    """
    found = [check.prominence >= min_prominence, check.end_prominence >= min_prominence]
    if not any(found):
        return (
            f"the return does not correlate with what was played (burst "
            f"{max(check.prominence, check.end_prominence):.1f} over the noise, needs "
            f"{min_prominence:g}): check that the cable from the output to the amp and back "
            "to the input is plugged in, the amp is on and these are the devices"
        )
    if not all(found):
        return (
            f"the {'start' if not found[0] else 'end'} of the return is missing (the burst "
            "there did not come back while the other did): the stream started late or "
            "dropped audio; keep the machine idle while reamping"
        )
    if abs(check.drift_samples) > max_drift_samples:
        return (
            f"the return drifted by {check.drift_samples} samples "
            f"({1000.0 * check.drift_samples / sample_rate:.2f} ms) between the start and the "
            f"end (latency {check.latency_samples} then {check.end_latency_samples}): play "
            "and record on one interface (one clock), and keep the machine idle while reamping"
        )
    return None


def aligned_take(returned: np.ndarray, check: ReturnCheck, layout: Layout) -> np.ndarray:
    """The take's part of the return with the latency removed: as long as the take."""
    start = layout.take_start + check.latency_samples
    out = np.zeros(layout.take_frames, np.float32)
    part = np.asarray(returned, dtype=np.float32)[start : start + layout.take_frames]
    out[: len(part)] = part
    return out


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Normalized correlation at lag 0 (1.0: the same waveform at any level).

    Examples
    --------
    >>> x = np.sin(np.arange(100.0))
    >>> round(correlation(0.5 * x, x), 6), round(correlation(-x, x), 6)
    (1.0, -1.0)
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    denominator = float(np.sqrt(np.dot(a, a) * np.dot(b, b)))
    return float(np.dot(a, b)) / denominator if denominator > 0 else 0.0


def play_gain_db(take: np.ndarray, gain_db: float) -> float:
    """The gain a take is played at: its matched level, lowered so it peaks at most
    ``MAX_PEAK_DBFS`` (a DAC clips where a pedalboard render would not).

    Examples
    --------
    >>> play_gain_db(np.array([0.5]), 12.0)   # 0.5 peaks at -6.02 dBFS: +5.02 dB at most
    5.021
    """
    from guitarlab.corpus.levels import peak_dbfs

    gain = float(gain_db) if np.isfinite(float(gain_db)) else 0.0
    return round(min(gain, MAX_PEAK_DBFS - peak_dbfs(np.asarray(take))), 3)


# ---------------------------------------------------------------- the edge


@dataclass
class ReampReport:
    """What a run did: rows added, takes skipped (already reamped), the calibration."""

    added: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    calibration: dict | None = None


def calibration_path(corpus: str | os.PathLike) -> Path:
    return Path(corpus) / CALIBRATION_NAME


def load_reamp_calibration(corpus: str | os.PathLike) -> dict:
    """``reamp.json``: per tone, the loop's latency and gain measured by ``--calibrate``."""
    path = calibration_path(corpus)
    if not path.exists():
        return {"tones": {}}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RecorderError(
            f"{path}: not readable JSON ({exc}); delete it and run 'guitarlab reamp --calibrate' again"
        ) from None


def _devices(output_device, input_device, rate: int, channel: int):
    from guitarlab.recorder import devices

    out_dev = devices.resolve_device(output_device, kind="output")
    in_dev = devices.resolve_device(input_device, kind="input")
    devices.check_settings(in_dev, kind="input", sample_rate=rate, channels=int(channel))
    devices.check_settings(out_dev, kind="output", sample_rate=rate, channels=1)
    return out_dev, in_dev


def _play(played: np.ndarray, rate: int, out_dev, in_dev, channel: int) -> np.ndarray:
    from guitarlab.recorder import devices

    with devices.quiet_c_stderr():
        return devices.play_and_record(
            played,
            rate,
            input_device=in_dev,
            output_device=out_dev,
            tail_s=0.0,
            channel=channel,
            latency_s=PLAY_LATENCY_S,
        )


def _play_checked(
    played: np.ndarray, layout: Layout, rate: int, out_dev, in_dev, channel: int, what: str
) -> tuple[np.ndarray, ReturnCheck, int]:
    """Play and measure; a drifted return is played again (``DRIFT_RETRIES``), any other
    problem is one ``RecorderError`` naming ``what``. Returns the return, its check and
    the number of plays."""
    for attempt in range(1, DRIFT_RETRIES + 2):
        returned = _play(played, rate, out_dev, in_dev, channel)
        check = measure_return(returned, layout, rate)
        problem = return_problem(check, rate)
        if not problem:
            return returned, check, attempt
        # one burst back is a stream that started late, dropped or drifted: try again
        glitch = max(check.prominence, check.end_prominence) >= MIN_PROMINENCE
        if not glitch or attempt > DRIFT_RETRIES:
            break
    played_times = f" (played {attempt} times)" if attempt > 1 else ""
    raise RecorderError(f"{what}: {problem}{played_times}; nothing was stored")


def calibrate_loop(
    corpus: str | os.PathLike,
    *,
    tone: str,
    output_device: str | int | None = None,
    input_device: str | int | None = None,
    channel: int = 1,
    rate: int = 48000,
) -> dict:
    """Play a test signal (``CALIBRATION_SECONDS`` of noise between the bursts) through the
    loop and store its latency and gain for ``tone`` in ``CORPUS/reamp.json``; returns it.

    Refuses (``RecorderError``, nothing stored) a loop that does not return or drifts.
    """
    from guitarlab.corpus.atomic import write_text_atomic
    from guitarlab.corpus.levels import rms_dbfs
    from guitarlab.corpus.manifest import load_manifest

    load_manifest(corpus)
    out_dev, in_dev = _devices(output_device, input_device, rate, channel)
    noise = np.random.default_rng(7).standard_normal(int(CALIBRATION_SECONDS * rate))
    test = (0.1 * noise).astype(np.float32)
    played, layout = playback(test, rate)
    returned, check, _ = _play_checked(
        played, layout, rate, out_dev, in_dev, channel, f"calibration of {tone!r}"
    )
    back = aligned_take(returned, check, layout)
    entry = {
        "latency_samples": check.latency_samples,
        "latency_ms": round(1000.0 * check.latency_samples / rate, 3),
        "sample_rate": rate,
        "gain_db": round(rms_dbfs(back) - rms_dbfs(test), 2),
        "correlation": round(correlation(back, test), 4),
        "polarity": check.polarity,
        "output_device": out_dev.name,
        "input_device": in_dev.name,
        "input_channel": int(channel),
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    data = load_reamp_calibration(corpus)
    data.setdefault("tones", {})[tone] = entry
    write_text_atomic(calibration_path(corpus), json.dumps(data, indent=2) + "\n")
    return entry


def plan_reamp(manifest, *, tone: str, role: str = "di", where=None):
    """The raw rows still to reamp to ``tone``: of a take recorded with several inputs only
    its ``role`` file; rows already reamped to ``tone`` (a row with that source) are left out.

    Returns ``(todo, done)`` DataFrames.
    """
    from guitarlab.corpus.manifest import RAW_TONE
    from guitarlab.corpus.query import query_rows

    raw = manifest[(manifest["tone"] == RAW_TONE) & manifest["role"].isin(["", role])]
    raw = query_rows(raw, where, error=RecorderError)
    reamped = set(manifest.loc[manifest["tone"] == tone, "source"])
    done = raw["id"].isin(reamped)
    return raw[~done], raw[done]


def _check_tone(tone: str) -> str:
    from guitarlab.corpus.manifest import RAW_TONE, TONE_RE

    if not TONE_RE.match(str(tone)) or tone == RAW_TONE:
        raise RecorderError(
            f"--tone {tone!r} must be a name like 'my_amp' or 'jcm800-crunch' "
            "(lower-case letters, digits, _ and -; not 'raw')"
        )
    return str(tone)


def reamp_corpus(
    corpus: str | os.PathLike,
    *,
    tone: str,
    output_device: str | int | None = None,
    input_device: str | int | None = None,
    channel: int = 1,
    role: str = "di",
    where: str | Sequence[str] | None = None,
    calibrate: bool = False,
    on_take: Callable[[str, int, int], None] | None = None,
) -> ReampReport:
    """Reamp every raw take of ``corpus`` not yet reamped to ``tone``; returns the report.

    Each take is played at its matched level (``gain_db``, lowered to peak at most
    ``MAX_PEAK_DBFS``) on ``output_device`` while ``input_device`` input ``channel``
    records; the return, latency removed, becomes ``tones/<take>-<tone>[-<role>].wav``
    with ``tone``, ``source`` (the take's row), ``role``, and in the row: ``device``
    (output -> input), ``recorded_at``, ``input_gain_db``, ``reamp_latency_samples``,
    ``reamp_drift_samples``, ``reamp_gain_db`` (return over played, RMS) and
    ``reamp_correlation`` (with what was played: ~1.0 through a plain loopback, lower
    through an amp). With ``calibrate`` the loop is measured first (:func:`calibrate_loop`).

    A return that does not correlate, or still drifts after ``DRIFT_RETRIES`` more
    plays, stops the run with one ``RecorderError`` line; the takes reamped before it stay. ``on_take(id, number, total)`` reports progress.
    """
    from guitarlab.corpus.audio import read_audio
    from guitarlab.corpus.levels import apply_gain_db, rms_dbfs
    from guitarlab.corpus.manifest import (
        TONES_DIR,
        commit_rows,
        load_manifest,
        manifest_row,
        release_ids,
        reserve_takes,
        resolve_audio_path,
        row_id,
        slugify,
        stage_audio,
    )

    root = Path(corpus)
    tone = _check_tone(tone)
    role = slugify(role)
    if int(channel) < 1:
        raise RecorderError(f"--input-channel {channel} must be 1 or more")
    manifest = load_manifest(root)
    todo, done = plan_reamp(manifest, tone=tone, role=role, where=where)
    report = ReampReport(skipped=list(done["id"]))
    if todo.empty and not calibrate:
        if done.empty:
            raise RecorderError(
                f"no raw take to reamp in {root}"
                + (f" (--where {where} matches none)" if where else "")
                + "; record some with 'guitarlab record'"
            )
        return report
    rates = sorted({int(r) for r in todo["sample_rate"]}) or [48000]
    loops: dict[int, tuple] = {}  # the devices, checked once per sample rate
    if calibrate:
        report.calibration = calibrate_loop(
            root,
            tone=tone,
            output_device=output_device,
            input_device=input_device,
            channel=channel,
            rate=rates[0],
        )
    for number, (_, source) in enumerate(todo.iterrows(), start=1):
        rate = int(source["sample_rate"])
        if rate not in loops:
            loops[rate] = _devices(output_device, input_device, rate, channel)
        out_dev, in_dev = loops[rate]
        if on_take is not None:
            on_take(source["id"], number, len(todo))
        rid = row_id(source["take"], tone, source["role"])
        path = f"{TONES_DIR}/{rid}.wav"
        reserve_takes(root, lambda _t, rid=rid, path=path: [{"id": rid, "path": path}])
        try:
            audio, file_rate = read_audio(resolve_audio_path(root, source["path"]))
            mono = audio.mean(axis=1) if audio.ndim > 1 else audio
            gain = play_gain_db(mono, source["gain_db"])
            take = apply_gain_db(mono, gain).astype(np.float32)
            played, layout = playback(take, file_rate)
            returned, check, plays = _play_checked(
                played, layout, file_rate, out_dev, in_dev, channel, source["id"]
            )
            back = aligned_take(returned, check, layout)
            staged, tmp = stage_audio(root, {"path": path}, back, file_rate)
        except BaseException:
            release_ids(root, [rid])
            raise
        provenance = {
            INPUT_GAIN_COLUMN: f"{gain:.3f}",
            "reamp_latency_samples": str(check.latency_samples),
            "reamp_drift_samples": str(check.drift_samples),
            "reamp_gain_db": f"{rms_dbfs(back) - rms_dbfs(take):.2f}",
            "reamp_correlation": f"{correlation(back, take):.4f}",
        }
        note = (
            f"reamped from {source['id']} through {out_dev.name} -> {in_dev.name} "
            f"(input {channel}), played {gain:+.2f} dB, latency {check.latency_samples} "
            f"samples ({1000.0 * check.latency_samples / file_rate:.1f} ms) removed"
            + (", polarity inverted by the loop" if check.polarity < 0 else "")
            + (f", played {plays} times (the first drifted)" if plays > 1 else "")
        )
        row = manifest_row(
            id=rid,
            path=path,
            guitar=source["guitar"],
            pickup=source["pickup"],
            phrase=source["phrase"],
            tone=tone,
            take=source["take"],
            source=source["id"],
            columns={k: v for k, v in staged.items() if k != "path"},
            device=f"{out_dev.name} -> {in_dev.name}",
            player=source.get("player", ""),
            notes=note,
            role=source["role"],
            **provenance,
        )
        report.added.extend(commit_rows(root, [(row, tmp)], replace_unlisted=True))
    return report
