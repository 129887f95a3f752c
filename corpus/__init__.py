"""The corpus contract every stage stands on: the manifest, paths, audio files and levels.

Also atomic writes, the error classes, the shared defaults, the one ``--where`` query
language every stage uses (``query_rows``), manifest edits with history and undo
(``edits``), folder intake (``intake``), corpus pictures (``plots``) and the PNG helpers
every stage draws with (``figures``). Imports no other package of guitarlab, so any stage
can stand on it. Public names load on first use.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "atomic": ("write_text_atomic",),
    "audit": ("check_manifest", "clean_strays", "fix_levels", "summary_tables"),
    "audio": (
        "audio_info",
        "file_columns",
        "mono_at_rate",
        "read_audio",
        "sha256_file",
        "write_audio_file",
    ),
    "checks": ("Finding", "check_take"),
    "defaults": ("RECORD_RATE", "SYNTH_RATE", "VERSION", "WINDOW"),
    "errors": (
        "AudioFileError",
        "AugmentError",
        "DatasetError",
        "GuitarlabError",
        "ManifestConflict",
        "ManifestError",
        "RecorderError",
        "TrainError",
    ),
    "levels": (
        "apply_gain_db",
        "gain_to_target_db",
        "level_match_gain_db",
        "peak_dbfs",
        "rms_dbfs",
    ),
    "manifest": (
        "RAW_TONE",
        "commit_rows",
        "init_corpus",
        "load_manifest",
        "manifest_row",
        "open_corpus",
        "reserve_rows",
        "reserve_takes",
    ),
    "figures": ("plot_spectra", "pyplot"),
    "intake": ("import_folder",),
    "plots": ("guitar_spectra", "plot_guitar_spectra", "plot_levels"),
    "query": ("query_columns", "query_rows"),
    "edits": (
        "add_span",
        "exclude_row",
        "read_history",
        "relabel_take",
        "remove_span",
        "undo_last",
    ),
    "annotations": (
        "Annotations",
        "format_audacity",
        "read_annotation_file",
        "read_audacity",
        "read_idmt_xml",
        "read_jams",
    ),
    "segments": (
        "add_segments",
        "delete_segment",
        "label_changes",
        "load_segments",
        "segment_label_for_spans",
        "segments_of",
        "segments_version",
        "update_segment",
    ),
}


def lazy_exports(package: str, exports: dict[str, tuple[str, ...]]):
    """``(__all__, __getattr__)`` for a package whose public names load on first use.

    ``exports`` maps a module of ``package`` to the names it provides, so importing the
    package stays cheap (no pandas, no TensorFlow) until a name is asked for.

    Examples
    --------
    >>> names, getattr_ = lazy_exports("guitarlab.corpus", {"defaults": ("WINDOW",)})
    >>> names, getattr_("WINDOW")
    (['WINDOW'], 8000)
    """
    where = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str):
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{where[name]}"), name)

    return sorted(where), __getattr__


__all__, __getattr__ = lazy_exports(__name__, _EXPORTS)
__all__ = [*__all__, "lazy_exports"]
