"""Labels in time, downstream (issue 30): datasets built from segments, segments in the
export, and predict's label changes as an Audacity label track.

One take, two tones, six regions of really different sound (three sines, each twice): a
``technique`` segment per region (a gap before the fifth), and ``phrase`` segments
``verse`` (first half) and ``chorus`` (second half) over them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from guitarlab.cli import cli
from guitarlab.corpus.annotations import read_audacity
from guitarlab.corpus.manifest import load_manifest
from guitarlab.corpus.segments import add_segments
from guitarlab.datasets.export import read_table
from guitarlab.datasets.folder import check_dataset, open_dataset

RATE = 8000
REGION_S = 1.0
WINDOW = 1000  # 0.125 s: 8 windows per region
FREQS = {"low": 110.0, "mid": 440.0, "high": 1760.0}
ORDER = ["low", "mid", "high", "low", "mid", "high"]
# (start_s, end_s, technique): region 5 starts 0.2 s late, leaving time in no segment
REGIONS = [
    (i * REGION_S + (0.2 if i == 4 else 0.0), (i + 1) * REGION_S, name)
    for i, name in enumerate(ORDER)
]


def _region_audio() -> np.ndarray:
    t = np.arange(int(REGION_S * RATE)) / RATE
    rng = np.random.default_rng(0)
    parts = [0.3 * np.sin(2 * np.pi * FREQS[n] * t) for n in ORDER]
    return (np.concatenate(parts) + 0.001 * rng.standard_normal(len(ORDER) * t.size)).astype(
        np.float32
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, str]:
    from guitarlab.corpus.intake import import_folder

    root = tmp_path_factory.mktemp("segments")
    audio = _region_audio()
    (root / "src").mkdir()
    for tone, gain in (("raw", 1.0), ("clean", 0.5)):
        sf.write(root / "src" / f"ST_riff_{tone}.wav", audio * gain, RATE, subtype="PCM_24")
    import_folder(root / "src", root / "corpus", progress=False)
    take = str(load_manifest(root / "corpus")["take"].iloc[0])
    add_segments(
        root / "corpus",
        take,
        [{"start_s": a, "end_s": b, "technique": name} for a, b, name in REGIONS],
        origin="test",
    )
    add_segments(
        root / "corpus",
        take,
        [
            {"start_s": 0.0, "end_s": 3.0, "phrase": "verse"},
            {"start_s": 3.0, "end_s": 6.0, "phrase": "chorus"},
        ],
        origin="test",
    )
    return root / "corpus", take


def _build(corpus: Path, out: Path, *extra: str) -> CliRunner:
    result = CliRunner().invoke(
        cli,
        [
            "dataset", "build", "--corpus", str(corpus), "--out", str(out), "--label",
            "technique", "--from-segments", "--window", str(WINDOW), "--quiet", *extra,
        ],
    )  # fmt: skip
    return result


def _region_of(start: int) -> list[str]:
    """The regions a window at ``start`` touches."""
    a, b = start / RATE, (start + WINDOW) / RATE
    return [name for s, e, name in REGIONS if a < e and s < b]


@pytest.fixture(scope="module")
def chorus_dataset(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ds") / "chorus"
    result = _build(corpus[0], out, "--test-where", "phrase == 'chorus'")
    assert result.exit_code == 0, result.output
    return out


def test_windows_take_their_regions_label_and_none_straddles(corpus, tmp_path):
    out = tmp_path / "span"
    result = _build(corpus[0], out, "--test-windows", "4")
    assert result.exit_code == 0, result.output
    ds = open_dataset(out)
    assert ds.label_names == ["high", "low", "mid"]
    table = ds._all_windows()
    assert len(table) > 0 and set(table["tone"]) == {"raw", "clean"}
    for start, code in zip(table["start"], table["label"], strict=True):
        touched = _region_of(int(start))
        assert len(touched) == 1, (start, touched)  # none across two regions
        a, b = start / RATE, (start + WINDOW) / RATE
        seg = next(r for r in REGIONS if r[2] == touched[0] and r[0] <= a and b <= r[1])
        assert ds.label_names[code] == seg[2]
    # left out and counted: 5 region edges (8000 is a multiple of the window, but 4.2 s
    # is not: the window over 4.2 s straddles) and the gap 4.0-4.2 s, in both tones
    seg = ds.meta["segments"]
    assert seg["windows_in_no_segment"] == 2 * 1  # [4.0, 4.125): no segment at all
    assert seg["windows_straddling"] == 2 * 1  # [4.125, 4.25) crosses the edge at 4.2 s
    assert "across a segment edge" in result.output
    n_grid = 2 * (6 * RATE // WINDOW)
    assert (
        sum(ds.meta["totals"].values()) + ds.meta["dropped_windows"]
        + seg["windows_in_no_segment"] + seg["windows_straddling"] == n_grid
    )  # fmt: skip
    # every tone holds out the same time and labels it the same
    test = table[table["split"] == "test"]
    per_tone = test.groupby("tone")[["start", "label"]].apply(lambda g: g.values.tolist())
    assert per_tone["raw"] == per_tone["clean"] and len(per_tone["raw"]) > 0
    check = CliRunner().invoke(cli, ["dataset", "check", str(out)])
    assert check.exit_code == 0 and "ok:" in check.output, check.output


def test_test_where_over_segment_columns_holds_out_that_time_in_every_tone(chorus_dataset):
    ds = open_dataset(chorus_dataset)
    assert ds.meta["options"]["split"] == "segment"
    (spans,) = ds.meta["takes"].values()
    assert spans["test"] == [[3 * RATE, 6 * RATE]]
    table = ds._all_windows()
    test, train = table[table["split"] == "test"], table[table["split"] != "test"]
    assert (test["start"] >= 3 * RATE).all() and (train["start"] + WINDOW <= 3 * RATE).all()
    # the chorus holds every technique, so the test set is not one class
    assert {ds.label_names[c] for c in test["label"]} == {"low", "mid", "high"}
    assert {ds.label_names[c] for c in train["label"]} == {"low", "mid", "high"}
    assert check_dataset(chorus_dataset) == []
    # evaluation votes over each run of one label (a segment), not over a whole file
    clips = ds.eval_clips("test")
    assert [ds.label_names[c.label] for c in clips] == ["low", "mid", "high"] * 2
    assert sum(len(c.windows) for c in clips) == len(test)
    show = CliRunner().invoke(cli, ["dataset", "show", str(chorus_dataset)])
    assert show.exit_code == 0 and "split segment" in show.output


def test_where_over_a_segment_column_keeps_that_time(corpus, tmp_path):
    out = tmp_path / "verse"
    result = _build(corpus[0], out, "--where", "phrase == 'verse'", "--test-windows", "4")
    assert result.exit_code == 0, result.output
    table = open_dataset(out)._all_windows()
    assert (table["start"] + WINDOW <= 3 * RATE).all()
    assert open_dataset(out).meta["segments"]["windows_outside_where"] > 0


@pytest.mark.parametrize(
    "extra",
    [
        [
            "--test-where",
            "phrase == 'chorus'",
            "--val-where",
            "technique == 'mid' and phrase == 'verse'",
        ],
        ["--onsets", "--test-windows", "4"],
    ],
)
def test_named_validation_time_and_onsets_keep_windows_in_one_segment(corpus, tmp_path, extra):
    out = tmp_path / "more"
    result = _build(corpus[0], out, *extra)
    assert result.exit_code == 0, result.output
    ds = open_dataset(out)
    table = ds._all_windows()
    for start, code in zip(table["start"], table["label"], strict=True):
        assert _region_of(int(start)) == [ds.label_names[code]], start
    if "--val-where" in extra:  # the verse's mid region is the validation time
        val = table[table["split"] == "val"]
        assert (
            len(val) and (val["start"] >= RATE).all() and (val["start"] + WINDOW <= 2 * RATE).all()
        )
        assert {ds.label_names[c] for c in val["label"]} == {"mid"}
    else:
        assert ds.meta["windows_at"] == "onsets"
    assert check_dataset(out) == []


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--label", "pickup_switch"], "no segment labels that column"),
        (["--test-where", "phrase == 'chorus' and tone == 'raw'"], "same in every file"),
        (["--test-where", "phrase == 'chorus'", "--split", "take"], "leave out --split take"),
        (["--test-where", "phrase == 'bridge'"], "selects no time"),
    ],
)
def test_contradictions_are_one_line(corpus, tmp_path, extra, says):
    result = _build(corpus[0], tmp_path / "bad", *extra)
    assert result.exit_code != 0
    assert says in result.output and "Traceback" not in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1


def test_export_carries_the_spans_and_cuts_one_clip_per_segment(corpus, chorus_dataset, tmp_path):
    root, _ = corpus
    out = tmp_path / "export"
    result = CliRunner().invoke(
        cli, ["export", "--corpus", str(root), "--out", str(out), "--quiet"]
    )
    assert result.exit_code == 0, result.output
    meta = read_table(out / "metadata.parquet")
    spans = json.loads(meta["segments"].iloc[0])
    assert len(spans) == 8  # six technique regions, two phrases
    assert {"start_s": 4.2, "end_s": 5.0, "technique": "mid"} in spans
    # a dataset's clips: the test clip is the chorus, labelled by the segments in it
    result = CliRunner().invoke(
        cli,
        ["export", "--corpus", str(root), "--dataset", str(chorus_dataset), "--out",
         str(tmp_path / "split"), "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    test = read_table(tmp_path / "split" / "test" / "metadata.parquet")
    assert (
        list(test["label"]) == ["high+low+mid"] * 2 and list(test["clip_start"]) == [3 * RATE] * 2
    )
    inside = json.loads(test["segments"].iloc[0])  # seconds from the clip's start
    assert {"start_s": 0.0, "end_s": 3.0, "phrase": "chorus"} in inside
    assert {"start_s": 1.2, "end_s": 2.0, "technique": "mid"} in inside and len(inside) == 4
    # one clip per segment, in the split its time is in
    clips = tmp_path / "clips"
    result = CliRunner().invoke(
        cli,
        ["export", "--corpus", str(root), "--dataset", str(chorus_dataset), "--by-segment",
         "--out", str(clips), "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    seen = {}
    for split, regions in (("test", REGIONS[3:]), ("train", REGIONS[:3])):
        table = read_table(clips / split / "metadata.parquet")
        for row in table.itertuples():
            audio, rate = sf.read(clips / split / row.file_name)
            start, end, name = next(r for r in regions if round(r[0] * RATE) == row.clip_start)
            assert row.label == name and len(audio) == round((end - start) * RATE) == row.frames
            inside = json.loads(row.segments)  # the clip's own segments, from its start
            assert rate == RATE and [s.get("technique") for s in inside if "technique" in s] == [
                name
            ]
            assert {"start_s": 0.0, "end_s": round(end - start, 6), "technique": name} in inside
        seen[split] = table.groupby("segment")["tone"].nunique()
    assert len(seen["test"]) == 3 and (seen["test"] == 2).all()  # the chorus, in every tone
    # the validation span (0.625 s of the verse) crosses one or two regions: left out
    assert 1 <= len(seen["train"]) <= 2 and (seen["train"] == 2).all()
    card = (clips / "README.md").read_text()
    assert "one clip per segment" in card and "`segments`" in card
    assert f"{2 * (3 - len(seen['train']))} segment clip(s) cross the edge" in card


def test_predict_writes_the_label_changes_as_an_audacity_track(corpus, chorus_dataset, tmp_path):
    root, _ = corpus
    run = tmp_path / "run"
    result = CliRunner().invoke(
        cli, ["train", "--dataset", str(chorus_dataset), "--out", str(run), "--model", "features"]
    )
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["evaluate", str(run)])
    assert result.exit_code == 0, result.output
    # one vote per segment of each tone (3 x 2), every window scored against its own label
    n_test = open_dataset(chorus_dataset).meta["totals"]["test"]
    assert "files (mean vote): 6/6" in result.output
    assert f"windows: 100.00% of {n_test}" in result.output, result.output
    raw = root / load_manifest(root).query("tone == 'raw'")["path"].iloc[0]
    track = tmp_path / "labels.txt"
    result = CliRunner().invoke(cli, ["predict", str(run), str(raw), "--segments", str(track)])
    assert result.exit_code == 0, result.output
    text = track.read_text()
    assert all(len(line.split("\t")[0].split(".")[1]) == 6 for line in text.splitlines())
    runs = read_audacity(text, column="technique", name=track.name).segments
    assert runs[0]["start_s"] == 0.0 and runs[-1]["end_s"] == pytest.approx(6.0)
    # per second, the regions' sounds: most seconds carry their region's technique
    hits = sum(
        run["technique"] == ORDER[int(second)]
        for run in runs
        for second in np.arange(run["start_s"], run["end_s"] - 1e-9, 1.0)
    )
    assert hits >= 5, text
    # several files: one track each, the file's stem in the name
    other = tmp_path / "copy.wav"
    other.write_bytes(raw.read_bytes())
    result = CliRunner().invoke(
        cli, ["predict", str(run), str(raw), str(other), "--segments", str(tmp_path / "t.txt")]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / f"t-{raw.stem}.txt").read_text() == text
    assert (tmp_path / "t-copy.txt").read_text() == text


def test_a_corpus_without_segments_and_clashing_track_names_are_one_line(tmp_path):
    from guitarlab.corpus.errors import TrainError
    from guitarlab.train.predict import track_paths

    (tmp_path / "src").mkdir()
    for tone in ("raw", "clean"):
        sf.write(tmp_path / "src" / f"ST_riff_{tone}.wav", _region_audio(), RATE)
    from guitarlab.corpus.intake import import_folder

    import_folder(tmp_path / "src", tmp_path / "corpus", progress=False)
    result = _build(tmp_path / "corpus", tmp_path / "ds")
    assert result.exit_code == 1 and "no segments" in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    with pytest.raises(TrainError, match="would both write"):
        track_paths("out.txt", ["a/riff.wav", "b/riff.wav"])
