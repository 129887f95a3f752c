"""Annotation files in and out: Audacity label tracks, JAMS, IDMT-SMT-Guitar XML.

Readers are pure (text in, :class:`Annotations` out: segment records ready for
:func:`guitarlab.corpus.segments.add_segments`); :func:`read_annotation_file` is the thin
file edge that picks the reader from the suffix (``.txt`` Audacity, ``.jams``, ``.xml``
IDMT). :func:`format_audacity` writes a label track back.

Strings are numbered as the manifest numbers them (``synth/session.py``): 1 = the high e
.. 6 = the low E. IDMT-SMT-Guitar counts from the low E (its 1 is our 6: ``7 - n``);
GuitarSet's JAMS files keep one ``note_midi`` annotation per string with
``annotation_metadata.data_source`` 0 (low E) .. 5 (high e), our ``6 - n``.
"""

from __future__ import annotations

import io
import math
import os
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from guitarlab.corpus.errors import ManifestError

FORMATS = {".txt": "audacity", ".jams": "jams", ".xml": "idmt"}
TIME_DECIMALS = 6  # what Audacity writes
# Standard tuning, MIDI pitch of each open string in the manifest's numbering (1 = high e).
OPEN_STRING_MIDI = {1: 64, 2: 59, 3: 55, 4: 50, 5: 45, 6: 40}
MAX_FRET = 24
# JAMS namespaces read as segments, and the column each one fills.
JAMS_COLUMNS = {"chord": "chord", "tag_open": "tag", "key_mode": "key"}
NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
AUDACITY_LINE = re.compile(rf"^\s*({NUMBER})\s+({NUMBER})(?:\s+(.*?))?\s*$")


@dataclass
class Annotations:
    """What an annotation file holds, as segments of one take.

    ``segments``: records ``{"start_s", "end_s", column: label, ...}``; ``columns``: the
    label columns the file brings (a re-import replaces these); ``skipped``: what was
    left out and how often ("point label": 2), for the caller to report.
    """

    origin: str
    segments: list[dict] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)

    def add(self, record: dict) -> None:
        self.segments.append(record)
        for column in record:
            if column not in ("start_s", "end_s") and column not in self.columns:
                self.columns.append(column)

    def skipped_text(self) -> str:
        """``"point label: 2, pitch_contour annotation: 6"`` ("" when nothing was skipped)."""
        return ", ".join(f"{what}: {n}" for what, n in sorted(self.skipped.items()))


# ---------------------------------------------------------------- Audacity


def read_audacity(text: str, *, column: str, name: str = "labels.txt") -> Annotations:
    """An Audacity label track (``start<TAB>end<TAB>label`` per line) as segments.

    The label text goes to ``column``. Point labels (start == end) and labels without
    text are skipped and counted; the ``\\`` lines Audacity writes after a spectral
    label (its frequency range) are skipped. A line that does not read is refused as
    ``NAME:LINE: ...``.

    Examples
    --------
    >>> notes = read_audacity("0.500000\\t2.250000\\tpalm mute\\n"
    ...                       "\\\\\\t100.000000\\t2000.000000\\n"
    ...                       "3.000000\\t3.000000\\tmark\\n", column="technique")
    >>> notes.segments, notes.skipped_text()
    ([{'start_s': 0.5, 'end_s': 2.25, 'technique': 'palm mute'}], 'point label: 1')
    """
    out = Annotations(origin=f"audacity:{name}")
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("\\"):
            continue
        match = AUDACITY_LINE.match(line)
        if match is None:
            raise ManifestError(
                f"{name}:{number}: not an Audacity label line 'start<TAB>end<TAB>label' "
                f"({line[:60]!r}); fix or delete that line"
            )
        start, end, label = float(match.group(1)), float(match.group(2)), match.group(3) or ""
        if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end < start:
            raise ManifestError(
                f"{name}:{number}: label [{match.group(1)}, {match.group(2)}] needs "
                "0 <= start <= end (seconds)"
            )
        if end == start:
            out.skipped["point label"] += 1
        elif not label.strip():
            out.skipped["label without text"] += 1
        else:
            out.add({"start_s": start, "end_s": end, column: label.strip()})
    return out


def format_audacity(spans: Iterable[tuple[float, float, str]]) -> str:
    """Spans as an Audacity label track: ``start<TAB>end<TAB>label``, 6 decimals, LF.

    Examples
    --------
    >>> format_audacity([(0.5, 2.25, "palm mute"), (3, 4, "bend")])
    '0.500000\\t2.250000\\tpalm mute\\n3.000000\\t4.000000\\tbend\\n'
    """
    return "".join(
        f"{float(s):.{TIME_DECIMALS}f}\t{float(e):.{TIME_DECIMALS}f}\t{label}\n"
        for s, e, label in spans
    )


# ---------------------------------------------------------------- JAMS


def _midi(value: object) -> int | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return round(number) if math.isfinite(number) else None


def _hz_to_midi(value: object) -> int | None:
    try:
        hz = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return round(69 + 12 * math.log2(hz / 440.0)) if math.isfinite(hz) and hz > 0 else None


def _jams_string(source: object) -> int | None:
    """GuitarSet's ``data_source`` "0" (low E) .. "5" (high e) as the manifest's 6 .. 1."""
    text = str(source).strip()
    return 6 - int(text) if text in {"0", "1", "2", "3", "4", "5"} else None


def _fret(string: int | None, pitch: int | None) -> int | None:
    if string is None or pitch is None:
        return None
    fret = pitch - OPEN_STRING_MIDI[string]
    return fret if 0 <= fret <= MAX_FRET else None


def read_jams(text: str, *, name: str = "annotations.jams") -> Annotations:
    """A JAMS file's time annotations as segments (read with the ``jams`` package).

    - ``note_midi`` (and ``note_hz``): one segment per note, ``pitch`` = the nearest
      MIDI note; when ``annotation_metadata.data_source`` is a string number 0-5
      (GuitarSet: 0 = low E) also ``string`` (manifest numbering, 1 = high e) and
      ``fret`` (standard tuning, 0-24);
    - ``chord`` -> ``chord``, ``tag_open`` -> ``tag``, ``key_mode`` -> ``key``; a second
      annotation of the same namespace goes to ``chord_2`` (GuitarSet's first chord
      annotation is the lead sheet's, its second the chords as played);
    - ``pitch_contour`` and other namespaces are skipped and counted, as are notes of
      zero length.
    """
    try:
        import jams
    except ImportError:
        raise ManifestError(
            f"{name}: reading JAMS needs the jams package; install it with "
            "pip install 'guitarlab[annotations]'"
        ) from None
    try:
        jam = jams.load(io.StringIO(text), validate=False)
    except (ValueError, TypeError, KeyError, AttributeError, jams.JamsError) as exc:
        reason = " ".join(str(exc).split())[:120]
        raise ManifestError(f"{name}: not a readable JAMS file ({reason})") from None
    out = Annotations(origin=f"jams:{name}")
    seen: Counter = Counter()
    for annotation in jam.annotations:
        namespace = str(annotation.namespace)
        observations = list(annotation.data)
        if namespace in ("note_midi", "note_hz"):
            string = _jams_string(annotation.annotation_metadata.data_source)
            for obs in observations:
                pitch = _midi(obs.value) if namespace == "note_midi" else _hz_to_midi(obs.value)
                if pitch is None:
                    out.skipped["note without a pitch"] += 1
                    continue
                record = _span(obs, out)
                if record is None:
                    continue
                record["pitch"] = pitch
                if string is not None:
                    record["string"] = string
                    fret = _fret(string, pitch)
                    if fret is not None:
                        record["fret"] = fret
                out.add(record)
        elif namespace in JAMS_COLUMNS:
            seen[namespace] += 1
            column = JAMS_COLUMNS[namespace]
            if seen[namespace] > 1:
                column = f"{column}_{seen[namespace]}"
            for obs in observations:
                label = "" if obs.value is None else str(obs.value).strip()
                if not label:
                    out.skipped[f"{namespace} without a value"] += 1
                    continue
                record = _span(obs, out)
                if record is not None:
                    record[column] = label
                    out.add(record)
        else:
            out.skipped[f"{namespace} annotation"] += 1
    return out


def _span(obs, out: Annotations) -> dict | None:
    try:
        start, duration = float(obs.time), float(obs.duration)
    except (TypeError, ValueError):
        out.skipped["observation without a time"] += 1
        return None
    if not (math.isfinite(start) and math.isfinite(duration)) or duration <= 0:
        out.skipped["zero-length observation"] += 1
        return None
    return {"start_s": start, "end_s": start + duration}


# ---------------------------------------------------------------- IDMT-SMT-Guitar


IDMT_COLUMNS = {"excitationStyle": "excitation", "expressionStyle": "expression"}


def read_idmt_xml(text: str | bytes, *, name: str = "annotation.xml") -> Annotations:
    """An IDMT-SMT-Guitar annotation (one ``<event>`` per note) as segments.

    Each event gives ``pitch`` (MIDI), ``string`` (IDMT's ``stringNumber`` counts from the
    low E, so ``7 - n`` in the manifest's numbering, 1 = high e), ``fret``, and the
    ``excitation`` (PK, FS, MU) and ``expression`` (NO, BE, SL, VI, HA, DN) codes, from
    ``onsetSec`` to ``offsetSec``. Events without both times are refused; events of
    zero length are skipped and counted.

    Examples
    --------
    >>> xml = ("<instrumentRecording><transcription><event><pitch>50</pitch>"
    ...        "<onsetSec>0.2</onsetSec><offsetSec>0.5</offsetSec><fretNumber>10</fretNumber>"
    ...        "<stringNumber>1</stringNumber><excitationStyle>PK</excitationStyle>"
    ...        "<expressionStyle>NO</expressionStyle></event></transcription>"
    ...        "</instrumentRecording>")
    >>> read_idmt_xml(xml).segments
    [{'start_s': 0.2, 'end_s': 0.5, 'pitch': 50, 'string': 6, 'fret': 10, 'excitation': 'PK', 'expression': 'NO'}]
    """
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ManifestError(
            f"{name}: not readable XML ({exc}); is it an IDMT annotation?"
        ) from None
    events = root.findall(".//event")
    if not events and root.find(".//transcription") is None:
        raise ManifestError(
            f"{name}: no <transcription> of <event>s; not an IDMT-SMT-Guitar annotation"
        )
    out = Annotations(origin=f"idmt:{name}")
    for number, event in enumerate(events, start=1):
        where = f"{name}: event {number}"

        def field_text(tag: str, event=event) -> str:
            node = event.find(tag)
            value = "" if node is None or node.text is None else node.text.strip()
            return "" if value.lower() == "nan" else value

        try:
            start, end = float(field_text("onsetSec")), float(field_text("offsetSec"))
        except ValueError:
            raise ManifestError(
                f"{where}: needs <onsetSec> and <offsetSec> as numbers of seconds"
            ) from None
        if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end < start:
            raise ManifestError(f"{where}: needs 0 <= onsetSec <= offsetSec")
        if end == start:
            out.skipped["zero-length event"] += 1
            continue
        record: dict = {"start_s": start, "end_s": end}
        pitch = _midi(field_text("pitch") or None)
        if pitch is not None:
            record["pitch"] = pitch
        idmt_string = _midi(field_text("stringNumber") or None)
        if idmt_string is not None:
            if not 1 <= idmt_string <= 6:
                raise ManifestError(f"{where}: stringNumber {idmt_string} is not 1-6")
            record["string"] = 7 - idmt_string
        fret = _midi(field_text("fretNumber") or None)
        if fret is not None:
            record["fret"] = fret
        for tag, column in IDMT_COLUMNS.items():
            if field_text(tag):
                record[column] = field_text(tag)
        out.add(record)
    return out


# ---------------------------------------------------------------- files


def annotation_format(path: str | os.PathLike) -> str:
    """The reader a file's suffix names ("audacity", "jams", "idmt"), or one-line error."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ManifestError(
            f"{path}: unknown annotation format {suffix or '(no suffix)'!r}; use .txt "
            "(Audacity label track), .jams or .xml (IDMT-SMT-Guitar)"
        )
    return FORMATS[suffix]


def read_annotation_file(path: str | os.PathLike, *, column: str | None = None) -> Annotations:
    """Read an annotation file by its suffix; ``column`` is needed for Audacity tracks."""
    kind = annotation_format(path)
    path = Path(path)
    if kind == "audacity" and not column:
        raise ManifestError(
            f"{path}: an Audacity label track needs --column, the label column its text "
            "goes to (e.g. --column technique)"
        )
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ManifestError(f"{path}: no such annotation file") from None
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if kind == "idmt":  # XML names its own encoding
        return read_idmt_xml(data, name=path.name)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ManifestError(
            f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from None
    if kind == "jams":
        return read_jams(text, name=path.name)
    return read_audacity(text, column=str(column), name=path.name)


def dumps_summary(annotations: Annotations, *, take: str = "") -> str:
    """One line: how many segments, which columns, onto which take, what was skipped."""
    text = f"{len(annotations.segments)} segments ({', '.join(annotations.columns) or 'no labels'})"
    if take:
        text += f" onto take {take}"
    if annotations.skipped:
        text += f"; skipped {annotations.skipped_text()}"
    return text
