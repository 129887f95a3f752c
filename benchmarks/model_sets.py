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


def _gauss(t: np.ndarray, centre: np.ndarray, width: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * ((t - centre) / width) ** 2)


def gun_point_like(
    n: int = 50, *, length: int = 150, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A GunPoint-shaped set: ``n`` z-normalized hand trajectories, 0 = gun, 1 = point.

    Both classes raise the arm, hold, and lower it, at a random time, speed and height;
    they differ only near the movements, as in the UCR set: drawing a gun dips to the
    holster before the rise and after the fall, a bare finger overshoots at the top.
    UCR data may not be downloaded here, so the paper-schedule check runs on this.

    Examples
    --------
    >>> X, y = gun_point_like(4)
    >>> X.shape, y.tolist(), bool(abs(X.mean(axis=1)).max() < 1e-5)
    ((4, 150), [0, 1, 0, 1], True)
    """
    rng = np.random.default_rng(seed)
    t = np.arange(length, dtype=float)[None, :]
    y = np.arange(n) % 2
    onset = rng.uniform(0.22, 0.32, (n, 1)) * length
    offset = onset + rng.uniform(0.35, 0.45, (n, 1)) * length
    speed = rng.uniform(0.04, 0.08, (n, 1)) * length
    height = rng.uniform(0.8, 1.2, (n, 1))

    def sigmoid(x):
        return 1.0 / (1.0 + np.exp(-x))

    X = height * (sigmoid((t - onset) / (0.25 * speed)) - sigmoid((t - offset) / (0.25 * speed)))
    holster = rng.uniform(0.12, 0.2, (n, 1)) * height
    gun = -holster * (
        _gauss(t, onset - 1.2 * speed, 0.5 * speed) + _gauss(t, offset + 1.2 * speed, 0.5 * speed)
    )
    point = rng.uniform(0.1, 0.18, (n, 1)) * height * _gauss(t, onset + 0.8 * speed, 0.4 * speed)
    X = X + np.where(y[:, None] == 0, gun, point)
    X = X + 0.01 * np.cumsum(rng.standard_normal(X.shape), axis=1) / np.sqrt(length / 10)
    X = (X - X.mean(axis=1, keepdims=True)) / X.std(axis=1, keepdims=True)
    return X.astype(np.float32), y.astype(np.int64)
