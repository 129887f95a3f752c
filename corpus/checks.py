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


def hum_level_db(audio: np.ndarray, sample_rate: int, *, mains_hz: float) -> float:
    """Power of the lines at ``mains_hz`` and its first 3 harmonics, relative to all power, in dB.

    Hum is a set of steady lines: each is measured on a 0.5 Hz resolution spectrum as the
    power in a narrow band above the level of its flanks, so the skirts of decaying
    notes near 100 or 120 Hz do not count.
    """
    from scipy.signal import welch

    mono = _as_2d(audio).mean(axis=1).astype(np.float64)
    if mono.size < sample_rate // 4 or not np.any(mono):
        return SILENCE_DBFS
    nperseg = int(min(mono.size, 2 * sample_rate))
    freqs, power = welch(mono, fs=sample_rate, nperseg=nperseg, window="hann")
    total = float(power.sum())
    if total <= 0:
        return SILENCE_DBFS
    band_hz = max(1.5, 2.0 * sample_rate / nperseg)
    hum = 0.0
    for harmonic in range(1, 5):
        offset = np.abs(freqs - harmonic * mains_hz)
        band = offset <= band_hz
        flanks = (offset > 2 * band_hz) & (offset <= 2 * band_hz + 6.0)
        # a line stands above its neighbours; the skirts of notes and pick noise do not
        floor = float(power[flanks].mean()) if flanks.any() else 0.0
        hum += max(0.0, float(power[band].sum()) - floor * int(band.sum()))
    return 10.0 * np.log10(hum / total) if hum > 0 else SILENCE_DBFS


def check_hum(audio: np.ndarray, sample_rate: int) -> list[Finding]:
    """Mains hum (50 or 60 Hz and harmonics) relative to the signal."""
    levels = {mains: hum_level_db(audio, sample_rate, mains_hz=mains) for mains in (50.0, 60.0)}
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
