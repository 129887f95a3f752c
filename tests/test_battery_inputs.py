"""Bad numbers, damaged files and misleading advice, tried through the real CLI (issue 29).

Every case asserts a non-zero exit, one error line naming the option or file (no
traceback), and that nothing was written where the command was refused.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest
import soundfile as sf
from conftest import write_tone
from test_battery import assert_one_line_error, run, snapshot

WINDOW = ("--window", "1024", "--test-windows", "2", "--quiet")  # 0.5 s files: 21 windows


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    """Two guitars x two takes of 0.5 s sines, and a span-split dataset of them."""
    root = tmp_path_factory.mktemp("inputs")
    for gi, guitar in enumerate(("tele", "lp")):
        for take in (1, 2):
            write_tone(
                root / "src" / f"{guitar}_backing_{take}.wav",
                freq_hz=330.0 + 70 * gi + 7 * take,
                seconds=0.5,
            )
    corpus, dataset = root / "corpus", root / "dataset"
    result = run(
        "import", root / "src", "--corpus", corpus, "--pattern", "{guitar}_{phrase}_{take}"
    )
    assert result.exit_code == 0, result.output
    result = run("dataset", "build", "--corpus", corpus, "--out", dataset, *WINDOW)
    assert result.exit_code == 0, result.output
    return {"root": root, "corpus": corpus, "dataset": dataset}


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _cut(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


# ---------------------------------------------------------------- numbers with bounds


@pytest.mark.parametrize("seconds", ["inf", "1e9", "nan", "0"])
def test_synth_seconds_must_be_finite_and_at_most_an_hour(tmp_path: Path, seconds: str) -> None:
    corpus = tmp_path / "c"
    result = run("synth", "--corpus", corpus, "--seconds", seconds, "--guitars", "stratocaster")
    assert_one_line_error(result, "--seconds", "3600", code=2)
    assert not corpus.exists()


def test_demo_seconds_share_the_synth_bound(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = run("demo", "--out", out, "--seconds", "inf", "--direct")
    assert_one_line_error(result, "--seconds", "3600", code=2)
    assert not out.exists()


def test_synth_core_refuses_inf_before_making_the_corpus(tmp_path: Path) -> None:
    from guitarlab.corpus.errors import RecorderError
    from guitarlab.synth.takes import synth_to_corpus

    with pytest.raises(RecorderError, match="seconds <= 3600"):
        synth_to_corpus(tmp_path / "c", seconds=float("inf"), progress=False)
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize(
    "args, option",
    [
        (("--hop", "0"), "--hop"),
        (("--hop", "nan"), "--hop"),
        (("--hop", "0.001"), "--hop"),
        (("--plot", "out.wav"), "--plot"),
        (("--plot", "labels"), "--plot"),
        (("--gate-dbfs", "20"), "--gate-dbfs"),
        (("--gate-dbfs", "nan"), "--gate-dbfs"),
    ],
)
def test_predict_options_are_bounded(tmp_path: Path, args, option: str) -> None:
    wav = write_tone(tmp_path / "x.wav", seconds=0.3)
    line = assert_one_line_error(run("predict", tmp_path, wav, *args), option, code=2)
    assert "range" in line or ".png" in line
    assert not (tmp_path / "out.wav").exists()


@pytest.mark.parametrize(
    "args, needles, code",
    [
        (("--window", "1"), ("--window", "256"), 2),
        (("--window", "64", "--test-windows", "2"), ("--window", "256"), 2),
        (("--same-span-all", "--split", "take"), ("--same-span-all", "--split span"), 1),
        (("--skip-silence", "--gate-dbfs", "20"), ("--gate-dbfs", "x<0"), 2),
        (("--test-seconds", "inf"), ("--test-seconds", "finite"), 2),
        (("--test-seconds", "nan"), ("--test-seconds", "finite"), 2),
    ],
)
def test_dataset_build_numbers_are_bounded(tiny, tmp_path: Path, args, needles, code) -> None:
    out = tmp_path / "ds"
    result = run("dataset", "build", "--corpus", tiny["corpus"], "--out", out, *args, "--quiet")
    assert_one_line_error(result, *needles, code=code)
    assert not out.exists()


def test_build_core_refuses_a_one_sample_window(tiny, tmp_path: Path) -> None:
    from guitarlab.corpus.errors import DatasetError
    from guitarlab.datasets.build import build_dataset

    with pytest.raises(DatasetError, match="at least 256 samples"):
        build_dataset(tiny["corpus"], tmp_path / "ds", window=1, progress=False)


def test_a_gate_that_silences_everything_blames_the_gate(tiny, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    result = run(
        "dataset", "build", "--corpus", tiny["corpus"], "--out", out, *WINDOW,
        "--skip-silence", "--gate-dbfs", "-1",
    )  # fmt: skip
    line = assert_one_line_error(result, "--gate-dbfs -1", "dBFS RMS")
    assert "--window" not in line and "--test-seconds" not in line
    assert "-15." in line  # the 0.25-amplitude sines' level, read from the manifest
    assert not out.exists()


# ---------------------------------------------------------------- damaged files


@pytest.mark.parametrize("keep", [0.5, 0.0])
def test_train_on_a_truncated_npy_says_rebuild(tiny, tmp_path: Path, keep: float) -> None:
    dataset = _copy(tiny["dataset"], tmp_path / "ds")
    _cut(dataset / "train_audio.npy", keep)
    result = run(
        "train", "--dataset", dataset, "--out", tmp_path / "run", "--filters", "4,4,4",
        "--epochs", "1", "--fine-tune-epochs", "0", "--quiet",
    )  # fmt: skip
    assert_one_line_error(result, "train_audio.npy", "corrupt", "rebuild the dataset")


def _fake_run(folder: Path, dataset: Path | None = None) -> Path:
    """run.json enough for load_run (no TensorFlow needed to write it)."""
    folder.mkdir(parents=True)
    meta = {
        "config": {"model": "lstm-fcn", "input": "wave", "filters": [4, 4, 4]},
        "label_names": ["lp", "tele"],
        "window": 1024,
        "sample_rate": 44100,
        "data": {"dataset_dir": str(dataset) if dataset else None},
    }
    (folder / "run.json").write_text(json.dumps(meta))
    return folder


def test_predict_with_a_truncated_model_says_corrupt_before_tensorflow(tmp_path: Path) -> None:
    run_dir = _fake_run(tmp_path / "run")
    with zipfile.ZipFile(run_dir / "model.keras", "w") as archive:
        archive.writestr("config.json", "{}" * 2000)
        archive.writestr("model.weights.h5", b"\0" * 20000)
    _cut(run_dir / "model.keras")
    wav = write_tone(tmp_path / "x.wav", seconds=0.3)
    line = assert_one_line_error(run("predict", run_dir, wav), "model.keras", "corrupt")
    assert "retrain or restore the run" in line and "not found" not in line.lower()


def test_a_model_archive_with_damaged_contents_says_corrupt(tmp_path: Path) -> None:
    from guitarlab.corpus.errors import TrainError
    from guitarlab.train.rundir import load_run

    run_dir = _fake_run(tmp_path / "run")
    with zipfile.ZipFile(run_dir / "model.keras", "w") as archive:  # intact zip, junk inside
        archive.writestr("metadata.json", "{}")
        archive.writestr("config.json", "not json")
        archive.writestr("model.weights.h5", b"not hdf5")
    with pytest.raises(TrainError, match=r"model\.keras: corrupt.*retrain or restore the run"):
        load_run(run_dir).load_model()


def test_export_checks_the_source_of_span_clips(tiny, tmp_path: Path) -> None:
    corpus = _copy(tiny["corpus"], tmp_path / "corpus")
    take = sorted((corpus / "takes").glob("*.wav"))[0]
    audio, rate = sf.read(take)
    sf.write(take, audio * 0.5, rate, subtype="PCM_24")  # same length, other samples
    before = snapshot(corpus)
    out = tmp_path / "export"
    result = run("export", "--corpus", corpus, "--dataset", tiny["dataset"], "--out", out)
    assert_one_line_error(result, take.name, "sha256")
    assert not out.exists() and snapshot(corpus) == before


def test_retrain_into_a_used_out_names_a_real_option(tiny, tmp_path: Path) -> None:
    old = _fake_run(tmp_path / "old-run", tiny["dataset"])
    out = tmp_path / "again"
    _fake_run(out / "run")
    result = run("retrain", "--corpus", tiny["corpus"], "--from", old, "--out", out)
    line = assert_one_line_error(result, str(out), "--out")
    assert "--resume" not in line
    assert not (out / "dataset").exists()
    help_text = run("retrain", "--help").output
    assert "--out" in help_text and "--resume" not in help_text


@pytest.mark.parametrize("damage", ["cut", "keys"])
def test_a_damaged_run_json_is_one_line(tiny, tmp_path: Path, damage: str) -> None:
    old = _fake_run(tmp_path / "old-run", tiny["dataset"])
    meta = old / "run.json"
    if damage == "cut":
        _cut(meta)
    else:
        meta.write_text(json.dumps({"status": "running", "config": {}}))
    result = run("retrain", "--corpus", tiny["corpus"], "--from", old, "--out", tmp_path / "o")
    line = assert_one_line_error(result, "run.json")
    assert "retrain or restore the run" in line
    assert "label_names" in line if damage == "keys" else "corrupt" in line


@pytest.mark.parametrize("kind", ["features", "average"])
def test_a_damaged_features_model_is_one_line(tmp_path: Path, kind: str) -> None:
    from guitarlab.train.features import FEATURES_JSON, sklearn_version

    run_dir = _fake_run(tmp_path / "run")
    meta = json.loads((run_dir / "run.json").read_text())
    meta["config"]["model"] = kind
    (run_dir / "run.json").write_text(json.dumps(meta))
    (run_dir / FEATURES_JSON).write_text(json.dumps({"sklearn_version": sklearn_version()}))
    (run_dir / "model.joblib").write_bytes(b"\x80\x04junk, cut short")
    with zipfile.ZipFile(run_dir / "model.keras", "w") as archive:  # an average run has both
        archive.writestr("config.json", "{}")
    wav = write_tone(tmp_path / "x.wav", seconds=0.3)
    result = run("predict", run_dir, wav)
    assert_one_line_error(result, "model.joblib", "corrupt", "retrain or restore the run")


@pytest.mark.parametrize(
    "args, needle",
    [
        (("--dropout", "1.5"), "dropout=1.5"),
        (("--lr", "nan"), "lr=nan"),
        (("--fine-tune-lr", "0"), "fine_tune_lr=0"),
        (("--cells", "0"), "cells"),
        (("--filters", "4,0,4"), "filters"),
        (("--frame", "0"), "frame_length=0"),
    ],
)
def test_train_numbers_are_refused_before_training(tiny, tmp_path: Path, args, needle) -> None:
    out = tmp_path / "run"
    result = run("train", "--dataset", tiny["dataset"], "--out", out, "--epochs", "1", *args)
    assert_one_line_error(result, needle)
    assert not out.exists()


@pytest.mark.parametrize(
    "args, needle, code",
    [
        (("--epochs", "-1"), "--epochs", 2),
        (("--workers", "0"), "--workers", 2),
        (("--epochs", "0", "--fine-tune-epochs", "0"), "train at least one epoch", 1),
    ],
)
def test_retrain_numbers_are_refused_before_building(tiny, tmp_path: Path, args, needle, code):
    old = _fake_run(tmp_path / "old-run", tiny["dataset"])
    out = tmp_path / "o"
    result = run("retrain", "--corpus", tiny["corpus"], "--from", old, "--out", out, *args)
    assert_one_line_error(result, needle, code=code)
    assert not out.exists()
