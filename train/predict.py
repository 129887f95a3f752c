"""Label new recordings with a trained run: per file, over time, or live from an input device.

A file is prepared exactly like the run's dataset prepared its files: mixed to mono
(with a note), resampled to the run's rate with ``scipy.signal.resample_poly`` (with a
note), standardized per file (the seed) or with the stored training mean/std, then cut
into windows. The file's label is the seed's vote: the mean of the window outputs.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from guitarlab.errors import TrainError


@dataclass
class Prediction:
    """One file's label and confidence, overall and per second of audio."""

    path: str
    label: str
    confidence: float
    probabilities: dict[str, float]
    n_windows: int
    seconds: float
    times_s: list[float] = field(default_factory=list)
    labels_over_time: list[str] = field(default_factory=list)
    confidence_over_time: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def prepare_audio(
    audio: np.ndarray,
    sample_rate: int,
    *,
    target_rate: int,
    standardize: str = "file",
    standardization: dict | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Mono, resampled, standardized float32 audio as the run's dataset made it; (audio, notes)."""
    from scipy.signal import resample_poly

    from guitarlab.datasets.windows import standardize as zscore

    notes: list[str] = []
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 2:
        if audio.shape[1] > 1:
            notes.append(f"{audio.shape[1]} channels mixed to mono")
        audio = audio.mean(axis=1, dtype=np.float32)
    if int(sample_rate) != int(target_rate):
        g = math.gcd(int(sample_rate), int(target_rate))
        audio = resample_poly(audio, target_rate // g, sample_rate // g).astype(np.float32)
        notes.append(f"resampled {sample_rate} Hz -> {target_rate} Hz")
    if standardize == "file":
        audio = zscore(audio)
    elif standardize == "train":
        stats = standardization or {}
        audio = zscore(audio, mean=float(stats["mean"]), std=float(stats["std"]))
    return audio, notes


def window_probabilities(
    model, audio: np.ndarray, *, window: int, hop: int, n_classes: int, batch_size: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities ``(n_windows, n_classes)`` and window start samples for prepared audio."""
    from guitarlab.datasets.windows import window as cut
    from guitarlab.datasets.windows import window_starts
    from guitarlab.train.models import probabilities

    frames = np.ascontiguousarray(cut(audio, length=window, hop=hop))[:, :, None]
    if len(frames) <= batch_size:  # one small batch: a direct call skips predict()'s setup
        outputs = np.asarray(model(frames, training=False))
    else:
        outputs = model.predict(frames, batch_size=batch_size, verbose=0)
    return probabilities(outputs, n_classes), window_starts(len(audio), length=window, hop=hop)


def per_second(
    probs: np.ndarray, starts: np.ndarray, *, window: int, sample_rate: int
) -> tuple[np.ndarray, np.ndarray]:
    """Average window probabilities per second of audio (by window centre): (seconds, probs)."""
    second = ((starts + window / 2) // sample_rate).astype(np.int64)
    keys = np.unique(second)
    return keys.astype(float), np.stack([probs[second == k].mean(axis=0) for k in keys])


def predict_array(
    model,
    audio: np.ndarray,
    sample_rate: int,
    info,
    *,
    hop_s: float | None = None,
    path: str = "<array>",
) -> Prediction:
    """Label one signal (frames,) or (frames, channels) with a loaded run (``info`` = RunInfo)."""
    if not info.sample_rate:
        raise TrainError(
            f"{info.run_dir} was trained from arrays and has no sample rate; predict needs a run trained with --dataset"
        )
    prepared, notes = prepare_audio(
        audio,
        sample_rate,
        target_rate=int(info.sample_rate),
        standardize=info.standardize,
        standardization=info.standardization,
    )
    window = info.window
    if len(prepared) < window:
        raise TrainError(
            f"{path}: {len(prepared) / info.sample_rate:.3f} s is shorter than one window "
            f"({window} samples = {window / info.sample_rate:.3f} s at {info.sample_rate} Hz); give a longer recording"
        )
    hop = window if hop_s is None else max(1, int(round(hop_s * info.sample_rate)))
    probs, starts = window_probabilities(
        model, prepared, window=window, hop=hop, n_classes=info.n_classes
    )
    mean = probs.mean(axis=0)
    best = int(mean.argmax())
    seconds, over_time = per_second(probs, starts, window=window, sample_rate=info.sample_rate)
    names = info.label_names
    return Prediction(
        path=str(path),
        label=names[best],
        confidence=round(float(mean[best]), 4),
        probabilities={n: round(float(p), 4) for n, p in zip(names, mean, strict=True)},
        n_windows=int(len(probs)),
        seconds=round(len(prepared) / info.sample_rate, 3),
        times_s=[float(s) for s in seconds],
        labels_over_time=[names[int(i)] for i in over_time.argmax(axis=1)],
        confidence_over_time=[round(float(p), 4) for p in over_time.max(axis=1)],
        notes=notes,
    )


def predict_files(
    run_dir: str | os.PathLike,
    files: list[str | os.PathLike],
    *,
    hop_s: float | None = None,
    model=None,
) -> list[Prediction]:
    """Label each audio file with the run's model (windows ``hop_s`` apart; default: no overlap).

    Examples
    --------
    >>> for p in predict_files("my-run", ["riff.wav"]):
    ...     print(p.label, p.confidence)
    """
    from guitarlab.datasets.audio import read_audio
    from guitarlab.train.fit import load_run

    info = load_run(run_dir)
    if model is None:
        model = info.load_model()
    results = []
    for path in files:
        audio, rate = read_audio(path)
        results.append(predict_array(model, audio, rate, info, hop_s=hop_s, path=str(path)))
    return results


def plot_over_time(predictions: list[Prediction], path: str | os.PathLike) -> Path:
    """One panel per file: the per-second confidence, coloured by the predicted label."""
    from guitarlab.plotting import pyplot

    plt = pyplot()

    names = sorted({label for p in predictions for label in p.labels_over_time})
    colors = {n: f"C{i}" for i, n in enumerate(names)}
    fig, axes = plt.subplots(
        len(predictions), 1, figsize=(8, 1.8 * len(predictions) + 0.5), squeeze=False
    )
    for ax, pred in zip(axes[:, 0], predictions, strict=True):
        ax.bar(
            pred.times_s,
            pred.confidence_over_time,
            width=0.9,
            align="edge",
            color=[colors[n] for n in pred.labels_over_time],
        )
        ax.set_ylim(0, 1)
        ax.set_ylabel("confidence")
        ax.set_title(f"{Path(pred.path).name}: {pred.label} ({pred.confidence:.2f})", fontsize=9)
    axes[-1, 0].set_xlabel("time (s)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[n]) for n in names]
    fig.legend(handles, names, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


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
    from guitarlab.train.fit import load_run

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
