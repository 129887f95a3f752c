"""train/fit.py on in-memory arrays: learning, run folders, resume, NaN, precision, strategies, --npz."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("tensorflow")

import keras  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from guitarlab.cli import cli  # noqa: E402
from guitarlab.corpus.errors import TrainError  # noqa: E402
from guitarlab.train.config import TrainConfig  # noqa: E402
from guitarlab.train.fit import fit  # noqa: E402
from guitarlab.train.rundir import load_run  # noqa: E402

SMALL = {"input": "wave", "filters": (8, 16, 8), "verbose": 0}  # the post's model, small


def sine_windows(n: int = 240, length: int = 400, seed: int = 0):
    """Two classes: a low (300 Hz) and a high (1.5 kHz) sine at 8 kHz, random phase, noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    t = np.arange(length) / 8000.0
    freq = np.where(y == 0, 300.0, 1500.0)[:, None]
    x = np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi, (n, 1)))
    x += 0.3 * rng.standard_normal((n, length))
    return x.astype(np.float32), y


class Rate(keras.callbacks.Callback):
    """Records the learning rate of every epoch."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def on_epoch_end(self, epoch, logs=None):
        self.seen.append(float(np.asarray(self.model.optimizer.learning_rate)))


def test_fit_learns_and_writes_a_complete_run(tmp_path):
    X, y = sine_windows()
    Xt, yt = sine_windows(80, seed=1)
    config = TrainConfig(epochs=3, fine_tune_epochs=1, batch=8, **SMALL)
    rate = Rate()
    run = fit(X, y, out=tmp_path / "run", config=config, X_test=Xt, y_test=yt, callbacks=[rate])
    np.testing.assert_allclose(rate.seen, [1e-3, 1e-3, 1e-3, 1e-4], rtol=1e-6)  # post schedule
    assert run.metrics["test_window_accuracy"] >= 0.8
    for name in ("model.keras", "best.keras", "last.keras", "run.json", "history.csv"):
        assert (run.run_dir / name).is_file(), name
    assert any((run.run_dir / "logs").rglob("events.out.tfevents*"))
    meta = json.loads((run.run_dir / "run.json").read_text())
    assert meta["config"]["epochs"] == 3 and meta["config"]["filters"] == [8, 16, 8]
    assert meta["label_names"] == ["0", "1"] and meta["window"] == 400
    assert meta["guitarlab_version"] and meta["device"].startswith(("CPU", "GPU"))
    assert meta["data"]["hash"] and len(meta["history"]["loss"]) == 4
    history = pd.read_csv(run.run_dir / "history.csv")
    assert list(history["epoch"]) == [0, 1, 2, 3]
    info = load_run(run.run_dir)
    assert info.config == config and info.n_classes == 2

    # a saved run predicts exactly what the trained model predicted
    reloaded = info.load_model()
    np.testing.assert_allclose(
        reloaded.predict(Xt[:, :, None], verbose=0),
        run.model.predict(Xt[:, :, None], verbose=0),
        rtol=1e-5,
        atol=1e-6,
    )
    with pytest.raises(TrainError, match="already holds a run"):
        fit(X, y, out=run.run_dir, config=config)


class Interrupt(keras.callbacks.Callback):
    """Simulates a killed run: raises after the first epoch is saved."""

    def on_epoch_end(self, epoch, logs=None):
        raise KeyboardInterrupt


def test_resume_continues_at_the_next_epoch(tmp_path):
    X, y = sine_windows(80)
    out = tmp_path / "run"
    config = TrainConfig(epochs=3, fine_tune_epochs=0, **SMALL)
    with pytest.raises(KeyboardInterrupt):
        fit(X, y, out=out, config=config, callbacks=[Interrupt()])
    assert json.loads((out / "state.json").read_text())["epoch"] == 0
    assert json.loads((out / "run.json").read_text())["status"] == "running"

    started = []

    class FirstEpoch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            started.append(epoch)

    with pytest.raises(TrainError, match="already holds a run"):
        fit(X, y, out=out, config=config)
    # the options come from the interrupted run: a different --lr on resume is ignored
    resumed = TrainConfig(epochs=3, fine_tune_epochs=0, resume=True, lr=0.5, **SMALL)
    run = fit(X, y, out=out, config=resumed, callbacks=[FirstEpoch()])
    assert started == [1, 2]
    assert run.info["config"]["lr"] == 1e-3 and run.info["config"]["resume"] is True
    assert list(pd.read_csv(out / "history.csv")["epoch"]) == [0, 1, 2]
    assert len(run.history["loss"]) == 3
    with pytest.raises(TrainError, match="nothing to resume"):
        fit(X, y, out=tmp_path / "fresh", config=resumed)


class InterruptAtStart(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        raise KeyboardInterrupt


def test_resume_of_a_run_killed_before_its_first_epoch_starts_it_again(tmp_path):
    X, y = sine_windows(40)
    out = tmp_path / "run"
    config = TrainConfig(epochs=1, fine_tune_epochs=0, **SMALL)
    with pytest.raises(KeyboardInterrupt):
        fit(X, y, out=out, config=config, callbacks=[InterruptAtStart()])
    assert not (out / "state.json").exists() and not (out / "model.keras").exists()
    run = fit(X, y, out=out, config=TrainConfig(epochs=1, fine_tune_epochs=0, resume=True, **SMALL))
    assert run.info["status"] == "finished" and (out / "model.keras").is_file()


def test_nan_loss_stops_with_a_clear_error(tmp_path):
    X, y = sine_windows(64)
    X *= np.float32(3e38)  # overflows to inf inside the first convolution
    with pytest.raises(TrainError, match="NaN"):
        fit(X, y, out=tmp_path / "run", config=TrainConfig(epochs=2, fine_tune_epochs=0, **SMALL))


def test_paper_schedule_and_mixed_precision_train_one_epoch(tmp_path):
    X, y = sine_windows(100)
    y[:70] = 0  # unbalanced, so class weights differ
    config = TrainConfig(epochs=1, schedule="paper", precision="mixed_float16", batch=16, **SMALL)
    run = fit(X, y, out=tmp_path / "run", config=config)
    weights = run.info["class_weight"]
    assert weights[0] < 1.0 < weights[1]
    # the paper keeps the weights with the lowest training loss: model.keras == best.keras
    best = load_run(run.run_dir).load_model("best")
    np.testing.assert_allclose(
        best.predict(X[:8, :, None], verbose=0),
        run.model.predict(X[:8, :, None], verbose=0),
        rtol=1e-3,
        atol=1e-3,
    )
    assert run.model.get_layer("output").compute_dtype == "float32"
    assert run.model.get_layer("lstm").compute_dtype == "float16"
    assert np.isfinite(run.metrics["loss"])


def test_mirrored_strategy_over_two_logical_cpus(tmp_path):
    """MirroredStrategy needs its devices before TF starts, hence a fresh interpreter."""
    script = textwrap.dedent(
        f"""
        import numpy as np, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2
        )
        from guitarlab.train.config import TrainConfig
        from guitarlab.train.fit import fit
        rng = np.random.default_rng(0)
        X = rng.standard_normal((64, 200)).astype("float32"); y = np.arange(64) % 2
        run = fit(X, y, out={str(tmp_path / "run")!r}, config=TrainConfig(
            epochs=1, fine_tune_epochs=0, batch=16, distribute="mirrored",
            filters=(8, 16, 8), verbose=0))
        print("STRATEGY", run.info["strategy"])
        print("LOSS", run.metrics["loss"])
        """
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "STRATEGY MirroredStrategy over /device:CPU:0, /device:CPU:1" in done.stdout
    loss = float(done.stdout.split("LOSS")[1].split()[0])
    assert np.isfinite(loss)


def test_multiworker_strategy_from_tf_config_one_worker(tmp_path):
    """The TF_CONFIG path (MultiWorkerMirroredStrategy), with a one-worker cluster."""
    import socket

    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        port = probe.getsockname()[1]
    tf_config = {
        "cluster": {"worker": [f"localhost:{port}"]},
        "task": {"type": "worker", "index": 0},
    }
    script = textwrap.dedent(
        f"""
        import numpy as np
        from guitarlab.train.config import TrainConfig
        from guitarlab.train.fit import fit
        X = np.random.default_rng(0).standard_normal((48, 200)).astype("float32")
        run = fit(X, np.arange(48) % 2, out={str(tmp_path / "run")!r}, config=TrainConfig(
            epochs=1, fine_tune_epochs=0, batch=16, filters=(8, 16, 8), verbose=0,
            distribute="multiworker"))
        print("STRATEGY", run.info["strategy"])
        """
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_CONFIG": json.dumps(tf_config)}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "STRATEGY MultiWorkerMirroredStrategy, 1 replica(s)" in done.stdout
    assert (tmp_path / "run" / "model.keras").is_file()


def test_cli_train_npz_learns(tmp_path):
    X, y = sine_windows(200, length=300)
    Xt, yt = sine_windows(60, length=300, seed=3)
    labels = np.array(["low", "high"])
    npz = tmp_path / "data.npz"
    np.savez(npz, X_train=X, y_train=labels[y], X_test=Xt, y_test=labels[yt])
    out = tmp_path / "run"
    result = CliRunner().invoke(
        cli,
        ["train", "--npz", str(npz), "--out", str(out), "--input", "wave", "--filters", "8,16,8"]
        + ["--epochs", "3"]
        + ["--fine-tune-epochs", "1", "--batch", "8", "--quiet"],
    )
    assert result.exit_code == 0, result.output
    assert "run saved to" in result.output
    meta = json.loads((out / "run.json").read_text())
    assert meta["label_names"] == ["high", "low"]
    assert meta["metrics"]["test_window_accuracy"] >= 0.8
    assert meta["data"]["source"].startswith("npz:")


def test_cli_train_usage_errors(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["train", "--out", str(tmp_path / "r")])
    assert result.exit_code != 0 and "exactly one of --dataset or --npz" in result.output
    bad = tmp_path / "bad.npz"
    np.savez(bad, X=np.zeros((3, 4)))
    result = runner.invoke(cli, ["train", "--npz", str(bad), "--out", str(tmp_path / "r")])
    assert result.exit_code == 1 and "no X_train" in result.output
    result = runner.invoke(cli, ["train", "--help"])
    assert "Example" in result.output
    for command in ("evaluate", "predict"):
        assert "Example" in runner.invoke(cli, [command, "--help"]).output
    assert Path(tmp_path / "r").exists() is False


def test_alstm_fcn_trains_saves_and_reloads(tmp_path):
    X, y = sine_windows(120, length=300)
    config = TrainConfig(model="alstm-fcn", epochs=2, fine_tune_epochs=0, batch=8, **SMALL)
    run = fit(X, y, out=tmp_path / "run", config=config)
    assert "attention_lstm" in [layer.name for layer in run.model.layers]
    reloaded = load_run(run.run_dir).load_model()
    np.testing.assert_allclose(
        reloaded.predict(X[:8, :, None], verbose=0),
        run.model.predict(X[:8, :, None], verbose=0),
        rtol=1e-5,
        atol=1e-6,
    )
