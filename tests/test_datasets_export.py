"""datasets/export.py and ``guitarlab export``: opened for real with Hugging Face ``datasets``.

Offline: loading a local audio folder needs no network, and the tests forbid it.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import soundfile as sf
from click.testing import CliRunner
from conftest import write_tone

from guitarlab.cli import cli
from guitarlab.corpus.errors import DatasetError
from guitarlab.corpus.intake import import_folder
from guitarlab.corpus.manifest import load_manifest, update_manifest
from guitarlab.datasets.build import build_dataset
from guitarlab.datasets.export import clip_name, export_corpus, plan_export, read_table
from guitarlab.datasets.folder import open_dataset, read_meta

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]


def hf_datasets():
    """Hugging Face ``datasets``, not this repository's ``datasets/`` folder (which
    ``python -m pytest`` puts on sys.path through the working directory)."""
    loaded = sys.modules.get("datasets")
    if loaded is not None and hasattr(loaded, "load_dataset"):
        return loaded
    sys.modules.pop("datasets", None)
    saved = sys.path[:]
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO]
    try:
        return importlib.import_module("datasets")
    finally:
        sys.path[:] = saved


def load_folder(folder: Path, cache: Path):
    return hf_datasets().load_dataset(
        "audiofolder", data_dir=str(folder), cache_dir=str(cache / "hf-cache")
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("export")
    src = root / "src"
    for gi, guitar in enumerate(("ST", "LP")):
        for pi, phrase in enumerate(("backing", "lead")):
            for ti, tone in enumerate(("raw", "clean")):
                write_tone(
                    src / f"{guitar}_{phrase}_{tone}.wav",
                    seconds=3.0,
                    freq_hz=110.0 * (1 + gi) + 10 * pi + 3 * ti,
                )
    import_folder(src, root / "corpus", progress=False)
    (root / "corpus" / "LICENSE").write_text("CC-BY-4.0\n\nAttribution 4.0 International\n")
    return root / "corpus"


@pytest.fixture(scope="module")
def span_dataset(corpus: Path) -> Path:
    return build_dataset(corpus, corpus.parent / "span-ds", progress=False)


@pytest.fixture(scope="module")
def take_dataset(corpus: Path) -> Path:
    return build_dataset(corpus, corpus.parent / "take-ds", split="take", progress=False)


def corpus_samples(corpus: Path, row: dict) -> np.ndarray:
    audio, _ = sf.read(
        str(corpus / row["corpus_path"]), start=row["clip_start"], stop=row["clip_end"]
    )
    return audio


def test_a_span_split_loads_with_datasets_as_clips_with_labels_splits_and_samples(
    corpus: Path, span_dataset: Path, tmp_path: Path
) -> None:
    out = export_corpus(corpus, tmp_path / "hf", dataset=span_dataset, progress=False)
    loaded = load_folder(out, tmp_path)
    meta = read_meta(span_dataset)
    window, test_len = meta["window"], meta["test_span_samples"]
    files = {row["id"]: row for row in meta["rows"]}
    assert sorted(loaded) == ["test", "train", "validation"]
    # every file of the dataset has one test clip and one validation clip, each its span
    assert len(loaded["test"]) == len(loaded["validation"]) == len(files) == 8
    for split in ("train", "validation", "test"):
        part = loaded[split]
        assert set(part["id"]) == set(files)
        names = part.features["label"].names
        assert names == meta["label_names"]  # a ClassLabel in the dataset's label order
        assert all(
            names[part["label"][i]] == files[part["id"][i]]["label"] for i in range(len(part))
        )
    spans_of = {(row["id"], split): [] for row in meta["rows"] for split in ("tr", "va", "te")}
    for split in ("train", "validation", "test"):
        for row in loaded[split]:
            name = Path(row["audio"]["path"]).name
            assert name == clip_name(row["id"], row["clip_start"], row["clip_end"], 44100)
            assert name.startswith(row["take"] + "-")  # the take shows in the clip's name
            assert row["frames"] == row["clip_end"] - row["clip_start"]
            if split == "test":
                assert row["frames"] == test_len
            else:
                assert row["frames"] >= window
            decoded = row["audio"]["array"]  # decoded by datasets itself
            assert row["audio"]["sampling_rate"] == 44100
            np.testing.assert_array_equal(decoded, corpus_samples(corpus, row))
            spans_of[(row["id"], split[:2])].append((row["clip_start"], row["clip_end"]))
    for rid in files:  # no clip of one split shares time with another split's
        spans = sorted(s for key in ("tr", "va", "te") for s in spans_of[(rid, key)])
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))
        take = meta["takes"][files[rid]["take"]]
        assert spans_of[(rid, "te")] == [tuple(s) for s in take["test"]]
        assert spans_of[(rid, "va")] == [tuple(s) for s in take["val"]]


def test_a_take_split_exports_whole_files_whose_bytes_are_the_corpus_files(
    corpus: Path, take_dataset: Path, tmp_path: Path
) -> None:
    out = export_corpus(corpus, tmp_path / "hf", dataset=take_dataset, progress=False)
    loaded = load_folder(out, tmp_path)
    meta = read_meta(take_dataset)
    test_takes = set(meta["held_out"]["test_takes"])
    manifest = load_manifest(corpus).set_index("id")
    test = loaded["test"]
    assert set(test["take"]) == test_takes
    assert len(test) == sum(row["take"] in test_takes for row in meta["rows"])
    for row in test:
        assert Path(row["audio"]["path"]).name == f"{row['id']}.wav"
        assert row["sha256"] == row["corpus_sha256"] == manifest.loc[row["id"], "sha256"]
        assert (row["clip_start"], row["clip_end"]) == (0, manifest.loc[row["id"], "frames"])
        np.testing.assert_array_equal(row["audio"]["array"], corpus_samples(corpus, row))
    assert not set(loaded["train"]["take"]) & test_takes
    card = (out / "README.md").read_text()
    assert "take split: the test set is whole takes" in card and "license: CC-BY-4.0" in card


def test_the_whole_corpus_exports_unsplit_with_every_manifest_row(
    corpus: Path, tmp_path: Path
) -> None:
    out = export_corpus(corpus, tmp_path / "all", progress=False)
    loaded = load_folder(out, tmp_path)
    manifest = load_manifest(corpus)
    assert list(loaded) == ["train"] and len(loaded["train"]) == len(manifest)
    assert sorted(loaded["train"]["id"]) == sorted(manifest["id"])
    assert set(loaded["train"]["guitar"]) == {"stratocaster", "les_paul"}
    assert pq.read_schema(out / "metadata.parquet").names[0] == "file_name"  # file_name first
    assert (out / "LICENSE").read_text().startswith("CC-BY-4.0")
    card = (out / "README.md").read_text()
    assert "**CC-BY-4.0** (from the corpus's LICENSE)" in card
    assert "| stratocaster | 4 (12.0 s) |" in card  # 4 files of 3 s per guitar


def test_parquet_is_a_table_per_split_with_the_audio_bytes(
    corpus: Path, span_dataset: Path, tmp_path: Path
) -> None:
    folder = export_corpus(corpus, tmp_path / "hf", dataset=span_dataset, progress=False)
    out = export_corpus(
        corpus, tmp_path / "pq", dataset=span_dataset, format="parquet", progress=False
    )
    assert sorted(p.name for p in (out / "data").iterdir()) == [
        f"{split}-00000-of-00001.parquet" for split in ("test", "train", "validation")
    ]
    table = read_table(out / "data")
    plan = plan_export(load_manifest(corpus), read_meta(span_dataset))
    assert len(table) == len(plan.items)
    assert (
        table["split"].value_counts().to_dict()
        == pd.Series([item.split for item in plan.items]).value_counts().to_dict()
    )
    for _, row in table.iterrows():
        audio = row["audio"]
        assert audio["path"] == row["file_name"]
        assert audio["bytes"] == (folder / row["file_name"]).read_bytes()
    one = table.iloc[0]
    import io

    decoded, rate = sf.read(io.BytesIO(one["audio"]["bytes"]))
    assert rate == one["sample_rate"] and decoded.shape[0] == one["frames"]


def test_refuses_an_out_inside_the_corpus_and_a_dataset_of_another_corpus_state(
    corpus: Path, span_dataset: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    inside = runner.invoke(
        cli, ["export", "--corpus", str(corpus), "--out", str(corpus / "export")]
    )
    assert inside.exit_code == 1
    assert inside.output.count("\n") == 1 and "is inside the corpus" in inside.output
    assert not (corpus / "export").exists()
    holder = runner.invoke(cli, ["export", "--corpus", str(corpus), "--out", str(corpus.parent)])
    assert holder.exit_code == 1 and "holds the corpus" in holder.output

    changed = tmp_path / "changed"
    import shutil

    shutil.copytree(corpus, changed)
    update_manifest(changed, lambda frame: frame[frame["tone"] == "raw"])
    with pytest.raises(DatasetError, match="is no longer in the corpus"):
        export_corpus(changed, tmp_path / "x", dataset=span_dataset, progress=False)
    assert not (tmp_path / "x").exists()


def test_cli_export_writes_and_refuses_to_overwrite(
    corpus: Path, take_dataset: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    out = tmp_path / "cli-export"
    args = ["export", "--corpus", str(corpus), "--dataset", str(take_dataset), "--out", str(out)]
    done = runner.invoke(cli, args + ["--license", "MIT", "--quiet"])
    assert done.exit_code == 0, done.output
    assert f"exported to {out}" in done.output
    assert "license: MIT" in (out / "README.md").read_text()
    assert not (out / "LICENSE").exists()  # a licence given by hand is not the corpus's file
    again = runner.invoke(cli, args + ["--quiet"])
    assert again.exit_code == 1 and "exists and is not empty" in again.output
    assert runner.invoke(cli, args + ["--quiet", "--overwrite"]).exit_code == 0
    assert open_dataset(take_dataset).meta["totals"]  # the dataset is untouched
    helped = runner.invoke(cli, ["export", "--help"])
    assert helped.exit_code == 0 and "guitarlab export --corpus my-corpus" in helped.output
