"""Render on a Dask distributed cluster: the driver plans and commits, the workers render.

The driver (the process that runs ``guitarlab augment --engine dask``) plans the jobs from
the manifest exactly as the local engine does (``plan_jobs``), submits one task per file
and commits the finished renders in batches under the manifest lock (``RenderBatches``, the
local engine's commit path), so only the driver ever takes the lock. Each worker runs
``render_task``: the local engine's ``render_one``, which renders, writes the audio to a
hidden temp name beside its final path and the preset sidecar, and returns the row.

A shared filesystem is assumed, mounted at the same path everywhere, and checked: before
anything is submitted every worker is asked whether it sees ``CORPUS/manifest.csv``
(``client.run``), and every task checks again as it starts (a worker may join later).
A worker that cannot see it fails with one line naming the worker and the path.

Without a scheduler address a ``LocalCluster`` of worker processes (one thread each, no
dashboard) starts on this machine and stops at the end. A failed task is retried
(``retries``); what still fails is reported by file after every other render is
committed. A killed run resumes like the local one: the next run plans only what has no
row, and adopts renders that were written completely but never listed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tqdm import tqdm

from guitarlab.augment.renders import RenderBatches, RenderJob, ThreadChains, render_one
from guitarlab.corpus.cluster import CONNECT_TIMEOUT_S, worker_name  # noqa: F401 (re-exported)
from guitarlab.corpus.cluster import dask_client as shared_client
from guitarlab.corpus.errors import AugmentError
from guitarlab.corpus.manifest import MANIFEST_NAME

FAILURES_SHOWN = 5

_CHAINS = ThreadChains()  # each worker thread's own plugin chains, kept between tasks


def corpus_problem(root: str, dask_worker=None) -> str | None:
    """Why this process cannot use the corpus at ``root`` (a worker's check), or None.

    ``client.run`` passes the worker as ``dask_worker``; a task finds it itself.
    """
    if (Path(root) / MANIFEST_NAME).is_file():
        return None
    return (
        f"Dask worker {worker_name(dask_worker)} cannot see the corpus at {root} "
        f"(no {MANIFEST_NAME}); every worker needs the corpus on a shared filesystem at the same path"
    )


def render_task(root: str, job: RenderJob) -> tuple[dict, str | None]:
    """One task on a worker: render ``job`` into the corpus at ``root``; ``(row, temp)``."""
    problem = corpus_problem(root)
    if problem:
        raise AugmentError(problem)
    row, tmp = render_one(Path(root), job, _CHAINS)
    return row, str(tmp) if tmp else None


@contextmanager
def dask_client(scheduler: str | None, *, workers: int) -> Iterator[object]:
    """A client of the cluster at ``scheduler``, or of a new LocalCluster of ``workers`` processes."""
    with shared_client(scheduler, workers=workers, error=AugmentError) as client:
        yield client


def _check_workers(client, root: str) -> int:
    """Every worker sees the corpus, or one line naming the first that does not."""
    answers = client.run(corpus_problem, root)
    if not answers:
        raise AugmentError("the Dask cluster has no workers; start some with 'dask worker'")
    problems = [problem for problem in answers.values() if problem]
    if problems:
        more = f" (and {len(problems) - 1} more worker(s))" if len(problems) > 1 else ""
        raise AugmentError(problems[0] + more)
    return len(answers)


def run_jobs_dask(
    root: Path,
    jobs: list[RenderJob],
    batches: RenderBatches,
    *,
    workers: int,
    scheduler: str | None,
    retries: int,
    progress: bool,
) -> list[str]:
    """Render ``jobs`` on a Dask cluster and commit their rows here; the new ids."""
    from distributed import as_completed

    if retries < 0:
        raise AugmentError(f"--retries {retries} must be 0 or more")
    where = str(Path(root).absolute())
    failed: list[tuple[RenderJob, BaseException]] = []
    with dask_client(scheduler, workers=workers) as client:
        n_workers = _check_workers(client, where)
        run = uuid.uuid4().hex[:8]
        futures = {
            client.submit(
                render_task, where, job, key=f"augment-{job.id}-{run}", retries=retries, pure=False
            ): job
            for job in jobs
        }
        bar = tqdm(
            total=len(jobs),
            desc=f"augment on {n_workers} Dask worker(s)",
            unit="file",
            disable=not progress,
        )
        try:
            for future in as_completed(futures):
                job = futures[future]
                if future.status == "error":
                    failed.append((job, future.exception()))
                else:
                    row, tmp = future.result()
                    batches.add((row, Path(tmp) if tmp else None))
                future.release()
                bar.update(1)
                bar.set_postfix(failed=len(failed), refresh=False)
        except BaseException:
            client.cancel(list(futures))
            batches.flush()
            raise
        finally:
            bar.close()
        batches.flush()
    if failed:
        shown = "; ".join(
            f"{job.id} from {job.source['path']}: {_one_line(exc)}"
            for job, exc in failed[:FAILURES_SHOWN]
        )
        more = f"; and {len(failed) - FAILURES_SHOWN} more" if len(failed) > FAILURES_SHOWN else ""
        raise AugmentError(
            f"{len(failed)} of {len(jobs)} render(s) failed after {retries} retries "
            f"(the other {len(batches.added)} are in the manifest): {shown}{more}"
        )
    return batches.added


def _one_line(exc: BaseException) -> str:
    return " ".join((str(exc).strip() or type(exc).__name__).split())
