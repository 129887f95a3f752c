"""Reproducible performance measurements; run them all with ``make bench``."""
