"""A block level meter (peak, RMS, peak hold, clip light) and gain advice. Pure numpy.

The meter is fed the blocks a take is made of, off the audio thread; it keeps what a
guitarist needs to set the interface gain: the level now, the highest level lately,
whether anything clipped, and the loudest peak of the whole passage.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from guitarlab.corpus.levels import CLIP_LEVEL, DEFAULT_TARGET_PEAK_DBFS, SILENCE_DBFS, to_db

METER_FLOOR_DBFS = -60.0


@dataclass(frozen=True)
class MeterReading:
    """What the meter shows after a block."""

    peak_dbfs: float
    rms_dbfs: float
    hold_dbfs: float
    clip: bool
    max_peak_dbfs: float
    total_rms_dbfs: float
    clipped_samples: int
    seconds: float


class LevelMeter:
    """Peak and RMS of each block, a peak hold that falls after ``hold_s``, a sticky clip light.

    Examples
    --------
    >>> import numpy as np
    >>> meter = LevelMeter(48000)
    >>> reading = meter.update(0.5 * np.ones(480, np.float32))
    >>> round(reading.peak_dbfs, 2), reading.clip
    (-6.02, False)
    """

    def __init__(
        self, sample_rate: int, *, hold_s: float = 1.5, fall_db_per_s: float = 20.0
    ) -> None:
        self.sample_rate = int(sample_rate)
        self.hold_s = float(hold_s)
        self.fall_db_per_s = float(fall_db_per_s)
        self.reset()

    def reset(self) -> None:
        self._hold_db = SILENCE_DBFS
        self._hold_age_s = 0.0
        self._max_abs = 0.0
        self._sum_squares = 0.0
        self._samples = 0
        self._frames = 0
        self.clipped_samples = 0
        self.last = MeterReading(
            SILENCE_DBFS, SILENCE_DBFS, SILENCE_DBFS, False, SILENCE_DBFS, SILENCE_DBFS, 0, 0.0
        )

    def update(self, block: np.ndarray) -> MeterReading:
        """Take one block (frames,) or (frames, channels) and return the reading."""
        block = np.asarray(block, dtype=np.float32)
        frames = block.shape[0] if block.ndim else 0
        if frames == 0:
            return self.last
        magnitude = np.abs(block)
        block_max = float(magnitude.max())
        squares = float(np.dot(block.ravel().astype(np.float64), block.ravel()))
        clipped = int(np.count_nonzero(magnitude >= CLIP_LEVEL))
        block_s = frames / self.sample_rate
        peak_db = to_db(block_max)
        self._hold_age_s += block_s
        if peak_db >= self._hold_db:
            self._hold_db, self._hold_age_s = peak_db, 0.0
        elif self._hold_age_s > self.hold_s:
            self._hold_db = max(peak_db, self._hold_db - self.fall_db_per_s * block_s)
        self._max_abs = max(self._max_abs, block_max)
        self._sum_squares += squares
        self._samples += block.size
        self._frames += frames
        self.clipped_samples += clipped
        self.last = MeterReading(
            peak_dbfs=peak_db,
            rms_dbfs=to_db(float(np.sqrt(squares / block.size))),
            hold_dbfs=self._hold_db,
            clip=self.clipped_samples > 0,
            max_peak_dbfs=to_db(self._max_abs),
            total_rms_dbfs=to_db(float(np.sqrt(self._sum_squares / max(self._samples, 1)))),
            clipped_samples=self.clipped_samples,
            seconds=self._frames / self.sample_rate,
        )
        return self.last


def gain_advice_db(
    measured_peak_dbfs: float, *, target_peak_dbfs: float = DEFAULT_TARGET_PEAK_DBFS
) -> float:
    """How many dB to turn the interface gain so the loudest peak lands on the target.

    Positive means turn up. A clipped passage hides its true peak, so the advice then is
    at least -6 dB (turn down and measure again).
    """
    if measured_peak_dbfs <= SILENCE_DBFS:
        return float("nan")
    advice = float(target_peak_dbfs - measured_peak_dbfs)
    if measured_peak_dbfs >= to_db(CLIP_LEVEL):
        advice = min(advice, -6.0)
    return advice


def advice_text(gain_db: float, *, clipped: bool = False) -> str:
    """One line telling the player what to do with the interface gain knob."""
    if not np.isfinite(gain_db):
        return "no signal: check the cable, the input channel and the interface gain"
    prefix = "clipped: " if clipped else ""
    if abs(gain_db) < 1.0:
        return f"{prefix}gain is right (within 1 dB of the target)"
    direction = "up" if gain_db > 0 else "down"
    again = ", then measure again" if clipped else ""
    return f"{prefix}turn the interface gain {direction} by {abs(gain_db):.1f} dB{again}"


def level_bar(dbfs: float, *, width: int = 40, floor_dbfs: float = METER_FLOOR_DBFS) -> str:
    """A text bar from ``floor_dbfs`` to 0 dBFS, e.g. ``'#########...........'``."""
    fraction = float(np.clip((dbfs - floor_dbfs) / -floor_dbfs, 0.0, 1.0))
    filled = int(round(fraction * width))
    return "#" * filled + "." * (width - filled)


def meter_line(reading: MeterReading, *, width: int = 20) -> str:
    """The one-line terminal meter: peak bar with hold mark, numbers and the clip light."""
    bar = list(level_bar(reading.peak_dbfs, width=width))
    hold = int(round(np.clip((reading.hold_dbfs + 60.0) / 60.0, 0.0, 1.0) * (width - 1)))
    if reading.hold_dbfs > METER_FLOOR_DBFS:
        bar[hold] = "|"
    light = "CLIP" if reading.clip else "    "
    return (
        f"[{''.join(bar)}] pk {_fmt(reading.peak_dbfs)} rms {_fmt(reading.rms_dbfs)} "
        f"hold {_fmt(reading.hold_dbfs)} dBFS {light}"
    )


def _fmt(dbfs: float) -> str:
    return f"{dbfs:5.1f}" if dbfs > -99.95 else " -inf"
