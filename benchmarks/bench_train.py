"""Train: input pipeline against in-memory arrays, inference speed, predict latency of a 60 s file.

Figures, each against a reference from the same run:

- training windows/s through the dataset folder's ``tf_dataset`` (memory-mapped,
  gathered per batch, prefetched) over a bare ``model.fit`` on the same windows held in
  memory, same model and batch (goal >= 0.95x: the pipeline must not starve the model);
- ``fit_dataset`` end to end (with checkpoints, CSV and TensorBoard logs each epoch) over
  the same bare fit, to show what the run folder costs;
- inference windows/s over the windows per second of audio (x real time);
- predicting a 60 s file (read, standardize, window, vote; model already loaded) in
  x real time.

On a machine without a GPU the model is CPU-sized (filters 32/64/32; quick: 8/16/8 on
1,000-sample windows); with a GPU the post's model (128/256/128, window 8,000) runs
through the same code.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import Row, best_seconds

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _setup(quick: bool, gpu: bool) -> dict:
    if quick:
        return {"seconds": 6.0, "rate": 16000, "window": 1000, "filters": (8, 16, 8), "epochs": 1}
    filters = (128, 256, 128) if gpu else (32, 64, 32)
    return {"seconds": 60.0, "rate": 44100, "window": 8000, "filters": filters, "epochs": 2}


def _timed_fit(model, data, *, epochs: int, **kwargs) -> float:
    start = time.perf_counter()
    model.fit(data, epochs=epochs, verbose=0, **kwargs)
    return time.perf_counter() - start


def run(quick: bool) -> list[Row]:
    import keras
    import tensorflow as tf

    from guitarlab.corpus.audio import write_audio_atomic
    from guitarlab.datasets.build import build_dataset
    from guitarlab.datasets.folder import open_dataset
    from guitarlab.synth.takes import synth_to_corpus
    from guitarlab.train.config import TrainConfig
    from guitarlab.train.fit import _build_model, _compile, fit_dataset
    from guitarlab.train.predict import predict_files
    from guitarlab.train.rundir import load_run

    gpu = bool(tf.config.list_physical_devices("GPU"))
    device = "GPU" if gpu else "CPU"
    setup = _setup(quick, gpu)
    work = Path(tempfile.mkdtemp(prefix="bench-train-"))
    rows: list[Row] = []
    try:
        synth_to_corpus(
            work / "corpus", seconds=setup["seconds"], sample_rate=setup["rate"], progress=False
        )
        dataset = build_dataset(
            work / "corpus", work / "dataset", window=setup["window"], progress=False
        )
        ds = open_dataset(dataset)
        X, y = (np.asarray(a) for a in ds.arrays("train"))
        n, epochs, batch = len(y), setup["epochs"], 32
        config = TrainConfig(
            input="wave",
            filters=setup["filters"],
            epochs=epochs,
            fine_tune_epochs=0,
            batch=batch,
            verbose=0,
        )
        model_note = f"{device}, filters {setup['filters']}, window {setup['window']}, {n} windows"

        def fresh():
            keras.utils.set_random_seed(0)
            model = _build_model(config, setup["window"], 1, ds.n_classes, ds.sample_rate)
            _compile(model, config, ds.n_classes)
            return model

        # bare model.fit on in-memory arrays (one warm-up epoch compiles the graph)
        bare = fresh()
        bare.fit(X, y, batch_size=batch, epochs=1, verbose=0)
        bare_s = _timed_fit(bare, X, y=y, batch_size=batch, epochs=epochs, shuffle=True)
        bare_rate = n * epochs / bare_s

        pipe = fresh()
        data = ds.tf_dataset("train", batch_size=batch, shuffle=True, seed=0)
        pipe.fit(data, epochs=1, verbose=0, shuffle=False)  # tf.data shuffles itself
        pipe_s = _timed_fit(pipe, data, epochs=epochs, shuffle=False)
        rows.append(
            Row(
                "train",
                f"training windows/s, tf_dataset pipeline ({device})",
                n * epochs / pipe_s,
                "windows/s",
                reference="bare model.fit on in-memory arrays",
                reference_value=bare_rate,
                goal=">= 0.95x",
                notes=model_note,
            )
        )

        start = time.perf_counter()
        fit_dataset(dataset, work / "run", config)
        whole_s = time.perf_counter() - start
        rows.append(
            Row(
                "train",
                f"fit_dataset end to end ({device})",
                n * epochs / whole_s,
                "windows/s",
                reference="bare model.fit on in-memory arrays",
                reference_value=bare_rate,
                notes="includes building, first-epoch tracing, checkpoints and logs each epoch",
            )
        )

        model = load_run(work / "run").load_model()
        model.predict(X[:256], batch_size=256, verbose=0)
        infer_s = best_seconds(lambda: model.predict(X, batch_size=256, verbose=0), repeat=3)
        rows.append(
            Row(
                "train",
                f"inference windows/s ({device})",
                n / infer_s,
                "windows/s",
                reference="windows per second of audio",
                reference_value=setup["rate"] / setup["window"],
                notes="ratio = x real time",
            )
        )

        rng = np.random.default_rng(0)
        minute = work / "minute.wav"
        write_audio_atomic(minute, 0.1 * rng.standard_normal(60 * setup["rate"]), setup["rate"])
        latency_s = best_seconds(
            lambda: predict_files(work / "run", [minute], model=model), repeat=3
        )
        rows.append(
            Row(
                "train",
                f"predict a 60 s file ({device})",
                60.0 / latency_s,
                "audio s per s",
                reference="real time",
                reference_value=1.0,
                notes=f"latency {latency_s:.2f} s, model already loaded",
            )
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows


if __name__ == "__main__":  # pragma: no cover
    for row in run(quick=True):
        print(row.as_dict())
