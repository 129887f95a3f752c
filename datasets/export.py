"""Export a corpus (or a dataset folder's splits) for other tools: Hugging Face audiofolder, Parquet.

Pure planning first: :func:`plan_export` decides, from the manifest and ``dataset.json``
alone, which audio goes where (a whole file, or a clip of a take's held-out span), under
which file name and with which metadata. Then a thin writer reads one file at a time,
writes it into a temp folder beside ``--out`` and renames the folder into place, so a
kill never leaves half an export under its name.

``audiofolder`` layout (what ``datasets.load_dataset("audiofolder", data_dir=E)`` opens)::

    E/README.md                  data card: loading, classes, columns, counts, licence
    E/train/metadata.parquet     file_name first, then label and the provenance columns
    E/train/<id>.wav             a whole file (take or group splits) ...
    E/train/<id>__<start>-<end>s.wav   ... or a clip of it (span splits), its take in the name
    E/validation/..., E/test/...

Without a dataset every file goes to ``E/audio/`` with one ``E/metadata.parquet`` (one
split, ``train`` in Hugging Face's terms).

``parquet`` layout (what ``load_dataset("parquet", data_dir=E)`` or ``load_dataset(E)``
opens)::

    E/README.md
    E/data/train-00000-of-00001.parquet   audio ({bytes, path}), split, file_name, label, ...
    E/data/validation-00000-of-00001.parquet, E/data/test-00000-of-00001.parquet

Every table carries its Hugging Face features in the Arrow schema (:func:`hf_table`):
``label`` a ClassLabel (stored as the index into the dataset's label names), ``audio``
Audio, numbers int64/float64, text ``string``. The metadata is Parquet, not CSV or JSON
Lines, because only a Parquet schema can say ClassLabel (``datasets`` >= 3.4 reads it for
an audiofolder; a card's ``dataset_info`` is ignored there). ``datasets`` >= 4 decodes
(and, for an audiofolder, even loads) audio only with torch and torchcodec; without them
every export still opens through its Parquet tables, the audio read with soundfile (the
data card shows how).

Examples
--------
>>> export_corpus("my-corpus", "my-export", dataset="my-dataset")   # doctest: +SKIP
PosixPath('my-export')
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

import pandas as pd
import soundfile as sf

from guitarlab.corpus.atomic import atomic_path, write_text_atomic
from guitarlab.corpus.defaults import VERSION
from guitarlab.corpus.errors import DatasetError, GuitarlabError
from guitarlab.corpus.manifest import ID_RE, load_manifest, resolve_audio_path
from guitarlab.corpus.outputs import check_output, refuse_if_locked, replace_output
from guitarlab.datasets.meta import DatasetMeta
from guitarlab.datasets.splits import Span, TakeSpans

FORMATS = ("audiofolder", "parquet")
# the dataset folder's split names -> Hugging Face's
HF_SPLITS = {"train": "train", "val": "validation", "test": "test"}
NO_SPLIT_DIR = "audio"
# Parquet with the Hugging Face features in its schema: `label` loads as a ClassLabel
# (datasets >= 3.4 reads a metadata.parquet; a .jsonl or .csv can only give text)
METADATA_NAME = "metadata.parquet"
PARQUET_DIR = "data"  # data/<split>-00000-of-00001.parquet: the layout datasets maps to splits
PARQUET_SHARD_BYTES = 500_000_000  # audio per Parquet file, the size the Hub's shards have
CARD_NAME = "README.md"
LICENSE_FILES = ("LICENSE", "LICENSE.txt", "LICENSE.md")
UNSPECIFIED = "unspecified"
NUMBER_COLUMNS = (
    "sample_rate", "channels", "frames", "peak_dbfs", "rms_dbfs", "gain_db", "clip_start", "clip_end",
)  # fmt: skip
INT_COLUMNS = ("sample_rate", "channels", "frames", "clip_start", "clip_end")
PARQUET_BATCH_FILES = 64
# columns the export adds to the manifest's (clip columns are empty for whole files)
EXPORT_COLUMNS = ("corpus_path", "corpus_sha256", "clip_start", "clip_end")
COLUMN_MEANINGS = {
    "file_name": "the audio file, relative to the metadata file beside it",
    "split": "train, validation or test",
    "audio": "the file's bytes and its file name (Hugging Face's Audio struct)",
    "id": "the corpus manifest id of the file the audio comes from",
    "label": "the dataset's class label (the column named under 'How the split was made'), "
    "a ClassLabel: stored as its index into the names under Classes",
    "guitar": "guitar label, a lower-case slug",
    "pickup": "single_coil, humbucker, p90, ...",
    "phrase": "backing, lead, note, ...",
    "tone": "raw for a recorded take, else the tone preset it was rendered through",
    "take": "the performance: every render of a take shares it (never split across sets)",
    "source": "id of the raw take a render was made from (empty for raw takes)",
    "preset_hash": "hash of the preset that rendered it (empty for raw takes)",
    "sample_rate": "Hz, of this file",
    "channels": "of this file",
    "frames": "samples per channel in this file",
    "subtype": "sample format of this file (PCM_24, ...)",
    "peak_dbfs": "peak level of this file",
    "rms_dbfs": "RMS level of this file",
    "gain_db": "the take's level-matching trim to the corpus target RMS (stored, never applied)",
    "sha256": "checksum of this file's bytes",
    "recorded_at": "when the corpus file was recorded or rendered (UTC)",
    "device": "the audio interface, 'synth' or 'pedalboard'",
    "player": "who played",
    "notes": "free text from the corpus",
    "status": "empty for a complete take, 'partial' for one cut short",
    "corpus_path": "the file's path in the corpus it was exported from",
    "corpus_sha256": "the corpus file's checksum (the clip's source for a clip)",
    "clip_start": "first sample of this audio in the corpus file (0 for a whole file)",
    "clip_end": "the sample after its last (the corpus file's frames for a whole file)",
    "segments": "the labelled spans of the take within this audio, JSON text: "
    '[{"start_s": .., "end_s": .., "technique": ..}], seconds from the start of this file '
    "(or clip), one key per label column the segment fills",
    "segment": "the id of the segment this clip is (segments.csv of the corpus)",
}


@dataclass
class ExportItem:
    """One exported file: a whole corpus file, or a clip ``[start, end)`` of one."""

    split: str  # Hugging Face split name, or "" without a dataset
    file_name: str  # POSIX path relative to the export folder
    row: dict  # the manifest row it comes from
    start: int | None = None
    end: int | None = None
    segments: str | None = None  # the take's segments within this audio, JSON text

    @property
    def is_clip(self) -> bool:
        return self.start is not None


@dataclass
class ExportPlan:
    """Every file to write, plus what the data card says about how it was chosen."""

    items: list[ExportItem]
    label: str  # the column the counts are by
    labelled: bool  # a `label` column (from a dataset) is exported
    splits: list[str]
    how: list[str] = field(default_factory=list)  # how the split was made, one line each
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- planning (no audio)


def clip_name(row_id: str, start: int, end: int, rate: int, suffix: str = ".wav") -> str:
    """A clip's file name: the row id (its take is the id's prefix) and its time in seconds.

    Examples
    --------
    >>> clip_name("les_paul-lead-t001-crunch", 44100, 140100, 44100)
    'les_paul-lead-t001-crunch__1.000-3.177s.wav'
    """
    return f"{row_id}__{start / rate:.3f}-{end / rate:.3f}s{suffix}"


def train_spans(frames: int, spans: TakeSpans, *, min_frames: int = 1) -> list[Span]:
    """The time of one file that no held-out span touches, as ``[start, end)`` spans.

    Starts at the take's ``offset`` (its first sound with ``--trim-silence``); pieces
    shorter than ``min_frames`` (less than one window) are left out.

    Examples
    --------
    >>> spans = TakeSpans("t", 100, test=[(40, 60)], val=[(80, 90)])
    >>> train_spans(100, spans, min_frames=5)
    [(0, 40), (60, 80), (90, 100)]
    """
    held = sorted(list(spans.test) + list(spans.val))
    out, cursor = [], int(spans.offset)
    for start, end in held + [(int(frames), int(frames))]:
        if start - cursor >= min_frames:
            out.append((cursor, min(int(start), int(frames))))
        cursor = max(cursor, int(end))
    return out


def _safe_id(row_id: str) -> str:
    if not ID_RE.match(row_id) or "/" in row_id or ".." in row_id:
        raise DatasetError(
            f"manifest id {row_id!r} is not a safe file name; fix it "
            "(guitarlab manifest check) before exporting"
        )
    return row_id


def _suffix(row: Mapping) -> str:
    return PurePosixPath(str(row["path"])).suffix.lower() or ".wav"


def plan_export(manifest: pd.DataFrame, meta: DatasetMeta | None = None) -> ExportPlan:
    """Which audio goes where: every manifest row as a whole file, or a dataset's splits.

    With ``meta`` (a dataset folder's ``dataset.json``) only its files are exported,
    each by its take's role: a held-out take (``--split take/group``) goes whole to
    validation or test; a take with held-out spans (``--split span``) is cut into clips,
    its test spans to test, its validation spans to validation and the time between
    them (at least one window long) to train, so no clip of one split overlaps another's.

    Examples
    --------
    >>> frame = pd.DataFrame({"id": ["a-raw"], "path": ["takes/a-raw.wav"], "guitar": ["x"]})
    >>> [item.file_name for item in plan_export(frame).items]
    ['audio/a-raw.wav']
    """
    by_id = {str(row["id"]): row for row in manifest.to_dict("records")}
    if meta is None:
        items = [
            ExportItem("", f"{NO_SPLIT_DIR}/{_safe_id(rid)}{_suffix(row)}", row)
            for rid, row in by_id.items()
        ]
        return ExportPlan(
            items,
            label="guitar",
            labelled=False,
            splits=[""],
            how=["not split: every file of the corpus, one split ('train' when loaded)"],
        )
    label = str(meta.label)
    rate = int(meta.sample_rate)
    window = int(meta.window)
    options = meta.options
    takes = {t: TakeSpans.from_json(t, data) for t, data in meta.takes.items()}
    items: list[ExportItem] = []
    for info in meta.rows:
        rid = _safe_id(str(info["id"]))
        row = by_id.get(rid)
        if row is None or str(row["sha256"]) != str(info.get("sha256", row["sha256"])):
            what = "is no longer in" if row is None else "changed in"
            raise DatasetError(
                f"file {rid} of the dataset {what} the corpus; export from the corpus the "
                "dataset was built from, or rebuild the dataset"
            )
        row = {**row, "label": str(info.get("label", row.get(label, "")))}
        spans = takes[str(info["take"])]
        suffix = _suffix(row)
        if spans.role in ("val", "test") or not (spans.test or spans.val):
            split = HF_SPLITS[spans.role]
            items.append(ExportItem(split, f"{split}/{rid}{suffix}", row))
            continue
        # spans are on the dataset's timeline; a resampled file has its own rate
        scale = int(info.get("file_rate", rate)) / rate
        frames = int(info.get("frames", row["frames"]))
        pieces = [("test", s) for s in spans.test] + [("val", s) for s in spans.val]
        pieces += [("train", s) for s in train_spans(int(frames / scale), spans, min_frames=window)]
        for role, (start, end) in sorted(pieces, key=lambda p: p[1]):
            first, last = round(start * scale), min(round(end * scale), frames)
            split = HF_SPLITS[role]
            name = clip_name(rid, first, last, round(rate * scale), suffix)
            items.append(ExportItem(split, f"{split}/{name}", row, first, last))
    splits = [s for s in HF_SPLITS.values() if any(i.split == s for i in items)]
    how = [_how_split(options, meta)]
    notes = []
    if options.get("val") == "random":
        notes.append(
            "validation windows were a random share of training time (--val random, leaky): "
            "they are in the train clips, not a split of their own"
        )
    if meta.leaky:
        notes.append("the dataset is marked leaky: its validation shares time with training")
    return ExportPlan(items, label=label, labelled=True, splits=splits, how=how, notes=notes)


def spans_json(segments: pd.DataFrame, start_s: float, end_s: float) -> str:
    """One take's segments within ``[start_s, end_s)`` of it, as JSON text: each cut to that
    time, in seconds from ``start_s``, with the label columns it fills.

    Examples
    --------
    >>> segs = pd.DataFrame({"start_s": [0.5, 3.0], "end_s": [2.0, 4.0],
    ...                      "technique": ["palm_mute", "bend"], "pitch": ["", "43"]})
    >>> spans_json(segs, 1.0, 3.5)
    '[{"start_s": 0.0, "end_s": 1.0, "technique": "palm_mute"}, {"start_s": 2.0, "end_s": 2.5, "technique": "bend", "pitch": "43"}]'
    """
    from guitarlab.corpus.segments import label_columns

    out = []
    columns = label_columns(segments)
    for seg in segments.to_dict("records"):
        a, b = max(float(seg["start_s"]), start_s), min(float(seg["end_s"]), end_s)
        if b <= a:
            continue
        item = {"start_s": round(a - start_s, 6), "end_s": round(b - start_s, 6)}
        item.update({c: str(seg[c]) for c in columns if str(seg.get(c, "") or "") != ""})
        out.append(item)
    return json.dumps(out)


def with_segment_spans(
    plan: ExportPlan, segments: pd.DataFrame, *, relabel: str | None = None
) -> ExportPlan:
    """Every item of ``plan`` with its take's segments within its audio (``segments``
    column); a corpus without segments gets no such column.

    ``relabel`` (the column of a dataset built ``--from-segments``): each item's ``label``
    becomes the labels of that column's segments within its audio, joined by ``+``.
    """
    from guitarlab.corpus.segments import segments_of

    if segments.empty:
        return plan
    of: dict[str, pd.DataFrame] = {}
    for item in plan.items:
        take = str(item.row.get("take", ""))
        if take not in of:
            of[take] = segments_of(segments, take)
        rate = float(item.row["sample_rate"])
        start = (item.start or 0) / rate
        end = (item.end if item.is_clip else int(item.row["frames"])) / rate
        item.segments = spans_json(of[take], start, end)
        if relabel:
            inside = [s.get(relabel) for s in json.loads(item.segments)]
            item.row = {**item.row, "label": "+".join(sorted({v for v in inside if v}))}
    if relabel:
        plan.notes.append(
            f"`label` of a file or clip: the {relabel!r} labels of the segments within it, "
            "joined by + (the dataset labels each window by its segment)"
        )
    return plan


def segment_clip_name(
    row_id: str, seg_id: str, start: int, end: int, rate: int, suffix: str
) -> str:
    """A segment clip's file name: the file's id, the segment's id and its time.

    Examples
    --------
    >>> segment_clip_name("strat-riff-t001-raw", "seg-000002", 44100, 88200, 44100, ".wav")
    'strat-riff-t001-raw__seg-000002__1.000-2.000s.wav'
    """
    return f"{row_id}__{seg_id}__{start / rate:.3f}-{end / rate:.3f}s{suffix}"


def plan_segment_export(
    manifest: pd.DataFrame,
    segments: pd.DataFrame,
    label: str,
    meta: DatasetMeta | None = None,
) -> ExportPlan:
    """``export --by-segment``: one clip per segment that labels ``label``, in every file
    (tone) of its take, labelled by the segment.

    With ``meta`` (a dataset's ``dataset.json``) only the dataset's files, each clip in
    the split its time is in: a held-out take's to its split; otherwise test or validation
    when the segment lies wholly in that held-out time, train when it touches none, and
    left out (counted in the card) when it crosses the edge of held-out time.
    """
    from guitarlab.corpus.segments import label_columns, segments_of

    if segments.empty or label not in label_columns(segments):
        raise DatasetError(
            f"--by-segment --label {label}: no segment labels that column; segment columns: "
            f"{', '.join(label_columns(segments)) or 'none (no segments.csv)'}"
        )
    labelled = segments[segments[label].astype(str).str.strip() != ""]
    by_id = {str(row["id"]): row for row in manifest.to_dict("records")}
    files = [(rid, by_id[rid]) for rid in by_id]
    takes: dict[str, TakeSpans] = {}
    rate = 0
    if meta is not None:
        rate = int(meta.sample_rate)
        takes = {t: TakeSpans.from_json(t, data) for t, data in meta.takes.items()}
        files = []
        for info in meta.rows:
            row = by_id.get(str(info["id"]))
            if row is None or str(row["sha256"]) != str(info.get("sha256", row["sha256"])):
                raise DatasetError(
                    f"file {info['id']} of the dataset is not in the corpus as it was; export "
                    "from the corpus the dataset was built from, or rebuild the dataset"
                )
            files.append((str(info["id"]), row))
    items: list[ExportItem] = []
    crossing = 0
    for rid, row in files:
        take = str(row["take"])
        segs = segments_of(labelled, take)
        if segs.empty:
            continue
        file_rate, frames, suffix = int(row["sample_rate"]), int(row["frames"]), _suffix(row)
        for seg in segs.to_dict("records"):
            first = round(float(seg["start_s"]) * file_rate)
            last = min(round(float(seg["end_s"]) * file_rate), frames)
            if last <= first:
                continue
            split = ""
            if meta is not None:
                role = _segment_role(takes[take], seg["start_s"] * rate, seg["end_s"] * rate)
                if role is None:
                    crossing += 1
                    continue
                split = HF_SPLITS[role]
            name = segment_clip_name(_safe_id(rid), str(seg["id"]), first, last, file_rate, suffix)
            folder = split or NO_SPLIT_DIR
            clip_row = {**row, "label": str(seg[label]), "segment": str(seg["id"])}
            items.append(ExportItem(split, f"{folder}/{name}", clip_row, first, last))
    if not items:
        raise DatasetError(
            f"--by-segment --label {label}: no {label!r} segment lies in the files to export"
        )
    splits = [s for s in HF_SPLITS.values() if any(i.split == s for i in items)] or [""]
    n_segments = len({i.row["segment"] for i in items})
    how = [
        f"one clip per segment: {n_segments} segment(s) that label {label!r}, cut from every "
        f"file (tone) of their take; `label` is the segment's {label!r}"
    ]
    notes = []
    if meta is not None:
        how.append(_how_split(meta.options, meta))
        how.append(
            "a segment goes to test or validation when it lies wholly in its take's held-out "
            "time, to train when it touches none"
        )
        if crossing:
            notes.append(
                f"{crossing} segment clip(s) cross the edge of held-out time and are left out"
            )
    plan = ExportPlan(items, label=label, labelled=True, splits=splits, how=how, notes=notes)
    return with_segment_spans(plan, segments)


def _segment_role(spans: TakeSpans, start: float, end: float) -> str | None:
    """Which split a segment's time ``[start, end)`` (samples of the dataset) belongs to."""
    if spans.role in ("val", "test"):
        return spans.role
    for role, held in (("test", spans.test), ("val", spans.val)):
        if any(s <= start + 1 and end <= e + 1 for s, e in held):
            return role
    if any(start < e and s < end for s, e in [*spans.test, *spans.val]) or start < spans.offset:
        return None
    return "train"


def _how_split(options: Mapping, meta: DatasetMeta) -> str:
    split, val = options.get("split", "span"), options.get("val", "span")
    held = meta.held_out or {}
    seed = options.get("seed", 0)
    if split == "segment":
        return (
            f"segment split: the test set is the time of every take that --test-where "
            f"{held.get('test_where')!r} names by its segments, held out of every tone of the "
            "take; validation: "
            + (f"the time {held['val_where']!r} names" if held.get("val_where") else val)
            + ". Each span is a clip named after its file, so no clip of one split shares "
            "time with another split's"
        )
    if split == "span":
        seconds = int(options.get("test_windows", 12)) * int(meta.window) / meta.sample_rate
        text = (
            f"span split (seed {seed}): a {seconds:.2f} s span of every take is the test set in "
            "every tone of the take, and a disjoint span of it the validation set; the rest is "
            "train. Each span is a clip named after its file (the take is the name's prefix), "
            "so no clip of one split shares time with another split's"
        )
        if options.get("same_span_all"):
            text += "; one span for all takes (--same-span-all)"
        return text
    what = (
        f"the takes {held['test_where']!r} selects"
        if held.get("test_where")
        else f"the {options.get('group_by')} value(s) {', '.join(held['test_groups'])}"
        if held.get("test_groups")
        else f"whole takes drawn at random (seed {seed}), stratified by label"
    )
    return (
        f"{split} split: the test set is {what}, every tone of a take on the same side; "
        f"validation: {val}" + (f" ({held['val_where']!r})" if held.get("val_where") else "")
    )


# ---------------------------------------------------------------- reading audio


def _verified_bytes(path: Path, row: Mapping, last: dict) -> bytes:
    """The corpus file's bytes, read once and checked against the manifest's sha256.

    Clips are cut from these very bytes, so a file changed after the build is refused
    for a clip as for a whole file. ``last`` keeps the latest file checked: a take's
    clips come one after another and share one read.
    """
    if last.get("path") == path:
        return last["data"]
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read it ({exc.strerror}); check the corpus") from None
    if hashlib.sha256(data).hexdigest() != str(row["sha256"]):
        raise DatasetError(
            f"{path}: its sha256 differs from the manifest's; run 'guitarlab manifest check'"
        )
    last.clear()
    last.update(path=path, data=data)
    return data


def _audio_bytes(corpus: Path, item: ExportItem, last: dict | None = None) -> tuple[bytes, dict]:
    """The file's (or clip's) bytes and the columns measured from them."""
    from guitarlab.corpus.levels import peak_dbfs, rms_dbfs

    path = resolve_audio_path(corpus, str(item.row["path"]))
    source = _verified_bytes(path, item.row, {} if last is None else last)
    if not item.is_clip:
        return source, {"sha256": str(item.row["sha256"])}
    try:
        with sf.SoundFile(io.BytesIO(source)) as handle:
            info = handle.subtype, handle.format
            exact = "int32" if str(handle.subtype).startswith("PCM") else "float64"  # bit-exact
            handle.seek(item.start)
            samples = handle.read(item.end - item.start, dtype=exact)
            rate = handle.samplerate
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise DatasetError(f"{path}: cannot read audio ({exc}); check the file") from None
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, subtype=info[0], format=info[1])
    data = buffer.getvalue()
    scaled = samples / 2.0**31 if exact == "int32" else samples
    return data, {
        "frames": int(samples.shape[0]),
        "peak_dbfs": round(peak_dbfs(scaled), 3),
        "rms_dbfs": round(rms_dbfs(scaled), 3),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def _metadata_row(item: ExportItem, measured: dict, columns: list[str]) -> dict:
    row = item.row
    out = {"file_name": item.file_name}
    if "label" in row:
        out["label"] = row["label"]
    out.update({c: row[c] for c in columns if c not in ("path", "label")})
    if "segment" in row:  # one clip per segment: which
        out["segment"] = row["segment"]
    out.update(measured)
    if item.segments is not None:
        out["segments"] = item.segments
    out.update(
        corpus_path=str(row["path"]),
        corpus_sha256=str(row["sha256"]),
        clip_start=item.start if item.is_clip else 0,
        clip_end=item.end if item.is_clip else int(row["frames"]),
    )
    return out


def _typed(table: pd.DataFrame) -> pd.DataFrame:
    """Numbers as numbers, everything else as text ("" when empty), so every split's
    metadata (and every Parquet batch) has the same types."""
    out = table.copy()
    for column in out.columns:
        if column in NUMBER_COLUMNS:
            out[column] = pd.to_numeric(out[column], errors="coerce")
        elif column != "audio":
            out[column] = out[column].astype(object).where(out[column].notna(), "").astype(str)
    return out


def _materialized(
    corpus: Path, plan: ExportPlan, columns: list[str], progress: bool
) -> Iterator[tuple[ExportItem, bytes, dict]]:
    from tqdm import tqdm

    last: dict = {}  # the latest source file read and checked, for the next clip of it
    for item in tqdm(plan.items, desc="export", unit="file", disable=not progress):
        data, measured = _audio_bytes(corpus, item, last)
        yield item, data, _metadata_row(item, measured, columns)


# ---------------------------------------------------------------- Hugging Face features


def class_names(plan: ExportPlan, meta: DatasetMeta | None = None) -> list[str] | None:
    """The classes of ``label`` (a ClassLabel's names: index = stored value); None unlabelled.

    The dataset's ``label_names`` first, all of them in its order, so an exported label is
    the class index a model trained on the dataset outputs; labels the dataset does not
    have (a file labelled by the segments within it, ``--by-segment`` on another column)
    follow, sorted.

    Examples
    --------
    >>> item = ExportItem("train", "train/a.wav", {"label": "les_paul"})
    >>> plan = ExportPlan([item], label="guitar", labelled=True, splits=["train"])
    >>> names = ["strat", "les_paul", "tele"]
    >>> meta = DatasetMeta(label_names=names, window=8000, sample_rate=44100, takes={}, totals={})
    >>> class_names(plan, meta)
    ['strat', 'les_paul', 'tele']
    """
    if not plan.labelled:
        return None
    known = []
    if meta is not None and str(meta.label) == plan.label:
        known = [str(name) for name in meta.label_names]
    used = {str(item.row["label"]) for item in plan.items}
    return known + sorted(used - set(known))


def hf_feature(column: str, names: list[str] | None = None) -> dict:
    """An exported column's Hugging Face feature, as ``datasets.Features.to_dict`` writes it."""
    if column == "audio":
        return {"_type": "Audio"}
    if column == "label" and names is not None:
        return {"_type": "ClassLabel", "names": list(names)}
    number = "int64" if column in INT_COLUMNS else "float64"
    return {"_type": "Value", "dtype": number if column in NUMBER_COLUMNS else "string"}


def hf_table(frame: pd.DataFrame, names: list[str] | None = None, audio: list | None = None):
    """``frame`` (plus ``audio``, a ``{bytes, path}`` per row, first) as an Arrow table typed
    as its Hugging Face features say, with the features in the schema's ``huggingface``
    metadata: what ``datasets`` reads back, so ``label`` loads as a ClassLabel (stored as
    its index into ``names``) and ``audio`` as Audio with every version. Text is ``string``,
    never ``large_string``, which datasets 3.x refuses as a ``file_name``.

    Examples
    --------
    >>> frame = pd.DataFrame({"file_name": ["a.wav"], "label": ["lp"], "frames": [10]})
    >>> table = hf_table(frame, ["st", "lp"])
    >>> table.column("label").to_pylist(), str(table.schema.field("file_name").type)
    ([1], 'string')
    """
    import pyarrow as pa

    columns = {}
    if audio is not None:
        columns["audio"] = pa.array(
            audio, pa.struct([("bytes", pa.binary()), ("path", pa.string())])
        )
    for column in frame.columns:
        values = frame[column]
        if column == "label" and names is not None:
            index = {name: i for i, name in enumerate(names)}
            columns[column] = pa.array([index[str(v)] for v in values], pa.int64())
        elif column in INT_COLUMNS:
            numbers = pd.to_numeric(values, errors="coerce").round().astype("Int64")
            columns[column] = pa.array(numbers, pa.int64(), from_pandas=True)
        elif column in NUMBER_COLUMNS:
            numbers = pd.to_numeric(values, errors="coerce").astype(float)
            columns[column] = pa.array(numbers, pa.float64(), from_pandas=True)
        else:
            text = values.astype(object).where(values.notna(), "").astype(str)
            columns[column] = pa.array(text.tolist(), pa.string())
    features = {column: hf_feature(column, names) for column in columns}
    table = pa.table(columns)
    info = json.dumps({"info": {"features": features}})
    return table.replace_schema_metadata({"huggingface": info})


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """An export's table (a ``metadata.parquet``, a Parquet file, or the ``data`` folder of
    shards) in pandas, ``label`` as its names: pandas reads a ClassLabel as its index,
    and the names are in the schema's Hugging Face features.

    Examples
    --------
    >>> read_table("my-export/test/metadata.parquet")["label"].head(1)   # doctest: +SKIP
    0    les_paul
    """
    import pyarrow.parquet as pq

    path = Path(path)
    first = min(path.glob("*.parquet")) if path.is_dir() else path
    table = pd.read_parquet(path)
    meta = (pq.read_schema(first).metadata or {}).get(b"huggingface")
    feature = json.loads(meta)["info"]["features"].get("label", {}) if meta else {}
    if feature.get("_type") == "ClassLabel" and "label" in table:
        table["label"] = [feature["names"][int(i)] for i in table["label"]]
    return table


# ---------------------------------------------------------------- writing


def corpus_license(corpus: str | os.PathLike) -> tuple[str, Path | None]:
    """The licence a corpus records: the first line of its ``LICENSE`` file, or "unspecified"."""
    for name in LICENSE_FILES:
        path = Path(corpus) / name
        if path.is_file():
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                if line.strip():
                    return line.strip().strip("#").strip(), path
    return UNSPECIFIED, None


def export_corpus(
    corpus: str | os.PathLike,
    out: str | os.PathLike,
    *,
    dataset: str | os.PathLike | None = None,
    format: str = "audiofolder",
    license: str | None = None,
    by_segment: bool = False,
    label: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Export ``corpus`` (or ``dataset``'s splits of it) to ``out`` for other tools.

    Parameters
    ----------
    corpus : path
        The corpus folder the files are read from.
    out : path
        Folder to create: never the corpus or dataset, nor inside or around them. With
        ``overwrite`` an export folder guitarlab made is replaced, never another folder.
        Nothing is written anywhere else.
    dataset : path, optional
        A dataset folder built from ``corpus``: its files only, in its train/validation/
        test splits (whole files for held-out takes, clips for held-out spans).
    format : {"audiofolder", "parquet"}
        Audio files with ``metadata.parquet`` per split, or ``data/<split>-*.parquet``
        tables with the audio bytes in them.
    license : str, optional
        The licence written into the data card; default: the corpus's ``LICENSE``
        file's first line, else "unspecified".
    by_segment, label : bool, str
        One clip per segment (``segments.csv``) that labels the column ``label`` (default:
        the dataset's label when it was built ``--from-segments``), labelled by it. Every
        file or clip carries its take's segments within it (a ``segments`` column) whenever
        the corpus has segments.

    Returns
    -------
    Path
        The export folder.
    """
    corpus, out = Path(corpus), Path(out)
    if format not in FORMATS:
        raise DatasetError(f"unknown export format {format!r}; use one of {', '.join(FORMATS)}")
    dataset_path = Path(dataset) if dataset else None
    inputs = {"corpus": corpus, "dataset": dataset_path}
    check_output(out, purpose="export", inputs=inputs, overwrite=overwrite, error=DatasetError)
    refuse_if_locked(out, error=DatasetError)
    try:
        manifest = load_manifest(corpus)
    except GuitarlabError as exc:
        raise DatasetError(str(exc)) from None
    meta = None
    if dataset_path is not None:
        from guitarlab.datasets.folder import read_meta

        meta = read_meta(dataset_path)
    segments = _corpus_segments(corpus)
    if by_segment:
        if label is None and meta is not None and meta.options.get("from_segments"):
            label = str(meta.label)
        if label is None:
            raise DatasetError(
                "--by-segment cuts one clip per segment of a column: name it with --label "
                "(e.g. --label technique)"
            )
        plan = plan_segment_export(manifest, segments, label, meta)
    elif label is not None:
        raise DatasetError("--label names the segment column of --by-segment; add --by-segment")
    else:
        from_segments = meta is not None and meta.options.get("from_segments")
        plan = with_segment_spans(
            plan_export(manifest, meta),
            segments,
            relabel=str(meta.label) if from_segments else None,
        )
    if not plan.items:
        raise DatasetError(f"{corpus}: no audio to export; add takes first")
    recorded, license_file = corpus_license(corpus)
    license_text = license or recorded
    columns = list(manifest.columns)
    names = class_names(plan, meta)

    with replace_output(
        out, purpose="export", suffix=".exporting", inputs=inputs, overwrite=overwrite,
        error=DatasetError,
    ) as work:  # fmt: skip
        files = _materialized(corpus, plan, columns, progress)
        if format == "audiofolder":
            table = _write_audiofolder(work, files, plan, names)
        else:
            table = _write_parquet(work / PARQUET_DIR, files, names)
        if license_file is not None and license is None:
            shutil.copyfile(license_file, work / license_file.name)
        card = data_card(
            plan,
            table,
            corpus=corpus,
            dataset=dataset_path,
            format=format,
            names=names,
            license=license_text,
            license_origin=(
                "given with --license"
                if license
                else f"from the corpus's {license_file.name}"
                if license_file
                else "the corpus records no licence (no LICENSE file): ask its owner before sharing"
            ),
        )
        write_text_atomic(work / CARD_NAME, card)
    return out


def _corpus_segments(corpus: Path) -> pd.DataFrame:
    from guitarlab.corpus.segments import load_segments

    try:
        return load_segments(corpus)
    except GuitarlabError as exc:
        raise DatasetError(str(exc)) from None


def _write_audiofolder(
    work: Path,
    files: Iterator[tuple[ExportItem, bytes, dict]],
    plan: ExportPlan,
    names: list[str] | None = None,
) -> pd.DataFrame:
    import pyarrow.parquet as pq

    rows = []
    for item, data, meta_row in files:
        dest = work / item.file_name
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open(dest, "xb") as handle:  # "x": two items never share a name
            handle.write(data)
        rows.append({**meta_row, "split": item.split})
    table = _typed(pd.DataFrame(rows))
    for split in plan.splits:
        part = table[table["split"] == split].drop(columns="split")
        folder = work / split if split else work
        prefix = f"{split}/" if split else ""
        part = part.assign(file_name=part["file_name"].str.removeprefix(prefix))
        with atomic_path(folder / METADATA_NAME) as tmp:
            pq.write_table(hf_table(part, names), str(tmp))
    return table


def _write_parquet(
    folder: Path, files: Iterator[tuple[ExportItem, bytes, dict]], names: list[str] | None = None
) -> pd.DataFrame:
    """``folder/<split>-00000-of-0000N.parquet`` per split (a new shard past
    ``PARQUET_SHARD_BYTES`` of audio), written a batch of files at a time so memory stays
    at one batch per split; ``datasets`` maps the file names to its splits."""
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    pending: dict[str, tuple[list[dict], list[dict]]] = {}  # split -> rows, audio unwritten
    shards: dict[str, list[Path]] = {}
    open_: dict[str, list] = {}  # split -> [writer, audio bytes in its shard]

    def flush(split: str) -> None:
        batch_rows, audio = pending.pop(split)
        table = hf_table(_typed(pd.DataFrame(batch_rows)), names, audio)
        state = open_.get(split)
        if state is not None and state[1] >= PARQUET_SHARD_BYTES:
            open_.pop(split)[0].close()
            state = None
        if state is None:
            path = folder / f"{split}-{len(shards.setdefault(split, [])):05d}.parquet.part"
            shards[split].append(path)
            state = open_[split] = [pq.ParquetWriter(str(path), table.schema), 0]
        state[0].write_table(table)
        state[1] += sum(len(a["bytes"]) for a in audio)

    try:
        for item, data, meta_row in files:
            split = item.split or "train"
            rows.append({"split": split, **meta_row})
            batch_rows, audio = pending.setdefault(split, ([], []))
            batch_rows.append(rows[-1])
            audio.append({"bytes": data, "path": item.file_name})
            if len(batch_rows) >= PARQUET_BATCH_FILES:
                flush(split)
        for split in list(pending):
            flush(split)
    finally:
        for writer, _ in open_.values():
            writer.close()
    for split, paths in shards.items():
        for i, path in enumerate(paths):
            path.rename(folder / f"{split}-{i:05d}-of-{len(paths):05d}.parquet")
    return _typed(pd.DataFrame(rows))


def loading_text(format: str, splits: list[str], *, unsplit: bool = False) -> list[str]:
    """The data card's "Loading" lines: with ``datasets`` 3.x, and with >= 4 without torch.

    ``datasets`` >= 4 needs torch and torchcodec to decode audio (and to load an audio
    folder at all); the fallback opens the export's Parquet tables and reads the audio
    with soundfile, which works with every version and is what the tests run.
    """
    one = splits[-1]
    call = (
        'load_dataset("audiofolder", data_dir="THIS_FOLDER")'
        if format == "audiofolder"
        else 'load_dataset("parquet", data_dir="THIS_FOLDER")'
    )
    lines = [
        "With `datasets` 3.4 to 3.6 (`pip install 'datasets>=3.4,<4' soundfile librosa`), "
        "which decodes audio with soundfile:",
        "",
        "```python",
        "from datasets import load_dataset",
        f'ds = {call}  # or load_dataset("THIS_FOLDER")',
        f'item = ds["{one}"][0]',
        'samples, rate = item["audio"]["array"], item["audio"]["sampling_rate"]',
        "```",
        "",
        "With `datasets` >= 4 the same call needs torch and torchcodec (it decodes audio "
        "with them"
        + (", and an audio folder does not load without them" if format == "audiofolder" else "")
        + "). Without them, "
        + (
            "open the tables as Parquet and read each file with soundfile (any version):"
            if format == "audiofolder"
            else "keep the audio as bytes and decode it with soundfile (any version):"
        ),
        "",
        "```python",
    ]
    if format == "audiofolder":
        where = {s: "THIS_FOLDER" if unsplit else f"THIS_FOLDER/{s}" for s in splits}
        files = ", ".join(f'"{s}": "{where[s]}/{METADATA_NAME}"' for s in splits)
        lines += [
            "import soundfile as sf",
            "from datasets import load_dataset",
            f'ds = load_dataset("parquet", data_files={{{files}}})',
            f'item = ds["{one}"][0]',
            f'samples, rate = sf.read("{where[one]}/" + item["file_name"])',
        ]
    else:
        lines += [
            "import io",
            "import soundfile as sf",
            "from datasets import Audio, load_dataset",
            f"ds = {call}",
            'ds = ds.cast_column("audio", Audio(decode=False))  # {bytes, path}',
            f'samples, rate = sf.read(io.BytesIO(ds["{one}"][0]["audio"]["bytes"]))',
            '# or pandas.read_parquet("THIS_FOLDER/data"): label is the index into Classes',
        ]
    return lines + ["```"]


def data_card(
    plan: ExportPlan,
    table: pd.DataFrame,
    *,
    corpus: Path,
    dataset: Path | None,
    format: str,
    license: str,
    license_origin: str,
    names: list[str] | None = None,
) -> str:
    """The export's README.md: licence, how to load it, how it was split, counts, columns."""
    name = (dataset or corpus).resolve().name
    split_col = table["split"].replace("", "train")
    seconds = table["frames"].astype(float) / table["sample_rate"].astype(float)
    by = "label" if plan.labelled else plan.label
    counts = (
        pd.DataFrame({"label": table[by].astype(str), "split": split_col, "seconds": seconds})
        .groupby(["label", "split"])
        .agg(files=("seconds", "size"), seconds=("seconds", "sum"))
        .reset_index()
    )
    order = [s or "train" for s in plan.splits]
    lines = [
        "---",
        f"license: {license}",
        f"pretty_name: {name}",
        "task_categories:",
        "- audio-classification",
        "---",
        "",
        f"# {name}",
        "",
        f"Exported by guitarlab {VERSION} on "
        f"{datetime.now(timezone.utc).isoformat(timespec='seconds')} from the corpus "
        f"`{corpus.resolve().name}`"
        + (f" and the dataset `{dataset.resolve().name}`" if dataset else "")
        + f": {len(table)} audio file(s), format `{format}`.",
        "",
        "## Licence",
        "",
        f"**{license}** ({license_origin}).",
        "",
        "## Loading",
        "",
    ]
    lines += loading_text(format, [s or "train" for s in plan.splits], unsplit=plan.splits == [""])
    if names is not None:
        lines += [
            "",
            "## Classes",
            "",
            "`label` is a ClassLabel, stored as its index into these names (the dataset's "
            "label order first): `ds['train'].features['label'].int2str(i)` names it.",
            "",
            "| index | label |",
            "|---|---|",
        ]
        lines += [f"| {i} | {label} |" for i, label in enumerate(names)]
    lines += ["", "## How the split was made", ""]
    lines += [f"- {line}" for line in plan.how]
    if plan.labelled:
        lines.append(f"- `label` is the manifest column `{plan.label}`")
    lines += [f"- {note}" for note in plan.notes]
    lines += ["", f"## Files per {by} and split", "", f"| {by} | " + " | ".join(order) + " |"]
    lines.append("|---" * (len(order) + 1) + "|")
    for label, group in counts.groupby("label"):
        cells = group.set_index("split")
        lines.append(
            f"| {label} | "
            + " | ".join(
                f"{int(cells.loc[s, 'files'])} ({cells.loc[s, 'seconds']:.1f} s)"
                if s in cells.index
                else "0"
                for s in order
            )
            + " |"
        )
    lines += ["", "## Columns", "", "| column | meaning |", "|---|---|"]
    shown = ["file_name"] + [c for c in table.columns if c not in ("file_name", "split")]
    if format == "parquet":
        shown = ["split", "audio"] + shown[1:]
    for column in shown:
        lines.append(
            f"| `{column}` | {COLUMN_MEANINGS.get(column, 'a column of the corpus manifest, as it is')} |"
        )
    lines.append("")
    return "\n".join(lines)
