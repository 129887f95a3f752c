"""Audio files on disk: reading, atomic writing, checksums and the manifest's file columns.

Every stage reads and writes audio through these few functions so that errors name the
file and say what to do, and so that no half-written file ever appears under its name.
"""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

import numpy as np
import soundfile as sf

from guitarlab.corpus.atomic import atomic_path, finish_temp
from guitarlab.corpus.errors import AudioFileError
from guitarlab.corpus.levels import peak_dbfs, rms_dbfs

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
    refuse_nonfinite(audio, path)
    return audio, int(rate)


def refuse_nonfinite(audio: np.ndarray, source: str | os.PathLike) -> None:
    """One ``AudioFileError`` naming ``source`` when ``audio`` holds NaN or infinite samples.

    A float WAV can store them; every level, check and window computed from them would be
    NaN (read as "silent") or infinite (read as clipping), so no stage takes such a file.
    """
    finite = np.isfinite(audio)
    if finite.all():
        return
    bad = int(finite.size - np.count_nonzero(finite))
    by_frame = finite.reshape(finite.shape[0], -1).all(axis=1) if finite.ndim else finite.ravel()
    first = int(np.flatnonzero(~by_frame)[0])
    raise AudioFileError(
        f"{source}: {bad} sample(s) are NaN or infinite (the first at frame {first}), not "
        "audio; re-export the file from its source as PCM (16/24-bit) WAV"
    )


# Shorter than this is no take and no note: not even one analysis window of any stage.
MIN_AUDIO_S = 0.02


def refuse_too_short(frames: int, sample_rate: int, source: str | os.PathLike) -> None:
    """One ``AudioFileError`` naming ``source`` when it holds under ``MIN_AUDIO_S`` of audio."""
    if frames < MIN_AUDIO_S * sample_rate:
        raise AudioFileError(
            f"{source}: {frames} frame(s) ({1000.0 * frames / max(sample_rate, 1):.2f} ms) of "
            f"audio; guitarlab needs at least {1000 * MIN_AUDIO_S:.0f} ms "
            f"({int(np.ceil(MIN_AUDIO_S * sample_rate))} frames at {sample_rate} Hz): is it the "
            "right file?"
        )


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
    Files that get a manifest row go through ``manifest.commit_audio`` instead.
    """
    with atomic_path(path, suffix=".part" + Path(path).suffix) as tmp:
        write_audio_file(tmp, audio, sample_rate, subtype=subtype, dest=Path(path))
    return Path(path)


def write_audio_file(
    path: str | os.PathLike,
    audio: np.ndarray,
    sample_rate: int,
    *,
    subtype: str = DEFAULT_SUBTYPE,
    dest: Path | None = None,
) -> Path:
    """Write ``audio`` to ``path`` (a temp name), mode 0644 less the umask, fsynced.

    Errors (a full disk, a read-only folder) become one ``AudioFileError`` line naming
    ``dest`` (the final name) and the temp file is removed.
    """
    path, dest = Path(path), Path(dest or path)
    audio = np.asarray(audio, dtype=np.float32)
    if not np.all(np.isfinite(audio)):
        raise AudioFileError(f"{dest}: the audio holds NaN or infinite samples; nothing written")
    try:
        sf.write(str(path), audio, int(sample_rate), subtype=subtype, format=_format_for(dest))
        finish_temp(path)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        path.unlink(missing_ok=True)
        raise AudioFileError(f"{dest}: cannot write audio ({_write_reason(path, exc)})") from exc
    return path


def _write_reason(path: Path, exc: Exception) -> str:
    import errno
    import shutil

    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return "no space left on device: free some space and run this again"
    folder = path.parent
    try:
        if shutil.disk_usage(folder).free < 1 << 20:
            return "no space left on device: free some space and run this again"
    except OSError:
        pass
    if not os.access(folder, os.W_OK):
        return f"{folder} is read-only for you"
    return _reason(exc)


def wav_length_problem(path: str | os.PathLike) -> str | None:
    """Why a WAV's header disagrees with its data (a file cut off mid-data), or None.

    libsndfile quietly reads what is there, so this compares the ``data`` chunk's
    declared size with the bytes actually in the file.
    """
    import struct

    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            head = handle.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            block_align = 0
            while True:
                chunk = handle.read(8)
                if len(chunk) < 8:
                    return None
                name, length = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                start = handle.tell()
                if name == b"fmt ":
                    fmt = handle.read(min(length, 16))
                    if len(fmt) >= 14:
                        block_align = struct.unpack("<H", fmt[12:14])[0]
                elif name == b"data":
                    available = size - start
                    if length in (0, 0xFFFFFFFF) or length <= available or not block_align:
                        return None
                    return (
                        f"cut off: the header promises {length // block_align} frames but the "
                        f"file holds {available // block_align}; re-export or re-copy it"
                    )
                handle.seek(start + length + (length & 1))
    except OSError:
        return None


def _format_for(path: Path) -> str:
    suffix = path.suffix.lower()
    return {".wav": "WAV", ".flac": "FLAC", ".aif": "AIFF", ".aiff": "AIFF"}.get(suffix, "WAV")


def file_columns(path: str | os.PathLike) -> dict:
    """The manifest columns measured from a file: header, levels and checksum.

    A WAV cut off mid-data is refused (``AudioFileError``).
    """
    problem = wav_length_problem(path)
    if problem:
        raise AudioFileError(f"{path}: {problem}")
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


def mono_at_rate(
    audio: np.ndarray,
    sample_rate: int,
    *,
    target_rate: int,
    gain_db: float | None = None,
    source: str | os.PathLike = "",
) -> tuple[np.ndarray, list[str]]:
    """Mono float32 audio at ``target_rate``, and notes on what changed.

    Channels are averaged, ``gain_db`` (when given) is applied, then the signal is
    resampled with ``scipy.signal.resample_poly``. The first step of the one preprocessing
    path (:func:`guitarlab.datasets.windows.prepare`): dataset build, prediction and the
    recorder's test input all read audio through it. With ``source`` (the file's name)
    NaN or infinite samples are refused in one line naming it.

    Examples
    --------
    >>> mono, notes = mono_at_rate(np.ones((4, 2)), 8000, target_rate=8000)
    >>> mono.dtype, mono.shape, notes
    (dtype('float32'), (4,), ['2 channels mixed to mono'])
    >>> mono_at_rate(np.ones(441), 44100, target_rate=8000)[0].shape
    (80,)
    """
    audio = np.asarray(audio, dtype=np.float32)
    if source:  # a file read around read_audio (dataset build streams it) is checked here
        refuse_nonfinite(audio, source)
    notes: list[str] = []
    if audio.ndim == 2:
        if audio.shape[1] > 1:
            notes.append(f"{audio.shape[1]} channels mixed to mono")
            audio = audio.mean(axis=1, dtype=np.float32)
        else:
            audio = audio[:, 0]
    if gain_db is not None and np.isfinite(gain_db) and gain_db != 0:
        audio = audio * np.float32(10.0 ** (float(gain_db) / 20.0))
    rate, target = int(sample_rate), int(target_rate)
    if rate != target:
        if rate <= 0 or target <= 0:
            raise AudioFileError(f"cannot resample {rate} Hz -> {target} Hz; both must be positive")
        from scipy.signal import resample_poly

        g = math.gcd(rate, target)
        audio = resample_poly(audio, target // g, rate // g).astype(np.float32)
        notes.append(f"resampled {rate} Hz -> {target} Hz")
    return audio, notes


def check_facts(
    base: str, chunk: list[tuple[str, list[int]]], *, sha: bool = True
) -> list[tuple[str, list | str]]:
    """What ``manifest check`` reads of each ``(relative path, stat key)`` under ``base``:
    ``stat key + [rate, channels, frames, sha256 or None, cut-off problem or None]``, or
    the header error as text. Here, beside the readers it uses, so a worker process
    imports numpy and soundfile only (``corpus.audit`` runs it in ``--jobs`` processes)."""
    out: list[tuple[str, list | str]] = []
    for rel, key in chunk:
        full = os.path.join(base, rel)
        try:
            info = audio_info(full)
        except Exception as exc:  # noqa: BLE001 - reported as the row's problem
            out.append((rel, str(exc)))
            continue
        digest = sha256_file(full) if sha else None
        header = [int(info.samplerate), int(info.channels), int(info.frames)]
        out.append((rel, [*key, *header, digest, wav_length_problem(full)]))
    return out
