"""A battery of bad inputs and faults, tried as a new user would (issue 14).

Every case asserts the exit code, a one-line error that names the file or field (no
traceback), and that the manifest and the audio already in the corpus are intact.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from click.testing import CliRunner
from conftest import write_tone

from guitarlab.cli import cli
from guitarlab.corpus import appends, audit
from guitarlab.corpus import manifest as mf

GUITARLAB = [sys.executable, "-m", "guitarlab"]


# ---------------------------------------------------------------- helpers


def run(*args: str, env: dict | None = None):
    return CliRunner().invoke(cli, [str(a) for a in args], env=env)


def assert_one_line_error(result, *needles: str, code: int = 1) -> str:
    """Exit ``code``, no traceback, and an error line holding every needle."""
    text = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert result.exit_code == code, text
    assert not result.exception or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in text
    assert "unexpected error" not in text, text  # a bug's one line is no user-mistake message
    lines = [line for line in text.splitlines() if all(n in line for n in needles)]
    assert lines, f"no line with {needles} in:\n{text}"
    return lines[0]


def snapshot(corpus: Path) -> dict[str, str]:
    """sha256 of the manifest and of every file under takes/ and tones/."""
    files = [corpus / "manifest.csv"]
    for sub in ("takes", "tones"):
        files += sorted((corpus / sub).glob("*")) if (corpus / sub).is_dir() else []
    return {
        f.relative_to(corpus).as_posix(): hashlib.sha256(f.read_bytes()).hexdigest()
        for f in files
        if f.is_file()
    }


def strays(corpus: Path) -> list[tuple[str, str]]:
    return audit.stray_files(corpus)


@pytest.fixture(scope="module")
def base_corpus(tmp_path_factory) -> Path:
    """Two guitars x one phrase, two raw takes each, imported from 0.5 s sines."""
    src = tmp_path_factory.mktemp("src")
    for gi, guitar in enumerate(("tele", "lp")):
        for take in (1, 2):
            write_tone(
                src / f"{guitar}_backing_{take}.wav",
                freq_hz=330.0 + 70 * gi + 7 * take,
                seconds=0.5,
                subtype="PCM_16",
            )
    corpus = tmp_path_factory.mktemp("base") / "corpus"
    result = run("import", src, "--corpus", corpus, "--pattern", "{guitar}_{phrase}_{take}")
    assert result.exit_code == 0, result.output
    assert len(mf.load_manifest(corpus)) == 4
    return corpus


@pytest.fixture
def corpus(base_corpus: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "corpus"
    shutil.copytree(base_corpus, copy)
    return copy


def one_file(folder: Path, name: str, data: bytes | None = None, **tone) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if data is None:
        write_tone(path, **tone)
    else:
        path.write_bytes(data)
    return path


def import_one(corpus: Path, src: Path):
    return run("import", src, "--corpus", corpus, "--guitar", "tele", "--phrase", "lead")


# ---------------------------------------------------------------- bad audio files on import


def _truncated(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


BAD_FILES = {
    "truncated": lambda folder: _truncated(one_file(folder, "cut.wav", seconds=0.5)),
    "corrupt": lambda folder: one_file(folder, "corrupt.wav", b"RIFF\x10\x00\x00\x00WAVEjunkjunk"),
    "zero_length": lambda folder: one_file(folder, "empty.wav", b""),
    "not_audio": lambda folder: one_file(folder, "notes.wav", b"guitar notes, not audio\n" * 20),
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_import_refuses_a_bad_file_naming_it(corpus: Path, tmp_path: Path, kind: str) -> None:
    before = snapshot(corpus)
    bad = BAD_FILES[kind](tmp_path / "src")
    result = import_one(corpus, bad.parent)
    line = assert_one_line_error(result, bad.name)
    if kind == "truncated":
        assert "cut off" in line
    assert snapshot(corpus) == before
    assert strays(corpus) == []


@pytest.mark.parametrize(
    ("kind", "check"),
    [("clipped", "clipping"), ("silent", "silence"), ("float_over_full_scale", "clipping")],
)
def test_import_runs_the_take_checks_and_exits_1(
    corpus: Path, tmp_path: Path, kind: str, check: str
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    t = np.arange(22050) / 44100
    audio = {
        "clipped": np.clip(1.5 * np.sin(2 * np.pi * 230 * t), -1, 1),
        "silent": np.zeros_like(t),
        "float_over_full_scale": 1.6 * np.sin(2 * np.pi * 230 * t),
    }[kind]
    subtype = "FLOAT" if kind == "float_over_full_scale" else "PCM_24"
    sf.write(src / f"{kind}.wav", audio.astype(np.float32), 44100, subtype=subtype)
    before = snapshot(corpus)
    result = import_one(corpus, src)
    assert_one_line_error(result, f"{kind}.wav", check)
    rows = mf.load_manifest(corpus)
    added = rows[rows["notes"] == f"imported from {kind}.wav"]
    assert len(added) == 1  # kept like a recorded take, with its verdict
    assert check in added["checks"].iloc[0]
    assert all(snapshot(corpus)[k] == v for k, v in before.items() if k != "manifest.csv")
    assert audit.check_manifest(corpus) == []


@pytest.mark.parametrize(
    ("what", "tone"), [("stereo", {"channels": 2}), ("8bit", {"subtype": "PCM_U8"})]
)
def test_stereo_and_8bit_files_import_cleanly(corpus: Path, tmp_path: Path, what, tone) -> None:
    one_file(tmp_path / "src", f"{what}.wav", seconds=0.5, freq_hz=263.0, **tone)
    result = import_one(corpus, tmp_path / "src")
    assert result.exit_code == 0, result.output
    assert audit.check_manifest(corpus) == []


def test_check_flags_a_take_cut_off_after_import(corpus: Path) -> None:
    rel = mf.load_manifest(corpus)["path"].iloc[0]
    _truncated(corpus / rel)
    result = run("manifest", "check", corpus)
    assert_one_line_error(result, rel, "cut off")


# ---------------------------------------------------------------- edited manifests


def _edit_manifest(corpus: Path, edit) -> None:
    path = corpus / "manifest.csv"
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame = edit(frame)
    frame.to_csv(path, index=False)


def test_duplicated_row_makes_dataset_build_refuse(corpus: Path, tmp_path: Path) -> None:
    _edit_manifest(corpus, lambda f: pd.concat([f, f.iloc[:1]], ignore_index=True))
    rid = mf.load_manifest(corpus)["id"].iloc[0]
    result = run(
        "dataset",
        "build",
        "--corpus",
        corpus,
        "--out",
        tmp_path / "ds",
        "--window",
        "2000",
        "--test-windows",
        "3",
    )
    assert_one_line_error(result, "manifest.csv", rid, "more than one row")
    assert not (tmp_path / "ds").exists() or not any((tmp_path / "ds").iterdir())
    assert_one_line_error(run("manifest", "check", corpus), rid, "duplicate id")


def test_swapped_wav_makes_dataset_build_refuse(corpus: Path, tmp_path: Path) -> None:
    rows = mf.load_manifest(corpus)
    a, b = corpus / rows["path"].iloc[0], corpus / rows["path"].iloc[1]
    data_a, data_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(data_b)
    b.write_bytes(data_a)
    result = run(
        "dataset",
        "build",
        "--corpus",
        corpus,
        "--out",
        tmp_path / "ds",
        "--window",
        "2000",
        "--test-windows",
        "3",
    )
    assert_one_line_error(result, "sha256 differs")


def test_path_traversal_is_refused(corpus: Path, tmp_path: Path) -> None:
    def edit(frame):
        frame.loc[0, "path"] = "../../etc/passwd"
        return frame

    _edit_manifest(corpus, edit)
    rid = mf.load_manifest(corpus)["id"].iloc[0]
    assert_one_line_error(run("manifest", "check", corpus), rid, "outside the corpus")
    result = run(
        "dataset",
        "build",
        "--corpus",
        corpus,
        "--out",
        tmp_path / "ds",
        "--window",
        "2000",
        "--test-windows",
        "3",
    )
    assert_one_line_error(result, rid, "outside the corpus")


def test_a_bad_number_cell_is_named_and_never_erased(corpus: Path, tmp_path: Path) -> None:
    def edit(frame):
        frame.loc[1, "sample_rate"] = "44.1k"
        return frame

    _edit_manifest(corpus, edit)
    rid = mf.load_manifest(corpus)["id"].iloc[1]
    line = assert_one_line_error(run("manifest", "check", corpus), rid, "sample_rate", "44.1k")
    assert "is empty" not in line and "--fix-levels" not in line
    # adding a file appends its row: the cell stays as it is, and check still names it
    one_file(tmp_path / "src", "new.wav", seconds=0.5, freq_hz=263.0)
    assert import_one(corpus, tmp_path / "src").exit_code == 0
    assert "44.1k" in (corpus / "manifest.csv").read_text()
    assert_one_line_error(run("manifest", "check", corpus), rid, "sample_rate", "44.1k")
    # a rewrite would erase it: refused, naming it, nothing changed
    before = snapshot(corpus)
    assert_one_line_error(run("manifest", "compact", corpus), "sample_rate", "44.1k")
    assert snapshot(corpus) == before
    assert strays(corpus) == []


# ---------------------------------------------------------------- dataset build inputs


def test_one_class_data_is_refused(corpus: Path, tmp_path: Path) -> None:
    result = run(
        "dataset",
        "build",
        "--corpus",
        corpus,
        "--out",
        tmp_path / "ds",
        "--where",
        "guitar == 'tele'",
    )
    assert_one_line_error(result, "one value", "tele")


def test_short_files_are_refused_naming_one(corpus: Path, tmp_path: Path) -> None:
    result = run(
        "dataset", "build", "--corpus", corpus, "--out", tmp_path / "ds", "--window", "100000"
    )
    assert_one_line_error(result, ".wav", "shorter than one window")


def test_wrong_rate_is_named(corpus: Path, tmp_path: Path) -> None:
    one_file(tmp_path / "src", "odd.wav", seconds=0.5, rate=22050, freq_hz=251.0)
    assert import_one(corpus, tmp_path / "src").exit_code == 0
    result = run(
        "dataset",
        "build",
        "--corpus",
        corpus,
        "--out",
        tmp_path / "ds",
        "--window",
        "2000",
        "--test-windows",
        "3",
    )
    assert_one_line_error(result, "22050 Hz", "--resample")


# ---------------------------------------------------------------- augment and presets


def test_unknown_tone_is_named(corpus: Path) -> None:
    before = snapshot(corpus)
    assert_one_line_error(run("augment", "--corpus", corpus, "--tones", "fuzzz"), "fuzzz")
    assert snapshot(corpus) == before


def test_where_that_matches_nothing_says_so(corpus: Path) -> None:
    result = run("augment", "--corpus", corpus, "--tones", "clean", "--where", "guitar=nosuch")
    line = assert_one_line_error(result, "guitar=nosuch", "matches none")
    assert "already" not in line


@pytest.mark.parametrize(
    ("step", "field"),
    [
        ({"plugin": "LowpassFilter", "cutoff_frequency_hz": -500}, "cutoff_frequency_hz"),
        ({"plugin": "Gain", "gain_db": 1e9}, "gain_db"),
    ],
)
def test_out_of_range_preset_values_are_refused(corpus: Path, step: dict, field: str) -> None:
    (corpus / "presets" / "bad.json").write_text(
        json.dumps({"name": "bad", "chain": [step]}), encoding="utf-8"
    )
    before = snapshot(corpus)
    result = run("augment", "--corpus", corpus, "--tones", "bad")
    assert_one_line_error(result, "bad.json", field, "out of range")
    assert snapshot(corpus) == before
    assert strays(corpus) == []


def test_a_render_mostly_at_full_scale_is_refused() -> None:
    import pedalboard

    from guitarlab.augment.render import render
    from guitarlab.corpus.errors import AugmentError

    x = (0.5 * np.sin(np.arange(4000) / 5)).astype(np.float32)
    with pytest.raises(AugmentError, match="full scale"):
        render(x, 44100, pedalboard.Pedalboard([pedalboard.Gain(gain_db=40)]))


def test_one_broken_preset_file_blocks_nothing_else(corpus: Path) -> None:
    (corpus / "presets" / "oops.json").write_text("{", encoding="utf-8")
    listed = run("presets", "list", "--corpus", corpus)
    assert listed.exit_code == 0 and "BROKEN" in listed.output and "crunch" in listed.output
    assert_one_line_error(run("augment", "--corpus", corpus, "--tones", "oops"), "oops.json")
    result = run("augment", "--corpus", corpus, "--tones", "clean", "--where", "guitar=tele")
    assert result.exit_code == 0, result.output
    assert audit.check_manifest(corpus) == []


# ---------------------------------------------------------------- leftovers and file modes


def test_check_lists_leftovers_and_recover_clean_removes_them(corpus: Path) -> None:
    (corpus / "takes" / ".tele-backing-t009-raw.999999-abc123.part.wav").write_bytes(b"x")
    write_tone(corpus / "tones" / "tele-backing-t001-fuzz.wav", seconds=0.2)
    shutil.copy(
        corpus / mf.load_manifest(corpus)["path"].iloc[0],
        corpus / "takes" / "tele-backing-t042-raw.wav",
    )
    result = run("manifest", "check", corpus)
    assert result.exit_code == 1
    for name in (".part.wav", "tele-backing-t001-fuzz.wav", "tele-backing-t042-raw.wav"):
        assert name in result.output
    cleaned = run("recover", "--corpus", corpus, "--clean")
    assert cleaned.exit_code == 0, cleaned.output
    assert "recovered takes/tele-backing-t042-raw.wav" in cleaned.output
    assert not list((corpus / "takes").glob(".*.part.wav"))
    assert not (corpus / "tones" / "tele-backing-t001-fuzz.wav").exists()
    assert run("manifest", "check", corpus).exit_code == 0


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640)])
def test_files_get_the_mode_of_the_umask(tmp_path: Path, umask: int, mode: int) -> None:
    old = os.umask(umask)
    try:
        corpus = tmp_path / "c"
        result = run(
            "synth", "--corpus", corpus, "--guitars", "telecaster", "--phrases", "backing",
            "--seconds", "0.5",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        render = run("augment", "--corpus", corpus, "--tones", "clean")
        assert render.exit_code == 0, render.output
    finally:
        os.umask(old)
    files = [corpus / "manifest.csv", *corpus.glob("takes/*.wav"), *corpus.glob("tones/*")]
    assert len(files) >= 4
    assert {oct(f.stat().st_mode & 0o777) for f in files} == {oct(mode)}


# ---------------------------------------------------------------- the manifest lock


def test_a_held_lock_is_reported_in_one_line(corpus: Path, tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from filelock import FileLock; "
            "l = FileLock(sys.argv[1]); l.acquire(); print('held', flush=True); time.sleep(60)",
            str(corpus / "manifest.csv.lock"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        one_file(tmp_path / "src", "new.wav", seconds=0.5, freq_hz=263.0)
        before = snapshot(corpus)
        result = CliRunner().invoke(
            cli,
            ["import", str(tmp_path / "src"), "--corpus", str(corpus), "--guitar", "a",
             "--phrase", "lead"],
            env={mf.LOCK_TIMEOUT_ENV: "1.5"},
        )  # fmt: skip
        line = assert_one_line_error(result, "manifest.csv.lock", "another guitarlab process")
        assert "do not delete" in line
        assert "waiting for the manifest lock" in result.output
        assert snapshot(corpus) == before
        assert strays(corpus) == []
    finally:
        holder.kill()
        holder.wait()


# ---------------------------------------------------------------- read-only and full disks


@contextmanager
def small_tmpfs(tmp_path: Path, size: str):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    point = tmp_path / "mnt"
    point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)])
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)])


def _fill(folder: Path, leave_bytes: int) -> None:
    free = shutil.disk_usage(folder).free
    with open(folder / "filler", "wb") as handle:
        handle.write(b"\0" * max(free - leave_bytes, 0))


def test_read_only_corpus(corpus: Path, tmp_path: Path) -> None:
    with small_tmpfs(tmp_path, "8m") as point:
        target = point / "corpus"
        shutil.copytree(corpus, target)
        before = snapshot(target)
        subprocess.run(["mount", "-o", "remount,ro", str(point)], check=True)
        one_file(tmp_path / "src", "new.wav", seconds=0.5, freq_hz=263.0)
        result = import_one(target, tmp_path / "src")
        assert_one_line_error(result, str(target), "read-only")
        synth = run("synth", "--corpus", target, "--guitars", "telecaster", "--seconds", "0.5")
        assert_one_line_error(synth, str(target))
        assert snapshot(target) == before


@pytest.mark.parametrize("command", ["synth", "augment", "import"])
def test_a_full_disk_gives_one_line_and_no_orphan(corpus: Path, tmp_path: Path, command) -> None:
    with small_tmpfs(tmp_path, "4m") as point:
        target = point / "corpus"
        shutil.copytree(corpus, target)
        before = snapshot(target)
        _fill(point, 60_000)  # room for a manifest rewrite, not for a 1 s take
        if command == "synth":  # a process of its own: what it reserved goes when it exits
            done = subprocess.run(
                [*GUITARLAB, "synth", "--corpus", str(target), "--guitars", "telecaster",
                 "--seconds", "2", "--quiet"],
                capture_output=True, text=True,
            )  # fmt: skip
            assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
            assert "space left on device" in done.stderr.strip().splitlines()[-1]
            assert snapshot(target) == before
            assert not list((target / ".reserved").glob("*"))
            assert audit.check_manifest(target) == []
            return
        elif command == "augment":
            write_tone(tmp_path / "long" / "long.wav", seconds=2.0, freq_hz=247.0)
            (point / "filler").unlink()
            assert import_one(target, tmp_path / "long").exit_code == 0
            before = snapshot(target)
            _fill(point, 60_000)
            result = run("augment", "--corpus", target, "--tones", "clean,crunch")
        else:
            write_tone(tmp_path / "long" / "long.wav", seconds=2.0, freq_hz=247.0)
            result = import_one(target, tmp_path / "long")
        assert_one_line_error(result, "space left on device")
        assert snapshot(target) == before
        assert strays(target) == []


# ---------------------------------------------------------------- devices and models


def test_no_audio_device_is_one_line(corpus: Path) -> None:
    before = snapshot(corpus)
    result = run(
        "record", "--corpus", corpus, "--guitar", "tele", "--phrase", "lead", "--seconds", "1",
        "--device", "no-such-interface",
    )  # fmt: skip
    assert result.exit_code == 1
    assert_one_line_error(result, "Error:")
    assert snapshot(corpus) == before
    assert not list((corpus / ".reserved").glob("*")) if (corpus / ".reserved").exists() else True


def test_record_exits_1_when_a_take_fails_its_checks(corpus: Path, monkeypatch) -> None:
    from guitarlab.corpus.checks import Finding, findings_to_json
    from guitarlab.recorder import session

    def fake_take(*args, rows_out=None, **kwargs):
        finding = Finding("clipping", "error", "12 sample(s) at full scale", value=12.0)
        row = {
            "id": "tele-lead-t001-raw", "path": "takes/tele-lead-t001-raw.wav", "frames": 44100,
            "sample_rate": 44100, "status": "", "peak_dbfs": 0.0, "rms_dbfs": -12.0,
            "gain_db": 0.0, "dropouts": "0", "stalls": "0", "dropout_detail": "[]",
            "checks": findings_to_json([finding]),
        }  # fmt: skip
        if rows_out is not None:  # every input's row, as record_take fills it
            rows_out.append(row)
        return row

    monkeypatch.setattr(session, "record_take", fake_take)
    result = run(
        "record", "--corpus", corpus, "--guitar", "tele", "--phrase", "lead", "--seconds", "1"
    )
    assert_one_line_error(result, "tele-lead-t001-raw", "clipping")


def test_missing_model_is_one_line_before_tensorflow(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    wav = write_tone(tmp_path / "x.wav", seconds=0.3)
    assert_one_line_error(run("predict", run_dir, wav), "no run.json")
    (run_dir / "run.json").write_text("{}")
    assert_one_line_error(run("evaluate", run_dir), "model.keras", "missing")


def test_predict_rejects_a_text_file_before_tensorflow(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "run.json").write_text("{}")
    with zipfile.ZipFile(run_dir / "model.keras", "w") as archive:  # intact, junk inside
        archive.writestr("config.json", "not a model")
    text = tmp_path / "notes.wav"
    text.write_text("not audio\n")
    probe = (
        "import sys\nfrom guitarlab.cli import cli\ntry:\n    cli(sys.argv[1:])\n"
        "except SystemExit as exc:\n"
        "    print('tf loaded' if 'tensorflow' in sys.modules else 'no tf', file=sys.stderr)\n"
        "    sys.exit(exc.code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, "predict", str(run_dir), str(text)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert "notes.wav: not readable audio" in done.stderr and "Traceback" not in done.stderr
    assert done.stderr.strip().endswith("no tf")


# ---------------------------------------------------------------- the write protocol


def test_a_failed_manifest_save_leaves_no_file_under_its_name(corpus: Path, monkeypatch) -> None:
    from guitarlab.corpus.errors import ManifestError

    before = snapshot(corpus)

    def broken(path, frame):
        raise ManifestError(f"{path}: cannot save the manifest (no space left on device)")

    def half_then_full(fd, data):  # the append path: half the bytes land, then ENOSPC
        os.write(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(mf, "_write_atomic", broken)
    monkeypatch.setattr(appends, "_write_all", half_then_full)
    row = {"id": "x-backing-t001-raw", "path": "takes/x-backing-t001-raw.wav", "guitar": "x",
           "phrase": "backing", "tone": "raw", "take": "x-backing-t001"}  # fmt: skip
    with pytest.raises(ManifestError, match="(?i)no space"):
        mf.commit_audio(corpus, row, np.zeros(1000, np.float32) + 0.1, 44100)
    assert snapshot(corpus) == before  # the half-written lines were cut back off
    assert strays(corpus) == []


def test_reservations_give_two_writers_two_take_numbers(corpus: Path) -> None:
    def choose(frame):
        number = mf.next_take_number(frame, "tele", "lead")
        take = mf.take_key("tele", "lead", number)
        return [{"id": f"{take}-raw", "take": take, "path": f"takes/{take}-raw.wav"}]

    first = mf.reserve_rows(corpus, choose)
    second = mf.reserve_rows(corpus, choose)
    assert first.ids != second.ids
    assert [r["id"] for r in mf.reservations(corpus)] == first.ids + second.ids
    first.release()
    second.release()
    assert mf.reservations(corpus) == []


def _concurrently(commands: list[list[str]]) -> list[subprocess.CompletedProcess]:
    procs = [
        subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for c in commands
    ]
    out = []
    for proc, command in zip(procs, commands, strict=True):
        stdout, stderr = proc.communicate(timeout=600)
        out.append(subprocess.CompletedProcess(command, proc.returncode, stdout, stderr))
    return out


def _assert_clean_outcome(corpus: Path, done: list[subprocess.CompletedProcess]) -> None:
    for result in done:
        assert "Traceback" not in result.stderr, result.stderr
        if result.returncode != 0:  # a clear refusal, one line
            assert result.stderr.strip().splitlines()[-1].startswith("Error:"), result.stderr
    assert audit.check_manifest(corpus) == []


def test_four_concurrent_synths_get_distinct_takes(tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    done = _concurrently(
        [
            [
                *GUITARLAB,
                "synth",
                "--corpus",
                str(corpus),
                "--guitars",
                "telecaster",
                "--phrases",
                "backing",
                "--seed",
                str(seed),
                "--seconds",
                "2",
            ]
            for seed in range(4)
        ]  # fmt: skip
    )
    _assert_clean_outcome(corpus, done)
    rows = mf.load_manifest(corpus)
    assert sum(r.returncode == 0 for r in done) == len(rows) == 4
    assert rows["take"].nunique() == 4


def test_four_concurrent_imports_get_distinct_takes(tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    mf.init_corpus(corpus)
    commands = []
    for n in range(4):
        write_tone(tmp_path / f"src{n}" / "take.wav", seconds=0.5, freq_hz=331.0 + 13 * n)
        commands.append(
            [*GUITARLAB, "import", str(tmp_path / f"src{n}"), "--corpus", str(corpus),
             "--guitar", "telecaster", "--phrase", "backing"]
        )  # fmt: skip
    done = _concurrently(commands)
    _assert_clean_outcome(corpus, done)
    rows = mf.load_manifest(corpus)
    assert all(r.returncode == 0 for r in done)
    assert len(rows) == 4 and rows["take"].nunique() == 4


def test_four_concurrent_augments_add_each_render_once(corpus: Path) -> None:
    done = _concurrently(
        [
            [*GUITARLAB, "augment", "--corpus", str(corpus), "--tones", tones]
            for tones in ("clean,crunch", "crunch,clean", "clean", "crunch")
        ]  # fmt: skip
    )
    _assert_clean_outcome(corpus, done)
    rows = mf.load_manifest(corpus)
    assert sorted(rows["tone"].value_counts().to_dict().items()) == [
        ("clean", 4), ("crunch", 4), ("raw", 4)
    ]  # fmt: skip
    assert strays(corpus) == []


def test_a_stray_libsndfile_error_is_one_line(monkeypatch, corpus: Path, tmp_path: Path) -> None:
    from guitarlab.corpus import intake

    def failing(*args, **kwargs):
        raise sf.LibsndfileError(2, "System error.")

    monkeypatch.setattr(intake, "import_folder", failing)
    write_tone(tmp_path / "src" / "x.wav", seconds=0.5, freq_hz=263.0)
    assert_one_line_error(import_one(corpus, tmp_path / "src"), "System error", "disk full")
