"""The command line as a whole: version, every command's help, one-line errors."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from guitarlab import __version__
from guitarlab.cli import cli


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in group.commands.items():
        path = (*prefix, name)
        if isinstance(command, click.Group):
            found += _commands(command, path)
        else:
            found.append(path)
    return found


ALL_COMMANDS = _commands(cli)


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_every_stage_has_its_commands() -> None:
    names = {" ".join(c) for c in ALL_COMMANDS}
    for expected in (
        "corpus init", "import", "manifest check", "manifest summary", "synth", "devices", "level",
        "record", "recover", "check", "augment", "presets list", "presets show", "dataset build",
        "dataset check", "dataset show", "train", "evaluate", "predict", "demo", "retrain",
    ):  # fmt: skip
        assert expected in names


@pytest.mark.parametrize("command", ALL_COMMANDS, ids=[" ".join(c) for c in ALL_COMMANDS])
def test_every_command_has_help_with_a_worked_example(command: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0
    example = result.output.split("Example", 1)
    assert len(example) == 2 and f"guitarlab {command[0]}" in example[1]


def test_user_mistakes_are_one_line_and_debug_shows_the_traceback(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = str(tmp_path / "no-corpus")
    for args in (
        ["manifest", "summary", missing],
        ["augment", "--corpus", missing, "--tones", "clean"],
        ["dataset", "show", str(tmp_path)],
        ["evaluate", str(tmp_path)],
        ["synth", "--corpus", str(tmp_path / "c"), "--guitars", "banjo"],
        ["train", "--dataset", str(tmp_path), "--out", str(tmp_path / "r"), "--spectral-stats"]
        + ["--input", "wave"],  # spectral stats read log-mel frames
    ):
        result = runner.invoke(cli, args)
        assert result.exit_code != 0, args
        assert "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
    debug = runner.invoke(cli, ["--debug", "manifest", "summary", missing])
    assert debug.exit_code != 0 and debug.exception is not None
