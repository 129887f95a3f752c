"""``guitarlab labels`` and ``import --annotations``: Audacity, JAMS and IDMT XML in and out."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import post_corpus, write_tone

from guitarlab.cli import cli
from guitarlab.corpus.annotations import read_audacity, read_idmt_xml
from guitarlab.corpus.edits import read_history
from guitarlab.corpus.errors import ManifestError
from guitarlab.corpus.segments import load_segments, segments_of

STRAT = "stratocaster-riff-t001"
TRACK = (
    "0.500000\t1.250000\tpalm mute\n"
    "1.250000\t3.000000\tbend\n"
    "2.000000\t2.123457\tvibrato\n"
    "3.100000\t3.900000\tpalm mute\n"
)


def run(*args: str, ok: bool = True):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert (result.exit_code == 0) is ok, result.output
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return post_corpus(tmp_path / "corpus", phrases=("riff",), tones=("raw", "crunch"), seconds=4.0)


def test_audacity_track_round_trips_byte_for_byte(corpus: Path, tmp_path: Path) -> None:
    track = tmp_path / "riff.txt"
    track.write_text(TRACK, encoding="utf-8")
    out = run(
        "labels", "import", track, "--corpus", corpus, "--take", STRAT, "--column", "technique"
    )
    assert "4 segments (technique) onto take stratocaster-riff-t001" in out.output
    run(
        "labels",
        "export",
        "--corpus",
        corpus,
        "--take",
        STRAT,
        "--column",
        "technique",
        "--out",
        tmp_path / "back.txt",
    )
    assert (tmp_path / "back.txt").read_bytes() == TRACK.encode("utf-8")

    again = run(
        "labels", "import", track, "--corpus", corpus, "--take", STRAT, "--column", "technique"
    )
    assert "replaced 4 earlier segment(s)" in again.output
    frame = load_segments(corpus)
    assert len(frame) == 4 and set(frame["origin"]) == {"audacity:riff.txt"}
    assert [e["action"] for e in read_history(corpus)] == ["add_segments", "add_segments"]
    listed = run("labels", "list", "--corpus", corpus, "--take", STRAT).output
    assert "palm mute" in listed and "4 segment(s) on 1 take(s)" in listed


def test_audacity_reader_skips_spectral_lines_and_point_labels() -> None:
    text = "0.5\t1.0\tbend\n\\\t100.000000\t2000.000000\n2.000000\t2.000000\tclick\n3 4\tslide\n"
    found = read_audacity(text, column="technique", name="t.txt")
    assert found.segments == [
        {"start_s": 0.5, "end_s": 1.0, "technique": "bend"},
        {"start_s": 3.0, "end_s": 4.0, "technique": "slide"},
    ]
    assert found.skipped == {"point label": 1}
    with pytest.raises(ManifestError, match=r"^t\.txt:2: not an Audacity label line"):
        read_audacity("0.5\t1.0\tbend\nhello world\n", column="technique", name="t.txt")


def guitarset_jams(path: Path) -> Path:
    """A GuitarSet-style JAMS file: one note_midi per string (data_source 0 = low E) + more."""
    jams = pytest.importorskip("jams")
    jam = jams.JAMS()
    jam.file_metadata.duration = 4.0
    notes = {0: [(0.5, 0.5, 43.1)], 2: [(1.0, 0.75, 52.9)], 5: [(2.0, 1.0, 69.0)]}
    for source in range(6):
        ann = jams.Annotation(namespace="note_midi", time=0, duration=4.0)
        ann.annotation_metadata.data_source = str(source)
        for time, duration, value in notes.get(source, []):
            ann.append(time=time, duration=duration, value=value, confidence=None)
        jam.annotations.append(ann)
    contour = jams.Annotation(namespace="pitch_contour", time=0, duration=4.0)
    contour.append(time=0.5, duration=0.0, value={"index": 0, "frequency": 98.0, "voiced": True})
    jam.annotations.append(contour)
    for chord in ("G:maj", "G:7"):
        ann = jams.Annotation(namespace="chord", time=0, duration=4.0)
        ann.append(time=0.0, duration=4.0, value=chord, confidence=None)
        jam.annotations.append(ann)
    path.write_text(jam.dumps(), encoding="utf-8")
    return path


def test_guitarset_jams_imports_pitches_strings_and_frets(corpus: Path, tmp_path: Path) -> None:
    path = guitarset_jams(tmp_path / "00_BN1-129-Eb_solo.jams")
    out = run("labels", "import", path, "--corpus", corpus, "--take", STRAT).output
    assert "pitch_contour annotation: 1" in out
    notes = segments_of(load_segments(corpus), STRAT)
    notes = notes[notes["pitch"] != ""]
    assert notes["start_s"].tolist() == [0.5, 1.0, 2.0]
    assert notes["end_s"].tolist() == [1.0, 1.75, 3.0]
    assert notes["pitch"].tolist() == ["43", "53", "69"]
    # data_source 0 is the low E (the manifest's 6), 5 the high e (1); frets in standard tuning
    assert notes["string"].tolist() == ["6", "4", "1"]
    assert notes["fret"].tolist() == ["3", "3", "5"]
    chords = segments_of(load_segments(corpus), STRAT)
    assert set(chords["chord"]) == {"G:maj", ""} and set(chords["chord_2"]) == {"G:7", ""}
    assert set(chords["origin"]) == {"jams:00_BN1-129-Eb_solo.jams"}


IDMT_EVENT = (
    "<event><pitch>{p}</pitch><onsetSec>{on}</onsetSec><offsetSec>{off}</offsetSec>"
    "<fretNumber>{fret}</fretNumber><stringNumber>{s}</stringNumber>"
    "<excitationStyle>{ex}</excitationStyle><expressionStyle>{expr}</expressionStyle>"
    "<loudness>NaN</loudness></event>"
)


def idmt_xml(events: list[tuple]) -> str:
    body = "".join(
        IDMT_EVENT.format(p=p, on=on, off=off, fret=f, s=s, ex=ex, expr=expr)
        for p, on, off, f, s, ex, expr in events
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<instrumentRecording><globalParameter>'
        "<audioFileName>x.wav</audioFileName></globalParameter>"
        f"<transcription>{body}</transcription></instrumentRecording>\n"
    )


def test_idmt_folder_imports_with_onsets_pitches_strings_and_frets(tmp_path: Path) -> None:
    data = tmp_path / "IDMT-SMT-GUITAR_V2" / "dataset2"
    write_tone(data / "audio" / "LP_Lick1_FN.wav", seconds=1.5)
    write_tone(data / "audio" / "AR_Lick2_MU.wav", seconds=1.5, freq_hz=330.0)
    # IDMT's string 1 is the low E: pitch 50 on its string 1 is fret 10, our string 6
    (data / "annotation").mkdir()
    (data / "annotation" / "LP_Lick1_FN.xml").write_text(
        idmt_xml([(50, 0.2, 0.5, 10, 1, "FS", "NO"), (64, 0.6, 0.9, 0, 6, "FS", "VI")])
    )
    (data / "annotation" / "AR_Lick2_MU.xml").write_text(
        idmt_xml([(57, 0.1, 1.2, 2, 4, "MU", "NO")])
    )
    corpus = tmp_path / "idmt"
    args = ["import", data / "audio", "--corpus", corpus, "--pattern", "{guitar}_{phrase}_{style}"]
    out = run(*args, "--take", "file", "--annotations", data / "annotation").output
    assert "LP_Lick1_FN.xml: added 2 segments" in out and "AR_Lick2_MU.xml: added 1 segments" in out
    frame = load_segments(corpus)
    lp = frame[frame["origin"] == "idmt:LP_Lick1_FN.xml"]
    assert lp["take"].str.startswith("lp-lick1").all()
    assert lp["start_s"].tolist() == [0.2, 0.6] and lp["end_s"].tolist() == [0.5, 0.9]
    assert lp["pitch"].tolist() == ["50", "64"]
    assert lp["string"].tolist() == ["6", "1"]
    assert lp["fret"].tolist() == ["10", "0"]
    assert lp["excitation"].tolist() == ["FS", "FS"] and lp["expression"].tolist() == ["NO", "VI"]
    assert "loudness" not in frame
    ar = frame[frame["origin"] == "idmt:AR_Lick2_MU.xml"]
    assert ar[["pitch", "string", "fret", "excitation"]].values.tolist() == [
        ["57", "3", "2", "MU"]
    ]  # G string

    # importing again adds no audio and no second copy of the segments
    again = run(*args, "--take", "file", "--annotations", data / "annotation").output
    assert "added 0 file(s), 2 already present" in again
    assert len(load_segments(corpus)) == 3


def test_idmt_event_past_the_file_is_one_error_line_and_the_audio_stays(tmp_path: Path) -> None:
    write_tone(tmp_path / "audio" / "LP_Lick1_FN.wav", seconds=1.0)
    (tmp_path / "annotation").mkdir()
    (tmp_path / "annotation" / "LP_Lick1_FN.xml").write_text(
        idmt_xml([(50, 0.2, 5.0, 10, 1, "PK", "NO")])
    )
    corpus = tmp_path / "c"
    result = run(
        "import",
        tmp_path / "audio",
        "--corpus",
        corpus,
        "--pattern",
        "{guitar}_{phrase}_{style}",
        "--annotations",
        tmp_path / "annotation",
        ok=False,
    )
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "LP_Lick1_FN.xml" in lines[0] and "ends after take" in lines[0]
    assert "added 1 file(s)" in result.output
    assert load_segments(corpus).empty


def test_idmt_reader_numbers_strings_from_the_high_e() -> None:
    found = read_idmt_xml(idmt_xml([(40, 0, 1, 0, 1, "PK", "NO"), (64, 1, 2, 0, 6, "PK", "NO")]))
    assert [s["string"] for s in found.segments] == [6, 1]
    with pytest.raises(ManifestError, match="not readable XML"):
        read_idmt_xml("<instrumentRecording><event>", name="x.xml")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--take", STRAT], "needs --column"),
        (
            ["--take", "nope-t009", "--column", "technique"],
            "take 'nope-t009' is not in the manifest",
        ),
        (["--take", STRAT, "--column", "Technique"], "is not a lower-case slug"),
    ],
)
def test_import_mistakes_are_one_line(corpus: Path, tmp_path: Path, args, message) -> None:
    track = tmp_path / "riff.txt"
    track.write_text(TRACK, encoding="utf-8")
    result = run("labels", "import", track, "--corpus", corpus, *args, ok=False)
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not (corpus / "segments.csv").exists()


def test_span_past_the_take_and_bad_lines_are_one_line(corpus: Path, tmp_path: Path) -> None:
    track = tmp_path / "late.txt"
    track.write_text("1.000000\t9.500000\tsolo\n", encoding="utf-8")
    result = run(
        "labels",
        "import",
        track,
        "--corpus",
        corpus,
        "--take",
        STRAT,
        "--column",
        "phrase",
        ok=False,
    )
    assert "ends after take stratocaster-riff-t001 (4.000 s)" in result.output
    track.write_text("1.0\t2.0\tsolo\n1.0 two solo\n", encoding="utf-8")
    result = run(
        "labels",
        "import",
        track,
        "--corpus",
        corpus,
        "--take",
        STRAT,
        "--column",
        "phrase",
        ok=False,
    )
    assert "late.txt:2: not an Audacity label line" in result.output
    (tmp_path / "x.csv").write_text("a")
    result = run(
        "labels", "import", tmp_path / "x.csv", "--corpus", corpus, "--take", STRAT, ok=False
    )
    assert "unknown annotation format '.csv'" in result.output
    result = run(
        "labels",
        "export",
        "--corpus",
        corpus,
        "--take",
        STRAT,
        "--column",
        "phrase",
        "--out",
        tmp_path / "o.txt",
        ok=False,
    )
    assert "has no segments labelling 'phrase'" in result.output
