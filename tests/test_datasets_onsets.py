"""Note-aware windows: onsets found where notes start, windows that start there, and the
same windows in dataset build, predict and evaluate; whole-take validation by default with
a named test set; numbers sorted as numbers in report tables."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from click.testing import CliRunner

from guitarlab.cli import cli
from guitarlab.corpus.intake import import_folder
from guitarlab.datasets.build import build_dataset
from guitarlab.datasets.folder import check_dataset, open_dataset
from guitarlab.datasets.onsets import detect_onsets, note_window_starts, onset_window_starts
from guitarlab.datasets.windows import window_rms_dbfs

RATE = 8000
WINDOW = 800  # 0.1 s
HOP = 400
PER_NOTE = 3
MS = RATE // 1000


def pluck(seconds: float, f0: float, *, rate: int = RATE, tilt: float = 1.0) -> np.ndarray:
    """A plucked string as decaying partials (the higher, the faster they die)."""
    t = np.arange(int(seconds * rate)) / rate
    partials = [
        np.sin(2 * np.pi * k * f0 * t) / k**tilt * np.exp(-(2.0 + k) * t)
        for k in range(1, 12)
        if k * f0 < rate / 2
    ]
    return 0.4 * np.sum(partials, axis=0)


def with_lead_in(note: np.ndarray, lead_in: int, *, total: int, seed: int = 0) -> np.ndarray:
    """``lead_in`` samples of a quiet noise floor (-80 dBFS), then the note, ``total`` long."""
    audio = 1e-4 * np.random.default_rng(seed).standard_normal(total)
    end = min(total, lead_in + note.size)
    audio[lead_in:end] += note[: end - lead_in]
    return audio.astype(np.float32)


# ---------------------------------------------------------------- detection (pure)


def test_onsets_land_within_a_few_ms_of_known_note_starts() -> None:
    truth = np.array([1200, 6100, 9900, 14_450])  # 0.15, 0.76, 1.24 and 1.81 s
    audio = 1e-4 * np.random.default_rng(1).standard_normal(2 * RATE)
    for i, start in enumerate(truth):  # each note rings on under the next, like a phrase
        note = pluck(2.0, 110.0 * 2 ** (i * 5 / 12))[: audio.size - start]
        audio[start:] += note
    onsets = detect_onsets(audio, RATE)
    assert onsets.size == truth.size, onsets
    assert np.abs(onsets - truth).max() <= 3 * MS, onsets - truth
    # louder or quieter recordings of the same notes: the same onsets
    assert np.array_equal(detect_onsets(audio * 0.1, RATE), onsets)


def test_onsets_of_the_synthetic_guitar_land_on_its_score() -> None:
    from guitarlab.synth.phrases import Note
    from guitarlab.synth.render import render_notes

    starts = [0.2, 0.9, 1.35, 1.6]
    notes = [
        Note(start_s=s, dur_s=0.6, string=1, fret=3 + 2 * i, velocity=0.7)
        for i, s in enumerate(starts)
    ]
    for guitar in ("les_paul", "stratocaster"):  # the stratocaster hums from sample 0
        audio = render_notes(guitar, notes, seconds=2.2)
        onsets = detect_onsets(audio, 44100) / 44100
        assert onsets.size == len(starts), (guitar, onsets)
        assert np.abs(onsets - starts).max() < 0.005, (guitar, onsets)


def test_a_note_at_sample_zero_is_an_onset_and_silence_or_hum_is_not() -> None:
    note = pluck(1.0, 196.0)
    assert detect_onsets(note, RATE).tolist() == [0]  # a library trimmed to the pluck
    assert detect_onsets(np.zeros(RATE), RATE).size == 0
    quiet = 10 ** (-70 / 20) * note  # a whole note below the -60 dBFS gate
    assert detect_onsets(quiet, RATE).size == 0
    t = np.arange(2 * RATE) / RATE
    hum = 0.003 * np.sin(2 * np.pi * 60 * t)  # -53 dBFS of mains hum from the first sample
    hum[4000 : 4000 + note.size] += note
    assert np.abs(detect_onsets(hum, RATE) - [4000]).max() <= 3 * MS


def test_windows_start_at_the_onset_then_follow_the_note_while_it_sounds() -> None:
    lead_in = 1600
    audio = with_lead_in(pluck(2.0, 110.0), lead_in, total=3 * RATE)
    starts = onset_window_starts(audio, RATE, window=WINDOW, hop=WINDOW, per_note=50)
    assert abs(int(starts[0]) - lead_in) <= 2 * MS
    assert np.all(np.diff(starts) == WINDOW)  # one note: the onset, then every hop
    levels = window_rms_dbfs(np.stack([audio[s : s + WINDOW] for s in starts]))
    assert levels.min() > -60 and levels.min() >= levels[0] - 30  # no silence, no dying tail
    tail = window_rms_dbfs(audio[starts[-1] + WINDOW : starts[-1] + 2 * WINDOW][None])[0]
    assert tail < levels[0] - 30  # the next hop would have been the tail: it stopped there
    assert int(starts[-1]) < lead_in + 2 * RATE  # and never a window of the silence after
    capped = onset_window_starts(audio, RATE, window=WINDOW, hop=HOP, per_note=PER_NOTE)
    assert capped.tolist() == [starts[0] + k * HOP for k in range(PER_NOTE)]


def test_a_note_never_windows_into_the_next_one() -> None:
    onsets = np.array([800, 2000, 2300])  # notes 0.15 s and 0.04 s apart
    audio = with_lead_in(pluck(1.0, 220.0), 800, total=2 * RATE)
    starts = note_window_starts(audio, onsets, window=WINDOW, hop=HOP, per_note=PER_NOTE)
    assert starts.tolist() == [800, 1200, 2000, 2300, 2700, 3100]
    # first note: up to the next onset (1200 + 800 = 2000); second: its onset window only
    # (2400 + 800 > 2300); the last: all three


# ---------------------------------------------------------------- dataset build


FRETS = range(12)
PICKUPS = ("sc", "hb")


def lead_in_of(pickup: str, fret: int) -> int:
    return 600 + 37 * fret + 211 * PICKUPS.index(pickup)  # a different lead-in per file


def note_library(root: Path) -> Path:
    """A note library: one 1.5 s file per pickup x fret (frets written 0..11, unpadded),
    each note after its own lead-in; single coil bright, humbucker dark."""
    src = root.parent / f"{root.name}-src"
    src.mkdir(parents=True, exist_ok=True)
    for pi, pickup in enumerate(PICKUPS):
        for fret in FRETS:
            note = pluck(1.2, 82.4 * 2 ** (fret / 12), tilt=0.7 + 1.2 * pi)
            audio = with_lead_in(note, lead_in_of(pickup, fret), total=int(1.5 * RATE), seed=fret)
            sf.write(src / f"{pickup}_E2_fret{fret}_rr1.wav", audio, RATE, subtype="PCM_24")
    report = import_folder(
        src,
        root,
        pattern="{pickup}_{string}_fret{fret}_rr{take}",
        labels={"guitar": "ibanez"},
        progress=False,
    )
    assert len(report.added) == len(PICKUPS) * len(FRETS)
    return root


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    return note_library(tmp_path_factory.mktemp("onsets") / "corpus")


@pytest.fixture(scope="module")
def onset_dataset(library: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("onset-ds") / "ds"
    result = CliRunner().invoke(
        cli,
        ["dataset", "build", "--corpus", str(library), "--out", str(out), "--quiet",
         "--label", "pickup", "--test-where", "fret >= 6", "--window", str(WINDOW),
         "--hop", str(HOP), "--onsets", "--note-windows", str(PER_NOTE)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


def _file_of(library: Path, file_id: str) -> Path:
    from guitarlab.corpus.manifest import load_manifest

    return library / load_manifest(library).set_index("id").loc[file_id, "path"]


def test_build_onsets_starts_every_note_at_its_onset(library: Path, onset_dataset: Path):
    ds = open_dataset(onset_dataset)
    assert ds.meta["windows_at"] == "onsets" and ds.meta["note_windows"] == PER_NOTE
    assert ds.meta["options"]["onsets"] is True
    assert check_dataset(onset_dataset) == []
    rows = pd.concat([ds.windows(s).assign(split=s) for s in ("train", "val", "test")])
    assert rows["id"].nunique() == len(PICKUPS) * len(FRETS)
    for file_id, group in rows.groupby("id"):
        starts = np.sort(group["start"].to_numpy())
        pickup, fret = file_id.split("-")[2], int(file_id.split("-")[4])
        assert abs(int(starts[0]) - lead_in_of(pickup, fret)) <= 2 * MS, file_id
        assert starts.tolist() == [starts[0] + k * HOP for k in range(PER_NOTE)], file_id
        audio, _ = sf.read(_file_of(Path(library), file_id), dtype="float32")
        levels = window_rms_dbfs(np.stack([audio[s : s + WINDOW] for s in starts]))
        assert levels.min() > -60, file_id  # not one window of silence
    assert ds.meta["dropped_windows"] == 0
    shown = CliRunner().invoke(cli, ["dataset", "show", str(onset_dataset)])
    assert "windows at note onsets (up to 3 per note)" in shown.output


def test_one_window_per_note_is_its_first_second_and_predict_cuts_the_same(library, tmp_path):
    """``--window`` of a second (longer than the default) and ``--note-windows 1``: each
    note gives exactly one window, at its onset, and a run's predict finds the same start."""
    from guitarlab.datasets.onsets import onset_windows_of

    out = tmp_path / "ds"
    result = CliRunner().invoke(
        cli,
        ["dataset", "build", "--corpus", str(library), "--out", str(out), "--quiet",
         "--label", "pickup", "--test-where", "fret >= 6", "--window", str(RATE),
         "--onsets", "--note-windows", "1"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    ds = open_dataset(out)
    assert ds.window == RATE and ds.meta["note_windows"] == 1
    rows = pd.concat([ds.windows(s) for s in ("train", "val", "test")])
    assert len(rows) == rows["id"].nunique() == len(PICKUPS) * len(FRETS)
    cut = onset_windows_of(ds.meta)
    for file_id, start in zip(rows["id"], rows["start"].astype(int), strict=True):
        pickup, fret = file_id.split("-")[2], int(file_id.split("-")[4])
        assert abs(start - lead_in_of(pickup, fret)) <= 2 * MS, file_id
        audio, _ = sf.read(_file_of(Path(library), file_id), dtype="float32")
        assert cut.starts(audio, RATE).tolist() == [start], file_id

    from guitarlab.train.predict import predict_files

    run = fake_run(tmp_path / "run", out)
    path = _file_of(Path(library), rows["id"].iloc[0])
    (pred,) = predict_files(run, [path], model=SpyModel())
    assert pred.n_windows == 1 and not pred.heard_nothing
    audio, _ = sf.read(path, dtype="float32")
    short = tmp_path / "short.wav"  # the note starts, but the file ends before a second of it
    sf.write(short, audio[: int(rows["start"].iloc[0]) + RATE - 40 * MS], RATE)
    (pred,) = predict_files(run, [short], model=SpyModel())
    assert pred.heard_nothing and "none with a whole 1.000 s window" in pred.notes[-1]
    assert "record longer notes" in pred.notes[-1]  # what predict prints for it


def test_a_named_test_set_validates_on_whole_training_takes(library, onset_dataset, tmp_path):
    ds = open_dataset(onset_dataset)
    assert ds.meta["options"]["val"] == "take"
    takes = {s: set(ds.windows(s)["take"]) for s in ("train", "val", "test")}
    assert takes["val"] and not takes["val"] & takes["train"]
    # every training note keeps all its windows: none cut away for a validation span
    assert (ds.windows("train").groupby("id").size() == PER_NOTE).all()
    grid = build_dataset(
        library, tmp_path / "grid", label="pickup", window=WINDOW, test_where="fret >= 6",
        progress=False,
    )  # fmt: skip
    assert open_dataset(grid).meta["options"]["val"] == "take"
    assert open_dataset(grid).meta["dropped_windows"] == 0
    groups = build_dataset(
        library, tmp_path / "groups", label="pickup", window=WINDOW, split="group",
        group_by="fret", test_groups="10,11", progress=False,
    )  # fmt: skip
    assert open_dataset(groups).meta["options"]["val"] == "take"
    spans = open_dataset(
        build_dataset(
            library, tmp_path / "spans", label="pickup", window=WINDOW, hop=HOP,
            test_where="fret >= 6", val="span", progress=False,
        )
    )  # fmt: skip
    assert spans.meta["options"]["val"] == "span"  # asked for: still there, and it costs
    assert set(spans.windows("val")["take"]) <= set(spans.windows("train")["take"])
    assert spans.meta["dropped_windows"] > 0


def test_whole_take_validation_falls_back_to_spans_when_a_label_has_one_take(library, tmp_path):
    out = build_dataset(
        library, tmp_path / "few", label="pickup", window=WINDOW, where="fret == 0 or fret >= 6",
        test_where="fret >= 6", progress=False,
    )  # fmt: skip
    ds = open_dataset(out)
    assert ds.meta["options"]["val"] == "span"
    assert any(n.startswith("validation: a span of every training take") for n in ds.meta["notes"])
    assert check_dataset(out) == []


def test_onset_windows_of_a_phrase_never_cross_held_out_time(tmp_path: Path) -> None:
    """A span split of phrase takes: test windows lie inside the test span, and no
    training window touches it, in every tone of the take."""
    src = tmp_path / "src"
    src.mkdir()
    for gi, guitar in enumerate(("ST", "LP")):
        audio = 1e-4 * np.random.default_rng(gi).standard_normal(8 * RATE)
        for k, start in enumerate(range(1000, 8 * RATE - 4000, 3000)):
            audio[start : start + 4000] += pluck(0.5, 110.0 * 2 ** ((k % 7) / 12), tilt=1 + gi)
        for tone, drive in (("raw", 1.0), ("crunch", 3.0)):
            shaped = 0.5 * np.tanh(drive * audio) / drive
            sf.write(src / f"{guitar}_lead_{tone}.wav", shaped.astype(np.float32), RATE)
    import_folder(src, tmp_path / "corpus", progress=False)
    out = build_dataset(
        tmp_path / "corpus", tmp_path / "ds", window=WINDOW, hop=HOP, test_windows=12,
        onsets=True, note_windows=PER_NOTE, progress=False,
    )  # fmt: skip
    ds = open_dataset(out)
    assert check_dataset(out) == []
    test_windows, train_windows = ds.windows("test"), ds.windows("train")
    for take, spans in ds.meta["takes"].items():
        (lo, hi), (vlo, vhi) = spans["test"][0], spans["val"][0]
        test = test_windows.loc[test_windows["take"] == take, "start"].to_numpy()
        train = train_windows.loc[train_windows["take"] == take, "start"].to_numpy()
        assert test.size and np.all((test >= lo) & (test + WINDOW <= hi))
        for a, b in ((lo, hi), (vlo, vhi)):
            assert not np.any((train < b) & (train + WINDOW > a))


def test_bad_note_windows_is_one_line(library: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["dataset", "build", "--corpus", str(library), "--out", str(tmp_path / "x"),
         "--onsets", "--note-windows", "0"],
    )  # fmt: skip
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "--note-windows" in result.output


# ---------------------------------------------------------------- predict and evaluate


class SpyModel:
    """Stands in for a trained network: remembers every window it is shown and answers
    by the window's brightness (how much of its energy changes sample to sample)."""

    def __init__(self) -> None:
        self.seen: list[np.ndarray] = []

    def __call__(self, windows, training: bool = False) -> np.ndarray:
        windows = np.asarray(windows, dtype=np.float32)
        self.seen.append(windows.copy())
        x = windows[:, :, 0]
        bright = np.square(np.diff(x, axis=1)).mean(axis=1) / (np.square(x).mean(axis=1) + 1e-9)
        p = 1.0 / (1.0 + np.exp(-8.0 * (bright - 0.15)))  # class 1: sc (bright)
        return np.stack([1.0 - p, p], axis=1)

    def predict(self, windows, batch_size: int = 256, verbose: int = 0) -> np.ndarray:
        return self(windows)


def fake_run(run_dir: Path, dataset: Path) -> Path:
    """A run folder as training writes it (run.json with the dataset's scalars), no model."""
    from guitarlab.train.config import TrainConfig

    ds = open_dataset(dataset)
    run_dir.mkdir(parents=True)
    meta = {
        "config": TrainConfig().as_dict(),
        "label_names": ds.label_names,
        "window": ds.window,
        "sample_rate": ds.sample_rate,
        "data": {
            "source": "dataset",
            "dataset_dir": str(dataset),
            "standardize": "file",
            "standardization": None,
            "dataset_meta": {
                k: v for k, v in ds.meta.items() if isinstance(v, str | int | float | bool)
            },
        },
    }
    (run_dir / "run.json").write_text(json.dumps(meta))
    return run_dir


def test_predict_and_evaluate_vote_over_the_datasets_onset_windows(
    library: Path, onset_dataset: Path, tmp_path: Path
) -> None:
    from guitarlab.train.evaluate import evaluate_clips, manifest_rows
    from guitarlab.train.predict import predict_files

    ds = open_dataset(onset_dataset)
    clips = ds.eval_clips("test")
    spy = SpyModel()
    result = evaluate_clips(spy, clips, ds.label_names, rows=manifest_rows(ds.meta))
    assert result["n_windows"] == ds.meta["totals"]["test"] == len(clips) * PER_NOTE
    run = fake_run(tmp_path / "run", onset_dataset)
    for clip in clips[:4]:
        spy = SpyModel()
        (pred,) = predict_files(run, [_file_of(library, clip.id)], model=spy)
        seen = np.concatenate(spy.seen)
        # the very windows the dataset stored for this file: same starts, same samples
        assert pred.n_windows == len(clip.windows) == PER_NOTE
        np.testing.assert_allclose(seen, clip.windows, atol=1e-5)
        assert any("at note onsets" in note for note in pred.notes)
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(RATE, dtype=np.float32), RATE)
    (pred,) = predict_files(run, [silent], model=SpyModel())
    assert pred.heard_nothing and "no note above -60 dBFS" in pred.notes[-1]


def test_a_grid_run_still_predicts_on_the_grid(library: Path, tmp_path: Path) -> None:
    from guitarlab.train.predict import predict_files

    grid = build_dataset(
        library, tmp_path / "grid", label="pickup", window=WINDOW, test_where="fret >= 6",
        progress=False,
    )  # fmt: skip
    run = fake_run(tmp_path / "run", grid)
    path = _file_of(library, open_dataset(grid).eval_clips("test")[0].id)
    (pred,) = predict_files(run, [path], model=SpyModel())
    audio, _ = sf.read(path, dtype="float32")
    sounding = int((window_rms_dbfs(audio[: 15 * WINDOW].reshape(15, WINDOW)) > -60).sum())
    assert pred.n_windows == sounding and not any("onsets" in n for n in pred.notes)


# ---------------------------------------------------------------- report order


def table_rows(report: str, heading: str) -> list[str]:
    """The body rows of the markdown table under ``heading``."""
    lines = report.split(heading + "\n", 1)[1].strip().splitlines()
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows[2:]


def test_per_fret_tables_sort_frets_as_numbers(library, onset_dataset, tmp_path, monkeypatch):
    from guitarlab.train.evaluate import Evaluation, evaluate_clips, group_table, manifest_rows
    from guitarlab.train.report import write_report

    files = pd.DataFrame(
        {
            "fret": ["10", "6", "12", "0", "2", "11", "1"],
            "correct": [True] * 7,
            "label": ["a"] * 7,
            "predicted": ["a"] * 7,
        }
    )
    assert group_table(files, "fret")["fret"].tolist() == ["0", "1", "2", "6", "10", "11", "12"]
    ds = open_dataset(onset_dataset)
    result = evaluate_clips(
        SpyModel(), ds.eval_clips("test"), ds.label_names, rows=manifest_rows(ds.meta)
    )
    assert result["groups"]["fret"]["fret"].tolist() == ["6", "7", "8", "9", "10", "11"]
    ev = Evaluation(
        run_dir=tmp_path, dataset_dir=onset_dataset, label_names=ds.label_names, **result
    )
    report = write_report(tmp_path, ev).read_text()
    per_fret = table_rows(report, "## Per fret")
    assert [line.split("|")[1].strip() for line in per_fret] == ["6", "7", "8", "9", "10", "11"]
    per_file = table_rows(report, "## Per file")
    keys = [line.split("|")[1].split("-")[2:5:2] for line in per_file]  # pickup, fret
    keys = [(pickup, int(fret)) for pickup, fret in keys]
    assert keys == sorted(keys) and report.index("## Per fret") < report.index("## Per file")

    # evaluate prints its headline first, then the tables
    import guitarlab.train.evaluate as evaluate

    run = fake_run(tmp_path / "run", onset_dataset)
    for name in ("model.keras", "model.joblib"):  # present (a zip, like .keras), never loaded
        with zipfile.ZipFile(run / name, "w") as archive:
            archive.writestr("config.json", "{}")
    monkeypatch.setattr(evaluate, "evaluate_run", lambda *args, **kwargs: ev)
    shown = CliRunner().invoke(cli, ["evaluate", str(run)])
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert lines[0].startswith("files (mean vote):")
    assert lines[1].startswith("files: accuracy")
    table = [line for line in lines if "-note-" in line]
    keys = [line.split()[0].split("-")[2:5:2] for line in table]
    keys = [(pickup, int(fret)) for pickup, fret in keys]
    assert keys == sorted(keys) and lines.index(table[0]) > 2
