"""Small data: BatchNorm statistics right at inference after few steps; the smoke set; class weights."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from click.testing import CliRunner  # noqa: E402

from benchmarks.model_sets import sine_square, sine_square_npz  # noqa: E402
from guitarlab.cli import cli  # noqa: E402
from guitarlab.train.config import TrainConfig  # noqa: E402
from guitarlab.train.fit import fit  # noqa: E402
from guitarlab.train.rundir import load_run  # noqa: E402


def _inference_accuracy(model, X, y) -> float:
    outputs = np.asarray(model(X[:, :, None], training=False))[:, 0]
    return float(np.mean((outputs > 0.5) == y))


def test_batch_norm_statistics_are_right_after_few_steps(tmp_path):
    """120 steps used to leave Keras's moving averages near their 0/1 start: chance in
    inference mode although training accuracy was 1.0."""
    X, y = sine_square(240, seed=0)
    X_test, y_test = sine_square(100, seed=7)
    config = TrainConfig(
        input="wave", filters=(8, 16, 8), epochs=8, fine_tune_epochs=1, batch=16, verbose=0
    )
    run = fit(X, y, out=tmp_path / "run", config=config)
    saved = load_run(run.run_dir).load_model()
    assert _inference_accuracy(saved, X_test, y_test) >= 0.9
    assert _inference_accuracy(saved, X, y) >= 0.9


def test_recalibrate_batch_norm_sets_exact_statistics():
    from guitarlab.train.models import lstm_fcn, recalibrate_batch_norm

    X, _ = sine_square(64, length=32)
    model = lstm_fcn(32, 2, filters=(4, 4), kernels=(3, 3))
    assert recalibrate_batch_norm(model, X) == 2
    import keras

    first = next(
        layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)
    )
    inputs = np.asarray(keras.Model(model.inputs[0], first.input)(X[:, :, None]), np.float64)
    flat = inputs.reshape(-1, inputs.shape[-1])
    np.testing.assert_allclose(
        np.asarray(first.moving_mean), flat.mean(axis=0), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(
        np.asarray(first.moving_variance), flat.var(axis=0), rtol=1e-3, atol=1e-5
    )


def test_sine_square_through_the_cli_scores_at_least_0_95(tmp_path):
    npz = tmp_path / "sine_square.npz"
    sine_square_npz(npz)
    out = tmp_path / "run"
    result = CliRunner().invoke(
        cli,
        ["train", "--npz", str(npz), "--out", str(out), "--input", "wave", "--filters", "16,32,16"]
        + ["--epochs", "8", "--fine-tune-epochs", "2", "--quiet"],
    )
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "run.json").read_text())
    assert meta["metrics"]["test_window_accuracy"] >= 0.95


def test_paper_schedule_without_validation_trains_on_every_row(tmp_path):
    X, y = sine_square(60, length=64)
    config = TrainConfig(
        input="wave", filters=(4, 8, 4), epochs=1, schedule="paper", batch=16, verbose=0
    )
    run = fit(X, y, out=tmp_path / "run", config=config)
    assert run.info["data"]["n_train"] == 60 and run.info["data"]["n_val"] == 0


@pytest.mark.parametrize(
    ("setting", "counts", "expected"),
    [
        ("auto", (30, 30), None),
        ("auto", (40, 20), {0: 0.75, 1: 1.5}),
        ("balanced", (30, 30), {0: 1.0, 1: 1.0}),
        ("none", (40, 20), None),
    ],
)
def test_class_weights(setting, counts, expected):
    y = np.repeat([0, 1], counts)
    assert TrainConfig(class_weights=setting).class_weight(y, 2) == expected


def test_cli_class_weights_are_recorded(tmp_path):
    X, y = sine_square(90, length=64)
    X, y = X[:75], y[:75]  # 38 sine, 37 square
    keep = np.concatenate([np.flatnonzero(y == 0), np.flatnonzero(y == 1)[:15]])
    npz = tmp_path / "unequal.npz"
    np.savez(npz, X_train=X[keep], y_train=y[keep])
    out = tmp_path / "run"
    result = CliRunner().invoke(
        cli,
        ["train", "--npz", str(npz), "--out", str(out), "--input", "wave", "--filters", "4,8,4"]
        + ["--epochs", "1"]
        + ["--fine-tune-epochs", "0", "--quiet"],
    )
    assert result.exit_code == 0, result.output
    weights = json.loads((out / "run.json").read_text())["class_weight"]
    assert weights["1"] > 1.0 > weights["0"]


def test_a_logged_training_has_no_tensorflow_start_up_lines_or_progress_bars(tmp_path):
    """TensorFlow printed its C++ start-up lines twice, and Keras's bar wrote escape codes
    into log files: a log of `guitarlab train` holds neither."""
    import subprocess
    import sys

    npz = tmp_path / "smoke.npz"
    sine_square_npz(npz, n_train=60, n_test=20)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "guitarlab",
            "train",
            "--npz",
            str(npz),
            "--out",
            str(tmp_path / "r"),
        ]
        + ["--filters", "4,4,4", "--epochs", "1", "--fine-tune-epochs", "0"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    log = done.stdout + done.stderr
    assert "absl::InitializeLog" not in log and "oneDNN custom operations" not in log
    assert "\x1b[" not in log and "run saved to" in done.stdout


def test_gun_point_like_set_is_reproducible_and_the_classes_differ_only_near_the_moves():
    from benchmarks.model_sets import gun_point_like

    X, y = gun_point_like(40, seed=3)
    again, _ = gun_point_like(40, seed=3)
    np.testing.assert_array_equal(X, again)
    assert X.shape == (40, 150) and y.tolist() == [0, 1] * 20
    np.testing.assert_allclose(X.std(axis=1), 1.0, rtol=1e-4)
    # the class mean curves differ, but by much less than one series' range
    gap = np.abs(X[y == 0].mean(axis=0) - X[y == 1].mean(axis=0)).max()
    assert 0.05 < gap < 1.0


def test_paper_schedule_measurement_writes_its_section_in_place():
    from benchmarks.bench_model import PAPER_BEGIN, measure_paper, paper_markdown, with_section

    results = measure_paper(quick=True, echo=lambda _: None)
    assert set(results) == {"1-nn", "logistic", 1}
    assert 0.0 <= results[1][0]["accuracy"] <= 1.0
    section = paper_markdown(results, machine="test")
    text = with_section("# model\n\n## Reading it\n", section)
    assert text.count(PAPER_BEGIN) == 1 and "| LSTM-FCN | 1 | 1 |" in text
    assert with_section(text, section) == text  # replaced, not appended twice


def test_model_table_keeps_the_rows_not_measured_again():
    from benchmarks.bench_model import merged_table

    head = "| protocol | model | seeds | files right | balanced accuracy | ROC AUC | train s |\n"
    old = head + (
        "| post | spectrogram | 3 | 16/16 | 0.98 | 1.00 | 38 |\n"
        "| guitar-holdout | wave | 3 | 5/12 | 0.56 | 0.59 | 136 |\n"
        "| guitar-holdout | spectrogram | 3 | 9/12 | 0.69 | 0.74 | 21 |\n"
    )
    new = "# title\n\n" + head + "| guitar-holdout | spectrogram | 3 | 29/32 | 0.91 | 0.93 | 90 |\n"
    text = merged_table(old, new)
    assert "| post | spectrogram | 3 | 16/16" in text  # another protocol: kept
    assert "9/12" not in text and "29/32" in text  # the model measured again: replaced
    assert "| guitar-holdout | wave | 3 | 5/12" in text  # another model of it: kept
    assert text.index("| post |") < text.index("| guitar-holdout |") and text.startswith("# title")


def test_model_table_keeps_baselines_measured_on_more_seeds():
    from benchmarks.bench_model import merged_table

    head = "| protocol | model | seeds | files right | balanced accuracy | ROC AUC | train s |\n"
    old = head + (
        "| guitar-holdout | spectrogram | 3 | 55/64, 56/64, 59/64 | 0.89 | 0.95 | 135 |\n"
        "| guitar-holdout | baseline | 3 | 47/64, 51/64, 50/64 | 0.77 | 0.88 | n/a |\n"
    )
    one_seed = head + (
        "| guitar-holdout | ensemble | 1 | 57/64 | 0.89 | 0.95 | 1900 |\n"
        "| guitar-holdout | baseline | 1 | 47/64 | 0.73 | 0.87 | n/a |\n"
    )
    text = merged_table(old, one_seed)
    assert "| guitar-holdout | ensemble | 1 | 57/64" in text  # the new model's row is added
    assert "| guitar-holdout | baseline | 3 | 47/64, 51/64, 50/64" in text  # not shrunk
    assert "| guitar-holdout | baseline | 1 |" not in text
    three_seeds = one_seed.replace(
        "| baseline | 1 | 47/64 |", "| baseline | 3 | 46/64, 50/64, 50/64 |"
    )
    assert "| baseline | 3 | 46/64, 50/64, 50/64 |" in merged_table(
        old, three_seeds
    )  # as many: replaced
