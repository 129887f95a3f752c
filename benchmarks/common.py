"""What every benchmark returns, and the timing helper they share.

A benchmark module ``benchmarks/bench_<stage>.py`` defines ``run(quick: bool) -> list[Row]``.
Each figure is a ratio against a reference measured in the same run, so the numbers
mean the same on a laptop and on a GPU box.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass


@dataclass
class Row:
    """One measured figure: ``value`` over ``reference`` gives ``ratio``."""

    benchmark: str
    figure: str
    value: float
    unit: str
    reference: str = ""
    reference_value: float | None = None
    goal: str = ""
    notes: str = ""

    @property
    def ratio(self) -> float | None:
        if not self.reference_value:
            return None
        return self.value / self.reference_value

    def as_dict(self) -> dict:
        return {**asdict(self), "ratio": self.ratio}


def best_seconds(work: Callable[[], object], *, repeat: int = 3) -> float:
    """The fastest of ``repeat`` wall-clock runs of ``work`` (less noise from other load)."""
    times = []
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)
