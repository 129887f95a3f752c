"""Windowing and standardization: exact frame counts, views, z-scores, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest

from guitarlab.corpus.errors import DatasetError
from guitarlab.datasets.windows import (
    WindowView,
    covered_spans,
    first_sound_sample,
    n_windows,
    standardize,
    to_mono,
    window,
    window_starts,
)


@pytest.mark.parametrize(
    ("frames", "length", "hop", "expected"),
    [
        (96_000, 8_000, None, 12),
        (132_300, 8_000, None, 16),
        (132_300, 8_000, 4_000, 32),
        (7_999, 8_000, None, 0),
        (8_000, 8_000, None, 1),
        (10, 4, 3, 3),
    ],
)
def test_window_counts_follow_from_frames(frames, length, hop, expected) -> None:
    assert n_windows(frames, length=length, hop=hop) == expected
    starts = window_starts(frames, length=length, hop=hop)
    assert starts.size == expected
    if expected:
        assert starts[-1] + length <= frames
        assert np.all(np.diff(starts) == (hop or length))


def test_window_is_a_view_like_librosa_frame() -> None:
    audio = np.arange(20, dtype=np.float32)
    frames = window(audio, length=6, hop=4)
    assert frames.shape == (4, 6)
    np.testing.assert_array_equal(frames[1], audio[4:10])
    np.testing.assert_array_equal(frames[-1], audio[12:18])
    assert np.shares_memory(frames, audio)
    post_like = window(np.arange(96_000.0), length=8_000)
    assert post_like.shape == (12, 8_000) and post_like[11, 0] == 88_000


@pytest.mark.parametrize(
    ("audio", "kwargs", "message"),
    [
        (np.zeros((100, 2)), {"length": 10}, "mono signal"),
        (np.zeros(5), {"length": 10}, "shorter than one window"),
        (np.zeros(50), {"length": 0}, "at least 1 sample"),
        (np.zeros(50), {"length": 10, "hop": 0}, "hop must be"),
    ],
)
def test_window_rejects_bad_input(audio, kwargs, message) -> None:
    with pytest.raises(DatasetError, match=message):
        window(audio, **kwargs)


def test_window_view_indexes_like_the_stacked_windows() -> None:
    audio = np.arange(100, dtype=np.float32)
    starts = np.array([0, 10, 20, 30, 60, 75])
    stacked = np.stack([audio[s : s + 25] for s in starts])[:, :, None]
    view = WindowView(audio, starts, 25)
    assert view.shape == stacked.shape and len(view) == 6 and view.dtype == np.float32
    for key in (3, -1, slice(1, 4), slice(None, None, 2), np.array([5, 0, 2]), starts > 15):
        np.testing.assert_array_equal(view[key], stacked[key])
    np.testing.assert_array_equal(view[2, :, 0], stacked[2, :, 0])
    np.testing.assert_array_equal(view[1:3, 5], stacked[1:3, 5])
    np.testing.assert_array_equal(np.asarray(view), stacked)
    np.testing.assert_array_equal(np.stack(list(view)), stacked)
    np.testing.assert_array_equal(view.subset([4, 1])[:], stacked[[4, 1]])
    with pytest.raises(DatasetError, match="past the 100 stored samples"):
        WindowView(audio, np.array([0, 80]), 25)


def test_covered_spans_merge_windows_that_overlap_or_touch() -> None:
    assert covered_spans(np.array([0, 10, 20, 45, 70]), 25).tolist() == [[0, 95]]
    assert covered_spans(np.array([0, 10, 20, 46, 70]), 25).tolist() == [[0, 45], [46, 95]]
    assert covered_spans(np.array([0, 50]), 25).tolist() == [[0, 25], [50, 75]]
    assert covered_spans(np.array([], dtype=np.int64), 25).shape == (0, 2)
    with pytest.raises(DatasetError, match="sorted"):
        covered_spans(np.array([10, 0]), 25)


def test_standardize_per_file_and_with_given_stats() -> None:
    rng = np.random.default_rng(0)
    audio = (0.3 + 0.05 * rng.standard_normal(10_000)).astype(np.float32)
    z = standardize(audio)
    assert z.dtype == np.float32
    assert abs(float(z.mean())) < 1e-5 and abs(float(z.std()) - 1) < 1e-4
    fixed = standardize(audio, mean=0.3, std=0.5)
    np.testing.assert_allclose(fixed, (audio - 0.3) / 0.5, rtol=1e-5, atol=1e-6)
    assert audio.mean() > 0.2  # the input is untouched


def test_standardize_silence_stays_finite() -> None:
    silent = np.full(1000, 0.01, dtype=np.float32)
    out = standardize(silent)
    assert np.all(np.isfinite(out)) and np.allclose(out, 0, atol=1e-6)


def test_to_mono_averages_channels() -> None:
    stereo = np.stack([np.ones(5), np.zeros(5)], axis=1).astype(np.float32)
    np.testing.assert_allclose(to_mono(stereo), 0.5)
    assert to_mono(np.ones(4)).shape == (4,)
    assert to_mono(np.ones((4, 1))).shape == (4,)


def test_first_sound_sample_finds_the_onset_after_a_silent_lead_in() -> None:
    rate = 8000
    t = np.arange(rate) / rate
    note = 0.5 * np.sin(2 * np.pi * 220 * t) * np.exp(-4 * t)
    rng = np.random.default_rng(0)
    hiss = 1e-4 * rng.standard_normal(1200)  # -80 dB noise floor before the note
    audio = np.concatenate([hiss, note]).astype(np.float32)
    assert first_sound_sample(audio, rate) == 1200
    assert first_sound_sample(np.stack([audio, audio], axis=1), rate) == 1200
    assert first_sound_sample(note, rate) == 0
    assert (
        first_sound_sample(np.zeros(500), rate) == 0 and first_sound_sample(np.zeros(3), rate) == 0
    )
    # a quieter threshold counts the hiss as sound
    assert first_sound_sample(audio, rate, threshold_db=-90) == 0
    with pytest.raises(DatasetError, match="threshold_db must be negative"):
        first_sound_sample(audio, rate, threshold_db=6)
