"""dataset.json as a typed record (DatasetMeta) and the build as BuildConfig -> plan ->
stream -> write.

What a user checks: a dataset's description reads back as the same record it was written
from (and the same JSON, key for key); an older description missing fields still opens,
an older format says in one line to rebuild; a build from a BuildConfig is the keyword
build bit for bit; a bad option is refused in one line before the corpus is read.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import write_tone

from guitarlab.corpus.errors import DatasetError
from guitarlab.corpus.intake import import_folder
from guitarlab.corpus.manifest import load_manifest
from guitarlab.corpus.segments import add_segments
from guitarlab.datasets.build import build, build_dataset, meta_text
from guitarlab.datasets.folder import open_dataset, read_meta
from guitarlab.datasets.meta import DatasetMeta
from guitarlab.datasets.plan import BuildConfig, plan_build


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """2 guitars x 2 phrases x 2 tones of 1 s at 8 kHz."""
    base = tmp_path_factory.mktemp("meta")
    for gi, guitar in enumerate(("ST", "LP")):
        for pi, phrase in enumerate(("lead", "riff")):
            for ti, tone in enumerate(("raw", "clean")):
                write_tone(
                    base / "src" / f"{guitar}_{phrase}_{tone}.wav",
                    seconds=1.0,
                    rate=8000,
                    freq_hz=110.0 * (1 + gi) + 10 * pi + 3 * ti,
                )
    import_folder(base / "src", base / "corpus", progress=False)
    return base / "corpus"


def _folder(path: Path) -> dict[str, bytes]:
    out = {}
    for item in sorted(path.iterdir()):
        data = item.read_bytes()
        if item.name in ("dataset.json", ".guitarlab-output.json"):
            meta = json.loads(data)
            meta.pop("created_at")
            data = json.dumps(meta).encode()  # key order kept: it is part of the file
        out[item.name] = data
    return out


def test_dataset_json_round_trips_through_the_typed_record(corpus, tmp_path) -> None:
    out = build_dataset(
        corpus, tmp_path / "ds", window=1000, hop=500, test_windows=2, progress=False
    )
    raw = json.loads((out / "dataset.json").read_text(encoding="utf-8"))
    meta = read_meta(out)
    assert isinstance(meta, DatasetMeta)
    assert meta.to_dict() == raw and list(meta.to_dict()) == list(raw)  # same keys, same order
    assert (meta.window, meta.hop, meta.sample_rate) == (1000, 500, 8000)
    assert meta.label_names == ["les_paul", "stratocaster"] and meta.n_classes == 2
    assert meta.options["split"] == "span" and meta.options["test_windows"] == 2
    assert sum(meta.totals.values()) == sum(c["windows"] for c in meta.counts) > 0
    assert "segments" not in raw and "held_out_from_hash" not in raw
    assert open_dataset(out).meta == meta


def test_an_older_description_missing_fields_still_opens(corpus, tmp_path) -> None:
    out = build_dataset(corpus, tmp_path / "ds", window=1000, test_windows=2, progress=False)
    path = out / "dataset.json"
    raw = json.loads(path.read_text(encoding="utf-8"))
    for key in ("hop", "windows_at", "stored_samples", "held_out", "notes", "options"):
        raw.pop(key)
    raw["from_the_future"] = {"kept": True}
    path.write_text(json.dumps(raw), encoding="utf-8")
    meta = read_meta(out)
    assert meta.hop == meta.window == 1000 and meta.windows_at == "grid"
    assert meta.held_out == {} and meta.notes == [] and meta.options == {}
    assert meta.to_dict()["from_the_future"] == {"kept": True}  # written back as it was
    x, y = open_dataset(out).arrays("train")
    assert x.shape[0] == y.shape[0] > 0
    raw["format_version"] = 1
    path.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(DatasetError, match=r"dataset format 1, .* rebuild it") as error:
        read_meta(out)
    assert "\n" not in str(error.value)


def test_a_build_from_a_config_is_the_keyword_build_bit_for_bit(corpus, tmp_path) -> None:
    options = dict(window=1000, hop=700, test_where="phrase == 'riff'", progress=False)
    one = build_dataset(corpus, tmp_path / "one", **options)
    config = BuildConfig(corpus, tmp_path / "two", **options)
    plan = plan_build(config)  # the plan alone writes nothing
    assert not (tmp_path / "two").exists()
    assert plan.config.split == "take"  # resolved from --test-where; val as the build records
    assert plan.config.recorded() == read_meta(one).options
    assert sum(plan.totals.values()) == sum(sum(v.size for k, v in layout.items() if k in
               ("train", "val", "test")) for layout in plan.layouts)  # fmt: skip
    two = build(config)
    a, b = _folder(one), _folder(two)
    assert a.pop("dataset.json") == b.pop("dataset.json")
    assert a == b and "train_audio.npy" in a


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (dict(window=10), "window=10, hop=10: use a window of at least"),
        (dict(engine="spark"), "unknown engine 'spark'"),
        (dict(standardize="global"), "unknown standardize 'global'"),
        (dict(test_seconds=float("nan")), "test_seconds=nan: give a finite length"),
        (dict(onsets=True, note_windows=0), "--note-windows must be at least 1"),
    ],
)
def test_a_bad_option_is_one_line_before_the_corpus_is_read(tmp_path, options, message) -> None:
    with pytest.raises(DatasetError, match=message) as error:
        BuildConfig(tmp_path / "no-corpus", tmp_path / "ds", **options)
    assert "\n" not in str(error.value)


def test_from_segments_names_the_takes_it_leaves_out(corpus, tmp_path) -> None:
    root = tmp_path / "corpus"
    shutil.copytree(corpus, root)
    takes = sorted(set(load_manifest(root)["take"].astype(str)))
    halves = [
        {"start_s": 0.0, "end_s": 0.5, "technique": "palm"},
        {"start_s": 0.5, "end_s": 1.0, "technique": "open"},
    ]
    for take in takes[:2]:
        add_segments(root, take, halves, origin="test")
    out = build_dataset(
        root, tmp_path / "ds", label="technique", from_segments=True, window=1000,
        test_windows=1, progress=False,
    )  # fmt: skip
    meta = read_meta(out)
    assert meta.label_names == ["open", "palm"]
    assert {row["take"] for row in meta.rows} == set(takes[:2])
    left = f"{len(takes) - 2} take(s) without a 'technique' segment left out"
    assert any(note.startswith(f"--from-segments: {left}") for note in meta.notes)


def test_dataset_json_is_a_field_a_line_and_reads_back_whole() -> None:
    meta = {"format": "guitarlab-dataset", "options": {"window": 8000, "where": "tone == 'raw'"},
            "notes": ["a", "é"], "takes": {f"t{i}": {"role": "train"} for i in range(300)}}  # fmt: skip
    text = meta_text(meta)
    assert json.loads(text) == meta
    lines = text.splitlines()
    assert lines[0] == "{" and lines[-1] == "}" and len(lines) == len(meta) + 2
    assert lines[2] == ' "options": {"window": 8000, "where": "tone == \'raw\'"},'
