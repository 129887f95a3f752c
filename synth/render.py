"""A synthetic electric guitar: single-coil and humbucker takes with no hardware.

The demo, the tests and the benchmarks need takes on machines without a sound card.
This module plays the post's phrases (``backing``, ``lead``) on a modelled guitar:

1. a score from (phrase, take, seed), shared by every guitar (``phrases``);
2. plucked strings by modal synthesis, each partial weighted by the pluck position,
   the pick, the pickup's place along the string and its aperture (``guitar``);
3. mains hum induced in single coils (humbuckers cancel it);
4. the pickup's electrical resonance with the pots, tone knob and cable;
5. the audio interface: preamp gain, noise floor, soft then hard clipping, 24 bits.

So a Stratocaster take is brighter, hums and is quieter than a Les Paul take of the same
performance, for the reasons real ones are, and no more than that.

Examples
--------
>>> audio = render_take("stratocaster", "lead", take=1, seconds=2.0, sample_rate=22050)
>>> audio.dtype, audio.shape
(dtype('float32'), (44100,))

Strings, hum, pickup circuit and interface share one module because they are one signal
chain sharing its options table; the corpus writers are in ``guitarlab.synth.takes``.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np

from guitarlab.corpus.defaults import BPM, MAX_TAKE_SECONDS, SYNTH_RATE
from guitarlab.corpus.errors import RecorderError
from guitarlab.synth import guitar as sg
from guitarlab.synth.guitar import GUITARS
from guitarlab.synth.phrases import PHRASES, Note, make_score

__all__ = [
    "GUITARS",
    "Note",
    "OPTIONS",
    "PHRASES",
    "SYNTH_VERSION",
    "guitar_labels",
    "pickup_response",
    "plot_spectra",
    "render_notes",
    "render_take",
    "resolve_options",
    "stream_take",
    "synth_params",
]

SYNTH_VERSION = 1
OUTPUT_SCALE = 0.08  # pickup EMF units -> full scale at 0 dB preamp gain

# name -> (default, low, high, meaning). None as default: taken from the guitar preset.
OPTIONS: dict[str, tuple] = {
    "pickup_position": (None, None, None, "selector position; see GUITARS[g]['positions']"),
    "tone_knob": (10.0, 0.0, 10.0, "tone pot, 10 = open; lower moves the resonance down"),
    "volume_knob": (10.0, 0.0, 10.0, "volume pot, audio taper; below 10 also loses treble"),
    "string_gauge": (10.0, 8.0, 13.0, "high-e gauge in thousandths of an inch"),
    "pick_attack": (0.5, 0.0, 1.0, "0 soft pick/thumb .. 1 hard pick at the edge (brightness)"),
    "dynamics_db": (6.0, 0.0, 18.0, "spread of the player's note levels"),
    "humanize_ms": (4.0, 0.0, 30.0, "extra timing jitter of this guitar's take"),
    "mains_hz": (60.0, 45.0, 65.0, "mains frequency of the hum (50 or 60)"),
    "hum": (1.0, 0.0, 10.0, "hum level relative to a typical room (0 = none)"),
    "cable_pf": (200.0, 20.0, 3000.0, "cable (and input) capacitance in pF"),
    "resonance_hz": (None, 800.0, 15000.0, "put the pickup's resonance peak here (sets the capacitance)"),
    "preamp_gain_db": (0.0, -40.0, 60.0, "interface preamp gain; too hot clips"),
    "noise_floor_dbfs": (-90.0, -150.0, -30.0, "interface noise, RMS"),
    "pluck_position": (None, 0.04, 0.45, "where the pick hits, fraction of the string from the bridge (unset: the score's, about 0.18)"),
    "humbucker_hum": (None, 0.0, 1.0, "hum a humbucker's imperfect cancelling leaves, relative to a single coil (unset: 0)"),
    "pickup_place": (None, 0.5, 2.0, "another build of the guitar: every pickup's distance from the bridge times this (unset: 1)"),
    "pickup_width": (None, 0.5, 2.0, "another build: every coil's magnetic window (and a humbucker's coil spacing) times this (unset: 1)"),
    "pickup_winding": (None, 0.5, 2.0, "another build: every coil's inductance and resistance times this (unset: 1)"),
}  # fmt: skip
# Options added after the first corpora were written: left out of ``synth_params`` while
# unset, so the parameters (and the audio) of a take rendered before stay the same.
LATER_OPTIONS = (
    "pluck_position",
    "humbucker_hum",
    "pickup_place",
    "pickup_width",
    "pickup_winding",
)
BUILD_OPTIONS = ("pickup_place", "pickup_width", "pickup_winding")


# ---------------------------------------------------------------- options and labels


def _guitar(name: str) -> dict:
    if name not in GUITARS:
        raise RecorderError(f"unknown guitar {name!r}; known: {', '.join(GUITARS)}")
    return GUITARS[name]


def built_guitar(name: str, opts: dict) -> dict:
    """The guitar preset as this take's instrument: the same design built another way.

    Two guitars of one model differ in where the pickups sit, how wide their magnets
    are and how many turns their coils have; ``pickup_place``, ``pickup_width`` and
    ``pickup_winding`` scale those (unset: the preset itself).
    """
    spec = _guitar(name)
    place, width, winding = (opts.get(k) or 1.0 for k in BUILD_OPTIONS)
    if (place, width, winding) == (1.0, 1.0, 1.0):
        return spec
    pickups = {}
    for pos, coil in spec["pickups"].items():
        coil = {
            **coil,
            "bass_mm": coil["bass_mm"] * place,
            "treble_mm": coil["treble_mm"] * place,
            "aperture_mm": coil["aperture_mm"] * width,
            "inductance_h": coil["inductance_h"] * winding,
            "resistance_ohm": coil["resistance_ohm"] * winding,
        }
        if "coil_spacing_mm" in coil:
            coil["coil_spacing_mm"] = coil["coil_spacing_mm"] * width
        pickups[pos] = coil
    return {**spec, "pickups": pickups}


def resolve_options(guitar: str, options: dict | None = None) -> dict:
    """All options with defaults filled in and ranges checked (one-line errors)."""
    spec = _guitar(guitar)
    options = dict(options or {})
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise RecorderError(f"unknown synth option {unknown[0]!r}; known: {', '.join(OPTIONS)}")
    resolved = {}
    for name, (default, low, high, _) in OPTIONS.items():
        value = options.get(name, default)
        if value is not None and low is not None:
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise RecorderError(f"synth option {name}={value!r} is not a number") from None
            if not low <= value <= high:
                raise RecorderError(
                    f"synth option {name}={value:g} is out of range; use {low:g} to {high:g}"
                )
        resolved[name] = value
    position = resolved["pickup_position"] or spec["default_position"]
    if position not in spec["positions"]:
        raise RecorderError(
            f"{guitar} has no pickup position {position!r}; known: {', '.join(spec['positions'])}"
        )
    resolved["pickup_position"] = position
    return resolved


def guitar_labels(guitar: str, position: str | None = None) -> dict:
    """The manifest labels of a synthetic guitar: ``{"guitar": ..., "pickup": ...}``.

    ``pickup`` is the kind of the selected coils (``single_coil``, ``humbucker``, ``p90``);
    a split humbucker is a ``single_coil``.
    """
    spec = _guitar(guitar)
    position = position or spec["default_position"]
    if position not in spec["positions"]:
        raise RecorderError(
            f"{guitar} has no pickup position {position!r}; known: {', '.join(spec['positions'])}"
        )
    names = spec["positions"][position]
    kinds = {spec["pickups"][n]["kind"] for n in names}
    return {"guitar": guitar, "pickup": kinds.pop() if len(kinds) == 1 else spec["pickup"]}


def _circuit(spec: dict, opts: dict) -> dict:
    position = spec["positions"][opts["pickup_position"]]
    circuit = sg.circuit(spec, position, opts)
    if opts["resonance_hz"] is not None:
        try:
            circuit["capacitance_f"] = sg.capacitance_for_peak(circuit, opts["resonance_hz"])
        except ValueError as exc:
            raise RecorderError(
                f"resonance_hz={opts['resonance_hz']:g} is above what this pickup and its loads can peak at ({exc} Hz); choose a lower one"
            ) from None
    return circuit


def pickup_response(
    guitar: str, freqs_hz: np.ndarray, *, sample_rate: int = SYNTH_RATE, options: dict | None = None
) -> np.ndarray:
    """Magnitude response of the guitar's pickup circuit (as rendered) at ``freqs_hz``."""
    from scipy import signal  # here: scipy.signal takes ~1 s to import, synth --help needs none

    opts = resolve_options(guitar, options)
    spec = built_guitar(guitar, opts)
    b, a = sg.digital_filter(_circuit(spec, opts), sample_rate)
    _, h = signal.freqz(b, a, worN=np.asarray(freqs_hz, dtype=float), fs=sample_rate)
    return np.abs(h)


# ---------------------------------------------------------------- strings


def _crc(text: str) -> int:
    return zlib.crc32(text.encode())


def _note_ends(score: list[Note], seconds: float) -> np.ndarray:
    """When each note stops: its own duration, or the next pluck of the same string."""
    ends = np.array([n.start_s + n.dur_s for n in score], dtype=float)
    last: dict[int, int] = {}
    for i, note in enumerate(score):
        j = last.get(note.string)
        if j is not None and ends[j] > note.start_s:
            ends[j] = note.start_s + 0.003  # the pick lands on the ringing string
        last[note.string] = i
    return np.minimum(ends, seconds + 0.5)


def _pitch_curve(note: Note, frames: int, sample_rate: int) -> np.ndarray | None:
    """Semitones away from the fretted pitch, per sample (None for a steady note)."""
    if note.dead or (note.bend_semitones == 0 and note.vibrato_cents == 0 and note.slide_from < 0):
        return None
    t = np.arange(frames) / sample_rate
    curve = np.zeros(frames)
    if note.slide_from >= 0:
        ramp = np.clip(t / note.slide_time_s, 0.0, 1.0)
        curve += (note.slide_from - note.fret) * (1.0 - ramp)
    if note.bend_semitones:
        up = np.clip((t - note.bend_at_s) / note.bend_time_s, 0.0, 1.0)
        shape = up * up * (3 - 2 * up)
        if note.release_at_s >= 0:
            down = np.clip((t - note.release_at_s) / note.bend_time_s, 0.0, 1.0)
            shape = shape * (1.0 - down * down * (3 - 2 * down))
        curve += note.bend_semitones * shape
    if note.vibrato_cents:
        since = np.clip(t - note.vibrato_at_s, 0.0, None)
        depth = np.clip(since / 0.25, 0.0, 1.0) * note.vibrato_cents / 100.0
        curve += depth * 0.5 * (1.0 - np.cos(2 * np.pi * note.vibrato_hz * since))  # bends up
    return curve


def _partials(
    note: Note, spec: dict, position: list[str], opts: dict, sample_rate: int, top_fraction: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frequencies, amplitudes and decay rates of one plucked note's partials."""
    scale = spec["scale_mm"]
    gauge = opts["string_gauge"] / 10.0
    f0 = 440.0 * 2.0 ** (
        (sg.OPEN_MIDI[note.string] + note.fret - 69 + note.detune_cents / 100.0) / 12.0
    )
    length = scale * 2.0 ** (-note.fret / 12.0)
    inharm = (
        sg.OPEN_INHARMONICITY[note.string] * (648.0 / scale) ** 4 * (scale / length) ** 2 * gauge**2
    )
    n = sg.partial_numbers(f0, inharm, int(sample_rate * top_fraction / 0.45))
    freqs = n * f0 * np.sqrt(1.0 + inharm * n**2)
    pluck_mm = min(note.pluck_frac * scale, 0.45 * length)
    # a pluck leaves a triangle: modes ~ sin(n pi p / L) / n^2; the pickup senses velocity (x n)
    amps = np.sin(n * np.pi * pluck_mm / length) / n
    pick_hz = 3000.0 * (0.35 + 1.3 * opts["pick_attack"]) * (0.6 + 0.4 * min(note.velocity, 1.3))
    pick_hz *= 0.35 if note.legato else 1.0
    amps = amps / np.sqrt(1.0 + (freqs / pick_hz) ** 2)
    decay = spec["decay_per_s"] * (1.0 + 0.12 * note.string) / gauge**0.5 + 6e-7 * freqs**2
    if note.palm_mute:
        decay = decay + note.palm_mute * (30.0 + 8e-6 * freqs**2)
        amps = amps / np.sqrt(1.0 + note.palm_mute * (freqs / 700.0) ** 2)
    if note.dead:
        decay = decay + 90.0 + 2e-5 * freqs**2
    amps = amps * sg.pickup_weights(spec, position, note.string, length, n)
    amps = (
        amps * note.velocity * (0.5 if note.legato else 1.0) * sg.STRING_OUTPUT[note.string] * gauge
    )
    keep = np.abs(amps) > 1e-4 * np.max(np.abs(amps))
    return freqs[keep], amps[keep], decay[keep]


def _render_note(
    note: Note, end_s: float, spec: dict, position: list[str], opts: dict, sample_rate: int
) -> np.ndarray:
    """One note from its onset to the end of its release, at ``sample_rate``."""
    release_s = 0.01 if note.dead or end_s < note.start_s + note.dur_s - 1e-6 else 0.05
    hold = max(end_s - note.start_s, 0.0)
    frames = int((hold + 5 * release_s) * sample_rate) + 1
    curve = _pitch_curve(note, frames, sample_rate)
    if curve is None:
        freqs, amps, decay = _partials(note, spec, position, opts, sample_rate, 0.45)
        out = sg.modal_note(freqs, amps, decay, frames, sample_rate)
    else:  # render steady at twice the rate, then read it along the bent time axis
        freqs, amps, decay = _partials(note, spec, position, opts, sample_rate, 0.38)
        warped = np.cumsum(2.0 ** (curve / 12.0)) * 2.0
        steady = sg.modal_note(freqs, amps, decay, int(warped[-1]) + 2, 2 * sample_rate)
        out = np.interp(warped - warped[0], np.arange(steady.size), steady).astype(np.float32)
    t = np.arange(frames) / sample_rate
    out *= np.exp(-np.clip(t - hold, 0.0, None) / release_s).astype(np.float32)
    return out


def _play(score: list[Note], opts: dict, rng: np.random.Generator) -> list[Note]:
    """This guitar's take of the score: timing jitter, level jitter, the dynamics knob."""
    from dataclasses import replace

    played = []
    spread = opts["dynamics_db"] / 6.0
    shift = 0.0 if opts.get("pluck_position") is None else opts["pluck_position"] - 0.18

    def pluck(note: Note) -> float:  # the player's picking point moves the score's
        return note.pluck_frac + shift if shift else note.pluck_frac

    for note in score:
        level_db = 20 * np.log10(max(note.velocity, 1e-3) / 0.8) * spread + rng.normal(0.0, 0.7)
        played.append(
            replace(
                note,
                start_s=max(0.0, note.start_s + rng.normal(0.0, opts["humanize_ms"] / 1000.0)),
                velocity=float(0.8 * 10 ** (level_db / 20.0)),
                pluck_frac=float(np.clip(pluck(note) + rng.normal(0.0, 0.01), 0.04, 0.45)),
            )
        )
    return sorted(played, key=lambda n: (n.start_s, n.string))


CHUNK_FRAMES = 16384  # rendering hop: the stream's first block costs one chunk, not a take


def _string_chunks(
    score: list[Note], spec: dict, opts: dict, frames: int, sample_rate: int, chunk_frames: int
) -> Iterator[np.ndarray]:
    """The summed string EMF in consecutive chunks; ringing tails carry into later chunks."""
    position = spec["positions"][opts["pickup_position"]]
    ends = _note_ends(score, frames / sample_rate)
    starts = [int(round(note.start_s * sample_rate)) for note in score]
    pending = np.zeros(0, dtype=np.float32)  # samples from the current chunk's start on
    i = 0
    for c0 in range(0, frames, chunk_frames):
        size = min(chunk_frames, frames - c0)
        while i < len(score) and starts[i] < c0 + size:
            audio = _render_note(score[i], ends[i], spec, position, opts, sample_rate)
            offset = starts[i] - c0
            if pending.size < offset + audio.size:
                grow = offset + audio.size - pending.size
                pending = np.concatenate([pending, np.zeros(grow, dtype=np.float32)])
            pending[offset : offset + audio.size] += audio
            i += 1
        if pending.size < size:
            pending = np.concatenate([pending, np.zeros(size - pending.size, dtype=np.float32)])
        yield pending[:size]
        pending = pending[size:]


def _hum_source(spec: dict, opts: dict, sample_rate: int, rng: np.random.Generator):
    """Mains hum EMF as a function of (start, stop) frames: odd harmonics dominate, and it
    swells slowly as the player moves. Humbuckers and hum-cancelling combos give zeros."""
    position = spec["positions"][opts["pickup_position"]]
    level = 0.012 * opts["hum"] * sg.position_hum(spec, position, opts.get("humbucker_hum") or 0.0)
    harmonics = [
        (k, amp, rng.uniform(0, 2 * np.pi))
        for k, amp in enumerate((1.0, 0.15, 0.55, 0.08, 0.3, 0.05, 0.15, 0.03, 0.08), start=1)
        if k * opts["mains_hz"] < 0.45 * sample_rate
    ]
    swell_hz, swell_phase = rng.uniform(0.05, 0.2), rng.uniform(0, 2 * np.pi)

    def hum(start: int, stop: int) -> np.ndarray:
        if level == 0.0:
            return np.zeros(stop - start)
        t = np.arange(start, stop) / sample_rate
        total = sum(a * np.sin(2 * np.pi * k * opts["mains_hz"] * t + ph) for k, a, ph in harmonics)
        return level * total * (1.0 + 0.25 * np.sin(2 * np.pi * swell_hz * t + swell_phase))

    return hum


def interface(pickup_out: np.ndarray, opts: dict, rng: np.random.Generator) -> np.ndarray:
    """Preamp gain and noise, a soft analog knee, then the converter: hard clip and 24 bits."""
    x = pickup_out.astype(np.float64) * OUTPUT_SCALE * 10 ** (opts["preamp_gain_db"] / 20.0)
    x += rng.standard_normal(x.size) * 10 ** (opts["noise_floor_dbfs"] / 20.0)
    knee = 0.8
    over = np.abs(x) > knee
    x[over] = np.sign(x[over]) * (
        knee + (1 - knee) * np.tanh((np.abs(x[over]) - knee) / (1 - knee) * 1.2)
    )
    x = np.clip(np.round(x * 2**23), -(2**23), 2**23 - 1) / 2**23
    return x.astype(np.float32)


# ---------------------------------------------------------------- public rendering


def render_take(
    guitar: str,
    phrase: str,
    *,
    take: int = 1,
    seed: int = 0,
    seconds: float = 60.0,
    bpm: float = BPM,
    key: str = "A",
    sample_rate: int = SYNTH_RATE,
    options: dict | None = None,
) -> np.ndarray:
    """One take of ``phrase`` played on ``guitar``, as the interface records it.

    Parameters
    ----------
    guitar : a key of ``GUITARS`` (``stratocaster``, ``les_paul``, ``telecaster``).
    phrase : ``backing`` or ``lead``.
    take, seed : the performance; the same (phrase, take, seed) on another guitar keeps
        its notes and timing, another take number is another performance.
    seconds, bpm, key, sample_rate : length, tempo, key (``A``, ``F#``, ``Bb`` ...) and rate.
    options : overrides of ``OPTIONS`` (pickup_position, tone_knob, preamp_gain_db ...).

    Returns
    -------
    float32 array of ``round(seconds * sample_rate)`` samples in [-1, 1], bit-identical
    for identical arguments.
    """
    chunks = _take_chunks(guitar, phrase, take, seed, seconds, bpm, key, sample_rate, options)
    return np.concatenate(list(chunks))


def render_notes(
    guitar: str,
    notes: list[Note],
    *,
    seconds: float,
    sample_rate: int = SYNTH_RATE,
    options: dict | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Record exactly these ``notes`` (no human variation) on ``guitar``: a test bench.

    Examples
    --------
    >>> a440 = Note(start_s=0.0, dur_s=1.0, string=5, fret=5, velocity=0.8)
    >>> render_notes("les_paul", [a440], seconds=1.0).shape
    (44100,)
    """
    opts = resolve_options(guitar, options)
    check_length(seconds, sample_rate)
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, _crc(guitar), _crc("notes")])
    ordered = sorted(notes, key=lambda n: (n.start_s, n.string))
    return np.concatenate(list(_record(guitar, ordered, opts, seconds, int(sample_rate), rng)))


def check_length(seconds: float, sample_rate: int) -> None:
    """Refuse a length or rate the synthesizer cannot render, in one line."""
    if not 0 < seconds <= MAX_TAKE_SECONDS or not 8000 <= int(sample_rate) <= 192000:
        raise RecorderError(
            f"seconds={seconds}, sample_rate={sample_rate}: use 0 < seconds <= "
            f"{MAX_TAKE_SECONDS:g} (a take is rendered in memory) and a rate of 8000-192000 Hz"
        )


def _record(
    guitar: str, notes: list[Note], opts: dict, seconds: float, sample_rate: int,
    rng: np.random.Generator, chunk_frames: int = CHUNK_FRAMES,
) -> Iterator[np.ndarray]:  # fmt: skip
    """Strings, hum, the pickup circuit and the interface, chunk by chunk: what the
    recorder receives. Concatenated chunks are the take, whatever ``chunk_frames``."""
    from scipy import signal  # here, not at import (see pickup_response)

    spec = built_guitar(guitar, opts)
    frames = int(round(seconds * sample_rate))
    hum = _hum_source(spec, opts, sample_rate, rng)
    b, a = sg.digital_filter(_circuit(spec, opts), sample_rate)
    state = np.zeros(max(len(a), len(b)) - 1)
    start = 0
    for emf in _string_chunks(notes, spec, opts, frames, sample_rate, chunk_frames):
        pickup_out, state = signal.lfilter(b, a, emf + hum(start, start + emf.size), zi=state)
        start += emf.size
        yield interface(pickup_out, opts, rng)


def _take_chunks(
    guitar: str, phrase: str, take: int, seed: int, seconds: float, bpm: float, key: str,
    sample_rate: int, options: dict | None,
) -> Iterator[np.ndarray]:  # fmt: skip
    opts = resolve_options(guitar, options)
    check_length(seconds, sample_rate)
    score = make_score(phrase, take=take, seed=seed, seconds=seconds, bpm=bpm, key=key)
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(take), _crc(phrase), _crc(guitar)])
    return _record(guitar, _play(score, opts, rng), opts, seconds, int(sample_rate), rng)


def stream_take(
    guitar: str,
    phrase: str,
    *,
    take: int = 1,
    seed: int = 0,
    seconds: float = 60.0,
    bpm: float = BPM,
    key: str = "A",
    sample_rate: int = SYNTH_RATE,
    options: dict | None = None,
    block_frames: int = 1024,
) -> Iterator[np.ndarray]:
    """``render_take`` in blocks of ``block_frames`` (the last may be shorter) for playback.

    Renders chunk by chunk (tens of times faster than real time), so the first block
    comes after one chunk's work; the blocks concatenate to exactly ``render_take``.
    """
    if block_frames <= 0:
        raise RecorderError(f"block_frames={block_frames}; use a positive number such as 1024")
    chunks = _take_chunks(guitar, phrase, take, seed, seconds, bpm, key, sample_rate, options)
    carry = np.zeros(0, dtype=np.float32)
    for chunk in chunks:
        carry = np.concatenate([carry, chunk])
        while carry.size >= block_frames:
            yield carry[:block_frames]
            carry = carry[block_frames:]
    if carry.size:
        yield carry


# ---------------------------------------------------------------- corpus


def synth_params(
    guitar: str, phrase: str, *, take: int, seed: int, seconds: float, bpm: float, key: str,
    sample_rate: int, options: dict | None, randomized: bool = False,
) -> str:  # fmt: skip
    """The generating parameters of a take as compact, canonical JSON (the manifest keeps it).

    ``render_params(synth_params(...))`` renders the take again, bit for bit.
    """
    resolved = resolve_options(guitar, options)
    for name in LATER_OPTIONS:
        if resolved[name] is None:
            del resolved[name]
    extra = {"randomized": True} if randomized else {}
    return json.dumps(
        {
            **extra,
            "synth": SYNTH_VERSION,
            "guitar": guitar,
            "phrase": phrase,
            "take": int(take),
            "seed": int(seed),
            "seconds": float(seconds),
            "bpm": float(bpm),
            "key": str(key),
            "sample_rate": int(sample_rate),
            "options": resolved,
        },
        sort_keys=True,
        separators=(",", ":"),
    )


# ---------------------------------------------------------------- a figure


def plot_spectra(
    takes: dict[str, np.ndarray],
    sample_rate: int,
    path: str | os.PathLike,
    *,
    responses: dict[str, dict | None] | None = None,
) -> Path:
    """Long-term average spectra of ``takes`` (label -> audio), optionally beside pickup responses.

    ``responses`` maps a guitar name to its options (None for defaults) and adds a second
    panel with each pickup circuit's magnitude response. Writes a PNG and returns its path.
    """
    from guitarlab.corpus.figures import plot_spectra as plot

    curves = None
    if responses:
        curves = {
            guitar: partial(pickup_response, guitar, sample_rate=sample_rate, options=options)
            for guitar, options in responses.items()
        }
    return plot(takes, sample_rate, path, responses=curves)
