"""Calibration per guitar in the corpus, and the level-match warning between guitars."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from guitarlab.corpus.errors import RecorderError
from guitarlab.corpus.manifest import init_corpus
from guitarlab.recorder.calibration import (
    calibrated_peak,
    compare_guitars,
    level_mismatch,
    load_calibration,
    record_calibration,
)


def test_calibrations_are_saved_per_guitar_and_compared(tmp_path):
    root = init_corpus(tmp_path / "c")
    assert load_calibration(root)["guitars"] == {}
    record_calibration(
        root,
        "stratocaster",
        peak_dbfs=-12.0,
        rms_dbfs=-22.0,
        target_peak_dbfs=-12,
        gain_advice_db=0,
    )
    data = record_calibration(
        root, "les_paul", peak_dbfs=-9.0, rms_dbfs=-19.0, target_peak_dbfs=-12, gain_advice_db=-3
    )
    stored = json.loads((root / "calibration.json").read_text())
    assert set(stored["guitars"]) == {"stratocaster", "les_paul"}
    assert calibrated_peak(data, "les_paul") == -9.0 and calibrated_peak(data, "tele") is None
    (line,) = compare_guitars(data, "les_paul")
    assert "les_paul vs stratocaster: RMS +3.0 dB" in line and "NOT matched" in line
    record_calibration(
        root, "les_paul", peak_dbfs=-12.5, rms_dbfs=-22.5, target_peak_dbfs=-12, gain_advice_db=0.5
    )
    assert "(matched)" in compare_guitars(load_calibration(root), "les_paul")[0]


def test_broken_calibration_file_is_a_one_line_error(tmp_path):
    root = init_corpus(tmp_path / "c")
    (root / "calibration.json").write_text("{not json")
    with pytest.raises(RecorderError, match="calibration.json: not valid JSON"):
        load_calibration(root)


def test_level_mismatch_compares_with_other_guitars_same_phrase():
    manifest = pd.DataFrame(
        {
            "guitar": ["stratocaster", "stratocaster", "les_paul", "tele"],
            "phrase": ["backing", "backing", "backing", "lead"],
            "tone": ["raw", "raw", "raw", "raw"],
            "rms_dbfs": [-20.0, -21.0, -24.0, -10.0],
        }
    )
    # les_paul vs the strat's backing takes (-20.5 mean); tele's lead is another phrase
    assert "-3.5 dB RMS" in level_mismatch(
        manifest, guitar="les_paul", phrase="backing", rms_dbfs=-24.0
    )
    assert level_mismatch(manifest, guitar="les_paul", phrase="backing", rms_dbfs=-21.5) is None
    assert level_mismatch(manifest, guitar="tele", phrase="lead", rms_dbfs=-30.0) is None
