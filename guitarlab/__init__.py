"""guitarlab: record, augment, label and learn guitar audio.

The stages live in their own subpackages (``guitarlab.recorder``, ``guitarlab.augment``,
``guitarlab.datasets``, ``guitarlab.train``); this package holds the command line and the
error root they share.
"""

from guitarlab.errors import GuitarlabError

__version__ = "0.1.0"
__all__ = ["GuitarlabError", "__version__"]
