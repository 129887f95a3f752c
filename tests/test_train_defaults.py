"""The default model fits a laptop; the post's full-size wave model is one flag away."""

from __future__ import annotations

import json

import numpy as np
import pytest

from guitarlab.train.config import FULL_MODEL, TrainConfig


def test_the_default_is_the_laptop_model_and_the_full_model_is_the_posts():
    config = TrainConfig()
    assert (config.model, config.input) == ("lstm-fcn", "spectrogram")
    assert config.filters == (16, 32, 16) and config.cells == 8
    assert (config.epochs, config.fine_tune_epochs) == (12, 3)
    full = TrainConfig(**FULL_MODEL)
    assert full.input == "wave" and full.filters == (128, 256, 128)
    assert (full.epochs, full.fine_tune_epochs) == (10, 5)


def test_the_demo_keeps_its_model_and_its_full_model_is_the_same_preset():
    from guitarlab.workflow import demo_config

    assert demo_config().as_dict() == TrainConfig().as_dict()
    full = demo_config(full_model=True)
    assert {k: full.as_dict()[k] for k in FULL_MODEL} == {
        k: list(v) if isinstance(v, tuple) else v for k, v in FULL_MODEL.items()
    }


def test_train_help_says_what_the_full_model_costs():
    from click.testing import CliRunner

    from guitarlab.cli import cli

    text = " ".join(CliRunner().invoke(cli, ["train", "--help"]).output.split())
    assert "--full-model" in text and "128/256/128" in text and "GB" in text
    default = ",".join(map(str, TrainConfig().filters))
    assert f"[default: {default};" in text


@pytest.mark.parametrize(
    "options, expected",
    [
        ([], {"input": "wave", "filters": [16, 32, 16], "fine_tune_epochs": 0}),  # arrays
        (["--input", "spectrogram"], {"input": "spectrogram", "filters": [16, 32, 16]}),
        (
            ["--full-model", "--filters", "4,8,4"],  # explicit options still apply
            {"input": "wave", "filters": [4, 8, 4], "kernels": [8, 5, 3], "fine_tune_epochs": 0},
        ),
    ],
    ids=["default", "spectrogram", "full-model"],
)
def test_train_command_builds_the_default_or_the_full_model(tmp_path, options, expected):
    pytest.importorskip("tensorflow")
    from click.testing import CliRunner

    from benchmarks.model_sets import sine_square
    from guitarlab.cli import cli

    X, y = sine_square(32, length=1024)
    npz = tmp_path / "data.npz"
    np.savez(npz, X_train=X, y_train=y)
    out = tmp_path / "run"
    args = ["train", "--npz", str(npz), "--out", str(out), "--quiet", "--batch", "16"]
    args += ["--epochs", "1", "--fine-tune-epochs", "0", *options]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    config = json.loads((out / "run.json").read_text())["config"]
    assert {k: config[k] for k in expected} == expected


def test_a_run_from_before_the_spectrogram_input_still_reads_as_the_wave_model():
    old = TrainConfig(**FULL_MODEL).as_dict()
    del old["input"]
    assert TrainConfig.from_dict(old).input == "wave"
    assert TrainConfig.from_dict(TrainConfig().as_dict()).input == "spectrogram"
