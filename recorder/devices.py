"""Audio devices through PortAudio: the only module that imports sounddevice.

Everything else in the recorder talks to devices through these few functions, so a
missing PortAudio library, an unknown device or an unsupported rate becomes one
``RecorderError`` line that names the value and lists what would work.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from guitarlab.corpus.errors import RecorderError

try:  # PortAudio missing is a user-fixable problem, not an import crash of the package
    import sounddevice as sd
except OSError as _exc:  # pragma: no cover - depends on the system library
    sd = None
    _IMPORT_ERROR = str(_exc)
else:
    _IMPORT_ERROR = ""


OUTPUT_LATENCY_S = 0.25
"""Output buffer for the click and the played source: safe on busy machines (0.1 s
underran with a load of 5 on 2 cores), and a constant click delay does not matter."""


@dataclass(frozen=True)
class DeviceInfo:
    """One PortAudio device, as ``guitarlab devices`` lists it."""

    index: int
    name: str
    hostapi: str
    max_input_channels: int
    max_output_channels: int
    default_samplerate: float


def _sd():
    if sd is None:
        raise RecorderError(
            f"PortAudio is not available ({_IMPORT_ERROR}); install it, e.g. 'apt-get install libportaudio2'"
        )
    return sd


def reinitialize() -> None:
    """Re-enumerate devices (PortAudio lists them once, at import or after this call).

    Needed after starting an audio server or plugging in an interface.
    """
    lib = _sd()
    lib._terminate()
    lib._initialize()


def list_devices() -> list[DeviceInfo]:
    """All devices PortAudio sees, inputs and outputs."""
    lib = _sd()
    hostapis = lib.query_hostapis()
    return [
        DeviceInfo(
            index=int(d["index"]),
            name=str(d["name"]),
            hostapi=str(hostapis[d["hostapi"]]["name"]),
            max_input_channels=int(d["max_input_channels"]),
            max_output_channels=int(d["max_output_channels"]),
            default_samplerate=float(d["default_samplerate"]),
        )
        for d in lib.query_devices()
    ]


def _names(devices: list[DeviceInfo], kind: str) -> str:
    key = "max_input_channels" if kind == "input" else "max_output_channels"
    names = [f"{d.index}:{d.name}" for d in devices if getattr(d, key) > 0]
    return ", ".join(names) or "none"


def resolve_device(device: str | int | None, *, kind: str = "input") -> DeviceInfo:
    """The device named (exact name first, then a unique substring) or numbered, or the default.

    Raises ``RecorderError`` naming the known devices when there is no match.
    """
    lib = _sd()
    devices = list_devices()
    if not devices:
        raise RecorderError("no audio devices found; connect an interface or start an audio server")
    key = "max_input_channels" if kind == "input" else "max_output_channels"
    if device is None or device == "":
        default = lib.default.device[0 if kind == "input" else 1]
        if default is None or default < 0:
            candidates = [d for d in devices if getattr(d, key) > 0]
            if not candidates:
                raise RecorderError(f"no {kind} device found; connect an interface")
            return candidates[0]
        return devices[int(default)]
    if isinstance(device, int) or str(device).isdigit():
        number = int(device)
        if not 0 <= number < len(devices):
            raise RecorderError(
                f"no {kind} device number {number}; known: {_names(devices, kind)} (see 'guitarlab devices')"
            )
        found = devices[number]
    else:
        exact = [d for d in devices if d.name == device]
        partial = [d for d in devices if str(device).lower() in d.name.lower()]
        matches = exact or partial
        if len(matches) != 1:
            reason = "is ambiguous" if matches else "not found"
            raise RecorderError(
                f"{kind} device {device!r} {reason}; known: {_names(devices, kind)} (see 'guitarlab devices')"
            )
        found = matches[0]
    if getattr(found, key) < 1:
        raise RecorderError(
            f"device {found.name!r} has no {kind} channels; pick one of: {_names(devices, kind)}"
        )
    return found


def check_settings(device: DeviceInfo, *, kind: str, sample_rate: int, channels: int) -> None:
    """Refuse a rate or channel count the device does not support, in one line."""
    lib = _sd()
    limit = device.max_input_channels if kind == "input" else device.max_output_channels
    if not 1 <= channels <= limit:
        raise RecorderError(
            f"device {device.name!r} has {limit} {kind} channel(s); channel {channels} is not available (use --channel 1..{limit})"
        )
    checker = lib.check_input_settings if kind == "input" else lib.check_output_settings

    def refusal(rate: int) -> str:
        try:
            with quiet_c_stderr():
                checker(device=device.index, samplerate=rate, channels=channels, dtype="float32")
        except Exception as exc:  # PortAudioError or ValueError, both mean "not supported"
            return " ".join(str(exc).split()) or type(exc).__name__
        return ""

    reason = refusal(int(sample_rate))
    if not reason:
        return
    default_rate = int(device.default_samplerate)
    if default_rate != int(sample_rate) and not refusal(default_rate):
        raise RecorderError(
            f"device {device.name!r} does not support {sample_rate} Hz with {channels} {kind} channel(s) ({reason}); try --rate {default_rate}"
        )
    verb = "record from" if kind == "input" else "play to"
    raise RecorderError(
        f"cannot {verb} device {device.name!r} at any rate tried ({sample_rate} or {default_rate} Hz, {channels} channel(s)): {reason}; pick another {kind} from 'guitarlab devices' and try it with 'guitarlab devices --test'"
    )


QUIET_ENV = "GUITARLAB_AUDIO_DEBUG"
"""Set to 1 to see ALSA's and PortAudio's own messages again."""


@contextlib.contextmanager
def quiet_c_stderr():
    """Send file descriptor 2 to /dev/null for the block; Python's ``sys.stderr`` still shows.

    ALSA and PortAudio print their own lines ("ALSA lib pcm_pulse.c ...", "Expression
    '...' failed in pa_linux_alsa.c") straight to the process's stderr when a device
    refuses a setting or goes away; the ``RecorderError`` already says it in one line.
    Python's ``sys.stderr`` (the meter, warnings, thread tracebacks) is moved to a copy
    of the real stderr meanwhile. ``GUITARLAB_AUDIO_DEBUG=1`` keeps everything.
    """
    if os.environ.get(QUIET_ENV, "") not in ("", "0"):
        yield
        return
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    try:
        saved = os.dup(2)
        null = os.open(os.devnull, os.O_WRONLY)
    except OSError:  # pragma: no cover - no fd 2 to silence
        yield
        return
    python_stderr, swapped = sys.stderr, None
    with contextlib.suppress(Exception):
        if python_stderr.fileno() == 2:
            swapped = open(  # noqa: SIM115 - closed below, after the block
                saved,
                "w",
                buffering=1,
                encoding=python_stderr.encoding,
                errors="backslashreplace",
                closefd=False,
            )
            sys.stderr = swapped
    os.dup2(null, 2)
    try:
        yield
    finally:
        if swapped is not None:
            with contextlib.suppress(Exception):
                swapped.flush()
        os.dup2(saved, 2)
        if swapped is not None:
            sys.stderr = python_stderr
            with contextlib.suppress(Exception):
                swapped.close()
        os.close(saved)
        os.close(null)


def open_input(
    device: DeviceInfo,
    *,
    sample_rate: int,
    channels: int,
    callback: Callable,
    block_frames: int = 1024,
):
    """An unstarted ``sounddevice.InputStream`` delivering float32 blocks to ``callback``.

    ``callback(indata, frames, time, status)`` gets ``status.input_overflow``.
    """
    lib = _sd()
    try:
        return lib.InputStream(
            device=device.index,
            samplerate=sample_rate,
            channels=channels,
            dtype="float32",
            blocksize=block_frames,
            latency="high",
            callback=callback,
        )
    except Exception as exc:
        raise RecorderError(
            f"cannot open input {device.name!r} at {sample_rate} Hz ({' '.join(str(exc).split())}); check the device and 'guitarlab devices'"
        ) from exc


def open_output(
    device: DeviceInfo,
    *,
    sample_rate: int,
    channels: int,
    callback: Callable,
    block_frames: int = 1024,
):
    """An unstarted ``sounddevice.OutputStream`` pulling float32 blocks from ``callback``."""
    lib = _sd()
    try:
        return lib.OutputStream(
            device=device.index,
            samplerate=sample_rate,
            channels=channels,
            dtype="float32",
            blocksize=block_frames,
            # "high" is ~46 ms on ALSA's pulse plugin, which underruns without end at 44.1 kHz
            latency=OUTPUT_LATENCY_S,
            callback=callback,
        )
    except Exception as exc:
        raise RecorderError(
            f"cannot open output {device.name!r} at {sample_rate} Hz ({' '.join(str(exc).split())}); check the device and 'guitarlab devices'"
        ) from exc


def stream_running(stream) -> bool:
    """False once PortAudio has stopped a started stream on its own (its device went away)."""
    try:
        return bool(stream.active)
    except Exception:  # a closed or broken stream is not running
        return False


def stop_streams(streams: list, *, timeout_s: float = 1.0) -> bool:
    """Stop and close streams at once, never raising and never hanging; False if one hung.

    PortAudio's stop waits for the device, and a device that stopped delivering (unplugged,
    a suspended server) may never answer: each stop runs in a helper thread, and a stream
    still stopping after ``timeout_s`` is aborted and left behind.
    """

    def stop_and_close(stream) -> None:
        with contextlib.suppress(Exception):
            stream.stop()
        with contextlib.suppress(Exception):
            stream.close()

    def abort(stream) -> None:
        with contextlib.suppress(Exception):
            stream.abort()

    helpers = _in_threads(stop_and_close, [s for s in streams if s is not None], timeout_s)
    hung = [stream for stream, helper in helpers if helper.is_alive()]
    if hung:
        _in_threads(abort, hung, timeout_s)
    return not any(helper.is_alive() for _, helper in helpers)


def _in_threads(function: Callable, streams: list, timeout_s: float) -> list:
    helpers = [
        (stream, threading.Thread(target=function, args=(stream,), daemon=True))
        for stream in streams
    ]
    for _, helper in helpers:
        helper.start()
    deadline = time.monotonic() + timeout_s
    for _, helper in helpers:
        helper.join(max(0.0, deadline - time.monotonic()))
    return helpers


def play_and_record(
    audio: np.ndarray,
    sample_rate: int,
    *,
    input_device: DeviceInfo,
    output_device: DeviceInfo,
    tail_s: float = 0.5,
    channel: int = 1,
    latency_s: float | None = None,
) -> np.ndarray:
    """Play mono ``audio`` on one device while recording another; returns the mono recording.

    Used by ``guitarlab devices --test`` to show that the path from output to input works,
    and by ``guitarlab reamp`` (input ``channel``; ``latency_s`` buffers, so a busy machine
    does not underrun: an underrun would shift the return against what was played).
    """
    lib = _sd()
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    padded = np.concatenate([audio, np.zeros(int(tail_s * sample_rate), np.float32)])
    try:
        recording = lib.playrec(
            padded.reshape(-1, 1),
            samplerate=sample_rate,
            input_mapping=[int(channel)],
            dtype="float32",
            device=(input_device.index, output_device.index),
            blocking=True,
            **({"latency": latency_s} if latency_s else {}),
        )
    except Exception as exc:
        raise RecorderError(
            f"cannot play on {output_device.name!r} and record {input_device.name!r} ({' '.join(str(exc).split())})"
        ) from exc
    return np.asarray(recording, dtype=np.float32).reshape(-1)
