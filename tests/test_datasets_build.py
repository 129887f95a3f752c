"""Building dataset folders from real WAV corpora: counts, leak checks, options, bad inputs."""

from __future__ import annotations

import json
import math
import shutil
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from click.testing import CliRunner
from conftest import post_corpus, write_tone

from guitarlab.cli import cli
from guitarlab.corpus.errors import DatasetError
from guitarlab.corpus.intake import import_folder
from guitarlab.corpus.manifest import load_manifest, update_manifest
from guitarlab.datasets.build import build_dataset
from guitarlab.datasets.folder import check_dataset, open_dataset
from guitarlab.datasets.windows import covered_spans

SECONDS = 3.0
RATE = 44100
FRAMES = int(SECONDS * RATE)  # 132,300: 16 windows of 8000


def make_corpus(root: Path, *, phrases=("backing", "lead"), **options) -> Path:
    """Post-named WAVs (``ST_backing_raw.wav``...) imported into a corpus at ``root``."""
    return post_corpus(root, phrases=phrases, **options)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("build") / "corpus")


@pytest.fixture(scope="module")
def span_dataset(corpus: Path, tmp_path_factory) -> Path:
    return build_dataset(corpus, tmp_path_factory.mktemp("ds") / "span", progress=False)


def test_post_setup_counts_follow_from_frames(span_dataset: Path) -> None:
    ds = open_dataset(span_dataset)
    meta = ds.meta
    assert (
        meta["sample_rate"] == RATE
        and ds.window == 8000
        and ds.label_names
        == [
            "les_paul",
            "stratocaster",
        ]
    )
    n_files = 12
    grid = FRAMES // 8000  # 16 windows per file
    val_per_file = round((FRAMES - 96_000) * 0.2 / 8000)  # 1
    totals = meta["totals"]
    assert totals["test"] == 12 * n_files
    assert totals["val"] == val_per_file * n_files
    assert (
        totals["train"] + totals["val"] + totals["test"] + meta["dropped_windows"] == grid * n_files
    )
    assert meta["dropped_windows"] == 0  # spans on the window grid waste nothing
    for take, spans in meta["takes"].items():
        (s, e) = spans["test"][0]
        assert e - s == 96_000 and s % 8000 == 0, take
    assert check_dataset(span_dataset) == []
    counts = ds.counts()
    assert counts["windows"].sum() == sum(totals.values())
    assert set(counts["tone"]) == {"raw", "clean", "crunch"}


def test_every_tone_of_a_take_holds_out_the_same_time(span_dataset: Path) -> None:
    ds = open_dataset(span_dataset)
    test = ds.windows("test")
    per_take = test.groupby("take")["start"].apply(lambda s: tuple(sorted(set(s))))
    assert all(len(starts) == 12 for starts in per_take)
    per_file = test.groupby("id")["start"].apply(tuple)
    for file_id, starts in per_file.items():
        take = file_id.rsplit("-", 1)[0]
        assert starts == per_take[take]


def first_file_standardized(corpus: Path) -> tuple[pd.Series, np.ndarray]:
    """The corpus's first manifest row and its audio, z-scored as the build does per file."""
    row = load_manifest(corpus).iloc[0]
    audio, _ = sf.read(corpus / row["path"], dtype="float32")
    return row, (audio - audio.mean(dtype=np.float64)) / audio.std(dtype=np.float64)


def test_windows_hold_the_standardized_audio(corpus: Path, span_dataset: Path) -> None:
    ds = open_dataset(span_dataset)
    row, z = first_file_standardized(corpus)
    for split in ("train", "test"):
        x, y = ds.arrays(split)
        table = ds.windows(split)
        idx = table.index[table["id"] == row["id"]][0]
        start = int(table.loc[idx, "start"])
        np.testing.assert_allclose(x[idx, :, 0], z[start : start + 8000], atol=1e-4)
        assert ds.label_names[int(y[idx])] == row["guitar"]


def test_overlapping_windows_are_stored_once(corpus: Path, tmp_path: Path) -> None:
    """A hop of a quarter window makes four times the windows, not four times the disk."""
    ds = open_dataset(build_dataset(corpus, tmp_path / "dense", hop=2000, progress=False))
    row, z = first_file_standardized(corpus)
    for split in ("train", "test"):
        x, _ = ds.arrays(split)
        table = ds.windows(split)
        covered = sum(
            int(np.diff(covered_spans(g["start"].to_numpy(), 8000), axis=1).sum())
            for _, g in table.groupby("id")
        )
        assert x.audio.shape == (covered,) == (ds.meta["stored_samples"][split],)
        assert covered <= x.shape[0] * 8000  # never more than the windows themselves
        if split == "train":  # every 2,000 samples (test windows stay back to back)
            assert covered < 0.5 * x.shape[0] * 8000  # overlapping windows share samples
        mine = table.index[table["id"] == row["id"]]
        assert len(mine) > 1
        for idx in mine:
            start = int(table.loc[idx, "start"])
            np.testing.assert_allclose(x[idx, :, 0], z[start : start + 8000], atol=1e-4)
    assert check_dataset(tmp_path / "dense") == []


def test_take_split_passes_the_check(corpus: Path, tmp_path: Path) -> None:
    out = build_dataset(corpus, tmp_path / "take", split="take", progress=False)
    ds = open_dataset(out)
    roles = {t: s["role"] for t, s in ds.meta["takes"].items()}
    assert sorted(roles.values()) == ["test", "test", "train", "train"]
    assert set(ds.windows("test")["take"]) == {t for t, r in roles.items() if r == "test"}
    assert not set(ds.windows("train")["take"]) & set(ds.windows("test")["take"])
    assert check_dataset(out) == []
    result = CliRunner().invoke(cli, ["dataset", "check", str(out)])
    assert result.exit_code == 0, result.output
    assert "ok:" in result.output


def test_check_catches_an_injected_overlap(span_dataset: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(span_dataset, bad)
    table = pd.read_csv(bad / "windows.csv", keep_default_na=False)
    take = table["take"].iloc[0]
    test_start = json.loads((bad / "dataset.json").read_text())["takes"][take]["test"][0][0]
    first_train = table.index[(table["split"] == "train") & (table["take"] == take)][0]
    table.loc[first_train, "start"] = test_start + 100  # a training window inside test time
    table.to_csv(bad / "windows.csv", index=False)
    problems = check_dataset(bad)
    assert len(problems) == 1 and take in problems[0] and "test time" in problems[0]
    result = CliRunner().invoke(cli, ["dataset", "check", str(bad)])
    assert result.exit_code == 1 and "overlaps test time" in result.output


def test_same_seed_same_dataset(corpus: Path, span_dataset: Path, tmp_path: Path) -> None:
    again = build_dataset(corpus, tmp_path / "again", progress=False)
    first, second = open_dataset(span_dataset), open_dataset(again)
    assert first.meta["takes"] == second.meta["takes"] and first.hash == second.hash
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(first.arrays(split)[0], second.arrays(split)[0])
    other = build_dataset(corpus, tmp_path / "other", seed=1, progress=False)
    assert open_dataset(other).meta["takes"] != first.meta["takes"]


def test_random_validation_is_leaky_and_check_says_so(corpus: Path, tmp_path: Path) -> None:
    out = build_dataset(
        corpus, tmp_path / "postlike", val="random", same_span_all=True, progress=False
    )
    ds = open_dataset(out)
    assert ds.leaky and ds.meta["leaky"] is True
    assert len({tuple(s["test"][0]) for s in ds.meta["takes"].values()}) == 1
    assert any("leaky" in p for p in check_dataset(out))
    assert check_dataset(out, allow_leak=True) == []
    runner = CliRunner()
    assert runner.invoke(cli, ["dataset", "check", str(out)]).exit_code == 1
    assert runner.invoke(cli, ["dataset", "check", str(out), "--allow-leak"]).exit_code == 0


def test_held_out_from_keeps_old_spans_for_a_grown_corpus(tmp_path: Path) -> None:
    root = make_corpus(tmp_path / "grow", phrases=("backing",))
    old = build_dataset(root, tmp_path / "v1", progress=False)
    src = tmp_path / "more"
    for gi, guitar in enumerate(("ST", "LP")):
        write_tone(src / f"{guitar}_lead_raw.wav", seconds=4.0, freq_hz=300 + 50 * gi)
    import_folder(src, root, progress=False)
    new = build_dataset(root, tmp_path / "v2", held_out_from=old, seed=5, progress=False)
    old_takes = open_dataset(old).meta["takes"]
    new_takes = open_dataset(new).meta["takes"]
    assert len(new_takes) == len(old_takes) + 2
    for take, spans in old_takes.items():
        assert new_takes[take] == spans
    assert check_dataset(new) == []
    old_clips = {c.id: c for c in open_dataset(old).eval_clips()}
    for clip in open_dataset(new).eval_clips():
        if clip.id in old_clips:
            np.testing.assert_array_equal(clip.windows, old_clips[clip.id].windows)
    with pytest.raises(DatasetError, match="use the same"):
        build_dataset(root, tmp_path / "v3", held_out_from=old, split="take", progress=False)


def test_held_out_from_keeps_the_old_label_order_and_appends_new_labels(tmp_path: Path) -> None:
    root = make_corpus(tmp_path / "grow", phrases=("backing",))
    old = build_dataset(root, tmp_path / "v1", progress=False)
    write_tone(tmp_path / "arch" / "backing_raw.wav", seconds=4.0, freq_hz=180)
    import_folder(
        tmp_path / "arch",
        root,
        pattern="{phrase}_{tone}",
        labels={"guitar": "archtop"},
        progress=False,
    )
    new = build_dataset(root, tmp_path / "v2", held_out_from=old, progress=False)
    assert open_dataset(old).label_names == ["les_paul", "stratocaster"]
    # alphabetically "archtop" comes first; a grown dataset appends it so old indices hold
    assert open_dataset(new).label_names == ["les_paul", "stratocaster", "archtop"]
    assert set(open_dataset(new).arrays("train")[1]) == {0, 1, 2}


def test_options_label_where_gain_and_train_standardization(corpus: Path, tmp_path: Path) -> None:
    by_tone = build_dataset(
        corpus, tmp_path / "tone", label="tone", where="tone != 'crunch'", progress=False
    )
    ds = open_dataset(by_tone)
    assert ds.label_names == ["clean", "raw"] and len(ds.meta["rows"]) == 8
    assert set(ds.windows("train")["tone"]) == {"clean", "raw"}

    stats = build_dataset(corpus, tmp_path / "train-std", standardize="train", progress=False)
    ds = open_dataset(stats)
    x, _ = ds.arrays("train")
    assert ds.meta["standardization"]["mode"] == "train" and ds.meta["standardization"]["std"] > 0
    assert abs(float(np.mean(x))) < 1e-3 and abs(float(np.std(x)) - 1) < 1e-3

    plain = open_dataset(
        build_dataset(corpus, tmp_path / "none", standardize="none", progress=False)
    )
    gained = open_dataset(
        build_dataset(
            corpus, tmp_path / "gain", standardize="none", apply_gain=True, progress=False
        )
    )
    gain_db = load_manifest(corpus).set_index("id")["gain_db"]
    first_id = plain.windows("train")["id"][0]
    ratio = gained.arrays("train")[0][0, :, 0] / plain.arrays("train")[0][0, :, 0]
    assert np.allclose(ratio[np.isfinite(ratio)], 10 ** (gain_db[first_id] / 20), rtol=1e-4)


def test_multichannel_partial_and_resampled_files(tmp_path: Path) -> None:
    root = make_corpus(tmp_path / "mixed", guitars=("ST", "LP"), phrases=("lead",))
    src = tmp_path / "odd"
    write_tone(src / "ST_riff_raw.wav", seconds=SECONDS, channels=2)
    write_tone(src / "LP_riff_raw.wav", seconds=SECONDS, rate=48000)
    import_folder(src, root, progress=False)
    update_manifest(root, lambda f: f.assign(status=np.where(f["phrase"] == "riff", "partial", "")))
    with pytest.raises(
        DatasetError, match=r"LP_riff_raw|les_paul-riff.*48000 Hz but the other files are 44100 Hz"
    ):
        build_dataset(root, tmp_path / "refused", progress=False)
    out = build_dataset(root, tmp_path / "ok", resample=True, progress=False)
    meta = open_dataset(out).meta
    notes = " ".join(meta["notes"])
    assert "mixed to mono" in notes and "resampled to 44100" in notes and "partial" in notes
    frames = {r["id"]: r["frames"] for r in meta["rows"]}
    assert frames["les_paul-riff-t001-raw"] == math.ceil(SECONDS * 48000 * 147 / 160)
    assert check_dataset(out) == []


def test_bad_inputs_give_one_clear_error(corpus: Path, tmp_path: Path) -> None:
    cases = [
        ({"where": "tone == 'fuzz'"}, "no manifest rows selected"),
        ({"where": "guitar == 'les_paul'"}, "one value \\(les_paul\\)"),
        ({"where": "this is not a query"}, "not a valid query"),
        ({"window": 200_000}, "shorter than one window of 200000"),
        ({"label": "colour"}, "no column 'colour'"),
        ({"test_seconds": 2.9, "val_fraction": 0.5}, "no room for a validation span"),
        ({"split": "group"}, "--group-by"),
    ]
    for kwargs, message in cases:
        with pytest.raises(DatasetError, match=message):
            build_dataset(corpus, tmp_path / "x", progress=False, **kwargs)
    assert not (tmp_path / "x").exists()
    broken = tmp_path / "broken"
    shutil.copytree(corpus, broken)
    victim = load_manifest(broken)["path"][3]
    (broken / victim).unlink()
    with pytest.raises(DatasetError, match=f"{Path(victim).name}: file of row .* is missing"):
        build_dataset(broken, tmp_path / "y", progress=False)
    result = CliRunner().invoke(
        cli, ["dataset", "build", "--corpus", str(broken), "--out", str(tmp_path / "y")]
    )
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "is missing" in result.output


def test_cli_build_show_and_refuse_overwrite(corpus: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "cli"
    args = ["dataset", "build", "--corpus", str(corpus), "--out", str(out), "--quiet"]
    result = runner.invoke(cli, [*args, "--test-seconds", "2.18", "--hop", "4000"])
    assert result.exit_code == 0, result.output
    assert "train=" in result.output
    meta = open_dataset(out).meta
    assert meta["options"]["test_windows"] == 12 and meta["hop"] == 4000
    shown = runner.invoke(cli, ["dataset", "show", str(out)])
    assert shown.exit_code == 0 and "held-out time per take" in shown.output
    assert "stratocaster-backing-t001" in shown.output and "crunch" in shown.output
    again = runner.invoke(cli, args)
    assert again.exit_code == 1 and "--overwrite" in again.output
    assert runner.invoke(cli, [*args, "--overwrite", "--split", "take"]).exit_code == 0
    for command in ("build", "check", "show"):
        help_text = runner.invoke(cli, ["dataset", command, "--help"]).output
        assert "Example" in help_text


def _peak_build_bytes(corpus: Path, out: Path) -> int:
    tracemalloc.start()
    try:
        build_dataset(corpus, out, progress=False)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_peak_memory_does_not_grow_with_the_corpus(tmp_path: Path) -> None:
    small = make_corpus(tmp_path / "small", phrases=("backing",))
    large = make_corpus(tmp_path / "large", phrases=("backing", "lead", "riff", "scale"))
    _peak_build_bytes(small, tmp_path / "warm")  # first-call imports and caches
    peak_small = _peak_build_bytes(small, tmp_path / "d1")
    peak_large = _peak_build_bytes(large, tmp_path / "d4")
    corpus_bytes = 4 * 6 * FRAMES * 4  # the large corpus as float32
    assert peak_large < 1.5 * peak_small, (peak_small, peak_large)
    assert peak_large < corpus_bytes / 2


def test_benchmark_quick_smoke() -> None:
    from benchmarks.bench_datasets import run

    rows = run(quick=True)
    assert rows
    for row in rows:
        assert math.isfinite(row.value) and row.value > 0, row


# ---------------------------------------------------------------- named test sets (notes)

NOTE_RATE = 8000
LEAD_IN = 800  # 0.1 s of silence before each note
NOTE_WINDOW = 400


def note_corpus(root: Path, *, pickups=("sc", "hb"), frets=range(8)) -> Path:
    """A tiny note library (0.1 s silence, then 0.4 s of note) imported by file name."""
    src = root.parent / f"{root.name}-src"
    t = np.arange(4 * LEAD_IN) / NOTE_RATE
    for pi, pickup in enumerate(pickups):
        for fret in frets:
            freq = 82.4 * 2 ** (fret / 12)
            note = (0.3 + 0.1 * pi) * np.sin(2 * np.pi * freq * t) * np.exp(-3 * t)
            audio = np.concatenate([np.zeros(LEAD_IN), note]).astype(np.float32)
            src.mkdir(parents=True, exist_ok=True)
            sf.write(src / f"{pickup}_E2_fret{fret:02d}_rr1.wav", audio, NOTE_RATE)
    report = import_folder(
        src,
        root,
        pattern="{pickup}_{string}_fret{fret}_rr{take}",
        labels={"guitar": "ibanez"},
        progress=False,
    )
    assert len(report.added) == len(pickups) * len(frets) and not report.skipped
    return root


@pytest.fixture(scope="module")
def notes(tmp_path_factory) -> Path:
    return note_corpus(tmp_path_factory.mktemp("notes") / "corpus")


def test_test_where_puts_exactly_the_named_files_in_test(notes: Path, tmp_path: Path) -> None:
    out = tmp_path / "frets"
    result = CliRunner().invoke(
        cli,
        ["dataset", "build", "--corpus", str(notes), "--out", str(out), "--quiet",
         "--label", "pickup", "--test-where", "fret >= 6", "--window", str(NOTE_WINDOW)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "test set: 4 take(s) named by --test-where 'fret >= 6'" in result.output
    ds = open_dataset(out)
    manifest = load_manifest(notes)
    high = set(manifest.loc[manifest["fret"].astype(int) >= 6, "id"])
    assert set(ds.windows("test")["id"]) == high
    test_takes = set(ds.windows("test")["take"])
    assert not test_takes & set(ds.windows("train")["take"])
    assert not test_takes & set(ds.windows("val")["take"])
    assert ds.meta["options"]["split"] == "take" and check_dataset(out) == []
    held = ds.meta["held_out"]
    assert held["test_where"] == "fret >= 6" and held["columns"] == ["pickup", "fret"]
    assert sorted(held["test_takes"]) == sorted(test_takes)
    assert {r["fret"] for r in ds.meta["rows"]} == {f"{f:02d}" for f in range(8)}
    shown = CliRunner().invoke(cli, ["dataset", "show", str(out)])
    assert "held out by: test_where 'fret >= 6' (columns used: pickup, fret)" in shown.output


def test_val_where_and_test_groups_name_their_sets(notes: Path, tmp_path: Path) -> None:
    named = build_dataset(
        notes, tmp_path / "named", label="pickup", window=NOTE_WINDOW,
        test_where="fret >= 6", val_where="fret == 5", progress=False,
    )  # fmt: skip
    ds = open_dataset(named)
    manifest = load_manifest(notes).set_index("id")
    assert {manifest.loc[i, "fret"] for i in ds.windows("val")["id"]} == {"05"}
    assert ds.meta["options"]["val"] == "take" and check_dataset(named) == []
    grouped = build_dataset(
        notes, tmp_path / "groups", label="pickup", window=NOTE_WINDOW,
        split="group", group_by="fret", test_groups="06,07", progress=False,
    )  # fmt: skip
    ds = open_dataset(grouped)
    assert {manifest.loc[i, "fret"] for i in ds.windows("test")["id"]} == {"06", "07"}
    assert ds.meta["held_out"]["test_groups"] == ["06", "07"]
    assert ds.meta["held_out"]["columns"] == ["pickup", "fret"]
    with pytest.raises(DatasetError, match="--test-groups '99' is not a value of column 'fret'"):
        build_dataset(
            notes, tmp_path / "x", label="pickup", window=NOTE_WINDOW,
            split="group", group_by="fret", test_groups=["99"], progress=False,
        )  # fmt: skip


def test_trim_silence_starts_windows_at_the_first_sound(notes: Path, tmp_path: Path) -> None:
    plain = open_dataset(
        build_dataset(notes, tmp_path / "plain", label="pickup", window=NOTE_WINDOW,
                      test_where="fret >= 6", progress=False)
    )  # fmt: skip
    trimmed_path = build_dataset(
        notes, tmp_path / "trim", label="pickup", window=NOTE_WINDOW,
        test_where="fret >= 6", trim_silence=True, progress=False,
    )  # fmt: skip
    trimmed = open_dataset(trimmed_path)
    assert plain.windows("train")["start"].min() == 0
    for split in ("train", "val", "test"):
        starts = trimmed.windows(split)["start"]
        assert len(starts) and starts.min() == LEAD_IN, split
    assert all(s["offset"] == LEAD_IN for s in trimmed.meta["takes"].values())
    assert trimmed.meta["options"]["trim_silence"] is True
    assert check_dataset(trimmed_path) == []
    x, _ = trimmed.arrays("test")
    assert float(np.abs(x[:, :40, 0]).max()) > 0.1  # the first window already sounds


def test_named_sets_refuse_what_would_leak_or_contradict(corpus: Path, notes: Path, tmp_path):
    cases = [
        (
            corpus,
            {"test_where": "tone == 'crunch'"},
            r"splits take .*-t001: it selects .*crunch but not",
        ),
        (corpus, {"test_where": "tone == 'fuzz'"}, "selects no file"),
        (notes, {"test_where": "fret >= 0"}, "leave some to train"),
        (notes, {"test_where": "fret >= 6", "split": "span"}, "use it with --split take"),
        (notes, {"test_groups": "06"}, "--group-by"),
        (notes, {"val_where": "fret == 5"}, "--split span keeps every take in training"),
        (
            notes,
            {"test_where": "fret >= 6", "val_where": "fret >= 7"},
            "both --test-where and --val-where",
        ),
    ]
    for root, kwargs, message in cases:
        kwargs = {"window": NOTE_WINDOW, **({"label": "pickup"} if root == notes else {}), **kwargs}
        with pytest.raises(DatasetError, match=message):
            build_dataset(root, tmp_path / "x", progress=False, **kwargs)
    result = CliRunner().invoke(
        cli,
        ["dataset", "build", "--corpus", str(corpus), "--out", str(tmp_path / "y"),
         "--test-where", "tone == 'crunch'"],
    )  # fmt: skip
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_take_shorter_than_the_test_span_names_the_splits_that_work(notes: Path, tmp_path):
    result = CliRunner().invoke(
        cli,
        ["dataset", "build", "--corpus", str(notes), "--out", str(tmp_path / "x"),
         "--label", "pickup", "--window", str(NOTE_WINDOW)],
    )  # fmt: skip
    assert result.exit_code == 1 and "Traceback" not in result.output
    line = result.output.strip()
    assert len(line.splitlines()) == 1
    assert "shorter than the test span of 4800" in line
    assert "splits that work: --test-windows 8 (or fewer)" in line
    assert "--split take" in line and "--test-where" in line
    ok = build_dataset(
        notes, tmp_path / "ok", label="pickup", window=NOTE_WINDOW, test_windows=8, progress=False
    )
    assert check_dataset(ok) == []


def test_a_grown_note_library_keeps_its_named_test_set(tmp_path: Path) -> None:
    root = note_corpus(tmp_path / "grow", frets=range(7))
    named = {"label": "pickup", "window": NOTE_WINDOW, "test_where": "fret >= 6"}
    old = build_dataset(root, tmp_path / "v1", trim_silence=True, progress=False, **named)
    note_corpus(tmp_path / "more", frets=(8, 9))  # new notes, imported into the same corpus
    import_folder(
        tmp_path / "more-src", root, pattern="{pickup}_{string}_fret{fret}_rr{take}",
        labels={"guitar": "ibanez"}, progress=False,
    )  # fmt: skip
    new = build_dataset(
        root, tmp_path / "v2", trim_silence=True, held_out_from=old, progress=False, **named
    )
    old_takes, new_takes = open_dataset(old).meta["takes"], open_dataset(new).meta["takes"]
    for take, spans in old_takes.items():
        assert new_takes[take] == spans
    test_frets = {
        load_manifest(root).set_index("id").loc[i, "fret"]
        for i in open_dataset(new).windows("test")["id"]
    }
    assert test_frets == {"06", "08", "09"} and check_dataset(new) == []
    with pytest.raises(
        DatasetError,
        match=r"-06-t001 is test in .*v1, but --test-where 'fret >= 8' now puts it out of test",
    ):
        build_dataset(
            root, tmp_path / "v3", held_out_from=old, label="pickup", window=NOTE_WINDOW,
            test_where="fret >= 8", trim_silence=True, progress=False,
        )  # fmt: skip


def test_skip_silence_leaves_out_every_silent_window(notes: Path, tmp_path: Path) -> None:
    """The energy gate: the 0.1 s lead-in of each note (two windows) is not a window."""
    from guitarlab.datasets.windows import window_rms_dbfs

    plain = open_dataset(
        build_dataset(notes, tmp_path / "plain", label="pickup", window=NOTE_WINDOW,
                      test_where="fret >= 6", progress=False)
    )  # fmt: skip
    out = tmp_path / "gated"
    result = CliRunner().invoke(
        cli,
        ["dataset", "build", "--corpus", str(notes), "--out", str(out), "--quiet", "--label",
         "pickup", "--test-where", "fret >= 6", "--window", str(NOTE_WINDOW), "--skip-silence"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    gated = open_dataset(out)
    files = len(load_manifest(notes))
    lead_in_windows = LEAD_IN // NOTE_WINDOW
    assert sum(gated.meta["totals"].values()) == (
        sum(plain.meta["totals"].values()) - files * lead_in_windows
    )
    for split in ("train", "val", "test"):
        starts = gated.windows(split)["start"]
        assert len(starts) and starts.min() >= LEAD_IN, split
    assert gated.meta["options"]["skip_silence"] is True
    assert any("--skip-silence" in note for note in gated.meta["notes"])
    assert check_dataset(out) == []
    # what the plain build kept there: flat windows (silence after standardization),
    # while every gated window sounds
    x, _ = plain.arrays("train")
    starts = plain.windows("train")["start"].to_numpy()
    assert np.asarray(x)[starts < LEAD_IN].std(axis=1).max() < 1e-6
    raw = np.stack([np.zeros(NOTE_WINDOW), np.full(NOTE_WINDOW, 0.01)])
    assert window_rms_dbfs(raw).round().tolist() == [-200.0, -40.0]
