"""Corpus commands: ``corpus init``, ``import``, ``manifest check`` and ``manifest summary``."""

from __future__ import annotations

import sys

import click

from guitarlab.commands import corpus_option, library_option, renamed_value
from guitarlab.commands.complete import complete_guitars, complete_presets


@click.group("corpus")
def corpus_group() -> None:
    """Create and inspect corpora (a folder with manifest.csv, takes/, tones/).

    \b
    Example:
      guitarlab corpus init my-corpus
    """


@corpus_group.command("init")
@click.argument("corpus", type=click.Path(file_okay=False))
def corpus_init(corpus: str) -> None:
    """Create an empty corpus at CORPUS.

    \b
    Example:
      guitarlab corpus init my-corpus
    """
    from guitarlab.corpus.manifest import init_corpus

    root = init_corpus(corpus)
    click.echo(f"corpus ready at {root} (manifest.csv, takes/, tones/, presets/)")


@click.command("import")
@click.argument("src_dir", type=click.Path(file_okay=False))
@corpus_option("Corpus folder (created if missing).")
@library_option(
    "--pattern",
    type=str,
    default="guitarlab.corpus.intake:import_folder(pattern)",
    callback=renamed_value("seed", "post"),
    help="File-name template over the name without its suffix, e.g. "
    "'{guitar}_{string}_fret{fret}_rr{take}': any {column} fills that manifest column "
    "({take} is a number). A name the template reads in two ways is refused. "
    "'post' reads the 2019 post's ST_lead_crunch.wav style names.",
)
@click.option(
    "--guitar",
    default="",
    shell_complete=complete_guitars,
    help="Guitar label for every file (overrides the name).",
)
@click.option(
    "--pickup", default="", help="Pickup label for every file, e.g. single_coil, humbucker, p90."
)
@click.option(
    "--phrase",
    default="",
    help="Phrase label for every file, e.g. backing, lead [default with {string} or {fret} "
    "in the pattern: note].",
)
@click.option(
    "--tone",
    default="",
    shell_complete=complete_presets,
    help="Tone for every file: 'raw' for dry takes or a preset name.",
)
@click.option("--player", default="", help="Who played, stored in the player column.")
@click.option(
    "--take",
    "take",
    default="auto",
    show_default=True,
    help="Which files are one take: 'auto' (files differing only in tone; one take per file "
    "when they would collapse), 'file' (each file its own take) or a column such as "
    "'{session}' (one take per value).",
)
@click.option(
    "--labels",
    "labels_csv",
    default=None,
    type=click.Path(dir_okay=False),
    help="CSV of per-file labels: a 'file' column (file name or path under SRC_DIR), then "
    "any manifest columns (pickup, fret, player, ...); they override the name.",
)
@click.option(
    "--annotations",
    "annotations_dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Folder of annotation files joined to the audio by name (AR_Lick1_FN.wav <- "
    "AR_Lick1_FN.xml): IDMT-SMT-Guitar .xml, .jams, or Audacity .txt with "
    "--annotation-column; each becomes segments of its file's take ('guitarlab labels').",
)
@click.option(
    "--annotation-column",
    default=None,
    help="The label column the text of Audacity .txt annotations goes to.",
)
@click.option(
    "--dry-run", is_flag=True, help="Print the table it would import; copy and write nothing."
)
def import_command(
    src_dir: str,
    corpus: str,
    pattern: str,
    guitar: str,
    pickup: str,
    phrase: str,
    tone: str,
    player: str,
    take: str,
    labels_csv: str | None,
    annotations_dir: str | None,
    annotation_column: str | None,
    dry_run: bool,
) -> None:
    """Copy a folder of WAV/FLAC/AIFF files into a corpus and label them.

    Files already in the corpus (same sha256) are not added twice. Files that cannot be
    read or whose names do not fit are listed and skipped; the exit code is 1 then.

    \b
    Examples:
      guitarlab import ~/post-wavs --corpus my-corpus          # ST_lead_crunch.wav ...
      guitarlab import ~/tele --corpus my-corpus --pattern "{phrase}_{tone}" \\
          --guitar telecaster --pickup single_coil
      guitarlab import ~/notes --corpus notes --pattern "{guitar}_{string}_fret{fret}_rr{take}" \\
          --labels notes.csv --dry-run
      guitarlab import IDMT/dataset2/audio --corpus idmt --pattern "{guitar}_{phrase}_{style}" \\
          --take file --annotations IDMT/dataset2/annotation
    """
    from guitarlab.corpus.intake import import_folder

    report = import_folder(
        src_dir,
        corpus,
        pattern=pattern,
        labels={"guitar": guitar, "pickup": pickup, "phrase": phrase, "tone": tone},
        player=player,
        take=take,
        labels_csv=labels_csv,
        dry_run=dry_run,
        annotations=annotations_dir,
        annotation_column=annotation_column,
    )
    if dry_run:
        import pandas as pd

        if report.table:
            frame = pd.DataFrame(report.table).fillna("")
            click.echo(frame.to_string(index=False))
        click.echo(
            f"dry run: would add {len(report.table)} file(s) in "
            f"{len({r['take'] for r in report.table})} take(s), "
            f"{len(report.already_present)} already present, {len(report.skipped)} skipped"
        )
    else:
        click.echo(
            f"added {len(report.added)} file(s), {len(report.already_present)} already present, {len(report.skipped)} skipped"
        )
    for line in report.segments:
        click.echo(f"segments: {line}")
    for note in report.notes:
        click.echo(f"note: {note}", err=True)
    for name, reason in report.skipped:
        click.echo(f"skipped {name}: {reason}", err=True)
    for name, reason in report.failed_checks:  # added, like a recorded take that failed
        click.echo(f"error: {name}: {reason}", err=True)
    for _, reason in report.annotation_errors:  # the audio is in; its segments are not
        click.echo(f"error: {reason}", err=True)
    if report.skipped or report.failed_checks or report.annotation_errors:
        sys.exit(1)


@click.group("manifest")
def manifest_group() -> None:
    """Check and summarize a corpus's manifest.

    \b
    Examples:
      guitarlab manifest check my-corpus
      guitarlab manifest summary my-corpus --plot my-corpus/plots
      guitarlab manifest compact my-corpus
    """


@manifest_group.command("check")
@click.argument("corpus", type=click.Path(file_okay=False))
@click.option(
    "--fix-levels",
    is_flag=True,
    help="Recompute peak_dbfs and rms_dbfs from the files (nothing else is rewritten).",
)
@click.option(
    "--no-sha", is_flag=True, help="Skip the sha256 verification (faster on big corpora)."
)
@click.option(
    "--full",
    is_flag=True,
    help="Read every file again, even those unchanged since the last check "
    "(by default a file whose size, mtime and inode are unchanged is not re-read).",
)
@library_option(
    "--jobs",
    type=click.IntRange(0),
    default="guitarlab.corpus.audit:check_manifest(jobs)",
    library={"files": "guitarlab.corpus.audit:PROCESS_MIN_FILES"},
    help="Changed files read in parallel: threads, processes from {files} files (0: every core).",
)
def manifest_check(corpus: str, fix_levels: bool, no_sha: bool, full: bool, jobs: int) -> None:
    """List every problem in CORPUS, one per line; exit 1 if there is any.

    What each file held when it was verified is remembered in CORPUS/.guitarlab-check.json,
    so a second check re-reads only the files that changed (--full reads them all).

    \b
    Example:
      guitarlab manifest check my-corpus
      guitarlab manifest check my-corpus --full --jobs 2
    """
    from guitarlab.corpus.audit import check_manifest
    from guitarlab.corpus.audit import fix_levels as refresh_levels
    from guitarlab.corpus.manifest import load_manifest

    if fix_levels:
        refresh_levels(corpus)
        click.echo("levels recomputed")
    frame = load_manifest(corpus)
    problems = check_manifest(
        corpus, verify_sha256=not no_sha, full=full, jobs=jobs, progress=True, frame=frame
    )
    for problem in problems:
        click.echo(str(problem))
    rows = len(frame)
    if problems:
        click.echo(f"{len(problems)} problem(s) in {rows} row(s)", err=True)
        sys.exit(1)
    click.echo(f"ok: {rows} row(s), no problems")


@manifest_group.command("compact")
@click.argument("corpus", type=click.Path(file_okay=False))
def manifest_compact(corpus: str) -> None:
    """Rewrite CORPUS/manifest.csv in one atomic step: schema columns in order, then the rest.

    Files are added by appending their rows (cheap at any size); edits rewrite the file.
    Compact after editing the file by hand, or to put the columns back in order.

    \b
    Example:
      guitarlab manifest compact my-corpus
    """
    from guitarlab.corpus.manifest import compact_manifest

    before, after, rows = compact_manifest(corpus)
    click.echo(f"compacted: {rows} row(s), {before:,} -> {after:,} bytes")


@manifest_group.command("summary")
@click.argument("corpus", type=click.Path(file_okay=False))
@click.option("--takes", is_flag=True, help="One line per take as well.")
@click.option(
    "--by", default=None, help="Also count by these columns, e.g. 'pickup,fret' (comma-separated)."
)
@click.option(
    "--plot",
    "plot_dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Also write levels.png (a meter per raw take) and spectra.png (per guitar) here.",
)
def manifest_summary(corpus: str, takes: bool, by: str | None, plot_dir: str | None) -> None:
    """Files and minutes per guitar x phrase x tone, every other label column, and levels.

    The label columns beyond guitar, phrase and tone (pickup, player, and any column an
    import filled, such as string or fret) are listed with their values: what a
    dataset can use as --label, --group-by or --test-where.

    \b
    Examples:
      guitarlab manifest summary my-corpus --takes --plot my-corpus/plots
      guitarlab manifest summary notes --by pickup,fret
    """
    from guitarlab.corpus.audit import column_summary, summary_tables
    from guitarlab.corpus.manifest import load_manifest

    frame = load_manifest(corpus)
    keys = [c.strip() for c in (by or "").split(",") if c.strip()]
    counts, levels = summary_tables(frame, takes=takes, by=keys)
    if frame.empty:
        click.echo("the corpus is empty")
        return
    click.echo(counts.to_string(index=False))
    columns = column_summary(frame)
    if not columns.empty:
        click.echo("")
        click.echo("label columns (usable as --label, --group-by, --where, --test-where):")
        click.echo(columns.to_string(index=False))
    click.echo("")
    click.echo("levels of raw takes per guitar (dBFS):")
    click.echo(levels.to_string(index=False))
    spread = levels["mean_rms_dbfs"].max() - levels["mean_rms_dbfs"].min()
    if len(levels) > 1:
        verdict = (
            "level-matched"
            if spread <= 1.5
            else "NOT level-matched: use gain_db (dataset build --apply-gain) or re-record"
        )
        click.echo(f"RMS difference between guitars: {spread:.2f} dB ({verdict})")
    if plot_dir:
        from pathlib import Path

        from guitarlab.corpus.plots import plot_guitar_spectra, plot_levels

        for picture in (
            plot_levels(frame, Path(plot_dir) / "levels.png"),
            plot_guitar_spectra(corpus, frame, Path(plot_dir) / "spectra.png"),
        ):
            click.echo(f"wrote {picture}")


COMMANDS = [corpus_group, import_command, manifest_group]
