"""The performances: scores of the post's ``backing`` and ``lead`` phrases.

A score is a list of ``Note`` events generated from (phrase, take, seed) only, never from
the guitar, so the same take played on another guitar keeps its notes and timing; the
guitar-specific human variation is added at render time. Times are in seconds.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, replace

import numpy as np

from guitarlab.corpus.errors import RecorderError

PHRASES = ("backing", "lead")
KEYS = {
    "C": 0,
    "C#": 1,
    "DB": 1,
    "D": 2,
    "D#": 3,
    "EB": 3,
    "E": 4,
    "F": 5,
    "F#": 6,
    "GB": 6,
    "G": 7,
    "G#": 8,
    "AB": 8,
    "A": 9,
    "A#": 10,
    "BB": 10,
    "B": 11,
}
LOW_E_PITCH_CLASS = 4


@dataclass(frozen=True)
class Note:
    """One plucked (or hammered, or dead) string: where, when, how hard and how it moves."""

    start_s: float
    dur_s: float
    string: int  # 0 = low E ... 5 = high e
    fret: int
    velocity: float  # linear amplitude, about 0.2 .. 1.3
    pluck_frac: float = 0.18  # pluck point as a fraction of the string from the bridge
    palm_mute: float = 0.0  # 0 open .. 1 fully muted at the bridge
    dead: bool = False  # fretting hand mutes the string: a percussive 'chk'
    legato: bool = False  # hammer-on/pull-off: no pick, softer and darker
    bend_semitones: float = 0.0
    bend_at_s: float = 0.0  # when the bend starts, after the onset
    bend_time_s: float = 0.12
    release_at_s: float = -1.0  # when the bend is let down again (<0: never)
    vibrato_cents: float = 0.0
    vibrato_hz: float = 5.5
    vibrato_at_s: float = 0.0
    slide_from: int = -1  # fret the slide starts from (<0: no slide)
    slide_time_s: float = 0.08
    detune_cents: float = 0.0  # a string slightly out of tune (the session notes' variation)


def key_root(key: str) -> int:
    """Pitch class 0..11 of a key name such as ``A``, ``F#`` or ``Bb``."""
    name = str(key).strip().upper().removesuffix("M").removesuffix("MIN")
    if name not in KEYS:
        raise RecorderError(
            f"unknown key {key!r}; use one of C, C#, D, Eb, E, F, F#, G, Ab, A, Bb, B"
        )
    return KEYS[name]


def phrase_rng(phrase: str, take: int, seed: int, salt: str = "") -> np.random.Generator:
    """A generator that depends only on the performance (stable across Python runs)."""
    code = zlib.crc32(f"{phrase}/{salt}".encode())
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, int(take), code])


def make_score(
    phrase: str, *, take: int, seed: int, seconds: float, bpm: float, key: str
) -> list[Note]:
    """The notes of one performance, sorted by onset and cut at ``seconds``."""
    if phrase not in PHRASES:
        raise RecorderError(f"unknown phrase {phrase!r}; known: {', '.join(PHRASES)}")
    if not 30.0 <= bpm <= 300.0:
        raise RecorderError(f"bpm {bpm} is out of range; use 30 to 300")
    rng = phrase_rng(phrase, take, seed)
    root = key_root(key)
    notes = (_backing if phrase == "backing" else _lead)(rng, seconds, 60.0 / bpm, root)
    notes = [_human_timing(n, rng) for n in notes]
    return sorted((n for n in notes if n.start_s < seconds), key=lambda n: (n.start_s, n.string))


def _human_timing(note: Note, rng: np.random.Generator) -> Note:
    """The player's own timing, part of the performance (shared by every guitar)."""
    return replace(note, start_s=max(0.0, note.start_s + rng.normal(0.0, 0.004)))


# ---------------------------------------------------------------- backing: chords

# Movable shapes: frets relative to the root fret, None = not played.
SHAPES = {
    ("E", "maj"): [0, 2, 2, 1, 0, 0],
    ("E", "7"): [0, 2, 0, 1, 0, 0],
    ("E", "min"): [0, 2, 2, 0, 0, 0],
    ("E", "m7"): [0, 2, 0, 0, 0, 0],
    ("A", "maj"): [None, 0, 2, 2, 2, 0],
    ("A", "7"): [None, 0, 2, 0, 2, 0],
    ("A", "min"): [None, 0, 2, 2, 1, 0],
    ("A", "m7"): [None, 0, 2, 0, 1, 0],
}
# Progressions as (semitones above the key, quality) per bar.
PROGRESSIONS = {
    "blues": [(0, "7")] * 4 + [(5, "7")] * 2 + [(0, "7")] * 2 + [(7, "7"), (5, "7"), (0, "7"), (7, "7")],
    "quick_change": [(0, "7"), (5, "7"), (0, "7"), (0, "7"), (5, "7"), (5, "7"), (0, "7"), (0, "7"),
                     (7, "7"), (5, "7"), (0, "7"), (7, "7")],
    "pop": [(0, "maj"), (7, "maj"), (9, "min"), (5, "maj")],
    "rock": [(0, "maj"), (10, "maj"), (5, "maj"), (0, "maj")],
    "minor_blues": [(0, "m7")] * 4 + [(5, "m7")] * 2 + [(0, "m7")] * 2 + [(8, "7"), (7, "7"), (0, "m7"), (7, "7")],
}  # fmt: skip
# 16th-note strumming patterns: x = strum, m = muted 'chk', . = hand passes without hitting.
BUSY_PATTERNS = [
    "x.xxx.xx" * 2,
    "x.xmx.xm" * 2,
    "xxxmxxxm" * 2,
    "x.xx.xxx" * 2,
    "x.xxmxxx" * 2,
    "xxmxx.xm" * 2,
]
RELAXED_PATTERNS = ["xxxxxxxx", "x.xxx.xx", "x.x.xxxx", "xx.xx.xx", "x.xx.x.x"]


def chord_frets(root_pc: int, quality: str, prefer_fret: float) -> list[int | None]:
    """Frets of a movable E- or A-shape chord whose root fret is nearest ``prefer_fret``."""
    options = []
    for shape, low in (("E", LOW_E_PITCH_CLASS), ("A", 9)):
        fret = (root_pc - low) % 12
        for f in (fret, fret + 12):
            if f <= 12:
                options.append((abs(f - prefer_fret) + (0.5 if shape == "A" else 0.0), shape, f))
    _, shape, fret = min(options)
    return [None if rel is None else rel + fret for rel in SHAPES[(shape, quality)]]


def _strum(
    rng: np.random.Generator,
    start_s: float,
    dur_s: float,
    frets: list[int | None],
    down: bool,
    velocity: float,
    *,
    dead: bool,
    strum_s: float,
    palm_mute: float,
) -> list[Note]:
    """A pick sweeping across the strings: per-string delays, direction-dependent strings."""
    strings = [s for s, f in enumerate(frets) if f is not None]
    if down:
        keep = strings[: len(strings) - int(rng.integers(0, 2))]
    else:
        keep = strings[-int(rng.integers(3, 6)) :]
        keep = keep[::-1]
    notes = []
    step = strum_s / max(len(keep) - 1, 1)
    pluck = float(rng.uniform(0.12, 0.3))
    for i, s in enumerate(keep):
        notes.append(
            Note(
                start_s=start_s + i * step * rng.uniform(0.7, 1.3),
                dur_s=dur_s,
                string=s,
                fret=int(frets[s]),
                velocity=velocity * float(rng.uniform(0.75, 1.1)) * (1.0 - 0.08 * i),
                pluck_frac=pluck + float(rng.normal(0, 0.01)),
                palm_mute=palm_mute,
                dead=dead,
            )
        )
    return notes


def _backing(rng: np.random.Generator, seconds: float, beat_s: float, root: int) -> list[Note]:
    """First half busy 16th strumming, second half relaxed 8ths, one chord per bar."""
    names = sorted(PROGRESSIONS)
    progression = PROGRESSIONS[names[int(rng.integers(len(names)))]]
    prefer = float(rng.choice([1.0, 3.0, 5.0, 7.0]))
    busy = BUSY_PATTERNS[int(rng.integers(len(BUSY_PATTERNS)))]
    relaxed = RELAXED_PATTERNS[int(rng.integers(len(RELAXED_PATTERNS)))]
    strum_s = float(rng.uniform(0.012, 0.03))
    bar_s = 4 * beat_s
    bars = int(np.ceil(seconds / bar_s))
    half_s = seconds / 2.0
    notes: list[Note] = []
    loudness = 0.0  # slow dynamic drift of the player, in dB
    for bar in range(bars):
        offset, quality = progression[bar % len(progression)]
        frets = chord_frets((root + offset) % 12, quality, prefer)
        loudness = 0.7 * loudness + rng.normal(0.0, 1.5)
        bar_start = bar * bar_s
        if bar_start < half_s:
            step_s, pattern, ring = beat_s / 4, busy, 1.0
        else:
            step_s, pattern, ring = beat_s / 2, relaxed, 1.6
        if rng.random() < 0.15:  # the player varies the pattern now and then
            pattern = "".join(
                c if rng.random() > 0.25 else rng.choice(list("x.m")) for c in pattern
            )
        palm = float(rng.uniform(0.5, 0.9)) if rng.random() < 0.2 else 0.0
        for slot, kind in enumerate(pattern):
            t = bar_start + slot * step_s
            if kind == "." or t >= seconds:
                continue
            accent = 1.0 if slot % 4 == 0 else 0.8
            if step_s < beat_s / 3 and slot % 8 == 4:
                accent = 1.15  # backbeat
            velocity = accent * 10 ** ((loudness + rng.normal(0.0, 1.0)) / 20.0) * 0.8
            notes += _strum(
                rng,
                t,
                step_s * ring,
                frets,
                down=slot % 2 == 0,
                velocity=velocity * (0.6 if kind == "m" else 1.0),
                dead=kind == "m",
                strum_s=strum_s,
                palm_mute=palm,
            )
    return notes


# ---------------------------------------------------------------- lead: a blues solo

PENTATONIC_MINOR = (0, 3, 5, 7, 10)
BLUE_NOTE = 6
RHYTHMS = [  # (onsets in beats within two beats, duration in beats)
    [(0.0, 1.0), (1.0, 1.0)],
    [(0.0, 0.5), (0.5, 0.5), (1.0, 0.5), (1.5, 0.5)],
    [(0.0, 1 / 3), (1 / 3, 1 / 3), (2 / 3, 1 / 3), (1.0, 1.0)],
    [(0.0, 0.25), (0.25, 0.25), (0.5, 0.5), (1.0, 0.5), (1.5, 0.5)],
    [(0.5, 0.5), (1.0, 1.0)],
    [(0.0, 2.0)],
    [(0.0, 0.75), (0.75, 0.25), (1.0, 1.0)],
    [(0.0, 1 / 3), (1 / 3, 1 / 3), (2 / 3, 1 / 3), (1.0, 1 / 3), (4 / 3, 1 / 3), (5 / 3, 1 / 3)],
]


def box_notes(root: int, position_fret: int) -> list[tuple[int, int]]:
    """(string, fret) pairs of the minor pentatonic (and blue note) in one hand position."""
    scale = {(root + step) % 12 for step in PENTATONIC_MINOR + (BLUE_NOTE,)}
    pairs = []
    for s in range(6):
        for fret in range(max(position_fret - 1, 0), position_fret + 4):
            if (OPEN_PITCH_CLASSES[s] + fret) % 12 in scale and fret <= 20:
                pairs.append((s, fret))
    return sorted(pairs, key=lambda p: (OPEN_MIDI_LIST[p[0]] + p[1], p[0]))


OPEN_MIDI_LIST = (40, 45, 50, 55, 59, 64)
OPEN_PITCH_CLASSES = tuple(m % 12 for m in OPEN_MIDI_LIST)


def _lead(rng: np.random.Generator, seconds: float, beat_s: float, root: int) -> list[Note]:
    """Phrases of one to two bars with rests, moving between five box positions."""
    base = (root - LOW_E_PITCH_CLASS) % 12
    positions = sorted(
        {(base + off) % 12 + (12 if (base + off) % 12 < 2 else 0) for off in (0, 3, 5, 7, 10)}
    )
    notes: list[Note] = []
    t_beats = 0.0
    end_beats = seconds / beat_s
    position = positions[int(rng.integers(len(positions)))]
    box = box_notes(root, position)
    index = int(rng.integers(len(box) // 3, len(box)))
    attack = float(rng.uniform(0.85, 1.15))
    while t_beats < end_beats:
        if rng.random() < 0.35:  # shift position, sliding into the first note
            previous = position
            position = positions[int(rng.integers(len(positions)))]
            box = box_notes(root, position)
            index = int(np.clip(index + rng.integers(-2, 3), 0, len(box) - 1))
            slide_from = box[index][1] + (-2 if position > previous else 2)
        else:
            slide_from = -1
        phrase_cells = int(rng.integers(2, 5))  # two-beat cells in this phrase
        for cell in range(phrase_cells):
            rhythm = RHYTHMS[int(rng.integers(len(RHYTHMS)))]
            last_cell = cell == phrase_cells - 1
            for j, (onset, length) in enumerate(rhythm):
                index = int(np.clip(index + rng.choice([-2, -1, -1, 1, 1, 2, 0]), 0, len(box) - 1))
                string, fret = box[index]
                start_beats = t_beats + onset
                final = last_cell and j == len(rhythm) - 1
                dur_beats = length * (float(rng.uniform(0.7, 1.0)) if not final else 2.0)
                note = Note(
                    start_s=start_beats * beat_s,
                    dur_s=dur_beats * beat_s,
                    string=string,
                    fret=fret,
                    velocity=attack * float(0.8 * 10 ** (rng.normal(0.0, 2.5) / 20.0)),
                    pluck_frac=float(rng.uniform(0.1, 0.3)),
                    legato=bool(j > 0 and length < 0.6 and rng.random() < 0.3),
                    palm_mute=float(rng.uniform(0.4, 0.8)) if rng.random() < 0.06 else 0.0,
                    slide_from=slide_from if cell == 0 and j == 0 else -1,
                )
                note = _ornament(rng, note, beat_s, final)
                notes.append(note)
                if rng.random() < 0.08 and string < 5:  # a double stop on the next string
                    notes.append(replace(note, string=string + 1, fret=max(fret - int(rng.integers(0, 2)), 0),
                                         velocity=note.velocity * 0.8, bend_semitones=0.0))  # fmt: skip
            t_beats += 2.0
        t_beats += float(rng.choice([1.0, 2.0, 2.0, 3.0, 4.0]))  # a breath between phrases
    return notes


def _ornament(rng: np.random.Generator, note: Note, beat_s: float, final: bool) -> Note:
    """Bends on the long notes, vibrato on held ones, like a blues player would."""
    long = note.dur_s >= 0.9 * beat_s
    if long and note.string >= 2 and rng.random() < (0.6 if final else 0.3):
        semis = float(rng.choice([1.0, 2.0, 2.0, 0.5]))
        at = float(rng.uniform(0.0, 0.15)) * note.dur_s
        release = at + 0.6 * note.dur_s if rng.random() < 0.3 else -1.0
        note = replace(note, bend_semitones=semis, bend_at_s=at, bend_time_s=float(rng.uniform(0.06, 0.2)),
                       release_at_s=release)  # fmt: skip
    if long and rng.random() < (0.8 if final else 0.4):
        note = replace(
            note,
            vibrato_cents=float(rng.uniform(15.0, 45.0)),
            vibrato_hz=float(rng.uniform(4.5, 6.5)),
            vibrato_at_s=float(rng.uniform(0.1, 0.3)) * note.dur_s,
        )
    return note
