"""A real audio server on a machine without a sound card: PulseAudio with null sinks.

The tests and the demo record through the same sounddevice/PortAudio path a user's
interface takes. Two null sinks stand in for the hardware: ``guitarlab_in`` is what
the interface input hears (its monitor is the default capture source, and the ALSA
device ``guitarlab_in`` plays into it), ``guitarlab_out`` is the headphones (the default
output, where the click goes, so the click is never in a take). Everything lives in
one temporary folder (``HOME``, ``XDG_RUNTIME_DIR``, socket, config).

With ``loopback=True`` the default output plays into ``guitarlab_in`` instead, so what
is played comes back on the input (reamping without hardware); with ``through`` a small
process (``recorder/loopback.py``) carries the output's monitor into the input through a
tone chain, the amp in the loop. ``guitarlab audio-server`` starts it from the shell.

Examples
--------
>>> with audio_server() as server:            # doctest: +SKIP
...     row = record_take(corpus, ..., device="pulse", source_audio=guitar)
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from guitarlab.corpus.defaults import RECORD_RATE
from guitarlab.corpus.errors import RecorderError

SINK_IN = "guitarlab_in"
SINK_OUT = "guitarlab_out"
SOURCE_DEVICE_ENV = "GUITARLAB_SOURCE_DEVICE"
"""Environment variable naming the output device that stands in for the guitar cable."""

_ENV_KEYS = ("PULSE_SERVER", "HOME", "XDG_RUNTIME_DIR", "PULSE_CLIENTCONFIG", SOURCE_DEVICE_ENV)


@dataclass
class AudioServer:
    """A running PulseAudio server; ``env`` points clients (and subprocesses) at it."""

    folder: Path
    sink: str
    rate: int
    process: subprocess.Popen
    env: dict[str, str]
    source_device: str = SINK_IN
    loopback: bool = False
    through: subprocess.Popen | None = None
    _saved_env: dict[str, str | None] = field(default_factory=dict, repr=False)
    _owns_folder: bool = True

    @property
    def default_output(self) -> str:
        """The sink the default output plays into: the input itself with a plain loopback."""
        return SINK_IN if self.loopback and self.through is None else SINK_OUT

    def stop(self) -> None:
        """Stop the loop and the server, restore the environment and re-enumerate devices."""
        if self.through is not None:
            _stop_process(self.through)
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env = {}
        _reinit_portaudio()
        if self._owns_folder:
            shutil.rmtree(self.folder, ignore_errors=True)


def _stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _reinit_portaudio() -> None:
    from guitarlab.recorder import devices

    with contextlib.suppress(RecorderError):
        devices.reinitialize()


def _write_config(folder: Path, rate: int, *, default_sink: str = SINK_OUT) -> None:
    socket = folder / "native"
    (folder / "server.pa").write_text(
        f"load-module module-native-protocol-unix socket={socket} auth-anonymous=1\n"
        f"load-module module-null-sink sink_name={SINK_IN} rate={rate} channels=2 format=float32le\n"
        f"load-module module-null-sink sink_name={SINK_OUT} rate={rate} channels=2 format=float32le\n"
        f"set-default-sink {default_sink}\n"
        f"set-default-source {SINK_IN}.monitor\n"
    )
    (folder / "daemon.conf").write_text(
        f"default-sample-rate = {rate}\nexit-idle-time = -1\nflat-volumes = no\n"
    )
    (folder / "client.conf").write_text("autospawn = no\n")
    # ALSA's pulse plugin: a named device that plays into the "guitar" sink
    (folder / ".asoundrc").write_text(
        f"pcm.{SINK_IN} {{ type pulse; device {SINK_IN}; "
        f'hint {{ show on; description "guitarlab: into the test input" }} }}\n'
    )


def _server_answers(env: dict[str, str]) -> bool:
    try:
        done = subprocess.run(
            ["pactl", "info"], env=env, capture_output=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def start_audio_server(
    *,
    rate: int = RECORD_RATE,
    timeout_s: float = 10.0,
    loopback: bool = False,
    through: Sequence[str] | None = None,
) -> AudioServer:
    """Start PulseAudio with the two null sinks and point this process at it.

    ``loopback=True``: what is played to the default output comes back on the default
    input, as through a cable from the interface's output to its input. The default
    output then plays straight into ``guitarlab_in`` (one sink, one clock: the round
    trip is the clients' own buffering, constant within a stream, nothing added).
    ``through``: a command (argv) that plays what the output plays (its monitor,
    ``guitarlab_out.monitor``) into the input, the amp in the loop; it is started once
    the server answers, must print ``ready`` on its stdout when its stream runs, and is
    stopped with the server (``guitarlab.through.through_command`` builds one from a
    tone preset).

    Raises ``RecorderError`` when pulseaudio is not installed or does not answer, or
    the loop command does not start.
    """
    for tool in ("pulseaudio", "pactl"):
        if shutil.which(tool) is None:
            raise RecorderError(
                f"{tool} is not installed; install it with 'apt-get install pulseaudio pulseaudio-utils libasound2-plugins'"
            )
    folder = Path(tempfile.mkdtemp(prefix="guitarlab-pulse-"))
    loopback = loopback or through is not None
    _write_config(folder, rate, default_sink=SINK_IN if loopback and through is None else SINK_OUT)
    env = {
        "PULSE_SERVER": f"unix:{folder / 'native'}",
        "HOME": str(folder),
        "XDG_RUNTIME_DIR": str(folder),
        "PULSE_CLIENTCONFIG": str(folder / "client.conf"),
        SOURCE_DEVICE_ENV: SINK_IN,
    }
    full_env = {**os.environ, **env}
    log = open(folder / "server.log", "wb")  # noqa: SIM115 - kept open for the server's life
    command = [
        "pulseaudio",
        "-n",
        "--daemonize=no",
        "--system=no",
        "--exit-idle-time=-1",
        "--disallow-exit",
        "--realtime=no",
        "--high-priority=no",
        "--disable-shm",
        "--log-target=stderr",
        "-F",
        str(folder / "server.pa"),
    ]
    try:
        process = subprocess.Popen(
            command,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError as exc:
        log.close()
        shutil.rmtree(folder, ignore_errors=True)
        raise RecorderError(f"cannot start pulseaudio ({exc}); check the installation") from exc
    log.close()
    deadline = time.monotonic() + timeout_s
    while not _server_answers(full_env):
        if process.poll() is not None or time.monotonic() > deadline:
            if process.poll() is None:
                process.kill()
                process.wait()
            tail = (folder / "server.log").read_text(errors="replace").strip().splitlines()[-1:]
            shutil.rmtree(folder, ignore_errors=True)
            raise RecorderError(
                f"pulseaudio did not start ({tail[0] if tail else 'no answer'}); see 'pulseaudio -vv' for details"
            )
        time.sleep(0.05)
    server = AudioServer(
        folder=folder, sink=SINK_IN, rate=rate, process=process, env=env, loopback=loopback
    )
    if through is not None:
        try:
            server.through = _start_through(list(through), full_env, folder, timeout_s)
        except RecorderError:
            server.stop()
            raise
    server._saved_env = {key: os.environ.get(key) for key in _ENV_KEYS}
    os.environ.update(env)
    _reinit_portaudio()
    return server


def _start_through(
    command: list[str], env: dict[str, str], folder: Path, timeout_s: float
) -> subprocess.Popen:
    """Start the loop command and wait for its ``ready`` line (its stream is running)."""
    log = open(folder / "through.log", "wb")  # noqa: SIM115 - the child keeps its own copy
    try:
        process = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.PIPE,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError as exc:
        raise RecorderError(f"cannot start the loop {command[0]!r} ({exc})") from exc
    finally:
        log.close()
    assert process.stdout is not None
    deadline = time.monotonic() + max(timeout_s, 30.0)  # a cold start imports pedalboard
    line = b""
    while not line.endswith(b"\n") and time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.1)
        if ready:
            chunk = os.read(process.stdout.fileno(), 64)
            if not chunk:
                break
            line += chunk
    if line.strip() != b"ready":
        _stop_process(process)
        tail = (folder / "through.log").read_text(errors="replace").strip().splitlines()[-1:]
        raise RecorderError(
            f"the loop {' '.join(command[:4])!r} did not start ({tail[0] if tail else 'no ready line'})"
        )
    return process


@contextlib.contextmanager
def audio_server(
    rate: int = RECORD_RATE, *, loopback: bool = False, through: Sequence[str] | None = None
) -> Iterator[AudioServer]:
    """``with audio_server() as server:`` a PulseAudio null-sink server for the block's life.

    ``loopback`` and ``through`` as in :func:`start_audio_server`.
    """
    server = start_audio_server(rate=rate, loopback=loopback, through=through)
    try:
        yield server
    finally:
        server.stop()
