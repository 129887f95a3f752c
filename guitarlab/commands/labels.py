"""``guitarlab labels``: labels in time (segments of a take) in from and out to annotation files."""

from __future__ import annotations

import click

from guitarlab.commands import corpus_option, user_option
from guitarlab.corpus.errors import GuitarlabError


@click.group("labels")
def labels_group() -> None:
    """Labels in time: segments of a take (segments.csv beside manifest.csv).

    A segment is a span of a take with label columns (technique=palm_mute, pitch=43,
    string=6, fret=3); every render of the take inherits it.

    \b
    Examples:
      guitarlab labels import riff.txt --corpus C --take strat-riff-t001 --column technique
      guitarlab labels import AR_Lick1_FN.xml --corpus C --take ar-lick1-fn-t001
      guitarlab labels export --corpus C --take strat-riff-t001 --column technique --out riff.txt
      guitarlab labels list --corpus C
    """


@labels_group.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@corpus_option()
@click.option("--take", required=True, help="The take the file annotates (its id in the manifest).")
@click.option(
    "--column",
    default=None,
    help="For an Audacity label track (.txt): the label column its text goes to, e.g. technique.",
)
@user_option()
def labels_import(file: str, corpus: str, take: str, column: str | None, user: str | None) -> None:
    """Add the segments of an annotation FILE to a take: .txt (Audacity label track), .jams
    (note_midi, chord, tag_open, key_mode) or .xml (IDMT-SMT-Guitar).

    Importing onto the same take again replaces the take's segments of the columns the
    file brings (for a .txt: --column), as one change that 'review' can undo.

    \b
    Examples:
      guitarlab labels import riff.txt --corpus C --take strat-riff-t001 --column technique
      guitarlab labels import 00_BN1-129-Eb_solo.jams --corpus C --take gs-solo-t001
      guitarlab labels import AR_Lick1_FN.xml --corpus C --take ar-lick1-fn-t001
    """
    from guitarlab.corpus.annotations import dumps_summary, read_annotation_file
    from guitarlab.corpus.segments import add_segments, load_segments, segments_of

    found = read_annotation_file(file, column=column)
    if not found.segments:
        raise GuitarlabError(
            f"{file}: no spans to import"
            + (f" (skipped {found.skipped_text()})" if found.skipped else "")
        )
    before = segments_of(load_segments(corpus), take)
    replaced = sum(
        int(any(c in before and str(row[c]) != "" for c in found.columns))
        for _, row in before.iterrows()
    )
    ids = add_segments(
        corpus,
        take,
        found.segments,
        origin=found.origin,
        replace_column=found.columns,
        who=user,
    )
    text = f"labels import: {dumps_summary(found, take=take)}; ids {ids[0]}..{ids[-1]}"
    if replaced:
        text += f"; replaced {replaced} earlier segment(s) of those columns"
    click.echo(text)


@labels_group.command("export")
@corpus_option()
@click.option("--take", required=True, help="The take whose segments to write.")
@click.option("--column", required=True, help="The label column whose text the labels carry.")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False),
    help="The Audacity label track to write (FILE.txt; Audacity: File > Import > Labels).",
)
def labels_export(corpus: str, take: str, column: str, out: str) -> None:
    """Write a take's segments of one column as an Audacity label track
    (start<TAB>end<TAB>label, seconds with 6 decimals), sorted by start.

    \b
    Example:
      guitarlab labels export --corpus C --take strat-riff-t001 --column technique --out riff.txt
    """
    from guitarlab.corpus.annotations import format_audacity
    from guitarlab.corpus.atomic import write_text_atomic
    from guitarlab.corpus.manifest import load_manifest
    from guitarlab.corpus.segments import label_columns, load_segments

    manifest = load_manifest(corpus)
    if take not in set(manifest["take"].astype(str)):
        raise GuitarlabError(
            f"take {take!r} is not in the manifest of {corpus}; "
            f"'guitarlab labels list --corpus {corpus}' shows the takes with segments"
        )
    segments = load_segments(corpus)
    mine = segments[segments["take"] == take]
    mine = mine.sort_values("id", kind="stable").sort_values("start_s", kind="stable")
    if column not in mine or not (mine[column] != "").any():
        have = [c for c in label_columns(mine) if (mine[c] != "").any()]
        raise GuitarlabError(
            f"take {take} has no segments labelling {column!r}; "
            + (f"its columns: {', '.join(have)}" if have else "it has no segments")
        )
    mine = mine[mine[column] != ""]
    write_text_atomic(
        out, format_audacity(zip(mine["start_s"], mine["end_s"], mine[column], strict=True))
    )
    click.echo(f"labels export: {len(mine)} labels of {column!r} on take {take} -> {out}")


@labels_group.command("list")
@corpus_option()
@click.option("--take", default=None, help="Only this take's segments.")
def labels_list(corpus: str, take: str | None) -> None:
    """Show the segments as a table (id, take, start_s, end_s, origin, label columns).

    \b
    Examples:
      guitarlab labels list --corpus C
      guitarlab labels list --corpus C --take strat-riff-t001
    """
    from guitarlab.corpus.manifest import load_manifest
    from guitarlab.corpus.segments import label_columns, load_segments, segments_of

    load_manifest(corpus)  # a missing corpus is one line, not an empty table
    segments = load_segments(corpus)
    if take is not None:
        segments = segments_of(segments, take)
    else:
        segments = segments.sort_values(["take", "start_s", "end_s", "id"], kind="stable")
    if segments.empty:
        where = f" on take {take}" if take else ""
        click.echo(
            f"no segments{where} in {corpus}; add some with 'guitarlab labels import FILE "
            f"--corpus {corpus} --take TAKE'"
        )
        return
    used = [c for c in label_columns(segments) if (segments[c] != "").any()]
    table = segments[["id", "take", "start_s", "end_s", "origin", *used]]
    click.echo(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    click.echo(f"{len(table)} segment(s) on {table['take'].nunique()} take(s)")


COMMANDS = [labels_group]
