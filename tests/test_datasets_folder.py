"""The reading side: open_dataset, arrays, window tables, eval clips and tf.data pipelines."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import write_tone

from guitarlab.corpus.errors import DatasetError
from guitarlab.corpus.intake import import_folder
from guitarlab.datasets.build import build_dataset
from guitarlab.datasets.folder import Clip, open_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("folder")
    src = base / "src"
    for gi, guitar in enumerate(("ST", "LP")):
        for pi, phrase in enumerate(("backing", "lead")):
            for ti, tone in enumerate(("raw", "clean", "crunch")):
                write_tone(
                    src / f"{guitar}_{phrase}_{tone}.wav",
                    seconds=3.0,
                    freq_hz=110.0 * (1 + gi) + 10 * pi + 3 * ti,
                )
    import_folder(src, base / "corpus", progress=False)
    return build_dataset(base / "corpus", base / "ds", progress=False)


def test_open_dataset_exposes_the_label_map_and_arrays(dataset: Path) -> None:
    ds = open_dataset(dataset)
    assert ds.path == dataset and ds.n_classes == 2 and ds.window == 8000
    assert ds.sample_rate == 44100 and len(ds.hash) == 64
    assert ds.label_names == ["les_paul", "stratocaster"]
    for split in ("train", "val", "test"):
        x, y = ds.arrays(split)
        assert x.dtype == np.float32 and x.shape[1:] == (8000, 1)
        assert isinstance(x.audio, np.memmap)  # read on demand, never loaded whole
        assert y.dtype == np.int64 and y.shape == (x.shape[0],)
        table = ds.windows(split)
        assert list(table.columns) == ["id", "take", "tone", "guitar", "phrase", "start", "label"]
        assert len(table) == len(y)
        np.testing.assert_array_equal(table["label"].to_numpy(), y)
        names = np.array(ds.label_names)[y]
        np.testing.assert_array_equal(names, table["guitar"].to_numpy())


def test_eval_clips_are_the_test_spans_of_every_file(dataset: Path) -> None:
    ds = open_dataset(dataset)
    clips = ds.eval_clips()
    assert len(clips) == 12 and all(isinstance(c, Clip) for c in clips)
    stacked = np.stack([c.windows for c in clips])
    assert stacked.shape == (12, 12, 8000, 1) and stacked.dtype == np.float32
    x, _ = ds.arrays("test")
    np.testing.assert_array_equal(stacked.reshape(-1, 8000, 1), x)
    for clip in clips:
        assert clip.label_name == ds.label_names[clip.label] == clip.guitar
        span = ds.meta["takes"][clip.take]["test"][0]
        assert clip.start == span[0] and clip.id.startswith(clip.take)
    # consecutive windows: the clip is the span's audio, end to end
    clip = clips[0]
    assert np.all(np.diff(ds.windows("test").query("id == @clip.id")["start"]) == 8000)


def test_tf_dataset_batches_have_the_right_shapes_and_labels(dataset: Path) -> None:
    tf = pytest.importorskip("tensorflow")
    ds = open_dataset(dataset)
    _, y = ds.arrays("train")
    for cache in (False, True):
        pipeline = ds.tf_dataset("train", batch_size=8, seed=1, cache=cache)
        seen = []
        for xb, yb in pipeline:
            assert xb.dtype == tf.float32 and yb.dtype == tf.int64
            assert xb.shape[1:] == (8000, 1) and xb.shape[0] == yb.shape[0] <= 8
            seen.append(yb.numpy())
        assert sorted(np.concatenate(seen)) == sorted(y)
    dropped = ds.tf_dataset("test", batch_size=10, shuffle=False, drop_remainder=True)
    assert dropped.element_spec[0].shape.as_list() == [10, 8000, 1]
    first_x, first_y = next(iter(ds.tf_dataset("test", batch_size=4, shuffle=False)))
    x_test, y_test = ds.arrays("test")
    np.testing.assert_array_equal(first_x.numpy(), x_test[:4])
    np.testing.assert_array_equal(first_y.numpy(), y_test[:4])
    looping = ds.tf_dataset("val", batch_size=5, repeat=True)
    assert len(list(looping.take(10))) == 10


def test_not_a_dataset_and_corrupt_folders(dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no such dataset folder"):
        open_dataset(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="not a dataset folder"):
        open_dataset(tmp_path / "empty")
    broken = tmp_path / "broken"
    shutil.copytree(dataset, broken)
    (broken / "dataset.json").write_text("{ not json", encoding="utf-8")
    with pytest.raises(DatasetError, match="corrupt"):
        open_dataset(broken)
    (broken / "dataset.json").write_text(json.dumps({"format": "other"}), encoding="utf-8")
    with pytest.raises(DatasetError, match="not a guitarlab dataset"):
        open_dataset(broken)
    shutil.rmtree(broken)
    shutil.copytree(dataset, broken)
    (broken / "val_audio.npy").unlink()
    with pytest.raises(DatasetError, match="val_audio.npy: missing"):
        open_dataset(broken).arrays("val")
    with pytest.raises(DatasetError, match="unknown split"):
        open_dataset(dataset).arrays("training")
    # a folder from before the split audio was stored once: one clear line, rebuild
    meta = json.loads((broken / "dataset.json").read_text(encoding="utf-8"))
    (broken / "dataset.json").write_text(json.dumps({**meta, "format_version": 1}))
    with pytest.raises(DatasetError, match="dataset format 1, .* reads format 2 .* rebuild it"):
        open_dataset(broken)
    # starts that point past the stored audio are a corrupt folder, not a crash
    shutil.rmtree(broken)
    shutil.copytree(dataset, broken)
    starts = np.load(broken / "test_starts.npy")
    np.save(broken / "test_starts.npy", starts + 10**9)
    with pytest.raises(DatasetError, match="test_starts.npy: window starts reach past"):
        open_dataset(broken).arrays("test")
