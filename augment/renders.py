"""Render a corpus's raw takes through tone presets: the I/O edge of the augment stage.

``render_corpus`` reads raw rows from the manifest, renders each missing
(take, preset, variant) with ``render``, writes ``tones/<id>.wav`` atomically, keeps the
exact preset it used beside it (``tones/<id>.preset.json``, see ``rendered_preset``), and
appends rows in batches under the manifest lock. What is already rendered with the same
preset hash is skipped, so a second run does nothing and a killed run resumes where it
stopped: files a killed run finished but never listed are adopted, not rendered again,
so a kill loses at most the files being written.

Random variants (``randomize=N``) keep ``tone`` = the preset name, so a dataset split by
tone groups them with their preset; the variant is the id suffix (``...-crunch-r01``)
and the ``variant`` column, and the drawn parameters are in the preset sidecar.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from guitarlab.augment.presets import (
    CORE_TONES,
    canonical_json,
    chain_from_preset,
    draw_variant,
    get_presets,
    preset_hash,
)
from guitarlab.augment.render import render
from guitarlab.corpus.atomic import write_text_atomic
from guitarlab.corpus.audio import file_columns, read_audio
from guitarlab.corpus.audit import TEMP_RE
from guitarlab.corpus.cluster import check_engine
from guitarlab.corpus.errors import AugmentError
from guitarlab.corpus.levels import apply_gain_db
from guitarlab.corpus.manifest import (
    PRESETS_DIR,
    RAW_TONE,
    TONES_DIR,
    commit_rows,
    load_manifest,
    manifest_row,
    pid_alive,
    relative_audio_path,
    resolve_audio_path,
    row_id,
    stage_audio,
)
from guitarlab.corpus.query import query_rows

VARIANT_COLUMN = "variant"
INPUT_GAIN_COLUMN = "input_gain_db"
PRESET_SIDECAR_SUFFIX = ".preset.json"
DEVICE = "pedalboard"
BATCH_FILES = 8
BATCH_SECONDS = 5.0


@dataclass(frozen=True)
class RenderJob:
    """One file to render: a raw row through one (possibly drawn) preset."""

    source: dict
    preset: dict
    preset_hash: str
    id: str
    variant: str
    input_gain_db: float = 0.0


# ---------------------------------------------------------------- planning


def plan_jobs(
    manifest: pd.DataFrame,
    presets: Iterable[dict],
    *,
    where: str | Sequence[str] | None = None,
    randomize: int = 0,
    seed: int = 0,
    match_levels: bool = True,
) -> list[RenderJob]:
    """Every render still missing: raw rows x presets (x variants) without a matching row.

    A render is done when a row with the same source, tone and preset hash exists. An id
    already taken by another preset hash (the preset was edited) gets a hash suffix.
    With ``match_levels`` each take is trimmed by its ``gain_db`` before the chain.
    """
    if randomize < 0:
        raise AugmentError(f"--randomize {randomize} must be 0 or a positive number of variants")
    raw = query_rows(manifest[manifest["tone"] == RAW_TONE], where, error=AugmentError)
    if raw.empty:
        raise AugmentError(
            "no raw take to render"
            + (
                f": --where {where if isinstance(where, str) else ' '.join(where)} matches none"
                if where
                else " in the corpus"
            )
            + "; check 'guitarlab manifest summary'"
        )
    done = set(zip(manifest["source"], manifest["tone"], manifest["preset_hash"], strict=True))
    taken = set(manifest["id"])
    jobs = []
    for preset in presets:
        versions = [(preset, "")] + [
            (drawn := draw_variant(preset, number, seed=seed), drawn["variant"])
            for number in range(1, randomize + 1)
        ]
        hashes = [preset_hash(version) for version, _ in versions]
        for _, source in raw.iterrows():
            for (version, variant), digest in zip(versions, hashes, strict=True):
                if (source["id"], preset["name"], digest) in done:
                    continue
                # the inputs of a take recorded at once render apart: <take>-crunch-di
                role = source.get("role", "")
                rid = row_id(
                    source["take"], preset["name"], "-".join(filter(None, [role, variant]))
                )
                if rid in taken:
                    rid = row_id(
                        source["take"],
                        preset["name"],
                        "-".join(filter(None, [role, variant, digest[:6]])),
                    )
                taken.add(rid)
                trim_db = _input_gain_db(source["gain_db"]) if match_levels else 0.0
                jobs.append(RenderJob(source.to_dict(), version, digest, rid, variant, trim_db))
    return jobs


def _input_gain_db(value: object) -> float:
    try:
        gain = float(value)
    except (TypeError, ValueError):
        return 0.0
    return round(gain, 3) if np.isfinite(gain) else 0.0


# ---------------------------------------------------------------- rendering one file


class ThreadChains(threading.local):
    """Each worker thread's own plugin chains (plugins are neither picklable nor shareable)."""

    def __init__(self) -> None:
        self.by_hash: dict[str, object] = {}

    def get(self, job: RenderJob):
        if job.preset_hash not in self.by_hash:
            self.by_hash[job.preset_hash] = chain_from_preset(job.preset)
        return self.by_hash[job.preset_hash]


def _sidecar_path(wav: Path) -> Path:
    return wav.with_name(wav.stem + PRESET_SIDECAR_SUFFIX)


def _sidecar(job: RenderJob) -> dict:
    """What is written beside a render: the preset exactly as rendered, and its hash."""
    preset = {k: v for k, v in job.preset.items() if k != "ranges"}
    return {
        "id": job.id,
        "source": job.source["id"],
        "preset_hash": job.preset_hash,
        "input_gain_db": job.input_gain_db,
        "preset": json.loads(canonical_json(preset)),
    }


def rendered_preset(corpus: str | os.PathLike, row_id: str) -> dict:
    """The preset a render was made with (drawn values included), ready for ``chain_from_preset``.

    Relative impulse-response paths resolve in ``CORPUS/presets`` as they did when rendering.
    """
    path = _sidecar_path(Path(corpus) / TONES_DIR / f"{row_id}.wav")
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise AugmentError(f"{path}: no readable preset record for {row_id} ({exc})") from None
    return {**stored["preset"], "_file": str(path), "_dir": str(Path(corpus) / PRESETS_DIR)}


def _already_written(wav: Path, job: RenderJob) -> bool:
    """True when a killed run wrote this render completely but never listed it.

    The WAV is renamed into place first and its sidecar second, so a sidecar with this
    job's hash beside the WAV means the WAV is this preset's complete render.
    """
    sidecar = _sidecar_path(wav)
    if not (wav.exists() and sidecar.exists()):
        return False
    try:
        stored = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    return (
        stored.get("preset_hash") == job.preset_hash
        and stored.get("id") == job.id
        and stored.get("input_gain_db") == job.input_gain_db
    )


def render_one(root: Path, job: RenderJob, chains: ThreadChains) -> tuple[dict, Path | None]:
    """Render one job to a temp name beside its file; ``(row, temp)`` for ``commit_rows``.

    The temp is None when a killed run already left this exact render at its name.
    """
    source = job.source
    dest = root / TONES_DIR / f"{job.id}.wav"
    tmp: Path | None = None
    if _already_written(dest, job):
        made_at = datetime.fromtimestamp(dest.stat().st_mtime, tz=timezone.utc)
        columns = file_columns(dest)
    else:
        source_path = resolve_audio_path(root, source["path"])
        audio, rate = read_audio(source_path)
        if job.input_gain_db:
            audio = apply_gain_db(audio, job.input_gain_db)
        try:
            rendered = render(audio, rate, chains.get(job))
        except AugmentError as exc:
            raise AugmentError(f"{source_path} with preset {job.preset['name']}: {exc}") from None
        staged, tmp = stage_audio(root, {"path": relative_audio_path(root, dest)}, rendered, rate)
        columns = {k: v for k, v in staged.items() if k != "path"}
        try:
            write_text_atomic(_sidecar_path(dest), json.dumps(_sidecar(job), indent=2) + "\n")
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        made_at = datetime.now(timezone.utc)
    note = f"rendered from {source['id']} with preset {job.preset['name']}"
    if job.variant:
        note += f" variant {job.variant} (seed {job.preset.get('seed', 0)})"
    if job.input_gain_db:
        note += f", input trimmed {job.input_gain_db:+.2f} dB to the matched level"
    row = manifest_row(
        id=job.id,
        path=relative_audio_path(root, dest),
        guitar=source["guitar"],
        pickup=source["pickup"],
        phrase=source["phrase"],
        tone=job.preset["name"],
        take=source["take"],
        source=source["id"],
        preset_hash=job.preset_hash,
        columns=columns,
        recorded_at=made_at.isoformat(timespec="seconds"),
        device=DEVICE,
        player=source.get("player", ""),
        notes=note,
        role=source.get("role", ""),
        **{VARIANT_COLUMN: job.variant, INPUT_GAIN_COLUMN: f"{job.input_gain_db:.3f}"},
    )
    return row, tmp


def _remove_stray_temps(root: Path, jobs: list[RenderJob]) -> None:
    """Delete temp files a killed run left for the files this run is about to write
    (never those of a live process: another augment may be writing them now)."""
    folder = root / TONES_DIR
    for job in jobs:
        for stray in folder.glob(f".{job.id}.*.part*"):
            match = TEMP_RE.match(stray.name)
            if match and pid_alive(int(match["pid"])):
                continue
            stray.unlink(missing_ok=True)


def _append_new(root: Path, items: list[tuple[dict, Path | None]]) -> list[dict]:
    """Move the renders into place and add their rows in one locked step (``commit_rows``),
    dropping any another process added meanwhile (same id and hash)."""

    def keep(frame: pd.DataFrame, row: dict) -> bool:
        listed = frame.loc[frame["id"] == row["id"], "preset_hash"]
        if len(listed) and row["preset_hash"] not in set(listed):
            raise AugmentError(
                f"id {row['id']!r} was added by another process with another preset; run augment again"
            )
        return not len(listed)

    return commit_rows(root, items, keep=keep, replace_unlisted=True) if items else []


# ---------------------------------------------------------------- the whole corpus


def render_corpus(
    corpus: str | os.PathLike,
    *,
    tones: Sequence[str] | str = CORE_TONES,
    where: str | Sequence[str] | None = None,
    workers: int = 1,
    randomize: int = 0,
    seed: int = 0,
    match_levels: bool = True,
    progress: bool = True,
    engine: str = "local",
    scheduler: str | None = None,
    retries: int = 2,
) -> list[str]:
    """Render every raw take (matched by ``where``) through ``tones``; return the new ids.

    Parameters
    ----------
    corpus : path
        A corpus folder (``manifest.csv``, ``takes/``, ``tones/``, ``presets/``).
    tones : list of str or "clean,crunch"
        Preset names, built-in or from ``CORPUS/presets/`` (default: the post's three,
        ``CORE_TONES``).
    where : str or list of str, optional
        Conditions on the raw rows in the one query language of
        :mod:`guitarlab.corpus.query` (``guitar=les_paul``, ``fret >= 10``).
    workers : int
        Files rendered at once, each thread with its own plugin chains.
    randomize : int
        Also render this many random variants of each preset (drawn from its ranges).
    seed : int
        Seed of the random variants; the same seed draws the same variants.
    match_levels : bool
        Trim each take by its ``gain_db`` (the level-matching gain) before the chain, so
        every guitar drives the amp at the same level, as the post matched input levels
        at the interface. The trim is in the ``input_gain_db`` column and the sidecar.
    progress : bool
        Show a tqdm bar.
    engine : {"local", "dask"}
        Threads in this process, or a Dask distributed cluster (``augment.cluster``): the
        workers render and write into the corpus (a shared filesystem, checked), this
        process plans the jobs and alone writes the manifest rows.
    scheduler : str, optional
        With ``engine="dask"``: the scheduler's address (``tcp://host:8786``); without
        one a LocalCluster of ``workers`` processes starts on this machine.
    retries : int
        With ``engine="dask"``: how often a failed render is tried again; what still
        fails is reported by file after the rest is committed.
    """
    root = Path(corpus)
    check_engine(engine, scheduler, error=AugmentError)
    if workers < 1:
        raise AugmentError(f"--workers {workers} must be 1 or more")
    manifest = load_manifest(root)
    presets = get_presets(tones, root)
    for preset in presets:  # fail before rendering anything if a preset is broken
        chain_from_preset(preset)
    jobs = plan_jobs(
        manifest,
        presets,
        where=where,
        randomize=randomize,
        seed=seed,
        match_levels=match_levels,
    )
    _remove_stray_temps(root, jobs)
    if not jobs:
        return []
    if engine == "dask":
        from guitarlab.augment.cluster import run_jobs_dask

        return run_jobs_dask(
            root,
            jobs,
            RenderBatches(root),
            workers=workers,
            scheduler=scheduler,
            retries=retries,
            progress=progress,
        )
    return _run_jobs(root, jobs, workers=workers, progress=progress)


class RenderBatches:
    """Finished renders waiting for their rows, committed ``BATCH_FILES`` at a time or every
    ``BATCH_SECONDS`` through ``_append_new``: the one commit path of every engine."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.waiting: list[tuple[dict, Path | None]] = []
        self.added: list[str] = []
        self.last_flush = time.monotonic()

    def add(self, item: tuple[dict, Path | None]) -> None:
        self.waiting.append(item)
        if len(self.waiting) >= BATCH_FILES or time.monotonic() - self.last_flush > BATCH_SECONDS:
            self.flush()

    def flush(self) -> None:
        batch = list(self.waiting)
        self.waiting.clear()
        self.added.extend(row["id"] for row in _append_new(self.root, batch))
        self.last_flush = time.monotonic()


def _run_jobs(root: Path, jobs: list[RenderJob], *, workers: int, progress: bool) -> list[str]:
    chains = ThreadChains()
    batches = RenderBatches(root)
    bar = tqdm(total=len(jobs), desc="augment", unit="file", disable=not progress)
    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="augment")
    pending: set[Future] = set()
    try:
        queue = iter(jobs)
        for job in queue:  # keep at most 2 x workers in flight, so a kill loses little
            pending.add(executor.submit(render_one, root, job, chains))
            if len(pending) >= 2 * workers:
                break
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            failed = [f.exception() for f in finished if f.exception() is not None]
            for future in finished:  # keep every file that finished, even beside a failure
                if future.exception() is None:
                    batches.add(future.result())
                    bar.update(1)
            if failed:
                raise failed[0]
            for _ in finished:
                next_job = next(queue, None)
                if next_job is not None:
                    pending.add(executor.submit(render_one, root, next_job, chains))
    except BaseException:
        for future in pending:
            future.cancel()
        executor.shutdown(wait=True, cancel_futures=True)
        for future in pending:  # keep what finished while shutting down
            if future.done() and not future.cancelled() and future.exception() is None:
                batches.waiting.append(future.result())
        batches.flush()
        bar.close()
        raise
    executor.shutdown(wait=True)
    batches.flush()
    bar.close()
    return batches.added
