"""augment/renders.py and the CLI: rendering a corpus, idempotent, resumable, traceable."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import import_raw_takes, two_raw_takes

from guitarlab.augment import renders as augment_renders
from guitarlab.augment.presets import chain_from_preset, load_presets, preset_hash
from guitarlab.augment.render import render
from guitarlab.augment.renders import plan_jobs, render_corpus, rendered_preset
from guitarlab.cli import cli
from guitarlab.corpus.audio import read_audio
from guitarlab.corpus.audit import check_manifest
from guitarlab.corpus.errors import AugmentError
from guitarlab.corpus.levels import apply_gain_db
from guitarlab.corpus.manifest import load_manifest, manifest_path, update_manifest

CORE = ["clean", "crunch", "distorted"]


@pytest.fixture
def raw_folder(tmp_path: Path) -> Path:
    return two_raw_takes(tmp_path / "raw-wavs")


make_corpus = import_raw_takes


@pytest.fixture
def corpus(raw_folder: Path, tmp_path: Path) -> Path:
    return make_corpus(raw_folder, tmp_path / "corpus")


def rendered(root: Path) -> dict[str, dict]:
    frame = load_manifest(root)
    return {row["id"]: row.to_dict() for _, row in frame[frame["tone"] != "raw"].iterrows()}


def test_renders_every_raw_take_through_every_tone_with_traceable_rows(corpus: Path) -> None:
    added = render_corpus(corpus, tones=CORE, progress=False)
    rows = rendered(corpus)
    assert sorted(added) == sorted(rows)
    assert sorted(rows) == sorted(
        f"{guitar}-lead-t001-{tone}" for guitar in ("stratocaster", "les_paul") for tone in CORE
    )
    raw = load_manifest(corpus).set_index("id")
    presets = load_presets()
    for rid, row in rows.items():
        source = raw.loc[row["source"]]
        assert source["tone"] == "raw" and row["take"] == source["take"]
        assert (row["guitar"], row["phrase"]) == (source["guitar"], source["phrase"])
        assert row["preset_hash"] == preset_hash(presets[row["tone"]])
        assert row["path"] == f"tones/{rid}.wav" and row["subtype"] == "PCM_24"
        assert (row["frames"], row["channels"]) == (source["frames"], source["channels"])
        assert row["device"] == "pedalboard" and row["recorded_at"]
        assert row["peak_dbfs"] <= 0.0 and row["variant"] == ""
        assert (corpus / "tones" / f"{rid}.preset.json").exists()
    assert check_manifest(corpus) == []


def test_takes_drive_the_tones_at_the_matched_level_unless_told_not_to(
    raw_folder: Path, tmp_path: Path
) -> None:
    matched = make_corpus(raw_folder, tmp_path / "matched")
    as_recorded = make_corpus(raw_folder, tmp_path / "as_recorded")
    render_corpus(matched, tones=["clean"], progress=False)
    render_corpus(as_recorded, tones=["clean"], match_levels=False, progress=False)
    raw = load_manifest(matched).set_index("id")
    for rid, row in rendered(matched).items():
        assert float(row["input_gain_db"]) == pytest.approx(raw.loc[row["source"], "gain_db"])
        assert "input trimmed" in row["notes"]
        plain = rendered(as_recorded)[rid]
        assert float(plain["input_gain_db"]) == 0.0
        # clean's light compressor (2:1) passes at least half of the trim to the output
        trim_db, change_db = raw.loc[row["source"], "gain_db"], row["rms_dbfs"] - plain["rms_dbfs"]
        assert abs(trim_db) > 1.0 and np.sign(change_db) == np.sign(trim_db)
        assert 0.4 * abs(trim_db) < abs(change_db) <= abs(trim_db) + 0.5


def test_second_run_does_nothing(corpus: Path) -> None:
    render_corpus(corpus, tones=CORE, progress=False)
    before = manifest_path(corpus).read_bytes()
    assert render_corpus(corpus, tones=CORE, workers=2, progress=False) == []
    assert manifest_path(corpus).read_bytes() == before


def test_renders_are_bit_identical_across_runs_and_thread_counts(
    raw_folder: Path, tmp_path: Path
) -> None:
    one = make_corpus(raw_folder, tmp_path / "one")
    two = make_corpus(raw_folder, tmp_path / "two")
    render_corpus(one, tones=CORE, workers=1, progress=False)
    render_corpus(two, tones=CORE, workers=2, progress=False)
    assert {k: r["sha256"] for k, r in rendered(one).items()} == {
        k: r["sha256"] for k, r in rendered(two).items()
    }


def test_resume_after_a_kill_finishes_only_the_rest(
    corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = augment_renders.render_one
    calls = []

    def killed_on_third(root, job, chains):
        calls.append(job.id)
        if len(calls) == 3:
            # what a kill leaves behind: a temp file of the file being written
            (root / "tones" / f".{job.id}.abc123.part.wav").write_bytes(b"RIFF half")
            raise KeyboardInterrupt
        return real(root, job, chains)

    monkeypatch.setattr(augment_renders, "render_one", killed_on_third)
    with pytest.raises(KeyboardInterrupt):
        render_corpus(corpus, tones=CORE, workers=1, progress=False)
    first = rendered(corpus)
    killed = calls[2]
    assert set(calls[:2]) <= set(first) <= set(calls) - {killed}  # finished files were kept
    assert not (corpus / "tones" / f"{killed}.wav").exists()
    monkeypatch.setattr(augment_renders, "render_one", real)

    rest = render_corpus(corpus, tones=CORE, progress=False)
    assert killed in rest and len(rest) == 6 - len(first) and not set(rest) & set(first)
    assert len(rendered(corpus)) == 6
    assert not list((corpus / "tones").glob(".*.part*"))
    assert check_manifest(corpus) == []


def test_files_a_killed_run_wrote_but_never_listed_are_adopted_not_rendered_again(
    corpus: Path,
) -> None:
    render_corpus(corpus, tones=["clean", "crunch"], progress=False)
    before = rendered(corpus)
    mtimes = {rid: (corpus / row["path"]).stat().st_mtime_ns for rid, row in before.items()}
    update_manifest(corpus, lambda frame: frame[frame["tone"] == "raw"])  # rows lost, files kept
    stale = corpus / "tones" / "stratocaster-lead-t001-crunch.preset.json"
    record = json.loads(stale.read_text())
    stale.write_text(json.dumps({**record, "preset_hash": "0" * 12}))  # as if killed mid-way

    again = render_corpus(corpus, tones=["clean", "crunch"], progress=False)
    assert sorted(again) == sorted(before)
    after = rendered(corpus)
    for rid, row in after.items():
        assert row["sha256"] == before[rid]["sha256"]
        was_adopted = (corpus / row["path"]).stat().st_mtime_ns == mtimes[rid]
        assert was_adopted == (rid != "stratocaster-lead-t001-crunch")
    assert check_manifest(corpus) == []


def test_an_edited_preset_renders_again_under_a_new_id(corpus: Path) -> None:
    render_corpus(corpus, tones=["crunch"], progress=False)
    old = rendered(corpus)
    edited = {k: v for k, v in load_presets()["crunch"].items() if not k.startswith("_")}
    edited["chain"][2]["drive_db"] = 20
    (corpus / "presets" / "crunch.json").write_text(json.dumps(edited), encoding="utf-8")
    added = render_corpus(corpus, tones=["crunch"], progress=False)
    new_hash = preset_hash(load_presets(corpus)["crunch"])
    assert sorted(added) == sorted(f"{rid}-{new_hash[:6]}" for rid in old)
    rows = rendered(corpus)
    assert all(rows[rid]["sha256"] == old[rid]["sha256"] for rid in old)  # not overwritten
    assert {rows[rid]["preset_hash"] for rid in added} == {new_hash}
    assert render_corpus(corpus, tones=["crunch"], progress=False) == []


def test_where_selects_raw_takes(corpus: Path) -> None:
    added = render_corpus(corpus, tones=["clean"], where=["guitar=les_paul"], progress=False)
    assert added == ["les_paul-lead-t001-clean"]
    added = render_corpus(corpus, tones=["clean"], where="guitar != 'les_paul'", progress=False)
    assert added == ["stratocaster-lead-t001-clean"]


def test_where_errors_are_one_line(corpus: Path) -> None:
    manifest, clean = load_manifest(corpus), load_presets()["clean"]
    with pytest.raises(AugmentError, match="no column 'colour'; columns: id, path, guitar"):
        plan_jobs(manifest, [clean], where=["colour=red"])
    with pytest.raises(AugmentError, match="'guitar ==' is not a valid query"):
        plan_jobs(manifest, [clean], where="guitar ==")


def test_random_variants_are_recorded_and_render_again_exactly(corpus: Path) -> None:
    added = render_corpus(
        corpus,
        tones=["crunch"],
        where="guitar == 'stratocaster'",
        randomize=2,
        seed=5,
        progress=False,
    )
    take = "stratocaster-lead-t001"
    assert sorted(added) == [f"{take}-crunch", f"{take}-crunch-r01", f"{take}-crunch-r02"]
    rows = rendered(corpus)
    assert rows[f"{take}-crunch-r01"]["variant"] == "r01"
    assert rows[f"{take}-crunch-r01"]["tone"] == "crunch"
    assert len({r["preset_hash"] for r in rows.values()}) == 3
    assert len({r["sha256"] for r in rows.values()}) == 3
    # the sidecar holds the drawn preset: rendering it again gives the file's samples
    drawn = rendered_preset(corpus, f"{take}-crunch-r02")
    assert drawn["variant"] == "r02" and drawn["seed"] == 5
    assert preset_hash(drawn) == rows[f"{take}-crunch-r02"]["preset_hash"]
    source, rate = read_audio(corpus / "takes" / f"{take}-raw.wav")
    trim_db = float(rows[f"{take}-crunch-r02"]["input_gain_db"])  # the take's level match
    assert trim_db == pytest.approx(
        float(load_manifest(corpus).set_index("id").loc[f"{take}-raw", "gain_db"])
    )
    again = render(apply_gain_db(source, trim_db), rate, chain_from_preset(drawn))
    stored, _ = read_audio(corpus / "tones" / f"{take}-crunch-r02.wav")
    assert np.max(np.abs(again - stored)) <= 2.0**-23
    assert (
        render_corpus(
            corpus,
            tones=["crunch"],
            where="guitar == 'stratocaster'",
            randomize=2,
            seed=5,
            progress=False,
        )
        == []
    )


def test_a_broken_preset_stops_before_rendering_anything(corpus: Path) -> None:
    (corpus / "presets" / "fuzzy.json").write_text(
        json.dumps({"name": "fuzzy", "chain": [{"plugin": "Fuzzz"}]}), encoding="utf-8"
    )
    with pytest.raises(AugmentError, match="unknown plugin 'Fuzzz' in preset fuzzy"):
        render_corpus(corpus, tones=["clean", "fuzzy"], progress=False)
    assert rendered(corpus) == {}


def test_cli_presets_list_show_and_augment(corpus: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(cli, ["presets", "list", "--corpus", str(corpus)])
    assert listed.exit_code == 0, listed.output
    names = [line.split()[0] for line in listed.output.splitlines()]
    assert {"clean", "crunch", "distorted", "crunch_delay", "ambient_reverb"} <= set(names)

    shown = runner.invoke(cli, ["presets", "show", "crunch"])
    assert shown.exit_code == 0
    body = shown.stdout if hasattr(shown, "stdout") else shown.output
    assert json.loads(body[body.index("{") :])["name"] == "crunch"

    unknown = runner.invoke(cli, ["presets", "show", "fuzz"])
    assert unknown.exit_code == 1 and "unknown preset 'fuzz'; known: " in unknown.output

    args = ["augment", "--corpus", str(corpus), "--tones", "clean,crunch", "--quiet"]
    first = runner.invoke(cli, args + ["--where", "guitar=les_paul", "--workers", "2"])
    assert first.exit_code == 0, first.output
    assert "rendered 2 file(s)" in first.output
    again = runner.invoke(cli, args + ["--where", "guitar=les_paul"])
    assert again.exit_code == 0 and "nothing to render" in again.output

    bad = runner.invoke(cli, ["augment", "--corpus", str(corpus), "--tones", "fuzz"])
    assert bad.exit_code == 1 and "Error: unknown preset 'fuzz'" in bad.output
