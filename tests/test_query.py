"""corpus/query.py: the one ``--where`` language augment and dataset build share."""

from __future__ import annotations

import ast
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from guitarlab.cli import cli
from guitarlab.corpus.errors import DatasetError
from guitarlab.corpus.manifest import load_manifest
from guitarlab.corpus.query import query_rows
from guitarlab.datasets.folder import open_dataset
from guitarlab.synth.session import session_to_corpus

ROOT = Path(__file__).resolve().parents[1]
FRETS = [str(f) for f in range(13)]  # as the manifest keeps them: text


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [f"n{f}" for f in FRETS] + ["x"],
            "fret": FRETS + [""],
            "tone": ["raw"] * 7 + ["clean"] * 6 + ["raw"],
            "my col": ["a"] * 14,
        }
    )


def picked(frame: pd.DataFrame, where) -> list[str]:
    return list(query_rows(frame, where)["id"])


@pytest.mark.parametrize(
    ("where", "ids"),
    [
        ("fret >= 10", ["n10", "n11", "n12"]),  # as text, "2" >= "10" too
        ("10 <= fret", ["n10", "n11", "n12"]),
        ("fret > '9' and fret < 11", ["n10"]),  # a quoted number is a number here
        ("2 <= fret <= 3", ["n2", "n3"]),
        ("fret == '03'", ["n3"]),
        ("fret == ''", ["x"]),  # empty cells are never numbers, and equal ''
        ("fret in (0, 12)", ["n0", "n12"]),
        ("fret == [0, 12]", ["n0", "n12"]),
        ("fret >= 11 | tone == 'x'", ["n11", "n12"]),
        ("~(tone == 'raw') & fret >= 12", ["n12"]),
        ("tone not in ['clean'] and not fret < 6", ["n6", "x"]),  # '' is not < 6 either
        ("`my col` == 'a' and fret == 1", ["n1"]),
        ("tone < 'd' and fret <= 7", ["n7"]),  # text orders as text
        ("fret=12", ["n12"]),
        (["tone=clean", "fret=1", "fret=12"], ["n12"]),  # one column: either; columns: all
    ],
)
def test_numbers_compare_as_numbers_and_text_as_text(frame, where, ids) -> None:
    assert picked(frame, where) == ids


@pytest.mark.parametrize(
    ("where", "says"),
    [
        ("colour == 'red'", "no column 'colour'"),
        ("colour=red", "no column 'colour'"),
        ("fret >=", "is not a valid query over the manifest columns"),
        ("fret >= 'high'", "column 'fret' holds numbers; compare it with a number"),
        ("tone >= 3", "column 'tone' holds text ('raw'), not numbers"),
        ("fret", "'fret' is not a condition"),
        ("fret + 1 > 3", "arithmetic is not part of the query language"),
        ("tone.str.startswith('r')", "calls and attributes are not part of the query language"),
        ("__import__('os').getcwd() == 1", "calls and attributes are not part"),
        ("tone in 'raw'", "'in' takes a list"),
        ("", "is empty"),
    ],
)
def test_a_bad_condition_is_one_line_naming_it_and_the_columns(frame, where, says) -> None:
    with pytest.raises(DatasetError) as caught:
        query_rows(frame, where, option="--test-where", error=DatasetError)
    line = str(caught.value)
    assert says in line and f"--test-where {where!r}" in line
    assert line.endswith("columns: id, fret, tone, my col") and "\n" not in line


def test_augment_and_dataset_build_select_the_same_rows(tmp_path: Path) -> None:
    """The issue's example through the CLI, on a session corpus with frets 0-12."""
    corpus = tmp_path / "session"
    session_to_corpus(
        corpus, settings=("bridge-humbucker", "bridge-split"), frets=range(13), seconds=0.3,
        lead_in_s=0.05, sample_rate=8000, progress=False,
    )  # fmt: skip
    runner = CliRunner()
    built = runner.invoke(
        cli,
        ["dataset", "build", "--corpus", str(corpus), "--out", str(tmp_path / "ds"),
         "--label", "pickup", "--where", "fret >= 10", "--window", "800", "--split", "take",
         "--quiet"],
    )  # fmt: skip
    assert built.exit_code == 0, built.output
    ds = open_dataset(tmp_path / "ds")
    in_dataset = {i for split in ("train", "val", "test") for i in ds.windows(split)["id"]}

    rendered = runner.invoke(
        cli, ["augment", "--corpus", str(corpus), "--tones", "clean", "--where", "fret >= 10",
              "--quiet"],
    )  # fmt: skip
    assert rendered.exit_code == 0, rendered.output
    manifest = load_manifest(corpus)
    sources = set(manifest.loc[manifest["tone"] == "clean", "source"])

    assert sources == in_dataset
    frets = manifest.set_index("id").loc[sorted(sources), "fret"]
    assert sorted(set(frets.astype(int))) == [10, 11, 12] and len(sources) == 2 * 6 * 3

    out = str(tmp_path / "x")  # never a folder beside the tests: the build's lock goes there
    for command in (["augment", "--tones", "clean"], ["dataset", "build", "--out", out]):
        bad = runner.invoke(cli, [*command, "--corpus", str(corpus), "--where", "frets >= 10"])
        assert bad.exit_code == 1 and "Traceback" not in bad.output, bad.output
        (line,) = [x for x in bad.output.splitlines() if "frets" in x]
        assert "no column 'frets'" in line and "fret, setting" in line


def test_one_function_selects_rows_for_every_stage() -> None:
    """Every stage's --where goes through corpus.query, and no two functions share a name
    that says 'select the rows' (two select_rows once parsed two dialects)."""
    from guitarlab.augment import renders as augment_renders
    from guitarlab.datasets import select

    assert augment_renders.query_rows is query_rows and select.query_rows is query_rows
    defined = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for folder in ("corpus", "synth", "recorder", "augment", "datasets", "train", "guitarlab")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef) and node.name in ("select_rows", "query_rows")
    ]
    assert len(defined) == 2, defined  # select_rows (datasets) and query_rows (corpus)
