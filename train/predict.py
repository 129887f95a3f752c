"""Label new recordings with a trained run: per file or over time (live input: ``guitarlab.live``).

A file is prepared exactly like the run's dataset prepared its files, by the same two
steps of :func:`guitarlab.datasets.windows.prepare`: mixed to mono and resampled to the
run's rate (with notes), standardized per file (the post) or with the stored training
mean/std, then cut into windows: on the grid, or at the file's note onsets when the
dataset was built with ``--onsets`` (:mod:`guitarlab.datasets.onsets`, the same function
the build used). The file's label is the post's vote: the mean of the window outputs.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from guitarlab.corpus.errors import TrainError

HEARD_NOTHING = "(nothing heard)"


@dataclass
class Prediction:
    """One file's label and confidence, overall and per second of audio.

    A file whose every window is below the energy gate gets ``label == HEARD_NOTHING``
    and ``heard_nothing``; a file that could not be labelled (unreadable, shorter than one
    window) gets ``error`` and no label, so a batch goes on with the rest.
    """

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
    silent_windows: int = 0
    heard_nothing: bool = False
    error: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def window_probabilities(
    model,
    audio: np.ndarray,
    *,
    window: int,
    hop: int,
    n_classes: int,
    batch_size: int = 256,
    keep: np.ndarray | None = None,
    starts: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities ``(n_windows, n_classes)`` and window start samples for prepared audio
    (only the windows where ``keep`` is True, when given; the windows at ``starts``
    instead of every ``hop``, when given)."""
    from guitarlab.datasets.windows import window as cut
    from guitarlab.datasets.windows import window_starts
    from guitarlab.train.features import model_probabilities

    if starts is None:
        frames = cut(audio, length=window, hop=hop)
        starts = window_starts(len(audio), length=window, hop=hop)
    else:  # at note onsets
        starts = np.asarray(starts, dtype=np.int64)
        frames = np.stack([audio[s : s + window] for s in starts.tolist()])
    if keep is not None:
        frames, starts = frames[keep], starts[keep]
    frames = np.ascontiguousarray(frames, dtype=np.float32)[:, :, None]
    return model_probabilities(model, frames, n_classes, batch_size=batch_size), starts


def _no_note_window(mono: np.ndarray, rate: int, window: int, floor: float) -> str:
    """Why a file gave no note window: no note above the gate, or notes too near the end
    of the file for a whole window (a note library read one second a note, say)."""
    from guitarlab.datasets.onsets import detect_onsets

    found = detect_onsets(mono, rate, floor_dbfs=floor).size
    if not found:
        return f"no note above {floor:g} dBFS: nothing to label"
    return (
        f"{found} note(s) found, none with a whole {window / rate:.3f} s window before the "
        "file ends: record longer notes, or train on a dataset with a shorter --window"
    )


def onset_windowing(info):
    """How the run's dataset cut files at note onsets (``OnsetWindows``), None for the grid.

    Read from the dataset's scalars the run copied into ``run.json`` (or the dataset folder
    itself for a run that did not copy them), so a run keeps predicting like its dataset
    even when the dataset folder is gone.
    """
    from guitarlab.corpus.errors import GuitarlabError
    from guitarlab.datasets.onsets import onset_windows_of

    run_meta = getattr(info, "meta", None)  # a RunMeta; absent on a stand-in info
    meta = dict(run_meta.data.dataset_meta or {}) if run_meta is not None else {}
    dataset_dir = getattr(info, "dataset_dir", None)
    if "windows_at" not in meta and dataset_dir is not None:
        from guitarlab.datasets.folder import read_meta

        try:
            meta = read_meta(dataset_dir).to_dict()
        except GuitarlabError:  # gone or another format: windows on the grid, as before
            return None
    if "hop" not in meta:
        return None
    return onset_windows_of({**meta, "window": info.window})


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
    gate_dbfs: float | None = None,
) -> Prediction:
    """Label one signal (frames,) or (frames, channels) with a loaded run (``info`` = RunInfo).

    Windows below ``gate_dbfs`` (default ``SILENCE_FLOOR_DBFS``, measured before
    standardization) are silence, not evidence, and are left out of the vote; a signal
    with nothing above the gate is reported as heard nothing rather than given a label.
    A run whose dataset was built with ``--onsets`` votes over the windows at the
    signal's note onsets (``hop_s`` apart within a note; default: the dataset's hop).
    """
    from guitarlab.corpus.audio import mono_at_rate
    from guitarlab.datasets.windows import SILENCE_FLOOR_DBFS, sounding, standardize_as
    from guitarlab.datasets.windows import window as cut

    if not info.sample_rate:
        raise TrainError(
            f"{info.run_dir} was trained from arrays and has no sample rate; predict needs a run trained with --dataset"
        )
    rate = int(info.sample_rate)
    mono, notes = mono_at_rate(audio, sample_rate, target_rate=rate)  # step 1 of prepare()
    window = info.window
    if len(mono) < window:
        raise TrainError(
            f"{path}: {len(mono) / rate:.3f} s is shorter than one window "
            f"({window} samples = {window / rate:.3f} s at {rate} Hz); give a longer recording"
        )
    at_onsets = onset_windowing(info)
    hop = at_onsets.hop if at_onsets else window
    if hop_s is not None and not (np.isfinite(hop_s) and hop_s * rate >= 1):
        raise TrainError(f"hop_s={hop_s}: give a finite hop of at least one sample (1/{rate} s)")
    hop = hop if hop_s is None else int(round(hop_s * rate))
    floor = at_onsets.floor_dbfs if at_onsets else SILENCE_FLOOR_DBFS
    floor = floor if gate_dbfs is None else float(gate_dbfs)
    onset_starts = None
    if at_onsets:  # where the dataset's windows were: at the notes, as recorded
        onset_starts = replace(at_onsets, hop=hop, floor_dbfs=floor).starts(mono, rate)
        keep = np.ones(onset_starts.size, dtype=bool)
        notes.append(f"{onset_starts.size} window(s) at note onsets")
    else:
        keep = sounding(cut(mono, length=window, hop=hop), floor_dbfs=floor)
    names = info.label_names
    seconds_long = round(len(mono) / rate, 3)
    if not keep.any():
        return Prediction(
            path=str(path),
            label=HEARD_NOTHING,
            confidence=0.0,
            probabilities={},
            n_windows=0,
            seconds=seconds_long,
            notes=[
                *notes,
                _no_note_window(mono, rate, window, floor)
                if at_onsets
                else f"every window is below {floor:g} dBFS: nothing to label",
            ],
            silent_windows=int(keep.size),
            heard_nothing=True,
        )
    prepared, _ = standardize_as(  # step 2 of datasets.windows.prepare, after the gate
        mono, info.standardize, standardization=info.standardization
    )
    probs, starts = window_probabilities(
        model, prepared, window=window, hop=hop, n_classes=info.n_classes, keep=keep,
        starts=onset_starts,
    )  # fmt: skip
    silent = int(keep.size - keep.sum())
    if silent:
        notes.append(f"{silent} of {keep.size} window(s) below {floor:g} dBFS skipped as silence")
    mean = probs.mean(axis=0)
    best = int(mean.argmax())
    seconds, over_time = per_second(probs, starts, window=window, sample_rate=rate)
    return Prediction(
        path=str(path),
        label=names[best],
        confidence=round(float(mean[best]), 4),
        probabilities={n: round(float(p), 4) for n, p in zip(names, mean, strict=True)},
        n_windows=int(len(probs)),
        seconds=seconds_long,
        times_s=[float(s) for s in seconds],
        labels_over_time=[names[int(i)] for i in over_time.argmax(axis=1)],
        confidence_over_time=[round(float(p), 4) for p in over_time.max(axis=1)],
        notes=notes,
        silent_windows=silent,
    )


def predict_files(
    run_dir: str | os.PathLike,
    files: list[str | os.PathLike],
    *,
    hop_s: float | None = None,
    model=None,
    gate_dbfs: float | None = None,
    keep_going: bool = False,
) -> list[Prediction]:
    """Label each audio file with the run's model (windows ``hop_s`` apart; default: no overlap).

    With ``keep_going`` a file that cannot be labelled (unreadable, too short) becomes a
    :class:`Prediction` with ``error`` set and the rest are still labelled; without it the
    first such file raises.

    Examples
    --------
    >>> for p in predict_files("my-run", ["riff.wav"]):  # doctest: +SKIP
    ...     print(p.label, p.confidence)  # doctest: +SKIP
    """
    from guitarlab.corpus.audio import read_audio
    from guitarlab.corpus.errors import GuitarlabError
    from guitarlab.train.rundir import load_run

    info = load_run(run_dir)
    if model is None:
        model = info.load_model()
    results = []
    for path in files:
        try:
            audio, rate = read_audio(path)
            results.append(
                predict_array(
                    model, audio, rate, info, hop_s=hop_s, path=str(path), gate_dbfs=gate_dbfs
                )
            )
        except GuitarlabError as exc:
            if not keep_going:
                raise
            results.append(
                Prediction(
                    path=str(path),
                    label="",
                    confidence=0.0,
                    probabilities={},
                    n_windows=0,
                    seconds=0.0,
                    error=str(exc),
                )
            )
    return results


def summarize(predictions: list[Prediction]) -> list[dict]:
    """A batch in one table: files and mean confidence per label, then the files that were
    silence and those that could not be labelled, so no file drops out of the count."""
    rows: dict[str, list[float]] = {}
    for pred in predictions:
        key = "(could not be labelled)" if pred.error else pred.label
        rows.setdefault(key, []).append(
            0.0 if pred.error or pred.heard_nothing else pred.confidence
        )
    order = sorted(k for k in rows if not k.startswith("("))
    order += [k for k in (HEARD_NOTHING, "(could not be labelled)") if k in rows]
    return [
        {
            "label": key,
            "files": len(rows[key]),
            "mean_confidence": round(sum(rows[key]) / len(rows[key]), 4)
            if not key.startswith("(")
            else None,
        }
        for key in order
    ]


def label_track(prediction: Prediction) -> str:
    """The model's label changes over one file as an Audacity label track.

    One ``start<TAB>end<TAB>label`` line (6 decimals) per run of seconds with one label
    (``labels_over_time``); silent seconds leave no label of their own, and a file that
    was heard as nothing (or could not be labelled) gives an empty track.
    """
    from guitarlab.corpus.annotations import format_audacity
    from guitarlab.corpus.segments import label_changes

    if prediction.error or prediction.heard_nothing or not prediction.times_s:
        return ""
    # each time is a second of the file (by window centre); the last run ends with the file
    runs = label_changes(
        prediction.times_s, prediction.labels_over_time, end_s=float(prediction.seconds)
    )
    return format_audacity(runs)


def track_paths(path: str | os.PathLike, files: list[str | os.PathLike]) -> list[Path]:
    """Where ``predict --segments PATH`` writes each file's track: PATH itself for one
    file; for several, ``{stem}`` in PATH replaced by each file's stem, or the stem added
    to PATH's name (``out.txt`` -> ``out-riff.txt``, ``out-solo.txt``).

    Examples
    --------
    >>> [p.name for p in track_paths("out.txt", ["a/riff.wav", "b/solo.flac"])]
    ['out-riff.txt', 'out-solo.txt']
    >>> [str(p) for p in track_paths("labels/{stem}.txt", ["riff.wav"])]
    ['labels/riff.txt']
    """
    path = str(path)
    stems = [Path(f).stem for f in files]
    if "{stem}" in path:
        out = [Path(path.replace("{stem}", stem)) for stem in stems]
    elif len(files) == 1:
        out = [Path(path)]
    else:
        base = Path(path)
        out = [base.with_name(f"{base.stem}-{stem}{base.suffix}") for stem in stems]
    seen: dict[Path, str] = {}
    for target, source in zip(out, files, strict=True):
        if target in seen:
            raise TrainError(
                f"--segments {path}: {seen[target]} and {source} would both write {target}; "
                "give files with different names"
            )
        seen[target] = str(source)
    return out


def write_label_tracks(predictions: list[Prediction], path: str | os.PathLike) -> list[Path]:
    """Each labelled file's :func:`label_track` at :func:`track_paths`, written atomically
    (a file that could not be labelled gets none)."""
    from guitarlab.corpus.atomic import write_text_atomic

    targets = track_paths(path, [p.path for p in predictions])
    written = []
    for prediction, target in zip(predictions, targets, strict=True):
        if prediction.error:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        written.append(write_text_atomic(target, label_track(prediction)))
    return written


def plot_over_time(predictions: list[Prediction], path: str | os.PathLike) -> Path:
    """One panel per file: the per-second confidence, coloured by the predicted label."""
    from guitarlab.corpus.figures import pyplot, save_figure

    plt = pyplot()

    names = sorted({label for p in predictions for label in p.labels_over_time})
    colors = {n: f"C{i}" for i, n in enumerate(names)}
    fig, axes = plt.subplots(
        len(predictions),
        1,
        figsize=(8, 1.8 * len(predictions) + 0.5),
        squeeze=False,
        layout="constrained",
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
    fig.legend(handles, names, loc="outside right upper")  # beside the panels, no title covered
    return save_figure(fig, path, tight=False)
