"""Every default that more than one stage relies on, written once.

``RECORD_RATE`` is the rate an audio interface records at (48 kHz, what most interfaces
run at); ``SYNTH_RATE`` is the rate the synthetic guitar, the demo and the seed's model use
(44.1 kHz, the seed protocol's rate); ``WINDOW`` is the model's window in samples (8,000 at
44.1 kHz, from the seed and the paper).

Examples
--------
>>> WINDOW / SYNTH_RATE  # seconds per window
0.18140589569160998
"""

VERSION = "0.1.0"  # the package version, written into dataset meta.json and run.json
RECORD_RATE = 48000  # Hz: recorder, audio server, calibration
SYNTH_RATE = 44100  # Hz: synthetic guitar, demo, seed protocol
WINDOW = 8000  # samples per model window
MIN_WINDOW = 256  # samples: shorter windows hold no note (5.8 ms at 44.1 kHz), just many rows
MAX_TAKE_SECONDS = 3600.0  # a synthetic take is rendered in memory: an hour is 1.3 GB
NOTE_WINDOWS = 5  # windows per note with dataset build --onsets: 0.9 s at WINDOW, 44.1 kHz

__all__ = [
    "MAX_TAKE_SECONDS",
    "MIN_WINDOW",
    "NOTE_WINDOWS",
    "RECORD_RATE",
    "SYNTH_RATE",
    "VERSION",
    "WINDOW",
]
