"""guitarlab: record, augment, label and learn guitar audio.

The top of the house: the click command line and the demo/retrain wiring that calls the
stages (``guitarlab.corpus``, ``.synth``, ``.recorder``, ``.augment``, ``.datasets``, ``.train``).

The functions the README shows are importable from here as well as from their stage
(``from guitarlab import open_dataset``); they load on first use, so ``import guitarlab``
stays as light as the command line's ``--help`` (no pandas, TensorFlow or matplotlib).
"""

from __future__ import annotations

from guitarlab.corpus import lazy_exports
from guitarlab.corpus.defaults import VERSION
from guitarlab.corpus.errors import GuitarlabError

__version__ = VERSION

# the stage module (below guitarlab) -> the functions it lends to ``from guitarlab import``
_EXPORTS = {
    "corpus.manifest": ("load_manifest",),
    "corpus.query": ("query_rows",),
    "synth.takes": ("synth_to_corpus",),
    "synth.family": ("family_guitars",),
    "synth.session": ("session_to_corpus",),
    "augment.renders": ("render_corpus",),
    "datasets.build": ("build_dataset",),
    "datasets.folder": ("open_dataset",),
    "train.fit": ("fit_dataset",),
    "train.rundir": ("load_run",),
    "train.evaluate": ("evaluate_run",),
    "train.predict": ("predict_files",),
    "workflow": ("retrain", "run_demo"),
}
PUBLIC_API = {name: f"guitarlab.{module}" for module, names in _EXPORTS.items() for name in names}
_names, __getattr__ = lazy_exports(__name__, _EXPORTS)
__all__ = ["GuitarlabError", "__version__", *_names]


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(PUBLIC_API))
