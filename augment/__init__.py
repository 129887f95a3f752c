"""The augment stage: tone presets (clean, crunch, distorted, ...) and their rendering.

Presets are data; ``render`` is pure, ``render_corpus`` reads raw takes and writes tones
and their manifest rows through ``guitarlab.corpus``.
"""

from guitarlab.corpus import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "renders": ("render_corpus",),
        "presets": ("chain_from_preset", "get_presets", "load_presets", "preset_hash"),
        "render": ("render",),
    },
)
