"""Augment commands: ``augment`` (render takes through tones) and ``presets list/show``."""

from __future__ import annotations

import json

import click

from guitarlab.commands import (
    QUIET_OPTION,
    Names,
    corpus_option,
    engine_options,
    library_option,
)
from guitarlab.commands.complete import complete_presets

RENDER = "guitarlab.augment.renders:render_corpus"  # its parameters hold augment's defaults
CORPUS_OPTION_HELP = "Corpus folder; its presets/ folder adds to or overrides the built-ins."


@click.command("augment")
@corpus_option("Corpus folder to render.")
@library_option(
    "--tones",
    type=Names(),
    default=RENDER + "(tones)",
    shell_complete=complete_presets,
    help="Comma-separated preset names ('guitarlab presets list' shows them).",
)
@click.option(
    "--where",
    multiple=True,
    help="Only raw takes matching column=value (repeatable; same column = either) or a "
    'condition such as "fret >= 10" (numbers compare as numbers; the language of dataset build).',
)
@library_option(
    "--workers",
    default=RENDER + "(workers)",
    type=int,
    help="Files rendered in parallel: threads, or with --engine dask and no --scheduler the "
    "LocalCluster's worker processes.",
)
@engine_options(
    default=RENDER + "(engine)",
    here="Render in this process",
    shared="the corpus",
    workers="--workers",
)
@library_option(
    "--retries",
    default=RENDER + "(retries)",
    type=click.IntRange(0),
    help="With --engine dask: tries again for a failed file before it is reported.",
)
@library_option(
    "--randomize",
    default=RENDER + "(randomize)",
    type=int,
    help="Also render N random variants of each preset, drawn from its ranges.",
)
@library_option("--seed", default=RENDER + "(seed)", type=int, help="Seed of the random variants.")
@library_option(
    "--match-levels/--no-match-levels",
    type=bool,
    default=RENDER + "(match_levels)",
    help="Trim each take by its gain_db before the amp, so every guitar drives it equally.",
)
@QUIET_OPTION
def augment_command(
    corpus: str,
    tones: tuple[str, ...],
    where: tuple[str, ...],
    workers: int,
    engine: str,
    scheduler: str | None,
    retries: int,
    randomize: int,
    seed: int,
    match_levels: bool,
    quiet: bool,
) -> None:
    """Render every raw take in CORPUS through tone presets into tones/.

    Only renders that are missing (no row yet for that take, tone and preset hash) are
    made, so running it again does nothing and a killed run finishes the rest. An edited
    preset renders again under a new id; nothing is overwritten. Every take enters the
    chain at the matched level (trimmed by its gain_db), as the post matched the guitars'
    input levels, unless --no-match-levels.

    With --engine dask the workers of a Dask cluster render and write the files, and this
    process alone writes the manifest rows: the same files (same sha256) as --engine
    local. A failed file is retried, then reported by id with exit code 1.

    \b
    Examples:
      guitarlab augment --corpus my-corpus --tones clean,crunch,distorted
      guitarlab augment --corpus my-corpus --tones crunch_delay --where guitar=les_paul --workers 2
      guitarlab augment --corpus my-corpus --tones crunch --randomize 4 --seed 7
      guitarlab augment --corpus my-corpus --engine dask --workers 2
      guitarlab augment --corpus /shared/my-corpus --engine dask --scheduler tcp://host:8786
    """
    from guitarlab.augment.renders import render_corpus

    added = render_corpus(
        corpus,
        tones=tones,
        where=list(where) or None,
        workers=workers,
        randomize=randomize,
        seed=seed,
        match_levels=match_levels,
        progress=not quiet,
        engine=engine,
        scheduler=scheduler,
        retries=retries,
    )
    if added:
        click.echo(f"rendered {len(added)} file(s) into {corpus}/tones")
    else:
        click.echo("nothing to render: every selected take already has these tones")


@click.group("presets")
def presets_group() -> None:
    """List and show tone presets (built-in and the corpus's own).

    \b
    Examples:
      guitarlab presets list
      guitarlab presets list --corpus my-corpus
      guitarlab presets show crunch
    """


@presets_group.command("list")
@corpus_option(CORPUS_OPTION_HELP, required=False)
def presets_list(corpus: str | None) -> None:
    """One line per preset: name, hash, where it comes from and what it sounds like.

    \b
    Example:
      guitarlab presets list --corpus my-corpus
    """
    from guitarlab.augment.presets import BUILTIN_PRESETS_DIR, load_presets, preset_hash

    broken: list = []
    presets = load_presets(corpus, broken=broken)
    width = max(len(name) for name in presets)
    for name, preset in presets.items():
        origin = "built-in" if preset["_dir"] == str(BUILTIN_PRESETS_DIR) else "corpus"
        click.echo(
            f"{name:<{width}}  {preset_hash(preset)}  {origin:<8}  {preset.get('description', '')}"
        )
    for path, reason in broken:
        click.echo(f"{path.stem:<{width}}  BROKEN        {reason}")


@presets_group.command("show")
@click.argument("name")
@corpus_option(CORPUS_OPTION_HELP, required=False)
def presets_show(name: str, corpus: str | None) -> None:
    """Print preset NAME as JSON after checking it builds (its file and hash go to stderr).

    Redirect it into the corpus's presets/ folder to edit it for that corpus (the file
    name is the preset name: crunch.json overrides crunch, my_fuzz.json adds my_fuzz).

    \b
    Example:
      guitarlab presets show crunch > my-corpus/presets/crunch.json
    """
    from guitarlab.augment.presets import chain_from_preset, get_presets, preset_hash

    (preset,) = get_presets([name], corpus)
    chain_from_preset(preset)
    click.echo(f"file: {preset['_file']}", err=True)
    click.echo(f"preset_hash: {preset_hash(preset)}", err=True)
    public = {k: v for k, v in preset.items() if not k.startswith("_")}
    click.echo(json.dumps(public, indent=2))


COMMANDS = [augment_command, presets_group]
