"""Open a ``guitarlab export`` the way its data card says, with whatever ``datasets`` the
interpreter running this has (3.x from the ``hf`` extra, or the newest in .venv-hf-new),
and print what a user would check as JSON. Not a test module: tests/test_export_hf.py
runs it in a subprocess with each version.

    python tests/hf_loader.py OUT_DIR CACHE_DIR FOLDER:FORMAT:MODE ...

MODE is ``decode`` (``datasets`` decodes the audio, 3.x), ``bytes`` (the Parquet export
cast to ``Audio(decode=False)``, decoded with soundfile) or ``tables`` (an audiofolder's
metadata.parquet tables opened as Parquet, each file read with soundfile). The first row
of each split is decoded and saved as OUT_DIR/<job>-<call>-<split>.npy.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

import datasets  # noqa: E402  (after the offline switches)
from datasets import Audio, load_dataset  # noqa: E402

SPLITS = ("train", "validation", "test")


def calls(folder: str, format: str, mode: str, cache: str) -> dict:
    """Each way the card shows to open ``folder``: name -> DatasetDict."""
    if mode == "tables":
        splits = [s for s in SPLITS if (Path(folder) / s).is_dir()]
        files = {s: f"{folder}/{s}/metadata.parquet" for s in splits} or {
            "train": f"{folder}/metadata.parquet"
        }
        return {"parquet-tables": load_dataset("parquet", data_files=files, cache_dir=cache)}
    out = {"folder": load_dataset(folder, cache_dir=cache)}
    out[format] = load_dataset(format, data_dir=folder, cache_dir=cache)
    if mode == "bytes":
        out = {name: ds.cast_column("audio", Audio(decode=False)) for name, ds in out.items()}
    return out


def samples(folder: str, split: str, row: dict, mode: str) -> tuple[np.ndarray, int]:
    if mode == "decode":
        return np.asarray(row["audio"]["array"]), int(row["audio"]["sampling_rate"])
    if mode == "bytes":
        return sf.read(io.BytesIO(row["audio"]["bytes"]))
    where = Path(folder) / split if (Path(folder) / split).is_dir() else Path(folder)
    return sf.read(str(where / row["file_name"]))


def main(out: str, cache: str, jobs: list[str]) -> dict:
    torch = importlib.util.find_spec("torch") is not None
    report = {"version": datasets.__version__, "torch": torch, "jobs": {}}
    for job in jobs:
        folder, format, mode = job.rsplit(":", 2)
        name = f"{Path(folder).name}-{mode}"
        seen = report["jobs"][name] = {}
        for call, ds in calls(folder, format, mode, cache).items():
            splits = seen[call] = {}
            for split, part in ds.items():
                label = part.features.get("label")
                row = part[0]
                audio, rate = samples(folder, split, row, mode)
                np.save(Path(out) / f"{name}-{call}-{split}.npy", audio)
                splits[split] = {
                    "rows": len(part),
                    "label_type": type(label).__name__ if label is not None else None,
                    "label_names": list(getattr(label, "names", []) or []),
                    "audio_type": type(part.features["audio"]).__name__
                    if "audio" in part.features
                    else None,
                    "first": {
                        key: row.get(key)
                        for key in ("id", "label", "corpus_path", "clip_start", "clip_end")
                    },
                    "rate": int(rate),
                }
    return report


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2], sys.argv[3:])))
