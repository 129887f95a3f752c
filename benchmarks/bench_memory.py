"""Memory: the README's real-session ``train`` and ``retrain`` with default options.

A 9-take corpus as a guitarist would have it (three synthetic guitars, three 60 s takes
of the backing phrase each, clean/crunch/distorted renders, a leak-free dataset split by
take), then ``guitarlab train --dataset D --out R`` with no model options, then two more
takes and ``guitarlab retrain``. Each command runs in its own process; its peak memory
is the larger of

- the process's anonymous memory (``RssAnon`` in ``/proc/PID/status``, sampled every
  0.2 s): what it really allocates; the dataset's memory-mapped arrays are file pages the
  kernel can drop, and inflate the resident set without costing memory;
- and, for the record, ``ru_maxrss`` (what ``/usr/bin/time -v`` calls maximum resident
  set size), which counts those mapped pages too.

The reference, measured in the same run: a process that imports TensorFlow and the
training code and opens the dataset, the floor under any training. Goal: at most 2 GB
(issue 28). A third row measures :func:`recalibrate_batch_norm` alone on the post's
full-size wave model against the old method (every layer's whole batch of 256 windows
as one float64 array, squared), both in fresh processes.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import Row

GOAL_BYTES = 2 * 10**9
HERE = Path(__file__).resolve().parent


@dataclass
class Peak:
    """What one process used: peak anonymous memory, max RSS (both bytes), seconds."""

    rss_anon: int
    max_rss: int
    seconds: float
    returncode: int
    stopped: bool = False  # killed by the guard at ``limit_bytes``
    cpu_seconds: float = 0.0  # user + system time of the process and its threads

    @property
    def idle_minutes(self) -> float:
        """What the run would take on two idle cores: its CPU time over two, at least, since
        a busy machine stretches the wall clock but not the work."""
        return self.cpu_seconds / 2 / 60


def _rss_anon(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def peak_memory(
    command: list[str], *, limit_bytes: int | None = None, log: Path | None = None
) -> Peak:
    """Run ``command`` and return its peak memory; a guard kills it (``stopped``) when
    its anonymous memory passes ``limit_bytes``, so a model too big for the machine is
    measured up to that point instead of taking the machine down."""
    out = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    started = time.perf_counter()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    peak, stopped, status, usage = 0, False, None, None
    while status is None:
        peak = max(peak, _rss_anon(process.pid))
        if limit_bytes and peak > limit_bytes and not stopped:
            process.send_signal(signal.SIGKILL)
            stopped = True
        pid, code, ru = os.wait4(process.pid, os.WNOHANG)
        if pid:
            status, usage = code, ru
        else:
            time.sleep(0.2)
    process.returncode = os.waitstatus_to_exitcode(status)
    if log:
        out.close()
    return Peak(
        rss_anon=peak,
        max_rss=int(usage.ru_maxrss) * 1024,
        seconds=time.perf_counter() - started,
        returncode=process.returncode,
        stopped=stopped,
        cpu_seconds=float(usage.ru_utime + usage.ru_stime),
    )


def guitarlab(*args: str) -> list[str]:
    return [sys.executable, "-m", "guitarlab", *args]


def make_session(work: Path, *, seconds: float) -> Path:
    """The README's real session on synthetic guitars: 9 takes, 3 tones, a take split."""
    corpus, dataset = work / "corpus", work / "dataset"
    steps = [
        guitarlab("synth", "--corpus", str(corpus), "--guitars", "stratocaster,les_paul,telecaster")
        + ["--phrases", "backing", "--takes", "3", "--seconds", str(seconds)],
        guitarlab("augment", "--corpus", str(corpus), "--tones", "clean,crunch,distorted")
        + ["--workers", "2"],
        guitarlab("dataset", "build", "--corpus", str(corpus), "--out", str(dataset))
        + ["--split", "take"],
    ]
    for step in steps:
        subprocess.run(step, check=True, capture_output=True)
    return dataset


_FLOOR = """
import sys
from guitarlab.train.startup import import_tensorflow
import_tensorflow()
import guitarlab.train.fit, guitarlab.train.models  # noqa: E401
from guitarlab.datasets.folder import open_dataset
ds = open_dataset(sys.argv[1])
ds.arrays("train")
"""

_RECALIBRATE = """
import sys, numpy as np
from guitarlab.train import models
windows = np.random.default_rng(0).normal(size=(int(sys.argv[2]), 8000, 1)).astype(np.float32)
model = models.lstm_fcn(8000, 2)  # the post's 128/256/128
if sys.argv[1] == "new":
    models.recalibrate_batch_norm(model, windows)
else:  # the old method: each layer's whole batch as float64, squared, layer after layer
    import keras
    for norm in [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]:
        extractor = keras.Model(model.inputs[0], norm.input)
        values = np.asarray(extractor(windows, training=False), np.float64)
        values = values.reshape(-1, values.shape[-1])
        total, squares = values.sum(axis=0), (values**2).sum(axis=0)
        mean = total / len(values)
        norm.moving_mean.assign(mean.astype(np.float32))
        norm.moving_variance.assign(np.maximum(squares / len(values) - mean**2, 0).astype(np.float32))
"""


def _gb(n: int) -> float:
    return n / 1e9


def run(quick: bool) -> list[Row]:
    seconds = 10.0 if quick else 60.0
    epochs = ["--epochs", "1", "--fine-tune-epochs", "0"] if quick else []
    work = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    rows: list[Row] = []
    try:
        dataset = make_session(work, seconds=seconds)
        floor = peak_memory([sys.executable, "-c", _FLOOR, str(dataset)])
        reference = "TensorFlow, the training code and the dataset opened (same run)"
        train = peak_memory(
            guitarlab("train", "--dataset", str(dataset), "--out", str(work / "run"), "--quiet")
            + epochs,
            limit_bytes=8 * 10**9,
        )
        subprocess.run(
            guitarlab("synth", "--corpus", str(work / "corpus"), "--guitars", "stratocaster")
            + ["--phrases", "backing", "--takes", "2", "--seconds", str(seconds)],
            check=True,
            capture_output=True,
        )
        retrain = peak_memory(
            guitarlab("retrain", "--corpus", str(work / "corpus"), "--from", str(work / "run"))
            + ["--out", str(work / "run-2")]
            + (["--epochs", "1", "--fine-tune-epochs", "0"] if quick else []),
            limit_bytes=8 * 10**9,
        )
        for name, peak in (("train", train), ("retrain", retrain)):
            rows.append(
                Row(
                    "memory",
                    f"`guitarlab {name}` defaults, 9-take corpus: peak anonymous memory",
                    _gb(peak.rss_anon),
                    "GB",
                    reference=reference,
                    reference_value=_gb(floor.rss_anon),
                    goal="<= 2 GB",
                    notes=f"{peak.seconds / 60:.1f} min wall, {peak.cpu_seconds / 60:.1f} min of CPU "
                    f"(>= {peak.idle_minutes:.1f} min on 2 idle cores), max RSS {_gb(peak.max_rss):.2f} GB "
                    f"(mapped dataset pages included), exit {peak.returncode}",
                )
            )
        windows = "8" if quick else "32"
        old = peak_memory(
            [sys.executable, "-c", _RECALIBRATE, "old", windows], limit_bytes=8 * 10**9
        )
        new = peak_memory([sys.executable, "-c", _RECALIBRATE, "new", windows])
        rows.append(
            Row(
                "memory",
                f"recalibrate_batch_norm, post's wave model 128/256/128, {windows} windows of 8,000",
                _gb(new.rss_anon),
                "GB",
                reference="the old method (whole batch in float64, squared, per layer)",
                reference_value=_gb(old.rss_anon),
                goal="bounded",
                notes=f"{new.seconds:.0f} s against {old.seconds:.0f} s"
                + (" (old stopped at 8 GB)" if old.stopped else ""),
            )
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows


if __name__ == "__main__":  # pragma: no cover
    for row in run(quick="--quick" in sys.argv):
        print(row.as_dict())
