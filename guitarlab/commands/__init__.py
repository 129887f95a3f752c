"""Command modules, one per stage; each exposes a ``COMMANDS`` list of click commands."""

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


class LibraryDefault:
    """A value the library owns, read when click needs it: a run, or that command's --help.

    Why: a command only parses options; each default is written once, in the library (a
    config dataclass's field, a function's parameter, a module constant), and the option
    shows and uses that value. Reading it at import time would load numpy, pandas or
    pedalboard for every ``guitarlab --help`` and every tab completion.

    ``target`` is ``"module:Name.attr"`` (a constant, a dataclass field's default, a key of
    a dict constant) or ``"module:function(param)"`` (a parameter's default).

    Examples
    --------
    >>> str(LibraryDefault("guitarlab.corpus.defaults:WINDOW"))
    '8000'
    """

    def __init__(self, target: str) -> None:
        self.target = target

    def __call__(self) -> Any:
        module, _, path = self.target.partition(":")
        path, _, param = path.partition("(")
        value: Any = importlib.import_module(module)
        for part in path.split("."):
            value = value[part] if isinstance(value, dict) else getattr(value, part)
        if param:
            return inspect.signature(value).parameters[param.rstrip(")")].default
        return value

    def __str__(self) -> str:
        value = self()
        if isinstance(value, (tuple, list)):
            return ",".join(str(v) for v in value)  # as an option takes it: 16,32,16
        return f"{value:g}" if isinstance(value, float) else str(value)

    def __bool__(self) -> bool:
        return bool(self())

    def __repr__(self) -> str:
        return f"LibraryDefault({self.target!r})"


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
        self.help = raw.format(**{key: str(value) for key, value in self.library.items()})
        try:
            return super().get_help_record(ctx)
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
