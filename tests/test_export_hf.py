"""``guitarlab export`` opens with Hugging Face ``datasets`` 3.x (the ``hf`` extra) and with
the newest ``datasets``, which decodes audio only with torch and torchcodec: three splits
with the rows exported, ``label`` a ClassLabel in the dataset's label order, the first
audio item of each split decoded and equal to the corpus samples.

Each version runs tests/hf_loader.py, which opens the export as its data card says. The
newest lives in .venv-hf-new, made once (``python -m venv`` + ``pip install datasets
soundfile``: no torch, about 30 s) and upgraded weekly; where PyPI cannot be reached the
test is skipped, except in CI (CI=true), where it must run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
from conftest import write_tone

import guitarlab.datasets.export as export_module
from guitarlab.corpus.intake import import_folder
from guitarlab.corpus.manifest import load_manifest
from guitarlab.datasets.build import build_dataset
from guitarlab.datasets.export import export_corpus, plan_export, read_table
from guitarlab.datasets.folder import read_meta

REPO = Path(__file__).resolve().parents[1]
LOADER = REPO / "tests" / "hf_loader.py"
HF_NEW = REPO / ".venv-hf-new"  # `make clean` removes it
HF_NEW_PACKAGES = ("datasets", "soundfile")
HF_NEW_MAX_AGE_S = 7 * 24 * 3600  # then pip upgrades it: "the newest" stays the newest
SPLITS = ["test", "train", "validation"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict:
    """A span-split dataset of two guitars exported both ways, its whole corpus unsplit,
    and a Parquet export cut into one shard per file."""
    root = tmp_path_factory.mktemp("hf")
    for gi, guitar in enumerate(("ST", "LP")):
        for ti, tone in enumerate(("raw", "clean")):
            write_tone(
                root / "src" / f"{guitar}_lead_{tone}.wav",
                seconds=3.0,
                freq_hz=110.0 * (1 + gi) + 3 * ti,
            )
    corpus = root / "corpus"
    import_folder(root / "src", corpus, progress=False)
    dataset = build_dataset(corpus, root / "ds", progress=False)
    out = {"corpus": corpus, "meta": read_meta(dataset), "root": root}
    for format in ("audiofolder", "parquet"):
        out[format] = export_corpus(
            corpus, root / format, dataset=dataset, format=format, progress=False
        )
        out[f"whole-{format}"] = export_corpus(
            corpus, root / f"whole-{format}", format=format, progress=False
        )
    plan = plan_export(load_manifest(corpus), out["meta"])
    out["rows"] = {s: sum(item.split == s for item in plan.items) for s in SPLITS}
    mp = pytest.MonkeyPatch()
    mp.setattr(export_module, "PARQUET_BATCH_FILES", 1)
    mp.setattr(export_module, "PARQUET_SHARD_BYTES", 1)  # each file a shard of its own
    try:
        out["shards"] = export_corpus(
            corpus, root / "shards", dataset=dataset, format="parquet", progress=False
        )
    finally:
        mp.undo()
    return out


def run_loader(python: Path, jobs: list[str], work: Path) -> tuple[dict, Path]:
    """Run tests/hf_loader.py with ``python``; its JSON report and where it saved audio."""
    decoded = work / "decoded"
    decoded.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1")
    done = subprocess.run(
        [str(python), str(LOADER), str(decoded), str(work / "cache"), *jobs],
        cwd=work,  # not the repository: its datasets/ folder is not Hugging Face's
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), decoded


def check_split_export(calls: dict, exported: dict, decoded: Path, job: str) -> None:
    """What a user checks after loading the span-split export, for each way it was opened."""
    meta, corpus = exported["meta"], exported["corpus"]
    labels = {row["id"]: row["label"] for row in meta["rows"]}
    assert calls, job
    for call, splits in calls.items():
        assert sorted(splits) == SPLITS, (job, call)
        for split, seen in splits.items():
            assert seen["rows"] == exported["rows"][split], (job, call, split)
            assert seen["label_type"] == "ClassLabel", (job, call, split)
            assert seen["label_names"] == meta["label_names"], (job, call, split)
            first = seen["first"]
            assert seen["label_names"][first["label"]] == labels[first["id"]]
            samples = np.load(decoded / f"{job}-{call}-{split}.npy")
            expected, rate = sf.read(
                corpus / first["corpus_path"], start=first["clip_start"], stop=first["clip_end"]
            )
            assert seen["rate"] == rate
            np.testing.assert_array_equal(samples, expected)


def check_whole_export(calls: dict, exported: dict) -> None:
    rows = len(load_manifest(exported["corpus"]))
    for call, splits in calls.items():
        assert list(splits) == ["train"] and splits["train"]["rows"] == rows, call
        assert splits["train"]["label_type"] is None  # no dataset, no label column


def hf_new_python() -> Path:
    """.venv-hf-new's interpreter with the newest ``datasets``, made (or upgraded) here."""
    python, stamp = HF_NEW / "bin" / "python", HF_NEW / ".guitarlab-installed"
    if stamp.is_file() and time.time() - stamp.stat().st_mtime < HF_NEW_MAX_AGE_S:
        return python
    try:
        if not python.exists():
            subprocess.run(
                [sys.executable, "-m", "venv", "--clear", str(HF_NEW)],
                check=True, capture_output=True, text=True, timeout=300,
            )  # fmt: skip
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--upgrade", *HF_NEW_PACKAGES],
            check=True, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
    except (subprocess.SubprocessError, OSError) as exc:
        why = (getattr(exc, "stderr", "") or str(exc)).strip().splitlines()[-1:]
        if stamp.is_file():  # an older install, and no PyPI to upgrade it: still a >= 4
            return python
        message = f"cannot make {HF_NEW.name} with the newest datasets from PyPI: {why}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    stamp.touch()
    return python


def test_shards_are_numbered_per_split_and_read_back_whole(exported: dict) -> None:
    folder = exported["shards"] / "data"
    for split in SPLITS:
        n = exported["rows"][split]
        names = sorted(p.name for p in folder.glob(f"{split}-*.parquet"))
        assert names == [f"{split}-{i:05d}-of-{n:05d}.parquet" for i in range(n)]
    table = read_table(folder)  # pandas, every shard, label as its name
    assert table["split"].value_counts().to_dict() == exported["rows"]
    assert set(table["label"]) == set(exported["meta"]["label_names"])
    schema = pq.read_schema(next(folder.glob("test-*.parquet")))
    features = json.loads(schema.metadata[b"huggingface"])["info"]["features"]
    assert features["label"] == {"_type": "ClassLabel", "names": exported["meta"]["label_names"]}
    assert features["audio"] == {"_type": "Audio"} and schema.names[0] == "audio"
    assert str(schema.field("file_name").type) == "string"  # never large_string


def test_datasets_3x_loads_both_formats_with_a_classlabel_and_decodes_audio(
    exported: dict, tmp_path: Path
) -> None:
    jobs = [
        f"{exported['audiofolder']}:audiofolder:decode",  # load_dataset("audiofolder", ...)
        f"{exported['audiofolder']}:audiofolder:tables",  # the torch-free way, here too
        f"{exported['parquet']}:parquet:decode",
        f"{exported['parquet']}:parquet:bytes",
        f"{exported['shards']}:parquet:decode",
        f"{exported['whole-audiofolder']}:audiofolder:decode",
        f"{exported['whole-parquet']}:parquet:decode",
    ]
    report, decoded = run_loader(Path(sys.executable), jobs, tmp_path)
    assert report["version"].startswith("3."), report["version"]
    for job in ("audiofolder-decode", "audiofolder-tables", "parquet-decode", "parquet-bytes"):
        check_split_export(report["jobs"][job], exported, decoded, job)
    assert set(report["jobs"]["audiofolder-decode"]) == {"folder", "audiofolder"}
    assert report["jobs"]["parquet-decode"]["parquet"]["test"]["audio_type"] == "Audio"
    check_split_export(report["jobs"]["shards-decode"], exported, decoded, "shards-decode")
    check_whole_export(report["jobs"]["whole-audiofolder-decode"], exported)
    check_whole_export(report["jobs"]["whole-parquet-decode"], exported)


def test_the_newest_datasets_without_torch_loads_both_as_the_card_says(
    exported: dict, tmp_path: Path
) -> None:
    python = hf_new_python()
    jobs = [
        f"{exported['audiofolder']}:audiofolder:tables",
        f"{exported['parquet']}:parquet:bytes",
        f"{exported['whole-audiofolder']}:audiofolder:tables",
        f"{exported['whole-parquet']}:parquet:bytes",
    ]
    report, decoded = run_loader(python, jobs, tmp_path)
    assert int(report["version"].split(".")[0]) >= 4, report["version"]
    assert not report["torch"]  # the path for users without torch and torchcodec
    check_split_export(
        report["jobs"]["audiofolder-tables"], exported, decoded, "audiofolder-tables"
    )
    check_split_export(report["jobs"]["parquet-bytes"], exported, decoded, "parquet-bytes")
    assert set(report["jobs"]["parquet-bytes"]) == {"folder", "parquet"}
    check_whole_export(report["jobs"]["whole-audiofolder-tables"], exported)
    check_whole_export(report["jobs"]["whole-parquet-bytes"], exported)
    card = (exported["audiofolder"] / "README.md").read_text()
    assert (
        'load_dataset("parquet", data_files={"train": "THIS_FOLDER/train/metadata.parquet"' in card
    )
    assert "Audio(decode=False)" in (exported["parquet"] / "README.md").read_text()
