"""Train-stage commands: ``train``, ``evaluate`` and ``predict``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from guitarlab.commands import FiniteRange, LibraryOption, RenamedChoice, library_option
from guitarlab.commands.complete import complete_runs
from guitarlab.corpus.defaults import RENAMED
from guitarlab.train.config import (
    CLASS_WEIGHTS,
    DISTRIBUTES,
    INPUTS,
    LAYOUTS,
    MEL_NORMS,
    MODELS,
    PRECISIONS,
    SCHEDULES,
    TrainConfig,
)

# What a help names from train.config (its defaults, FULL_MODEL, the frame sizes), filled
# in when the help is shown: train.config is light, the figures stay written once there.
TRAIN_VALUES = {
    key: f"guitarlab.train.config:{target}"
    for key, target in {
        "input": "TrainConfig.input",
        "cells": "TrainConfig.cells",
        "filters": "TrainConfig.filters",
        "kernels": "TrainConfig.kernels",
        "epochs": "TrainConfig.epochs",
        "lr": "TrainConfig.lr",
        "fine_tune_lr": "TrainConfig.fine_tune_lr",
        "fine_tune_epochs": "TrainConfig.fine_tune_epochs",
        "full_input": "FULL_MODEL.input",
        "full_filters": "FULL_MODEL.filters",
        "full_epochs": "FULL_MODEL.epochs",
        "full_fine_tune_epochs": "FULL_MODEL.fine_tune_epochs",
        "arrays_input": "ARRAYS_INPUT",
        "post_batch": "POST_BATCH",
        "paper_batch": "PAPER_BATCH",
        "max_frame": "MAX_FRAME",
        "max_mels": "MAX_MELS",
    }.items()
}


def train_option(*decls: str, **attrs):
    """A ``train`` option whose help may name :data:`TRAIN_VALUES` as ``{name}``."""
    return click.option(*decls, cls=LibraryOption, library=TRAIN_VALUES, **attrs)


def _ints(text: str, option: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(
            f"{text!r}: give comma-separated integers", param_hint=option
        ) from None
    if not values:
        raise click.BadParameter("give at least one integer", param_hint=option)
    return values


@click.command("train")
@click.option("--dataset", type=click.Path(file_okay=False), help="Dataset folder to train on.")
@click.option(
    "--npz",
    type=click.Path(dir_okay=False),
    help="Arrays instead: X_train, y_train[, X_val, y_val][, X_test, y_test]; 2D X is (N, L, 1).",
)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run folder.")
@click.option(
    "--model",
    type=click.Choice(MODELS),
    default=None,
    help="auto: trains the features model and the spectrogram LSTM-FCN (your network options "
    "apply to it), keeps whichever of them or their average scores best on the validation "
    "split; features: log-mel statistics into a cross-validated SVM or logistic regression "
    "(seconds on a laptop, the baseline every network must beat); average: both, "
    "probabilities averaged; lstm-fcn: the network alone; alstm-fcn puts an attention LSTM "
    "in its LSTM branch; ensemble averages a wave and a spectrogram network. [default: auto; "
    "lstm-fcn with --npz, --full-model or a dataset without a validation split]",
)
@train_option(
    "--input",
    "input_kind",
    type=click.Choice(INPUTS),
    default=None,
    help="spectrogram: log-mel frames computed in the model (MLSTM-FCN); wave: the window's "
    "samples (the post) [default: {input}; {full_input} with --full-model; {arrays_input} "
    "with --npz].",
)
@train_option(
    "--n-mels",
    type=int,
    default=None,
    help="Mel bands of the spectrogram [default: {max_mels}, fewer for short windows].",
)
@click.option(
    "--mel-norm",
    type=click.Choice(MEL_NORMS),
    default=TrainConfig.mel_norm,
    show_default=True,
    help="What the spectrogram removes: loudness only, or each band's mean over the window "
    "(every fixed filter: cable, knobs, EQ; the guitar-holdout demo's choice).",
)
@click.option(
    "--spectral-stats/--no-spectral-stats",
    default=TrainConfig.spectral_stats,
    show_default=True,
    help="Add a branch that reads how the mel bands move together over the window "
    "(their correlations) and its mean spectrum (spectrogram input; the guitar-holdout demo's choice).",
)
@train_option(
    "--frame",
    "frame_length",
    type=int,
    default=None,
    help="Spectrogram frame in samples [default: {max_frame} or window/4].",
)
@click.option(
    "--class-weights",
    type=click.Choice(CLASS_WEIGHTS),
    default=TrainConfig.class_weights,
    show_default=True,
    help="balanced weighs classes by 1/count; auto does so when the training classes are unequal.",
)
@click.option(
    "--layout",
    type=RenamedChoice(LAYOUTS, renamed=RENAMED),
    default=TrainConfig.layout,
    show_default=True,
    help="paper: the LSTM reads the dimension-shuffled window (1 step); post: the 2019 post's reverse.",
)
@train_option(
    "--cells", type=int, default=None, help="LSTM cells (paper: 8, 64 or 128) [default: {cells}]."
)
@click.option(
    "--dropout",
    type=float,
    default=TrainConfig.dropout,
    show_default=True,
    help="Dropout after the LSTM.",
)
@train_option(
    "--filters",
    default=None,
    help="Conv1D filters per block [default: {filters}; {full_filters} with --full-model].",
)
@train_option("--kernels", default=None, help="Conv1D kernel sizes [default: {kernels}].")
@train_option(
    "--epochs",
    type=int,
    default=None,
    help="Epochs at --lr [default: {epochs}; {full_epochs} with --full-model].",
)
@train_option(
    "--fine-tune-epochs",
    type=int,
    default=None,
    help="Then epochs at --fine-tune-lr, post schedule only [default: {fine_tune_epochs}; "
    "{full_fine_tune_epochs} with --full-model].",
)
@train_option(
    "--full-model",
    is_flag=True,
    help="The post's own {full_input} LSTM-FCN ({full_filters:/} filters, {full_epochs}+"
    "{full_fine_tune_epochs} epochs): what a GPU runs. On two cores and a 9-take corpus an "
    "epoch takes about 8 minutes (15 epochs: two hours) and 5 GB of memory, where the default "
    "(the {input} LSTM-FCN at {filters:/}) trains in minutes under 2 GB. Options given "
    "explicitly still apply.",
)
@click.option(
    "--lr", type=float, default=TrainConfig.lr, show_default=True, help="Adam learning rate."
)
@click.option(
    "--fine-tune-lr",
    type=float,
    default=TrainConfig.fine_tune_lr,
    show_default=True,
    help="Learning rate after --epochs.",
)
@train_option(
    "--batch",
    type=int,
    default=None,
    help="Batch size [default: {post_batch}, or {paper_batch} with --schedule paper].",
)
@train_option(
    "--schedule",
    type=RenamedChoice(SCHEDULES, renamed=RENAMED),
    default=TrainConfig.schedule,
    show_default=True,
    help="post: {lr} then {fine_tune_lr}; paper: ReduceLROnPlateau, class weights, best training loss.",
)
@click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default=TrainConfig.precision,
    show_default=True,
    help="mixed_float16 speeds up recent GPUs; the output layer stays float32.",
)
@click.option(
    "--distribute",
    type=click.Choice(DISTRIBUTES),
    default=TrainConfig.distribute,
    show_default=True,
    help="auto: all local GPUs (MirroredStrategy), or the workers in TF_CONFIG.",
)
@click.option("--resume", is_flag=True, help="Continue an interrupted run in --out.")
@click.option(
    "--seed",
    type=int,
    default=TrainConfig.seed,
    show_default=True,
    help="Random seed (weights, shuffling).",
)
@click.option("--quiet", is_flag=True, help="One line per epoch instead of a progress bar.")
def train_command(
    dataset,
    npz,
    out,
    model,
    input_kind,
    n_mels,
    mel_norm,
    spectral_stats,
    frame_length,
    class_weights,
    layout,
    cells,
    dropout,
    filters,
    kernels,
    epochs,
    fine_tune_epochs,
    full_model,
    lr,
    fine_tune_lr,
    batch,
    schedule,
    precision,
    distribute,
    resume,
    seed,
    quiet,
) -> None:
    """Train a model on a dataset folder (or arrays) into the run folder OUT.

    By default (--model auto) it trains the features model (seconds) and the laptop-sized
    spectrogram LSTM-FCN (minutes on two cores, under 2 GB of memory), keeps the one the
    validation split prefers and says why; each candidate stays in OUT/candidates/.
    A network's run folder gets model.keras, best.keras, last.keras, run.json,
    history.csv and TensorBoard logs/. Killed mid-run, the same command with --resume
    goes on from the last finished epoch.

    \b
    Examples:
      guitarlab train --dataset my-dataset --out my-run
      guitarlab train --dataset my-dataset --out net-run --model lstm-fcn
      guitarlab train --dataset my-dataset --out small-run --filters 8,16,8 --epochs 3
      guitarlab train --dataset my-dataset --out gpu-run --full-model      # on a GPU
      guitarlab train --npz ucr-coffee.npz --out coffee --full-model --schedule paper --epochs 2000
      guitarlab train --dataset my-dataset --out my-run --resume
    """
    from guitarlab.corpus.errors import TrainError
    from guitarlab.train.config import train_config
    from guitarlab.train.fit import fit, fit_dataset

    if bool(dataset) == bool(npz):
        raise click.UsageError("give exactly one of --dataset or --npz")
    if model is None:
        from guitarlab.train.auto import default_model

        model, why = default_model(
            dataset_dir=dataset, out=out, full_model=full_model, resume=resume
        )
        if why:
            click.echo(f"note: {why}")
    config = train_config(
        full_model=full_model,
        arrays=bool(npz),
        model=model,
        input=input_kind,
        cells=cells,
        filters=None if filters is None else _ints(filters, "--filters"),
        kernels=None if kernels is None else _ints(kernels, "--kernels"),
        epochs=epochs,
        fine_tune_epochs=fine_tune_epochs,
        n_mels=n_mels,
        mel_norm=mel_norm,
        spectral_stats=spectral_stats,
        frame_length=frame_length,
        class_weights=class_weights,
        layout=layout,
        dropout=dropout,
        lr=lr,
        fine_tune_lr=fine_tune_lr,
        batch=batch,
        schedule=schedule,
        precision=precision,
        distribute=distribute,
        resume=resume,
        seed=seed,
        verbose=2 if quiet else 1,  # fit shows Keras's bar only on a terminal
    )
    if dataset:  # auto and average train their candidates (train.auto) from here too
        run = fit_dataset(dataset, out, config)
    else:
        import numpy as np

        try:
            data = np.load(npz)
        except (OSError, ValueError) as exc:
            raise TrainError(f"{npz}: cannot read as .npz ({exc})") from None
        missing = [k for k in ("X_train", "y_train") if k not in data]
        if missing:
            raise TrainError(f"{npz} has no {missing[0]}; it needs X_train and y_train arrays")
        get = data.get
        run = fit(
            data["X_train"],
            data["y_train"],
            out=out,
            config=config,
            X_val=get("X_val"),
            y_val=get("y_val"),
            X_test=get("X_test"),
            y_test=get("y_test"),
            source=f"npz:{npz}",
        )
    shown = ", ".join(
        f"{k} {v:.4f}" for k, v in run.metrics.items() if isinstance(v, float) and k != "lr"
    )
    from guitarlab.train.distributed import is_chief

    if not is_chief():  # another worker of a multi-worker run: the chief writes the run
        click.echo(f"worker done: {shown}; the chief wrote the run folder")
        return
    click.echo(f"run saved to {run.run_dir}: {shown}")
    if run.info is not None and run.info.requested_model == "auto" and run.info.auto:
        click.echo(f"auto chose {run.info.auto.why}")
    if dataset:
        click.echo(f"next: guitarlab evaluate {run.run_dir}")


@click.command("evaluate")
@click.argument("run", type=click.Path(file_okay=False), shell_complete=complete_runs)
@click.option(
    "--dataset",
    type=click.Path(file_okay=False),
    default=None,
    help="Dataset folder [default: the one the run was trained on].",
)
@click.option("--majority", is_flag=True, help="Also print the majority-vote decision per file.")
@click.option(
    "--no-baseline", is_flag=True, help="Skip the baselines (features model, centroid threshold)."
)
def evaluate_command(run: str, dataset: str | None, majority: bool, no_baseline: bool) -> None:
    """Score RUN on the held-out test clips: windows, one vote per file, a baseline.

    Writes report.md (with confusion matrix, per-file probabilities and training curves
    as PNGs), evaluation.json and files.csv into the run folder.

    \b
    Example:
      guitarlab evaluate my-run
      guitarlab evaluate my-run --dataset other-dataset --majority
    """
    _check_run(run)  # before TensorFlow loads (seconds) to reject a wrong folder
    from guitarlab.datasets.layout import META_NAME

    if dataset is not None and not (Path(dataset) / META_NAME).is_file():
        raise click.ClickException(
            f"{dataset}: not a dataset folder (no {META_NAME}); give the --out folder of 'guitarlab dataset build'"
        )
    from guitarlab.train.evaluate import evaluate_run, headline, natural_sorted

    ev = evaluate_run(
        run, dataset, baseline=not no_baseline, echo=lambda line: click.echo(line, err=True)
    )  # its steps on stderr: stdout keeps the tables
    columns = ["id", "label", "predicted", "mean_probability", "correct"]
    if majority:
        columns.insert(3, "majority")
    right = int(ev.files["correct"].sum())
    click.echo(f"files (mean vote): {right}/{len(ev.files)} = {ev.file_accuracy:.2%}")
    click.echo(headline(ev.scores, what="files"))
    if majority:
        click.echo(f"files (majority vote): {ev.majority_accuracy:.2%}")
    click.echo(f"windows: {ev.window_accuracy:.2%} of {ev.n_windows}")
    if ev.baseline.get("file_accuracy") is not None and ev.model_kind != "features":
        click.echo(
            f"baseline ({ev.baseline['name']}): files {ev.baseline['file_accuracy']:.2%} "
            f"(balanced {ev.baseline['file_balanced_accuracy']:.2%}), "
            f"windows {ev.baseline['window_accuracy']:.2%}"
        )
    elif ev.model_kind == "features":
        click.echo(f"this run is the features model: {ev.baseline.get('classifier', '')}")
    if ev.baseline.get("centroid_window_balanced_accuracy") is not None:
        click.echo(
            "baseline (best spectral-centroid threshold): balanced accuracy "
            f"{ev.baseline['centroid_window_balanced_accuracy']:.2%} of windows"
        )
    if ev.loses_to_features:
        click.echo(ev.loses_to_features)
    if ev.auto.get("why"):
        click.echo(f"candidates (report.md): {ev.auto['why']}")
    click.echo("")  # the headline above, the tables below
    click.echo(ev.scores["per_class"].to_string(index=False))
    click.echo("")
    click.echo(natural_sorted(ev.files, "id")[columns].to_string(index=False))
    click.echo(f"report: {ev.report_path}")


MIN_HOP_S = 0.01  # predict --hop: finer steps only multiply the windows of a file
IMAGE_SUFFIXES = (".png", ".svg", ".pdf")  # what --plot writes (matplotlib, no extra packages)


def _image_path(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """Refuse a --plot path that is not an image before the model loads (seconds)."""
    if value is not None and Path(value).suffix.lower() not in IMAGE_SUFFIXES:
        raise click.BadParameter(
            f"{value!r} is not an image file name; end it in {', '.join(IMAGE_SUFFIXES)} "
            f"(e.g. {Path(value).stem or 'labels'}.png)"
        )
    return value


@click.command("predict")
@click.argument("run", type=click.Path(file_okay=False), shell_complete=complete_runs)
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON (with the per-second values).")
@click.option(
    "--plot",
    type=click.Path(dir_okay=False),
    callback=_image_path,
    help="Write the labels over time as an image (.png, .svg or .pdf).",
)
@click.option(
    "--hop",
    "hop_s",
    type=FiniteRange(MIN_HOP_S, 3600.0),
    default=None,
    help=f"Seconds between windows, at least {MIN_HOP_S:g} (100 windows a second) "
    "[default: as the run's dataset was cut].",
)
@click.option(
    "--segments",
    "segments_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the model's label changes over each file as an Audacity label track "
    "(start, end, label; File > Import > Labels). One file: this path; several: one track "
    "each, the file's stem added to the name (out.txt -> out-riff.txt) or put where the "
    "path says {stem}.",
)
@click.option("--device", default=None, help="Listen to this input device instead of files.")
@click.option(
    "--seconds",
    type=FiniteRange(0, min_open=True),
    default=None,
    help="Stop listening after this long.",
)
@library_option(
    "--gate-dbfs",
    type=FiniteRange(max=0, max_open=True),
    library={"gate": "guitarlab.datasets.windows:SILENCE_FLOOR_DBFS"},
    help="Windows quieter than this (RMS, dBFS, below 0) are silence and not voted on "
    "[default: {gate}].",
)
def predict_command(
    run, files, as_json, plot, hop_s, segments_path, device, seconds, gate_dbfs
) -> None:
    """Label audio FILES (or a live input) with the model of RUN.

    Each file gets the label of its averaged window outputs and one line per second.
    Stereo files are mixed to mono and other sample rates resampled (noted). Silent
    windows are skipped; a silent file is reported as heard nothing. A file that cannot
    be labelled (unreadable, shorter than one window) is reported and the rest go on;
    the exit code is then 1.

    \b
    Examples:
      guitarlab predict my-run riff.wav solo.flac
      guitarlab predict my-run riff.wav --json --plot riff.png
      guitarlab predict my-run riff.wav --segments riff-labels.txt
      guitarlab predict my-run takes/*.wav --segments "labels/{stem}.txt"
      guitarlab predict my-run --device "Steinberg UR22" --seconds 30
    """
    _check_run(run)  # before TensorFlow loads (seconds): a wrong folder or file fails at once
    if device is None and not files:
        raise click.UsageError("give audio FILES, or --device to listen live")
    if device is not None:  # a wrong name is one line now, not after TensorFlow's start
        from guitarlab.recorder.devices import resolve_device

        resolve_device(device, kind="input")
    if segments_path is not None:
        _check_tracks(segments_path, files, device)
    unreadable = {path: _audio_problem(path) for path in files}
    unreadable = {path: why for path, why in unreadable.items() if why}
    for why in unreadable.values():
        click.echo(f"error: {why}", err=True)
    if files and len(unreadable) == len(files):
        raise click.ClickException(
            f"none of the {len(files)} file(s) is readable audio (see above)"
        )
    from guitarlab.live import predict_live
    from guitarlab.train.predict import plot_over_time, predict_files, summarize

    if device is not None:
        predict_live(run, device=device, seconds=seconds)
        return
    files = [path for path in files if path not in unreadable]
    predictions = predict_files(run, list(files), hop_s=hop_s, gate_dbfs=gate_dbfs, keep_going=True)
    failed = [p for p in predictions if p.error] + list(unreadable)
    if as_json:
        click.echo(json.dumps([p.as_dict() for p in predictions], indent=2))
    else:
        for pred in predictions:
            if pred.error:
                click.echo(f"error: {pred.error}", err=True)
                continue
            if pred.heard_nothing:
                why = pred.notes[-1] if pred.notes else "every window is silence"
                click.echo(f"{pred.path}: heard nothing ({why}), {pred.seconds:.1f} s")
                continue
            click.echo(f"{pred.path}: {pred.label} ({pred.confidence:.2f}), {pred.seconds:.1f} s")
            for note in pred.notes:
                click.echo(f"  note: {note}")
            for t, label, conf in zip(
                pred.times_s, pred.labels_over_time, pred.confidence_over_time, strict=True
            ):
                click.echo(f"  {t:6.0f} s  {label:<20} {conf:.2f}")
        if len(predictions) + len(unreadable) > 1:
            click.echo(f"\nsummary of {len(predictions) + len(unreadable)} file(s):")
            for row in summarize(predictions) + (
                [{"label": "(unreadable)", "files": len(unreadable), "mean_confidence": None}]
                if unreadable
                else []
            ):
                confidence = row["mean_confidence"]
                shown = f", mean confidence {confidence:.2f}" if confidence is not None else ""
                click.echo(f"  {row['label']:<24} {row['files']} file(s){shown}")
    labelled = [p for p in predictions if not p.error]
    if segments_path is not None:
        from guitarlab.train.predict import write_label_tracks

        for track in write_label_tracks(predictions, segments_path):
            click.echo(f"label track: {track}", err=as_json)
    if plot and labelled:
        click.echo(f"plot: {plot_over_time(labelled, plot)}", err=as_json)
    if failed:
        raise click.ClickException(
            f"{len(failed)} of {len(predictions) + len(unreadable)} file(s) could not be labelled (see above)"
        )


def _check_tracks(path: str, files, device) -> None:
    """Refuse a --segments that cannot be written, before the model loads (seconds)."""
    from guitarlab.corpus.errors import TrainError
    from guitarlab.train.predict import track_paths

    if device is not None:
        raise click.UsageError("--segments labels FILES; it does not apply to --device")
    try:
        track_paths(path, list(files))
    except TrainError as exc:
        raise click.ClickException(str(exc)) from None


def _check_run(run: str) -> None:
    """A run folder with run.json and model.keras, checked without loading TensorFlow."""
    from guitarlab.corpus.errors import TrainError
    from guitarlab.train.rundir import RUN_JSON, check_model_file, model_file
    from guitarlab.train.runmeta import read_run_meta

    folder = Path(run)
    if not (folder / RUN_JSON).is_file():
        raise click.ClickException(
            f"{run}: not a run folder (no {RUN_JSON}); give the --out folder of 'guitarlab train'"
        )
    try:  # what it says so far: a run cut short still names its model file
        meta = read_run_meta(folder)
    except TrainError as exc:  # not JSON, or not a run's record
        raise click.ClickException(str(exc)) from None
    model = folder / model_file(meta.model if meta else "")
    if not model.is_file():
        raise click.ClickException(
            f"{model}: missing; the run did not finish, resume it with 'guitarlab train --resume'"
        )
    try:
        check_model_file(model)
    except TrainError as exc:
        raise click.ClickException(str(exc)) from None


def _audio_problem(path: str) -> str:
    """Why ``path`` is not audio predict can read ("" when it is), from its header only."""
    import soundfile as sf

    if not Path(path).is_file():
        return f"{path}: no such file"
    try:
        info = sf.info(path)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"{path}: not readable audio ({reason.replace(path, '').strip(' :')})"
    if info.frames == 0:
        return f"{path}: no audio in the file (0 frames)"
    return ""


COMMANDS = [train_command, evaluate_command, predict_command]
