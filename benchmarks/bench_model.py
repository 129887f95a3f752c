"""Model quality in one place: ``python -m benchmarks --only model`` writes MODEL.md.

Protocols (each with its own data, built once per seed):

- ``sine-square``: the smoke set (300 noisy sines vs squares of 128 samples; 100 to test).
- ``post``: the 2019 post's experiment on the synthetic Stratocaster and Les Paul: 16 files,
  one span held out of every take, one vote per file.
- ``guitar-holdout``: the randomized guitar family, label ``pickup``, two guitars
  (telecaster, es335) never heard in training; one vote per take.
- ``notes``: single notes of four randomized guitars (two single-coil, two humbucker),
  label ``pickup``, frets 0-5 to train and frets 6-12 to test (note-disjoint).
- ``session-notes``: a note library's session (``guitarlab.synth.session``): one guitar
  in three pickup settings (bridge and neck humbucker, the bridge coil split), the
  electronics fixed within a setting, every string at frets 0-12 (234 notes of 2 s);
  frets 0-5 train, 6-12 test, validation from whole training notes; one window per
  note, its first second from the onset (``guitarlab.workflow.SESSION_WINDOWS``).
- ``session-strings``: the same session, the low strings (E, A, D) train and the high
  ones (G, B, e) test. The features models on both: ``benchmarks/bench_session.py``.

Models: the CPU-sized wave LSTM-FCN, the spectrogram MLSTM-FCN (the demo's default), their
ensemble, the features model (``--model features``), ``--model auto``, and the baselines
on the same split (the features model evaluate fits beside a network, the best
spectral-centroid threshold). Every figure is over seeds 0-2: the mean and the
range. Training time is wall-clock on the machine named in the file.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import Row

PROTOCOLS = ("sine-square", "post", "guitar-holdout", "notes", "session-notes", "session-strings")
SESSION_PROTOCOLS = ("session-notes", "session-strings")  # guitarlab.workflow.SESSION_TESTS
MODELS = ("wave", "spectrogram", "ensemble", "features", "auto")
BASELINES = ("baseline", "centroid")  # baseline: the features model as evaluate fits it
SEEDS = (0, 1, 2)
NOTE_GUITARS = ("stratocaster", "telecaster", "les_paul", "sg")


def _config(model: str, seed: int, quick: bool, protocol: str = "post"):
    from dataclasses import replace

    from guitarlab.workflow import demo_config

    settings = {"verbose": 0, "input": "wave" if model == "wave" else "spectrogram"}
    if model == "wave":  # reads samples: no spectrogram, so no spectral-statistics branch
        settings["spectral_stats"] = False
    if model in ("ensemble", "features", "auto"):
        settings["model"] = model
    if quick:
        settings.update(epochs=1, fine_tune_epochs=0)
    return replace(demo_config(seed=seed, protocol=protocol), **settings)


# ----------------------------------------------------------------------------- data


def _dataset(protocol: str, seed: int, work: Path, quick: bool) -> Path:
    from guitarlab.workflow import holdout_dataset, post_dataset

    folder = work / f"{protocol}-{seed}"
    if protocol == "post":
        post_dataset(
            folder, seconds=10.0 if quick else 60.0, through_server=False, seed=seed, progress=False
        )
    elif protocol == "guitar-holdout":
        if quick:
            holdout_dataset(folder, seconds=4.0, takes=1, training_takes=1, seed=seed)
        else:
            holdout_dataset(folder, seed=seed)  # the demo's takes and windows
    elif protocol in SESSION_PROTOCOLS:
        _session_dataset(folder, seed, quick, protocol)
    else:
        _notes_dataset(folder, seed, quick)
    return folder / "dataset"


def _session_dataset(folder: Path, seed: int, quick: bool, protocol: str) -> None:
    from guitarlab.workflow import session_dataset

    frets = (0, 3, 6, 9) if quick else tuple(range(13))
    session_dataset(folder, protocol=protocol, seed=seed, frets=frets)  # SESSION_WINDOWS


def _notes_dataset(folder: Path, seed: int, quick: bool) -> None:
    from guitarlab.datasets.build import build_dataset
    from guitarlab.synth.takes import notes_to_corpus

    frets = (0, 3, 6, 9) if quick else tuple(range(13))
    notes_to_corpus(
        folder / "corpus",
        guitars=NOTE_GUITARS,
        frets=frets,
        chords=False,
        first_take=1,
        seconds=2.0,
        seed=seed,
        randomize=True,
        progress=False,
    )
    build_dataset(
        folder / "corpus",
        folder / "dataset",
        label="pickup",
        window=8000,
        test_where="fret >= 6",
        trim_silence=True,
        skip_silence=True,
        seed=seed,
        progress=False,
        overwrite=True,
    )


# ----------------------------------------------------------------------------- one result


def _on_dataset(
    dataset: Path, model: str, seed: int, work: Path, quick: bool, protocol: str
) -> dict:
    from guitarlab.train.evaluate import evaluate_run
    from guitarlab.train.fit import fit_dataset

    run = work / f"run-{model}"
    shutil.rmtree(run, ignore_errors=True)
    started = time.perf_counter()
    fit_dataset(dataset, run, _config(model, seed, quick, protocol))
    seconds = time.perf_counter() - started
    ev = evaluate_run(run, dataset, report=False)
    base = ev.baseline
    return {
        "files_right": int(ev.files["correct"].sum()),
        "files": len(ev.files),
        "balanced": ev.balanced_accuracy,
        "auc": ev.scores.get("roc_auc"),
        "train_s": seconds,
        "baseline": {
            "files_right": int(round(base["file_accuracy"] * len(ev.files))),
            "files": len(ev.files),
            "balanced": base.get("file_balanced_accuracy"),
            "auc": base.get("file_roc_auc"),
        },
        "centroid": {"balanced": base.get("centroid_window_balanced_accuracy")},
    }


def _on_sine_square(model: str, seed: int, work: Path, quick: bool) -> dict:
    from benchmarks.model_sets import sine_square
    from guitarlab.corpus.defaults import SYNTH_RATE
    from guitarlab.train.auto import feature_settings
    from guitarlab.train.evaluate import honest_scores
    from guitarlab.train.features import fit_features
    from guitarlab.train.fit import fit
    from guitarlab.train.models import probabilities

    X, y = sine_square(300, seed=seed)
    X_test, y_test = sine_square(100, seed=seed + 1000)
    config = _config(model, seed, quick)
    config.epochs, config.fine_tune_epochs = (1, 0) if quick else (8, 2)
    run = work / f"run-{model}"
    shutil.rmtree(run, ignore_errors=True)
    started = time.perf_counter()
    trained = fit(X, y, out=run, config=config)
    seconds = time.perf_counter() - started
    probs = probabilities(trained.model.predict(X_test[:, :, None], verbose=0), 2)
    scores = honest_scores(y_test, probs, ["sine", "square"])
    # the features model on arrays: each series is its own "take" for the folds, and the
    # series are read at the rate the spectrogram network assumes for arrays
    features = fit_features(
        X, y, n_classes=2, settings=feature_settings(config, X.shape[1], SYNTH_RATE),
        takes=np.arange(len(y)).astype(str), seed=seed,
    )  # fmt: skip
    base = honest_scores(y_test, features.predict_proba(X_test), ["sine", "square"])
    return {
        "files_right": int(round(scores["accuracy"] * len(y_test))),
        "files": len(y_test),
        "balanced": scores["balanced_accuracy"],
        "auc": scores["roc_auc"],
        "train_s": seconds,
        "baseline": {
            "files_right": int(round(base["accuracy"] * len(y_test))),
            "files": len(y_test),
            "balanced": base["balanced_accuracy"],
            "auc": base["roc_auc"],
        },
        "centroid": {"balanced": None},
    }


# ----------------------------------------------------------------------------- the table


def measure(
    quick: bool = False,
    *,
    seeds=SEEDS,
    protocols=PROTOCOLS,
    models=MODELS,
    echo=print,
    after_each=None,
):
    """Every protocol x model x seed; returns ``{(protocol, model): [result per seed]}``.

    ``after_each(results)`` is called after every protocol and seed (to write what is
    measured so far: the whole run takes about twelve hours on two cores)."""
    results: dict[tuple[str, str], list[dict]] = {}
    seeds = seeds[:1] if quick else seeds
    with tempfile.TemporaryDirectory(prefix="guitarlab-model-") as tmp:
        work = Path(tmp)
        for protocol in protocols:
            for seed in seeds:
                dataset = (
                    None if protocol == "sine-square" else _dataset(protocol, seed, work, quick)
                )
                for model in models:
                    echo(f"   {protocol} seed {seed}: {model}")
                    if dataset is None:
                        result = _on_sine_square(model, seed, work, quick)
                    else:
                        result = _on_dataset(dataset, model, seed, work, quick, protocol)
                    results.setdefault((protocol, model), []).append(result)
                    for baseline in BASELINES:
                        if model == models[0]:
                            results.setdefault((protocol, baseline), []).append(result[baseline])
                if dataset is not None:  # a guitar-holdout seed's data is about 5 GB
                    shutil.rmtree(dataset.parent, ignore_errors=True)
                if after_each is not None:
                    after_each(results)
    return results


def _spread(values: list, digits: int = 2) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    mean = float(np.mean(values))
    if len(values) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def merged_table(old: str, new: str) -> str:
    """``new`` (a whole MODEL.md head) with the rows of ``old`` that ``new`` did not measure,
    in protocol order: a row is one protocol and model, so measuring the wave model on one
    protocol replaces that row (and the baselines measured beside it, unless they were
    measured on fewer seeds than before: ``--seeds 0`` adds one model's row without
    shrinking the baselines) and leaves the others. After changing a protocol's config,
    measure all its models again."""

    def rows(text: str) -> dict:
        """``{(protocol, model): (line, seeds)}`` of the table rows in ``text``."""
        found = {}
        for line in text.splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if line.startswith("| ") and len(cells) == 7 and cells[0] in PROTOCOLS:
                found[(cells[0], cells[1])] = (line, int(cells[2]))
        return found

    old_rows, new_rows = rows(old), rows(new)
    if not new_rows:
        return new
    merged = {key: line for key, (line, _) in (old_rows | new_rows).items()}
    for key, (line, seeds) in old_rows.items():  # a baseline on fewer seeds stays as it was
        if key[1] in BASELINES and key in new_rows and seeds > new_rows[key][1]:
            merged[key] = line
    order = [*MODELS, *BASELINES]
    lines = [
        merged[key]
        for key in sorted(
            merged,
            key=lambda k: (PROTOCOLS.index(k[0]), order.index(k[1]) if k[1] in order else 99),
        )
    ]
    out, placed = [], False
    measured = {line for line, _ in new_rows.values()}
    for line in new.splitlines():
        if line in measured:
            if not placed:
                out += lines
                placed = True
            continue
        out.append(line)
    return "\n".join(out) + "\n"


def markdown(results: dict, *, machine: str, quick: bool) -> str:
    lines = [
        "# guitarlab model quality",
        "",
        f"Written by `python -m benchmarks --only model{' --quick' if quick else ''}` on {machine}.",
        "Each cell: mean over seeds (range). Files right: one vote per held-out file "
        "(series for sine-square); balanced accuracy and ROC AUC are file-level, except the "
        "centroid threshold's (windows). Chance is 0.50 balanced in every protocol.",
        "",
        "| protocol | model | seeds | files right | balanced accuracy | ROC AUC | train s |",
        "|---|---|---|---|---|---|---|",
    ]
    order = [*MODELS, *BASELINES]
    ranked = sorted(
        results.items(),
        key=lambda item: (PROTOCOLS.index(item[0][0]), order.index(item[0][1])),
    )
    for (protocol, model), runs in ranked:
        files = [f"{r['files_right']}/{r['files']}" for r in runs if "files" in r]
        lines.append(
            f"| {protocol} | {model} | {len(runs)} | {', '.join(files) or 'n/a'} | "
            f"{_spread([r.get('balanced') for r in runs])} | {_spread([r.get('auc') for r in runs])} | "
            f"{_spread([r.get('train_s') for r in runs], 0)} |"
        )
    return "\n".join(lines) + "\n"


def run(quick: bool = False) -> list[Row]:
    """Rows for BENCHMARKS.md: the spectrogram model's balanced accuracy per protocol."""
    results = measure(quick, models=("spectrogram",))
    rows = []
    for (protocol, model), runs in results.items():
        if model != "spectrogram":
            continue
        baseline = results.get((protocol, "baseline"), [])
        rows.append(
            Row(
                "model",
                f"{protocol}: balanced accuracy, spectrogram model",
                float(np.mean([r["balanced"] for r in runs])),
                "balanced acc.",
                reference="features model (baseline), same split",
                reference_value=float(np.mean([r["balanced"] or 0 for r in baseline])) or None,
                notes="see MODEL.md",
            )
        )
    return rows


# ----------------------------------------------------------------------------- paper schedule

PAPER_EPOCHS = (25, 50)
AUTHORS_EPOCHS = 500  # the reference, on the first seed only (about 15 minutes on two cores)
PAPER_BEGIN, PAPER_END = "<!-- paper-schedule -->", "<!-- /paper-schedule -->"


def measure_paper(seeds=SEEDS, epochs=PAPER_EPOCHS, *, quick: bool = False, echo=print) -> dict:
    """The paper's schedule on a GunPoint-like set (50 train, 150 test series of 150).

    The authors' LSTM-FCN size (8 cells, 128/256/128 filters), batch 128, learning rate cut
    on the training loss, checkpoint by training loss, no validation carved out; trained
    for each number of ``epochs`` from scratch, and for the authors' own 500 on the first
    seed: the question is whether fewer reach the same test accuracy now that BatchNorm is
    recalibrated.
    Baselines on the same series: 1-nearest-neighbour (Euclidean, UCR's reference) and
    logistic regression. Returns ``{epochs: [result per seed]}`` plus ``"1-nn"``/``"logistic"``.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier

    from benchmarks.model_sets import gun_point_like
    from guitarlab.train.config import FULL_MODEL, TrainConfig
    from guitarlab.train.fit import fit

    seeds = seeds[:1] if quick else seeds
    epochs = (1,) if quick else epochs
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="guitarlab-paper-") as tmp:
        for seed in seeds:
            X, y = gun_point_like(50, seed=seed)
            X_test, y_test = gun_point_like(150, seed=seed + 1000)
            for name, model in (
                ("1-nn", KNeighborsClassifier(1)),
                ("logistic", LogisticRegression(max_iter=5000)),
            ):
                results.setdefault(name, []).append(
                    {"accuracy": float(model.fit(X, y).score(X_test, y_test))}
                )
            for n in (*epochs, AUTHORS_EPOCHS) if seed == seeds[0] and not quick else epochs:
                echo(f"   gunpoint-like seed {seed}: paper schedule, {n} epochs")
                settings = {**FULL_MODEL, "epochs": n, "fine_tune_epochs": 0}  # the authors' size
                config = TrainConfig(**settings, schedule="paper", seed=seed, verbose=0)
                started = time.perf_counter()
                run = fit(
                    X, y, out=Path(tmp) / f"run-{seed}-{n}", config=config,
                    X_test=X_test, y_test=y_test,
                )  # fmt: skip
                results.setdefault(n, []).append(
                    {
                        "accuracy": run.metrics["test_window_accuracy"],
                        "train_s": time.perf_counter() - started,
                    }
                )
    return results


def paper_markdown(results: dict, *, machine: str) -> str:
    """The paper-schedule section of MODEL.md, between its markers."""
    lines = [
        PAPER_BEGIN,
        "## Paper schedule on a GunPoint-like set",
        "",
        f"Written by `python -m benchmarks --only paper` on {machine}. "
        "`benchmarks.model_sets.gun_point_like`: 50 training and 150 test series of 150 "
        "samples (UCR data may not be downloaded here). The authors' LSTM-FCN (8 cells, "
        "128/256/128 filters), `--schedule paper` (batch 128, learning rate cut by the "
        "training loss, checkpoint by training loss, every training row used), BatchNorm "
        "recalibrated after each epoch. Test accuracy, mean over seeds (range).",
        "",
        "| model | epochs | seeds | test accuracy | train s |",
        "|---|---|---|---|---|",
    ]
    for key, runs in results.items():
        model, epochs = ("LSTM-FCN", str(key)) if isinstance(key, int) else (key, "")
        lines.append(
            f"| {model} | {epochs} | {len(runs)} | {_spread([r['accuracy'] for r in runs], 3)} | "
            f"{_spread([r.get('train_s') for r in runs], 0)} |"
        )
    return "\n".join([*lines, PAPER_END]) + "\n"


def with_section(text: str, section: str) -> str:
    """``text`` with the paper-schedule section replaced (or appended when absent)."""
    if PAPER_BEGIN in text and PAPER_END in text:
        head, rest = text.split(PAPER_BEGIN, 1)
        return head + section.rstrip("\n") + rest.split(PAPER_END, 1)[1]
    return text.rstrip("\n") + "\n\n" + section
