"""The 2019 post's experiment is "post" (issue 34): "seed" means only a random seed, and
scripts that still say ``seed`` for the experiment work, with one line saying the rename."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from guitarlab.cli import cli
from guitarlab.corpus.errors import GuitarlabError
from guitarlab.corpus.manifest import load_manifest
from guitarlab.train.config import TrainConfig


def test_demo_protocol_seed_runs_the_post_with_one_line(monkeypatch) -> None:
    calls = []

    def run_demo(out, **kwargs):
        calls.append(kwargs)
        raise GuitarlabError("stopped before recording")

    monkeypatch.setattr("guitarlab.workflow.run_demo", run_demo)
    result = CliRunner().invoke(cli, ["demo", "--out", "x", "--protocol", "seed"])
    assert result.exit_code == 1 and len(calls) == 1  # the post's demo, not another protocol
    assert "seconds" not in calls[0]  # run_demo's own length: the post's minute per take
    assert result.stderr.splitlines()[0] == "--protocol seed is renamed to post"
    assert "Traceback" not in result.output


def test_demo_help_names_post_not_seed() -> None:
    text = CliRunner().invoke(cli, ["demo", "--help"]).output
    assert "[post|guitar-holdout|session-notes|session-strings]" in text
    assert "seed|" not in text and "seed:" not in text


def test_import_pattern_seed_reads_the_post_names(tmp_path: Path, post_folder: Path) -> None:
    corpus = tmp_path / "corpus"
    result = CliRunner().invoke(
        cli, ["import", str(post_folder), "--corpus", str(corpus), "--pattern", "seed"]
    )
    assert result.exit_code == 0, result.output
    assert "--pattern seed is renamed to post" in result.stderr
    rows = load_manifest(corpus)
    assert len(rows) == 16 and set(rows["guitar"]) == {"stratocaster", "les_paul"}


def test_import_default_pattern_is_post_and_says_nothing(tmp_path: Path, post_folder: Path) -> None:
    result = CliRunner().invoke(cli, ["import", str(post_folder), "--corpus", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    assert "renamed" not in result.output


@pytest.mark.parametrize("field", ["schedule", "layout"])
def test_old_run_json_names_read_as_post(field: str) -> None:
    """run.json files written before the rename say "seed" for the post's schedule or layout."""
    config = TrainConfig(**{field: "seed"})
    assert getattr(config, field) == "post" and config.as_dict()[field] == "post"
    if field == "schedule":
        assert config.total_epochs == config.epochs + config.fine_tune_epochs


def test_train_schedule_seed_is_renamed_in_one_line() -> None:
    result = CliRunner().invoke(
        cli, ["train", "--schedule", "seed", "--layout", "seed", "--out", "r", "--epochs", "x"]
    )
    lines = result.stderr.splitlines()
    assert lines[:2] == ["--schedule seed is renamed to post", "--layout seed is renamed to post"]
