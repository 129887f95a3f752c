"""End to end on a small corpus: import -> dataset folder -> fit_dataset -> evaluate -> predict.

The corpus is 8 short files named like the post's (ST/LP x backing/lead x raw/crunch):
"ST" is bright (slow harmonic roll-off), "LP" dark (fast roll-off), so a CPU-sized
model separates them in a few epochs with fixed seeds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("tensorflow")

from click.testing import CliRunner  # noqa: E402

from guitarlab.cli import cli  # noqa: E402
from guitarlab.corpus.errors import TrainError  # noqa: E402

RATE = 16000
WINDOW = 1000


def guitar_like(guitar: str, phrase: str, *, seconds: float, rate: int = RATE) -> np.ndarray:
    """Random notes (4 per second) with decaying envelopes; ST bright, LP dark."""
    tilt = 0.5 if guitar == "ST" else 2.5
    rng = np.random.default_rng({"ST": 0, "LP": 10}[guitar] + {"backing": 0, "lead": 1}[phrase])
    n = int(seconds * rate)
    notes = rng.uniform(110.0, 330.0, int(seconds * 4) + 1)
    f0 = np.repeat(notes, rate // 4)[:n]
    phase = 2 * np.pi * np.cumsum(f0) / rate
    audio = sum(np.sin(k * phase) / k**tilt for k in range(1, 25))
    envelope = np.tile(np.exp(-np.arange(rate // 4) / (0.1 * rate)), len(notes))[:n]
    return audio * envelope + 0.01 * rng.standard_normal(n)


def write_post_like(folder: Path, *, seconds: float = 6.0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for guitar in ("ST", "LP"):
        for phrase in ("backing", "lead"):
            audio = guitar_like(guitar, phrase, seconds=seconds)
            for drive, tone in ((1.0, "raw"), (4.0, "crunch")):
                shaped = np.tanh(drive * audio / np.abs(audio).max())
                shaped = 0.3 * shaped / np.abs(shaped).max()
                sf.write(folder / f"{guitar}_{phrase}_{tone}.wav", shaped, RATE, subtype="PCM_16")
    return folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A dataset folder and a run trained on it for 5 epochs (about 10 s on 2 cores)."""
    from guitarlab.corpus.intake import import_folder
    from guitarlab.datasets.build import build_dataset
    from guitarlab.train.config import TrainConfig
    from guitarlab.train.fit import fit_dataset

    root = tmp_path_factory.mktemp("e2e")
    wavs = write_post_like(root / "wavs")
    import_folder(wavs, root / "corpus", progress=False)
    dataset = build_dataset(
        root / "corpus", root / "dataset", window=WINDOW, test_windows=8, progress=False
    )
    config = TrainConfig(input="wave", filters=(8, 16, 8), epochs=5, fine_tune_epochs=0, verbose=0)
    run = fit_dataset(dataset, root / "run", config)
    return {"root": root, "wavs": wavs, "dataset": dataset, "run": run}


def test_run_beats_chance_file_level_and_writes_the_report(trained):
    from guitarlab.train.evaluate import evaluate_run

    ev = evaluate_run(trained["run"].run_dir)
    assert len(ev.files) == 8  # one held-out clip per file
    assert ev.file_accuracy >= 0.75
    assert ev.window_accuracy >= 0.7
    assert ev.n_windows == 8 * 8
    assert {"guitar", "phrase", "tone"} <= set(ev.groups)
    assert ev.scores["majority_rate"] == 0.5 and 0.0 <= ev.balanced_accuracy <= 1.0
    assert "would score 50%" in (trained["run"].run_dir / "report.md").read_text()
    assert ev.groups["guitar"]["files"].sum() == 8
    assert 0.0 <= ev.baseline["file_accuracy"] <= 1.0
    assert list(ev.files.columns[:6]) == ["id", "guitar", "phrase", "tone", "label", "predicted"]

    run_dir = trained["run"].run_dir
    report = (run_dir / "report.md").read_text()
    for png in ("confusion.png", "file_probabilities.png", "training_curves.png"):
        assert (run_dir / png).stat().st_size > 1000
        assert f"]({png})" in report
    assert "| id | guitar |" in report and "## Per tone" in report
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["metrics"]["test_file_accuracy"] == ev.file_accuracy
    assert meta["data"]["standardize"] == "file"
    assert meta["data"]["hash"] and meta["sample_rate"] == RATE
    assert meta["label_names"] == ["les_paul", "stratocaster"]


def test_evaluate_command(trained):
    result = CliRunner().invoke(cli, ["evaluate", str(trained["run"].run_dir), "--majority"])
    assert result.exit_code == 0, result.output
    assert "files (mean vote):" in result.output and "majority" in result.output
    assert "baseline (features model" in result.output


def test_predict_files_labels_and_over_time(trained):
    from guitarlab.train.predict import predict_files

    files = sorted(trained["wavs"].glob("*.wav"))
    predictions = predict_files(trained["run"].run_dir, files)
    expected = ["les_paul" if f.name.startswith("LP") else "stratocaster" for f in files]
    right = sum(p.label == e for p, e in zip(predictions, expected, strict=True))
    assert right >= 6
    first = predictions[0]
    assert first.n_windows == 6 * RATE // WINDOW
    assert first.times_s == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert len(first.labels_over_time) == 6 and first.notes == []
    assert abs(sum(first.probabilities.values()) - 1.0) < 1e-3


def test_predict_resamples_mixes_and_rejects_short_files(trained, tmp_path):
    from scipy.signal import resample_poly

    from guitarlab.train.predict import predict_files

    audio = guitar_like("ST", "lead", seconds=3.0)
    audio = 0.3 * audio / np.abs(audio).max()
    other = tmp_path / "st-22k-stereo.wav"
    sf.write(other, np.stack([resample_poly(audio, 441, 320)] * 2, axis=1), 22050)
    (pred,) = predict_files(trained["run"].run_dir, [other])
    assert "resampled 22050 Hz -> 16000 Hz" in pred.notes
    assert "2 channels mixed to mono" in pred.notes
    assert pred.n_windows == pytest.approx(3 * RATE // WINDOW, abs=1)

    short = tmp_path / "short.wav"
    sf.write(short, audio[: WINDOW // 2], RATE)
    with pytest.raises(TrainError, match="shorter than one window"):
        predict_files(trained["run"].run_dir, [short])
    result = CliRunner().invoke(cli, ["predict", str(trained["run"].run_dir), str(short)])
    assert result.exit_code == 1 and "shorter than one window" in result.output


def test_predict_says_it_heard_nothing_on_silence_and_skips_silent_windows(trained, tmp_path):
    from guitarlab.train.predict import HEARD_NOTHING, predict_files

    silence = tmp_path / "silence.wav"
    sf.write(silence, np.zeros(3 * RATE), RATE)
    (pred,) = predict_files(trained["run"].run_dir, [silence])
    assert pred.heard_nothing and pred.label == HEARD_NOTHING and pred.n_windows == 0
    # a note after a lead-in of silence: only the sounding windows vote
    note = guitar_like("ST", "lead", seconds=2.0)
    lead_in = tmp_path / "lead-in.wav"
    sf.write(lead_in, np.concatenate([np.zeros(RATE), 0.3 * note / np.abs(note).max()]), RATE)
    (pred,) = predict_files(trained["run"].run_dir, [lead_in])
    assert pred.silent_windows == RATE // WINDOW and pred.n_windows == 2 * RATE // WINDOW
    assert min(pred.times_s) >= 1.0 and not pred.heard_nothing
    result = CliRunner().invoke(cli, ["predict", str(trained["run"].run_dir), str(silence)])
    assert result.exit_code == 0 and "heard nothing" in result.output


def test_predict_many_files_reports_the_bad_ones_and_goes_on(trained, tmp_path):
    good = sorted(trained["wavs"].glob("*.wav"))[:2]
    short = tmp_path / "short.wav"
    sf.write(short, np.full(WINDOW // 2, 0.1), RATE)
    text = tmp_path / "notes.wav"
    text.write_text("not audio")
    files = [str(good[0]), str(short), str(text), str(good[1])]
    result = CliRunner().invoke(cli, ["predict", str(trained["run"].run_dir), *files])
    assert result.exit_code == 1
    assert "short.wav" in result.output and "shorter than one window" in result.output
    assert "notes.wav" in result.output and "Traceback" not in result.output
    assert f"{good[0]}: " in result.output and f"{good[1]}: " in result.output
    assert "2 of 4 file(s) could not be labelled" in result.output
    assert "summary of 4 file(s):" in result.output
    assert "(could not be labelled)  1 file(s)" in result.output
    assert "(unreadable)             1 file(s)" in result.output


def test_summarize_counts_every_file_once():
    from guitarlab.train.predict import HEARD_NOTHING, Prediction, summarize

    def pred(label, confidence=0.8, **kw):
        return Prediction(path="x", label=label, confidence=confidence, probabilities={},
                          n_windows=1, seconds=1.0, **kw)  # fmt: skip

    table = summarize(
        [pred("sg", 0.9), pred("sg", 0.7), pred("strat", 0.6),
         pred(HEARD_NOTHING, 0.0, heard_nothing=True), pred("", 0.0, error="short")]
    )  # fmt: skip
    assert [(r["label"], r["files"]) for r in table] == [
        ("sg", 2), ("strat", 1), (HEARD_NOTHING, 1), ("(could not be labelled)", 1)
    ]  # fmt: skip
    assert table[0]["mean_confidence"] == 0.8 and table[2]["mean_confidence"] is None


def test_honest_scores_name_the_majority_rate_and_per_class_recall():
    from guitarlab.train.evaluate import headline, honest_scores

    labels = np.array([1, 1, 1, 1, 0, 0])
    always_one = np.tile([[0.1, 0.9]], (6, 1))
    scores = honest_scores(labels, always_one, ["single_coil", "humbucker"])
    assert scores["accuracy"] == pytest.approx(4 / 6)
    assert scores["balanced_accuracy"] == 0.5
    assert scores["majority_label"] == "humbucker" and scores["majority_rate"] == pytest.approx(
        4 / 6
    )
    assert scores["roc_auc"] == 0.5
    recall = dict(zip(scores["per_class"]["label"], scores["per_class"]["recall"], strict=True))
    assert recall == {"single_coil": 0.0, "humbucker": 1.0}
    assert "always saying humbucker would score 67%" in headline(scores)
    ranked = np.array([[0.4, 0.6]] * 4 + [[0.6, 0.4]] * 2)
    assert honest_scores(labels, ranked, ["a", "b"])["roc_auc"] == 1.0
    missing = honest_scores(np.array([0, 0]), np.array([[0.9, 0.1]] * 2), ["a", "b"])
    assert missing["roc_auc"] is None and missing["balanced_accuracy"] == 1.0


def test_group_tables_for_every_varying_column():
    import pandas as pd

    from guitarlab.train.evaluate import group_table, varying_columns

    files = pd.DataFrame(
        {
            "id": list("abcd"),
            "guitar": ["x", "x", "y", "y"],
            "phrase": ["note"] * 4,
            "tone": ["raw", "clean", "raw", "clean"],
            "fret": ["1", "7", "1", "7"],
            "label": ["s", "s", "h", "h"],
            "predicted": ["s", "h", "h", "h"],
            "correct": [True, False, True, True],
        }
    )
    assert varying_columns(files) == ["guitar", "tone", "fret"]
    table = group_table(files, "fret")
    assert table["accuracy"].tolist() == [1.0, 0.5]
    assert table["balanced_accuracy"].tolist() == [1.0, 0.5]


def test_predict_command_json_and_plot(trained, tmp_path):
    wav = sorted(trained["wavs"].glob("ST_*.wav"))[0]
    png = tmp_path / "over-time.png"
    result = CliRunner().invoke(
        cli, ["predict", str(trained["run"].run_dir), str(wav), "--json", "--plot", str(png)]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data[0]["path"] == str(wav) and len(data[0]["confidence_over_time"]) == 6
    assert png.stat().st_size > 1000


def test_fine_tune_from_a_run(trained, tmp_path):
    """The lead's retraining path: load_run -> load_model -> fit_dataset(initial_model=...)."""
    from guitarlab.train.config import TrainConfig
    from guitarlab.train.fit import fit_dataset
    from guitarlab.train.rundir import load_run

    info = load_run(trained["run"].run_dir)
    assert info.dataset_dir == Path(trained["dataset"]).resolve()
    model = info.load_model()
    config = TrainConfig(
        input="wave", filters=(8, 16, 8), epochs=1, fine_tune_epochs=0, lr=1e-4, verbose=0
    )
    run = fit_dataset(info.dataset_dir, tmp_path / "tuned", config, initial_model=model)
    assert run.metrics["test_window_accuracy"] >= 0.6
    assert (tmp_path / "tuned" / "model.keras").is_file()

    from guitarlab.train.models import widen_output

    with pytest.raises(TrainError, match="widen_output"):
        fit_dataset(
            info.dataset_dir, tmp_path / "wide", config, initial_model=widen_output(model, 3)
        )


def test_evaluate_refuses_an_array_run(tmp_path):
    from guitarlab.train.evaluate import evaluate_run

    (tmp_path / "run.json").write_text(
        json.dumps(
            {"config": {}, "label_names": ["a", "b"], "window": 10, "data": {"dataset_dir": None}}
        )
    )
    with pytest.raises(TrainError, match="trained from arrays"):
        evaluate_run(tmp_path)
    with pytest.raises(TrainError, match="not a run folder"):
        evaluate_run(tmp_path / "nowhere")


@pytest.mark.server
def test_predict_live_prints_a_rolling_label_from_an_audio_server(trained):
    """Live input through PortAudio from a PulseAudio null sink (digital silence)."""
    import io
    import os

    from guitarlab.corpus.errors import RecorderError
    from guitarlab.live import predict_live
    from guitarlab.recorder.server import start_audio_server

    try:
        server = start_audio_server(rate=48000)
    except RecorderError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"audio server must start in CI: {exc}")
        pytest.skip(f"no audio server on this machine: {exc}")
    try:
        printed = io.StringIO()
        lines = predict_live(
            trained["run"].run_dir, device="pulse", seconds=4.0, hop_s=0.5, out=printed
        )
    finally:
        server.stop()
    assert len(lines) >= 2
    # the null sink delivers digital silence: nothing is heard, no guitar is named
    from guitarlab.train.predict import HEARD_NOTHING

    assert {label for _, label, _ in lines} == {HEARD_NOTHING}
    assert "listening on" in printed.getvalue()


def test_train_command_on_a_dataset_folder(trained, tmp_path):
    out = tmp_path / "cli-run"
    args = ["train", "--dataset", str(trained["dataset"]), "--out", str(out), "--quiet"]
    args += ["--input", "wave", "--filters", "8,16,8", "--epochs", "1", "--fine-tune-epochs", "0"]
    args += ["--batch", "16"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "training on CPU" in result.output or "training on GPU" in result.output
    assert f"next: guitarlab evaluate {out}" in result.output
    meta = json.loads((out / "run.json").read_text())
    assert meta["config"]["batch"] == 16 and meta["data"]["source"] == "dataset"
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 1 and "--resume" in again.output


def test_review_app_labels_rows_with_a_real_run(trained):
    """``guitarlab review --run``: per-row labels over time, and the queue, from a real run."""
    pytest.importorskip("starlette", reason="the review extra is not installed")
    pytest.importorskip("httpx", reason="httpx (Starlette's test client) is not installed")
    from starlette.testclient import TestClient

    from guitarlab.review import create_app

    corpus = trained["root"] / "corpus"
    app = create_app(corpus, token="t", run=trained["run"].run_dir)
    client = TestClient(app, base_url="http://127.0.0.1")
    auth = {"Authorization": "Bearer t"}
    rows = client.get("/api/queue", headers=auth).json()["rows"]
    assert len(rows) == 8 and {r["label"] for r in rows} == {"stratocaster", "les_paul"}
    flags = [r["disagrees"] for r in rows]
    assert flags == sorted(flags, reverse=True)  # disagreements first
    first = client.get(f"/api/rows/{rows[0]['id']}/predictions", headers=auth).json()
    assert first["label"] in ("stratocaster", "les_paul") and 0 < first["confidence"] <= 1
    assert len(first["labels_over_time"]) == len(first["times_s"]) > 0


def test_review_predictions_read_inside_the_corpus_only(trained, tmp_path: Path) -> None:
    """The review app's run labels a take in the corpus and refuses one a link puts outside."""
    import shutil

    import pandas as pd

    from guitarlab.review.model import RunLabels

    corpus = tmp_path / "corpus"
    (corpus / "takes").mkdir(parents=True)
    wav = sorted(trained["wavs"].glob("*.wav"))[0]
    shutil.copy(wav, corpus / "takes" / "inside.wav")
    (corpus / "takes" / "link.wav").symlink_to(wav)  # the same audio, outside the corpus
    labels = RunLabels(trained["run"].run_dir, corpus)
    inside = labels.predict_row(pd.Series({"id": "a", "sha256": "0", "path": "takes/inside.wav"}))
    assert not inside.get("error") and inside["label"] in labels.info.label_names
    link = labels.predict_row(pd.Series({"id": "b", "sha256": "0", "path": "takes/link.wav"}))
    assert "outside the corpus" in link["error"] and link["label"] == ""
