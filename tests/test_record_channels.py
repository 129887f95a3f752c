"""Several inputs at once: ``record --channels 1,2 --roles di,mic``.

The server tests play a stereo signal into the test input's two channels (the PulseAudio
null sink ``guitarlab_in`` has two, its monitor is the default source) and record both in
one stream; the dataset tests check that a take's inputs stay on one side of every split.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from scipy.signal import chirp, correlate

from guitarlab.cli import cli
from guitarlab.corpus.errors import RecorderError
from guitarlab.corpus.levels import rms_dbfs
from guitarlab.corpus.manifest import commit_audio, init_corpus, load_manifest, manifest_row
from guitarlab.datasets.build import build_dataset
from guitarlab.datasets.folder import check_dataset, open_dataset
from guitarlab.recorder.session import check_inputs, record_inputs

RATE = 48000


def _chirp(seconds: float, amplitude: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    audio = amplitude * chirp(t, 100.0, seconds, 4000.0) * np.minimum(1.0, t / 0.05)
    audio[: int(0.02 * RATE)] = 0.0
    return audio.astype(np.float32)


def _lag(a: np.ndarray, b: np.ndarray) -> int:
    """Samples ``a`` lags ``b`` by (cross-correlation peak)."""
    return int(np.argmax(correlate(a, b, mode="full", method="fft"))) - (len(b) - 1)


def test_inputs_need_one_distinct_role_each() -> None:
    assert check_inputs(1, [1, 2], ["DI", "Mic"]) == [(1, "di"), (2, "mic")]
    assert check_inputs(2, None, None) == [(2, "")]
    for channels, roles, message in [
        ([1, 2], ["di"], "one role per input"),
        ([1, 1], ["di", "mic"], "distinct interface inputs"),
        ([1, 2], ["di", "di"], "its own role"),
        (None, ["di"], "add --channels"),
    ]:
        with pytest.raises(RecorderError, match=message):
            check_inputs(1, channels, roles)


@pytest.mark.server
def test_two_inputs_record_sample_aligned_files_of_one_take(server, tmp_path: Path) -> None:
    corpus = init_corpus(tmp_path / "corpus")
    signal = _chirp(2.0, 0.3)
    stereo = np.stack([signal, 0.5 * signal], axis=1)  # the mic input 6 dB below the DI
    rows = record_inputs(
        corpus,
        channels=[1, 2],
        roles=["di", "mic"],
        guitar="Stratocaster",
        phrase="lead",
        seconds=1.5,
        rate=RATE,
        device="pulse",
        count_in=0,
        click=False,
        source_audio=stereo,
    )
    assert [r["id"] for r in rows] == [
        "stratocaster-lead-t001-raw-di",
        "stratocaster-lead-t001-raw-mic",
    ]
    stored = load_manifest(corpus).set_index("id")
    assert list(stored["role"]) == ["di", "mic"]
    assert set(stored["take"]) == {"stratocaster-lead-t001"}
    assert list(stored["path"]) == [f"takes/{rid}.wav" for rid in stored.index]
    assert len(set(stored["recorded_at"])) == 1 and set(stored["status"]) == {""}
    di, _ = sf.read(corpus / stored.loc[rows[0]["id"], "path"], dtype="float32")
    mic, _ = sf.read(corpus / stored.loc[rows[1]["id"], "path"], dtype="float32")
    assert di.shape == mic.shape == (int(1.5 * RATE),)
    assert rms_dbfs(di) > -40  # the signal is there, not silence
    assert _lag(di, mic) == 0  # one stream: zero lag between the inputs
    np.testing.assert_allclose(mic, 0.5 * di, atol=2e-4)  # each input in its own file
    assert rms_dbfs(di) - rms_dbfs(mic) == pytest.approx(6.02, abs=0.05)
    assert not list((corpus / "takes").glob(".*.json"))  # sidecars gone with the rows


@pytest.mark.server
def test_record_cli_two_inputs_and_its_one_line_mistakes(server, tmp_path: Path) -> None:
    corpus = init_corpus(tmp_path / "corpus")
    played = tmp_path / "played.wav"
    sf.write(played, _chirp(1.5, 0.3), RATE)
    base = ["record", "--corpus", str(corpus), "--guitar", "tele", "--phrase", "riff"]
    base += ["--seconds", "1", "--rate", str(RATE), "--device", "pulse", "--count-in", "0"]
    base += ["--no-click", "--play", str(played)]
    result = CliRunner().invoke(cli, [*base, "--channels", "1,2", "--roles", "di,mic"])
    assert result.exit_code == 0, result.output
    assert "takes/tele-riff-t001-raw-di.wav: 1.0 s" in result.output
    assert "takes/tele-riff-t001-raw-mic.wav: 1.0 s" in result.output
    assert sorted(load_manifest(corpus)["role"]) == ["di", "mic"]
    for extra, message in [
        (["--channels", "1,2", "--roles", "di"], "needs one role per input"),
        (["--channels", "1,x", "--roles", "di,mic"], "not a list of input numbers"),
        (["--channels", "1,99", "--roles", "di,mic"], "channel 99 is not available"),
    ]:
        result = CliRunner().invoke(cli, [*base, *extra])
        assert result.exit_code != 0 and message in result.output, result.output
        assert "Traceback" not in result.output
    assert len(load_manifest(corpus)) == 2  # nothing added by a refused command


# ---------------------------------------------------------------- datasets

DATA_RATE = 16000


def _two_input_corpus(root: Path) -> Path:
    """Two guitars x 3 takes x (di, mic), 1.5 s each, rows as ``record --channels`` makes them."""
    init_corpus(root)
    rng = np.random.default_rng(0)
    for guitar, freq in (("strat", 220.0), ("paul", 330.0)):
        for number in (1, 2, 3):
            take = f"{guitar}-lead-t{number:03d}"
            t = np.arange(int(1.5 * DATA_RATE)) / DATA_RATE
            di = 0.2 * np.sin(2 * np.pi * freq * number * t) + 0.01 * rng.standard_normal(t.size)
            for role, audio in (("di", di), ("mic", 0.5 * di)):
                rid = f"{take}-raw-{role}"
                row = manifest_row(
                    id=rid,
                    path=f"takes/{rid}.wav",
                    guitar=guitar,
                    phrase="lead",
                    take=take,
                    columns={"rms_dbfs": rms_dbfs(audio)},
                    role=role,
                )
                commit_audio(root, row, audio.astype(np.float32), DATA_RATE)
    return root


def test_a_takes_inputs_land_on_one_side_and_where_picks_a_role(tmp_path: Path) -> None:
    corpus = _two_input_corpus(tmp_path / "corpus")
    both = build_dataset(corpus, tmp_path / "both", split="take", window=4000, progress=False)
    ds = open_dataset(both)
    side = {}
    for split in ("train", "val", "test"):
        for rid, take in (
            ds.windows(split)[["id", "take"]].drop_duplicates().itertuples(index=False)
        ):
            side.setdefault(take, set()).add(split)
            assert rid.endswith(("-raw-di", "-raw-mic"))
    test_takes = {t for t, s in side.items() if "test" in s}
    assert test_takes and all(side[t] == {"test"} for t in test_takes)  # di and mic: test only
    test_ids = set(ds.windows("test")["id"])
    assert {f"{t}-raw-{r}" for t in test_takes for r in ("di", "mic")} == test_ids
    assert check_dataset(both) == []
    di_only = open_dataset(
        build_dataset(
            corpus,
            tmp_path / "di",
            split="take",
            window=4000,
            where="role == 'di'",
            progress=False,
        )
    )
    ids = set().union(*(set(di_only.windows(s)["id"]) for s in ("train", "val", "test")))
    assert ids and all(rid.endswith("-raw-di") for rid in ids)
    assert len(ids) == 6


def test_renders_and_recovery_keep_each_inputs_role(tmp_path: Path) -> None:
    """augment renders each input apart (<take>-clean-di), recover reads a role's file name."""
    from guitarlab.augment.renders import render_corpus
    from guitarlab.recorder.recover import recover_takes

    corpus = _two_input_corpus(tmp_path / "corpus")
    added = render_corpus(corpus, tones="clean", where="take == 'strat-lead-t001'", progress=False)
    assert sorted(added) == ["strat-lead-t001-clean-di", "strat-lead-t001-clean-mic"]
    frame = load_manifest(corpus).set_index("id")
    assert frame.loc["strat-lead-t001-clean-mic", "role"] == "mic"
    assert frame.loc["strat-lead-t001-clean-mic", "source"] == "strat-lead-t001-raw-mic"
    # a take left by a kill, without its sidecar: labels from the name, role included
    lost = corpus / "takes" / "strat-lead-t009-raw-mic.wav"
    sf.write(lost, np.full(DATA_RATE, 0.1, np.float32), DATA_RATE, subtype="PCM_24")
    (row,) = recover_takes(corpus).added
    assert (row["take"], row["role"], row["status"]) == ("strat-lead-t009", "mic", "partial")
