"""The synthetic guitar family: pickup physics, phrases, single notes, randomized takes and
a note library's recording session.

The demo's, the tests' and the benchmarks' instrument, for machines with no guitar and no
sound card; it writes takes and manifest rows through ``guitarlab.corpus``.
"""

from guitarlab.corpus import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "family": (
            "FAMILY",
            "family_guitars",
            "randomize_take",
            "render_params",
            "resolve_guitars",
        ),
        "guitar": ("GUITARS",),
        "phrases": ("PHRASES", "Note", "make_score"),
        "render": (
            "guitar_labels",
            "pickup_response",
            "plot_spectra",
            "render_notes",
            "render_take",
            "stream_take",
        ),
        "takes": ("notes_to_corpus", "synth_to_corpus", "write_raw_take"),
        "session": ("SESSION_SETTINGS", "session_plan", "session_to_corpus"),
    },
)
