"""Dataset commands: ``dataset build``, ``dataset check``, ``dataset show`` and ``export``."""

from __future__ import annotations

import sys

import click

from guitarlab.commands import (
    QUIET_OPTION,
    FiniteRange,
    LibraryChoice,
    corpus_option,
    engine_options,
    library_option,
)
from guitarlab.corpus.defaults import MIN_WINDOW

BUILD = "guitarlab.datasets.plan:BuildConfig."  # every build option's default lives there
SPLITS = "guitarlab.datasets.splits:"


@click.group("dataset")
def dataset_group() -> None:
    """Cut a corpus into leak-free train/val/test windows, and check or show the result.

    \b
    Examples:
      guitarlab dataset build --corpus my-corpus --out my-dataset --split take
      guitarlab dataset check my-dataset
      guitarlab dataset show my-dataset
    """


@dataset_group.command("build")
@corpus_option("Corpus folder to read.")
@click.option(
    "--out", required=True, type=click.Path(file_okay=False), help="Dataset folder to write."
)
@library_option(
    "--label",
    type=str,
    default=BUILD + "label",
    help="Manifest column to classify: guitar, pickup, phrase, tone, or any other column.",
)
@library_option(
    "--window",
    default=BUILD + "window",
    type=click.IntRange(MIN_WINDOW),
    help=f"Window in samples, at least {MIN_WINDOW} (shorter ones hold no note, only more rows).",
)
@click.option(
    "--hop", default=None, type=click.IntRange(1), help="Hop in samples [default: the window]."
)
@click.option(
    "--split",
    "split",
    default=None,
    type=LibraryChoice(SPLITS + "SPLIT_METHODS"),
    help="Test set: a random span of every take (in every tone), whole takes, or whole --group-by "
    "values [default: span; take with --test-where, group with --test-groups].",
)
@click.option(
    "--test-where",
    default=None,
    help="Name the test set: the files a condition over manifest columns selects, numbers "
    'compared as numbers, e.g. "fret >= 6". Whole takes only.',
)
@click.option(
    "--test-groups",
    default=None,
    help="With --split group: the --group-by values held out for test, e.g. 'ann,bo'.",
)
@click.option(
    "--val-where",
    default=None,
    help='Name the validation set like --test-where (whole takes), e.g. "fret == 5".',
)
@click.option(
    "--trim-silence",
    is_flag=True,
    help="Start each take's windows at its first sound instead of sample 0.",
)
@click.option(
    "--skip-silence",
    is_flag=True,
    help="Energy gate: leave out windows quieter than --gate-dbfs (lead-ins, gaps). Off for the post protocol.",
)
@library_option(
    "--gate-dbfs",
    type=FiniteRange(max=0, max_open=True),
    default=BUILD + "gate_dbfs",
    help="RMS level (dBFS, as recorded, below 0) below which a window is silence.",
)
@click.option(
    "--onsets",
    is_flag=True,
    help="Start windows at detected note onsets (then every --hop while the note sounds), "
    "not on a fixed grid; predict cuts files the same way. For note libraries and phrases.",
)
@library_option(
    "--note-windows",
    default=BUILD + "note_windows",
    type=click.IntRange(1),
    help="With --onsets: at most this many windows per note.",
)
@click.option(
    "--from-segments",
    is_flag=True,
    help="Label each window by the segment (of column --label, in segments.csv) it lies "
    "wholly in; windows across two segments or in none are left out and counted. "
    "--where/--test-where/--val-where may then name segment columns.",
)
@click.option(
    "--test-seconds",
    type=FiniteRange(min=0, min_open=True),
    default=None,
    help="Test span length, rounded to whole windows [default: --test-windows windows].",
)
@library_option(
    "--test-windows",
    default=BUILD + "test_windows",
    type=click.IntRange(1),
    help="Test span length in windows (when --test-seconds is not given).",
)
@click.option(
    "--val",
    default=None,
    type=LibraryChoice(SPLITS + "VAL_METHODS"),
    help="Validation: a span per take disjoint from the test span, whole takes, or the post's "
    "random 80/20 of windows (leaks) [default: span; take with --val-where, --test-where or "
    "--test-groups].",
)
@library_option(
    "--val-fraction",
    default=BUILD + "val_fraction",
    type=click.FloatRange(0, 1, max_open=True),
    help="Share of each take (or of takes) used for validation.",
)
@click.option(
    "--same-span-all", is_flag=True, help="One test span for all takes, exactly like the post."
)
@click.option("--group-by", default=None, help="Column for --split group (player, session, ...).")
@click.option(
    "--where", default=None, help="Row filter over manifest columns, e.g. \"tone != 'distorted'\"."
)
@library_option(
    "--standardize",
    default=BUILD + "standardize",
    type=LibraryChoice("guitarlab.datasets.windows:STANDARDIZE_MODES"),
    help="Each file by its own mean/std (the post), or all by the training windows' mean/std.",
)
@click.option("--apply-gain", is_flag=True, help="Apply each row's gain_db before windowing.")
@click.option("--resample", is_flag=True, help="Resample files at another rate instead of failing.")
@library_option("--seed", default=BUILD + "seed", type=int, help="Seed of the split draws.")
@click.option(
    "--held-out-from",
    type=click.Path(file_okay=False),
    default=None,
    help="Older dataset folder whose takes keep exactly their test/validation spans.",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace --out if it is a dataset folder guitarlab made (never any other folder).",
)
@library_option(
    "--jobs",
    default=BUILD + "jobs",
    type=click.IntRange(0),
    help="Files read and windowed at once, each in its own process on a core (0: every core, "
    "one process per ~6 minutes of audio read; 1: this process alone), or with --engine dask "
    "and no --scheduler the LocalCluster's workers. The dataset is the same bit for bit.",
)
@engine_options(
    default=BUILD + "engine",
    here="Window the files here",
    shared="the corpus and --out",
    workers="--jobs",
)
@QUIET_OPTION
def dataset_build(
    corpus: str,
    out: str,
    label: str,
    window: int,
    hop: int | None,
    split: str | None,
    test_where: str | None,
    test_groups: str | None,
    val_where: str | None,
    trim_silence: bool,
    skip_silence: bool,
    gate_dbfs: float,
    onsets: bool,
    note_windows: int,
    from_segments: bool,
    test_seconds: float | None,
    test_windows: int,
    val: str | None,
    val_fraction: float,
    same_span_all: bool,
    group_by: str | None,
    where: str | None,
    standardize: str,
    apply_gain: bool,
    resample: bool,
    seed: int,
    held_out_from: str | None,
    overwrite: bool,
    jobs: int,
    engine: str,
    scheduler: str | None,
    quiet: bool,
) -> None:
    """Build a dataset folder from CORPUS: windows, standardization, leak-free splits.

    All renders of a take share its timing, so whatever is held out of a take (a span,
    or the whole take) is held out of every tone of it, and no training window touches
    held-out time even partly.

    \b
    Examples:
      guitarlab dataset build --corpus my-corpus --out my-dataset
      guitarlab dataset build --corpus my-corpus --out ds-post --same-span-all --val random
      guitarlab dataset build --corpus my-corpus --out ds-takes --split take --label pickup
      guitarlab dataset build --corpus my-corpus --out ds-v2 --held-out-from my-dataset
      guitarlab dataset build --corpus notes --out ds-frets --label pickup \\
          --test-where "fret >= 6" --onsets
      guitarlab dataset build --corpus my-corpus --out ds-tech --label technique \\
          --from-segments --test-where "phrase == 'solo'"
      guitarlab dataset build --corpus my-corpus --out my-dataset --jobs 2
      guitarlab dataset build --corpus /shared/c --out /shared/ds --engine dask \\
          --scheduler tcp://host:8786
    """
    from guitarlab.datasets.build import build_dataset
    from guitarlab.datasets.folder import open_dataset

    path = build_dataset(
        corpus,
        out,
        label=label,
        window=window,
        hop=hop,
        split=split,
        test_seconds=test_seconds,
        test_windows=test_windows,
        val=val,
        val_fraction=val_fraction,
        same_span_all=same_span_all,
        group_by=group_by,
        where=where,
        standardize=standardize,
        apply_gain=apply_gain,
        resample=resample,
        seed=seed,
        held_out_from=held_out_from,
        test_where=test_where,
        val_where=val_where,
        test_groups=test_groups,
        trim_silence=trim_silence,
        skip_silence=skip_silence,
        gate_dbfs=gate_dbfs,
        onsets=onsets,
        note_windows=note_windows,
        from_segments=from_segments,
        progress=not quiet,
        overwrite=overwrite,
        jobs=jobs,
        engine=engine,
        scheduler=scheduler,
    )
    ds = open_dataset(path)
    totals = ds.meta.totals
    click.echo(
        f"dataset at {path}: {ds.n_classes} classes ({', '.join(ds.label_names)}), "
        f"windows train={totals['train']} val={totals['val']} test={totals['test']}, "
        f"{ds.meta.dropped_windows} dropped at span edges"
    )
    held = ds.meta.held_out
    segments = ds.meta.segments
    if segments:
        click.echo(
            f"from {segments['segments']} {segments['column']!r} segment(s) of "
            f"{segments['takes']} take(s): left out {segments['windows_straddling']} window(s) "
            f"across a segment edge, {segments['windows_in_no_segment']} in no segment"
            + (
                f", {segments['windows_outside_where']} outside --where"
                if segments.get("where")
                else ""
            )
        )
    if held.get("split") == "segment":
        takes = ds.meta.takes.values()
        seconds = sum(e - s for t in takes for s, e in t["test"]) / ds.sample_rate
        with_test = sum(1 for t in takes if t["test"])
        click.echo(
            f"test set: {seconds:.2f} s of {with_test} take(s) named by --test-where "
            f"{held['test_where']!r}, held out of every tone"
        )
    elif held.get("test_where") or held.get("test_groups"):
        named = (
            f"--test-where {held['test_where']!r}"
            if held.get("test_where")
            else f"--test-groups {','.join(held['test_groups'])}"
        )
        click.echo(f"test set: {len(held['test_takes'])} take(s) named by {named}")
    for note in ds.meta.notes:
        click.echo(f"note: {note}", err=True)
    if ds.leaky:
        click.echo("warning: this dataset leaks between training and validation", err=True)


@dataset_group.command("check")
@click.argument("dataset", type=click.Path(file_okay=False))
@click.option(
    "--allow-leak", is_flag=True, help="Accept a folder built with --val random (it leaks)."
)
def dataset_check(dataset: str, allow_leak: bool) -> None:
    """Prove DATASET is leak-free: no training window overlaps validation or test time.

    Checks every take, in every tone, and that validation never touches test time;
    prints the windows per split and exits 1 on any problem.

    \b
    Example:
      guitarlab dataset check my-dataset
    """
    from guitarlab.datasets.folder import check_dataset, open_dataset

    ds = open_dataset(dataset)
    problems = check_dataset(dataset, allow_leak=allow_leak)
    totals = ds.meta.totals
    click.echo(" ".join(f"{s}={totals[s]}" for s in ("train", "val", "test")) + " windows")
    for problem in problems:
        click.echo(problem)
    if problems:
        click.echo(f"{len(problems)} problem(s) in {dataset}", err=True)
        sys.exit(1)
    click.echo(f"ok: no training window overlaps held-out time in {len(ds.meta.takes)} take(s)")


@dataset_group.command("show")
@click.argument("dataset", type=click.Path(file_okay=False))
def dataset_show(dataset: str) -> None:
    """Counts per split x label x tone, and the held-out spans of every take.

    \b
    Example:
      guitarlab dataset show my-dataset
    """
    from guitarlab.datasets.folder import open_dataset

    ds = open_dataset(dataset)
    meta, rate = ds.meta, ds.sample_rate
    opts = meta.options
    click.echo(
        f"{ds.path}: label {meta.label!r} ({', '.join(ds.label_names)}), window {ds.window} "
        f"hop {meta.hop} at {rate} Hz, split {opts['split']}, val {opts['val']}, "
        f"standardize {opts['standardize']}, seed {opts['seed']}"
        + (
            f", windows at note onsets (up to {opts['note_windows']} per note)"
            if opts.get("onsets")
            else ""
        )
        + (" [LEAKY]" if ds.leaky else "")
    )
    click.echo(f"manifest rows hash {ds.hash[:16]}..., {len(meta.rows)} file(s)")
    held = meta.held_out
    said = [
        f"{key} {held[key] if isinstance(held[key], str) else ','.join(held[key])!r}"
        for key in ("test_where", "val_where", "test_groups")
        if held.get(key)
    ]
    if said or held.get("columns"):
        click.echo(
            "held out by: "
            + ("; ".join(said) or f"split {held.get('split')}")
            + f" (columns used: {', '.join(held.get('columns', []))})"
        )
    counts = ds.counts()
    if not counts.empty:
        table = counts.pivot_table(
            index=["label", "tone"], columns="split", values="windows", aggfunc="sum", fill_value=0
        )
        table = table.reindex(columns=[c for c in ("train", "val", "test") if c in table.columns])
        click.echo("")
        click.echo(table.to_string())
    click.echo("")
    click.echo("held-out time per take (seconds):")
    for take, spans in sorted(meta.takes.items()):
        parts = [f"{spans['role']:5s}"]
        for what in ("test", "val"):
            for start, end in spans[what]:
                parts.append(f"{what} {start / rate:7.2f}-{end / rate:7.2f}")
        click.echo(f"  {take}: {spans['frames'] / rate:.2f} s  " + "  ".join(parts))
    for note in meta.notes:
        click.echo(f"note: {note}")


@click.command("export")
@corpus_option("Corpus folder to export.")
@click.option(
    "--dataset",
    type=click.Path(file_okay=False),
    default=None,
    help="Dataset folder built from CORPUS: export its files in its train/validation/test "
    "splits (clips for held-out spans) [default: every file, unsplit].",
)
@library_option(
    "--format",
    "format_",
    type=LibraryChoice("guitarlab.datasets.export:FORMATS"),
    default="guitarlab.datasets.export:export_corpus(format)",
    help="Audio files with a metadata.parquet per split (Hugging Face audiofolder), or "
    "data/<split>-*.parquet tables with the audio bytes; label is a ClassLabel in both.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder to write (never inside the corpus).",
)
@library_option(
    "--license",
    "license_",
    type=str,
    library={"unspecified": "guitarlab.datasets.export:UNSPECIFIED"},
    help="Licence for the data card [default: the first line of CORPUS/LICENSE, else "
    "'{unspecified}'].",
)
@click.option(
    "--by-segment",
    is_flag=True,
    help="One clip per segment (segments.csv) of column --label, in every tone of its take, "
    "labelled by the segment; with --dataset each clip in the split its time is in.",
)
@click.option(
    "--label",
    default=None,
    help="With --by-segment: the segment column to cut and label by [default: the "
    "dataset's label when it was built --from-segments].",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace --out if it is an export folder guitarlab made (never any other folder).",
)
@QUIET_OPTION
def export_command(
    corpus: str,
    dataset: str | None,
    format_: str,
    out: str,
    license_: str | None,
    by_segment: bool,
    label: str | None,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Export CORPUS (or a dataset's splits of it) for other tools, with a README.md data card.

    audiofolder opens as it is with datasets.load_dataset("audiofolder", data_dir=OUT):
    the audio, a metadata.parquet per split (file_name first, then label, a ClassLabel in
    the dataset's order, and the provenance columns) and train/validation/test folders
    taken from --dataset; parquet opens with load_dataset("parquet", data_dir=OUT). With
    datasets >= 4 and no torch, the data card shows how to read either with soundfile. A
    span-split dataset exports each held-out span as a clip named after its file
    (<id>__<start>-<end>s.wav; the id begins with the take); whole-take splits export
    whole files. When the corpus has segments (labels in time), each file or clip
    carries its take's segments within it as a JSON 'segments' column; --by-segment
    exports one clip per segment instead. Nothing is written outside --out.

    \b
    Examples:
      guitarlab export --corpus my-corpus --dataset my-dataset --out my-export
      guitarlab export --corpus my-corpus --format parquet --out my-parquet --license CC-BY-4.0
      guitarlab export --corpus my-corpus --by-segment --label technique --out my-clips
    """
    from guitarlab.datasets.export import export_corpus

    path = export_corpus(
        corpus,
        out,
        dataset=dataset,
        format=format_,
        license=license_,
        by_segment=by_segment,
        label=label,
        overwrite=overwrite,
        progress=not quiet,
    )
    click.echo(f"exported to {path} ({format_}); the data card is {path}/README.md")


COMMANDS = [dataset_group, export_command]
