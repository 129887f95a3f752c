"""The shot list: plans read and validated whole, what the manifest says is done, and
scripted sessions through the real audio server (keys piped into ``guitarlab session``)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from click.testing import CliRunner
from conftest import import_raw_takes, two_raw_takes

from guitarlab.cli import cli
from guitarlab.corpus.audio import file_columns
from guitarlab.corpus.manifest import init_corpus, load_manifest
from guitarlab.recorder.shotlist import (
    PlanError,
    Shot,
    calibration_warnings,
    discard_take,
    parse_plan,
    plan_status,
    progress_text,
    read_plan,
    run_session,
    status_table,
)

RATE = 48000

PLAN_CSV = """guitar,pickup,position,phrase,takes,seconds,bpm,amp
Stratocaster,single_coil,neck,backing,3,60,120,Fender Deluxe
stratocaster,single_coil,bridge,backing,2,30,,fender_deluxe
# the Les Paul after a break
les_paul,humbucker,neck,lead,,,90,
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- reading a plan


def test_csv_plan_reads_labels_defaults_and_line_numbers(tmp_path):
    shots = read_plan(write(tmp_path / "plan.csv", PLAN_CSV))
    assert [s.line for s in shots] == [2, 3, 5]  # the comment line is skipped, not renumbered
    first, second, third = shots
    assert first.labels == {
        "guitar": "stratocaster",
        "pickup": "single_coil",
        "position": "neck",
        "amp": "fender_deluxe",
        "phrase": "backing",
    }
    assert (first.takes, first.seconds, first.bpm) == (3, 60.0, 120.0)
    assert (second.seconds, second.bpm) == (30.0, 120.0)  # blank bpm: the default
    assert (third.takes, third.seconds, third.bpm) == (1, 60.0, 90.0)
    assert third.labels["amp"] == ""
    assert first.extra_labels == {"position": "neck", "amp": "fender_deluxe"}
    assert first.describe() == "stratocaster, single_coil, neck, fender_deluxe, backing"


def test_toml_plan_top_level_keys_are_defaults(tmp_path):
    plan = write(
        tmp_path / "plan.toml",
        'seconds = 30\nguitar = "Les Paul"\n\n'
        '[[shot]]\nposition = "neck"\nphrase = "backing"\ntakes = 2\n\n'
        '[[shot]]\nphrase = "lead"\nseconds = 45.5\nplayer = "Ana"\n',
    )
    first, second = read_plan(plan)
    assert first.labels == {
        "guitar": "les_paul",
        "position": "neck",
        "phrase": "backing",
        "player": "",
    }
    assert (first.takes, first.seconds, first.line) == (2, 30.0, 4)
    assert second.labels["position"] == "" and second.labels["player"] == "Ana"
    assert (second.seconds, second.line) == (45.5, 9)


def test_every_problem_is_one_line_naming_file_line_and_field(tmp_path):
    plan = write(
        tmp_path / "bad.csv",
        "guitar,Phrase,takes,seconds,bpm,mic position,tone\n"
        "strat,backing,three,0,10,a,b\n"
        ",lead,2,1,120,b,c\n"
        "strat,backing,1,1,120,a,b\n",
    )
    with pytest.raises(PlanError) as caught:
        read_plan(plan)
    assert caught.value.problems == [
        f"{plan}:1: column 'mic position' is not a label name; use lower-case letters, digits and _ (e.g. mic_position)",
        f"{plan}:1: column 'tone' is one guitarlab fills for every take; remove or rename it",
        f"{plan}:2: takes 'three' is not a whole number of 1 or more; write e.g. 3",
        f"{plan}:2: seconds '0' must be a number above 0, e.g. 60",
        f"{plan}:2: bpm '10' is out of range; use 20..400",
        f"{plan}:3: guitar is empty; every shot needs a guitar",
        f"{plan}:4: the same shot as line 2 (strat, a, b, backing); give that line more takes instead",
    ]
    corpus = init_corpus(tmp_path / "corpus")
    result = CliRunner().invoke(cli, ["session", str(plan), "--corpus", str(corpus)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = result.output.splitlines()
    assert lines[:7] == caught.value.problems
    assert lines[7] == f"Error: {plan}: 7 problem(s) above; fix them and run again"


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("empty.csv", "", "empty.csv: no shots; write one per line under a header"),
        ("nophrase.csv", "guitar,takes\nstrat,2\n", "nophrase.csv: no phrase column"),
        ("plan.txt", "guitar,phrase\n", "plan.txt: a plan is a .csv or .toml file"),
        ("broken.toml", "[[shot]\nguitar = 1\n", "broken.toml: not valid TOML ("),
        ("single.toml", '[shot]\nguitar = "a"\nphrase = "b"\n', "write each shot as a [[shot]]"),
        ("table.toml", '[amp]\nname = "x"\n', "[amp] is not a shot"),
        ("list.toml", '[[shot]]\nguitar = "a"\nphrase = "b"\ntakes = [1]\n', ":1: takes must be"),
    ],
)
def test_unreadable_plans_say_what_to_do(tmp_path, name, text, message):
    from guitarlab.corpus.errors import RecorderError

    with pytest.raises(RecorderError) as caught:
        read_plan(write(tmp_path / name, text))
    assert message in str(caught.value)


# ---------------------------------------------------------------- what is done


def test_done_counts_complete_raw_takes_with_every_label_of_the_shot():
    neck, bridge = parse_plan(
        [
            (2, {"guitar": "strat", "position": "neck", "phrase": "backing", "takes": "3"}),
            (3, {"guitar": "strat", "position": "bridge", "phrase": "backing", "takes": "1"}),
        ],
        source="plan.csv",
    )
    rows = [  # take, tone, position, status, excluded
        ("t1", "raw", "neck", "", ""),  # done
        ("t1", "crunch", "neck", "", ""),  # a render of t1: not another take
        ("t2", "raw", "neck", "partial", ""),  # cut short: missing
        ("t3", "raw", "neck", "", "cough"),  # excluded in review: missing
        ("t4", "raw", "neck", "", ""),  # two inputs of one take (di and mic): one take
        ("t4", "raw", "neck", "", ""),
        ("t5", "raw", "", "", ""),  # no position: another shot
        ("t6", "raw", "bridge", "", ""),  # the bridge shot: done, and one more
        ("t7", "raw", "bridge", "", ""),
    ]
    manifest = pd.DataFrame(
        [
            {"guitar": "strat", "pickup": "", "phrase": "backing", "take": t, "tone": tone}
            | {"position": pos, "status": status, "excluded": excluded}
            for t, tone, pos, status, excluded in rows
        ]
    )
    statuses = plan_status([neck, bridge], manifest)
    assert [(s.done, s.left) for s in statuses] == [(2, 1), (1, 0)]  # bridge capped at its 1
    assert progress_text(statuses) == "3 of 4 takes recorded"
    assert status_table(statuses) == [
        "shot  guitar  position  phrase   takes  done  left  seconds  bpm",
        "   1  strat   neck      backing      3     2     1       60  120",
    ]
    assert [s.done for s in plan_status([neck], manifest.iloc[:0])] == [0]


def test_only_guitars_that_level_never_calibrated_are_warned_about(tmp_path):
    from guitarlab.recorder.calibration import record_calibration

    corpus = init_corpus(tmp_path / "corpus")
    record_calibration(
        corpus, "stratocaster", peak_dbfs=-13, rms_dbfs=-25, target_peak_dbfs=-12, gain_advice_db=1
    )
    shots = read_plan(write(tmp_path / "plan.csv", PLAN_CSV))
    (line,) = calibration_warnings(corpus, shots)
    assert line.startswith("warning: les_paul has no level calibration; run 'guitarlab level")


def test_discard_take_removes_its_rows_and_files_but_never_a_rendered_take(tmp_path):
    from guitarlab.corpus.errors import RecorderError
    from guitarlab.corpus.manifest import update_manifest

    corpus = import_raw_takes(two_raw_takes(tmp_path / "raw"), tmp_path / "corpus")
    strat, les_paul = load_manifest(corpus).to_dict("records")
    assert discard_take(corpus, strat["take"]) == [strat["path"]]
    assert list(load_manifest(corpus)["id"]) == [les_paul["id"]]
    assert not (corpus / strat["path"]).exists() and (corpus / les_paul["path"]).exists()
    render = {**les_paul, "id": les_paul["id"] + "-crunch", "tone": "crunch"}
    render |= {"source": les_paul["id"], "path": "tones/x.wav"}
    update_manifest(corpus, lambda frame: pd.concat([frame, pd.DataFrame([render])]))
    with pytest.raises(RecorderError, match="has renders; it cannot be dropped"):
        discard_take(corpus, les_paul["take"])
    assert (corpus / les_paul["path"]).exists() and len(load_manifest(corpus)) == 2


@pytest.mark.parametrize("where", ["notes.txt", "manifest.csv", "shared"])
def test_discard_take_never_deletes_a_file_that_is_not_the_takes_own(tmp_path, where):
    """A hand-edited row pointing at a file of the user's, the manifest itself or another
    take's file: refused in one line, the file and every row kept."""
    from guitarlab.corpus.errors import RecorderError
    from guitarlab.corpus.manifest import update_manifest

    corpus = import_raw_takes(two_raw_takes(tmp_path / "raw"), tmp_path / "corpus")
    strat, les_paul = load_manifest(corpus).to_dict("records")
    (corpus / "notes.txt").write_text("mine")
    target = les_paul["path"] if where == "shared" else where

    def point(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[frame["id"] == strat["id"], "path"] = target
        return frame

    update_manifest(corpus, point)
    before = (corpus / target).read_bytes()
    with pytest.raises(RecorderError, match="is not its own recording under takes/") as exc:
        discard_take(corpus, strat["take"])
    assert "\n" not in str(exc.value)
    assert (corpus / target).read_bytes() == before
    assert len(load_manifest(corpus)) == 2


# ---------------------------------------------------------------- sessions on the server


def _plan(tmp_path: Path) -> Path:
    return write(
        tmp_path / "plan.csv",
        "guitar,pickup,position,phrase,takes,seconds,bpm\n"
        "stratocaster,single_coil,neck,backing,1,0.5,120\n"
        "stratocaster,single_coil,bridge,backing,1,0.5,120\n"
        "les_paul,humbucker,neck,backing,1,0.5,120\n"
        "les_paul,humbucker,bridge,lead,1,0.5,120\n",
    )


def _guitar_file(tmp_path: Path) -> Path:
    """1 s of a steady tone (-12 dBFS peak) with 20 ms of silence first, to play into the input."""
    t = np.arange(RATE) / RATE
    tone = 0.25 * np.sin(2 * np.pi * 220.0 * t)
    tone[: int(0.02 * RATE)] = 0.0
    sf.write(tmp_path / "guitar.wav", tone.astype(np.float32), RATE, subtype="FLOAT")
    return tmp_path / "guitar.wav"


def _session(plan: Path, corpus: Path, play: Path, keys: str | None, *more: str):
    args = ["session", str(plan), "--corpus", str(corpus), *more]
    if keys is not None:
        args += ["--device", "pulse", "--count-in", "0", "--no-click", "--play", str(play)]
    result = CliRunner().invoke(cli, args, input=keys)
    assert result.exit_code == 0, result.output
    return result.output


def _files(corpus: Path) -> list[str]:
    """Everything in takes/ (sidecars and temp files included) and any reservation left."""
    names = sorted(p.name for p in (corpus / "takes").iterdir())
    return names + sorted(p.name for p in (corpus / ".reserved").glob("*"))


@pytest.mark.server
def test_a_session_stopped_after_two_shots_records_only_the_two_missing(server, tmp_path):
    corpus, plan, play = init_corpus(tmp_path / "corpus"), _plan(tmp_path), _guitar_file(tmp_path)
    out = _session(plan, corpus, play, "k k q\n")
    assert "warning: stratocaster has no level calibration" in out
    assert (
        "Shot 1/4: stratocaster, single_coil, neck, backing, take 1 of 1, 0.5 s at 120 bpm" in out
    )
    assert "kept: 1 of 4 takes" in out and "kept: 2 of 4 takes" in out
    assert "Shot 3/4: les_paul, humbucker, neck, backing" in out  # recorded, then q drops it
    assert "stopped: 2 of 4 takes recorded; run the same command again to go on" in out
    frame = load_manifest(corpus)
    assert list(frame["position"]) == ["neck", "bridge"]
    assert list(frame["take"]) == ["stratocaster-backing-t001", "stratocaster-backing-t002"]
    assert _files(corpus) == [f"stratocaster-backing-t00{n}-raw.wav" for n in (1, 2)]

    dry = _session(plan, corpus, play, None, "--dry-run")
    assert dry.splitlines()[-4:] == [
        "shot  guitar    pickup     position  phrase   takes  done  left  seconds  bpm",
        "   3  les_paul  humbucker  neck      backing      1     0     1      0.5  120",
        "   4  les_paul  humbucker  bridge    lead         1     0     1      0.5  120",
        "2 of 4 takes recorded; 2 to go, about 1 s of playing",
    ]

    again = _session(plan, corpus, play, "k\nk\n")
    assert "Shot 1/4" not in again and "Shot 2/4" not in again
    assert "Shot 3/4" in again and "Shot 4/4" in again
    assert again.splitlines()[-1] == "4 of 4 takes recorded"
    frame = load_manifest(corpus)
    assert list(zip(frame["guitar"], frame["position"], frame["phrase"], strict=True))[2:] == [
        ("les_paul", "neck", "backing"),
        ("les_paul", "bridge", "lead"),
    ]
    assert len(_files(corpus)) == 4 and set(frame["status"]) == {""}
    assert "nothing left to record" in _session(plan, corpus, play, "")


@pytest.mark.server
def test_redo_replaces_the_take_and_skip_leaves_its_shot_missing(server, tmp_path):
    corpus, play = init_corpus(tmp_path / "corpus"), _guitar_file(tmp_path)
    plan = write(
        tmp_path / "plan.csv",
        "guitar,phrase,takes,seconds\nstratocaster,riff,1,0.5\nles_paul,riff,2,0.5\n",
    )
    wrong = CliRunner().invoke(
        cli, ["session", str(plan), "--corpus", str(corpus), "--device", "nosuch"]
    )
    assert wrong.exit_code == 1 and "Shot" not in wrong.output  # one line before any take
    assert wrong.output.splitlines()[-1].startswith("Error: ") and "nosuch" in wrong.output
    out = _session(plan, corpus, play, "r\nx\nk\ns\n")
    assert "press k (keep), r (redo), s (skip the shot) or q (quit)" in out  # x: asked again
    assert out.count("Shot 1/2: stratocaster, riff, take 1 of 1") == 2
    assert "dropped takes/stratocaster-riff-t001-raw.wav" in out
    assert "skipped shot 2: 2 take(s) left" in out
    frame = load_manifest(corpus)
    assert list(frame["id"]) == ["stratocaster-riff-t001-raw"]  # the same take number again
    assert _files(corpus) == ["stratocaster-riff-t001-raw.wav"]  # the les_paul take is gone too
    row = frame.iloc[0]
    assert file_columns(corpus / row["path"])["sha256"] == row["sha256"]  # the new take's row
    assert _session(plan, corpus, play, None, "--dry-run").splitlines()[-1] == (
        "1 of 3 takes recorded; 2 to go, about 1 s of playing"
    )


@pytest.mark.server
def test_a_take_stopped_mid_way_is_kept_partial_and_stops_the_session(server, tmp_path):
    corpus = init_corpus(tmp_path / "corpus")
    shots = [Shot(line=2, labels={"guitar": "strat", "phrase": "riff"}, takes=2, seconds=10.0)]
    stop = threading.Event()
    threading.Timer(1.0, stop.set).start()
    said: list[str] = []
    report = run_session(
        corpus,
        shots,
        choose=lambda row: pytest.fail("a stopped take asks nothing"),
        say=said.append,
        device="pulse",
        count_in=0,
        click=False,
        source_audio=0.25 * np.sin(np.arange(11 * RATE) / 20).astype(np.float32),
        stop=stop,
    )
    assert report.stopped == "interrupted" and report.kept == []
    (row,) = load_manifest(corpus).to_dict("records")
    assert row["status"] == "partial" and 0 < row["frames"] < 10 * RATE
    assert any(line.startswith("stopped: the take is kept as partial") for line in said)
    assert [s.left for s in plan_status(shots, load_manifest(corpus))] == [2]  # next run: both


def test_recover_labels_a_killed_shot_take_from_its_sidecar(tmp_path):
    """A kill mid-take leaves the take and its sidecar: recover gives it the shot's labels."""
    import json

    from conftest import write_tone

    from guitarlab.recorder.recover import recover_takes
    from guitarlab.recorder.session import sidecar_path

    corpus = init_corpus(tmp_path / "corpus")
    path = write_tone(corpus / "takes" / "strat-riff-t001-raw.wav", rate=RATE)
    labels = {"id": path.stem, "take": "strat-riff-t001", "guitar": "strat", "phrase": "riff"}
    labels["extra_labels"] = {"position": "neck", "amp": "deluxe"}
    sidecar_path(path).write_text(json.dumps(labels), encoding="utf-8")
    (row,) = recover_takes(corpus).added
    assert (row["position"], row["amp"], row["status"]) == ("neck", "deluxe", "partial")
    shot = Shot(line=2, labels={"guitar": "strat", "position": "neck", "phrase": "riff"})
    assert plan_status([shot], load_manifest(corpus))[0].done == 0  # partial: still to record


@pytest.mark.server
def test_ctrl_c_mid_take_keeps_it_partial_and_the_next_run_records_it(server, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    corpus, play = init_corpus(tmp_path / "corpus"), _guitar_file(tmp_path)
    plan = write(
        tmp_path / "plan.csv", "guitar,position,phrase,takes,seconds\nstrat,neck,riff,1,20\n"
    )
    args = ["session", str(plan), "--corpus", str(corpus), "--device", "pulse", "--count-in", "0"]
    process = subprocess.Popen(
        [sys.executable, "-m", "guitarlab", *args, "--no-click", "--play", str(play)],
        env={**os.environ, **server.env},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.stderr.readline().strip() != "recording ...":
        pass
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(input="", timeout=30)
    assert process.returncode == 0, out
    assert "takes/strat-riff-t001-raw.wav (PARTIAL)" in out
    assert "stopped: the take is kept as partial (it does not count); 0 of 1 takes" in out
    (row,) = load_manifest(corpus).to_dict("records")
    assert (row["status"], row["position"]) == ("partial", "neck")
    assert 0.5 * RATE <= row["frames"] < 10 * RATE
    dry = _session(plan, corpus, play, None, "--dry-run")
    assert dry.splitlines()[-1].startswith("0 of 1 takes recorded; 1 to go")


@pytest.mark.server
def test_a_redo_with_two_inputs_replaces_both_files_of_the_take(server, tmp_path):
    corpus, play = init_corpus(tmp_path / "corpus"), _guitar_file(tmp_path)
    plan = write(
        tmp_path / "plan.csv", "guitar,position,phrase,takes,seconds\nstrat,neck,lead,2,0.5\n"
    )
    out = _session(plan, corpus, play, "r k", "--channels", "1,2", "--roles", "di,mic")
    assert "q (end of input)" in out  # the second take: the keys ran out, so it is dropped
    assert "dropped takes/strat-lead-t001-raw-di.wav" in out
    assert "dropped takes/strat-lead-t001-raw-mic.wav" in out
    assert "kept: 1 of 2 takes" in out and "dropped takes/strat-lead-t002-raw-mic.wav" in out
    frame = load_manifest(corpus)
    assert list(zip(frame["id"], frame["role"], frame["position"], strict=True)) == [
        ("strat-lead-t001-raw-di", "di", "neck"),
        ("strat-lead-t001-raw-mic", "mic", "neck"),
    ]
    assert _files(corpus) == ["strat-lead-t001-raw-di.wav", "strat-lead-t001-raw-mic.wav"]
    dry = _session(plan, corpus, play, None, "--dry-run")
    assert dry.splitlines()[-1].startswith("1 of 2 takes recorded; 1 to go")
