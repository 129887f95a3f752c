"""``dataset.json`` as a typed record: what a dataset folder says about itself.

The build writes it through :meth:`DatasetMeta.to_dict` and every reader gets it back
through :meth:`DatasetMeta.from_dict` (``folder.read_meta``), so a field has one name and
one type in the code rather than a string key in each module that reads it (lhotse's
manifests are the model). Older files still read: a field they lack takes its default,
a key this guitarlab does not know is kept as it was; a format this guitarlab cannot read
says, in one line, to rebuild.

Examples
--------
>>> meta = DatasetMeta.from_dict({"format": FORMAT, "format_version": FORMAT_VERSION,
...     "label_names": ["LP", "ST"], "window": 8000, "sample_rate": 44100, "takes": {},
...     "totals": {"train": 4, "val": 1, "test": 1}})
>>> meta.n_classes, meta.hop, meta.windows_at
(2, 8000, 'grid')
>>> DatasetMeta.from_dict(meta.to_dict()) == meta
True
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from guitarlab.corpus.errors import DatasetError
from guitarlab.datasets.layout import FORMAT, FORMAT_VERSION

# Without these a folder cannot be read at all: the file is corrupt, not old.
REQUIRED = ("label_names", "window", "sample_rate", "takes", "totals")
# Written only when the build had them (``--held-out-from``, ``--from-segments``).
OPTIONAL = ("held_out_from_hash", "segments")


@dataclass(eq=True)
class DatasetMeta(Mapping):
    """Every field of ``dataset.json``, in the order the file lists them."""

    label_names: list[str]
    window: int
    sample_rate: int
    takes: dict[str, dict]  # take -> its spans (``splits.TakeSpans.from_json``)
    totals: dict[str, int]  # windows per split
    format: str = FORMAT
    format_version: int = FORMAT_VERSION
    guitarlab_version: str | None = None
    created_at: str | None = None
    corpus: str | None = None
    options: dict[str, Any] = field(default_factory=dict)  # ``BuildConfig.recorded()``
    label: str = "guitar"
    hop: int | None = None  # None in a file that lacks it: the window (no overlap)
    windows_at: str = "grid"
    note_windows: int | None = None
    onset_floor_dbfs: float | None = None
    test_span_samples: int | None = None
    manifest_hash: str = ""
    leaky: bool = False
    standardization: dict[str, Any] | None = None  # {"mode", "mean", "std"}
    dropped_windows: int = 0
    excluded: dict[str, Any] = field(default_factory=dict)
    counts: list[dict[str, Any]] = field(default_factory=list)
    held_out: dict[str, Any] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, dict[str, str]] = field(default_factory=dict)
    stored_samples: dict[str, int] = field(default_factory=dict)
    windows_table: str | None = None
    notes: list[str] = field(default_factory=list)
    held_out_from_hash: str | None = None
    segments: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # keys this version does not know

    def __post_init__(self) -> None:
        if self.hop is None:
            self.hop = self.window

    # The order ``dataset.json`` lists its keys in (the build's, so files stay byte-stable).
    ORDER = (
        "format", "format_version", "guitarlab_version", "created_at", "corpus", "options",
        "label", "label_names", "sample_rate", "window", "hop", "windows_at", "note_windows",
        "onset_floor_dbfs", "test_span_samples", "manifest_hash", "leaky", "standardization",
        "totals", "dropped_windows", "excluded", "counts", "held_out", "takes", "rows",
        "files", "stored_samples", "windows_table", "notes", "held_out_from_hash", "segments",
    )  # fmt: skip

    @property
    def n_classes(self) -> int:
        return len(self.label_names)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written as ``dataset.json``."""
        out = {key: getattr(self, key) for key in self.ORDER}
        for key in OPTIONAL:
            if out[key] is None:
                del out[key]
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "dataset.json") -> DatasetMeta:
        """The record from a parsed ``dataset.json``; ``source`` names it in errors.

        Raises a one-line :class:`DatasetError` for anything but a guitarlab dataset of
        this format (older formats stored every window whole: rebuild)."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise DatasetError(f"{source}: not a guitarlab dataset description; rebuild it")
        missing = [key for key in REQUIRED if key not in data]
        if missing:
            raise DatasetError(f"{source}: corrupt, missing {', '.join(missing)}; rebuild it")
        if data.get("format_version") != FORMAT_VERSION:
            raise DatasetError(
                f"{source}: dataset format {data.get('format_version')}, this guitarlab reads "
                f"format {FORMAT_VERSION} (each split's audio stored once); rebuild it with "
                "'guitarlab dataset build'"
            )
        known = {f.name for f in fields(cls)} - {"extra"}
        return cls(
            **{key: value for key, value in data.items() if key in known},
            extra={key: value for key, value in data.items() if key not in known},
        )

    # Read-only mapping access (``meta["label"]``, ``meta.get``, ``dict(meta)``) for callers
    # not yet moved to the attributes: the CLI and workflow read a few keys by name. The
    # datasets and train stages use the attributes.
    def __getitem__(self, key: str) -> Any:
        if key in self.extra:
            return self.extra[key]
        if key in self.ORDER:
            value = getattr(self, key)
            if value is not None or key not in OPTIONAL:
                return value
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())
