"""``guitarlab audio-server``: the virtual audio interface, for trying the recorder without one."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import threading

import click

from guitarlab.commands.recorder import RATE_OPTION

DEVICE_NAME = "pulse"
"""The device name to give --device (input and output) inside the virtual interface."""

EXPORT_KEYS = (
    "PULSE_SERVER",
    "PULSE_CLIENTCONFIG",
    "XDG_RUNTIME_DIR",
    "HOME",
    "GUITARLAB_SOURCE_DEVICE",
)


def export_lines(env: dict[str, str]) -> list[str]:
    """``export KEY=value`` lines a shell can paste or ``eval``, values quoted.

    >>> export_lines({"HOME": "/tmp/a b", "PULSE_SERVER": "unix:/tmp/x"})
    ['export PULSE_SERVER=unix:/tmp/x', "export HOME='/tmp/a b'"]
    """
    return [f"export {key}={shlex.quote(env[key])}" for key in EXPORT_KEYS if key in env]


@click.command(
    "audio-server",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.option(
    "--loopback",
    is_flag=True,
    help="What is played to the output comes back on the input (a cable from out to in).",
)
@click.option(
    "--through",
    "through",
    default=None,
    metavar="PRESET",
    help="A tone preset in the loop standing in for an amp (e.g. crunch); implies --loopback.",
)
@click.option(
    "--play",
    "play_file",
    default=None,
    type=click.Path(dir_okay=False, exists=True),
    help="Play this file into the input on repeat, as the guitar (for predict --device).",
)
@RATE_OPTION
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def audio_server_command(
    loopback: bool,
    through: str | None,
    play_file: str | None,
    rate: int,
    command: tuple[str, ...],
) -> None:
    """Start a virtual audio interface (PulseAudio null sinks) to try the recorder without one.

    Use the device name 'pulse' for --device. 'level' and 'record' take --play FILE to
    feed a file into the input as the guitar; --play here plays one on repeat for as long
    as the server runs (for 'predict --device'). The output (click, a reamp's playback)
    goes to a sink of its own, unless --loopback sends it back into the input.

    Without COMMAND it prints the lines to export in another shell and stays up until
    Ctrl-C or SIGTERM (its temporary folder is then removed). With '-- COMMAND ...' it
    runs COMMAND inside it and exits with COMMAND's exit code. Needs pulseaudio,
    pulseaudio-utils and libasound2-plugins.

    \b
    Examples:
      guitarlab audio-server                    # then paste the export lines elsewhere
      guitarlab audio-server -- guitarlab devices
      guitarlab audio-server -- guitarlab level --corpus my-corpus --guitar strat \\
          --device pulse --seconds 5 --play riff.wav
      guitarlab audio-server --play riff.wav -- guitarlab predict my-run --device pulse --seconds 10
      guitarlab audio-server --loopback --through crunch -- guitarlab devices --test --device pulse
    """
    from guitarlab.recorder.server import start_audio_server

    through_argv = None
    if through is not None:
        from guitarlab.through import through_command

        through_argv = through_command(through, rate=rate)
    source = None
    if play_file is not None:
        from guitarlab.commands.recorder import _read_mono

        source = _read_mono(play_file, rate)
    server = start_audio_server(rate=rate, loopback=loopback, through=through_argv)
    player = None
    try:
        if source is not None:
            from guitarlab.recorder.loopback import start_player

            player = start_player(source, sample_rate=rate)
        if command:
            code = _run_inside(list(command))
        else:
            code = _stay_up(server, loopback=server.loopback, through=through)
    finally:
        if player is not None:
            from guitarlab.recorder.devices import stop_streams

            stop_streams([player])
        server.stop()
    if command:
        sys.exit(code)
    click.echo("audio server stopped, its folder removed", err=True)


def _stay_up(server, *, loopback: bool, through: str | None) -> int:
    """Print what to export, then wait for Ctrl-C or SIGTERM (or the server dying)."""
    from guitarlab.corpus.errors import RecorderError

    for line in export_lines(server.env):
        click.echo(line)
    loop = f"; output loops back into the input{f' through {through}' if through else ''}"
    click.echo(
        f"# virtual interface up: use --device {DEVICE_NAME}{loop if loopback else ''}. "
        "Ctrl-C stops it.",
    )
    sys.stdout.flush()
    stop = threading.Event()
    previous = {
        number: signal.signal(number, lambda *_: stop.set())
        for number in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        while not stop.wait(0.5):
            if server.process.poll() is not None:
                raise RecorderError("the audio server stopped on its own; start it again")
            if server.through is not None and server.through.poll() is not None:
                raise RecorderError(f"the {through} loop stopped on its own; start it again")
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    return 0


def _run_inside(command: list[str]) -> int:
    """Run COMMAND with the server's environment; SIGTERM is passed on, Ctrl-C reaches it."""
    try:
        child = subprocess.Popen(command, env=dict(os.environ))
    except OSError as exc:
        raise click.ClickException(
            f"cannot run {command[0]!r} ({exc.strerror or exc}); check the command after '--'"
        ) from None

    def forward(number, _frame) -> None:
        if child.poll() is None:
            child.send_signal(number)

    # Ctrl-C on a terminal reaches the child itself (same process group): do not send a second
    previous = {
        signal.SIGTERM: signal.signal(signal.SIGTERM, forward),
        signal.SIGINT: signal.signal(signal.SIGINT, lambda *_: None),
    }
    try:
        code = child.wait()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    return 128 - code if code < 0 else code  # killed by a signal: the shell's 128 + N


COMMANDS = [audio_server_command]
