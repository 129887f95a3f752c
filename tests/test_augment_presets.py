"""augment/presets.py: presets as data, their hashes, variants, and one-line errors."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from guitarlab.augment import make_cab_ir
from guitarlab.augment.presets import (
    BUILTIN_IR_DIR,
    ToneChain,
    chain_from_preset,
    draw_variant,
    get_presets,
    known_plugins,
    load_preset_file,
    load_presets,
    preset_hash,
)
from guitarlab.corpus.errors import AugmentError

BUILTINS = load_presets()


def write_preset(folder: Path, preset: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{preset['name']}.json"
    path.write_text(json.dumps(preset), encoding="utf-8")
    return path


def public(preset: dict) -> dict:
    return {k: v for k, v in copy.deepcopy(preset).items() if not k.startswith("_")}


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_every_builtin_builds_and_its_hash_is_stable(name: str) -> None:
    preset = BUILTINS[name]
    chain = chain_from_preset(preset)
    assert isinstance(chain, ToneChain) and len(chain) == len(preset["chain"])
    assert preset_hash(preset) == preset_hash(load_presets()[name])
    assert len(preset_hash(preset)) == 12
    assert preset.get("description")
    for key, (low, high) in preset.get("ranges", {}).items():
        step, parameter = key.split(".")
        assert low <= preset["chain"][int(step)][parameter] <= high, key


def test_hashes_differ_between_builtins() -> None:
    hashes = [preset_hash(p) for p in BUILTINS.values()]
    assert len(set(hashes)) == len(hashes)


def test_hash_changes_with_every_parameter_but_not_with_the_description() -> None:
    preset = BUILTINS["crunch"]
    original = preset_hash(preset)
    for index, step in enumerate(preset["chain"]):
        for name, value in step.items():
            if isinstance(value, (int, float)):
                changed = copy.deepcopy(preset)
                changed["chain"][index][name] = value + 0.5
                assert preset_hash(changed) != original, (index, name)
    renamed = {**copy.deepcopy(preset), "description": "another story"}
    assert preset_hash(renamed) == original
    as_floats = copy.deepcopy(preset)
    as_floats["chain"][0]["gain_db"] = float(preset["chain"][0]["gain_db"])
    assert preset_hash(as_floats) == original  # 6 and 6.0 are the same setting


def test_hash_changes_with_the_ir_files_bytes(tmp_path: Path) -> None:
    folder = tmp_path / "presets"
    folder.mkdir()
    shutil.copy(BUILTIN_IR_DIR / "cab_4x12.wav", folder / "my_cab.wav")
    preset = public(BUILTINS["crunch"])
    preset["name"] = "my_crunch"
    preset["chain"][6]["impulse_response_filename"] = "my_cab.wav"
    path = write_preset(folder, preset)
    before = preset_hash(load_preset_file(path))
    assert before == preset_hash(load_preset_file(path))
    ir, rate = sf.read(folder / "my_cab.wav", dtype="float32")
    sf.write(folder / "my_cab.wav", ir * np.float32(0.5), rate, subtype="FLOAT")
    assert preset_hash(load_preset_file(path)) != before


def test_the_shipped_ir_is_what_the_script_generates(tmp_path: Path) -> None:
    written = make_cab_ir.write_cab_ir(tmp_path)
    assert written.read_bytes() == (BUILTIN_IR_DIR / "cab_4x12.wav").read_bytes()
    ir = make_cab_ir.cab_impulse_response()
    assert int(np.argmax(np.abs(ir))) == ir.size // 2
    assert float(np.sum(ir.astype(np.float64) ** 2)) == pytest.approx(1.0, rel=1e-5)


def test_corpus_presets_override_and_add(tmp_path: Path) -> None:
    folder = tmp_path / "corpus" / "presets"
    louder = public(BUILTINS["clean"])
    louder["chain"][0]["gain_db"] = 3
    write_preset(folder, louder)
    write_preset(folder, {"name": "boost", "chain": [{"plugin": "Gain", "gain_db": 6}]})
    presets = load_presets(tmp_path / "corpus")
    assert {"boost", "crunch"} <= set(presets)
    assert presets["clean"]["chain"][0]["gain_db"] == 3
    assert preset_hash(presets["clean"]) != preset_hash(BUILTINS["clean"])
    assert [p["name"] for p in get_presets("boost,crunch", tmp_path / "corpus")] == [
        "boost",
        "crunch",
    ]


def test_unknown_preset_names_the_known_ones() -> None:
    with pytest.raises(AugmentError, match=r"unknown preset 'fuzz'; known: .*clean, .*crunch"):
        get_presets(["clean", "fuzz"])


@pytest.mark.parametrize(
    "step, message",
    [
        (
            {"plugin": "Fuzzz"},
            r"unknown plugin 'Fuzzz' in preset bad \(file .*bad.json\); known: .*Distortion",
        ),
        (
            {"plugin": "Distortion", "drive": 10},
            r"step 0 Distortion: unknown parameter 'drive'; Distortion takes drive_db",
        ),
        ({"plugin": "Distortion", "drive_db": "loud"}, r"drive_db must be a number, got 'loud'"),
        (
            {"plugin": "Convolution", "impulse_response_filename": "nowhere.wav"},
            r"impulse response 'nowhere.wav' not found .*builtin:cab_4x12.wav",
        ),
        ({"plugin": "Convolution"}, r"needs impulse_response_filename"),
        ({"plugin": "VST3", "path": "missing/Amp.vst3"}, r"plugin file .*Amp.vst3 not found"),
        ({"plugin": "Chorus", "mix": 5.0}, r"step 0 Chorus: "),
    ],
)
def test_a_bad_step_is_a_one_line_error(tmp_path: Path, step: dict, message: str) -> None:
    path = write_preset(tmp_path, {"name": "bad", "chain": [step]})
    preset = load_preset_file(path)
    with pytest.raises(AugmentError, match=message) as info:
        chain_from_preset(preset)
    assert "\n" not in str(info.value)


def test_a_plugin_that_cannot_load_is_a_one_line_error(tmp_path: Path) -> None:
    fake = tmp_path / "Broken.vst3"
    fake.write_bytes(b"not a plugin")
    path = write_preset(
        tmp_path, {"name": "ext", "chain": [{"plugin": "VST3", "path": "Broken.vst3"}]}
    )
    with pytest.raises(AugmentError, match=r"step 0 VST3: cannot load .*Broken.vst3") as info:
        chain_from_preset(load_preset_file(path))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"name": "bad", "chain": [', r"bad.json: not valid JSON \(line 1"),
        ('["Gain"]', r"a preset is a JSON object"),
        ('{"name": "bad", "chain": []}', r"'chain' must be a non-empty list"),
        (
            '{"name": "other", "chain": [{"plugin": "Gain"}]}',
            r"name 'other' differs from the file name",
        ),
        ('{"name": "bad", "chain": [{"plugin": "Gain"}], "colour": 1}', r"unknown key 'colour'"),
        (
            '{"name": "bad", "chain": [{"plugin": "Gain"}], "ranges": {"3.gain_db": [0, 1]}}',
            r"range key '3.gain_db'",
        ),
        (
            '{"name": "bad", "chain": [{"plugin": "Gain"}], "ranges": {"0.gain_db": [2, 1]}}',
            r"must be \[low, high\]",
        ),
    ],
)
def test_a_bad_preset_file_is_a_one_line_error(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "bad.json").write_text(text, encoding="utf-8")
    with pytest.raises(AugmentError, match=message) as info:
        load_preset_file(tmp_path / "bad.json")
    assert "\n" not in str(info.value)


def test_a_broken_corpus_preset_is_left_out_and_named_when_asked_for(tmp_path: Path) -> None:
    (tmp_path / "presets").mkdir()
    (tmp_path / "presets" / "oops.json").write_text("{", encoding="utf-8")
    broken: list = []
    presets = load_presets(tmp_path, broken=broken)
    assert "crunch" in presets and "oops" not in presets
    assert "oops.json: not valid JSON" in broken[0][1]
    with pytest.raises(AugmentError, match=r"oops.json: not valid JSON"):
        get_presets(["oops"], tmp_path)


def test_user_ir_relative_to_the_preset_folder(tmp_path: Path) -> None:
    folder = tmp_path / "presets"
    folder.mkdir()
    ir = np.zeros(64, np.float32)
    ir[0], ir[5] = 1.0, 0.4
    sf.write(folder / "combo_1x12.wav", ir, 48000, subtype="FLOAT")
    path = write_preset(
        folder,
        {
            "name": "combo",
            "chain": [{"plugin": "Convolution", "impulse_response_filename": "combo_1x12.wav"}],
        },
    )
    chain = chain_from_preset(load_preset_file(path))
    assert chain.delay_s == 0.0


def test_variants_are_seeded_in_range_and_complete() -> None:
    crunch = BUILTINS["crunch"]
    first = draw_variant(crunch, 1, seed=7)
    assert first == draw_variant(crunch, 1, seed=7)
    assert first["chain"] != draw_variant(crunch, 2, seed=7)["chain"]
    assert first["chain"] != draw_variant(crunch, 1, seed=8)["chain"]
    assert first["variant"] == "r01" and first["variant_of"] == "crunch" and "ranges" not in first
    for key, (low, high) in crunch["ranges"].items():
        step, parameter = key.split(".")
        assert low <= first["chain"][int(step)][parameter] <= high
    assert preset_hash(first) != preset_hash(crunch)
    chain_from_preset(first)


def test_a_preset_without_ranges_cannot_be_randomized() -> None:
    with pytest.raises(AugmentError, match="has no 'ranges'"):
        draw_variant({"name": "boost", "chain": [{"plugin": "Gain", "gain_db": 1}]}, 1)


def test_known_plugins_are_pedalboards_effects_plus_external() -> None:
    names = known_plugins()
    assert {"Distortion", "Convolution", "Reverb", "VST3", "AudioUnit"} <= set(names)
    assert "Pedalboard" not in names and "Plugin" not in names
