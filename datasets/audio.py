"""Audio files on disk: reading, atomic writing, checksums and the manifest's file columns.

Every stage reads and writes audio through these few functions so that errors name the
file and say what to do, and so that no half-written file ever appears under its name.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import soundfile as sf

from guitarlab.atomic import atomic_path
from guitarlab.errors import AudioFileError
from guitarlab.recorder.levels import peak_dbfs, rms_dbfs

AUDIO_SUFFIXES = (".wav", ".flac", ".aif", ".aiff")
DEFAULT_SUBTYPE = "PCM_24"


def read_audio(path: str | os.PathLike, *, always_2d: bool = False) -> tuple[np.ndarray, int]:
    """Read a whole file as float32 in [-1, 1]: ``(frames,)`` for mono, else ``(frames, channels)``."""
    try:
        audio, rate = sf.read(str(path), dtype="float32", always_2d=always_2d)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioFileError(
            f"{path}: cannot read audio ({_reason(exc)}); check the file or re-export it"
        ) from exc
    return audio, int(rate)


def audio_info(path: str | os.PathLike) -> sf._SoundFileInfo:
    """The header of an audio file (rate, channels, frames, subtype) without reading samples."""
    try:
        return sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioFileError(
            f"{path}: cannot read audio header ({_reason(exc)}); check the file or re-export it"
        ) from exc


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.replace(str(getattr(exc, "filename", "")), "").strip(" :") or text


def sha256_file(path: str | os.PathLike, *, chunk_bytes: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, streamed."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def write_audio_atomic(
    path: str | os.PathLike,
    audio: np.ndarray,
    sample_rate: int,
    *,
    subtype: str = DEFAULT_SUBTYPE,
) -> Path:
    """Write ``audio`` to ``path`` through a temp file in the same folder, fsync, rename.

    A reader (or a crash) sees either no file or the whole file, never a partial one.
    """
    with atomic_path(path, suffix=".part" + Path(path).suffix) as tmp:
        sf.write(
            str(tmp),
            np.asarray(audio, dtype=np.float32),
            int(sample_rate),
            subtype=subtype,
            format=_format_for(Path(path)),
        )
    return Path(path)


def _format_for(path: Path) -> str:
    suffix = path.suffix.lower()
    return {".wav": "WAV", ".flac": "FLAC", ".aif": "AIFF", ".aiff": "AIFF"}.get(suffix, "WAV")


def file_columns(path: str | os.PathLike) -> dict:
    """The manifest columns measured from a file: header, levels and checksum."""
    info = audio_info(path)
    audio, _ = read_audio(path)
    return {
        "sample_rate": int(info.samplerate),
        "channels": int(info.channels),
        "frames": int(info.frames),
        "subtype": str(info.subtype),
        "peak_dbfs": round(peak_dbfs(audio), 3),
        "rms_dbfs": round(rms_dbfs(audio), 3),
        "sha256": sha256_file(path),
    }
