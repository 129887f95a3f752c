"""A Dask distributed client for the stages that run on a cluster (augment, dataset build).

One place decides how guitarlab connects: to a scheduler the user started (``--scheduler``,
one line when it cannot be reached), or to a ``LocalCluster`` of worker processes started
here and stopped at the end. Dask is an optional extra (``pip install 'guitarlab[dask]'``);
without it the user gets one line saying how to install it.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

from guitarlab.corpus.errors import GuitarlabError

CONNECT_TIMEOUT_S = 15
# Where a stage's files are processed: here (threads or processes), or on a Dask cluster
ENGINES = ("local", "dask")


def check_engine(engine: str, scheduler: str | None, *, error: type[GuitarlabError]) -> None:
    """One line (as ``error``, the stage's own class) for an engine no stage runs on, or a
    ``--scheduler`` without ``--engine dask``: the same words from every stage."""
    if engine not in ENGINES:
        raise error(f"unknown engine {engine!r}; use one of {', '.join(ENGINES)}")
    if scheduler and engine != "dask":
        raise error("--scheduler is the address of a Dask scheduler; add --engine dask")


def worker_name(dask_worker=None) -> str:
    """This worker's address and host (the host alone outside a Dask worker)."""
    host = socket.gethostname()
    if dask_worker is None:
        try:
            from distributed import get_worker

            dask_worker = get_worker()
        except (ImportError, ValueError):
            return host
    return f"{dask_worker.address} on {host}"


@contextmanager
def dask_client(
    scheduler: str | None,
    *,
    workers: int,
    error: type[GuitarlabError] = GuitarlabError,
    option: str = "--engine dask",
) -> Iterator[object]:
    """A client of the cluster at ``scheduler``, or of a new LocalCluster of ``workers`` processes.

    Failures are ``error`` (the calling stage's class) in one line; ``option`` names the
    flag that asked for Dask in the install hint.
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise error(
            f"{option} needs Dask distributed; install it with pip install 'guitarlab[dask]'"
        ) from None
    if scheduler:
        try:
            client = Client(scheduler, timeout=f"{CONNECT_TIMEOUT_S}s")
        except (OSError, TimeoutError, ValueError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise error(
                f"cannot reach the Dask scheduler at {scheduler} ({reason}); start one with "
                "'dask scheduler', or leave --scheduler out to use a LocalCluster"
            ) from None
        with client:
            yield client
        return
    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        # the scheduler's HTTP server always starts; on a free port it never clashes with
        # another cluster's 8787 (a dashboard is served there only if bokeh is installed)
        dashboard_address=":0",
    )
    with cluster, Client(cluster) as client:
        yield client
