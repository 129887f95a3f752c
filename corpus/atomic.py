"""Atomic file writes: a reader (or a crash) sees the old file or the whole new one.

Every stage writes its files (audio, manifest, JSON sidecars, run state) through
:func:`atomic_path`: a temp file in the same folder, fsync, rename over the target.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str = ".part") -> Iterator[Path]:
    """Yield a temp path beside ``path``; on success fsync it and rename it to ``path``.

    On any error the temp file is removed and ``path`` is left as it was.

    Examples
    --------
    >>> with atomic_path("notes.txt") as tmp:        # doctest: +SKIP
    ...     tmp.write_text("hello")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        finish_temp(tmp)
        os.replace(tmp, path)
        _fsync_folder(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike, *, suffix: str = ".part") -> Iterator[Path]:
    """Yield a temp folder beside ``path``; on success it replaces ``path`` (folder or file).

    On any error the temp folder is removed and ``path`` is left as it was. Dataset
    folders and exports are written this way, so a kill never leaves half of one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with sigterm_as_exit():  # before the temp folder exists, so no SIGTERM can strand it
        work = aside = None  # aside: the old folder, moved there first, so no kill loses both
        try:
            with _sigterm_held():  # a SIGTERM now arrives once ``work`` is known, to clean up
                work = Path(
                    tempfile.mkdtemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
                )
                os.chmod(work, folder_mode())  # mkdtemp makes 0700; the result is a normal folder
            yield work
            if path.exists() or path.is_symlink():
                aside = Path(
                    tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent)
                )
                os.replace(path, aside / path.name)
            os.replace(work, path)
            if aside is not None:
                shutil.rmtree(aside, ignore_errors=True)
        except BaseException:
            old = aside / path.name if aside is not None else None
            if old is not None and (old.exists() or old.is_symlink()) and not path.exists():
                os.replace(old, path)  # put the old folder back
            if work is not None:
                shutil.rmtree(work, ignore_errors=True)
            if aside is not None:
                shutil.rmtree(aside, ignore_errors=True)
            raise


@contextlib.contextmanager
def _sigterm_held() -> Iterator[None]:
    """Hold back SIGTERM while inside (delivered on leaving), where the platform can."""
    mask = getattr(signal, "pthread_sigmask", None)
    if mask is None:
        yield
        return
    mask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        yield
    finally:
        mask(signal.SIG_UNBLOCK, {signal.SIGTERM})


@contextlib.contextmanager
def sigterm_as_exit() -> Iterator[None]:
    """While inside, SIGTERM raises ``SystemExit(143)`` instead of killing the process.

    Why: a plain SIGTERM ends Python without running ``except``/``finally``, so a temp
    folder (``.ds.*.building``) stays behind; raised as an exception it is cleaned up as
    after Ctrl-C. Only in the main thread, and only where SIGTERM has its default action
    (a handler someone else installed, or an ignored SIGTERM, is left alone).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous is not signal.SIG_DFL:
        yield
        return

    def _raise(signum: int, _frame) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


_UMASK_LOCK = threading.Lock()


def file_mode() -> int:
    """The mode a plain ``open()`` would give a new file: ``0o666`` less the umask (0644)."""
    return 0o666 & ~_umask()


def folder_mode() -> int:
    """The mode a plain ``mkdir`` would give a new folder: ``0o777`` less the umask (0755)."""
    return 0o777 & ~_umask()


def _umask() -> int:
    """The process's umask, read without changing it where the platform tells it."""
    try:  # Linux tells the umask without changing it
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _UMASK_LOCK:
        umask = os.umask(0o022)
        os.umask(umask)
    return umask


def finish_temp(tmp: str | os.PathLike) -> None:
    """Give a temp file the mode of a normal new file (mkstemp makes it 0600) and fsync it."""
    os.chmod(tmp, file_mode())
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())


def temp_name(path: str | os.PathLike) -> Path:
    """A fresh hidden temp name beside ``path``: ``.NAME.<pid>-<random>.part<suffix>``."""
    path = Path(path)
    token = f"{os.getpid()}-{os.urandom(3).hex()}"
    return path.with_name(f".{path.stem}.{token}.part{path.suffix}")


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (a power cut after it keeps the new name)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some filesystems do not open folders; the rename still happened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Replace ``path`` with ``text`` (UTF-8) atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)
