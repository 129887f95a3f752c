"""Command modules, one per stage; each exposes a ``COMMANDS`` list of click commands."""

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
