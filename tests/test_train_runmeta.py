"""run.json as a typed record (RunMeta): written and read only through train/runmeta.py.

What a user checks: a run's description reads back as the same record it was written
from (and the same JSON, key for key), evaluate's metrics merge into it; a run folder
from before the record (fields missing, keys this version does not know) still predicts;
a run.json missing or garbling a field the run needs says so in one line naming run.json
and the field; and no module outside the record reads or writes run.json itself.
"""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from pathlib import Path

import pytest
from conftest import write_tone
from test_battery import assert_one_line_error, run

from guitarlab.corpus.errors import TrainError
from guitarlab.train.rundir import load_run
from guitarlab.train.runmeta import (
    REQUIRED,
    AutoChoice,
    RunData,
    RunMeta,
    load_run_meta,
    read_run_meta,
    update_run_meta,
    write_run_meta,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def features_run(tmp_path_factory) -> dict[str, Path]:
    """Two guitars x three 0.5 s takes, a dataset and a features run of it (seconds, no TF)."""
    root = tmp_path_factory.mktemp("runmeta")
    for gi, guitar in enumerate(("tele", "lp")):
        for take in (1, 2, 3):
            write_tone(
                root / "src" / f"{guitar}_backing_{take}.wav",
                freq_hz=330.0 + 70 * gi + 7 * take,
                seconds=0.5,
            )
    corpus, dataset, out = root / "corpus", root / "dataset", root / "run"
    steps = (
        ("import", root / "src", "--corpus", corpus, "--pattern", "{guitar}_{phrase}_{take}"),
        ("dataset", "build", "--corpus", corpus, "--out", dataset, "--window", "1024")
        + ("--test-windows", "2", "--quiet"),
        ("train", "--dataset", dataset, "--out", out, "--model", "features"),
    )
    for args in steps:
        result = run(*args)
        assert result.exit_code == 0, result.output
    return {"run": out, "dataset": dataset, "wav": root / "src" / "tele_backing_1.wav"}


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_run_json_round_trips_through_the_typed_record(features_run, tmp_path) -> None:
    out = _copy(features_run["run"], tmp_path / "run")
    text = (out / "run.json").read_text(encoding="utf-8")
    raw = json.loads(text)
    meta = load_run_meta(out)
    assert isinstance(meta, RunMeta) and isinstance(meta.data, RunData)
    assert meta.to_dict() == raw and list(meta.to_dict()) == list(raw)  # same keys, same order
    assert list(meta.data.to_dict()) == list(raw["data"])
    assert (meta.model, meta.status, meta.finished, meta.running) == (
        "features",
        "finished",
        True,
        False,
    )
    assert meta.label_names == ["lp", "tele"] and meta.window == 1024 and meta.sample_rate == 44100
    assert meta.data.dataset_dir == str(features_run["dataset"].resolve())
    assert meta.data.standardize == "file" and meta.data.dataset_meta["windows_at"] == "grid"
    assert meta.features["sklearn_version"] and meta.extra == {} and meta.auto is None
    assert "auto" not in raw and "strategy" not in raw  # a features run has neither
    assert meta.train_config.model == "features"
    assert RunMeta.from_dict(raw) == meta and load_run(out).meta == meta
    assert dict(meta) == raw and meta["metrics"] == raw["metrics"]  # read-only mapping view
    write_run_meta(out, meta)
    assert (out / "run.json").read_text(encoding="utf-8") == text  # written back byte for byte

    before = dict(meta.metrics)
    result = run("evaluate", out)
    assert result.exit_code == 0, result.output
    after = load_run_meta(out)
    assert after.metrics["test_file_accuracy"] == 1.0  # evaluate merged its metrics in
    assert {k: after.metrics[k] for k in before if k != "test_window_accuracy"} == {
        k: v for k, v in before.items() if k != "test_window_accuracy"
    }
    assert after.history == meta.history and after.features == meta.features

    update_run_meta(out, metrics={"note": 1}, from_the_future=True)  # a key it does not know
    again = load_run_meta(out)
    assert again.metrics["note"] == 1 and again.metrics["test_file_accuracy"] == 1.0
    assert again.extra == {"from_the_future": True}


def test_an_auto_choice_round_trips() -> None:
    rows = [{"name": "features", "val_file_balanced_accuracy": 0.9, "chosen": True}]
    meta = RunMeta(
        config={"model": "features"},
        label_names=["a", "b"],
        window=8,
        auto=AutoChoice(chosen="features", why="features has the best", candidates=rows),
        requested_model="auto",
    )
    raw = json.loads(json.dumps(meta.to_dict()))
    assert raw["auto"] == {"chosen": "features", "why": "features has the best", "candidates": rows}
    assert RunMeta.from_dict(raw) == meta and RunMeta.from_dict(raw).auto.why.startswith("features")


def test_a_run_folder_from_before_the_record_still_predicts(features_run, tmp_path) -> None:
    out = _copy(features_run["run"], tmp_path / "old-run")
    raw = json.loads((out / "run.json").read_text(encoding="utf-8"))
    for key in ("guitarlab_version", "status", "channels", "device", "started_at", "finished_at"):
        raw.pop(key)
    for key in ("source", "leaky", "dataset_meta"):  # before runs copied the dataset's scalars
        raw["data"].pop(key)
    raw["data"]["standardization"] = None  # as the dict writer wrote it
    raw["class_weight"] = None
    raw["from_the_future"] = {"kept": True}
    (out / "run.json").write_text(json.dumps(raw), encoding="utf-8")
    meta = load_run_meta(out)
    assert meta.status is None and meta.channels == 1 and meta.data.dataset_meta is None
    assert meta.data.standardize == "file" and meta.data.standardization is None
    assert meta.to_dict()["from_the_future"] == {"kept": True}  # written back as it was
    info = load_run(out)
    assert info.dataset_dir == features_run["dataset"].resolve() and info.sample_rate == 44100
    result = run("predict", out, features_run["wav"])
    assert result.exit_code == 0, result.output
    assert "tele" in result.output


@pytest.mark.parametrize("field", REQUIRED)
def test_a_run_json_missing_a_field_is_one_line_naming_it(features_run, tmp_path, field) -> None:
    out = _copy(features_run["run"], tmp_path / "run")
    raw = json.loads((out / "run.json").read_text(encoding="utf-8"))
    raw.pop(field)
    (out / "run.json").write_text(json.dumps(raw), encoding="utf-8")
    if field == "config":  # without it the folder check looks for a network's model.keras
        with zipfile.ZipFile(out / "model.keras", "w") as archive:
            archive.writestr("config.json", "{}")
    line = assert_one_line_error(run("predict", out, features_run["wav"]), "run.json", field)
    assert "incomplete" in line and "retrain or restore the run" in line
    with pytest.raises(TrainError, match=rf"run\.json: incomplete, no {field};"):
        load_run_meta(out)
    assert read_run_meta(out).model == ("" if field == "config" else "features")  # a partial read


@pytest.mark.parametrize(
    ("field", "value"),
    [("window", "1024"), ("window", 0), ("label_names", "lp,tele"), ("config", ["features"])],
)
def test_a_run_json_with_an_invalid_field_is_one_line_naming_it(
    features_run, tmp_path, field, value
) -> None:
    out = _copy(features_run["run"], tmp_path / "run")
    raw = json.loads((out / "run.json").read_text(encoding="utf-8"))
    raw[field] = value
    (out / "run.json").write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(TrainError, match=rf"run\.json: .*{field}.*retrain or restore the run"):
        load_run_meta(out)
    result = run("evaluate", out)
    assert_one_line_error(result, "run.json", field)


def test_no_module_reads_or_writes_run_json_but_the_record() -> None:
    """run.json is parsed and written in train/runmeta.py only; elsewhere it is a name
    (a folder check, a message). Dict-style reads of a run's record are gone too."""
    packages = ("corpus", "synth", "recorder", "augment", "datasets", "train", "guitarlab")
    files = [p for package in packages for p in (ROOT / package).rglob("*.py")]
    files += list((ROOT / "benchmarks").glob("*.py"))
    io = re.compile(r"json\.loads?\(|read_text\(|write_text|write_json\(|open\(|json\.dumps?\(")
    names = re.compile(r"RUN_JSON|[\"']run\.json[\"']")
    dict_reads = re.compile(
        r"(\.info|info\.meta|read_run_meta\([^)]*\)|load_run_meta\([^)]*\))(\[[\"']|\.get\()"
    )
    found = []
    for path in files:
        if path.name == "runmeta.py" and path.parent.name == "train":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if (names.search(line) and io.search(line)) or dict_reads.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == []
