"""An ordered map over worker processes, for stages whose per-item work is pure.

``dataset build --jobs`` windows files in it, ``synth --jobs`` renders takes in it; the
parent process keeps every write to the corpus (commits stay one writer, in order).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import multiprocessing
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized

from guitarlab.corpus.errors import GuitarlabError


def resolve_jobs(jobs: int | None, *, error: type[GuitarlabError] = GuitarlabError) -> int:
    """``--jobs``: a number of processes, 0 (or None) for every core this process may use."""
    if jobs is None or int(jobs) == 0:
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not on Linux
            return max(1, os.cpu_count() or 1)
    if int(jobs) < 0:
        raise error(f"--jobs {jobs}: give a number of processes, or 0 for every core")
    return int(jobs)


def pool_context():
    """fork where it is safe and instant (Linux), else spawn: a worker then starts in ~0.3 s."""
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


_SHARED = threading.local()  # the pools of an open shared_pools(), by process count


@contextlib.contextmanager
def shared_pools() -> Iterator[None]:
    """Inside, each ``map_ordered`` reuses one pool per process count, shut down at the
    end: a job's passes over its files (a dataset build's probes, then its windows) fork
    their processes once, not once a pass."""
    outer = getattr(_SHARED, "pools", None)
    if outer is not None:  # already inside one: its pools serve this too
        yield
        return
    _SHARED.pools = {}
    try:
        yield
    finally:
        pools, _SHARED.pools = _SHARED.pools, None
        for pool in pools.values():
            pool.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def _pool(workers: int):
    """A pool of ``workers`` processes: the open ``shared_pools()``'s, or one for this map."""
    from concurrent.futures import ProcessPoolExecutor

    pools = getattr(_SHARED, "pools", None)
    if pools is None:
        with ProcessPoolExecutor(max_workers=workers, mp_context=pool_context()) as pool:
            yield pool
        return
    if workers not in pools:
        pools[workers] = ProcessPoolExecutor(max_workers=workers, mp_context=pool_context())
    try:
        yield pools[workers]
    except BaseException:  # a broken or interrupted pool is not handed to the next pass
        pools.pop(workers).shutdown(wait=False, cancel_futures=True)
        raise


def map_ordered(
    fn: Callable,
    items: Iterable,
    *,
    jobs: int,
    error: type[GuitarlabError] = GuitarlabError,
    chunk: int | Sequence[int] = 1,
) -> Iterator:
    """``fn`` over ``items`` in ``jobs`` processes (in this one for 1), results in order.
    ``items`` may be a generator: it is drawn, in this process, as workers free up.
    ``chunk`` items go to a worker at once (one after another there), so items that take
    a few ms each do not spend as much again travelling to and from it; a sequence gives
    each batch's size in turn (after the last, one item a batch).

    A few items per process in flight, so memory stays one item per process. A worker
    that dies (killed, out of memory) raises ``error`` in one line.
    """
    from concurrent.futures.process import BrokenProcessPool

    if jobs <= 1 or (isinstance(items, Sized) and len(items) <= 1):
        yield from map(fn, items)
        return
    if not isinstance(chunk, int) or chunk > 1:
        each = functools.partial(_each, fn)
        for results in map_ordered(each, _groups(items, chunk), jobs=jobs, error=error):
            yield from results
        return
    workers = min(jobs, len(items)) if isinstance(items, Sized) else jobs
    if getattr(_SHARED, "pools", None) is not None:
        workers = jobs  # one pool serves every pass, however many items each has
    with _pool(workers) as pool:
        pending = []
        queue = iter(items)
        try:
            for item in _take(queue, 2 * workers):
                pending.append(pool.submit(fn, item))
            while pending:
                result = pending.pop(0).result()
                for item in _take(queue, 1):
                    pending.append(pool.submit(fn, item))
                yield result
        except BrokenProcessPool:
            for future in pending:
                future.cancel()
            raise error(
                f"a --jobs worker process died (killed, or out of memory with {workers} items "
                "in memory at once); run again, with fewer --jobs"
            ) from None
        except BaseException:
            for future in pending:
                future.cancel()
            raise


_END = object()


def _each(fn: Callable, items: list) -> list:
    return [fn(item) for item in items]


def _groups(items: Iterable, sizes: int | Sequence[int]) -> Iterator[list]:
    """``items`` in lists of ``sizes`` (one size for all, or each list's in turn and then
    single items), drawn as they are asked for."""
    queue = iter(items)
    each = (
        itertools.repeat(sizes)
        if isinstance(sizes, int)
        else itertools.chain(sizes, itertools.repeat(1))
    )
    while batch := list(itertools.islice(queue, next(each))):
        yield batch


def _take(items: Iterator, n: int) -> Iterable:
    for _ in range(n):
        item = next(items, _END)
        if item is _END:
            return
        yield item
