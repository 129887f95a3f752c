"""The synthetic note library's session (synth/session.py) and the pitch-aware view of a
note (train/pitch.py): what the session-notes and session-strings protocols rest on."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from guitarlab.corpus.errors import RecorderError
from guitarlab.corpus.manifest import load_manifest
from guitarlab.datasets.build import build_dataset
from guitarlab.datasets.folder import check_dataset, open_dataset
from guitarlab.synth.family import render_params
from guitarlab.synth.session import SESSION_SETTINGS, session_plan, session_to_corpus
from guitarlab.train.pitch import estimate_f0, harmonic_profile, profile_by_length

SR = 22050
PERFORMANCE = ("pick_attack",)  # the only option a note may change within a setting


def _options(item: dict) -> dict:
    return json.loads(item["params"])["options"]


def _event(item: dict) -> dict:
    return json.loads(item["params"])["events"][0]


def test_electronics_are_fixed_within_a_setting_and_the_playing_varies() -> None:
    plan = session_plan(seed=3, frets=(0, 5, 6, 12), sample_rate=SR)
    assert len(plan) == 3 * 6 * 4
    for setting in SESSION_SETTINGS:
        notes = [p for p in plan if p["setting"] == setting]
        rigs = [{k: v for k, v in _options(p).items() if k not in PERFORMANCE} for p in notes]
        assert all(rig == rigs[0] for rig in rigs), setting  # one cable, knobs, gain, room
        for field in ("velocity", "pluck_frac", "detune_cents", "dur_s", "start_s"):
            values = [_event(p)[field] for p in notes]
            assert len(set(values)) > len(notes) // 2, (setting, field)
        assert len({_options(p)["pick_attack"] for p in notes}) > len(notes) // 2
        assert all(abs(_event(p)["detune_cents"]) <= 10 for p in notes)
        assert all(0.15 <= _event(p)["start_s"] <= 0.27 for p in notes)
    rig = {s: _options(next(p for p in plan if p["setting"] == s)) for s in SESSION_SETTINGS}
    # one session: the same cable and strings for every setting, the knobs set per setting
    assert len({r["cable_pf"] for r in rig.values()}) == 1
    assert len({r["string_gauge"] for r in rig.values()}) == 1
    assert len({(r["tone_knob"], r["preamp_gain_db"]) for r in rig.values()}) == 3
    # another seed is another session; the same seed is the same one
    other = session_plan(seed=4, frets=(0,), sample_rate=SR)
    assert _options(other[0])["cable_pf"] != rig["bridge-humbucker"]["cable_pf"]
    assert session_plan(seed=3, frets=(0, 5, 6, 12), sample_rate=SR) == plan


def test_the_matched_session_leaves_only_the_sensing_geometry() -> None:
    plan = session_plan(seed=5, frets=(0, 9), sample_rate=SR, matched=True)
    rigs = {p["setting"]: _options(p) for p in plan}
    assert {r["pickup_position"] for r in rigs.values()} == {"bridge", "neck"}
    for key in ("resonance_hz", "tone_knob", "volume_knob", "preamp_gain_db", "cable_pf"):
        assert len({r[key] for r in rigs.values()}) == 1, key
    assert all(r["hum"] == 0 and 1800 <= r["resonance_hz"] <= 2400 for r in rigs.values())
    for seed in range(6):  # every setting can peak there (a bridge humbucker peaks lowest)
        for p in session_plan(seed=seed, frets=(0,), seconds=0.5, sample_rate=SR, matched=True):
            if p["string"] == 6:
                assert np.isfinite(render_params(p["params"])).all()
    plain = session_plan(seed=5, frets=(0,), sample_rate=SR)
    assert all(_options(p).get("resonance_hz") is None and _options(p)["hum"] > 0 for p in plain)


def test_session_corpus_has_string_and_fret_columns_and_renders_again(tmp_path: Path) -> None:
    corpus = tmp_path / "session"
    ids = session_to_corpus(corpus, seed=1, frets=(0, 7), seconds=0.8, sample_rate=SR,
                            progress=False)  # fmt: skip
    manifest = load_manifest(corpus)
    assert len(ids) == len(manifest) == 36
    assert sorted(manifest["string"].astype(int).unique()) == [1, 2, 3, 4, 5, 6]
    assert sorted(manifest["fret"].astype(int).unique()) == [0, 7]
    counts = manifest.groupby(["setting", "pickup"]).size().to_dict()
    assert counts == {
        ("bridge-humbucker", "humbucker"): 12,
        ("bridge-split", "single_coil"): 12,
        ("neck-humbucker", "humbucker"): 12,
    }
    row = manifest.iloc[5]
    audio, rate = sf.read(corpus / row["path"], dtype="float32")
    assert rate == SR and audio.shape == (int(0.8 * SR),)
    assert np.allclose(audio, render_params(row["synth_params"]), atol=2**-22)
    start = json.loads(row["synth_params"])["events"][0]["start_s"]
    loud = np.flatnonzero(np.abs(audio) > 0.1 * np.abs(audio).max())[0] / SR
    assert start <= loud < start + 0.02  # the pluck is where its event says
    # one plucked note: its pitch is the string and fret's (within the detune)
    midi = (40, 45, 50, 55, 59, 64)[6 - int(row["string"])] + int(row["fret"])
    f0 = estimate_f0(audio[int(start * SR) :], SR)
    assert abs(1200 * np.log2(f0 / (440 * 2 ** ((midi - 69) / 12)))) < 15
    assert session_to_corpus(corpus, seed=1, frets=(0, 7), seconds=0.8, sample_rate=SR,
                             progress=False) == []  # fmt: skip
    with pytest.raises(
        RecorderError, match="already in the corpus with other parameters; another seed"
    ):
        session_to_corpus(corpus, seed=2, frets=(0,), seconds=0.8, sample_rate=SR,
                          progress=False)  # fmt: skip


@pytest.mark.parametrize(
    ("test_where", "column", "test_values"),
    [("fret >= 6", "fret", {7}), ("string <= 3", "string", {1, 2, 3})],
)
def test_session_splits_hold_out_whole_notes(tmp_path, test_where, column, test_values) -> None:
    corpus = tmp_path / "session"
    session_to_corpus(corpus, seed=0, frets=(0, 2, 7), seconds=0.8, sample_rate=SR,
                      progress=False)  # fmt: skip
    out = build_dataset(
        corpus, tmp_path / "dataset", label="pickup", window=4096, test_where=test_where,
        val="take", trim_silence=True, seed=0, progress=False,
    )  # fmt: skip
    ds = open_dataset(out)
    manifest = load_manifest(corpus).set_index("id")
    takes = {split: set(ds.windows(split)["take"]) for split in ("train", "val", "test")}
    assert not takes["test"] & (takes["train"] | takes["val"])
    assert not takes["train"] & takes["val"]  # validation is whole training notes
    tested = {int(manifest.loc[i, column]) for i in ds.windows("test")["id"]}
    trained = {int(manifest.loc[i, column]) for i in ds.windows("train")["id"]}
    assert tested == test_values and not trained & test_values
    assert set(ds.windows("test")["id"]) == set(manifest.query(test_where.replace(
        column, f"{column}.astype('int')")).index)  # fmt: skip
    assert check_dataset(out) == []


def _note(f0_hz: float, weights: np.ndarray, *, level: float = 0.3, seconds: float = 0.6):
    t = np.arange(int(seconds * SR)) / SR
    k = np.arange(1, weights.size + 1)
    keep = k * f0_hz < 0.45 * SR
    return level * np.sum(
        weights[keep, None] * np.sin(2 * np.pi * f0_hz * k[keep, None] * t) * np.exp(-2 * t), axis=0
    )


def test_the_same_note_at_two_pitches_matches_by_harmonic_number() -> None:
    # a sensing point an eighth of the string from the bridge: a node, so a notch, at
    # harmonic 8; the same shape played at two pitches, one of them much quieter
    k = np.arange(1, 21)
    weights = np.abs(np.sin(np.pi * k / 8)) + 0.01
    low, high = _note(110.0, weights), _note(261.6, weights, level=0.05)
    assert abs(1200 * np.log2(estimate_f0(low, SR) / 110.0)) < 5
    assert abs(1200 * np.log2(estimate_f0(high, SR) / 261.6)) < 5
    a = harmonic_profile(low, SR, n_harmonics=20)
    b = harmonic_profile(high, SR, n_harmonics=20)
    assert np.abs(a - b)[a > -30].max() < 1.0  # the same profile: pitch and loudness removed
    assert np.argmin(a[:12]) == np.argmin(b[:12]) == 7  # the notch at harmonic 8 in both
    # the same point on a string stopped at the 12th fret (half the length): by number
    # the notch moves to harmonic 4, on the open string's numbers it is back at 8
    half = harmonic_profile(_note(220.0, np.abs(np.sin(np.pi * k / 4)) + 0.01), SR,
                            n_harmonics=20)  # fmt: skip
    assert np.argmin(half[:6]) == 3
    assert np.argmin(profile_by_length(half, 12)[:10]) == 7


def test_session_demo_dataset_follows_its_protocol(tmp_path: Path) -> None:
    from guitarlab.workflow import session_dataset

    out = tmp_path / "demo"
    assert session_dataset(out, protocol="session-notes", frets=(0, 7)) != "reused"
    notes = open_dataset(out / "dataset")
    assert notes.meta["held_out"]["test_where"] == "fret >= 6"
    assert notes.meta["options"]["val"] == "take"
    assert session_dataset(out, protocol="session-notes", frets=(0, 7)) == "reused"
    session_dataset(out, protocol="session-strings", frets=(0, 7))  # same notes, other split
    strings = open_dataset(out / "dataset")
    assert strings.meta["held_out"]["test_where"] == "string <= 3"
    manifest = load_manifest(out / "corpus").set_index("id")
    assert {int(manifest.loc[i, "string"]) for i in strings.windows("test")["id"]} == {1, 2, 3}


def test_session_files_are_committed_a_batch_at_a_time(tmp_path: Path, monkeypatch) -> None:
    """synth.takes.write_batched (notes and session runs): NOTE_BATCH rows a commit, the
    rest at the end, every file in the manifest in order."""
    from guitarlab.corpus import manifest as mf
    from guitarlab.synth import takes

    monkeypatch.setattr(takes, "NOTE_BATCH", 5)
    commits: list[int] = []
    real = mf.commit_rows

    def counted(root, rows, *args, **kwargs):
        commits.append(len(rows))
        return real(root, rows, *args, **kwargs)

    monkeypatch.setattr(mf, "commit_rows", counted)
    corpus = tmp_path / "session"
    ids = session_to_corpus(corpus, seed=1, frets=(0,), seconds=0.5, sample_rate=SR,
                            progress=False)  # fmt: skip
    assert commits == [5, 5, 5, 3] and load_manifest(corpus)["id"].tolist() == ids
