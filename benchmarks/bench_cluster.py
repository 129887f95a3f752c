"""Cluster: ``augment --engine dask`` on a LocalCluster of 1 and 2 worker processes.

The reference is the single-process path (``--engine local --workers 1``) on the same
corpus (the post layout, 4 raw takes x 3 core tones) in the same run. The clusters are
started and warmed up (imports, plugin chains) before the clock starts (their start-up is
in the notes), so the rows compare
rendering throughput: what a worker process adds (pickling the job, the task round trip,
the driver committing rows) and what a second process gives on this machine's cores.
The per-task overhead is the round trip of a task that does nothing, against one render.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchmarks.bench_augment import CORE_TONES, POST_TAKES, _load, _post_corpus
from benchmarks.common import Row

NOOP_TASKS = 200


def _noop(value: int) -> int:
    return value


def _render_seconds(seconds: float, **engine) -> float:
    from guitarlab.augment.renders import render_corpus

    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        corpus = _post_corpus(Path(tmp), seconds)
        start = time.perf_counter()
        added = render_corpus(corpus, tones=list(CORE_TONES), progress=False, **engine)
        elapsed = time.perf_counter() - start
    assert len(added) == len(POST_TAKES) * len(CORE_TONES)
    return elapsed


def _on_cluster(workers: int, seconds: float) -> tuple[float, float, float]:
    """(render seconds, cluster start-up seconds, no-op task round trip seconds)."""
    from distributed import Client, LocalCluster

    started = time.perf_counter()
    with LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        with Client(cluster) as client:
            client.wait_for_workers(workers)
            startup = time.perf_counter() - started
            client.gather(client.map(_noop, range(workers * 4), pure=False))  # warm up
            begin = time.perf_counter()
            client.gather(client.map(_noop, range(NOOP_TASKS), pure=False))
            noop = (time.perf_counter() - begin) / NOOP_TASKS * workers
        # warm up as the local path is: each worker imports the renderer and builds its chains
        _render_seconds(min(seconds, 1.0), engine="dask", scheduler=cluster.scheduler_address)
        spent = _render_seconds(seconds, engine="dask", scheduler=cluster.scheduler_address)
    return spent, startup, noop


def run(quick: bool) -> list[Row]:
    """Throughput of the post's corpus (60 s takes; 2 s when ``quick``) on each engine."""
    seconds = 2.0 if quick else 60.0
    files = len(POST_TAKES) * len(CORE_TONES)
    output_s = files * seconds
    _render_seconds(min(seconds, 1.0))  # warm up imports and caches
    local = _render_seconds(seconds, workers=1)
    rows = [
        Row(
            "cluster",
            f"augment post layout ({files} files of {seconds:g} s), --engine local, 1 worker",
            output_s / local,
            "s audio per s wall",
            "real time",
            1.0,
            "the reference of the rows below",
            f"{local:.3f} s",
        )
    ]
    one_task = local / files
    for workers in (1, 2):
        spent, startup, noop = _on_cluster(workers, seconds)
        rows.append(
            Row(
                "cluster",
                f"augment post layout, --engine dask, LocalCluster of {workers} process(es)",
                output_s / spent,
                "s audio per s wall",
                "--engine local, 1 worker",
                output_s / local,
                ">= 0.9 (1 process), >= 1.6 (2 processes on 2 idle cores)",
                f"{spent:.3f} s, cluster start-up {startup:.1f} s not counted; {_load()}",
            )
        )
        rows.append(
            Row(
                "cluster",
                f"per-task overhead: a no-op task's round trip, {workers} process(es)",
                noop * 1000,
                "ms per task",
                "one render through one tone (local)",
                one_task * 1000,
                "ratio <= 0.1",
                f"{NOOP_TASKS} tasks, time x workers / tasks",
            )
        )
    return rows


if __name__ == "__main__":  # pragma: no cover
    for row in run(quick=False):
        print(row.as_dict())
