"""Conventions a user expects of any command line (issue 33 item 4): quiet TensorFlow,
one-line crashes with a log, `check` over every file, examples in every --help, shell
completion, the README's and docs' imports, folders that honour the umask, and visible progress."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import click
import numpy as np
import pytest
from click.shell_completion import BashComplete
from click.testing import CliRunner
from conftest import post_corpus, write_tone

from guitarlab.cli import cli
from guitarlab.commands import complete

ROOT = Path(__file__).resolve().parent.parent
NOISE = re.compile(r"cuInit|CUDA|cuda|oneDNN|absl|cpu_feature_guard|TensorRT")


def _walk(group: click.Group, prefix: tuple[str, ...] = ()):
    """Every command and group below ``group``, with its path."""
    for name, command in group.commands.items():
        path = (*prefix, name)
        yield path, command
        if isinstance(command, click.Group):
            yield from _walk(command, path)


# ------------------------------------------------------------------ TensorFlow start-up


def test_train_in_a_subprocess_prints_no_tensorflow_startup_noise(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(24, 200)).astype("float32")
    y = np.array(["a", "b"])[np.arange(24) % 2]
    np.savez(tmp_path / "d.npz", X_train=x, y_train=y, X_test=x[:8], y_test=y[:8])
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    args = ["train", "--npz", str(tmp_path / "d.npz"), "--out", str(tmp_path / "run")]
    args += ["--input", "wave", "--filters", "2,2,2", "--epochs", "1", "--fine-tune-epochs", "0"]
    done = subprocess.run(
        [sys.executable, "-m", "guitarlab", *args, "--batch", "8"],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "run saved to" in done.stdout
    noisy = [line for line in done.stderr.splitlines() if NOISE.search(line)]
    assert noisy == [], noisy


def test_startup_filter_keeps_what_is_not_noise() -> None:
    from guitarlab.train.startup import startup_noise

    text = "\n".join(
        [
            "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
            "I0000 port.cc:153] oneDNN custom operations are on. You may see slightly different",
            "I0000 cudart_stub.cc:31] Could not find cuda drivers on your machine",
            "E0000 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error (303)",
            "ImportError: libfoo.so: cannot open shared object file",
        ]
    )
    assert startup_noise(text, driver=False) == [
        "ImportError: libfoo.so: cannot open shared object file"
    ]
    # with an NVIDIA driver loaded a failing cuInit is a real problem: shown
    assert len(startup_noise(text, driver=True)) == 2


# ------------------------------------------------------------------ crashes


def test_an_unexpected_error_is_one_line_and_a_log_and_debug_prints_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(**_kwargs):
        raise ZeroDivisionError("division by zero in the planner")

    monkeypatch.setattr(cli.commands["dataset"].commands["show"], "callback", broken)
    state = tmp_path / "state"
    runner = CliRunner(env={"XDG_STATE_HOME": str(state)})
    result = runner.invoke(cli, ["dataset", "show", str(tmp_path)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "ZeroDivisionError: division by zero in the planner" in lines[0]
    assert "--debug" in lines[0] and "Traceback" not in result.output
    logs = list((state / "guitarlab").glob("crash-*.log"))
    assert len(logs) == 1 and str(logs[0]) in lines[0]
    text = logs[0].read_text()
    assert "Traceback" in text and "in broken" in text and "ZeroDivisionError" in text

    result = runner.invoke(cli, ["--debug", "dataset", "show", str(tmp_path)])
    assert isinstance(result.exception, ZeroDivisionError)  # raised: click prints the traceback
    assert len(list((state / "guitarlab").glob("crash-*.log"))) == 1  # no second log


def test_user_mistakes_and_usage_errors_stay_as_they_were(tmp_path: Path) -> None:
    runner = CliRunner(env={"XDG_STATE_HOME": str(tmp_path / "state")})
    result = runner.invoke(cli, ["dataset", "show", str(tmp_path / "none")])
    assert result.exit_code == 1 and "unexpected error" not in result.output
    result = runner.invoke(cli, ["dataset", "show", "--no-such-option"])
    assert result.exit_code == 2 and "No such option" in result.output
    assert not (tmp_path / "state").exists()


# ------------------------------------------------------------------ check


def test_check_goes_through_every_file_and_fails_if_any_did(tmp_path: Path) -> None:
    good = write_tone(tmp_path / "good.wav", seconds=3.0)
    clipped = write_tone(tmp_path / "clipped.wav", seconds=3.0, amplitude=1.5)
    broken = tmp_path / "broken.wav"
    broken.write_text("not audio")
    missing = tmp_path / "missing.wav"
    args = ["check", str(broken), str(missing), str(clipped), str(good)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    out = result.output
    assert f"{good}: ok" in out
    assert f"{clipped}:" in out and "clip" in out
    assert sum(line.startswith(f"{broken}:") for line in out.splitlines()) == 1
    assert f"{missing}: no such file" in out
    assert "Traceback" not in out
    assert CliRunner().invoke(cli, ["check", str(good)]).exit_code == 0


# ------------------------------------------------------------------ help


@pytest.mark.parametrize(
    "path", [p for p, _ in _walk(cli)] + [()], ids=lambda p: " ".join(p) or "guitarlab"
)
def test_every_command_and_group_help_has_an_example(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0
    assert re.search(r"^\s*Examples?\b", result.output, re.M), result.output
    assert f"guitarlab {' '.join(path)}".strip() in result.output.split("Example", 1)[1]


# ------------------------------------------------------------------ completion


def _complete(args: list[str], incomplete: str) -> list[str]:
    shell = BashComplete(cli, {}, "guitarlab", "_GUITARLAB_COMPLETE")
    return [item.value for item in shell.get_completions(args, incomplete)]


def test_completion_of_presets_guitars_and_run_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = post_corpus(tmp_path / "c", guitars=("ST", "LP"), tones=("raw",), seconds=1.0)
    (corpus / "presets").mkdir(exist_ok=True)
    (corpus / "presets" / "crunchy_room.json").write_text("{}")
    # presets: built-ins, the corpus's own after --corpus, the last name after a comma
    assert _complete(["augment", "--tones"], "cr") == ["crunch", "crunch_delay"]
    assert "crunchy_room" in _complete(["augment", "--corpus", str(corpus), "--tones"], "cr")
    assert _complete(["augment", "--tones"], "clean,dis") == ["clean,distorted"]
    assert "raw" in _complete(["import", "--tone"], "")
    # guitars of the corpus given before --guitar (importer names: ST -> stratocaster)
    guitars = complete.guitar_names(corpus)
    assert len(guitars) == 2
    assert _complete(["record", "--corpus", str(corpus), "--guitar"], "") == guitars
    assert _complete(["record", "--guitar"], "") == []  # no corpus typed yet: nothing
    assert complete.guitar_names(tmp_path / "nowhere") == []
    # run folders: those with a run.json, as typed (relative or in a subfolder)
    for name in ("run-a", "run-b", "not-a-run"):
        (tmp_path / "runs" / name).mkdir(parents=True)
    for name in ("run-a", "run-b"):
        (tmp_path / "runs" / name / "run.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    assert _complete(["evaluate"], "runs/") == ["runs/run-a", "runs/run-b"]
    assert _complete(["predict"], "runs/run-b") == ["runs/run-b"]
    assert _complete(["retrain", "--from"], "runs/n") == []
    monkeypatch.chdir(tmp_path / "runs")
    assert _complete(["evaluate"], "") == ["run-a", "run-b"]


def test_completion_names_match_the_corpus_layout() -> None:
    from guitarlab.corpus.manifest import MANIFEST_NAME, PRESETS_DIR
    from guitarlab.train.rundir import RUN_JSON

    assert (complete.MANIFEST_NAME, complete.PRESETS_DIR) == (MANIFEST_NAME, PRESETS_DIR)
    assert complete.RUN_JSON == RUN_JSON
    readme = (ROOT / "README.md").read_text()
    assert "_GUITARLAB_COMPLETE=bash_source guitarlab" in readme


# ------------------------------------------------------------------ the README's imports


def test_every_import_the_readme_and_docs_show_works() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    text = "\n".join(page.read_text() for page in pages)
    lines = re.findall(r"^\s*(from guitarlab[\w.]* import [^\n#]+)", text, re.M)
    assert any(line.startswith("from guitarlab import open_dataset") for line in lines)
    assert any(line.startswith("from guitarlab.synth.session import") for line in lines)
    for line in lines:
        exec(line.strip().rstrip("\\"), {})  # noqa: S102 - the docs' own line


def test_import_guitarlab_stays_light_and_names_its_api() -> None:
    code = (
        "import sys, guitarlab; heavy = [m for m in ('pandas', 'tensorflow', 'matplotlib') "
        "if m in sys.modules]; from guitarlab import open_dataset, evaluate_run; "
        "print(heavy, open_dataset.__module__, 'tensorflow' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.stdout.split() == ["[]", "guitarlab.datasets.folder", "False"], done.stderr
    import guitarlab

    assert set(guitarlab.PUBLIC_API) <= set(dir(guitarlab))
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        guitarlab.nothing  # noqa: B018


# ------------------------------------------------------------------ umask


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_dataset_and_output_folders_honour_the_umask(tmp_path: Path, umask: int) -> None:
    from guitarlab.corpus.atomic import atomic_folder

    corpus = post_corpus(tmp_path / "c", tones=("raw",), seconds=3.0)
    previous = os.umask(umask)
    try:
        result = CliRunner().invoke(
            cli, ["dataset", "build", "--corpus", str(corpus), "--out", str(tmp_path / "ds")]
        )
        with atomic_folder(tmp_path / "export") as work:
            (work / "a.txt").write_text("a")
    finally:
        os.umask(previous)
    assert result.exit_code == 0, result.output
    expected = 0o777 & ~umask
    assert (tmp_path / "ds").stat().st_mode & 0o777 == expected
    assert (tmp_path / "export").stat().st_mode & 0o777 == expected


# ------------------------------------------------------------------ progress


def test_train_progress_is_a_bar_on_a_terminal_and_a_line_per_epoch_in_a_log(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from guitarlab.train.callbacks import keras_verbose

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert keras_verbose(1) == 1  # Keras's bar: per batch, with its ETA
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False)
    assert keras_verbose(1) == 2  # one line per epoch
    assert keras_verbose(0) == 0


def test_evaluate_prints_its_steps_on_stderr(tmp_path: Path) -> None:
    corpus = post_corpus(tmp_path / "c", tones=("raw", "clean"), seconds=4.0)
    runner = CliRunner()
    ds, run = str(tmp_path / "ds"), str(tmp_path / "run")
    assert (
        runner.invoke(cli, ["dataset", "build", "--corpus", str(corpus), "--out", ds]).exit_code
        == 0
    )
    result = runner.invoke(cli, ["train", "--dataset", ds, "--out", run, "--model", "features"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["evaluate", run])
    assert result.exit_code == 0, result.output
    steps = [line for line in result.stderr.splitlines() if line.startswith("evaluate:")]
    assert [s.split(" ")[1] for s in steps] == ["loading", "predicting", "scoring", "writing"]
    assert re.search(r"predicting \d+ test files \(\d+ windows\)", steps[1])
    assert "evaluate:" not in result.stdout  # the tables stay clean for a pipe


def test_retrain_prints_its_steps(tmp_path: Path) -> None:
    corpus = post_corpus(tmp_path / "c", tones=("raw",), seconds=4.0)
    runner = CliRunner()
    ds, run = str(tmp_path / "ds"), str(tmp_path / "run")
    assert (
        runner.invoke(cli, ["dataset", "build", "--corpus", str(corpus), "--out", ds]).exit_code
        == 0
    )
    assert (
        runner.invoke(
            cli, ["train", "--dataset", ds, "--out", run, "--model", "features"]
        ).exit_code
        == 0
    )
    out = str(tmp_path / "again")
    result = runner.invoke(cli, ["retrain", "--corpus", str(corpus), "--from", run, "--out", out])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()

    def where(text: str) -> int:  # in the line (a progress bar may share it without \n)
        return next(i for i, line in enumerate(lines) if text in line)

    building, training = where("(the old test spans kept)"), where("training from scratch")
    comparing = where("comparing the old and new models")
    assert building < training < comparing  # a features run is trained again, not fine-tuned
    assert "on the same 2 test files" in lines[comparing]
