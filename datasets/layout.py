"""The dataset folder's file names and format tag: what build writes and folder reads.

Examples
--------
>>> audio_name("train"), starts_name("train"), y_name("test")
('train_audio.npy', 'train_starts.npy', 'test_y.npy')
"""

from __future__ import annotations

FORMAT = "guitarlab-dataset"
# 2: each split's audio is stored once and a window is its start in it, so overlapping
# windows (a hop shorter than the window) cost no extra disk; 1 copied every window whole.
FORMAT_VERSION = 2
META_NAME = "dataset.json"
WINDOWS_NAME = "windows.csv"
WINDOW_COLUMNS = ["split", "index", "id", "take", "tone", "guitar", "phrase", "start", "label"]


def audio_name(split: str) -> str:
    return f"{split}_audio.npy"


def starts_name(split: str) -> str:
    return f"{split}_starts.npy"


def y_name(split: str) -> str:
    return f"{split}_y.npy"
