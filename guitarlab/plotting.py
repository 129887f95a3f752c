"""Headless matplotlib for every stage's PNGs (reports, meters, spectra)."""

from __future__ import annotations


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend: pictures are files, never windows.

    Imported on first use so commands that draw nothing start without matplotlib.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
