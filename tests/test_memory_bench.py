"""benchmarks/bench_memory.py: a process's peak anonymous memory, and the guard that stops it."""

from __future__ import annotations

import sys

from benchmarks.bench_memory import peak_memory

ALLOCATE = (
    "import time, numpy as np; a = np.ones(int(sys.argv[1]) // 8); time.sleep(0.6); print(a[0])"
)


def _python(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", "import sys; " + code, *args]


def test_peak_counts_what_the_process_allocates():
    small = peak_memory(_python(ALLOCATE, str(10**6)))
    large = peak_memory(_python(ALLOCATE, str(300 * 10**6)))
    assert small.returncode == large.returncode == 0 and not large.stopped
    assert large.rss_anon - small.rss_anon > 250 * 10**6
    assert large.max_rss >= large.rss_anon * 0.9  # ru_maxrss, as /usr/bin/time -v reports


def test_the_guard_stops_a_process_past_its_limit():
    grows = "import time; a = []\nwhile True: a.append(bytearray(50 * 10**6)); time.sleep(0.05)"
    peak = peak_memory(_python(grows), limit_bytes=400 * 10**6)
    assert peak.stopped and peak.returncode != 0
    assert 400 * 10**6 < peak.rss_anon < 2 * 10**9
