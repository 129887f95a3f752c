"""The whole job: the demo end to end, and retraining on a grown corpus (tiny but real)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import audio_server_or_skip

from guitarlab import workflow
from guitarlab.cli import cli
from guitarlab.corpus import audit
from guitarlab.corpus import manifest as mf
from guitarlab.datasets.build import build_dataset
from guitarlab.datasets.folder import read_meta
from guitarlab.synth.takes import synth_to_corpus
from guitarlab.train.config import TrainConfig
from guitarlab.train.fit import fit_dataset
from guitarlab.train.retrain import corpus_changes
from guitarlab.train.rundir import load_run
from guitarlab.workflow import retrain, run_demo

pytestmark = pytest.mark.slow
TINY = {
    "input": "wave",
    "filters": (8, 16, 8),
    "kernels": (8, 5, 3),
    "cells": 8,
    "epochs": 2,
    "fine_tune_epochs": 1,
    "verbose": 0,
}


def test_demo_end_to_end_and_rerun_reuses_everything(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    lines: list[str] = []
    result = run_demo(out, seconds=6, through_server=False, epochs=1, echo=lines.append)
    frame = mf.load_manifest(result.corpus)
    # the post's layout: 2 guitars x 2 phrases x (raw + 3 tones) = 16 files
    assert len(frame) == 16 and audit.check_manifest(result.corpus) == []
    assert sorted(frame["tone"].unique()) == ["clean", "crunch", "distorted", "raw"]
    assert result.files_total == 16 and 0 <= result.files_right <= 16
    assert set(result.per_tone["tone"]) == {"raw", "clean", "crunch", "distorted"}
    report = result.report.read_text()
    for picture in ("confusion.png", "file_probabilities.png", "training_curves.png"):
        assert picture in report and (result.run / picture).stat().st_size > 1000
    # the interface gain was set per guitar (the post's level matching): raw takes match
    _, levels = audit.summary_tables(frame)
    assert levels["mean_rms_dbfs"].max() - levels["mean_rms_dbfs"].min() <= 1.5
    assert set(json.loads((result.corpus / "calibration.json").read_text())["guitars"]) == {
        "stratocaster",
        "les_paul",
    }
    assert any("turn the interface gain" in line for line in lines)
    assert (out / "levels.png").stat().st_size > 1000 and (
        out / "spectra.png"
    ).stat().st_size > 1000
    summary = json.loads((out / "demo.json").read_text())
    assert summary["files_total"] == 16 and summary["recorded_through"] == "direct"
    model_mtime = (result.run / "model.keras").stat().st_mtime

    again: list[str] = []
    run_demo(out, seconds=6, through_server=False, epochs=1, echo=again.append)
    assert any("reusing" in line for line in again if line.startswith("1/5"))
    assert any("every tone already rendered" in line for line in again)
    assert any("up to date" in line for line in again if line.startswith("3/5"))
    assert any("up to date" in line for line in again if line.startswith("4/5"))
    assert (result.run / "model.keras").stat().st_mtime == model_mtime
    assert len(mf.load_manifest(result.corpus)) == 16

    # the corpus grows: the demo rebuilds, trains anew and keeps the old run aside
    synth_to_corpus(
        result.corpus, guitars=("stratocaster",), phrases=("lead",), seconds=6, progress=False
    )
    grown: list[str] = []
    run_demo(out, seconds=6, through_server=False, epochs=1, echo=grown.append)
    assert any("previous run is kept" in line for line in grown)
    assert (out / "run-1" / "model.keras").stat().st_mtime == model_mtime
    assert json.loads((out / "demo.json").read_text())["files_total"] == 20


def test_the_demo_session_is_recorded_through_a_real_audio_server(tmp_path: Path) -> None:
    from guitarlab.workflow import record_session

    audio_server_or_skip(44100).stop()  # skip off CI when no server can start here
    lines: list[str] = []
    how = record_session(tmp_path / "c", seconds=3, echo=lines.append)
    assert how == "audio server", lines
    frame = mf.load_manifest(tmp_path / "c")
    assert len(frame) == 4 and set(frame["tone"]) == {"raw"} and set(frame["status"]) == {""}
    assert (frame["sample_rate"] == 44100).all() and (frame["subtype"] == "PCM_24").all()
    assert all("PulseAudio" in note for note in frame["notes"])
    _, levels = audit.summary_tables(frame)
    assert levels["mean_rms_dbfs"].max() - levels["mean_rms_dbfs"].min() <= 1.5
    assert audit.check_manifest(tmp_path / "c") == []


def test_demo_command_prints_the_headline(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["demo", "--out", str(tmp_path / "d"), "--seconds", "6", "--direct", "--epochs", "1"]
    )
    assert result.exit_code == 0, result.output
    assert (
        "files right:" in result.output and "of 16" in result.output and "report:" in result.output
    )
    for tone in ("raw", "clean", "crunch", "distorted"):
        assert f"  {tone}" in result.output


def _tiny_run(tmp_path: Path) -> tuple[Path, Path]:
    corpus = tmp_path / "corpus"
    synth_to_corpus(
        corpus,
        guitars=("stratocaster", "les_paul"),
        phrases=("lead",),
        takes=1,
        seconds=5,
        sample_rate=16000,
        progress=False,
    )
    from guitarlab.augment.renders import render_corpus

    render_corpus(corpus, tones=["crunch"], progress=False)
    dataset = build_dataset(
        corpus, tmp_path / "dataset", window=1000, test_windows=8, seed=3, progress=False
    )
    run = tmp_path / "run"
    fit_dataset(dataset, run, TrainConfig(**TINY))
    return corpus, run


def test_retrain_on_a_grown_corpus_compares_both_models_on_one_test_set(tmp_path: Path) -> None:
    corpus, run = _tiny_run(tmp_path)
    old_meta = read_meta(tmp_path / "dataset")
    # the corpus grows: a second take per guitar, and a new guitar
    synth_to_corpus(
        corpus,
        guitars=("stratocaster", "les_paul"),
        phrases=("lead",),
        takes=1,
        seconds=5,
        sample_rate=16000,
        progress=False,
    )
    synth_to_corpus(
        corpus,
        guitars=("telecaster",),
        phrases=("lead",),
        takes=1,
        seconds=5,
        sample_rate=16000,
        progress=False,
    )
    changes = corpus_changes(mf.load_manifest(corpus), old_meta)
    assert len(changes.new_takes) == 3 and changes.new_labels == ["telecaster"]

    lines: list[str] = []
    result = retrain(
        corpus, run, tmp_path / "grown", epochs=1, fine_tune_epochs=1, echo=lines.append
    )
    # only the missing tone of the new takes was rendered
    frame = mf.load_manifest(corpus)
    assert set(frame.loc[frame["tone"] == "crunch", "take"]) == set(frame["take"])
    assert any("widening the output layer from 2 to 3" in line for line in lines)
    new_meta = read_meta(result.dataset)
    # the old takes keep exactly their held-out spans; the new takes have their own
    for take, spans in old_meta["takes"].items():
        assert new_meta["takes"][take] == spans
    assert set(changes.new_takes) <= set(new_meta["takes"])
    assert load_run(result.run).label_names == ["les_paul", "stratocaster", "telecaster"]
    # one test set, two models: every test file has a decision from each
    comparison = pd.read_csv(result.dataset.parent / "comparison.csv")
    assert len(comparison) == len(result.comparison) == 2 * 5  # 5 takes x (raw + crunch)
    assert comparison["before"].notna().all() and comparison["after"].notna().all()
    assert set(comparison.loc[comparison["label"] == "telecaster", "before"]) <= {
        "les_paul",
        "stratocaster",
    }
    assert comparison["new_take"].sum() == 6
    report = result.report.read_text()
    assert (
        "before" in report
        and "after" in report
        and (result.report.parent / "before_after.png").exists()
    )
    assert result.before_file_accuracy == pytest.approx(comparison["before_correct"].mean())
    assert "Balanced accuracy before:" in report and "always saying" in report


def test_retrain_refuses_a_run_without_its_dataset(tmp_path: Path) -> None:
    corpus, run = _tiny_run(tmp_path)
    import shutil

    shutil.rmtree(tmp_path / "dataset")
    result = CliRunner().invoke(cli, ["retrain", "--corpus", str(corpus), "--from", str(run)])
    assert (
        result.exit_code == 1
        and "dataset folder" in result.output
        and "Traceback" not in result.output
    )


def test_guitar_holdout_demo_tests_on_guitars_never_heard(tmp_path: Path) -> None:
    out = tmp_path / "holdout"
    args = ["demo", "--protocol", "guitar-holdout", "--out", str(out), "--takes", "1"]
    args += ["--training-takes", "2", "--training-seconds", "2"]
    result = CliRunner().invoke(cli, [*args, "--seconds", "3", "--epochs", "1"])
    assert result.exit_code == 0, result.output
    for line in ("files right:", "balanced accuracy:", "always saying", "baseline (features model"):
        assert line in result.output
    assert "held-out guitars (never heard in training): telecaster, es335" in result.output
    meta = read_meta(out / "dataset")
    assert meta["label"] == "pickup" and meta["options"]["skip_silence"] is True
    assert (meta["window"], meta["hop"]) == (workflow.HOLDOUT_WINDOW, workflow.HOLDOUT_HOP)
    run_config = json.loads((out / "run" / "run.json").read_text())["config"]
    assert run_config["mel_norm"] == "band" and run_config["input"] == "spectrogram"
    assert run_config["spectral_stats"] is True
    windows = pd.read_csv(out / "dataset" / "windows.csv")
    assert set(windows.loc[windows["split"] == "test", "guitar"]) == {"telecaster", "es335"}
    assert not {"telecaster", "es335"} & set(windows.loc[windows["split"] != "test", "guitar"])
    frame = mf.load_manifest(out / "corpus")
    assert {"single_coil", "humbucker"} <= set(frame["pickup"])
    summary = json.loads((out / "demo.json").read_text())
    assert summary["protocol"] == "guitar-holdout" and 0 <= summary["balanced_accuracy"] <= 1
    takes = next(p for p in cli.commands["demo"].params if p.name == "takes")
    assert takes.default() == workflow.HOLDOUT_TAKES  # the CLI's defaults are the workflow's
    training = next(p for p in cli.commands["demo"].params if p.name == "training_takes")
    assert training.default() == workflow.HOLDOUT_TRAINING_TAKES
    seconds = (frame["frames"] / frame["sample_rate"]).groupby(frame["guitar"]).max()
    assert seconds["es335"] == pytest.approx(3.0) and seconds["stratocaster"] == pytest.approx(2.0)
    takes_of = frame.groupby(["guitar", "phrase"])["take"].nunique()
    assert takes_of["es335"].eq(1).all() and takes_of["stratocaster"].eq(2).all()
    bad = CliRunner().invoke(cli, [*args, "--held-out", "nosuch,es335"])
    assert bad.exit_code != 0 and "unknown: nosuch" in bad.output
    other = CliRunner().invoke(cli, [*args, "--seconds", "4"])  # takes of other draws are there
    assert other.exit_code == 1 and "give the demo another --out" in other.output
    assert "Traceback" not in other.output
