"""Shared fixtures: small real WAV files and corpora, written to tmp_path."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SERVER_RATE = 48000


def audio_server_or_skip(rate: int = SERVER_RATE, **options):
    """Start a real PulseAudio server; skip when it cannot start here, but fail in CI.

    ``options`` go to ``start_audio_server`` (``loopback=True``, ``through=[...]``)."""
    from guitarlab.corpus.errors import RecorderError
    from guitarlab.recorder.server import start_audio_server

    try:
        return start_audio_server(rate=rate, **options)
    except RecorderError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"audio server must start in CI: {exc}")
        pytest.skip(f"no audio server on this machine: {exc}")


@pytest.fixture(scope="module")
def server():
    """A PulseAudio null-sink server for one test module (see recorder/server.py)."""
    started = audio_server_or_skip()
    yield started
    started.stop()


def write_tone(
    path: Path,
    *,
    seconds: float = 0.5,
    rate: int = 44100,
    freq_hz: float = 220.0,
    amplitude: float = 0.25,
    channels: int = 1,
    subtype: str = "PCM_24",
) -> Path:
    """A sine with a little noise, written as a real audio file."""
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(int(freq_hz * 1000) % 2**32)
    audio = amplitude * np.sin(2 * np.pi * freq_hz * t) + 0.001 * rng.standard_normal(t.size)
    if channels > 1:
        audio = np.stack([audio] * channels, axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio.astype(np.float32), rate, subtype=subtype)
    return path


@pytest.fixture
def post_folder(tmp_path: Path) -> Path:
    """The post's 16 file names (ST/LP x backing/lead x raw/clean/crunch/distorted), short sines."""
    folder = tmp_path / "post-wavs"
    for gi, guitar in enumerate(("ST", "LP")):
        for pi, phrase in enumerate(("backing", "lead")):
            for ti, tone in enumerate(("raw", "clean", "crunch", "distorted")):
                write_tone(
                    folder / f"{guitar}_{phrase}_{tone}.wav",
                    freq_hz=110.0 * (1 + gi) + 10 * pi + ti,
                    amplitude=0.1 + 0.05 * ti,
                )
    return folder


def two_raw_takes(folder: Path) -> Path:
    """A Stratocaster (mono) and a Les Paul (stereo) lead take, 0.4 s each, to render."""
    write_tone(folder / "stratocaster-lead-raw.wav", seconds=0.4, freq_hz=330.0)
    write_tone(folder / "les_paul-lead-raw.wav", seconds=0.4, freq_hz=196.0, channels=2)
    return folder


def import_raw_takes(raw_folder: Path, root: Path) -> Path:
    """The files of ``two_raw_takes`` imported as raw takes into a corpus at ``root``."""
    from guitarlab.corpus.intake import import_folder

    import_folder(raw_folder, root, pattern="{guitar}-{phrase}-{tone}", progress=False)
    return root


def post_corpus(
    root: Path,
    *,
    guitars=("ST", "LP"),
    phrases=("backing",),
    tones=("raw", "clean", "crunch"),
    seconds: float = 3.0,
) -> Path:
    """Post-named sines (``ST_backing_raw.wav``...) imported into a corpus at ``root``:
    one take per guitar and phrase, each in every tone."""
    from guitarlab.corpus.intake import import_folder

    src = root.parent / f"{root.name}-src"
    for gi, guitar in enumerate(guitars):
        for pi, phrase in enumerate(phrases):
            for ti, tone in enumerate(tones):
                write_tone(
                    src / f"{guitar}_{phrase}_{tone}.wav",
                    seconds=seconds,
                    freq_hz=110.0 * (1 + gi) + 10 * pi + 3 * ti,
                    amplitude=0.1 + 0.05 * ti,
                )
    import_folder(src, root, progress=False)
    return root
