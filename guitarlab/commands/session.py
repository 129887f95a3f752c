"""The ``session`` command: record a shot list (a CSV or TOML plan) take by take."""

from __future__ import annotations

import sys
from collections import deque

import click

from guitarlab.commands import LibraryCommand, corpus_option
from guitarlab.commands.recorder import (
    PLAY_OPTION,
    _channel_list,
    _check_input,
    _read_mono,
    _Screen,
    take_options,
    target_peak_option,
)

PROMPT = "keep, redo, skip the shot or quit? [k/r/s/q] "


class _Keys:
    """One key per answer: a keypress on a terminal, else words read from stdin.

    Why words: a script (or a test) pipes ``k k q`` or one key per line; the end of the
    input answers ``q``.
    """

    def __init__(self) -> None:
        self.stdin = sys.stdin
        self.pending: deque[str] = deque()

    def __call__(self, row: dict) -> str:
        from guitarlab.recorder.shotlist import KEYS

        while True:
            click.echo(PROMPT, nl=False)
            key = self._next()
            if key in KEYS:
                return key
            click.echo("press k (keep), r (redo), s (skip the shot) or q (quit)")

    def ready(self, status) -> bool:
        """On a terminal, wait for a key before each shot (False: q, stop); scripts go on."""
        if not self.stdin.isatty():
            return True
        click.echo(
            f"next, shot {status.number}: {status.shot.describe()}; "
            "press a key when ready (q stops) ",
            nl=False,
        )
        key = click.getchar()
        click.echo("")
        return key.lower() != "q"

    def _next(self) -> str:
        if self.stdin.isatty():
            key = click.getchar()  # Ctrl-C raises KeyboardInterrupt: the session stops
            click.echo(key if key.isprintable() else "")
            return key.lower()
        while not self.pending:
            line = self.stdin.readline()
            if not line:
                click.echo("q (end of input)")
                return "q"
            self.pending.extend(word[0].lower() for word in line.split())
        key = self.pending.popleft()
        click.echo(key)
        return key


@click.command(
    "session",
    cls=LibraryCommand,
    library={
        name: f"guitarlab.recorder.shotlist:NUMBER_FIELDS.{name}"
        for name in ("takes", "seconds", "bpm")
    },
)
@click.argument("plan", type=click.Path(dir_okay=False))
@corpus_option("Corpus folder.")
@click.option("--dry-run", is_flag=True, help="Print what is left to record, record nothing.")
@take_options(roles_help="What each of --channels is, e.g. di,mic.")
@target_peak_option("Target peak (for the checks) of a guitar 'level' never calibrated, dBFS.")
@PLAY_OPTION
def session_command(
    plan: str,
    corpus: str,
    dry_run: bool,
    device: str | None,
    channel: int,
    channels: str | None,
    roles: str | None,
    rate: int,
    subtype: str,
    count_in: int,
    click_on: bool,
    click_device: str | None,
    target_peak: float,
    play_file: str | None,
) -> None:
    """Record the takes of a shot list PLAN that CORPUS does not have yet.

    PLAN is a CSV file (a header, then one shot per line) or a TOML file (one [[shot]]
    table per shot) with the columns guitar, pickup, position, phrase, takes, seconds and
    bpm (blank: {takes} take, {seconds} s, {bpm} bpm); any other column is a label of your own, stored
    in each take's row. What is done comes from the manifest (complete raw takes with the
    shot's labels), so a session stopped anywhere goes on where it left off.

    For each missing take it says what to play, counts in, records, runs the take checks
    and asks one key: k keeps the take, r records it again (the old file and row are
    removed), s drops it and skips the rest of the shot (it stays missing for next time),
    q drops it and stops. Ctrl-C keeps a take cut short as partial and stops. Each guitar's
    takes are checked against its 'guitarlab level' calibration. With --channels 1,2
    --roles di,mic every take records both inputs (one file and row each, as 'record' does).

    \b
    Examples:
      guitarlab session plan.csv --corpus my-corpus --dry-run
      guitarlab session plan.csv --corpus my-corpus --device "Scarlett"
    """
    from guitarlab.corpus.manifest import load_manifest
    from guitarlab.recorder.session import check_inputs, interrupts_stop_the_take
    from guitarlab.recorder.shotlist import (
        PlanError,
        calibration_warnings,
        left_text,
        plan_status,
        progress_text,
        read_plan,
        run_session,
        status_table,
    )

    load_manifest(corpus)  # a missing corpus is one line before the plan is judged
    input_channels = _channel_list(channels)
    input_roles = [r.strip() for r in roles.split(",")] if roles else None
    check_inputs(channel, input_channels, input_roles)  # before any take, not at the first
    try:
        shots = read_plan(plan)
    except PlanError as exc:
        for line in exc.problems:
            click.echo(line, err=True)
        raise click.ClickException(
            f"{plan}: {len(exc.problems)} problem(s) above; fix them and run again"
        ) from None
    for line in calibration_warnings(corpus, shots):
        click.echo(line, err=True)
    statuses = plan_status(shots, load_manifest(corpus))
    left = left_text(statuses)
    if dry_run:
        for line in status_table(statuses):
            click.echo(line)
        click.echo(progress_text(statuses) + (f"; {left}" if left else ": nothing left"))
        return
    if not left:
        click.echo(f"{progress_text(statuses)}: nothing left to record in {plan}")
        return
    _check_input(device, channel=max(input_channels or [channel]), rate=rate)  # before shot 1
    shots_text = f"{len(shots)} shot" + ("s" if len(shots) != 1 else "")
    click.echo(f"{plan}: {shots_text}, {progress_text(statuses)}; {left}")
    source = _read_mono(play_file, rate) if play_file else None
    screen = _Screen()

    def say(line: str) -> None:
        screen.done()  # end the meter line first
        click.echo(line)

    keys = _Keys()
    with interrupts_stop_the_take():
        run_session(
            corpus,
            shots,
            choose=keys,
            ready=keys.ready,
            say=say,
            target_peak_dbfs=target_peak,
            device=device,
            channel=channel,
            channels=input_channels,
            roles=input_roles,
            rate=rate,
            subtype=subtype,
            count_in=count_in,
            click=click_on,
            click_device=click_device,
            source_audio=source,
            on_progress=screen.show,
        )
    screen.done()


COMMANDS = [session_command]
