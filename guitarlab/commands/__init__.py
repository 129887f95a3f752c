"""Command modules, one per stage; each exposes a ``COMMANDS`` list of click commands.

Here: the options several commands share (declared once), and how an option takes its
default, its choices and the numbers in its help from the library (:class:`LibraryDefault`,
:func:`library_option`, :class:`LibraryChoice`): a command keeps no default of its own.
"""

import importlib
import inspect
import math
from collections.abc import Callable
from typing import Any

import click


def corpus_option(help_text: str = "Corpus folder.", *, required: bool = True):
    """The ``--corpus CORPUS`` option every stage command shares."""
    return click.option(
        "--corpus",
        required=required,
        default=None,
        type=click.Path(file_okay=False),
        help=help_text,
    )


# ``--quiet``: the stages that draw a progress bar (synth, augment, dataset build, export)
QUIET_OPTION = click.option("--quiet", is_flag=True, help="No progress bar.")


def user_option():
    """``--user``: who edits, for history.jsonl (``review``, ``labels import``); None lets
    the library take the login name."""
    return click.option(
        "--user", default=None, help="Name written to history.jsonl [default: your login]."
    )


class FiniteRange(click.FloatRange):
    """``click.FloatRange`` that also refuses ``nan`` and, with no bound on that side, ``inf``.

    Why: ``nan`` compares false with both bounds, so ``--seconds nan`` or ``--gate-dbfs nan``
    would pass a plain FloatRange and then silently turn every comparison false downstream;
    ``inf`` passes an open-ended range and overflows the first conversion to samples.
    """

    def convert(self, value, param, ctx):
        rv = super().convert(value, param, ctx)
        if not math.isfinite(rv):
            self.fail(
                f"{value!r} is not a finite number; give one in the range "
                f"{self._describe_range()}.",
                param,
                ctx,
            )
        return rv


def _renamed(param: click.Parameter | None, old: str, new: str) -> str:
    """Say on stderr, in one line, that ``old`` is now ``new``; return ``new``."""
    name = param.opts[0] if param is not None and param.opts else "the value"
    click.echo(f"{name} {old} is renamed to {new}", err=True)
    return new


class RenamedChoice(click.Choice):
    """``click.Choice`` that still takes old names (``renamed``: old -> new), each with one
    line on stderr; help and completion show only the new names.

    Why: scripts written before a rename keep working (issue 34: ``--protocol seed`` is
    ``post``, the 2019 post's experiment, since "seed" means only a random seed).
    """

    def __init__(self, choices, *, renamed: dict[str, str]) -> None:
        super().__init__(choices)
        self.renamed = dict(renamed)

    def convert(self, value, param, ctx):
        if isinstance(value, str) and value in self.renamed:
            value = _renamed(param, value, self.renamed[value])
        return super().convert(value, param, ctx)


def renamed_value(old: str, new: str) -> Callable:
    """A click callback for a free-text option whose value ``old`` was renamed ``new``
    (``import --pattern seed`` is ``post``): one line on stderr, then ``new``."""

    def callback(ctx: click.Context, param: click.Parameter, value):
        return _renamed(param, old, new) if value == old else value

    return callback


class LibraryDefault:
    """A value the library owns, read when click needs it: a run, or that command's --help.

    Why: a command only parses options; each default is written once, in the library (a
    config dataclass's field, a function's parameter, a module constant), and the option
    shows and uses that value. Reading it at import time would load numpy, pandas or
    pedalboard for every ``guitarlab --help`` and every tab completion.

    ``target`` is ``"module:Name.attr"`` (a constant, a dataclass field's default, a key of
    a dict constant, an index of a tuple) or ``"module:function(param)"`` (a parameter's
    default).

    Examples
    --------
    >>> str(LibraryDefault("guitarlab.corpus.defaults:WINDOW"))
    '8000'
    """

    def __init__(self, target: str) -> None:
        self.target = target

    def __call__(self) -> Any:
        return self.resolve(strict=False)

    def resolve(self, *, strict: bool = True) -> Any:
        """The library's value. Not ``strict`` (what click calls): a function that lacks the
        parameter, or gives it no default (a test's stand-in), gives None, so the callee
        decides; ``strict`` raises instead (tests check every target that way)."""
        module, _, path = self.target.partition(":")
        path, _, param = path.partition("(")
        value: Any = importlib.import_module(module)
        for part in path.split("."):
            if isinstance(value, dict):
                value = value[part]
            elif isinstance(value, (tuple, list)):
                value = value[int(part)]
            else:
                value = getattr(value, part)
        if param:
            found = inspect.signature(value).parameters.get(param.rstrip(")"))
            if found is None or found.default is inspect.Parameter.empty:
                if strict:
                    raise LookupError(f"{self.target}: no such parameter with a default")
                return None
            return found.default
        return value

    def __str__(self) -> str:
        value = self()
        if isinstance(value, (tuple, list)):
            return ",".join(str(v) for v in value)  # as an option takes it: 16,32,16
        return f"{value:g}" if isinstance(value, float) else str(value)

    def __format__(self, spec: str) -> str:
        """``{name}`` as :meth:`__str__`; ``{name:/}`` joins a tuple with ``/`` (16/32/16)."""
        value = self()
        if spec and isinstance(value, (tuple, list)):
            return spec.join(str(v) for v in value)
        return format(str(self), spec)

    def __bool__(self) -> bool:
        return bool(self())

    def __repr__(self) -> str:
        return f"LibraryDefault({self.target!r})"


class _Kept(dict):
    """Format values that leave any other ``{name}`` (a file-name template) as written."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


class LibraryOption(click.Option):
    """An option whose help may name library values: ``{name}`` in the help is filled in
    from ``library={"name": "module:Name.attr"}`` when the help is shown."""

    def __init__(self, *args, library: dict[str, str] | None = None, **kwargs) -> None:
        self.library = {key: LibraryDefault(target) for key, target in (library or {}).items()}
        super().__init__(*args, **kwargs)

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        if not self.library or not self.help:
            return super().get_help_record(ctx)
        raw = self.help
        values = _Kept(self.library)
        self.help = raw.format_map(values)
        try:
            return super().get_help_record(ctx)
        finally:
            self.help = raw


class LibraryCommand(click.Command):
    """A command whose help names library values: ``{name}`` in its docstring is filled in
    from ``library={"name": "module:Name.attr"}`` when the help is shown, as
    :class:`LibraryOption` does for an option's help (``click.command(cls=LibraryCommand,
    library=...)``)."""

    def __init__(self, *args, library: dict[str, str] | None = None, **kwargs) -> None:
        self.library = {key: LibraryDefault(target) for key, target in (library or {}).items()}
        super().__init__(*args, **kwargs)

    def format_help_text(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        raw = self.help
        if self.library and raw:
            self.help = raw.format_map(_Kept(self.library))
        try:
            super().format_help_text(ctx, formatter)
        finally:
            self.help = raw


def library_option(
    *decls: str,
    type: Any,
    default: str | None = None,
    library: dict[str, str] | None = None,
    **attrs: Any,
) -> Callable:
    """``click.option`` taking its default from the library: ``default`` is a
    :class:`LibraryDefault` target (shown as ``[default: ...]``), or None to pass None and
    let the library decide (the help then says what it decides, with ``{name}`` filled
    in from ``library``). ``type`` is required: click cannot guess it from a lazy default.
    """
    if default is not None:
        attrs.setdefault("show_default", True)
    return click.option(
        *decls,
        cls=LibraryOption,
        type=type,
        default=None if default is None else LibraryDefault(default),
        library=library,
        **attrs,
    )


class Names(click.ParamType):
    """Comma-separated names (``clean,crunch``) as a tuple; a library default's tuple as is."""

    name = "names"

    def convert(self, value, param, ctx) -> tuple[str, ...]:
        if isinstance(value, (tuple, list)):
            return tuple(str(v) for v in value)
        return tuple(part.strip() for part in str(value).split(",") if part.strip())


class LibraryChoice(RenamedChoice):
    """``click.Choice`` over a tuple the library owns (``"module:NAME"``), read when click
    first checks a value or shows the help, like :class:`LibraryDefault`; old names in
    ``renamed`` still work, as in :class:`RenamedChoice`."""

    def __init__(self, target: str, *, renamed: dict[str, str] | None = None) -> None:
        self.source = LibraryDefault(target)  # click.Choice's own __init__ stores a list
        self.case_sensitive = True
        self.renamed = dict(renamed or {})

    @property
    def choices(self) -> tuple:  # type: ignore[override]
        return tuple(self.source())


def engine_options(*, default: str, here: str, shared: str, workers: str) -> Callable:
    """``--engine`` and ``--scheduler``, declared once for every stage that runs on Dask.

    ``default`` is the library's engine default (a :class:`LibraryDefault` target);
    ``here`` says how the stage works without Dask, ``shared`` which folders every
    worker must see, ``workers`` the option that sizes a LocalCluster.
    """
    engine = library_option(
        "--engine",
        type=LibraryChoice("guitarlab.corpus.cluster:ENGINES"),
        default=default,
        help=f"{here}, or on a Dask distributed cluster (pip install 'guitarlab[dask]'; "
        f"{shared} must be on a filesystem every worker sees at the same path).",
    )
    scheduler = click.option(
        "--scheduler",
        default=None,
        help="With --engine dask: the scheduler's address, e.g. tcp://host:8786 [default: "
        f"start a LocalCluster of {workers} processes on this machine].",
    )

    def decorate(command: Callable) -> Callable:
        return engine(scheduler(command))

    return decorate
