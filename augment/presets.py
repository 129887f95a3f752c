"""Tone presets as data: JSON files that name a chain of pedalboard plugins.

A preset is a small, readable JSON file::

    {"name": "crunch",
     "description": "moderate drive through a 4x12 cabinet",
     "chain": [{"plugin": "Gain", "gain_db": 6},
               {"plugin": "Distortion", "drive_db": 14},
               {"plugin": "Convolution", "impulse_response_filename": "builtin:cab_4x12.wav"}],
     "ranges": {"1.drive_db": [10, 18]}}

Parameter names are pedalboard's own (``drive_db``, ``cutoff_frequency_hz``). The
built-in presets live in ``augment/presets/``; ``CORPUS/presets/*.json`` add to them or
override them by name. An impulse response is ``builtin:NAME.wav`` (shipped in
``augment/ir/``), a path relative to the preset file's folder, or an absolute path.
``{"plugin": "VST3", "path": "...", "parameters": {...}}`` (or ``"AudioUnit"`` on macOS)
loads an external plugin with ``pedalboard.load_plugin``.

``ranges`` documents how far random augmentation (``draw_variant``) may move each
parameter: ``"STEP.PARAMETER": [low, high]`` with STEP the 0-based index in ``chain``.

One module because it is one data format: schema, one-line validation errors, variants,
hashing and chain building.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import re
import sys
import zlib
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

import numpy as np
import pedalboard

from guitarlab.corpus.errors import AugmentError

BUILTIN_PRESETS_DIR = Path(__file__).resolve().parent / "presets"
BUILTIN_IR_DIR = Path(__file__).resolve().parent / "ir"
BUILTIN_PREFIX = "builtin:"
IR_PARAMETER = "impulse_response_filename"
EXTERNAL_PLUGINS = ("VST3", "AudioUnit")
CORE_TONES = ("clean", "crunch", "distorted")
HASH_LENGTH = 12
PRESET_KEYS = ("name", "description", "chain", "ranges", "variant", "variant_of", "seed")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_]*$")
# Not effects one puts in a preset: containers, bases and wrappers.
_NOT_EFFECTS = {
    "Chain",
    "Mix",
    "Pedalboard",
    "Plugin",
    "PluginContainer",
    "ExternalPlugin",
    "VST3Plugin",
    "AudioUnitPlugin",
    "IIRFilter",
}


@dataclass(frozen=True)
class ImpulseResponse:
    """An impulse response as read from its file: float32 ``(channels, frames)`` at ``sample_rate``."""

    samples: np.ndarray
    sample_rate: int

    @property
    def peak_frame(self) -> int:
        """Index of the loudest sample: the IR's bulk delay (its direct sound)."""
        return int(np.argmax(np.max(np.abs(self.samples), axis=0)))


class ToneChain(pedalboard.Pedalboard):
    """A ``pedalboard.Pedalboard`` that also keeps the impulse responses of its cabinet steps.

    ``irs`` maps the index of every fully wet Convolution step to its IR. ``render``
    runs those steps as FFT convolutions (several times faster than the plugin's, the
    same output within float rounding) and removes each IR's bulk delay, so the render
    stays time-aligned with its source. Called directly, the chain works like any
    Pedalboard, delay included. Plugins' reported latency is compensated by pedalboard.
    """

    irs: dict[int, ImpulseResponse]

    @property
    def delay_s(self) -> float:
        """The bulk delay in seconds that ``render`` removes (0.0 without cabinet IRs)."""
        return float(
            sum(ir.peak_frame / ir.sample_rate for ir in getattr(self, "irs", {}).values())
        )


@lru_cache(maxsize=1)
def _plugin_classes() -> dict[str, type]:
    return {
        name: cls
        for name in dir(pedalboard)
        if not name.startswith("_")
        and name not in _NOT_EFFECTS
        and isinstance(cls := getattr(pedalboard, name), type)
        and issubclass(cls, pedalboard.Plugin)
    }


def known_plugins() -> list[str]:
    """Plugin names a preset step may use: pedalboard's effects plus VST3/AudioUnit."""
    return sorted(_plugin_classes()) + list(EXTERNAL_PLUGINS)


@cache
def plugin_parameters(plugin: str) -> tuple[str, ...]:
    """The constructor parameters of a built-in pedalboard plugin, in order.

    Examples
    --------
    >>> plugin_parameters("Distortion")
    ('drive_db',)
    """
    doc = _plugin_classes()[plugin].__init__.__doc__ or ""
    signature = doc.strip().splitlines()[0]
    names = re.findall(r"[,(]\s*(\w+)\s*:", signature)
    return tuple(n for n in names if n != "self")


# ---------------------------------------------------------------- loading


def _where(preset: dict) -> str:
    source = preset.get("_file")
    return f"preset {preset.get('name', '?')}" + (f" (file {source})" if source else "")


def load_preset_file(path: str | os.PathLike) -> dict:
    """Read one preset file and check its shape (not yet its plugins; see ``chain_from_preset``).

    The returned dict carries ``_file`` and ``_dir`` (where relative IR paths start);
    keys starting with ``_`` are never hashed.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise AugmentError(
            f"{path}: not valid JSON (line {exc.lineno} column {exc.colno}: {exc.msg}); fix the preset file"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AugmentError(f"{path}: cannot read preset ({exc}); check the file") from None
    if not isinstance(data, dict):
        raise AugmentError(f"{path}: a preset is a JSON object with 'name' and 'chain'")
    data.setdefault("name", path.stem)
    if data["name"] != path.stem:
        raise AugmentError(
            f"{path}: preset name {data['name']!r} differs from the file name; name the file {data['name']}.json or change 'name'"
        )
    preset = {**data, "_file": str(path), "_dir": str(path.parent)}
    check_preset(preset)
    return preset


def check_preset(preset: dict) -> None:
    """Raise ``AugmentError`` (one line) when a preset's structure is wrong."""
    where = _where(preset)
    name = preset.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name) or name == "raw":
        raise AugmentError(
            f"{where}: name {name!r} must be a lower-case slug such as 'crunch' or 'my_fuzz' (not 'raw')"
        )
    unknown = [k for k in preset if not k.startswith("_") and k not in PRESET_KEYS]
    if unknown:
        raise AugmentError(
            f"{where}: unknown key {unknown[0]!r}; a preset has {', '.join(PRESET_KEYS)}"
        )
    chain = preset.get("chain")
    if not isinstance(chain, list) or not chain:
        raise AugmentError(f"{where}: 'chain' must be a non-empty list of plugin steps")
    for index, step in enumerate(chain):
        if not isinstance(step, dict) or not isinstance(step.get("plugin"), str):
            raise AugmentError(
                f'{where}: step {index} must be an object with a \'plugin\' name, e.g. {{"plugin": "Gain", "gain_db": 6}}'
            )
    ranges = preset.get("ranges", {})
    if not isinstance(ranges, dict):
        raise AugmentError(f"{where}: 'ranges' must map 'STEP.PARAMETER' to [low, high]")
    for key, bounds in ranges.items():
        _range_target(preset, key, bounds)


def _range_target(preset: dict, key: str, bounds: object) -> tuple[int, str]:
    where = _where(preset)
    match = re.match(r"^(\d+)\.(\w+)$", str(key))
    if not match or int(match.group(1)) >= len(preset["chain"]):
        raise AugmentError(
            f"{where}: range key {key!r} must be 'STEP.PARAMETER' with STEP below {len(preset['chain'])}, e.g. '1.drive_db'"
        )
    ok = (
        isinstance(bounds, list)
        and len(bounds) == 2
        and all(_is_number(b) for b in bounds)
        and bounds[0] <= bounds[1]
    )
    if not ok:
        raise AugmentError(f"{where}: range {key!r} must be [low, high] numbers, got {bounds!r}")
    return int(match.group(1)), match.group(2)


def _preset_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def load_presets(
    corpus: str | os.PathLike | None = None, *, broken: list[tuple[Path, str]] | None = None
) -> dict[str, dict]:
    """Every preset by name: the built-ins, then ``CORPUS/presets/*.json`` over them.

    A corpus preset file that cannot be read does not block the others: it is left out
    and ``(path, reason)`` goes to ``broken`` (or one warning line to stderr).
    """
    from guitarlab.corpus.manifest import PRESETS_DIR

    presets: dict[str, dict] = {}
    for path in _preset_files(BUILTIN_PRESETS_DIR):
        preset = load_preset_file(path)
        presets[preset["name"]] = preset
    for path in _preset_files(Path(corpus) / PRESETS_DIR) if corpus else []:
        try:
            preset = load_preset_file(path)
        except AugmentError as exc:
            if broken is None:
                print(f"warning: preset {path.stem} left out: {exc}", file=sys.stderr)
            else:
                broken.append((path, str(exc)))
            presets.pop(path.stem, None)  # never fall back silently to a built-in of that name
            continue
        presets[preset["name"]] = preset
    return dict(sorted(presets.items()))


def get_presets(names: list[str] | str, corpus: str | os.PathLike | None = None) -> list[dict]:
    """The presets named (a list or ``"clean,crunch"``), in order; unknown names are an error."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    if not names:
        raise AugmentError("no tones given; name presets such as clean,crunch,distorted")
    broken: list[tuple[Path, str]] = []
    presets = load_presets(corpus, broken=broken)
    reasons = {path.stem: reason for path, reason in broken}
    for name in names:
        if name in reasons:
            raise AugmentError(reasons[name])
        if name not in presets:
            raise AugmentError(f"unknown preset {name!r}; known: {', '.join(presets)}")
    return [presets[name] for name in dict.fromkeys(names)]


# ---------------------------------------------------------------- hashing


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _canonical(value: object) -> object:
    """Numbers as floats (6 and 6.0 hash alike), dict keys sorted by json.dumps."""
    if _is_number(value):
        return float(value)
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items() if not str(k).startswith("_")}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


def canonical_json(preset: dict) -> str:
    """The preset as canonical JSON (sorted keys, no whitespace, ``_`` keys dropped)."""
    return json.dumps(_canonical(preset), sort_keys=True, separators=(",", ":"))


def preset_hash(preset: dict) -> str:
    """A short hash of what shapes the sound: the chain's parameters and its IR files' bytes.

    The name, description and ranges are left out: renaming a preset or widening its
    ranges does not change a render.
    """
    digest = hashlib.sha256(canonical_json({"chain": preset["chain"]}).encode())
    for step in preset["chain"]:
        if step.get("plugin") == "Convolution" and IR_PARAMETER in step:
            digest.update(ir_path(preset, step[IR_PARAMETER]).read_bytes())
    return digest.hexdigest()[:HASH_LENGTH]


# ---------------------------------------------------------------- building chains


def ir_path(preset: dict, value: object) -> Path:
    """Where an impulse response named in ``preset`` lives; a missing file is an error."""
    if not isinstance(value, str) or not value:
        raise AugmentError(
            f"{_where(preset)}: {IR_PARAMETER} must be a file name such as 'builtin:cab_4x12.wav'"
        )
    if value.startswith(BUILTIN_PREFIX):
        path = BUILTIN_IR_DIR / value[len(BUILTIN_PREFIX) :]
    else:
        path = Path(value).expanduser()
        if not path.is_absolute():
            path = Path(preset.get("_dir", ".")) / path
    if not path.is_file():
        shipped = ", ".join(BUILTIN_PREFIX + p.name for p in sorted(BUILTIN_IR_DIR.glob("*.wav")))
        raise AugmentError(
            f"{_where(preset)}: impulse response {value!r} not found ({path}); put the WAV beside the preset or use {shipped}"
        )
    return path


def _load_ir(preset: dict, value: object) -> ImpulseResponse:
    import soundfile as sf

    path = ir_path(preset, value)
    try:
        ir, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AugmentError(
            f"{_where(preset)}: impulse response {path} is not readable audio ({exc})"
        ) from None
    if ir.shape[0] == 0 or not np.all(np.isfinite(ir)) or not np.any(ir):
        raise AugmentError(f"{_where(preset)}: impulse response {path} is empty or silent")
    return ImpulseResponse(np.ascontiguousarray(ir.T), int(rate))


# What each native plugin accepts (pedalboard/JUCE take any float and render garbage,
# or NaN, outside these): by parameter name, with per-plugin exceptions. Inclusive.
PARAMETER_RANGES: dict[str, tuple[float, float]] = {
    "cutoff_frequency_hz": (1.0, 48000.0),
    "centre_frequency_hz": (1.0, 48000.0),
    "cutoff_hz": (1.0, 48000.0),
    "gain_db": (-96.0, 48.0),
    "drive_db": (0.0, 60.0),
    "threshold_db": (-100.0, 0.0),
    "ceiling_db": (-100.0, 0.0),
    "ratio": (1.0, 100.0),
    "attack_ms": (0.0, 5000.0),
    "release_ms": (0.0, 10000.0),
    "lookahead_ms": (0.0, 100.0),
    "q": (0.01, 100.0),
    "mix": (0.0, 1.0),
    "depth": (0.0, 1.0),
    "feedback": (0.0, 0.99),
    "rate_hz": (0.0, 99.0),
    "centre_delay_ms": (0.0, 100.0),
    "delay_seconds": (0.0, 30.0),
    "room_size": (0.0, 1.0),
    "damping": (0.0, 1.0),
    "wet_level": (0.0, 1.0),
    "dry_level": (0.0, 1.0),
    "width": (0.0, 1.0),
    "freeze_mode": (0.0, 1.0),
    "resonance": (0.0, 1.0),
    "drive": (1.0, 100.0),
    "bit_depth": (1.0, 32.0),
    "semitones": (-72.0, 72.0),
    "target_sample_rate": (100.0, 384000.0),
    "vbr_quality": (0.0, 10.0),
}
PLUGIN_RANGES: dict[tuple[str, str], tuple[float, float]] = {
    ("Phaser", "feedback"): (-0.99, 0.99),
    ("Chorus", "feedback"): (-0.99, 0.99),
    ("Clipping", "threshold_db"): (-100.0, 24.0),
}


def parameter_range(plugin: str, name: str) -> tuple[float, float] | None:
    """The inclusive range a native plugin's parameter must lie in, or None (unchecked)."""
    return PLUGIN_RANGES.get((plugin, name), PARAMETER_RANGES.get(name))


def _step_error(preset: dict, index: int, plugin: str, message: str) -> AugmentError:
    return AugmentError(f"{_where(preset)}, step {index} {plugin}: {message}")


def _build_step(
    preset: dict, index: int, step: dict
) -> tuple[pedalboard.Plugin, ImpulseResponse | None]:
    """One plugin, and its IR when it is a fully wet Convolution (which ``render`` runs itself)."""
    plugin = step["plugin"]
    params = {k: v for k, v in step.items() if k != "plugin" and not k.startswith("_")}
    if plugin in EXTERNAL_PLUGINS:
        return _build_external(preset, index, plugin, params), None
    classes = _plugin_classes()
    if plugin not in classes:
        raise AugmentError(
            f"unknown plugin {plugin!r} in {_where(preset)}; known: {', '.join(known_plugins())}"
        )
    allowed = [
        p for p in plugin_parameters(plugin) if not (plugin == "Convolution" and p == "sample_rate")
    ]
    for name, value in params.items():
        if name not in allowed:
            raise _step_error(
                preset,
                index,
                plugin,
                f"unknown parameter {name!r}; {plugin} takes {', '.join(allowed) or 'no parameters'}",
            )
        if name == IR_PARAMETER:
            continue
        if not _is_number(value) or not math.isfinite(value):
            raise _step_error(preset, index, plugin, f"{name} must be a number, got {value!r}")
        bounds = parameter_range(plugin, name)
        if bounds and not bounds[0] <= float(value) <= bounds[1]:
            raise _step_error(
                preset,
                index,
                plugin,
                f"{name} {value!r} is out of range; use {bounds[0]:g}..{bounds[1]:g}",
            )
    cabinet = None
    if plugin == "Convolution":
        if IR_PARAMETER not in params:
            raise _step_error(
                preset, index, plugin, f"needs {IR_PARAMETER}, e.g. 'builtin:cab_4x12.wav'"
            )
        ir = _load_ir(preset, params[IR_PARAMETER])
        params = {**params, IR_PARAMETER: ir.samples, "sample_rate": float(ir.sample_rate)}
        if float(params.get("mix", 1.0)) >= 1.0:
            cabinet = ir
    try:
        return classes[plugin](**params), cabinet
    except (TypeError, ValueError, RuntimeError) as exc:
        raise _step_error(preset, index, plugin, _first_line(exc)) from None


def _build_external(preset: dict, index: int, plugin: str, params: dict) -> pedalboard.Plugin:
    path = params.get("path")
    if not isinstance(path, str) or not path:
        raise _step_error(preset, index, plugin, "needs 'path' to the plugin file")
    unknown = [k for k in params if k not in ("path", "parameters", "plugin_name")]
    if unknown:
        raise _step_error(
            preset, index, plugin, f"unknown key {unknown[0]!r}; use path, parameters, plugin_name"
        )
    full = Path(path).expanduser()
    if not full.is_absolute():
        full = Path(preset.get("_dir", ".")) / full
    if not full.exists():
        raise _step_error(
            preset, index, plugin, f"plugin file {full} not found; install it or fix 'path'"
        )
    values = params.get("parameters", {})
    if not isinstance(values, dict):
        raise _step_error(preset, index, plugin, "'parameters' must map names to values")
    try:
        return pedalboard.load_plugin(
            str(full), parameter_values=values, plugin_name=params.get("plugin_name")
        )
    except (ImportError, ValueError, RuntimeError, TypeError, AttributeError) as exc:
        raise _step_error(
            preset, index, plugin, f"cannot load {full}: {_first_line(exc)}"
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def chain_from_preset(preset: dict) -> ToneChain:
    """Build the preset's plugin chain; every mistake in it is a one-line ``AugmentError``.

    Plugins are not picklable or thread-safe, so build one chain per thread.

    Examples
    --------
    >>> board = chain_from_preset({"name": "boost", "chain": [{"plugin": "Gain", "gain_db": 6}]})
    >>> len(board), board.delay_s
    (1, 0.0)
    """
    check_preset(preset)
    plugins, irs = [], {}
    for index, step in enumerate(preset["chain"]):
        plugin, ir = _build_step(preset, index, step)
        plugins.append(plugin)
        if ir is not None:
            irs[index] = ir
    chain = ToneChain(plugins)
    chain.irs = irs
    return chain


# ---------------------------------------------------------------- random variants


def variant_name(number: int) -> str:
    """``r01``, ``r02``, ...: the id suffix and ``variant`` column of a random variant."""
    return f"r{int(number):02d}"


def draw_variant(preset: dict, number: int, *, seed: int = 0) -> dict:
    """Variant ``number`` (1-based) of ``preset`` with parameters drawn from its ``ranges``.

    The draw depends only on (seed, preset name, number), so asking again gives the same
    variant. The result is a complete preset (no ranges) that renders on its own; its
    ``chain`` records the drawn values.
    """
    ranges = preset.get("ranges") or {}
    if not ranges:
        raise AugmentError(
            f'{_where(preset)}: has no \'ranges\' to draw from; add e.g. "ranges": {{"1.drive_db": [10, 20]}}'
        )
    entropy = [int(seed) & 0xFFFFFFFF, zlib.crc32(preset["name"].encode()), int(number)]
    rng = np.random.default_rng(np.random.SeedSequence(entropy))
    drawn = {k: v for k, v in copy.deepcopy(preset).items() if k != "ranges"}
    for key in sorted(ranges):
        index, name = _range_target(preset, key, ranges[key])
        low, high = ranges[key]
        drawn["chain"][index][name] = round(float(rng.uniform(low, high)), 3)
    drawn.update(variant=variant_name(number), variant_of=preset["name"], seed=int(seed))
    return drawn
