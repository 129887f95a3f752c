"""guitarlab: record, augment, label and learn guitar audio.

The top of the house: the click command line and the demo/retrain wiring that calls the
stages (``guitarlab.corpus``, ``.synth``, ``.recorder``, ``.augment``, ``.datasets``, ``.train``).

The functions the README shows are importable from here as well as from their stage
(``from guitarlab import open_dataset``); they load on first use, so ``import guitarlab``
stays as light as the command line's ``--help`` (no pandas, TensorFlow or matplotlib).
"""

from __future__ import annotations

import importlib

from guitarlab.corpus.defaults import VERSION
from guitarlab.corpus.errors import GuitarlabError

__version__ = VERSION

# name -> the module that defines it (loaded on first access, see __getattr__)
PUBLIC_API = {
    "load_manifest": "guitarlab.corpus.manifest",
    "query_rows": "guitarlab.corpus.query",
    "synth_to_corpus": "guitarlab.synth.corpus",
    "family_guitars": "guitarlab.synth.family",
    "session_to_corpus": "guitarlab.synth.session",
    "render_corpus": "guitarlab.augment.corpus",
    "build_dataset": "guitarlab.datasets.build",
    "open_dataset": "guitarlab.datasets.folder",
    "fit_dataset": "guitarlab.train.fit",
    "load_run": "guitarlab.train.rundir",
    "evaluate_run": "guitarlab.train.evaluate",
    "predict_files": "guitarlab.train.predict",
    "run_demo": "guitarlab.workflow",
    "retrain": "guitarlab.workflow",
}

__all__ = ["GuitarlabError", "__version__", *PUBLIC_API]


def __getattr__(name: str):
    """Import a public function from its stage the first time it is asked for."""
    module = PUBLIC_API.get(name)
    if module is None:
        raise AttributeError(f"module 'guitarlab' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(PUBLIC_API))
