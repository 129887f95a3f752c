"""A manifest is checked before it is trusted, and bad audio never gets in (issue 29).

Every case goes through the real CLI and asserts the exit code, one line naming the file
or field, and that the corpus (manifest bytes, every file under takes/ and tones/) is
intact afterwards.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from conftest import write_tone
from test_battery import assert_one_line_error, run, snapshot

from guitarlab.corpus import audit
from guitarlab.corpus import manifest as mf

RATE = 44100


@pytest.fixture(scope="module")
def base_corpus(tmp_path_factory) -> Path:
    """Two guitars, one take each in raw and crunch: two files in takes/, two in tones/."""
    src = tmp_path_factory.mktemp("src")
    for gi, guitar in enumerate(("tele", "lp")):
        for ti, tone in enumerate(("raw", "crunch")):
            write_tone(
                src / f"{guitar}_backing_{tone}.wav",
                freq_hz=330.0 + 70 * gi + 11 * ti,
                seconds=0.5,
            )
    corpus = tmp_path_factory.mktemp("base") / "corpus"
    result = run("import", src, "--corpus", corpus, "--pattern", "{guitar}_{phrase}_{tone}")
    assert result.exit_code == 0, result.output
    frame = mf.load_manifest(corpus)
    assert sorted(frame["path"].str.split("/").str[0]) == ["takes", "takes", "tones", "tones"]
    return corpus


@pytest.fixture
def corpus(base_corpus: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "corpus"
    shutil.copytree(base_corpus, copy)
    return copy


def _rewrite(corpus: Path, damage: str) -> None:
    """Save the manifest the way a spreadsheet or an accident would."""
    path = corpus / "manifest.csv"
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    if damage == "semicolons":
        frame.to_csv(path, index=False, sep=";")
    elif damage == "tabs":
        frame.to_csv(path, index=False, sep="\t")
    elif damage == "renamed_heading":
        frame.rename(columns={"path": "Path"}).to_csv(path, index=False)
    elif damage == "dropped_column":
        frame.drop(columns=["path"]).to_csv(path, index=False)
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        raise AssertionError(damage)


# what the one line must say for each damage
DAMAGES = {
    "semicolons": ("semicolons", "comma-separated"),
    "tabs": ("tabs", "comma-separated"),
    "renamed_heading": ("no column 'path'", "'Path'", "rename it back"),
    "dropped_column": ("no column 'path'", "backup"),
    "empty": ("is empty", "backup"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_damaged_manifest_is_refused_and_nothing_is_touched(
    corpus: Path, tmp_path: Path, damage: str
) -> None:
    # a render no row lists, and a take no row lists: what recover --clean acts on
    write_tone(corpus / "tones" / "tele-backing-t009-fuzz.wav", seconds=0.2)
    write_tone(corpus / "takes" / "tele-backing-t009-raw.wav", seconds=0.2)
    _rewrite(corpus, damage)
    before = snapshot(corpus)
    assert len(before) == 7  # the manifest, 3 takes, 3 renders
    needles = ("manifest.csv", *DAMAGES[damage])

    check = run("manifest", "check", corpus)
    line = assert_one_line_error(check, *needles)
    assert "nothing was changed" in line
    assert "recover" not in check.output  # never steered to a command that acts on it

    for args in (("recover", "--corpus", corpus), ("recover", "--corpus", corpus, "--clean")):
        assert_one_line_error(run(*args), *needles)
        assert snapshot(corpus) == before

    synth = run(
        "synth", "--corpus", corpus, "--guitars", "les_paul", "--phrases", "lead",
        "--seconds", "0.5", "--quiet",
    )  # fmt: skip
    assert_one_line_error(synth, *needles)
    assert snapshot(corpus) == before

    write_tone(tmp_path / "new" / "new.wav", seconds=0.3, freq_hz=277.0)
    imported = run(
        "import", tmp_path / "new", "--corpus", corpus, "--guitar", "tele", "--phrase", "lead"
    )
    assert_one_line_error(imported, *needles)
    assert snapshot(corpus) == before
    assert not [p for p in corpus.rglob(".*") if p.is_file() and ".part" in p.name]


def test_a_spreadsheet_bom_and_crlf_are_fine(corpus: Path) -> None:
    path = corpus / "manifest.csv"
    text = path.read_text(encoding="utf-8").replace("\n", "\r\n")
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    result = run("manifest", "check", corpus)
    assert result.exit_code == 0, result.output


def test_recover_clean_deletes_nothing_while_a_row_has_no_usable_path(corpus: Path) -> None:
    path = corpus / "manifest.csv"
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    render = frame.index[frame["path"].str.startswith("tones/")][0]
    rid = frame.loc[render, "id"]
    frame.loc[render, "path"] = ""  # a cell cleared by hand: its render now looks unlisted
    frame.to_csv(path, index=False)
    before = snapshot(corpus)
    result = run("recover", "--corpus", corpus, "--clean")
    assert_one_line_error(result, "manifest.csv", rid, "path is empty", "nothing was removed")
    assert snapshot(corpus) == before


# ---------------------------------------------------------------- spreadsheet formulas


def test_formula_cells_are_escaped_on_write_and_read_back_identically(
    corpus: Path, tmp_path: Path
) -> None:
    values = {
        "mic": '=HYPERLINK("http://x","y")',
        "room": "+1 555",
        "desk": "@SUM(A1)",
        "cab": "-cab",
        "quote": "'already quoted",
    }
    write_tone(tmp_path / "src" / "f.wav", seconds=0.3, freq_hz=301.0)
    labels = tmp_path / "labels.csv"
    pd.DataFrame([{"file": "f.wav", **values, "offset": "-3.5"}]).to_csv(labels, index=False)
    result = run(
        "import", tmp_path / "src", "--corpus", corpus, "--guitar", "tele", "--phrase", "lead",
        "--labels", labels,
    )  # fmt: skip
    assert result.exit_code == 0, result.output

    def written() -> pd.Series:
        raw = pd.read_csv(corpus / "manifest.csv", dtype=str, keep_default_na=False)
        return raw[raw["notes"] == "imported from f.wav"].iloc[0]

    def read_back() -> pd.Series:
        frame = mf.load_manifest(corpus)
        return frame[frame["notes"] == "imported from f.wav"].iloc[0]

    raw = written()
    for column, value in values.items():
        assert raw[column] == "'" + value  # a spreadsheet shows it as text, never runs it
        assert read_back()[column] == value
    assert raw["offset"] == "-3.5" and read_back()["offset"] == "-3.5"  # numbers stay numbers
    assert float(raw["gain_db"]) < 0 and not raw["gain_db"].startswith("'")
    assert raw["path"].startswith("takes/")
    # another write (levels recomputed) keeps every cell as it was: no '' creeping in
    assert run("manifest", "check", corpus, "--fix-levels").exit_code == 0
    assert all(written()[c] == "'" + v for c, v in values.items())
    assert all(read_back()[c] == v for c, v in values.items())


# ---------------------------------------------------------------- bad audio


def _float_wav(path: Path, fill: float, *, frames: int = RATE // 2) -> Path:
    t = np.arange(frames) / RATE
    audio = 0.25 * np.sin(2 * np.pi * 220 * t)
    audio[frames // 3 :: 97] = fill
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio.astype(np.float32), RATE, subtype="FLOAT")
    return path


@pytest.mark.parametrize("fill", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_non_finite_samples_are_refused_on_import(corpus: Path, tmp_path: Path, fill) -> None:
    bad = _float_wav(tmp_path / "src" / "broken.wav", fill)
    before = snapshot(corpus)
    result = run("import", bad.parent, "--corpus", corpus, "--guitar", "tele", "--phrase", "lead")
    line = assert_one_line_error(result, "broken.wav", "NaN or infinite")
    assert "silent" not in result.output and "clipping" not in result.output
    assert "PCM" in line
    assert snapshot(corpus) == before
    assert audit.stray_files(corpus) == []


@pytest.mark.parametrize("frames", [1, 100])
def test_a_file_of_a_few_samples_is_refused_naming_the_minimum(
    corpus: Path, tmp_path: Path, frames: int
) -> None:
    path = tmp_path / "src" / "blip.wav"
    path.parent.mkdir()
    sf.write(path, np.full(frames, 0.1, dtype=np.float32), RATE, subtype="PCM_24")
    before = snapshot(corpus)
    result = run("import", path.parent, "--corpus", corpus, "--guitar", "tele", "--phrase", "lead")
    assert_one_line_error(result, "blip.wav", f"{frames} frame(s)", "at least 20 ms")
    assert snapshot(corpus) == before
    # 20 ms and more is a file like any other
    sf.write(path, np.full(int(0.02 * RATE), 0.1, dtype=np.float32), RATE, subtype="PCM_24")
    result = run("import", path.parent, "--corpus", corpus, "--guitar", "tele", "--phrase", "lead")
    assert "at least 20 ms" not in result.output


def test_dataset_build_refuses_a_corpus_file_that_holds_nan(corpus: Path, tmp_path: Path) -> None:
    """A NaN file imported before this check (its row and sha256 match) stops the build."""
    frame = mf.load_manifest(corpus)
    row = frame[frame["path"].str.startswith("takes/")].iloc[0]
    target = corpus / row["path"]
    _float_wav(target, np.nan, frames=int(row["frames"]))
    from guitarlab.corpus.audio import sha256_file

    def edit(text: pd.DataFrame) -> pd.DataFrame:
        text.loc[text["id"] == row["id"], "sha256"] = sha256_file(target)
        text.loc[text["id"] == row["id"], "subtype"] = "FLOAT"
        return text

    mf.update_manifest(corpus, edit)
    out = tmp_path / "ds"
    result = run(
        "dataset", "build", "--corpus", corpus, "--out", out, "--window", "2000",
        "--test-windows", "3",
    )  # fmt: skip
    assert_one_line_error(result, row["path"].split("/")[-1], "NaN or infinite")
    assert not out.exists() or not any(out.iterdir())
    # the take checks read it through the same reader: one line, not "silent"
    assert_one_line_error(run("check", target), target.name, "NaN or infinite")


# ---------------------------------------------------------------- hum and low notes


def _note(string: int, fret: int, *, hum: float = 0.0, mains_hz: float = 60.0) -> np.ndarray:
    """A plucked single note after 0.2 s of silence, ringing out for 3 s, as a note
    library records it (a Stratocaster: single coils, the synth's hum level ``hum``)."""
    from guitarlab.synth.phrases import Note
    from guitarlab.synth.render import render_notes

    pluck = Note(start_s=0.2, dur_s=2.8, string=string, fret=fret, velocity=1.0)
    options = {"hum": hum, "mains_hz": mains_hz}
    return render_notes("stratocaster", [pluck], seconds=3.0, options=options)


LOW_NOTES = {"E2": (0, 0), "G2": (0, 3), "A2": (1, 0)}  # 82, 98 (near 100) and 110 Hz


def test_low_notes_are_not_hum_but_steady_mains_hum_is(corpus: Path, tmp_path: Path) -> None:
    src = tmp_path / "notes"
    src.mkdir()
    for name, (string, fret) in LOW_NOTES.items():
        sf.write(src / f"strat_{name}.wav", _note(string, fret), RATE, subtype="PCM_24")
    checked = run("check", *sorted(src.glob("*.wav")))
    assert checked.exit_code == 0, checked.output
    assert checked.output.count(": ok:") == 3 and ": hum:" not in checked.output
    result = run(
        "import", src, "--corpus", corpus, "--pattern", "{guitar}_{note}", "--phrase", "note"
    )
    assert result.exit_code == 0, result.output
    rows = mf.load_manifest(corpus)
    rows = rows[rows["guitar"] == "strat"]
    assert len(rows) == 3 and (rows["checks"] == "[]").all(), rows["checks"].tolist()

    # the same G2 with the mains hum of a single coil near a screen: flagged, at 50 Hz
    hummy = tmp_path / "hummy"
    hummy.mkdir()
    for mains_hz in (50.0, 60.0):
        sf.write(
            hummy / f"g2_{mains_hz:.0f}.wav",
            _note(0, 3, hum=3.0, mains_hz=mains_hz),
            RATE,
            subtype="PCM_24",
        )
        flagged = run("check", hummy / f"g2_{mains_hz:.0f}.wav")
        lines = [line for line in flagged.output.splitlines() if ": hum:" in line]
        assert len(lines) == 1 and f"{mains_hz:.0f} Hz mains hum" in lines[0], flagged.output
    # hum under a played phrase, steady from the first sample: flagged as well
    t = np.arange(6 * RATE) / RATE
    notes = sum(_note(s, f)[: t.size // 2] for s, f in LOW_NOTES.values())
    phrase = np.concatenate([notes, notes]) + 0.01 * np.sin(2 * np.pi * 50.0 * t)
    sf.write(hummy / "phrase.wav", phrase.astype(np.float32), RATE, subtype="PCM_24")
    flagged = run("check", hummy / "phrase.wav")
    assert "50 Hz mains hum" in flagged.output, flagged.output


def test_dataset_check_names_a_file_whose_windows_hold_nan(corpus: Path, tmp_path: Path) -> None:
    """A dataset folder built before builds refused NaN files: check says so, naming it."""
    from guitarlab.datasets.folder import open_dataset
    from guitarlab.datasets.layout import audio_name

    out = tmp_path / "ds"
    built = run(
        "dataset", "build", "--corpus", corpus, "--out", out, "--window", "2000",
        "--test-windows", "3",
    )  # fmt: skip
    assert built.exit_code == 0, built.output
    assert run("dataset", "check", out).exit_code == 0
    ds = open_dataset(out)
    x, _ = ds.arrays("train")
    window = len(x) // 2
    rid = ds._all_windows().query("split == 'train'")["id"].iloc[window]
    audio = np.load(out / audio_name("train"), mmap_mode="r+")
    audio[int(x.starts[window]) + 5] = np.nan
    audio.flush()
    del audio
    checked = run("dataset", "check", out)
    line = assert_one_line_error(checked, "train", "NaN or infinite", "rebuild")
    assert str(rid) in line
