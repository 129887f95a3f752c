"""Live prediction: the recorder's input stream voted on by a trained run, as it plays.

Wiring between two stages (``recorder`` for the device, ``train`` for the model), so it
lives at the top of the house with the command line.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from guitarlab.corpus.errors import TrainError


def predict_live(
    run_dir: str | os.PathLike,
    device: str | int | None = None,
    seconds: float | None = None,
    *,
    hop_s: float = 0.5,
    context_s: float = 3.0,
    out=None,
) -> list[tuple[float, str, float]]:
    """Print a rolling label from a live input (mono, the run's rate) until ``seconds`` or Ctrl-C.

    Every ``hop_s`` the last ``context_s`` seconds (at least one window) are standardized
    like a file and voted on. Returns the printed (time_s, label, confidence) lines.
    """
    import queue

    from guitarlab.recorder.devices import check_settings, open_input, resolve_device
    from guitarlab.train.predict import predict_array
    from guitarlab.train.rundir import load_run

    info = load_run(run_dir)
    if not info.sample_rate:
        raise TrainError(f"{run_dir} has no sample rate; live prediction needs a dataset run")
    model = info.load_model()
    rate, window = int(info.sample_rate), info.window
    context = max(window, int(context_s * rate))
    found = resolve_device(device, kind="input")
    check_settings(found, kind="input", sample_rate=rate, channels=1)
    blocks: queue.Queue = queue.Queue()
    model(np.zeros((1, window, 1), np.float32), training=False)  # warm up before listening

    def callback(indata, frames, time_info, status):
        blocks.put(indata[:, 0].copy())

    out = out or sys.stdout
    lines: list[tuple[float, str, float]] = []
    buffer = np.zeros(0, dtype=np.float32)
    stream = open_input(found, sample_rate=rate, channels=1, callback=callback)
    start = time.monotonic()
    next_at = hop_s
    print(f"listening on {found.name} at {rate} Hz; Ctrl-C stops", file=out, flush=True)
    try:
        stream.start()
        while seconds is None or time.monotonic() - start < seconds:
            try:
                buffer = np.concatenate([buffer, blocks.get(timeout=0.5)])[-context:]
            except queue.Empty:
                continue
            elapsed = time.monotonic() - start
            if elapsed < next_at or len(buffer) < window:
                continue
            next_at = elapsed + hop_s
            pred = predict_array(model, buffer, rate, info, path="live")
            lines.append((round(elapsed, 2), pred.label, pred.confidence))
            print(f"{elapsed:7.1f} s  {pred.label:<20} {pred.confidence:.2f}", file=out, flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        stream.stop()
        stream.close()
    return lines
