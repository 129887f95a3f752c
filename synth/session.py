"""A synthetic note library recorded the way a real one is: one guitar, a few pickup
settings, one session each.

The ``notes`` protocol draws cable, knobs and rig per file, which no real note library
does: a guitarist plugs one guitar into one interface, sets the knobs once per pickup
setting and plucks every string at every fret. This module renders that session
(``session-notes`` and ``session-strings`` in ``benchmarks.bench_model``):

- one instrument per seed (the superstrat, another build of it per seed: pickups placed,
  sized and wound a little differently), its humbuckers and their coil split;
- per session (the seed): the cable, the strings, the room (hum, mains) and the interface
  noise; per pickup setting: the tone and volume knobs and the interface gain;
- per note only the player: pick strength, pick hardness and position, a string a few
  cents out of tune, how long the note rings before it is damped, when it starts.

With ``matched`` (the hard variant) the settings share one resonance peak, one knob
setting and no hum, so that only the sensing geometry separates them.

Every file is one pluck (``seconds`` long, starting about ``lead_in_s`` in) with the
manifest columns ``string`` (1 = high e .. 6 = low E), ``fret``, ``setting`` and
``pickup`` (the label), and its ``synth_params`` render it again bit for bit.

Examples
--------
>>> plan = session_plan(seed=0, frets=(0, 7))
>>> len(plan), sorted({p["setting"] for p in plan})
(36, ['bridge-humbucker', 'bridge-split', 'neck-humbucker'])
"""

from __future__ import annotations

import json
import os
import zlib

import numpy as np

from guitarlab.corpus.defaults import SYNTH_RATE
from guitarlab.corpus.errors import RecorderError
from guitarlab.synth.family import FRETS, note_events, render_params
from guitarlab.synth.render import check_length, guitar_labels, resolve_options, synth_params
from guitarlab.synth.takes import unwritten, write_batched

__all__ = [
    "NOTE_RANGES",
    "SESSION_SETTINGS",
    "session_options",
    "session_plan",
    "session_to_corpus",
]

# setting name -> (guitar, switch position): the real library's three settings on an HH
# guitar with a push-pull coil split (the split leaves the bridge humbucker's screw coil).
SESSION_SETTINGS: dict[str, tuple[str, str]] = {
    "bridge-humbucker": ("superstrat", "bridge"),
    "neck-humbucker": ("superstrat", "neck"),
    "bridge-split": ("superstrat_split", "bridge"),
}
# what the player varies from note to note (drawn per file from the seed)
NOTE_RANGES = {
    "velocity": "uniform 0.5-1.1 (pick strength)",
    "pick_attack": "the session's pick (uniform 0.2-0.8) +- 0.15",
    "pluck_frac": "the player's habit (uniform 0.12-0.24 of the string) +- 0.03",
    "detune_cents": "normal, sd 4 cents, within +-10",
    "dur_s": "uniform 1.0-2.0 s of ringing before the string is damped",
    "lead_in_s": "the lead-in x uniform 0.8-1.3",
}


def _crc(text: str) -> int:
    return zlib.crc32(text.encode())


def _rng(seed: int, *salt: str) -> np.random.Generator:
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, *(_crc(s) for s in salt)])


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def session_options(seed: int, setting: str, *, matched: bool = False) -> dict:
    """The electronics of one pickup setting in the session of ``seed``: one options dict.

    Drawn once: what the session shares (the instrument's build, cable, strings, room,
    interface noise) from ``seed`` alone, the knobs and the interface gain from
    ``(seed, setting)``. Every note of the setting is recorded through exactly these.

    ``matched``: the hard variant. Every setting's resonance peak is put at one frequency
    (drawn per session, 1.8-2.4 kHz, through the cable capacitance: ``resonance_hz``),
    nothing hums, the knobs are open and the gain stays put for every setting, so only
    where and how the coils sense the string (the comb of sensing points, the magnetic
    window) tells the settings apart. It scores like the real note library of issue 28
    (MODEL.md, "A session's notes").
    """
    if setting not in SESSION_SETTINGS:
        raise RecorderError(
            f"unknown session setting {setting!r}; known: {', '.join(SESSION_SETTINGS)}"
        )
    guitar, position = SESSION_SETTINGS[setting]
    room = _rng(seed, "session")
    options = {
        "pickup_position": position,
        "cable_pf": round(_log_uniform(room, 200.0, 1000.0), 1),
        "string_gauge": round(float(room.uniform(9.0, 12.0)), 2),
        "hum": round(_log_uniform(room, 0.02, 1.0), 4),
        "humbucker_hum": round(_log_uniform(room, 0.03, 0.3), 4),
        "mains_hz": float(room.choice([50.0, 60.0])),
        "noise_floor_dbfs": round(float(room.uniform(-110.0, -90.0)), 2),
        "pickup_place": round(_log_uniform(room, 0.9, 1.1), 4),
        "pickup_width": round(_log_uniform(room, 0.85, 1.15), 4),
        "pickup_winding": round(_log_uniform(room, 0.85, 1.15), 4),
    }
    knobs = _rng(seed, "session", *(() if matched else (setting,)))
    options |= {
        "tone_knob": 10.0 if knobs.random() < 0.5 else round(float(knobs.uniform(6.0, 10.0)), 3),
        "volume_knob": 10.0 if knobs.random() < 0.5 else round(float(knobs.uniform(8.0, 10.0)), 3),
        "preamp_gain_db": round(float(knobs.uniform(-3.0, 9.0)), 2),
    }
    if matched:  # knobs open: a turned-down tone pot cannot peak that high on the bridge
        options |= {
            "hum": 0.0,
            "humbucker_hum": 0.0,
            "tone_knob": 10.0,
            "volume_knob": 10.0,
            "resonance_hz": round(float(_rng(seed, "resonance").uniform(1800.0, 2400.0)), 1),
        }
    return resolve_options(guitar, options)


def session_plan(
    *,
    seed: int = 0,
    settings: tuple[str, ...] | list[str] = tuple(SESSION_SETTINGS),
    frets: tuple[int, ...] | list[int] = FRETS,
    seconds: float = 2.0,
    lead_in_s: float = 0.2,
    sample_rate: int = SYNTH_RATE,
    matched: bool = False,
) -> list[dict]:
    """Every file of the session, in order: ``{"take", "setting", "guitar", "string",
    "fret", "params"}`` with ``params`` the file's ``synth_params`` (JSON text).

    Pure: no files, no audio; the same arguments give the same plan. ``matched``: see
    :func:`session_options`.
    """
    frets = tuple(int(f) for f in frets)
    if not frets or any(not 0 <= f <= 24 for f in frets):
        raise RecorderError(f"frets {list(frets)}: use frets 0 to 24")
    check_length(seconds, sample_rate)
    if not 0 <= lead_in_s < seconds / 2:
        raise RecorderError(f"lead_in_s={lead_in_s}: use 0 <= lead_in_s < seconds / 2")
    player = _rng(seed, "player")
    pick, habit = float(player.uniform(0.2, 0.8)), float(player.uniform(0.12, 0.24))
    plan = []
    for setting in settings:
        guitar, _ = SESSION_SETTINGS.get(setting, (None, None))
        options = session_options(seed, setting, matched=matched)
        for string in range(6, 0, -1):
            for fret in frets:
                name = f"s{string}-f{fret:02d}"
                rng = _rng(seed, "note", setting, name)
                opts = {
                    **options,
                    "pick_attack": round(float(np.clip(pick + rng.uniform(-0.15, 0.15), 0, 1)), 3),
                }
                event = note_events(
                    string=string,
                    fret=fret,
                    lead_in_s=round(lead_in_s * float(rng.uniform(0.8, 1.3)), 4),
                    seconds=round(float(rng.uniform(1.0, 2.0)), 3),
                    velocity=round(float(rng.uniform(0.5, 1.1)), 3),
                    pluck_frac=round(habit + float(rng.uniform(-0.03, 0.03)), 4),
                )
                event[0]["detune_cents"] = round(float(np.clip(rng.normal(0.0, 4.0), -10, 10)), 2)
                base = json.loads(
                    synth_params(
                        guitar,
                        "note",
                        take=1,
                        seed=seed,
                        seconds=seconds,
                        bpm=0.0,
                        key="",
                        sample_rate=sample_rate,
                        options=opts,
                    )  # fmt: skip
                )
                for unused in ("bpm", "key"):
                    del base[unused]
                base |= {
                    "session": setting,
                    "string": string,
                    "fret": fret,
                    "events": event,
                    "noise_seed": _crc(f"{seed}/session/{setting}/{name}"),
                }
                plan.append(
                    {
                        "take": f"session-{setting}-{name}",
                        "setting": setting,
                        "guitar": guitar,
                        "string": string,
                        "fret": fret,
                        "params": json.dumps(base, sort_keys=True, separators=(",", ":")),
                    }
                )
    return plan


def session_to_corpus(
    corpus: str | os.PathLike,
    *,
    seed: int = 0,
    settings: tuple[str, ...] | list[str] = tuple(SESSION_SETTINGS),
    frets: tuple[int, ...] | list[int] = FRETS,
    seconds: float = 2.0,
    lead_in_s: float = 0.2,
    sample_rate: int = SYNTH_RATE,
    matched: bool = False,
    progress: bool = True,
) -> list[str]:
    """Render the session of ``seed`` into ``corpus`` (234 files of 2 s by default; ``matched``:
    the hard variant of :func:`session_options`); returns the new ids. Files already there with the same parameters are kept (re-running adds
    nothing); the same ids with other parameters (another seed) are a one-line error.

    Examples
    --------
    >>> ids = session_to_corpus("session", seed=0, progress=False)  # doctest: +SKIP
    """
    from tqdm import tqdm

    from guitarlab.corpus.manifest import (
        RAW_TONE,
        init_corpus,
        reserve_takes,
        row_id,
    )

    plan = session_plan(
        seed=seed, settings=settings, frets=frets, seconds=seconds, lead_in_s=lead_in_s,
        sample_rate=sample_rate, matched=matched,
    )  # fmt: skip
    root = init_corpus(corpus)
    todo: list[tuple[str, dict]] = []

    def choose(taken):  # under the lock; reads the manifest only for ids already there
        files = [(row_id(item["take"], RAW_TONE), item["take"], item["params"]) for item in plan]
        new, rows = unwritten(taken, files, again=f"another seed? use a corpus other than {corpus}")
        todo.extend((files[i][0], plan[i]) for i in new)
        return rows

    reservation = reserve_takes(root, choose)
    files = (
        dict(
            rid=rid,
            take=item["take"],
            audio=render_params(item["params"]),
            guitar=item["guitar"],
            position=SESSION_SETTINGS[item["setting"]][1],
            phrase="note",
            params=item["params"],
            notes=f"synthetic session, {item['setting']}, string {item['string']} fret {item['fret']}",
            extra={
                "string": str(item["string"]),
                "fret": str(item["fret"]),
                "setting": item["setting"],
            },
        )  # fmt: skip
        for rid, item in tqdm(todo, desc="session notes", unit="file", disable=not progress)
    )
    added = write_batched(root, files, sample_rate=sample_rate, seed=seed)
    reservation.release()
    return added


def session_labels(setting: str) -> dict:
    """``{"guitar", "pickup"}`` of a setting (the label a model has to name)."""
    return guitar_labels(*SESSION_SETTINGS[setting])
