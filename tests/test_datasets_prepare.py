"""One preprocessing path: a window predicted from a WAV equals the dataset folder's window.

Dataset build and prediction both prepare a file with ``datasets.windows.prepare``'s two
steps (mono + resample, then standardize); here a stereo 48 kHz take and mono 44.1 kHz
takes go through ``build_dataset`` and through ``predict_array`` (with a model that only
records what it is given), and the windows must be equal, sample for sample.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import write_tone

from guitarlab.corpus.audio import read_audio
from guitarlab.corpus.intake import import_folder
from guitarlab.corpus.manifest import load_manifest, resolve_audio_path
from guitarlab.datasets.build import build_dataset
from guitarlab.datasets.folder import open_dataset
from guitarlab.datasets.windows import prepare


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("prepare")
    src = base / "src"
    for gi, guitar in enumerate(("ST", "LP")):
        for pi, phrase in enumerate(("backing", "lead")):
            stereo = guitar == "ST" and phrase == "lead"
            write_tone(
                src / f"{guitar}_{phrase}_raw.wav",
                seconds=3.0,
                rate=48000 if stereo else 44100,
                channels=2 if stereo else 1,
                freq_hz=110.0 * (1 + gi) + 10 * pi,
                amplitude=0.1 + 0.05 * pi,
            )
    corpus = import_folder(src, base / "corpus", progress=False) and base / "corpus"
    out = build_dataset(corpus, base / "ds", resample=True, progress=False)
    return corpus, Path(out)


class RecordingModel:
    """Stands in for a Keras model: keeps the windows it is called with."""

    def __init__(self) -> None:
        self.frames: np.ndarray | None = None

    def __call__(self, frames, training: bool = False) -> np.ndarray:
        self.frames = np.asarray(frames)[:, :, 0]
        return np.full((len(frames), 1), 0.5, dtype=np.float32)


def test_a_predicted_window_equals_the_dataset_window(dataset) -> None:
    from guitarlab.train.predict import predict_array

    corpus, out = dataset
    ds = open_dataset(out)
    manifest = load_manifest(corpus).set_index("id")
    info = SimpleNamespace(
        sample_rate=ds.sample_rate,
        window=ds.window,
        standardize="file",
        standardization=None,
        label_names=list(ds.label_names),
        n_classes=len(ds.label_names),
        run_dir=out,
    )
    compared = set()
    for split in ("train", "val", "test"):
        x, _ = ds.arrays(split)
        for i, row in ds.windows(split).iterrows():
            path = resolve_audio_path(corpus, manifest.loc[row["id"], "path"])
            audio, rate = read_audio(path)
            model = RecordingModel()
            prediction = predict_array(model, audio, rate, info, path=str(path))
            assert prediction.error is None
            start = int(row["start"])
            dataset_window = np.asarray(x[i])[:, 0]
            # the prepared signal itself, at any start
            prepared = prepare(audio, rate, target_rate=ds.sample_rate).audio
            assert np.array_equal(prepared[start : start + ds.window], dataset_window)
            # and the window predict_array gave the model, where its grid meets the dataset's
            if start % ds.window == 0:
                predicted = model.frames[start // ds.window]
                assert np.array_equal(predicted, dataset_window), (row["id"], start)
                compared.add(row["id"])
    ids = set(manifest.index)
    assert compared == ids, f"no window on predict's grid for {sorted(ids - compared)}"
    stereo = manifest.loc[[i for i in ids if "lead" in i and i.startswith("st")]]
    assert len(stereo) == 1
    assert (stereo["channels"].astype(int) == 2).all() and (
        stereo["sample_rate"].astype(int) == 48000
    ).all()
