"""TensorFlow's first import, without its C++ start-up lines.

Importing TensorFlow 2.16+ prints its absl/oneDNN/CUDA-stub lines before its logging is set
up, once per shared library that carries them, and the first look at the devices prints
``failed call to cuInit`` on a machine without a GPU; ``TF_CPP_MIN_LOG_LEVEL`` reaches none
of them (they come from C++ before absl is initialised). So the first import and the first
device listing run with the process's standard error (fd 2) sent to a temporary file, and
afterwards every line of it that is not known start-up noise is written back: a failing
import still raises with its message, and anything else TensorFlow says is shown. The
``cuInit`` line is only noise where no NVIDIA driver is loaded; with one, it is a real
error and is kept.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile

# Lines TensorFlow prints at start-up on every machine; none of them asks the user to act.
_NOISE = re.compile(
    r"All log messages before absl::InitializeLog"
    r"|oneDNN custom operations are on"
    r"|cudart_stub\.cc|Could not find cuda drivers"
    r"|cpu_feature_guard\.cc|This TensorFlow binary is optimized"
    r"|To enable the following instructions:"
    r"|Unable to register cu(DNN|FFT|BLAS) factory"
    r"|computation placer already registered"
    r"|TF-TRT Warning: Could not find TensorRT"
    r"|Attempting to register factory for plugin"
)
_NO_GPU_NOISE = re.compile(r"failed call to cuInit")


def nvidia_driver_loaded() -> bool:
    """Whether the kernel has an NVIDIA driver (so CUDA errors are worth showing)."""
    return os.path.exists("/proc/driver/nvidia/version")


def startup_noise(text: str, driver: bool | None = None) -> list[str]:
    """The lines of ``text`` (captured standard error) that are worth showing.

    Pure, so the filter is testable without TensorFlow: known start-up chatter is dropped,
    and ``cuInit`` failures are dropped only when no NVIDIA driver is loaded.
    """
    if driver is None:
        driver = nvidia_driver_loaded()
    kept = []
    for line in text.splitlines():
        if not line.strip() or _NOISE.search(line):
            continue
        if not driver and _NO_GPU_NOISE.search(line):
            continue
        kept.append(line)
    return kept


def import_tensorflow() -> None:
    """Import tensorflow and keras once, quietly (a no-op when already imported)."""
    if "tensorflow" in sys.modules and "keras" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        try:
            os.dup2(captured.fileno(), 2)
            import keras  # noqa: F401
            import tensorflow as tf

            tf.config.list_physical_devices()  # the cuInit line comes here, not at import
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = startup_noise(captured.read().decode("utf-8", "replace"))
            if kept:
                print("\n".join(kept), file=sys.stderr, flush=True)
