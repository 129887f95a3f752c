"""``guitarlab synth``: raw takes from the synthetic guitar into a corpus (no hardware)."""

from __future__ import annotations

import click

from guitarlab.commands import QUIET_OPTION, FiniteRange, Names, corpus_option, library_option
from guitarlab.corpus.defaults import MAX_TAKE_SECONDS

SYNTH = "guitarlab.synth.takes:synth_to_corpus"  # its parameters hold synth's defaults
TAKES = "guitarlab.synth.takes:"
# A knob's default, lowest and highest value: synth.render.OPTIONS[name][:3], filled in
# when the help is shown as {name}, {name_low} and {name_high}
KNOBS = {
    f"{name}{end}": f"guitarlab.synth.render:OPTIONS.{name}.{index}"
    for index, end in enumerate(("", "_low", "_high"))
    for name in (
        "tone_knob",
        "volume_knob",
        "string_gauge",
        "pick_attack",
        "dynamics_db",
        "humanize_ms",
        "mains_hz",
        "preamp_gain_db",
    )
}


def _print_family(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from guitarlab.synth.family import family_table

    click.echo(family_table())
    ctx.exit()


def _option_pairs(pairs: tuple[str, ...]) -> dict:
    options = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="--option")
        options[name.strip()] = value.strip()
    return options


@click.command("synth")
@click.option(
    "--list",
    "list_family",
    is_flag=True,
    is_eager=True,
    expose_value=False,
    callback=_print_family,
    help="Print the guitar family (pickup type, switch positions, coils) and exit. Example: guitarlab synth --list",
)
@corpus_option("Corpus folder (created if missing).")
@library_option(
    "--guitars",
    type=Names(),
    default=SYNTH + "(guitars)",
    help="Comma-separated guitars (see --list), 'all', or a pickup type (single_coil, humbucker, p90). Example: --guitars all",
)
@click.option(
    "--randomize",
    is_flag=True,
    help="Draw per take the switch position, tone/volume knobs, cable, pick attack and position, strings, hum (down to none), noise, interface gain, timing, tempo and key; kept in synth_params. Options given explicitly override the draws. Example: guitarlab synth --corpus C --guitars all --randomize --takes 2 --seconds 10",
)
@click.option(
    "--builds",
    is_flag=True,
    help="With --randomize: each take is also another instrument of its guitar's model, its pickups placed (x0.8-1.25), sized and wound (x0.75-1.33) differently (pickup_place, pickup_width, pickup_winding in synth_params). Example: guitarlab synth --corpus C --guitars all --randomize --builds --takes 2",
)
@library_option(
    "--notes",
    is_flag=True,
    type=bool,
    library={"note": TAKES + "NOTE_SECONDS"},
    help="Instead of phrases, one file per string (1 = high e .. 6 = low E) x fret 0-12 plus a few chords: a pluck after a short silence, ringing out (--seconds defaults to {note}). Adds string and fret columns. Example: guitarlab synth --corpus C --guitars all --notes --randomize",
)
@library_option(
    "--phrases", type=Names(), default=SYNTH + "(phrases)", help="Comma-separated phrases."
)
@library_option("--takes", type=int, default=SYNTH + "(takes)", help="Takes per guitar and phrase.")
@click.option(
    "--first-take",
    type=int,
    default=None,
    help="Take number to start at (default: after the highest one in the corpus). Takes already there with the same parameters are skipped.",
)
@library_option(
    "--seconds",
    type=FiniteRange(0, MAX_TAKE_SECONDS, min_open=True),
    library={"phrase": TAKES + "PHRASE_SECONDS", "note": TAKES + "NOTE_SECONDS"},
    help=f"Length of each take, at most {MAX_TAKE_SECONDS:g} (a take is rendered in memory) "
    "[default: {phrase}; {note} with --notes].",
)
@library_option("--seed", type=int, default=SYNTH + "(seed)", help="Seed of the performances.")
@library_option("--bpm", type=float, default=SYNTH + "(bpm)", help="Tempo.")
@library_option("--key", type=str, default=SYNTH + "(key)", help="Key, e.g. A, E, F#, Bb.")
@library_option("--rate", type=int, default=SYNTH + "(sample_rate)", help="Sample rate in Hz.")
@click.option(
    "--pickup-position",
    default=None,
    help="Selector position for every guitar (see --list; stratocaster: bridge, bridge+middle, middle, middle+neck, neck; the others: neck, both, bridge). Default: each guitar's own. Example: --pickup-position neck",
)
@library_option(
    "--tone-knob",
    type=float,
    library=KNOBS,
    help="Tone pot {tone_knob_low}-{tone_knob_high} [default: {tone_knob}].",
)
@library_option(
    "--volume-knob",
    type=float,
    library=KNOBS,
    help="Volume pot {volume_knob_low}-{volume_knob_high} [default: {volume_knob}].",
)
@library_option(
    "--string-gauge",
    type=float,
    library=KNOBS,
    help="High-e gauge, {string_gauge_low}-{string_gauge_high} thousandths "
    "[default: {string_gauge}].",
)
@library_option(
    "--pick-attack",
    type=float,
    library=KNOBS,
    help="{pick_attack_low} soft .. {pick_attack_high} hard pick [default: {pick_attack}].",
)
@library_option(
    "--dynamics-db",
    type=float,
    library=KNOBS,
    help="Spread of note levels, {dynamics_db_low}-{dynamics_db_high} dB [default: {dynamics_db}].",
)
@library_option(
    "--humanize-ms",
    type=float,
    library=KNOBS,
    help="Extra timing jitter, {humanize_ms_low}-{humanize_ms_high} ms [default: {humanize_ms}].",
)
@library_option(
    "--mains-hz", type=float, library=KNOBS, help="Hum frequency, 50 or 60 [default: {mains_hz}]."
)
@library_option(
    "--preamp-gain-db",
    type=float,
    library=KNOBS,
    help="Interface gain, {preamp_gain_db_low}..{preamp_gain_db_high} dB; too hot clips "
    "[default: {preamp_gain_db}].",
)
@click.option(
    "--option",
    "extra",
    multiple=True,
    metavar="NAME=VALUE",
    help="Any other synth option (hum, cable_pf, resonance_hz, noise_floor_dbfs); repeatable.",
)
@library_option(
    "--jobs",
    type=click.IntRange(0),
    default=SYNTH + "(jobs)",
    help="Takes rendered in parallel: processes (0: every core). The files are the same bit "
    "for bit.",
)
@QUIET_OPTION
def synth_command(
    corpus: str,
    guitars: tuple[str, ...],
    randomize: bool,
    builds: bool,
    notes: bool,
    phrases: tuple[str, ...],
    takes: int,
    first_take: int | None,
    seconds: float | None,
    seed: int,
    bpm: float,
    key: str,
    rate: int,
    pickup_position: str | None,
    tone_knob: float | None,
    volume_knob: float | None,
    string_gauge: float | None,
    pick_attack: float | None,
    dynamics_db: float | None,
    humanize_ms: float | None,
    mains_hz: float | None,
    preamp_gain_db: float | None,
    extra: tuple[str, ...],
    jobs: int,
    quiet: bool,
) -> None:
    """Play phrases on synthetic guitars and add the raw 24-bit takes to CORPUS.

    Each guitar plays the same performances (take number + seed), so the takes differ
    by the instrument: pickups, their position and resonance, hum, output level.
    The generating parameters are kept in the manifest's synth_params column; every
    row gets pickup (single_coil, humbucker, p90) and position labels.

    \b
    Examples:
      guitarlab synth --corpus my-corpus --guitars stratocaster,les_paul \\
          --phrases backing,lead --takes 1 --seconds 60
      guitarlab synth --corpus family --guitars all --randomize --takes 8 --seconds 10 --jobs 0
      guitarlab synth --corpus builds --guitars all --randomize --builds --takes 2
      guitarlab synth --corpus notes --guitars all --notes --randomize
      guitarlab synth --list
    """
    from guitarlab.synth.takes import synth_to_corpus

    if builds and not randomize:
        raise click.UsageError(
            "--builds draws another instrument per take; use it with --randomize"
        )
    knobs = {
        "pickup_position": pickup_position,
        "tone_knob": tone_knob,
        "volume_knob": volume_knob,
        "string_gauge": string_gauge,
        "pick_attack": pick_attack,
        "dynamics_db": dynamics_db,
        "humanize_ms": humanize_ms,
        "mains_hz": mains_hz,
        "preamp_gain_db": preamp_gain_db,
    }
    options = {name: value for name, value in knobs.items() if value is not None}
    options.update(_option_pairs(extra))
    added = synth_to_corpus(
        corpus,
        guitars=guitars,
        phrases=phrases,
        takes=takes,
        first_take=first_take,
        seconds=seconds,
        seed=seed,
        bpm=bpm,
        key=key,
        sample_rate=rate,
        options=options,
        randomize=randomize,
        builds=builds,
        notes=notes,
        progress=not quiet,
        jobs=jobs,
    )
    what = "note file(s)" if notes else "take(s)"
    shown = added if len(added) <= 40 else [*added[:20], f"... {len(added) - 20} more"]
    click.echo(
        f"added {len(added)} {what} to {corpus}" + (": " + ", ".join(shown) if added else "")
    )


COMMANDS = [synth_command]
