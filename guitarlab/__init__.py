"""guitarlab: record, augment, label and learn guitar audio.

The top of the house: the click command line and the demo/retrain wiring that calls the
stages (``guitarlab.corpus``, ``.synth``, ``.recorder``, ``.augment``, ``.datasets``, ``.train``).
"""

from guitarlab.corpus.defaults import VERSION
from guitarlab.corpus.errors import GuitarlabError

__version__ = VERSION
__all__ = ["GuitarlabError", "__version__"]
