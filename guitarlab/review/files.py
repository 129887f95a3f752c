"""Files the review app serves: opened once, checked after opening, served from that fd.

A manifest row's path is resolved and refused when it leaves the corpus, but a check by
name followed by an open by name lets a symlink swapped in between be followed (someone
who can write into the corpus could have ``/etc/passwd`` served). So :func:`open_inside`
opens the file once (``O_NOFOLLOW`` on the resolved name) and checks *what was opened*:
a regular file whose real path (``/proc/self/fd``, where the system has it) lies inside
the corpus and whose identity (device, inode) is the file the corpus's path names now.
Everything after that reads the descriptor: :class:`FdResponse` streams it with HTTP
Range requests, :func:`read_opened` decodes it for pictures.
"""

from __future__ import annotations

import hashlib
import os
import stat
from email.utils import formatdate
from pathlib import Path

import anyio
import numpy as np
from starlette.datastructures import Headers
from starlette.responses import Response

from guitarlab.corpus.errors import AudioFileError, GuitarlabError, ManifestError
from guitarlab.corpus.manifest import resolve_audio_path

CHUNK = 64 * 1024


class Forbidden(GuitarlabError):
    """A request for a file the corpus may not serve (a path outside it)."""


class NotFound(GuitarlabError):
    """Something the request names does not exist (a missing file, no ``--run``)."""


class RangeNotSatisfiable(GuitarlabError):
    """A Range header that starts at or past the end of the file (answered 416)."""


def _real_path(fd: int) -> Path | None:
    """Where the kernel says ``fd`` is (Linux's ``/proc/self/fd``), or None elsewhere."""
    try:
        return Path(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:
        return None


def open_inside(root: str | os.PathLike, rel: str, *, row: str = "") -> int:
    """An fd of the corpus file ``rel``, checked after it was opened; the caller closes it.

    Refused (``Forbidden``) when the path, or the file actually opened, lies outside the
    corpus, is a symlink at open time, or is not a regular file; ``NotFound`` when missing.
    Why after opening: only the descriptor cannot change between the check and the read.
    """
    where = f"row {row}: " if row else ""
    outside = Forbidden(f"{where}path {rel!r} is outside the corpus; not served")
    try:
        full = resolve_audio_path(root, rel, follow_links=True)
    except (ManifestError, OSError):  # OSError: a link swapped while it was resolved
        raise outside from None
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_NONBLOCK", 0)  # a FIFO swapped in must not hang the server
    try:
        fd = os.open(full, flags)
    except FileNotFoundError:
        raise NotFound(f"{where}file {rel} is missing") from None
    except OSError:  # ELOOP: a symlink swapped in after the name was resolved
        raise outside from None
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):
            raise outside
        inside = Path(root).resolve()
        real = _real_path(fd)
        if real is not None and not real.is_relative_to(inside):
            raise outside
        try:  # the name, resolved again now, must still lead inside to this very file
            now = resolve_audio_path(root, rel, follow_links=True)
            same = os.stat(now)
        except (ManifestError, OSError):
            raise outside from None
        if (same.st_dev, same.st_ino) != (opened.st_dev, opened.st_ino):
            raise outside
    except BaseException:
        os.close(fd)
        raise
    return fd


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The ``[start, end)`` bytes one ``Range: bytes=...`` asks of ``size``, else None (all).

    None for no header, another unit, several ranges or a malformed one (RFC 9110 lets a
    server ignore those and answer 200 with the whole file); ``RangeNotSatisfiable`` when
    the range starts at or past the end.

    Examples
    --------
    >>> byte_range("bytes=100-1099", 5000), byte_range("bytes=-10", 5000)
    ((100, 1100), (4990, 5000))
    >>> byte_range("bytes=4000-", 5000), byte_range("bytes=0-99999", 5000)
    ((4000, 5000), (0, 5000))
    >>> byte_range("bytes=1-2,5-6", 5000) is None, byte_range("lines=1-2", 5000) is None
    (True, True)
    """
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    first, last = first.strip(), last.strip()
    if not dash or not (first.isdigit() or last.isdigit()):
        return None
    if (first and not first.isdigit()) or (last and not last.isdigit()):
        return None
    if not first:  # the last N bytes
        count = int(last)
        if count == 0 or size == 0:
            raise RangeNotSatisfiable(f"bytes */{size}")
        return max(size - count, 0), size
    start = int(first)
    end = min(int(last) + 1, size) if last else size
    if start >= size:
        raise RangeNotSatisfiable(f"bytes */{size}")
    if end <= start:
        return None
    return start, end


class FdResponse(Response):
    """An open file's bytes, with ``Range`` (206) and ``If-Range``; closes the fd when done.

    Streams with ``os.pread`` from the descriptor :func:`open_inside` checked, never
    reopening by name; answers HEAD with the headers only.
    """

    def __init__(self, fd: int, *, media_type: str, headers: dict | None = None) -> None:
        self.fd = fd
        self.status_code = 200
        self.media_type = media_type
        self.background = None
        self.init_headers(headers)
        info = os.fstat(fd)
        self.size = info.st_size
        modified = formatdate(info.st_mtime, usegmt=True)
        tag = hashlib.md5(f"{info.st_mtime}-{info.st_size}".encode(), usedforsecurity=False)
        self.headers.setdefault("accept-ranges", "bytes")
        self.headers.setdefault("last-modified", modified)
        self.headers.setdefault("etag", f'"{tag.hexdigest()}"')
        self.headers["content-length"] = str(self.size)

    def __del__(self) -> None:  # a response built but never sent still frees its fd
        self.close()

    def close(self) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)

    def _wanted(self, scope) -> tuple[int, int] | None:
        request = Headers(scope=scope)
        if_range = request.get("if-range")
        if if_range is not None and if_range not in (
            self.headers["etag"],
            self.headers["last-modified"],
        ):
            return None  # the file changed since the client's first part: send it all
        return byte_range(request.get("range"), self.size)

    async def __call__(self, scope, receive, send) -> None:
        try:
            try:
                wanted = self._wanted(scope)
            except RangeNotSatisfiable as exc:
                refused = Response(status_code=416, headers={"content-range": str(exc)})
                return await refused(scope, receive, send)
            start, end = wanted or (0, self.size)
            headers = dict(self.headers)
            status = 200
            if wanted is not None:
                status = 206
                headers["content-range"] = f"bytes {start}-{end - 1}/{self.size}"
                headers["content-length"] = str(end - start)
            raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
            await send({"type": "http.response.start", "status": status, "headers": raw})
            if scope.get("method", "GET").upper() == "HEAD":
                return await send({"type": "http.response.body", "body": b""})
            more = True
            while more and start < end:
                chunk = await anyio.to_thread.run_sync(
                    os.pread, self.fd, min(CHUNK, end - start), start
                )
                start += len(chunk)
                more = bool(chunk) and start < end  # empty: the file shrank, end short
                await send({"type": "http.response.body", "body": chunk, "more_body": more})
            if more:  # nothing was sent (an empty file)
                await send({"type": "http.response.body", "body": b""})
        finally:
            self.close()


def read_opened(fd: int, *, name: str) -> tuple[np.ndarray, int]:
    """Decode the audio of an fd from :func:`open_inside` (float32, mono ``(frames,)``).

    Reads the descriptor itself, so a picture is drawn from the file that was checked;
    the fd is closed. ``name`` (the manifest path) is what an error names.
    """
    import soundfile as sf

    with os.fdopen(fd, "rb") as handle:
        try:
            audio, rate = sf.read(handle, dtype="float32")
        except (sf.LibsndfileError, RuntimeError, OSError, TypeError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise AudioFileError(
                f"{name}: cannot read audio ({reason}); check the file or re-export it"
            ) from None
    return audio, int(rate)
