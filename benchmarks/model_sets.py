"""Small, fully synthetic classification sets for model checks (no audio corpus needed).

``sine_square``: the smoke set of the model issue: a noisy sine against a noisy square
wave of the same random frequency and phase, 128 samples a series. Anything that learns
at all gets it right; a model that scores chance in inference mode after training well
has a BatchNorm or preprocessing bug, not a data problem.
"""

from __future__ import annotations

import numpy as np


def sine_square(
    n: int = 300, *, length: int = 128, noise: float = 0.3, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` series ``(n, length)`` float32 and labels (0 = sine, 1 = square), classes alternating.

    Examples
    --------
    >>> X, y = sine_square(4, length=16)
    >>> X.shape, y.tolist()
    ((4, 16), [0, 1, 0, 1])
    """
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    cycles = rng.uniform(2.0, 6.0, (n, 1))
    phase = rng.uniform(0.0, 2 * np.pi, (n, 1))
    wave = np.sin(2 * np.pi * cycles * t / length + phase)
    y = np.arange(n) % 2
    wave[y == 1] = np.sign(wave[y == 1])
    X = wave + noise * rng.standard_normal((n, length))
    return X.astype(np.float32), y.astype(np.int64)


def sine_square_npz(path, *, n_train: int = 300, n_test: int = 100, seed: int = 0) -> None:
    """Write the smoke set as ``guitarlab train --npz`` reads it (X/y_train, X/y_test)."""
    X, y = sine_square(n_train, seed=seed)
    X_test, y_test = sine_square(n_test, seed=seed + 1000)
    names = np.array(["sine", "square"])
    np.savez(path, X_train=X, y_train=names[y], X_test=X_test, y_test=names[y_test])
