"""The synthetic guitar family: many guitars per pickup type, randomized takes, single notes.

What physically separates pickup types is modelled in ``guitar`` (coil inductance
and its loaded resonance, a humbucker's two sensing points 18 mm apart, the magnetic
window, hum cancelling). Everything else a real recording varies (switch position,
knobs, cable, pick, strings, room hum, interface gain and noise, tempo, key, timing) is
drawn per take by :func:`randomize_options`, so brightness, loudness and hum alone do not
tell a single coil from a humbucker. Every draw lands in the manifest's ``synth_params``
column and :func:`render_params` renders the take again, bit for bit.

Single notes (:func:`guitarlab.synth.takes.notes_to_corpus`) are recorded the way sampled-note libraries are:
one file per string and fret, a short silent lead-in, then the pluck rings out.
Strings are numbered 1 (high e) to 6 (low E) in the manifest, as most note libraries
do; inside the renderer ``Note.string`` runs 0 (low E) to 5 (high e).

Examples
--------
>>> family_guitars("humbucker")
['les_paul', 'sg', 'es335', 'superstrat']
>>> opts, bpm, key = randomize_take("sg", "lead", take=1, seed=0)
>>> opts["pickup_position"] in FAMILY["sg"]["positions"]
True
"""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path

import numpy as np

from guitarlab.corpus.defaults import SYNTH_RATE
from guitarlab.corpus.errors import RecorderError
from guitarlab.corpus.figures import pyplot, save_figure
from guitarlab.synth import guitar as sg
from guitarlab.synth.guitar import GUITARS
from guitarlab.synth.render import (
    Note,
    _guitar,
    guitar_labels,
    pickup_response,
    render_notes,
    render_take,
    resolve_options,
    synth_params,
)

PICKUP_TYPES = ("single_coil", "humbucker", "p90")

DESCRIPTIONS = {
    "stratocaster": "three single coils, 5-way switch (2 and 4 cancel hum)",
    "telecaster": "two single coils, a wide flat-pole bridge coil on a steel plate",
    "jazzmaster": "offset: two wide, flat single coils, 1 MOhm pots",
    "les_paul": "two humbuckers, set mahogany neck",
    "sg": "two humbuckers, thin mahogany body",
    "es335": "semi-hollow, two low-wind (PAF-style) humbuckers",
    "superstrat": "two humbuckers, a hot ceramic bridge humbucker, bolt-on",
    "superstrat_split": "the superstrat with its coil split pulled: one coil of each humbucker",
    "les_paul_special": "two P-90s: wide single coils over bar magnets",
}


def _family() -> dict[str, dict]:
    table = {}
    for name, spec in GUITARS.items():
        table[name] = {
            "pickup": spec["pickup"],
            "positions": list(spec["positions"]),
            "default_position": spec["default_position"],
            "split_of": spec.get("split_of"),
            "description": DESCRIPTIONS.get(name, ""),
            "scale_mm": spec["scale_mm"],
            "pots_ohm": spec["pots_ohm"],
            "pickups": {
                pos: {
                    key: p[key]
                    for key in ("kind", "inductance_h", "resistance_ohm", "aperture_mm")
                    + (("coil_spacing_mm",) if "coil_spacing_mm" in p else ())
                }
                | {"at_mm": [p["bass_mm"], p["treble_mm"]]}
                for pos, p in spec["pickups"].items()
            },
        }
    return table


# name -> pickup label, switch positions, default position, coils ... (derived from GUITARS)
FAMILY: dict[str, dict] = _family()


def family_guitars(pickup: str | None = None) -> list[str]:
    """Guitars of the family, all of them or those whose ``pickup`` label is ``pickup``.

    Every position of a family guitar has the same label, so a guitar-holdout split by
    guitar is also a split by label. ``superstrat_split`` is the superstrat's split
    setting: hold the two out together when the body must be unseen too.
    """
    if pickup is not None and pickup not in PICKUP_TYPES:
        raise RecorderError(f"unknown pickup type {pickup!r}; known: {', '.join(PICKUP_TYPES)}")
    return [g for g, row in FAMILY.items() if pickup is None or row["pickup"] == pickup]


def resolve_guitars(names: str | list[str] | tuple[str, ...]) -> list[str]:
    """Guitar names from a list or comma-separated text; ``all`` or a pickup type expands."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    out: list[str] = []
    for name in names:
        if name == "all":
            found = family_guitars()
        elif name in PICKUP_TYPES:
            found = family_guitars(name)
        elif name in FAMILY:
            found = [name]
        else:
            raise RecorderError(
                f"unknown guitar {name!r}; known: {', '.join(FAMILY)} (or all, {', '.join(PICKUP_TYPES)})"
            )
        out += [g for g in found if g not in out]
    if not out:
        raise RecorderError("no guitars given; use e.g. stratocaster,les_paul or all")
    return out


def family_table() -> str:
    """The family as a plain-text table (``guitarlab synth --list``)."""
    lines = [f"{'guitar':<17} {'pickup':<12} {'positions':<50} coils (L H, R kOhm, at mm)"]
    for name, row in FAMILY.items():
        coils = "; ".join(
            f"{pos} {p['kind']} {p['inductance_h']:g}/{p['resistance_ohm'] / 1e3:.1f}/{p['at_mm'][0]:g}"
            for pos, p in row["pickups"].items()
        )
        positions = ", ".join(
            f"[{p}]" if p == row["default_position"] else p for p in row["positions"]
        )
        lines.append(f"{name:<17} {row['pickup']:<12} {positions:<50} {coils}")
    lines.append("[position] = default; every take of --randomize draws one of the positions.")
    return "\n".join(lines)


# ---------------------------------------------------------------- randomization

KEY_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")

# option -> how a take draws it; the ranges cover what players, rooms and rigs do.
RANDOM_RANGES = {
    "pickup_position": "uniform over the guitar's positions",
    "tone_knob": "10 (50 %) or uniform 4-10",
    "volume_knob": "10 (50 %) or uniform 7-10",
    "cable_pf": "log-uniform 200-1000 pF",
    "pick_attack": "uniform 0-1",
    "pluck_position": "uniform 0.06-0.32 of the string from the bridge",
    "string_gauge": "uniform 9-12",
    "hum": "0 (25 %) or log-uniform 0.02-4 x a typical room",
    "humbucker_hum": "log-uniform 0.03-0.3 (a humbucker's residual)",
    "mains_hz": "50 or 60",
    "noise_floor_dbfs": "uniform -110 to -85 dBFS",
    "preamp_gain_db": "uniform -6 to +12 dB (hot and weak pickups overlap)",
    "dynamics_db": "uniform 2-12",
    "humanize_ms": "uniform 2-15",
    "pickup_place, pickup_width, pickup_winding": "with builds: log-uniform 0.8-1.25, "
    "0.75-1.33, 0.75-1.33 x the preset's (another instrument of the same model)",
    "bpm": "uniform 80-150 (per performance, shared by the guitars)",
    "key": "any of 12 (per performance, shared by the guitars)",
}


def _crc(text: str) -> int:
    return zlib.crc32(text.encode())


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def randomize_options(
    guitar: str, *, take: int, seed: int, salt: str = "", builds: bool = False
) -> dict:
    """The electronics, player and room of one take: a full options dict (see ``RANDOM_RANGES``).

    Depends only on (guitar, take, seed, salt, builds). The preamp gain is drawn over a
    range wider than the output differences between pickups, so loudness is no label
    either. With ``builds`` each take is also another instrument of the guitar's model
    (pickups placed, sized and wound differently), drawn apart from the rest, so the
    other draws stay those of the take without.
    """
    spec = _guitar(guitar)
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(take), _crc(guitar), _crc(salt)])
    positions = list(spec["positions"])
    position = positions[int(rng.integers(len(positions)))]
    options = {
        "pickup_position": position,
        "tone_knob": 10.0 if rng.random() < 0.5 else round(float(rng.uniform(4.0, 10.0)), 3),
        "volume_knob": 10.0 if rng.random() < 0.5 else round(float(rng.uniform(7.0, 10.0)), 3),
        "cable_pf": round(_log_uniform(rng, 200.0, 1000.0), 1),
        "pick_attack": round(float(rng.uniform(0.0, 1.0)), 3),
        "pluck_position": round(float(rng.uniform(0.06, 0.32)), 4),
        "string_gauge": round(float(rng.uniform(9.0, 12.0)), 2),
        "hum": 0.0 if rng.random() < 0.25 else round(_log_uniform(rng, 0.02, 4.0), 4),
        "humbucker_hum": round(_log_uniform(rng, 0.03, 0.3), 4),
        "mains_hz": float(rng.choice([50.0, 60.0])),
        "noise_floor_dbfs": round(float(rng.uniform(-110.0, -85.0)), 2),
        "preamp_gain_db": round(float(rng.uniform(-6.0, 12.0)), 2),
        "dynamics_db": round(float(rng.uniform(2.0, 12.0)), 2),
        "humanize_ms": round(float(rng.uniform(2.0, 15.0)), 2),
    }
    if builds:
        build = np.random.default_rng(
            [int(seed) & 0xFFFFFFFF, int(take), _crc(guitar), _crc(salt), _crc("build")]
        )
        options["pickup_place"] = round(_log_uniform(build, 0.8, 1.25), 4)
        options["pickup_width"] = round(_log_uniform(build, 0.75, 1.33), 4)
        options["pickup_winding"] = round(_log_uniform(build, 0.75, 1.33), 4)
    return resolve_options(guitar, options)


def randomize_performance(phrase: str, *, take: int, seed: int) -> tuple[float, str]:
    """Tempo and key of a performance: shared by every guitar that plays this take."""
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(take), _crc(phrase), _crc("bpm-key")])
    return round(float(rng.uniform(80.0, 150.0)), 1), KEY_NAMES[int(rng.integers(12))]


def randomize_take(
    guitar: str, phrase: str, *, take: int, seed: int, options: dict | None = None,
    builds: bool = False,
) -> tuple[dict, float, str]:  # fmt: skip
    """Options, bpm and key of a randomized take; ``options`` given here override the draws."""
    drawn = randomize_options(guitar, take=take, seed=seed, salt=phrase, builds=builds)
    bpm, key = randomize_performance(phrase, take=take, seed=seed)
    return resolve_options(guitar, {**drawn, **(options or {})}), bpm, key


# ---------------------------------------------------------------- rendering from the manifest


def render_params(params: str | dict) -> np.ndarray:
    """Render a take or a note file again from its ``synth_params`` (JSON text or dict).

    Examples
    --------
    >>> from guitarlab.synth.render import synth_params
    >>> p = synth_params("sg", "lead", take=1, seed=0, seconds=1.0, bpm=100.0, key="E",
    ...                  sample_rate=22050, options={"tone_knob": 6})
    >>> render_params(p).shape
    (22050,)
    """
    p = json.loads(params) if isinstance(params, str) else dict(params)
    if "events" in p:
        notes = [Note(**event) for event in p["events"]]
        return render_notes(
            p["guitar"], notes, seconds=p["seconds"], sample_rate=p["sample_rate"],
            options=p["options"], seed=p["noise_seed"],
        )  # fmt: skip
    return render_take(
        p["guitar"], p["phrase"], take=p["take"], seed=p["seed"], seconds=p["seconds"],
        bpm=p["bpm"], key=p["key"], sample_rate=p["sample_rate"], options=p["options"],
    )  # fmt: skip


# ---------------------------------------------------------------- single notes and chords

FRETS = tuple(range(13))
# a few open chords, frets from low E (string 6) to high e (string 1); None = not played
CHORDS: dict[str, tuple[int | None, ...]] = {
    "e_major": (0, 2, 2, 1, 0, 0),
    "a_minor": (None, 0, 2, 2, 1, 0),
    "c_major": (None, 3, 2, 0, 1, 0),
    "g_major": (3, 2, 0, 0, 0, 3),
    "d_major": (None, None, 0, 2, 3, 2),
}


def note_events(
    *, string: int | None = None, fret: int | None = None, chord: str | None = None,
    lead_in_s: float = 0.2, seconds: float = 3.0, velocity: float = 0.8,
    pluck_frac: float = 0.18, strum_ms: float = 12.0,
) -> list[dict]:  # fmt: skip
    """The plucks of one note file: a single ``string`` (1 = high e) and ``fret``, or a
    strummed ``chord`` (a key of ``CHORDS``). Each ``dict`` holds ``Note`` fields."""
    if chord is not None:
        if chord not in CHORDS:
            raise RecorderError(f"unknown chord {chord!r}; known: {', '.join(CHORDS)}")
        played = [(i, f) for i, f in enumerate(CHORDS[chord]) if f is not None]
        return [
            {
                "start_s": round(lead_in_s + k * strum_ms / 1000.0, 6),
                "dur_s": float(seconds),
                "string": i,
                "fret": f,
                "velocity": round(velocity * (1.0 - 0.04 * k), 4),
                "pluck_frac": pluck_frac,
            }
            for k, (i, f) in enumerate(played)
        ]
    if string not in range(1, 7) or fret not in range(0, 25):
        raise RecorderError(
            f"string={string}, fret={fret}: strings are 1 (high e) to 6 (low E), frets 0 to 24"
        )
    return [
        {
            "start_s": float(lead_in_s),
            "dur_s": float(seconds),
            "string": 6 - string,
            "fret": int(fret),
            "velocity": float(velocity),
            "pluck_frac": float(pluck_frac),
        }
    ]


def note_jobs(frets: tuple[int, ...], chords: bool) -> list[tuple[str, dict]]:
    jobs = [(f"note-s{s}-f{f:02d}", {"string": s, "fret": f}) for s in range(1, 7) for f in frets]
    if chords:
        jobs += [(f"chord-{name}", {"chord": name}) for name in CHORDS]
    return jobs


def note_params(
    guitar: str, name: str, where: dict, *, take: int, seed: int, seconds: float,
    lead_in_s: float, sample_rate: int, options: dict | None, randomize: bool,
    builds: bool = False,
) -> str:  # fmt: skip
    """``synth_params`` of one note file: options, the exact plucks and the noise seed."""
    if randomize:
        opts = resolve_options(
            guitar,
            {
                **randomize_options(guitar, take=take, seed=seed, salt=name, builds=builds),
                **(options or {}),
            },
        )
        rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(take), _crc(guitar + name)])
        velocity = round(float(rng.uniform(0.5, 1.1)), 3)
        lead_in_s = round(float(lead_in_s * rng.uniform(0.75, 1.5)), 4)
    else:
        opts = resolve_options(guitar, options)
        velocity = 0.8
    pluck = opts["pluck_position"] if opts["pluck_position"] is not None else 0.18
    events = note_events(
        **where, lead_in_s=lead_in_s, seconds=seconds, velocity=velocity, pluck_frac=pluck
    )
    base = json.loads(
        synth_params(
            guitar,
            "chord" if "chord" in where else "note",
            take=take,
            seed=seed,
            seconds=seconds,
            bpm=0.0,
            key="",
            sample_rate=sample_rate,
            options=opts,
            randomized=randomize,
        )  # fmt: skip
    )
    for unused in ("bpm", "key"):
        del base[unused]
    base.update(where)
    base["events"] = events
    base["noise_seed"] = _crc(f"{seed}/{take}/{guitar}/{name}")
    return json.dumps(base, sort_keys=True, separators=(",", ":"))


# ---------------------------------------------------------------- the family in one figure


def randomized_takes(
    *, guitars: list[str] | None = None, phrases: tuple[str, ...] = ("backing", "lead"),
    takes: int = 3, seconds: float = 8.0, seed: int = 0, sample_rate: int = SYNTH_RATE,
):  # fmt: skip
    """Yield ``(guitar, phrase, take, pickup, audio)`` for randomized takes of the family,
    rendered in memory (no corpus): what the family's figure and benchmarks measure."""
    for guitar in guitars or family_guitars():
        for phrase in phrases:
            for number in range(1, takes + 1):
                opts, bpm, key = randomize_take(guitar, phrase, take=number, seed=seed)
                audio = render_take(
                    guitar, phrase, take=number, seed=seed, seconds=seconds, bpm=bpm, key=key,
                    sample_rate=sample_rate, options=opts,
                )  # fmt: skip
                pickup = guitar_labels(guitar, opts["pickup_position"])["pickup"]
                yield guitar, phrase, number, pickup, audio


def family_spectra(
    *, takes: int = 3, seconds: float = 8.0, seed: int = 0, sample_rate: int = SYNTH_RATE,
    phrases: tuple[str, ...] = ("backing", "lead"), guitars: list[str] | None = None,
) -> dict[str, np.ndarray]:  # fmt: skip
    """Long-term average spectra (dB, per-take level removed) of randomized takes.

    Returns ``{"freqs_hz": (F,), "<pickup>": (takes, F) ...}`` grouped by pickup label.
    """
    from scipy import signal

    out: dict[str, list] = {}
    freqs = None
    for _, _, _, label, audio in randomized_takes(
        guitars=guitars, phrases=phrases, takes=takes, seconds=seconds, seed=seed,
        sample_rate=sample_rate,
    ):  # fmt: skip
        freqs, power = signal.welch(audio.astype(np.float64), fs=sample_rate, nperseg=4096)
        db = 10 * np.log10(power + 1e-20)
        db -= 10 * np.log10(np.mean(power) + 1e-20)
        out.setdefault(label, []).append(db)
    return {"freqs_hz": freqs, **{k: np.array(v) for k, v in out.items()}}


def plot_family(
    path: str | os.PathLike, *, spectra: dict[str, np.ndarray] | None = None, **kwargs
) -> Path:
    """Average spectrum per pickup type with its 10-90 % spread over randomized takes, and
    each guitar's pickup-circuit response at every position (knobs open). Writes a PNG."""
    plt = pyplot()
    spectra = spectra if spectra is not None else family_spectra(**kwargs)
    freqs = spectra["freqs_hz"]
    colors = {"single_coil": "tab:blue", "humbucker": "tab:red", "p90": "tab:green"}
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    keep = freqs > 30
    for label in PICKUP_TYPES:
        if label not in spectra:
            continue
        db = spectra[label][:, keep]
        lo, mid, hi = np.percentile(db, [10, 50, 90], axis=0)
        axes[0].semilogx(freqs[keep], mid, color=colors[label], label=f"{label} ({len(db)} takes)")
        axes[0].fill_between(freqs[keep], lo, hi, color=colors[label], alpha=0.18)
    axes[0].set(
        xlabel="frequency (Hz)", ylabel="power re. take mean (dB)",
        title="randomized family: median spectrum, 10-90 % band",
    )  # fmt: skip
    axes[0].legend(fontsize=8)
    grid = np.geomspace(100, 20000, 400)
    for guitar, row in FAMILY.items():
        for position in row["positions"]:
            gain = pickup_response(guitar, grid, options={"pickup_position": position})
            axes[1].semilogx(grid, 20 * np.log10(gain + 1e-12), color=colors[row["pickup"]],
                             lw=0.8, alpha=0.7)  # fmt: skip
    axes[1].set(
        xlabel="frequency (Hz)", ylabel="gain (dB)", ylim=(-40, 20),
        title="pickup circuits, every guitar and position (knobs open, 200 pF)",
    )  # fmt: skip
    for label in PICKUP_TYPES:
        axes[1].plot([], [], color=colors[label], label=label)
    axes[1].legend(fontsize=8)
    return save_figure(fig, path, dpi=90)


def humbucker_comb(
    guitar: str, position: str, *, string: int = 6, fret: int = 0, max_mode: float = 60.0
) -> tuple[np.ndarray, np.ndarray]:
    """Per-mode sensitivity of a position on a continuous mode axis (for plots and tests).

    Returns ``(mode_numbers, |weight|)`` for ``string`` (1 = high e) at ``fret``: the
    pickup's comb filter, whose notches sit where a mode has a node at a sensing point.
    """
    spec = GUITARS[guitar]
    length = spec["scale_mm"] * 2.0 ** (-fret / 12.0)
    n = np.linspace(0.05, max_mode, 4000)
    weights = sg.pickup_weights(spec, spec["positions"][position], 6 - string, length, n)
    return n, np.abs(weights)
