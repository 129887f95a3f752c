"""The features model (log-mel statistics into a cross-validated SVM or logistic regression),
the baseline beside every network, and ``--model auto`` (chosen by validation only).

The corpus: 12 short takes per "pickup", plucked notes at random pitches, picking
strengths and positions, each take through its pickup's resonance (single coil: a high,
sharp peak; humbucker: a lower, broader one and less treble) with its own cable
(resonance +-8 %) and level. Whole takes are held out for test and validation.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from click.testing import CliRunner

from guitarlab.cli import cli
from guitarlab.train.auto import choose
from guitarlab.train.config import TrainConfig
from guitarlab.train.evaluate import loses_line

RATE = 16000
WINDOW = 2048
PICKUPS = {"single": (4200.0, 4.0), "humbucker": (2300.0, 1.5)}  # resonance Hz, Q
TEST = "phrase in ('n09', 'n10', 'n11')"
VAL = "phrase in ('n07', 'n08')"


def pluck_take(pickup: str, seed: int, *, seconds: float = 1.5) -> np.ndarray:
    """Four plucked notes through one pickup's resonance and one take's cable and level."""
    from scipy.signal import lfilter

    rng = np.random.default_rng(seed)
    n, note = int(seconds * RATE), int(seconds * RATE) // 4
    t = np.arange(note) / RATE
    audio = np.zeros(n)
    for i in range(4):
        f0 = rng.uniform(82.0, 330.0)
        place = rng.uniform(0.08, 0.3)  # pick position along the string
        ks = np.arange(1, int(7000 / f0))
        amps = np.abs(np.sin(np.pi * ks * place)) / ks
        tone = (amps[:, None] * np.sin(2 * np.pi * f0 * ks[:, None] * t)).sum(axis=0)
        audio[i * note : (i + 1) * note] = rng.uniform(0.3, 1.0) * tone * np.exp(-t / 0.25)
    peak_hz, q = PICKUPS[pickup]
    w0 = 2 * np.pi * peak_hz * rng.uniform(0.92, 1.08) / RATE  # the take's cable
    alpha = np.sin(w0) / (2 * q)
    b = [(1 - np.cos(w0)) / 2, 1 - np.cos(w0), (1 - np.cos(w0)) / 2]
    a = [1 + alpha, -2 * np.cos(w0), 1 - alpha]
    audio = lfilter(b, a, audio) + 0.002 * rng.standard_normal(n)
    return rng.uniform(0.1, 0.5) * audio / np.abs(audio).max()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A corpus of 24 takes and a dataset holding out 6 of them for test, 4 for validation."""
    from guitarlab.corpus.intake import import_folder
    from guitarlab.datasets.build import build_dataset

    root = tmp_path_factory.mktemp("features")
    wavs = root / "wavs"
    wavs.mkdir()
    for p, pickup in enumerate(PICKUPS):
        for take in range(12):
            audio = pluck_take(pickup, 100 * p + take)
            sf.write(wavs / f"{pickup}_n{take:02d}.wav", audio, RATE, subtype="PCM_16")
    import_folder(
        wavs, root / "corpus", pattern="{pickup}_{phrase}", labels={"guitar": "one"}, progress=False
    )
    dataset = build_dataset(
        root / "corpus",
        root / "dataset",
        label="pickup",
        window=WINDOW,
        hop=WINDOW // 2,
        test_where=TEST,
        val_where=VAL,
        progress=False,
    )
    return {"root": root, "wavs": wavs, "dataset": Path(dataset)}


@pytest.fixture(scope="module")
def features_run(data):
    """``guitarlab train --model features`` through the command line."""
    out = data["root"] / "features-run"
    result = CliRunner().invoke(
        cli, ["train", "--dataset", str(data["dataset"]), "--out", str(out), "--model", "features"]
    )
    assert result.exit_code == 0, result.output
    return out


def test_features_model_separates_the_pickups_on_held_out_takes(data, features_run):
    from guitarlab.train.evaluate import evaluate_run

    ev = evaluate_run(features_run)
    assert len(ev.files) == 6  # whole takes never trained on
    assert ev.balanced_accuracy >= 0.9 and ev.window_accuracy >= 0.85
    assert ev.model_kind == "features" and ev.loses_to_features is None
    meta = json.loads((features_run / "run.json").read_text())
    assert meta["config"]["model"] == "features" and meta["status"] == "finished"
    assert meta["features"]["sklearn_version"] and meta["features"]["settings"]["n_mels"] == 64
    cv = meta["features"]["cv"]
    assert "whole training takes" in cv["folds"] and cv["classifier"] in ("svm", "logistic")
    assert len(cv["tried"]) == 16 and cv["train_windows"] == meta["data"]["n_train"]
    assert meta["metrics"]["val_file_balanced_accuracy"] >= 0.75
    report = (features_run / "report.md").read_text()
    assert "This run is the features model" in report


def test_features_run_is_used_by_evaluate_and_predict_through_the_cli(data, features_run):
    runner = CliRunner()
    result = runner.invoke(cli, ["evaluate", str(features_run)])
    assert result.exit_code == 0, result.output
    assert "this run is the features model: " in result.output
    assert "balanced accuracy" in result.output
    held_out = sorted(data["wavs"].glob("*_n1[01].wav")) + sorted(data["wavs"].glob("*_n09.wav"))
    result = runner.invoke(cli, ["predict", str(features_run), *map(str, held_out), "--json"])
    assert result.exit_code == 0, result.output
    labels = [p["label"] for p in json.loads(result.output)]
    truth = [path.name.split("_")[0] for path in held_out]
    assert np.mean(np.array(labels) == np.array(truth)) >= 5 / 6


def test_a_features_model_saved_by_another_scikit_learn_is_refused_in_one_line(
    features_run, data, tmp_path
):
    run = tmp_path / "old-run"
    shutil.copytree(features_run, run)
    meta = json.loads((run / "features.json").read_text())
    meta["sklearn_version"] = "0.24.2"
    (run / "features.json").write_text(json.dumps(meta))
    wav = next(data["wavs"].glob("*.wav"))
    result = CliRunner().invoke(cli, ["predict", str(run), str(wav)])
    assert result.exit_code != 0
    assert "0.24.2" in result.output and "retrain" in result.output
    assert "Traceback" not in result.output
    assert len([line for line in result.output.splitlines() if "0.24.2" in line]) == 1


def test_cv_folds_hold_out_whole_takes_or_else_spans_of_takes():
    from guitarlab.train.features import cv_folds

    labels = np.repeat([0, 1], 60)
    takes = np.repeat([f"t{i}" for i in range(6)], 20)  # three takes per class
    starts = np.tile(np.arange(20) * 1000, 6)
    folds, how = cv_folds(labels, takes, starts)
    assert "whole training takes" in how and len(folds) == 3
    for train, test in folds:
        assert not set(takes[train]) & set(takes[test])
        assert set(labels[train]) == set(labels[test]) == {0, 1}
    one_each = np.repeat(["a", "b"], 60)  # one take per class: thirds of each take instead
    starts = np.tile(np.arange(60) * 1000, 2)
    folds, how = cv_folds(labels, one_each, starts)
    assert "spans of training takes" in how and len(folds) == 3
    for train, test in folds:
        for take in ("a", "b"):
            held, kept = (
                starts[test][one_each[test] == take],
                starts[train][one_each[train] == take],
            )
            assert held.size and kept.size
            assert not set(held) & set(kept)
    assert cv_folds(labels, one_each, None)[0] == []


def test_a_tie_in_cross_validation_goes_to_the_most_regularized_candidate():
    """Separable notes: every candidate scores 1.00 over the folds, and the linear model
    with the smallest C wins; the grid reaches gamma ten times below scikit-learn's 1/d."""
    from guitarlab.train.features import FeatureSettings, _candidates, fit_features, pick_candidate

    grid = _candidates(128, 0)
    assert grid[0] == ("logistic", {"C": 0.01})
    gammas = [p["gamma"] for name, p in grid if name == "svm"]
    assert min(gammas) <= 0.1 / 128 + 1e-12 and gammas == sorted(gammas)
    tried = [
        {"classifier": "svm", "C": 1.0, "gamma": 0.001, "cv_balanced_accuracy": 0.99},
        {"classifier": "svm", "C": 1.0, "gamma": 0.01, "cv_balanced_accuracy": 1.0},
        {"classifier": "svm", "C": 10.0, "gamma": 0.01, "cv_balanced_accuracy": 1.0},
    ]
    assert pick_candidate(tried) is tried[1]  # the best score first, then the earlier

    t = np.arange(WINDOW) / RATE
    rng = np.random.default_rng(0)
    windows = np.stack(
        [np.sin(2 * np.pi * (300 + 2000 * (i % 2)) * t) + 0.01 * rng.standard_normal(WINDOW)
         for i in range(32)]
    )  # fmt: skip
    labels = np.arange(32) % 2
    takes = np.array([f"t{i % 8}" for i in range(32)])  # 4 takes of each class
    settings = FeatureSettings(sample_rate=RATE, frame_length=512, hop_length=128, n_mels=16)
    model = fit_features(windows, labels, n_classes=2, settings=settings, takes=takes)
    assert {row["cv_balanced_accuracy"] for row in model.cv["tried"]} == {1.0}
    assert (model.cv["classifier"], model.cv["params"]) == ("logistic", {"C": 0.01})


def test_choose_ranks_by_validation_files_then_windows_and_ties_go_to_the_first():
    rows = [
        {
            "name": "features",
            "val_file_balanced_accuracy": 0.9,
            "val_window_balanced_accuracy": 0.9,
        },
        {"name": "net", "val_file_balanced_accuracy": 0.9, "val_window_balanced_accuracy": 0.9},
    ]
    assert choose(rows)[0]["name"] == "features"
    rows[1]["val_file_balanced_accuracy"] = 0.95
    best, why = choose(rows)
    assert best["name"] == "net" and "validation" in why and "test split was not read" in why
    rows[1]["test_file_balanced_accuracy"] = 0.0  # test scores are never read
    assert choose(rows)[0]["name"] == "net"


def test_a_network_below_the_features_model_says_so():
    base = {"file_balanced_accuracy": 0.91}
    assert "below the features model" in loses_line("network", 0.7, base)
    assert loses_line("network", 0.95, base) is None
    assert loses_line("features", 0.7, base) is None


def _scramble_test_labels(src: Path, dst: Path) -> None:
    """A copy of a dataset folder whose test windows all carry the other label."""
    from guitarlab.datasets.layout import WINDOWS_NAME, y_name

    shutil.copytree(src, dst)
    y = np.load(dst / y_name("test"))
    np.save(dst / y_name("test"), 1 - y)
    table = pd.read_csv(dst / WINDOWS_NAME, keep_default_na=False, dtype=str)
    test = table["split"] == "test"
    table.loc[test, "label"] = (1 - table.loc[test, "label"].astype(int)).astype(str)
    table.to_csv(dst / WINDOWS_NAME, index=False)


def test_auto_chooses_by_validation_only_and_reports_every_candidate(data, tmp_path):
    pytest.importorskip("tensorflow")
    from guitarlab.train.auto import fit_auto
    from guitarlab.train.evaluate import evaluate_run

    config = TrainConfig(seed=0, verbose=0)
    network = TrainConfig(
        input="spectrogram", filters=(4, 8, 4), epochs=2, fine_tune_epochs=0, verbose=0
    )
    plain = fit_auto(data["dataset"], tmp_path / "auto", config, network=network).info["auto"]
    # the same choice on a copy whose test labels are all flipped: the features model is
    # trained again, the network (trained on the train and val splits only, seconds of
    # TensorFlow) is reused from the first run's folder
    scrambled = tmp_path / "scrambled"
    _scramble_test_labels(data["dataset"], scrambled)
    again = tmp_path / "auto-scrambled" / "candidates" / "spectrogram-network"
    shutil.copytree(tmp_path / "auto" / "candidates" / "spectrogram-network", again)
    resume = TrainConfig(seed=0, verbose=0, resume=True)
    other = fit_auto(scrambled, tmp_path / "auto-scrambled", resume, network=network).info["auto"]
    assert plain["chosen"] == other["chosen"]
    for a, b in zip(plain["candidates"], other["candidates"], strict=True):
        assert a["val_file_balanced_accuracy"] == b["val_file_balanced_accuracy"]
        assert a["val_window_balanced_accuracy"] == b["val_window_balanced_accuracy"]
        assert a["test_file_balanced_accuracy"] + b["test_file_balanced_accuracy"] == pytest.approx(
            1.0
        )  # the test labels did change: every file's verdict flipped
    assert [row["name"] for row in plain["candidates"]] == [
        "features",
        "spectrogram-network",
        "average",
    ]
    meta = json.loads((tmp_path / "auto" / "run.json").read_text())
    assert meta["requested_model"] == "auto" and meta["auto"]["why"]
    result = CliRunner().invoke(cli, ["evaluate", str(tmp_path / "auto")])
    assert result.exit_code == 0 and "candidates (report.md): " in result.output
    ev = evaluate_run(tmp_path / "auto")
    report = (tmp_path / "auto" / "report.md").read_text()
    assert "## Candidates (--model auto)" in report and "spectrogram-network" in report
    assert ev.baseline["name"].startswith("features model")
    network_run = tmp_path / "auto" / "candidates" / "spectrogram-network"
    ev = evaluate_run(network_run)  # a network's evaluation shows the features model beside it
    assert ev.model_kind == "network" and 0.0 <= ev.baseline["file_balanced_accuracy"] <= 1.0
    report = (network_run / "report.md").read_text()
    assert "Baseline (features model" in report
    assert (ev.loses_to_features is not None) == (
        ev.balanced_accuracy < ev.baseline["file_balanced_accuracy"]
    )
    # --model average: the two candidates' probabilities averaged, loaded as one model
    from guitarlab.train.features import AveragedModel
    from guitarlab.train.predict import predict_files
    from guitarlab.train.rundir import load_run

    shutil.copytree(tmp_path / "auto" / "candidates", tmp_path / "average" / "candidates")
    fit_auto(data["dataset"], tmp_path / "average", resume, network=network, only="average")
    info = load_run(tmp_path / "average")
    assert info.config.model == "average" and not info.is_network
    assert isinstance(info.load_model(), AveragedModel)
    ev = evaluate_run(tmp_path / "average")
    assert ev.model_kind == "average" and ev.balanced_accuracy >= 0.8
    wav = next(data["wavs"].glob("single_n10.wav"))
    assert predict_files(tmp_path / "average", [wav])[0].label == "single"


def test_review_and_retrain_use_a_features_run(data, features_run, tmp_path):
    from guitarlab.corpus.manifest import load_manifest
    from guitarlab.review.model import RunLabels
    from guitarlab.workflow import retrain

    corpus = data["root"] / "corpus"
    queue = RunLabels(features_run, corpus).queue(load_manifest(corpus))
    assert len(queue) == 24 and not any(item.get("error") for item in queue)
    assert sum(not item["disagrees"] for item in queue) >= 22
    result = retrain(corpus, features_run, tmp_path / "again", echo=lambda _: None)
    assert json.loads((result.run / "run.json").read_text())["config"]["model"] == "features"
    assert result.before_file_accuracy >= 0.8 and result.after_file_accuracy >= 0.8


def test_plain_train_is_auto_and_falls_back_to_the_network_without_validation(data, tmp_path):
    """``guitarlab train`` with no --model trains both candidates and keeps the validation's
    choice; a dataset with no validation split, arrays and ``--full-model`` get the network."""
    pytest.importorskip("tensorflow")
    from guitarlab.datasets.layout import y_name
    from guitarlab.train.auto import default_model

    small = ["--filters", "4,8,4", "--epochs", "1", "--fine-tune-epochs", "0", "--quiet"]
    out = tmp_path / "plain"
    result = CliRunner().invoke(
        cli, ["train", "--dataset", str(data["dataset"]), "--out", str(out), *small]
    )
    assert result.exit_code == 0, result.output
    assert "auto chose " in result.output
    meta = json.loads((out / "run.json").read_text())
    assert meta["requested_model"] == "auto"
    names = [row["name"] for row in meta["auto"]["candidates"]]
    assert names == ["features", "spectrogram-network", "average"]
    network = json.loads((out / "candidates" / "spectrogram-network" / "run.json").read_text())
    assert network["config"]["filters"] == [4, 8, 4]  # the user's network options reach it
    assert default_model(dataset_dir=None, out=tmp_path / "npz") == ("lstm-fcn", None)
    assert default_model(dataset_dir=data["dataset"], out=out, full_model=True)[0] == "lstm-fcn"
    assert default_model(dataset_dir=data["dataset"], out=out, resume=True) == ("auto", None)

    no_val = tmp_path / "no-val"
    shutil.copytree(data["dataset"], no_val)
    (no_val / y_name("val")).unlink()
    model, why = default_model(dataset_dir=no_val, out=tmp_path / "x")
    assert model == "lstm-fcn" and "no validation split" in why and "--val take" in why
