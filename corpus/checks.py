"""Checks on a take: clipping, silence, dead channels, DC offset, low level, mains hum, drift.

Pure numpy/scipy on an array, so the same checks run after a take, on any file
(``guitarlab check FILE``) and in the tests. Each finding is a small record with a
severity that serialises into the manifest row as JSON.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np

from guitarlab.corpus.levels import CLIP_LEVEL, DEFAULT_TARGET_PEAK_DBFS, SILENCE_DBFS, to_db

SEVERITIES = ("info", "warning", "error")
SILENCE_PEAK_DBFS = -70.0
DC_WARN_DBFS = -40.0
LOW_LEVEL_MARGIN_DB = 12.0
HUM_WARN_DB = -35.0
DRIFT_WARN_DB = 3.0
MAX_PLACES = 10


@dataclass(frozen=True)
class Finding:
    """One problem found in a take: which check, how bad, what to do, and where (seconds)."""

    check: str
    severity: str
    message: str
    value: float = float("nan")
    at_s: list[float] = field(default_factory=list)

    def as_dict(self) -> dict:
        data = asdict(self)
        data["value"] = None if not np.isfinite(self.value) else round(float(self.value), 3)
        data["at_s"] = [round(float(t), 3) for t in self.at_s]
        return data


def findings_to_json(findings: list[Finding]) -> str:
    """Compact JSON for the manifest's ``checks`` column ("[]" when all is well)."""
    return json.dumps([f.as_dict() for f in findings], separators=(",", ":"))


def findings_from_json(text: str) -> list[Finding]:
    """Inverse of :func:`findings_to_json` (an empty string reads as no findings)."""
    if not text or not text.strip():
        return []
    return [
        Finding(
            check=d["check"],
            severity=d["severity"],
            message=d["message"],
            value=float("nan") if d.get("value") is None else float(d["value"]),
            at_s=list(d.get("at_s") or []),
        )
        for d in json.loads(text)
    ]


def _as_2d(audio: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float32)
    return audio.reshape(-1, 1) if audio.ndim == 1 else audio


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Start and end (exclusive) indexes of the True runs in ``mask``."""
    if not mask.any():
        return []
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def check_clipping(audio: np.ndarray, sample_rate: int) -> list[Finding]:
    """Samples at full scale: how many, and the times of the first clipped stretches."""
    data = _as_2d(audio)
    mask = (np.abs(data) >= CLIP_LEVEL).any(axis=1)
    count = int(np.count_nonzero(np.abs(data) >= CLIP_LEVEL))
    if count == 0:
        return []
    runs = _runs(mask)
    places = [start / sample_rate for start, _ in runs[:MAX_PLACES]]
    where = ", ".join(f"{t:.2f}s" for t in places) + (" ..." if len(runs) > MAX_PLACES else "")
    return [
        Finding(
            "clipping",
            "error",
            f"{count} sample(s) at full scale in {len(runs)} place(s) ({where}); turn the interface gain down and record again",
            value=float(count),
            at_s=places,
        )
    ]


def check_silence(audio: np.ndarray, sample_rate: int) -> list[Finding]:
    """A silent take, or a dead channel in a multi-channel one."""
    data = _as_2d(audio)
    peaks = [
        to_db(float(np.max(np.abs(data[:, c])))) if len(data) else SILENCE_DBFS
        for c in range(data.shape[1])
    ]
    if all(p < SILENCE_PEAK_DBFS for p in peaks):
        return [
            Finding(
                "silence",
                "error",
                f"the take is silent (peak {max(peaks):.1f} dBFS); check the cable, the input channel and the gain",
                value=max(peaks),
            )
        ]
    return [
        Finding(
            "dead_channel",
            "warning",
            f"channel {c + 1} is silent (peak {p:.1f} dBFS) while others carry audio; record the live channel only (--channel)",
            value=p,
        )
        for c, p in enumerate(peaks)
        if p < SILENCE_PEAK_DBFS
    ]


def check_dc_offset(audio: np.ndarray, sample_rate: int) -> list[Finding]:
    """A mean far from zero: a faulty interface input or a pedal leaking DC."""
    data = _as_2d(audio)
    if not len(data):
        return []
    offsets = np.mean(data.astype(np.float64), axis=0)
    worst = float(np.max(np.abs(offsets)))
    level = to_db(worst)
    if level < DC_WARN_DBFS:
        return []
    return [
        Finding(
            "dc_offset",
            "warning",
            f"DC offset of {worst:.4f} ({level:.1f} dBFS); check the interface input, or high-pass the take before use",
            value=level,
        )
    ]


def check_level(
    audio: np.ndarray, sample_rate: int, *, target_peak_dbfs: float = DEFAULT_TARGET_PEAK_DBFS
) -> list[Finding]:
    """Peak far below the target: the take will carry more noise than it needs."""
    peak = to_db(float(np.max(np.abs(audio)))) if np.size(audio) else SILENCE_DBFS
    if peak < SILENCE_PEAK_DBFS or peak >= target_peak_dbfs - LOW_LEVEL_MARGIN_DB:
        return []
    return [
        Finding(
            "level_low",
            "warning",
            f"peak {peak:.1f} dBFS is {target_peak_dbfs - peak:.1f} dB under the target {target_peak_dbfs:.0f} dBFS; turn the interface gain up ('guitarlab level')",
            value=peak,
        )
    ]


HUM_MIN_S = 2.0  # shortest take the hum check judges
HUM_SEGMENT_S = 4.0  # longest segment a line is measured in
HUM_HARMONICS = 4  # mains and its first 3 harmonics
HUM_TOLERANCE_HZ = 0.3  # how far from k x mains a line may sit (the grid drifts little)
HUM_LOW_RATE = 1000  # the lines are looked for at about this rate
HUM_PROMINENCE = 10.0  # a line stands 10 dB above the higher of its flanks
FLANK_GAP_HZ = 0.5
FLANK_WIDTH_HZ = 3.0


def steady_line_levels_db(
    audio: np.ndarray, sample_rate: int, mains: tuple[float, ...] = (50.0, 60.0)
) -> dict[float, float]:
    """Per mains frequency, the power of its steady lines relative to all power, in dB.

    Hum is steady, a note is not: the take is cut into half-overlapping segments of 2-4 s
    (two at least when the take is 4 s or longer) and in each the amplitude of a line
    exactly at each of the first 4 harmonics (within 0.3 Hz, 10 dB above the higher of
    its flanks) is measured.
    A line counts with its *weakest* segment, the quietest stretch between notes, and
    only at the mains frequency itself: a G2 (98 Hz) beside 100 Hz rings in some
    segments, decays in others and sits 2 Hz off, so it does not count. Takes shorter
    than 2 s are not judged (:data:`SILENCE_DBFS`): a low note and a mains line cannot
    be told apart in less. Segments of digital silence (a dropout) say nothing and are
    skipped.
    """
    from scipy.signal import resample_poly

    quiet = {float(m): SILENCE_DBFS for m in mains}
    mono = _as_2d(audio).mean(axis=1, dtype=np.float64)
    if mono.size < HUM_MIN_S * sample_rate or not np.any(mono):
        return quiet
    # the lines sit below 300 Hz: find them at about 1 kHz, measure all power at full rate
    down = max(1, int(sample_rate) // HUM_LOW_RATE)
    low = resample_poly(mono, 1, down) if down > 1 else mono
    low_rate = sample_rate / down
    # at least two segments where the take allows, so a line must last to count
    seg = int(min(low.size, max(HUM_MIN_S * low_rate, low.size // 2), HUM_SEGMENT_S * low_rate))
    hop = max(1, seg // 2)
    window = np.hanning(seg)
    full_seg = int(round(seg * down))
    full_window = np.hanning(full_seg)
    nfft = 4 * seg  # zero padding: the peak of a line is read within a quarter bin
    freqs = np.fft.rfftfreq(nfft, 1.0 / low_rate)
    lobe_hz = 2.0 * low_rate / seg  # half-width of the Hann main lobe
    unit = (window.sum() / 2.0) ** 2  # |X|^2 of a unit-amplitude line at its peak
    starts = range(0, low.size - seg + 1, hop)
    lines = {float(m): [] for m in mains}
    powers = []
    for start in starts:
        chunk = mono[start * down : start * down + full_seg]
        if chunk.size < full_seg:
            chunk = np.pad(chunk, (0, full_seg - chunk.size))
        power = float(np.sum((chunk * full_window) ** 2) / np.sum(full_window**2))
        powers.append(power)
        if power < 1e-12:  # digital silence: no analog signal, so no evidence either way
            continue
        spectrum = np.abs(np.fft.rfft(low[start : start + seg] * window, nfft)) ** 2 / unit
        for m in lines:
            level = 0.0
            for k in range(1, HUM_HARMONICS + 1):
                offset = freqs - k * m
                near = np.abs(offset) <= HUM_TOLERANCE_HZ
                beside = (np.abs(offset) > lobe_hz + FLANK_GAP_HZ) & (
                    np.abs(offset) <= lobe_hz + FLANK_GAP_HZ + FLANK_WIDTH_HZ
                )
                below, above = beside & (offset < 0), beside & (offset > 0)
                if not near.any() or not below.any() or not above.any():
                    continue
                # the floor under the line: the higher flank, so a note's skirt on one
                # side (a decaying G2 below 100 Hz) is not taken for a line
                floor = max(np.median(spectrum[below]), np.median(spectrum[above]))
                peak = float(spectrum[near].max())
                if peak > HUM_PROMINENCE * floor:  # a line, not the top of noise
                    level += (peak - floor) / 2.0  # a line of amplitude A has power A^2/2
            lines[m].append(level)
    total = float(np.mean(powers)) if powers else 0.0
    out = {}
    for m, found in lines.items():
        steady = min(found, default=0.0)
        out[m] = 10.0 * np.log10(steady / total) if steady > 0 and total > 0 else SILENCE_DBFS
    return out


def hum_level_db(audio: np.ndarray, sample_rate: int, *, mains_hz: float) -> float:
    """Steady power at ``mains_hz`` and its first 3 harmonics relative to all power, in dB.

    See :func:`steady_line_levels_db`: a line counts with its weakest stretch, so the
    notes of a take (low ones near 100 or 120 Hz included) do not read as hum.
    """
    return steady_line_levels_db(audio, sample_rate, (float(mains_hz),))[float(mains_hz)]


def check_hum(audio: np.ndarray, sample_rate: int) -> list[Finding]:
    """Steady mains hum (50 or 60 Hz and harmonics) relative to the signal, judged where
    it is weakest (between notes), so low notes near 100 or 120 Hz are not hum."""
    levels = steady_line_levels_db(audio, sample_rate, (50.0, 60.0))
    mains, level = max(levels.items(), key=lambda item: item[1])
    if level < HUM_WARN_DB:
        return []
    severity = "error" if level > -15.0 else "warning"
    return [
        Finding(
            "hum",
            severity,
            f"{mains:.0f} Hz mains hum at {level:.1f} dB relative to the signal; check grounding, move away from screens and dimmers, try the other pickup position",
            value=level,
        )
    ]


def check_drift(
    audio: np.ndarray, sample_rate: int, *, calibrated_peak_dbfs: float | None
) -> list[Finding]:
    """A take whose loudest peak is far from the level measured at calibration."""
    if calibrated_peak_dbfs is None or not np.isfinite(calibrated_peak_dbfs):
        return []
    peak = to_db(float(np.max(np.abs(audio)))) if np.size(audio) else SILENCE_DBFS
    if peak < SILENCE_PEAK_DBFS:
        return []
    drift = peak - calibrated_peak_dbfs
    if abs(drift) <= DRIFT_WARN_DB:
        return []
    return [
        Finding(
            "drift",
            "warning",
            f"peak {peak:.1f} dBFS is {drift:+.1f} dB from this guitar's calibration ({calibrated_peak_dbfs:.1f} dBFS); did the gain knob move? run 'guitarlab level' again",
            value=drift,
        )
    ]


def check_take(
    audio: np.ndarray,
    sample_rate: int,
    *,
    target_peak_dbfs: float = DEFAULT_TARGET_PEAK_DBFS,
    calibrated_peak_dbfs: float | None = None,
) -> list[Finding]:
    """Every check on one take, worst first."""
    findings = check_silence(audio, sample_rate)
    if not any(f.check == "silence" for f in findings):
        findings += check_clipping(audio, sample_rate)
        findings += check_dc_offset(audio, sample_rate)
        findings += check_level(audio, sample_rate, target_peak_dbfs=target_peak_dbfs)
        findings += check_hum(audio, sample_rate)
        findings += check_drift(audio, sample_rate, calibrated_peak_dbfs=calibrated_peak_dbfs)
    return sorted(findings, key=lambda f: -SEVERITIES.index(f.severity))


def findings_text(findings: list[Finding]) -> list[str]:
    """One line per finding for the terminal ("ok" when none)."""
    if not findings:
        return ["ok: no clipping, silence, DC offset, low level, hum or drift"]
    return [f"{f.severity}: {f.check}: {f.message}" for f in findings]
