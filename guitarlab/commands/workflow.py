"""Whole-job commands: ``demo`` (the post's experiment end to end) and ``retrain``."""

from __future__ import annotations

import click

from guitarlab.commands import FiniteRange, LibraryChoice, Names, corpus_option, library_option
from guitarlab.commands.complete import complete_runs
from guitarlab.corpus.defaults import MAX_TAKE_SECONDS, POST, RENAMED

# The demo's defaults live in guitarlab.workflow's run_* parameters (read when needed:
# importing the workflow at start-up would load pandas for every --help)
POST_DEMO = "guitarlab.workflow:run_demo"
HOLDOUT_DEMO = "guitarlab.workflow:run_holdout_demo"
FULL_MODEL = {
    key: f"guitarlab.train.config:FULL_MODEL.{key}"
    for key in ("input", "filters", "epochs", "fine_tune_epochs")
}


@click.command("demo")
@click.option(
    "--out",
    default="demo",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder for the corpus, dataset, run and report.",
)
@click.option(
    "--protocol",
    type=LibraryChoice("guitarlab.workflow:PROTOCOLS", renamed=RENAMED),
    default=POST,
    show_default=True,
    help="post: the 2019 post's experiment (a span held out of every take); guitar-holdout: the randomized family, two guitars never heard in training, label pickup; session-notes / session-strings: a note library (one guitar, three pickup settings, every string at frets 0-12), frets 6-12 or the G, B and e strings never heard in training.",
)
@library_option(
    "--seconds",
    type=FiniteRange(0, MAX_TAKE_SECONDS, min_open=True),
    library={"post": POST_DEMO + "(seconds)", "holdout": HOLDOUT_DEMO + "(seconds)"},
    help=f"Length of each take, at most {MAX_TAKE_SECONDS:g} "
    "[default: {post} s for post (as in the post), {holdout} s for guitar-holdout's "
    "held-out takes].",
)
@library_option(
    "--takes",
    type=int,
    default=HOLDOUT_DEMO + "(takes)",
    help="Randomized takes per held-out guitar and phrase: the test set (guitar-holdout).",
)
@library_option(
    "--training-takes",
    type=int,
    default=HOLDOUT_DEMO + "(training_takes)",
    help="Randomized takes per training guitar and phrase (guitar-holdout).",
)
@library_option(
    "--training-seconds",
    type=FiniteRange(0, MAX_TAKE_SECONDS, min_open=True),
    default=HOLDOUT_DEMO + "(training_seconds)",
    help="Length of each training guitar's take (guitar-holdout): the number of takes "
    "matters more than their length (MODEL.md, 'A demo in half the time').",
)
@library_option(
    "--held-out",
    type=Names(),
    default=HOLDOUT_DEMO + "(held_out)",
    help="Guitars never trained on (guitar-holdout): one single-coil, one humbucker.",
)
@click.option(
    "--direct",
    is_flag=True,
    help="Write the synthetic takes directly instead of recording them through an audio server.",
)
@library_option(
    "--full-model",
    is_flag=True,
    type=bool,
    library=FULL_MODEL,
    help="The post's full {input} LSTM-FCN ({filters:/} filters, {epochs}+{fine_tune_epochs} "
    "epochs): what a GPU runs.",
)
@click.option("--epochs", type=int, default=None, help="Override the first-phase epochs.")
@library_option(
    "--seed",
    type=int,
    default=POST_DEMO + "(seed)",
    help="Seed for the performances, the split and the training.",
)
def demo_command(
    out: str,
    protocol: str,
    seconds: float | None,
    takes: int,
    training_takes: int,
    training_seconds: float,
    held_out: tuple[str, ...],
    direct: bool,
    full_model: bool,
    epochs: int | None,
    seed: int,
) -> None:
    """Run an experiment end to end on the synthetic guitar, with an honest report.

    post (default): the 2019 post's experiment. Records 2 guitars x 2 phrases (through a
    PulseAudio server when one can start), renders clean/crunch/distorted (16 files),
    builds the leak-free span split, trains the CPU-sized spectrogram LSTM-FCN and votes
    once per held-out file.
    guitar-holdout: the randomized guitar family, label pickup, the takes of two guitars
    never heard in training as the test set. session-notes, session-strings: a synthetic
    note library (234 notes), label pickup, unseen frets or strings as the test set.
    Re-running reuses what is already there.

    \b
    Example:
      guitarlab demo --out demo
      guitarlab demo --out demo-holdout --protocol guitar-holdout
      guitarlab demo --out demo-notes --protocol session-notes
      guitarlab demo --out demo-gpu --full-model      # on a GPU machine
    """
    from guitarlab.workflow import run_demo, run_holdout_demo, run_session_demo

    length = {} if seconds is None else {"seconds": seconds}  # else each protocol's own

    if protocol.startswith("session-"):
        result = run_session_demo(
            out, protocol=protocol, full_model=full_model, epochs=epochs, seed=seed,
            echo=click.echo,
        )  # fmt: skip
    elif protocol == "post":
        result = run_demo(
            out,
            **length,
            through_server=not direct,
            full_model=full_model,
            epochs=epochs,
            seed=seed,
            echo=click.echo,
        )
    else:
        result = run_holdout_demo(
            out,
            **length,
            takes=takes,
            training_takes=training_takes,
            training_seconds=training_seconds,
            held_out=held_out,
            full_model=full_model,
            epochs=epochs,
            seed=seed,
            echo=click.echo,
        )
    click.echo("")
    post_note = " (the post: 15 of 16)" if protocol == "post" else ""
    click.echo(f"files right: {result.files_right} of {result.files_total}{post_note}")
    if result.held_out:
        click.echo(f"held-out guitars (never heard in training): {', '.join(result.held_out)}")
    for _, row in result.per_tone.iterrows():
        click.echo(f"  {row['tone']:<10} {int(row['right'])} of {int(row['files'])}")
    click.echo(f"balanced accuracy: {result.balanced_accuracy:.2f}")
    click.echo(
        f"always saying {result.majority_label} would score {result.majority_rate:.0%} of files"
    )
    if result.baseline_file_accuracy is not None:
        click.echo(
            f"baseline (features model: log-mel statistics, cross-validated SVM or logistic "
            f"regression): {result.baseline_file_accuracy:.0%} of files, balanced accuracy "
            f"{result.baseline_balanced_accuracy:.2f}"
        )
    if result.loses_to_features:
        click.echo(result.loses_to_features)
    if result.centroid_balanced_accuracy is not None:
        click.echo(
            "baseline (best spectral-centroid threshold): balanced accuracy "
            f"{result.centroid_balanced_accuracy:.2f} of windows"
        )
    click.echo(f"takes recorded: {result.recorded_through}")
    click.echo(f"report: {result.report}")


@click.command("retrain")
@corpus_option("The grown corpus.")
@click.option(
    "--from",
    "from_run",
    required=True,
    type=click.Path(file_okay=False),
    shell_complete=complete_runs,
    help="The run to start from.",
)
@click.option(
    "--out",
    default=None,
    type=click.Path(file_okay=False),
    help="Folder for the new dataset, run and report (default: RUN-retrained).",
)
@click.option(
    "--scratch",
    is_flag=True,
    help="Train a new model from scratch instead of fine-tuning the old one.",
)
@click.option(
    "--epochs",
    type=click.IntRange(0),
    default=None,
    help="First-phase epochs (default: the old run's).",
)
@click.option(
    "--fine-tune-epochs",
    type=click.IntRange(0),
    default=None,
    help="Second-phase epochs (default: the old run's).",
)
@library_option(
    "--workers",
    default="guitarlab.workflow:retrain(workers)",
    type=click.IntRange(1),
    help="Threads for rendering the tones of new takes.",
)
def retrain_command(
    corpus: str,
    from_run: str,
    out: str | None,
    scratch: bool,
    epochs: int | None,
    fine_tune_epochs: int | None,
    workers: int,
) -> None:
    """Retrain on a grown corpus and compare the old and new models on the same test files.

    Finds what is new since RUN's dataset (rows by id and sha256), renders the missing
    tones of new takes, rebuilds the dataset keeping the old test spans (new takes get
    their own), fine-tunes RUN's model (a new guitar widens the output layer) and writes
    a before/after report.

    \b
    Example:
      guitarlab record --corpus my-corpus --guitar telecaster --pickup single_coil --phrase lead --seconds 60
      guitarlab retrain --corpus my-corpus --from my-run --out my-run-2
    """
    from guitarlab.workflow import retrain

    result = retrain(
        corpus,
        from_run,
        out,
        scratch=scratch,
        epochs=epochs,
        fine_tune_epochs=fine_tune_epochs,
        workers=workers,
        echo=click.echo,
    )
    click.echo("")
    click.echo(
        f"file accuracy on the same {len(result.comparison)} test files: before {result.before_file_accuracy:.1%}, after {result.after_file_accuracy:.1%}"
    )
    from guitarlab.train.retrain import retrain_balanced_accuracy

    balanced = retrain_balanced_accuracy(result.comparison)
    click.echo(f"balanced accuracy: before {balanced['before']:.1%}, after {balanced['after']:.1%}")
    click.echo(f"report: {result.report}")


COMMANDS = [demo_command, retrain_command]
