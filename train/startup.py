"""TensorFlow's first import, without its C++ start-up lines.

Importing TensorFlow 2.16+ prints its absl/oneDNN/CUDA-stub lines before its logging is set
up, once per shared library that carries them, so every command showed them twice in a
log; ``TF_CPP_MIN_LOG_LEVEL`` does not reach them. The first import sends the process's
standard error to /dev/null for its duration; a failing import still raises, and
everything TensorFlow logs afterwards (devices, errors) is shown.
"""

from __future__ import annotations

import os
import sys


def import_tensorflow() -> None:
    """Import tensorflow and keras once, quietly (a no-op when already imported)."""
    if "tensorflow" in sys.modules and "keras" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import keras  # noqa: F401
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
