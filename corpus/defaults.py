"""Every default that more than one stage relies on, written once.

``RECORD_RATE`` is the rate an audio interface records at (48 kHz, what most interfaces
run at); ``SYNTH_RATE`` is the rate the synthetic guitar, the demo and the post's model use
(44.1 kHz, the post protocol's rate); ``WINDOW`` is the model's window in samples (8,000 at
44.1 kHz, from the post and the paper). "The post" is the 2019 blog post this project grew
from (an LSTM-FCN telling a Stratocaster from a Les Paul, 15 of 16 files right); "seed"
always means a random seed. ``post_alias`` reads the experiment's old name.

Examples
--------
>>> WINDOW / SYNTH_RATE  # seconds per window
0.18140589569160998
"""

VERSION = "0.1.0"  # the package version, written into dataset meta.json and run.json
RECORD_RATE = 48000  # Hz: recorder, audio server, calibration
SYNTH_RATE = 44100  # Hz: synthetic guitar, demo, post protocol
WINDOW = 8000  # samples per model window
MIN_WINDOW = 256  # samples: shorter windows hold no note (5.8 ms at 44.1 kHz), just many rows
MAX_TAKE_SECONDS = 3600.0  # a synthetic take is rendered in memory: an hour is 1.3 GB
NOTE_WINDOWS = 5  # windows per note with dataset build --onsets: 0.9 s at WINDOW, 44.1 kHz
BPM = 120.0  # a take's tempo: the recorder's click, a shot list's blank bpm, synthetic phrases
BPM_RANGE = (20.0, 400.0)  # the tempos a click (record --bpm, a shot list's bpm) accepts
POST = "post"  # the 2019 post's protocol, import pattern, LSTM layout and schedule
RENAMED = {"seed": POST}  # the post's name before issue 34, in scripts and run.json

__all__ = [
    "BPM",
    "BPM_RANGE",
    "MAX_TAKE_SECONDS",
    "MIN_WINDOW",
    "NOTE_WINDOWS",
    "POST",
    "RECORD_RATE",
    "RENAMED",
    "SYNTH_RATE",
    "VERSION",
    "WINDOW",
    "post_alias",
]


def post_alias(value: str) -> str:
    """``value``, with the 2019 post's old name ``"seed"`` read as ``"post"``.

    Why: the experiment was called "seed" until issue 34, the word guitarlab also uses
    for random seeds; scripts and run.json files written before still say it.

    >>> post_alias("seed"), post_alias("paper")
    ('post', 'paper')
    """
    return RENAMED.get(value, value)
