"""Multi-worker training (--distribute multiworker): two worker processes on loopback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("tensorflow")

WORKER = textwrap.dedent(
    """
    import json, sys
    import keras, numpy as np
    from guitarlab.train.config import TrainConfig
    from guitarlab.train.fit import fit

    out, weights_path, options, scale = sys.argv[1:5]

    def windows(n, seed):
        rng = np.random.default_rng(seed)
        y = rng.integers(0, 2, n)
        t = np.arange(256) / 8000.0
        freq = np.where(y == 0, 300.0, 1500.0)[:, None]
        x = np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi, (n, 1)))
        return (x + 0.2 * rng.standard_normal((n, 256))).astype("float32"), y

    class Rate(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            print("RATE", float(np.asarray(self.model.optimizer.learning_rate)), flush=True)

    class Interrupt(keras.callbacks.Callback):  # a run killed after its first epoch
        def on_epoch_end(self, epoch, logs=None):
            raise KeyboardInterrupt

    X, y = windows(320, 0)  # the same data on every worker, as from a shared disk
    X *= np.float32(scale)
    Xt, yt = windows(96, 1)
    options = json.loads(options)
    interrupt = options.pop("interrupt", False)
    config = TrainConfig(distribute="multiworker", verbose=2, **options)
    callbacks = [Rate(), Interrupt()] if interrupt else [Rate()]
    try:
        run = fit(X, y, out=out, config=config, X_test=Xt, y_test=yt, callbacks=callbacks)
    except KeyboardInterrupt:
        sys.exit(3)
    np.savez(weights_path, *[np.asarray(v) for v in run.model.weights])
    print("STRATEGY", run.info["strategy"], flush=True)
    print("ACCURACY", run.metrics["test_window_accuracy"], flush=True)
    """
)


def free_ports(n: int) -> list[int]:
    """n distinct free TCP ports on 127.0.0.1 (held open together so they differ)."""
    probes = [socket.socket() for _ in range(n)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


SMALL = {"epochs": 1, "fine_tune_epochs": 1, "batch": 16, "filters": [4, 8, 4], "input": "wave"}


def run_workers(tmp_path, options: dict, scale: float = 1.0) -> tuple[list[int], list[str]]:
    """Run WORKER as a two-worker cluster on loopback; (exit codes, logs).

    Worker i trains into ``tmp_path/run{i}`` and saves its final weights to ``w{i}.npz``.
    A worker still running after the timeout (a hung collective) is killed: the test
    fails instead of blocking CI.
    """
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    workers = []
    for index in range(2):
        tf_config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_CONFIG": json.dumps(tf_config)}
        env["CUDA_VISIBLE_DEVICES"] = ""
        paths = [str(tmp_path / f"run{index}"), str(tmp_path / f"w{index}.npz")]
        args = [sys.executable, "-c", WORKER, *paths, json.dumps(options), str(scale)]
        log = open(tmp_path / f"worker{index}.log", "w")  # noqa: SIM115  (closed below)
        workers.append((subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT), log))
    try:
        codes = [process.wait(timeout=150) for process, _ in workers]
    finally:
        for process, log in workers:
            if process.poll() is None:  # a hung collective: fail, do not block CI
                process.kill()
                process.wait()
            log.close()
    return codes, [(tmp_path / f"worker{i}.log").read_text() for i in range(2)]


def test_two_workers_train_one_synchronous_model(tmp_path):
    codes, logs = run_workers(tmp_path, SMALL)
    assert codes == [0, 0], "\n---\n".join(text[-3000:] for text in logs)

    for text in logs:
        assert "STRATEGY MultiWorkerMirroredStrategy, 2 replica(s)" in text
        # the post schedule: lr for `epochs`, then fine_tune_lr
        rates = [float(line.split()[1]) for line in text.splitlines() if line.startswith("RATE")]
        np.testing.assert_allclose(rates, [1e-3, 1e-4], rtol=1e-6)
        accuracy = float(text.split("ACCURACY")[1].split()[0])
        assert accuracy >= 0.7, accuracy  # chance: 0.5

    chief = tmp_path / "run0"
    for name in ("model.keras", "best.keras", "last.keras", "run.json", "history.csv"):
        assert (chief / name).is_file(), name
    meta = json.loads((chief / "run.json").read_text())
    assert meta["status"] == "finished" and meta["loop"] == "custom multi-worker loop"
    assert len(meta["history"]["loss"]) == 2
    history = pd.read_csv(chief / "history.csv")
    assert list(history["epoch"]) == [0, 1]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(history.columns)
    assert meta["metrics"]["test_window_accuracy"] >= 0.7
    # the other worker wrote only to its own folder, removed when it finished
    assert not (tmp_path / "run1").exists()

    # synchronous training: both workers end with the same weights, and the chief saved them
    first, second = np.load(tmp_path / "w0.npz"), np.load(tmp_path / "w1.npz")
    assert len(first.files) == len(second.files) > 10
    for key in first.files:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)
    import keras

    from guitarlab.train import models  # noqa: F401  (custom layers)

    saved = keras.models.load_model(chief / "model.keras", compile=False)
    for index, weight in enumerate(saved.weights):
        np.testing.assert_array_equal(np.asarray(weight), second[f"arr_{index}"])


def test_nan_loss_stops_every_worker_with_a_clear_error(tmp_path):
    codes, logs = run_workers(tmp_path, {**SMALL, "fine_tune_epochs": 0}, scale=1.5e38)
    assert codes == [1, 1], "\n---\n".join(text[-3000:] for text in logs)
    for text in logs:
        assert "TrainError: the loss became NaN at epoch 1, batch 0" in text


def test_resume_continues_every_worker_at_the_next_epoch(tmp_path):
    codes, logs = run_workers(tmp_path, {**SMALL, "interrupt": True})
    assert codes == [3, 3], "\n---\n".join(text[-3000:] for text in logs)
    chief, other = tmp_path / "run0", tmp_path / "run1" / "worker-1"
    assert json.loads((chief / "state.json").read_text())["epoch"] == 0
    assert (other / "last.keras").is_file()  # the other worker's checkpoint, for --resume

    codes, logs = run_workers(tmp_path, {**SMALL, "resume": True})
    assert codes == [0, 0], "\n---\n".join(text[-3000:] for text in logs)
    for text in logs:
        assert "epochs 2-2 of 2 to go" in text
        rates = [float(line.split()[1]) for line in text.splitlines() if line.startswith("RATE")]
        np.testing.assert_allclose(rates, [1e-4], rtol=1e-6)  # the fine-tuning epoch
    assert list(pd.read_csv(chief / "history.csv")["epoch"]) == [0, 1]
    assert not (tmp_path / "run1").exists()
    first, second = np.load(tmp_path / "w0.npz"), np.load(tmp_path / "w1.npz")
    for key in first.files:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)


def test_mix_batches_gives_every_replica_a_random_slice_the_same_on_every_worker():
    import tensorflow as tf

    from guitarlab.train.distributed import mix_batches

    # batches gathered in index order, as a dataset folder does: labels sorted in each
    sorted_batches = tf.data.Dataset.range(64).batch(16).map(lambda i: (i * 10, i // 32))
    first = [(x.numpy(), y.numpy()) for x, y in mix_batches(sorted_batches, seed=3)]
    again = [(x.numpy(), y.numpy()) for x, y in mix_batches(sorted_batches, seed=3)]
    for (x, y), (x2, _), start in zip(first, again, range(0, 64, 16), strict=True):
        np.testing.assert_array_equal(x, x2)  # every worker cuts the same batch
        np.testing.assert_array_equal(np.sort(x), np.arange(start, start + 16) * 10)
        np.testing.assert_array_equal(y, x // 320)  # rows keep their labels
        assert not np.all(np.diff(x) > 0)
    # a first half-batch (one replica's slice) no longer holds only the lowest indices
    assert any(np.sort(x[:8])[-1] > x.min() + 70 for x, _ in first)
