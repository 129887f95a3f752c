"""The ``reamp`` command: raw takes out through the player's amp, the return back as a tone."""

from __future__ import annotations

import click

from guitarlab.commands import corpus_option, library_option

REAMP = "guitarlab.recorder.reamp:reamp_corpus"  # its parameters hold reamp's defaults


@click.command("reamp")
@corpus_option("Corpus folder.")
@click.option(
    "--tone",
    required=True,
    help="Name of the sound coming back (the amp and its settings), e.g. jcm800_crunch.",
)
@click.option(
    "--output-device",
    default=None,
    help="Output into the amp (reamp box): name, unique part or number from 'guitarlab devices' [default: the system's].",
)
@click.option(
    "--input-device",
    default=None,
    help="Input the amp returns to (mic or load box) [default: the system's].",
)
@library_option(
    "--input-channel",
    type=int,
    default=REAMP + "(channel)",
    help="Interface input of the return.",
)
@library_option(
    "--role",
    type=str,
    default=REAMP + "(role)",
    help="Of a take recorded with several inputs (record --roles), the one to play.",
)
@click.option("--where", default=None, help="Reamp only the raw takes this condition selects.")
@click.option(
    "--calibrate",
    is_flag=True,
    help="First play a test signal: store the loop's latency and gain in CORPUS/reamp.json.",
)
def reamp_command(
    corpus: str,
    tone: str,
    output_device: str | None,
    input_device: str | None,
    input_channel: int,
    role: str,
    where: str | None,
    calibrate: bool,
) -> None:
    """Play each raw take through your amp or pedals and store the return as tone TONE.

    Each take goes out at its matched level (gain_db) between two short noise bursts and
    is recorded back; the bursts give the round-trip latency, which is removed, and show
    whether it moved. A return that does not correlate (cable unplugged, amp off) or
    drifts is refused with nothing stored. The return becomes tones/<take>-<tone>.wav, a
    render of its take (source, tone, latency, gain and devices in its row), so it joins
    every split like an 'augment' render. Takes already reamped to TONE are skipped: run
    it again after a stop and it goes on.

    \b
    Examples:
      guitarlab reamp --corpus my-corpus --tone jcm800_crunch --calibrate \\
          --output-device "Scarlett" --input-device "Scarlett" --input-channel 2
      guitarlab audio-server --loopback -- guitarlab reamp --corpus my-corpus --tone loop
    """
    from guitarlab.recorder.reamp import reamp_corpus

    def on_take(rid: str, number: int, total: int) -> None:
        click.echo(f"reamping {rid} ({number} of {total}) ...", err=True)

    report = reamp_corpus(
        corpus,
        tone=tone,
        output_device=output_device,
        input_device=input_device,
        channel=input_channel,
        role=role,
        where=where,
        calibrate=calibrate,
        on_take=on_take,
    )
    if report.calibration:
        cal = report.calibration
        click.echo(
            f"calibrated {tone}: latency {cal['latency_samples']} samples ({cal['latency_ms']:.1f} ms), "
            f"loop gain {cal['gain_db']:+.1f} dB, correlation {cal['correlation']:.3f}; "
            f"saved in {corpus}/reamp.json"
        )
    for row in report.added:
        click.echo(
            f"{row['path']}: latency {row['reamp_latency_samples']} samples removed, "
            f"gain {float(row['reamp_gain_db']):+.1f} dB, correlation {float(row['reamp_correlation']):.3f}"
        )
    if report.skipped:
        click.echo(f"{len(report.skipped)} take(s) already reamped to {tone}: skipped")
    click.echo(f"{len(report.added)} take(s) reamped to {tone}")


COMMANDS = [reamp_command]
