"""Note onsets and the windows that start at them: pure numpy, no files.

A note library (one plucked note per file, after a silent lead-in) cut on a fixed grid
gives windows of silence, windows that straddle the pluck, and windows of the dying
tail; the part of a note that carries the pickup (its attack and early sustain) lands
anywhere in them. ``dataset build --onsets`` instead starts windows at each detected
note onset (and ``hop`` after it while the note still sounds), and ``predict`` cuts a
file the same way, so a model sees notes from their start, in training as in use.

Detection is the textbook recipe (Bello et al. 2005, "A tutorial on onset detection in
music signals"): the log-magnitude spectral flux, peak-picked against a moving average
with a minimum gap, then each peak moved back to the sample where the energy starts to
rise (a few ms of resolution instead of an STFT hop).

Examples
--------
>>> rate = 8000
>>> t = np.arange(rate) / rate
>>> note = np.sin(2 * np.pi * 220 * t) * np.exp(-3 * t)
>>> audio = np.concatenate([np.zeros(1600), note])
>>> onsets = detect_onsets(audio, rate)
>>> onsets.tolist()  # the note starts at sample 1600
[1600]
>>> note_window_starts(audio, onsets, window=800, hop=800, per_note=3).tolist()
[1600, 2400, 3200]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from guitarlab.corpus.defaults import NOTE_WINDOWS
from guitarlab.corpus.errors import DatasetError
from guitarlab.datasets.meta import DatasetMeta
from guitarlab.datasets.windows import SILENCE_FLOOR_DBFS, SILENT_STD, to_mono

# Spectral flux: frames of ~23 ms (1,024 samples at 44.1 kHz) every ~5.8 ms (256).
FLUX_FRAME_MS = 23.2
FLUX_HOP_MS = 5.8
# Log magnitudes are floored this far below what a full-scale sine at the signal's peak
# would give, so the flux does not depend on the recording level and noise far below the
# playing adds nothing.
FLUX_RANGE_DB = 80.0
# Peak picking (librosa's defaults in spirit): a peak is the largest value within
# PICK_MAX_MS either side, and exceeds the mean over PICK_AVG_MS either side by
# PICK_DELTA of the file's largest flux.
PICK_MAX_MS = 30.0
PICK_AVG_MS = 100.0
PICK_DELTA = 0.07
# Two onsets closer than this are one note (a pick scrape, a double attack).
MIN_GAP_S = 0.05
# A flux peak after which the energy falls by this much (from the ENVELOPE_MS before it to
# the ENVELOPE_MS after the next ENVELOPE_MS) is a note ending (a note cut off splatters
# into every bin), not one starting.
ENDING_DB = 6.0
# An energy rise below this is no rise: the onset is then the flux frame's centre (a new
# pitch over a louder note still ringing, a hammer-on).
MIN_RISE_DB = 1.0
# Refinement: an energy envelope (causal mean square over ENVELOPE_MS, every RESOLUTION_MS)
# and the first point after its minimum before the note's peak that rises RISE_FRACTION of
# the way (in dB) from that minimum to the peak.
ENVELOPE_MS = 20.0
RESOLUTION_MS = 1.0
RISE_FRACTION = 0.25
# A rise that peaks more than this far below the loudest part of the signal is hum or
# noise coming up (at the very start of a file, say), not a note.
NOTE_RANGE_DB = 40.0
# At the very start of a file there is no "before" to rise from (hum and noise begin
# there too): a sound that starts there counts as a note only within this of the loudest.
START_RANGE_DB = 20.0
# A later window of a note is kept while it is within this many dB of the note's first.
NOTE_FLOOR_DB = -30.0


@dataclass(frozen=True)
class OnsetWindows:
    """How a dataset cut its files at note onsets (stored in ``dataset.json``)."""

    window: int
    hop: int
    per_note: int = NOTE_WINDOWS
    floor_dbfs: float = SILENCE_FLOOR_DBFS

    def starts(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """The window starts of one signal as recorded (before any standardization)."""
        return onset_window_starts(
            audio,
            sample_rate,
            window=self.window,
            hop=self.hop,
            per_note=self.per_note,
            floor_dbfs=self.floor_dbfs,
        )


def onset_windows_of(meta: dict | DatasetMeta) -> OnsetWindows | None:
    """The onset windowing a dataset (``dataset.json``, or a run's copy of its scalars)
    was built with, or None for windows on the grid."""
    if str(meta.get("windows_at", "grid")) != "onsets":
        return None
    return OnsetWindows(
        window=int(meta["window"]),
        hop=int(meta["hop"]),
        per_note=int(meta.get("note_windows", NOTE_WINDOWS)),
        floor_dbfs=float(meta.get("onset_floor_dbfs", SILENCE_FLOOR_DBFS)),
    )


def _frames(x: np.ndarray, length: int, hop: int) -> np.ndarray:
    n = 1 + (x.shape[0] - length) // hop
    return np.lib.stride_tricks.as_strided(
        x, shape=(n, length), strides=(x.strides[0] * hop, x.strides[0]), writeable=False
    )


def _mono(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    if int(sample_rate) < 1:
        raise DatasetError(f"sample_rate must be a positive number of Hz, got {sample_rate}")
    return np.asarray(to_mono(np.asarray(audio)), dtype=np.float32)  # a long take: no 8-byte copy


def onset_strength(
    audio: np.ndarray,
    sample_rate: int,
    *,
    frame_ms: float = FLUX_FRAME_MS,
    hop_ms: float = FLUX_HOP_MS,
) -> tuple[np.ndarray, int, int]:
    """Log-magnitude spectral flux: ``(flux, hop, frame)``; ``flux[t]`` belongs to the frame
    centred on sample ``t * hop`` (the signal is zero-padded, so sound at sample 0 is an onset).

    The flux is the mean over frequency bins of the rise (never the fall) in dB from the
    frame before; frames that reach past the end of the signal are 0. Magnitudes are
    floored ``FLUX_RANGE_DB`` below what a full-scale sine of the signal's peak would give,
    so the flux does not depend on the recording level.
    """
    rate = int(sample_rate)
    mono = _mono(audio, rate)
    frame = 1 << max(4, int(round(np.log2(frame_ms * rate / 1000.0))))
    hop = max(1, int(round(hop_ms * rate / 1000.0)))
    n = -(-mono.shape[0] // hop) + 1  # frames centred on 0, hop, ... up to the end
    flux = np.zeros(n)
    top = float(np.abs(mono).max(initial=0.0))
    if top <= SILENT_STD:
        return flux, hop, frame
    padded = np.zeros((n - 1) * hop + frame, dtype=np.float32)
    padded[frame // 2 : frame // 2 + mono.shape[0]] = mono
    taper = np.hanning(frame + 2)[1:-1]
    floor_db = 20.0 * np.log10(top * taper.sum() / 2.0) - FLUX_RANGE_DB
    previous = np.full(frame // 2 + 1, floor_db)
    # frames at a time: a long take never becomes one whole spectrogram, and a chunk's
    # spectra (~2 MB) stay in a core's cache, so two builds at once do not share the
    # bandwidth to memory (1.8x with 2 processes, 1.4x with chunks of 1,024 frames)
    chunk = 256
    for first in range(0, n, chunk):
        part = _frames(padded[first * hop :], frame, hop)[: min(chunk, n - first)]
        db = 20.0 * np.log10(np.abs(np.fft.rfft(part * taper, axis=1)) + 1e-300)
        np.maximum(db, floor_db, out=db)
        before = np.concatenate([previous[None], db[:-1]])
        flux[first : first + len(db)] = np.maximum(db - before, 0.0).mean(axis=1)
        previous = db[-1]
    # frames reaching past the end see the signal cut off: a rise in every bin, not a note
    flux[np.arange(n) * hop + frame // 2 > mono.shape[0]] = 0.0
    return flux, hop, frame


def pick_peaks(
    flux: np.ndarray,
    *,
    max_frames: int,
    avg_frames: int,
    delta: float = PICK_DELTA,
) -> np.ndarray:
    """Frames where ``flux`` is the largest within ``max_frames`` either side and exceeds
    its mean over ``avg_frames`` either side by ``delta`` times the largest flux.

    Examples
    --------
    >>> pick_peaks(np.array([0, 0, 5, 1, 0, 0, 0, 4, 0, 0.0]), max_frames=1, avg_frames=2).tolist()
    [2, 7]
    """
    flux = np.asarray(flux, dtype=np.float64)
    if flux.size == 0 or float(flux.max()) <= 0:
        return np.zeros(0, dtype=np.int64)
    m, a = max(0, int(max_frames)), max(0, int(avg_frames))
    padded = np.pad(flux, m, constant_values=-np.inf)
    local_max = np.lib.stride_tricks.sliding_window_view(padded, 2 * m + 1).max(axis=1)
    cumulative = np.concatenate([[0.0], np.cumsum(flux)])
    idx = np.arange(flux.size)
    lo, hi = np.maximum(idx - a, 0), np.minimum(idx + a + 1, flux.size)
    average = (cumulative[hi] - cumulative[lo]) / (hi - lo)
    keep = (flux >= local_max) & (flux >= average + float(delta) * flux.max()) & (flux > 0)
    return np.flatnonzero(keep).astype(np.int64)


def energy_envelope_db(audio: np.ndarray, block: int, length_blocks: int) -> np.ndarray:
    """Causal mean square in dBFS: entry ``k`` covers the ``length_blocks`` blocks of
    ``block`` samples that end with block ``k`` (so it starts to rise in the block where
    a sound starts)."""
    mono = np.asarray(audio, dtype=np.float32)
    n = mono.shape[0] // block
    energy = np.square(mono[: n * block]).reshape(n, block).sum(axis=1, dtype=np.float64)
    cumulative = np.concatenate([[0.0], np.cumsum(energy)])
    k = np.arange(n)
    lo = np.maximum(k + 1 - int(length_blocks), 0)
    mean_square = (cumulative[k + 1] - cumulative[lo]) / (int(length_blocks) * block)
    return 10.0 * np.log10(np.maximum(mean_square, 1e-20))


def detect_onsets(
    audio: np.ndarray,
    sample_rate: int,
    *,
    min_gap_s: float = MIN_GAP_S,
    delta: float = PICK_DELTA,
    floor_dbfs: float = SILENCE_FLOOR_DBFS,
) -> np.ndarray:
    """Sample indices (int64, increasing) where notes start.

    Peaks of the spectral flux (:func:`onset_strength`, :func:`pick_peaks`), each moved
    back to where the energy envelope starts to rise towards the note (a resolution of
    ``RESOLUTION_MS``); a peak whose note stays below ``floor_dbfs`` (RMS over
    ``ENVELOPE_MS``, as recorded) or more than ``NOTE_RANGE_DB`` below the loudest part
    of the signal is hum or noise, and one after which the energy falls by ``ENDING_DB``
    is a note ending, not a note; onsets closer than ``min_gap_s``
    to the one before are the same note.

    Parameters
    ----------
    audio : np.ndarray, shape (frames,) or (frames, channels)
        The signal as recorded (channels are averaged); its level matters only for
        ``floor_dbfs``.
    sample_rate : int
        Samples per second of ``audio``.
    """
    rate = int(sample_rate)
    mono = _mono(audio, rate)
    if float(min_gap_s) < 0:
        raise DatasetError(f"min_gap_s must be 0 or more seconds, got {min_gap_s}")
    flux, hop, frame = onset_strength(mono, rate)
    peaks = pick_peaks(
        flux,
        max_frames=int(round(PICK_MAX_MS * rate / 1000.0 / hop)),
        avg_frames=int(round(PICK_AVG_MS * rate / 1000.0 / hop)),
        delta=delta,
    )
    block = max(1, int(round(RESOLUTION_MS * rate / 1000.0)))
    span = max(1, int(round(ENVELOPE_MS / RESOLUTION_MS)))
    envelope = energy_envelope_db(mono, block, span)
    if envelope.size == 0:
        return np.zeros(0, dtype=np.int64)
    loudest = float(envelope.max())
    quietest_note = max(float(floor_dbfs), loudest - NOTE_RANGE_DB)
    gap = int(round(float(min_gap_s) * rate))
    onsets: list[int] = []
    for centre in (peaks * hop).tolist():
        lo = max(0, (centre - frame) // block)
        if onsets:
            lo = max(lo, onsets[-1] // block + 1)
        hi = min(envelope.size, (centre + frame // 2) // block + span + 1)
        mid = max(lo, min((centre - frame // 2) // block, hi - 1))  # the note rises after here
        if hi - lo < 2:
            continue
        here = min(centre // block, envelope.size - 1)
        if envelope[min(here + 2 * span, envelope.size - 1)] < envelope[here] - ENDING_DB:
            continue  # the energy falls away: a note cut off splatters into every bin
        region = envelope[lo:hi]
        top = mid - lo + int(region[mid - lo :].argmax())
        at_start = lo == 0 and centre <= frame
        if region[top] <= (
            max(quietest_note, loudest - START_RANGE_DB) if at_start else quietest_note
        ):
            continue  # the rise leads to nothing louder than the gate: hum, noise
        bottom = int(region[: top + 1].argmin())
        low = max(float(region[bottom]), float(region[top]) - FLUX_RANGE_DB)
        if lo == 0 and bottom == 0:  # before the file there is silence, not its first block
            low = float(region[top]) - FLUX_RANGE_DB
        if float(region[top]) - low >= MIN_RISE_DB:
            threshold = low + RISE_FRACTION * (float(region[top]) - low)
            rising = np.flatnonzero(region[bottom : top + 1] >= threshold)
            onset = (lo + bottom + int(rising[0])) * block
        else:  # a new pitch over a louder ringing note (legato): the flux frame's centre
            onset = int(centre)
        if onsets and onset - onsets[-1] < gap:
            continue
        onsets.append(int(onset))
    return np.array(onsets, dtype=np.int64)


def _rms_dbfs(segment: np.ndarray) -> float:
    power = float(np.mean(np.square(segment, dtype=np.float64)))
    return 10.0 * float(np.log10(max(power, 1e-20)))


def note_window_starts(
    audio: np.ndarray,
    onsets: np.ndarray,
    *,
    window: int,
    hop: int,
    per_note: int = NOTE_WINDOWS,
    floor_dbfs: float = SILENCE_FLOOR_DBFS,
    note_floor_db: float = NOTE_FLOOR_DB,
) -> np.ndarray:
    """Start samples of the windows of each note: one at its onset, then every ``hop``
    while the window ends before the next onset, stays within ``note_floor_db`` of the
    note's first window and above ``floor_dbfs``, up to ``per_note`` windows.

    A note too close to the end of the signal for a whole window, or quieter than
    ``floor_dbfs``, gives none: no window of silence, none of another note's tail.
    """
    window, hop, per_note = int(window), int(hop), int(per_note)
    if window < 1 or hop < 1 or per_note < 1:
        raise DatasetError(
            f"window, hop and windows per note must be at least 1, got {window}, {hop}, {per_note}"
        )
    mono = np.asarray(to_mono(np.asarray(audio)), dtype=np.float32)
    frames = mono.shape[0]
    onsets = np.asarray(onsets, dtype=np.int64)
    ends = np.append(onsets[1:], frames)[: onsets.size]
    out: list[int] = []
    for onset, end in zip(onsets.tolist(), ends.tolist(), strict=True):
        if onset < 0 or onset + window > frames:
            continue
        first = _rms_dbfs(mono[onset : onset + window])
        if first <= float(floor_dbfs):
            continue
        out.append(onset)
        for k in range(1, per_note):
            start = onset + k * hop
            if start + window > min(end, frames):
                break
            level = _rms_dbfs(mono[start : start + window])
            if level < first + float(note_floor_db) or level <= float(floor_dbfs):
                break
            out.append(start)
    return np.array(out, dtype=np.int64)


def onset_window_starts(
    audio: np.ndarray,
    sample_rate: int,
    *,
    window: int,
    hop: int,
    per_note: int = NOTE_WINDOWS,
    floor_dbfs: float = SILENCE_FLOOR_DBFS,
) -> np.ndarray:
    """Detect the onsets of a signal as recorded and give its note windows' starts:
    what ``dataset build --onsets`` stores and ``predict`` votes over."""
    onsets = detect_onsets(audio, sample_rate, floor_dbfs=floor_dbfs)
    return note_window_starts(
        audio, onsets, window=window, hop=hop, per_note=per_note, floor_dbfs=floor_dbfs
    )
