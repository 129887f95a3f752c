"""The dataset folder's file names and format tag: what build writes and folder reads.

Examples
--------
>>> x_name("train"), y_name("test")
('train_x.npy', 'test_y.npy')
"""

from __future__ import annotations

FORMAT = "guitarlab-dataset"
FORMAT_VERSION = 1
META_NAME = "dataset.json"
WINDOWS_NAME = "windows.csv"
WINDOW_COLUMNS = ["split", "index", "id", "take", "tone", "guitar", "phrase", "start", "label"]


def x_name(split: str) -> str:
    return f"{split}_x.npy"


def y_name(split: str) -> str:
    return f"{split}_y.npy"
