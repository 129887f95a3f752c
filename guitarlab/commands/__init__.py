"""Command modules, one per stage; each exposes a ``COMMANDS`` list of click commands."""

import math

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
