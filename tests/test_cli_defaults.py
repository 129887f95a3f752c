"""The command line copies no library default: each option's default, and each number its
help shows as a default, is read from the library (issue 34: one way to say each thing).

Three checks: every option tied to the library shows and uses the library's value; every
option named like a parameter of the function (or config field) its command calls
defaults to that very value (or None: the library decides); and no command module writes
a literal default or a ``[default: <number>`` into a help, outside a short list of values
the command line itself owns.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
from pathlib import Path

import click
import pytest

from guitarlab.cli import cli
from guitarlab.commands import LibraryCommand, LibraryDefault, LibraryOption

COMMANDS_DIR = Path(__file__).resolve().parents[1] / "guitarlab" / "commands"

# Literal defaults the command line owns, each for a reason no library function holds
OWN_DEFAULTS = {
    ("corpus.py", "--take"),  # import: 'auto' is a mode of the command's take grouping
    ("review.py", "--port"),  # the command itself serves the app (uvicorn)
    ("workflow.py", "--out"),  # demo: the folder name in the current directory
}


def _walk(command: click.Command, path: tuple[str, ...] = ()):
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from _walk(sub, (*path, name))
    else:
        yield path, command


ALL = list(_walk(cli))


def _options(command: click.Command) -> list[click.Option]:
    return [p for p in command.params if isinstance(p, click.Option)]


@pytest.mark.parametrize("path,command", ALL, ids=[" ".join(p) for p, _ in ALL])
def test_every_library_default_resolves_and_the_help_shows_it(path, command) -> None:
    """A renamed library name fails here, not in a user's hands; the value the help shows
    is the value the command gets."""
    ctx = click.Context(command, info_name=path[-1])
    for option in _options(command):
        raw = option.get_default(ctx, call=False)
        if isinstance(raw, LibraryDefault):
            value = raw.resolve(strict=True)  # a renamed name or parameter fails here
            got = option.type_cast_value(ctx, option.get_default(ctx))
            expected = tuple(value) if isinstance(value, (list, tuple)) else value
            assert got == expected, (path, option.name)
            help_text = " ".join(option.get_help_record(ctx)[1].split())
            if not (option.is_bool_flag and option.secondary_opts):
                assert f"default: {raw}" in help_text, (path, option.name, help_text)
        if isinstance(option, LibraryOption):  # every {name} in its help filled in
            help_text = option.get_help_record(ctx)[1]
            left = [key for key in option.library if "{" + key + "}" in help_text]
            assert not left, (path, option.name, help_text)
    if isinstance(command, LibraryCommand):  # the command's own help too
        for value in command.library.values():
            value.resolve(strict=True)
        help_text = command.get_help(ctx)
        assert not [key for key in command.library if "{" + key + "}" in help_text], path


def test_session_help_states_the_shot_lists_own_defaults() -> None:
    """A blank cell's defaults in ``session --help`` are the shot list's, and record_take
    clicks at the tempo a blank bpm means (one constant, corpus.defaults.BPM)."""
    from guitarlab.corpus.defaults import BPM
    from guitarlab.recorder.session import record_take
    from guitarlab.recorder.shotlist import NUMBER_FIELDS, Shot

    command = dict(ALL)[("session",)]
    help_text = " ".join(command.get_help(click.Context(command, info_name="session")).split())
    takes, seconds, bpm = (NUMBER_FIELDS[name] for name in ("takes", "seconds", "bpm"))
    assert f"(blank: {takes} take, {seconds:g} s, {bpm:g} bpm)" in help_text
    shot = Shot(line=1, labels={"guitar": "strat", "phrase": "lead"})
    assert (shot.takes, shot.seconds, shot.bpm) == (takes, seconds, bpm)
    assert bpm == BPM == inspect.signature(record_take).parameters["bpm"].default


def _library_defaults(target) -> dict:
    """name -> default of a config dataclass's fields or a function's parameters."""
    if dataclasses.is_dataclass(target):
        return {
            f.name: f.default
            for f in dataclasses.fields(target)
            if f.default is not dataclasses.MISSING
        }
    return {
        name: p.default
        for name, p in inspect.signature(target).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def _callees():
    """Each command, the library function (or config) it calls, and its options' other names."""
    from guitarlab.augment.renders import render_corpus
    from guitarlab.corpus.audit import check_manifest
    from guitarlab.datasets.export import export_corpus
    from guitarlab.datasets.plan import BuildConfig
    from guitarlab.recorder.reamp import reamp_corpus
    from guitarlab.recorder.session import record_take, record_takes
    from guitarlab.synth.takes import synth_to_corpus
    from guitarlab.train.config import TrainConfig

    return [
        (("train",), TrainConfig, {"input_kind": "input"}),
        (("dataset", "build"), BuildConfig, {}),
        (("export",), export_corpus, {"format_": "format", "license_": "license"}),
        (("augment",), render_corpus, {}),
        (("synth",), synth_to_corpus, {"rate": "sample_rate"}),
        (("record",), record_take, {"click_on": "click", "target_peak": "target_peak_dbfs"}),
        (("record",), record_takes, {"n_takes": "takes", "pause": "pause_s"}),
        (("session",), record_take, {"click_on": "click"}),
        (("reamp",), reamp_corpus, {"input_channel": "channel"}),
        (("manifest", "check"), check_manifest, {}),
    ]


def _command(path: tuple[str, ...]) -> click.Command:
    return dict(ALL)[path]


@pytest.mark.parametrize("index", range(10))
def test_an_option_named_like_a_library_parameter_has_the_librarys_default(index) -> None:
    """The value ``--help`` shows (and the command passes on) is the library's own, or
    None where the library decides from the other options."""
    path, target, renamed = _callees()[index]
    command = _command(path)
    library = _library_defaults(target)
    ctx = click.Context(command, info_name=path[-1])
    checked = 0
    for option in _options(command):
        name = renamed.get(option.name, option.name)
        if name not in library or option.multiple or option.name in ("corpus", "out", "quiet"):
            continue
        value = option.type_cast_value(ctx, option.get_default(ctx))
        if value is None or (option.is_flag and not option.secondary_opts and value is False):
            continue  # the library decides, or a plain flag off: the library's False
        want = library[name]
        want = tuple(want) if isinstance(want, list) else want
        assert value == want, f"{' '.join(path)} --{option.name}: {value!r} != {want!r}"
        checked += 1
    assert checked >= 1, (path, checked)  # the walk did compare something


def _literal_defaults(path: Path):
    """(option, value) of every ``default=`` written as a literal in a click option, and
    every help string that states a number as a default."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            first = node.args[0] if node.args else None
            option = first.value if isinstance(first, ast.Constant) else "?"
            for kw in node.keywords:
                if kw.arg != "default":
                    continue
                value = kw.value
                if name == "library_option":  # a target, checked by resolving it above
                    continue
                if isinstance(value, (ast.UnaryOp, ast.Call, ast.BoolOp)):  # -12.0, os.cpu_count()
                    yield option, ast.unparse(value)
                elif isinstance(value, ast.Constant) and value.value not in (None, False, ""):
                    yield option, value.value
        is_text = isinstance(node, ast.Constant) and isinstance(node.value, str)
        if is_text and re.search(r"default: -?\d", node.value):
            yield "help", node.value


@pytest.mark.parametrize("module", sorted(p.name for p in COMMANDS_DIR.glob("*.py")))
def test_no_command_module_writes_a_default_of_its_own(module: str) -> None:
    """A copy coming back (``default=0.8``, ``[default: 60]``) fails here: take it from
    the library (``default=TrainConfig.dropout``, ``library_option``, ``{name}`` in the
    help), or pass None and let the library decide."""
    found = [
        (option, value)
        for option, value in _literal_defaults(COMMANDS_DIR / module)
        if (module, option) not in OWN_DEFAULTS
    ]
    assert not found, f"{module}: defaults written in the command line: {found}"


def test_a_copy_is_caught(tmp_path: Path) -> None:
    """The scan above finds a literal default and a number in a help's default."""
    source = tmp_path / "copy.py"
    source.write_text(
        "import click\n"
        "@click.option('--dropout', default=0.8)\n"
        "@click.option('--gate', default=-60.0)\n"
        "@click.option('--cells', default=None, help='LSTM cells [default: 8].')\n"
        "@click.option('--jobs', default=os.cpu_count() or 1)\n"
        "def f(dropout, gate, cells, jobs): pass\n"
    )
    found = [("--dropout", 0.8), ("--gate", "-60.0"), ("help", "LSTM cells [default: 8].")]
    found.append(("--jobs", "os.cpu_count() or 1"))  # computed in the command line
    assert sorted(map(str, _literal_defaults(source))) == sorted(map(str, found))


def test_guitarlab_help_loads_no_numpy_pandas_or_pedalboard() -> None:
    """Reading the defaults lazily keeps numpy and pandas out of ``guitarlab --help``."""
    import subprocess
    import sys

    code = (
        "import sys, guitarlab.cli; "
        "print([m for m in ('numpy', 'pandas', 'pedalboard') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_stage_help_loads_no_scipy_signal() -> None:
    """``synth --help`` and ``augment --help`` read their library's defaults, which loads
    the stage; scipy.signal (about 1 s to import) waits until a take is filtered."""
    import subprocess
    import sys

    code = (
        "import sys; from guitarlab.cli import cli; from click.testing import CliRunner; "
        "[CliRunner().invoke(cli, [name, '--help']) for name in ('synth', 'augment')]; "
        "print('scipy.signal' in sys.modules, 'guitarlab.synth.render' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]  # the stage loaded, scipy.signal not


class _NoValidation:
    """A dataset folder stand-in whose validation split is empty."""

    def arrays(self, split: str):
        return [], []


def test_auto_has_one_network_candidate_and_one_validation_check(tmp_path, monkeypatch) -> None:
    """``--model auto`` trains the run's own network (laptop by default, the full model
    with --full-model, what the user gave either way), and both the default choice and
    fit_auto refuse a dataset without validation in the same words."""
    from guitarlab.corpus.errors import TrainError
    from guitarlab.train.auto import default_model, fit_auto, network_candidate
    from guitarlab.train.config import FULL_MODEL, TrainConfig, train_config

    laptop = network_candidate(train_config(model="auto"))
    assert laptop.model == "lstm-fcn" and laptop.filters == TrainConfig().filters
    full = network_candidate(train_config(model="auto", full_model=True, epochs=2))
    assert full.filters == FULL_MODEL["filters"] and full.input == FULL_MODEL["input"]
    assert full.epochs == 2  # given on the command line: it applies to the candidate too
    with pytest.raises(TrainError) as refused:
        fit_auto(
            "ds",
            tmp_path / "run",
            TrainConfig(model="auto"),
            dataset_factory=lambda _: _NoValidation(),
        )
    assert "no validation split" in str(refused.value) and "--val take" in str(refused.value)
    assert not (tmp_path / "run" / "candidates").exists()  # refused before training anything
    monkeypatch.setattr("guitarlab.datasets.folder.open_dataset", lambda _: _NoValidation())
    model, why = default_model(dataset_dir="ds", out=tmp_path / "other")
    assert model == "lstm-fcn" and str(refused.value) in why
