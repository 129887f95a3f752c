"""Adding rows to ``manifest.csv`` at the cost of the rows added, not of the manifest.

Why: rewriting the whole CSV per commit made adding N files one at a time cost
O(N x rows) (7.5 s per synth commit at 100,000 rows). Here a commit appends its lines to
the file under the manifest lock, and three small pieces keep that as safe as the
atomic rewrite was:

- the **ids/paths index** (``.guitarlab-index.sqlite``): the ``id`` and ``path`` columns
  and each take's number in SQLite, so refusing a listed id or path, or choosing the next
  take number (``manifest.reserve_takes``), costs a lookup, not a read of the CSV. It is
  a cache: trusted only while ``manifest.csv``'s size, mtime, inode and last bytes are
  those it recorded, rebuilt from the CSV (three columns) when the file changed otherwise
  (an edit, a spreadsheet, a copy of the corpus). ``manifest.csv`` stays the truth.
- the **journal** (``.guitarlab-append.json``): the bytes of an append and the offset
  they go to, fsynced before the CSV is touched and removed after. A writer killed
  mid-append (``kill -9``) leaves it; the next writer completes the append from it, so
  the rows whose files were already moved in are listed with them.
- the **torn-line repair**: a last line cut short with no journal to complete it
  (another program's write) is dropped with one warning line naming it; a last line
  that is whole but lacks its newline (a spreadsheet's save) gets one.

Edits (relabel, exclude, levels) and ``guitarlab manifest compact`` still rewrite the
file atomically (``manifest.update_manifest``).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import socket
import sqlite3
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

INDEX_NAME = ".guitarlab-index.sqlite"
JOURNAL_NAME = ".guitarlab-append.json"
TAIL_BYTES = 256  # the last bytes of manifest.csv the index key holds
INDEX_FORMAT = "3"  # 3: take numbers and raw levels added (an older index is rebuilt)


# ---------------------------------------------------------------- the file as it lies


@dataclass
class ManifestFile:
    """What an append needs of ``manifest.csv``, read without parsing its rows."""

    path: Path
    columns: list[str]  # the header's columns, in its order (a BOM taken off)
    newline: str  # "\n", or "\r\n" for a file a spreadsheet saved
    size: int
    inode: int
    tail: bytes  # its last TAIL_BYTES bytes
    key: str  # size, mtime, inode and last bytes: what the index must match


def _file_key(stat: os.stat_result, tail: bytes) -> str:
    return f"{INDEX_FORMAT}:{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ino}:{tail.hex()}"


def _read_tail(handle, size: int) -> bytes:
    handle.seek(max(0, size - TAIL_BYTES))
    return handle.read(TAIL_BYTES)


def _header(data: bytes) -> tuple[bytes, list[str] | None, str]:
    """``(first line, its columns or None for an empty file, newline)``."""
    head = data.split(b"\n", 1)[0]
    if not data.strip():
        return head, None, "\n"
    newline = "\r\n" if head.endswith(b"\r") else "\n"
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff").rstrip("\r")
    columns = next(csv.reader([text]), [])
    return head, columns, newline


def last_record_start(data: bytes) -> int:
    """Offset of the last record of a CSV that does not end in a newline.

    The last newline outside a quoted cell (an even count of ``"`` before it) ends the
    record before; a newline inside quotes belongs to a cell.

    Examples
    --------
    >>> last_record_start(b'id,notes\\na,"x\\ny"\\nb,"p\\nq')
    17
    >>> last_record_start(b"id,path")
    0
    """
    at = data.rfind(b"\n")
    while at >= 0 and data.count(b'"', 0, at) % 2:
        at = data.rfind(b"\n", 0, at)
    return at + 1


def _is_whole(record: bytes, n_columns: int) -> bool:
    """A last record that only lacks its newline: quotes closed, every column there."""
    if record.count(b'"') % 2:
        return False
    text = record.decode("utf-8", errors="replace").rstrip("\r")
    rows = list(csv.reader(io.StringIO(text)))
    return len(rows) == 1 and len(rows[0]) == n_columns


def _preview(record: bytes) -> str:
    text = record.decode("utf-8", errors="replace").replace("\r", "").replace("\n", " ")
    return text if len(text) <= 80 else text[:77] + "..."


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- reading (no lock)


def readable(root: str | os.PathLike, data: bytes) -> bytes:
    """``manifest.csv``'s bytes without a torn last line, for a reader (no lock held).

    A reader never writes: a line an append in progress has half written is left out
    quietly; one a crash left is left out with one warning line (the next write repairs
    it on disk, completing it from the journal when there is one).
    """
    if not data or data.endswith(b"\n"):
        return data
    start = last_record_start(data)
    _, columns, _ = _header(data)
    if start == 0 or columns is None or _is_whole(data[start:], len(columns)):
        return data
    journal = _read_journal(Path(root) / JOURNAL_NAME)
    if journal is None or not _owner_alive(journal):
        what = (
            "the next write completes it from its journal"
            if journal is not None
            else "the next write drops it"
        )
        _warn(
            f"{Path(root) / 'manifest.csv'}: its last line is cut off (a write was "
            f"interrupted) and is left out of this read: {_preview(data[start:])!r}; {what}"
        )
    return data[:start]


# ---------------------------------------------------------------- repair (under the lock)


def repair(root: str | os.PathLike) -> list[str]:
    """Finish what a killed writer left, under the manifest lock; returns what was done.

    Called whenever the lock is taken: completes an append from its journal, then
    drops a torn last line that nothing can complete (one warning line each, on stderr)
    and ends a whole last line that lacks its newline.
    """
    from guitarlab.corpus.manifest import manifest_shape_problem

    root = Path(root)
    path = root / "manifest.csv"
    messages: list[str] = []
    journal_path = root / JOURNAL_NAME
    if journal_path.exists():
        message = _finish_journal(path, journal_path)
        if message:
            _warn(message)
            messages.append(message)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return messages
    if size == 0:
        return messages
    with open(path, "rb") as handle:
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return messages
    data = path.read_bytes()
    start = last_record_start(data)
    head, columns, newline = _header(data)
    if manifest_shape_problem(head, columns):
        return messages  # a damaged manifest is refused by whoever reads it, never touched
    with open(path, "r+b") as handle:
        if start == 0 or columns is None or _is_whole(data[start:], len(columns)):
            handle.seek(0, os.SEEK_END)
            handle.write(newline.encode())
        else:
            handle.truncate(start)
            messages.append(
                f"{path}: its last line was cut off (a write was interrupted) and nothing "
                f"can complete it: dropped {_preview(data[start:])!r}; if that file belongs "
                "in the corpus, 'guitarlab recover' adds it back"
            )
            _warn(messages[-1])
        handle.flush()
        os.fsync(handle.fileno())
    return messages


def _read_journal(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and "size" in data and "data" in data else None


def _owner_alive(journal: dict) -> bool:
    from guitarlab.corpus.manifest import pid_alive

    owner = journal.get("owner", {})
    if owner.get("host") != socket.gethostname():
        return True  # another machine's writer: it may be live
    return pid_alive(int(owner.get("pid", 0)))


def _finish_journal(path: Path, journal_path: Path) -> str | None:
    """Complete (or, when the manifest changed since, give up) a journaled append."""
    journal = _read_journal(journal_path)
    message = None
    if journal is not None:  # unreadable: killed while writing it, before the CSV was touched
        ids = journal.get("ids", [])
        named = ", ".join(map(repr, ids[:3])) + (
            f" and {len(ids) - 3} more" if len(ids) > 3 else ""
        )
        start, data = int(journal["size"]), journal["data"].encode("utf-8")
        try:
            stat = path.stat()
        except FileNotFoundError:
            stat = None
        if stat is None or stat.st_ino != journal.get("inode") or stat.st_size < start:
            message = (
                f"{path}: an append of {len(ids)} row(s) ({named}) was interrupted and the "
                "manifest was replaced since, so it was not completed; 'guitarlab recover' "
                "adds their files"
            )
        else:
            with open(path, "r+b") as handle:
                handle.seek(start)
                have = handle.read()
                if data.startswith(have) and len(have) < len(data):
                    handle.seek(start + len(have))
                    handle.write(data[len(have) :])
                    handle.flush()
                    os.fsync(handle.fileno())
                    message = (
                        f"{path}: completed an append of {len(ids)} row(s) ({named}) that was "
                        "interrupted (a writer was killed)"
                    )
                elif not have.startswith(data):
                    message = (
                        f"{path}: an append of {len(ids)} row(s) ({named}) was interrupted and "
                        "the manifest changed after it, so it was not completed; 'guitarlab "
                        "recover' adds their files"
                    )
    journal_path.unlink(missing_ok=True)
    return message


# ---------------------------------------------------------------- appending (under the lock)


def open_manifest(root: str | os.PathLike) -> ManifestFile:
    """The header, newline and index key of ``manifest.csv``, validated; lock held.

    The header is checked like :func:`~guitarlab.corpus.manifest.load_manifest` checks
    it (a damaged manifest is one ``ManifestError`` and nothing is written).
    """
    from guitarlab.corpus.errors import ManifestError
    from guitarlab.corpus.manifest import manifest_shape_problem, require_manifest

    path = require_manifest(root)
    with open(path, "rb") as handle:
        stat = os.fstat(handle.fileno())
        head = handle.read(1 << 16)
        while b"\n" not in head and len(head) < stat.st_size:
            more = handle.read(1 << 16)
            if not more:
                break
            head += more
        tail = _read_tail(handle, stat.st_size)
    first, columns, newline = _header(head)
    problem = manifest_shape_problem(first, columns)
    if problem:
        raise ManifestError(f"{path}: {problem}; nothing was changed")
    return ManifestFile(
        path, columns, newline, stat.st_size, stat.st_ino, tail, _file_key(stat, tail)
    )


def format_rows(rows: list[dict], columns: list[str], newline: str) -> str:
    """The CSV lines of ``rows`` in the header's column order, byte for byte as a full
    save (``manifest._write_atomic``: typed, escaped, ``%.6g``) writes them; a column a
    row lacks is an empty cell. Plain ``csv`` (pandas' own writer) with no DataFrame:
    a tenth of a millisecond per row instead of 25 ms per call."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=newline)
    for row in rows:
        writer.writerow([_cell(name, row.get(name)) for name in columns])
    return buffer.getvalue()


def _cell(name: str, value: object) -> str:
    """One value as ``manifest._typed`` + ``escape_cells`` + ``to_csv`` write it."""
    from guitarlab.corpus.manifest import SCHEMA, UNESCAPED_COLUMNS, escape_cell

    if value is None or (
        not isinstance(value, str) and pd.api.types.is_scalar(value) and pd.isna(value)
    ):
        return ""
    kind = SCHEMA.get(name, ("str", False))[0]
    if kind == "str":
        text = str(value)
        return text if name in UNESCAPED_COLUMNS else escape_cell(text)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return ""  # what pd.to_numeric(errors="coerce") makes of it
    if number != number:
        return ""
    if kind == "int":
        return str(int(number))
    return "%.6g" % number  # noqa: UP031 - the float_format of a full save


def new_columns(rows: list[dict], columns: list[str]) -> list[str]:
    """Columns the rows fill that the header lacks (an append cannot add a column)."""
    known = set(columns)
    out = []
    for row in rows:
        for name, value in row.items():
            if name in known or name in out:
                continue
            if value is None or (isinstance(value, float) and value != value) or str(value) == "":
                continue
            out.append(name)
    return out


def append_lines(file: ManifestFile, rows: list[dict], ids: list[str]) -> str:
    """Append ``rows`` to the manifest as one journaled, fsynced write; lock held.

    Returns the new index key. On any error (a full disk, Ctrl-C) the file is cut back
    to its size before and the journal removed, so the caller's cleanup (removing the
    files it moved in) leaves no row without its file; only a hard kill leaves the
    journal, and then every file is in place for the next writer to complete it.
    """
    from guitarlab.corpus.errors import ManifestError
    from guitarlab.corpus.manifest import os_reason

    text = format_rows(rows, file.columns, file.newline)
    data = text.encode("utf-8")
    journal_path = file.path.parent / JOURNAL_NAME
    journal = {
        "size": file.size,
        "inode": file.inode,
        "data": text,
        "ids": ids,
        "owner": {"pid": os.getpid(), "host": socket.gethostname()},
    }
    fd = None
    try:
        with open(journal_path, "w", encoding="utf-8") as handle:
            json.dump(journal, handle)
            handle.flush()
            os.fsync(handle.fileno())
        fd = os.open(file.path, os.O_WRONLY | os.O_APPEND)
        _write_all(fd, data)
        os.fsync(fd)
        stat = os.fstat(fd)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.truncate(file.path, file.size)
        journal_path.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise ManifestError(
                f"{file.path}: cannot save the manifest ({os_reason(exc)}); it is unchanged"
            ) from exc
        raise
    finally:
        if fd is not None:
            os.close(fd)
    journal_path.unlink(missing_ok=True)
    return _file_key(stat, (file.tail + data)[-TAIL_BYTES:])


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


# ---------------------------------------------------------------- the ids/paths index


# the columns the index keeps, in its order: what commits and reservations ask about
INDEX_TEXT = ("id", "path", "guitar", "phrase", "tone", "role")


def _index_row(cells: dict) -> tuple:
    """A row of the index from a manifest row's cells (text unescaped, as loaded).

    ``take`` is kept split (``manifest.split_take``) so the next take number is one
    indexed ``MAX``; ``rms_dbfs`` as a number, for the raw takes' level reference."""
    from guitarlab.corpus.manifest import split_take

    split = split_take(str(cells.get("take", "") or ""))
    try:
        rms = float(cells.get("rms_dbfs", ""))
    except (TypeError, ValueError):
        rms = None
    return (
        *(str(cells.get(name, "") or "") for name in INDEX_TEXT),
        *(split if split is not None else (None, None)),
        None if rms is None or rms != rms else rms,
    )


class PathIndex:
    """The manifest's ids, paths, take numbers and raw levels in SQLite, valid for one
    ``ManifestFile.key``.

    Why: a commit refusing a listed id or path, a reservation choosing the next take
    number and a recording comparing its level with other guitars' then cost an indexed
    lookup, not a read of the CSV. Only used under the manifest lock. Any SQLite trouble
    (a corrupt or unwritable file) drops the index and falls back to reading the CSV:
    it is a cache.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.path = Path(root) / INDEX_NAME
        self.conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=60)
        # a cache behind the lock: kill-safe (rollback journal), no fsync (key-checked)
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT)")
        return conn

    def key(self) -> str | None:
        if not self.path.exists():
            return None
        try:
            self.conn = self._connect()
            found = self.conn.execute("SELECT v FROM meta WHERE k = 'key'").fetchone()
        except sqlite3.Error:
            self.drop()
            return None
        return found[0] if found else None

    def rebuild(self, rows: Iterable[tuple], key: str) -> None:
        """Replace the rows (``_index_row``s; an index of another format included)."""
        try:
            if self.conn is None:
                self.conn = self._connect()
            conn = self.conn
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("DROP TABLE IF EXISTS rows")
            conn.execute(
                f"CREATE TABLE rows ({', '.join(f'{name} TEXT' for name in INDEX_TEXT)}, "
                "take_prefix TEXT, take_number INTEGER, rms_dbfs REAL)"
            )
            conn.executemany(f"INSERT INTO rows VALUES ({', '.join('?' * 9)})", rows)
            conn.execute("CREATE INDEX rows_id ON rows (id)")
            conn.execute("CREATE INDEX rows_path ON rows (path)")
            conn.execute("CREATE INDEX rows_take ON rows (take_prefix, take_number)")
            conn.execute("CREATE INDEX rows_level ON rows (phrase, tone)")
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('key', ?)", (key,))
            conn.execute("COMMIT")
        except (sqlite3.Error, OverflowError):  # OverflowError: a take number past 2**63
            self.drop()

    def listed(self, ids: list[str], paths: list[str]) -> tuple[set[str], set[str]]:
        """Which of ``ids`` and ``paths`` the manifest lists."""
        found_ids: set[str] = set()
        found_paths: set[str] = set()
        for column, values, found in (("id", ids, found_ids), ("path", paths, found_paths)):
            values = sorted(set(values))
            for at in range(0, len(values), 500):
                chunk = values[at : at + 500]
                marks = ",".join("?" * len(chunk))
                query = f"SELECT {column} FROM rows WHERE {column} IN ({marks})"  # noqa: S608
                found.update(v for (v,) in self.conn.execute(query, chunk))
        return found_ids, found_paths

    def highest_take(self, prefix: str) -> int:
        """The highest take number listed after ``prefix`` (``guitar-phrase-t``), 0 if none."""
        (found,) = self.conn.execute(
            "SELECT MAX(take_number) FROM rows WHERE take_prefix = ?", (prefix,)
        ).fetchone()
        return int(found or 0)

    def raw_rms(self, phrase: str, guitar: str, role: str) -> float | None:
        """Mean ``rms_dbfs`` of the raw takes of ``phrase`` by guitars other than
        ``guitar`` with this input ``role`` (silent ones, -150 dBFS and below, left out)."""
        (found,) = self.conn.execute(
            "SELECT AVG(rms_dbfs) FROM rows WHERE phrase = ? AND tone = 'raw' AND guitar != ? "
            "AND role = ? AND rms_dbfs > -150",
            (phrase, guitar, role),
        ).fetchone()
        return None if found is None else float(found)

    def add(self, rows: list[dict], key: str) -> None:
        try:
            conn = self.conn
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                f"INSERT INTO rows VALUES ({', '.join('?' * 9)})", [_index_row(r) for r in rows]
            )
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('key', ?)", (key,))
            conn.execute("COMMIT")
        except (sqlite3.Error, OverflowError):
            self.drop()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def drop(self) -> None:
        self.close()
        for suffix in ("", "-journal"):
            with contextlib.suppress(OSError):
                Path(f"{self.path}{suffix}").unlink()


def synced_index(
    root: str | os.PathLike, file: ManifestFile, frame: pd.DataFrame | None = None
) -> PathIndex | None:
    """The index, rebuilt first when ``manifest.csv`` changed behind it; lock held.

    ``frame`` (the loaded manifest, when the caller has it) spares reading the CSV.
    None when SQLite cannot keep an index here (the caller reads the CSV instead).
    """
    index = PathIndex(root)
    if index.key() == file.key:
        return index
    wanted = [*INDEX_TEXT, "take", "rms_dbfs"]
    if frame is None:
        try:
            cols = pd.read_csv(
                file.path,
                usecols=[name for name in wanted if name in file.columns],
                dtype=object,  # plain str cells: a tenth of the cost of iterating Arrow strings
                keep_default_na=False,
                na_values=[],
            )
        except (ValueError, pd.errors.ParserError, UnicodeDecodeError):
            index.close()
            return None  # the caller loads the manifest, which names what is wrong
    else:
        cols = frame[[name for name in wanted if name in frame.columns]]
    index.rebuild(_index_rows(cols, escaped=frame is None), file.key)
    return index if index.conn is not None else None


def _index_rows(cols: pd.DataFrame, *, escaped: bool) -> Iterable[tuple]:
    """The index's rows (as ``_index_row`` makes them) of a manifest's columns, a column
    at a time: 0.3 s at 100,000 rows where a row at a time took 2 s. ``escaped``: the
    cells are as the CSV holds them (a leading ``'`` comes off text, as on loading)."""
    from guitarlab.corpus.manifest import split_take, unescape_cell

    def text(name: str) -> list[str]:
        if name not in cols:
            return [""] * len(cols)
        values = ["" if v is None else str(v) for v in cols[name].tolist()]
        if escaped and name != "path" and any(v.startswith("'") for v in values):
            values = [unescape_cell(v) for v in values]
        return values

    splits = [split_take(take) or (None, None) for take in text("take")]
    rms = (
        pd.to_numeric(cols["rms_dbfs"], errors="coerce").astype(float).tolist()
        if "rms_dbfs" in cols
        else [float("nan")] * len(cols)
    )
    return zip(
        *(text(name) for name in INDEX_TEXT),
        (prefix for prefix, _ in splits),
        (number for _, number in splits),
        (None if value != value else value for value in rms),
        strict=True,
    )
