"""Recorder commands: ``devices``, ``level``, ``record``, ``recover`` and ``check``."""

from __future__ import annotations

import os
import sys
import time

import click

from guitarlab.commands import corpus_option, library_option
from guitarlab.commands.complete import complete_guitars
from guitarlab.corpus.defaults import RECORD_RATE

DEVICE_HELP = "Input device: its name (or a unique part of it) or number from 'guitarlab devices'."
CHANNEL_HELP = "Interface input number to record (1 = first input)."
# The recorder's defaults live in record_take's and record_takes's parameters, the target
# peak in corpus.levels; the options below read them there (see LibraryDefault).
TAKE = "guitarlab.recorder.session:record_take"
TAKES = "guitarlab.recorder.session:record_takes"
TARGET_PEAK = "guitarlab.corpus.levels:DEFAULT_TARGET_PEAK_DBFS"

DEVICE_OPTION = click.option("--device", default=None, help=DEVICE_HELP)
CHANNEL_OPTION = library_option(
    "--channel", type=int, default=TAKE + "(channel)", help=CHANNEL_HELP
)
RATE_OPTION = click.option(
    "--rate", type=int, default=RECORD_RATE, show_default=True, help="Sample rate in Hz."
)


def target_peak_option(help_text: str):
    """``--target-peak``: the level checks' target, corpus.levels' default."""
    return library_option("--target-peak", type=float, default=TARGET_PEAK, help=help_text)


def take_options(*, roles_help: str):
    """The input and click options of a take, declared once for ``record`` and ``session``
    (``--device`` and ``--channel`` too)."""
    options = [
        DEVICE_OPTION,
        CHANNEL_OPTION,
        click.option(
            "--channels",
            default=None,
            help="Several interface inputs at once, e.g. 1,2: one sample-aligned file each "
            "(needs --roles).",
        ),
        click.option("--roles", default=None, help=roles_help),
        RATE_OPTION,
        library_option(
            "--subtype", type=str, default=TAKE + "(subtype)", help="WAV sample format."
        ),
        library_option(
            "--count-in", type=int, default=TAKE + "(count_in)", help="Bars of count-in (0: none)."
        ),
        library_option(
            "--click/--no-click",
            "click_on",
            type=bool,
            default=TAKE + "(click)",
            help="Click while recording.",
        ),
        click.option("--click-device", default=None, help="Output for the click (default output)."),
    ]

    def decorate(command):
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


class _Screen:
    """One redrawn status line on a terminal; sparse plain lines otherwise (logs, CI)."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last_draw = 0.0
        self.last_phase = ""

    def show(self, progress) -> None:
        from guitarlab.recorder.meter import meter_line

        now = time.monotonic()
        if progress.phase != self.last_phase:
            if self.last_phase and self.tty:
                click.echo("", err=True)
            self.last_phase = progress.phase
            if not self.tty:
                click.echo(f"{progress.phase} ...", err=True)
        if not self.tty or now - self.last_draw < 0.1:
            return
        self.last_draw = now
        if progress.phase == "count-in":
            text = f"count-in: beat {progress.beat}"
        elif progress.phase == "waiting":
            text = "waiting for the input ..."
        else:
            meter = meter_line(progress.reading) if progress.reading else ""
            text = f"{progress.elapsed_s:5.1f}s -{progress.remaining_s:5.1f}s {meter}"
        click.echo("\r" + text.ljust(79), nl=False, err=True)  # fits an 80-column terminal

    def done(self) -> None:
        if self.tty and self.last_phase:
            click.echo("", err=True)
        self.last_phase = ""


PLAY_OPTION = click.option(
    "--play",
    "play_file",
    default=None,
    type=click.Path(dir_okay=False, exists=True),
    help="Play this file into the test input while it runs (demo and tests).",
)


def _read_mono(path: str, rate: int):
    """A file to play into the test input, as mono float32 at ``rate``."""
    from guitarlab.corpus.audio import mono_at_rate, read_audio
    from guitarlab.corpus.errors import RecorderError

    audio, file_rate = read_audio(path)
    if file_rate <= 0:
        raise RecorderError(f"{path}: sample rate {file_rate} is invalid")
    return mono_at_rate(audio, file_rate, target_rate=rate)[0]


def _check_input(device: str | None, *, channel: int, rate: int) -> None:
    """A wrong device name, channel or rate is one line now, not after 'play ...'."""
    from guitarlab.recorder import devices

    found = devices.resolve_device(device, kind="input")
    devices.check_settings(found, kind="input", sample_rate=rate, channels=channel)


# ---------------------------------------------------------------- devices


@click.command("devices")
@click.option("--test", is_flag=True, help="Play a short tone and record it back.")
@DEVICE_OPTION
@click.option(
    "--output-device", default=None, help="Output device for --test (default: the default output)."
)
@click.option(
    "--rate",
    type=int,
    default=RECORD_RATE,
    show_default=True,
    help="Sample rate for --test, in Hz.",
)
def devices_command(test: bool, device: str | None, output_device: str | None, rate: int) -> None:
    """List input and output devices (number, name, host API, channels, default rate).

    With --test, a 1 kHz tone goes out of the output and the input is recorded at the same
    time: the level and the delay show whether the path works (loop a cable from the
    output to the input, or use the test server's 'guitarlab_in' output).

    \b
    Examples:
      guitarlab devices
      guitarlab devices --test --device "Scarlett" --output-device "Scarlett"
    """
    from guitarlab.recorder import devices

    listed = devices.list_devices()
    if not listed:
        from guitarlab.corpus.errors import RecorderError

        raise RecorderError(
            "no audio devices: no audio server is running and no interface is connected; "
            "connect one, or try the virtual one with 'guitarlab audio-server'"
        )
    click.echo(f"{'#':>3}  {'name':<32} {'host API':<12} {'in':>3} {'out':>4} {'rate':>7}")
    for d in listed:
        click.echo(
            f"{d.index:>3}  {d.name[:32]:<32} {d.hostapi[:12]:<12} {d.max_input_channels:>3} "
            f"{d.max_output_channels:>4} {int(d.default_samplerate):>7}"
        )
    if not test:
        return
    import numpy as np
    from scipy.signal import correlate

    from guitarlab.corpus.levels import peak_dbfs

    inp = devices.resolve_device(device, kind="input")
    out = devices.resolve_device(output_device, kind="output")
    t = np.arange(int(0.5 * rate)) / rate
    tone = (0.25 * np.sin(2 * np.pi * 1000.0 * t) * np.hanning(t.size)).astype(np.float32)
    tone = np.concatenate([np.zeros(int(0.02 * rate), np.float32), tone])
    recording = devices.play_and_record(tone, rate, input_device=inp, output_device=out)
    level = peak_dbfs(recording)
    click.echo(
        f"played 0.5 s of 1 kHz on {out.name!r}, recorded {inp.name!r}: peak {level:.1f} dBFS"
    )
    if level < -60:
        click.echo("no signal came back: connect the output to the input, or check the gain")
        sys.exit(1)
    lag = int(np.argmax(correlate(recording, tone, mode="full", method="fft"))) - (tone.size - 1)
    click.echo(f"the path works: round trip {1000.0 * lag / rate:.1f} ms")


# ---------------------------------------------------------------- level


@click.command("level")
@corpus_option("Corpus folder.")
@click.option(
    "--guitar",
    required=True,
    shell_complete=complete_guitars,
    help="Guitar being calibrated, e.g. stratocaster.",
)
@DEVICE_OPTION
@CHANNEL_OPTION
@library_option(
    "--seconds",
    type=float,
    default="guitarlab.recorder.session:measure_level(seconds)",
    help="How long to measure.",
)
@RATE_OPTION
@target_peak_option("Target loudest peak, in dBFS.")
@PLAY_OPTION
def level_command(
    corpus: str,
    guitar: str,
    device: str | None,
    channel: int,
    seconds: float,
    rate: int,
    target_peak: float,
    play_file: str | None,
) -> None:
    """Meter your loudest passage, tell how far to turn the gain, save the calibration.

    Play the loudest thing you will play in the takes. The bars show peak and RMS, the
    peak hold and a clip light; at the end you get the gain change that puts the loudest
    peak on the target, and the difference to the guitars already calibrated.

    \b
    Example:
      guitarlab level --corpus my-corpus --guitar stratocaster --device "Scarlett"
    """
    from guitarlab.corpus.manifest import load_manifest, slugify
    from guitarlab.recorder.calibration import compare_guitars, record_calibration
    from guitarlab.recorder.meter import advice_text, gain_advice_db
    from guitarlab.recorder.session import measure_level

    load_manifest(corpus)
    guitar = slugify(guitar)
    source = _read_mono(play_file, rate) if play_file else None
    _check_input(device, channel=channel, rate=rate)  # before the player is asked to play
    screen = _Screen()
    click.echo(f"play your loudest passage on the {guitar} for {seconds:.0f} s ...", err=True)
    reading, device_name = measure_level(
        seconds=seconds,
        rate=rate,
        device=device,
        channel=channel,
        source_audio=source,
        on_progress=screen.show,
    )
    screen.done()
    advice = gain_advice_db(reading.max_peak_dbfs, target_peak_dbfs=target_peak)
    click.echo(
        f"loudest peak {reading.max_peak_dbfs:.1f} dBFS, RMS {reading.total_rms_dbfs:.1f} dBFS, "
        f"{reading.clipped_samples} clipped sample(s)"
    )
    click.echo(advice_text(advice, clipped=reading.clip))
    data = record_calibration(
        corpus,
        guitar,
        peak_dbfs=reading.max_peak_dbfs,
        rms_dbfs=reading.total_rms_dbfs,
        target_peak_dbfs=target_peak,
        gain_advice_db=advice,
        device=device_name,
    )
    click.echo(f"calibration saved for {guitar} in {corpus}/calibration.json")
    for line in compare_guitars(data, guitar):
        click.echo(line)


# ---------------------------------------------------------------- record


@click.command("record")
@corpus_option("Corpus folder.")
@click.option(
    "--guitar",
    required=True,
    shell_complete=complete_guitars,
    help="Guitar label, e.g. stratocaster.",
)
@click.option("--pickup", default="", help="Pickup, e.g. single_coil, humbucker, p90.")
@click.option("--phrase", required=True, help="Phrase label, e.g. backing, lead.")
@library_option(
    "--seconds",
    type=float,
    default="guitarlab.recorder.shotlist:NUMBER_FIELDS.seconds",
    help="Length of each take (a shot list's default too).",
)
@library_option("--bpm", type=float, default=TAKE + "(bpm)", help="Click tempo.")
@take_options(
    roles_help="What each of --channels is, e.g. di,mic: the role column and the file names "
    "(<take>-raw-di.wav, <take>-raw-mic.wav)."
)
@library_option("--takes", "n_takes", type=int, default=TAKES + "(takes)", help="Takes in a row.")
@library_option("--pause", type=float, default=TAKES + "(pause_s)", help="Seconds between takes.")
@click.option("--player", default="", help="Who plays, stored in the player column.")
@click.option("--notes", default="", help="Free text stored in the notes column.")
@target_peak_option("Target peak (for the checks), dBFS.")
@click.option(
    "--discard", is_flag=True, help="Drop a take stopped with Ctrl-C instead of keeping it."
)
@PLAY_OPTION
def record_command(
    corpus: str,
    guitar: str,
    pickup: str,
    phrase: str,
    seconds: float,
    bpm: float,
    count_in: int,
    click_on: bool,
    rate: int,
    subtype: str,
    device: str | None,
    channel: int,
    channels: str | None,
    roles: str | None,
    click_device: str | None,
    n_takes: int,
    pause: float,
    player: str,
    notes: str,
    target_peak: float,
    discard: bool,
    play_file: str | None,
) -> None:
    """Record takes into CORPUS/takes/ with count-in, click, meter and a manifest row each.

    The click goes to the output only, never into the take. Ctrl-C stops and keeps the
    take marked partial (--discard drops it). Every take is checked for clipping,
    silence, DC offset, low level, hum and drift, and compared with the other guitars.

    A full disk or an input that stops (unplugged, audio server gone) ends the take with
    one error line; the audio so far is kept, marked partial. Set GUITARLAB_AUDIO_DEBUG=1
    to see ALSA's and PortAudio's own messages.

    --channels 1,2 --roles di,mic records both inputs in one stream (sample-aligned): one
    file and row per input, same take and labels, the role in the 'role' column.

    \b
    Examples:
      guitarlab record --corpus my-corpus --guitar stratocaster --pickup single_coil \\
          --phrase backing --seconds 60 --bpm 120 --device "Scarlett" --takes 3
      guitarlab record --corpus my-corpus --guitar stratocaster --phrase lead \\
          --channels 1,2 --roles di,mic --device "Scarlett"
    """
    from guitarlab.recorder.session import record_takes

    screen = _Screen()
    report = record_takes(
        corpus,
        takes=n_takes,
        pause_s=pause,
        say=click.echo,
        notice=lambda line: click.echo(line, err=True),
        after_take=screen.done,
        guitar=guitar,
        pickup=pickup,
        phrase=phrase,
        seconds=seconds,
        rate=rate,
        subtype=subtype,
        device=device,
        channel=channel,
        bpm=bpm,
        count_in=count_in,
        click=click_on,
        player=player,
        notes=notes,
        discard_on_interrupt=discard,
        source_audio=_read_mono(play_file, rate) if play_file else None,
        click_device=click_device,
        target_peak_dbfs=target_peak,
        on_progress=screen.show,
        channels=_channel_list(channels),
        roles=[r.strip() for r in roles.split(",")] if roles else None,
    )
    if report.failed:  # the take is kept and listed, but a script must not take it for a good one
        raise click.ClickException(
            f"take(s) failed their checks: {'; '.join(report.failed)}; see the lines above, "
            "fix the cause and record again"
        )


def _channel_list(text: str | None) -> list[int] | None:
    """``--channels 1,2`` as ``[1, 2]``; one line naming the option when it is not numbers."""
    if not text:
        return None
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not a list of input numbers; use e.g. 1,2", param_hint="--channels"
        ) from None


# ---------------------------------------------------------------- recover and check


@click.command("recover")
@corpus_option("Corpus folder.")
@click.option(
    "--clean",
    is_flag=True,
    help="Also delete temp files of interrupted writes, stale reservations and renders no row lists (never a take).",
)
def recover_command(corpus: str, clean: bool) -> None:
    """Add takes left on disk without a row (after a kill or power cut), marked partial.

    Their WAV headers are repaired first so every reader sees all the audio.

    \b
    Example:
      guitarlab recover --corpus my-corpus
    """
    from guitarlab.recorder.recover import recover_takes

    report = recover_takes(corpus)
    if clean:
        from guitarlab.corpus.audit import clean_strays

        for rel in clean_strays(corpus):
            click.echo(f"removed {rel}")
    for row in report.added:
        seconds = int(row["frames"]) / int(row["sample_rate"])
        click.echo(f"recovered {row['path']}: {seconds:.1f} s, marked partial")
    for name, reason in report.skipped:
        click.echo(f"skipped {name}: {reason}", err=True)
    if not report.added and not report.skipped and not clean:
        click.echo("nothing to recover: every take has its row")
    if report.skipped:
        sys.exit(1)


@click.command("check")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@target_peak_option("Target loudest peak, in dBFS.")
def check_command(files: tuple[str, ...], target_peak: float) -> None:
    """Check audio files for clipping, silence, dead channels, DC offset, low level and hum.

    Every file is checked, even after one that cannot be read (one line each); exit code
    1 when any file could not be read or has an error-level finding (clipping, silence).

    \b
    Example:
      guitarlab check my-corpus/takes/*.wav
    """
    from guitarlab.corpus.audio import read_audio
    from guitarlab.corpus.checks import check_take, findings_text
    from guitarlab.corpus.errors import GuitarlabError

    errors = 0
    for name in files:
        if not os.path.exists(name):
            click.echo(f"{name}: no such file; check the path", err=True)
            errors += 1
            continue
        try:
            audio, rate = read_audio(name)
        except GuitarlabError as exc:  # one line, then the next file
            click.echo(" ".join(str(exc).split()), err=True)
            errors += 1
            continue
        findings = check_take(audio, rate, target_peak_dbfs=target_peak)
        errors += any(f.severity == "error" for f in findings)
        for line in findings_text(findings):
            click.echo(f"{name}: {line}")
    if errors:
        sys.exit(1)


COMMANDS = [devices_command, level_command, record_command, recover_command, check_command]
