"""Level calibration per guitar, kept in the corpus as ``calibration.json``.

The post matched levels by ear and by meter before recording; here the loudest passage
of each guitar is measured once (``guitarlab level``) and stored, so later guitars are
compared with the ones already there and takes that drift from it are flagged.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from guitarlab.corpus.atomic import write_text_atomic
from guitarlab.corpus.errors import RecorderError
from guitarlab.corpus.levels import DEFAULT_TARGET_RMS_DBFS

CALIBRATION_NAME = "calibration.json"
MATCH_TOLERANCE_DB = 1.5


def calibration_path(corpus: str | os.PathLike) -> Path:
    return Path(corpus) / CALIBRATION_NAME


def load_calibration(corpus: str | os.PathLike) -> dict:
    """``{"target_rms_dbfs": float, "guitars": {guitar: {...}}}`` (defaults when absent)."""
    path = calibration_path(corpus)
    data: dict = {"target_rms_dbfs": DEFAULT_TARGET_RMS_DBFS, "guitars": {}}
    if path.exists():
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RecorderError(
                f"{path}: not valid JSON ({exc.msg}); fix it or delete it and run 'guitarlab level' again"
            ) from exc
        data.update({k: v for k, v in stored.items() if k != "guitars"})
        data["guitars"].update(stored.get("guitars", {}))
    return data


def save_calibration(corpus: str | os.PathLike, data: dict) -> Path:
    """Write ``calibration.json`` atomically (temp file + rename)."""
    path = calibration_path(corpus)
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
    return path


def record_calibration(
    corpus: str | os.PathLike,
    guitar: str,
    *,
    peak_dbfs: float,
    rms_dbfs: float,
    target_peak_dbfs: float,
    gain_advice_db: float,
    device: str = "",
) -> dict:
    """Store one guitar's measured levels; returns the whole calibration."""
    data = load_calibration(corpus)
    data["guitars"][guitar] = {
        "peak_dbfs": round(float(peak_dbfs), 3),
        "rms_dbfs": round(float(rms_dbfs), 3),
        "target_peak_dbfs": float(target_peak_dbfs),
        "gain_advice_db": None if not np.isfinite(gain_advice_db) else round(gain_advice_db, 2),
        "device": device,
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    save_calibration(corpus, data)
    return data


def compare_guitars(data: dict, guitar: str) -> list[str]:
    """Lines comparing ``guitar``'s calibration with every other calibrated guitar."""
    guitars = data.get("guitars", {})
    if guitar not in guitars:
        return []
    mine = guitars[guitar]
    lines = []
    for other, theirs in sorted(guitars.items()):
        if other == guitar:
            continue
        diff = mine["rms_dbfs"] - theirs["rms_dbfs"]
        verdict = "matched" if abs(diff) <= MATCH_TOLERANCE_DB else "NOT matched"
        lines.append(
            f"{guitar} vs {other}: RMS {diff:+.1f} dB, peak {mine['peak_dbfs'] - theirs['peak_dbfs']:+.1f} dB ({verdict})"
        )
    return lines


def calibrated_peak(data: dict, guitar: str) -> float | None:
    """The calibrated peak of ``guitar`` in dBFS, or None when it was never calibrated."""
    entry = data.get("guitars", {}).get(guitar)
    return None if entry is None else float(entry["peak_dbfs"])


def level_mismatch(
    manifest: pd.DataFrame,
    *,
    guitar: str,
    phrase: str,
    rms_dbfs: float,
    tolerance_db: float = MATCH_TOLERANCE_DB,
) -> str | None:
    """A warning when a take is more than ``tolerance_db`` RMS away from other guitars' takes.

    Compares with the mean RMS of the raw takes of the same phrase by the other guitars.
    """
    if manifest.empty:
        return None
    others = manifest[
        (manifest["tone"] == "raw")
        & (manifest["phrase"] == phrase)
        & (manifest["guitar"] != guitar)
        & manifest["rms_dbfs"].notna()
        & (manifest["rms_dbfs"] > -150)
    ]
    reference = None if others.empty else float(others["rms_dbfs"].mean())
    return reference_mismatch(
        reference, phrase=phrase, rms_dbfs=rms_dbfs, tolerance_db=tolerance_db
    )


def reference_mismatch(
    reference: float | None,
    *,
    phrase: str,
    rms_dbfs: float,
    tolerance_db: float = MATCH_TOLERANCE_DB,
) -> str | None:
    """:func:`level_mismatch` against a ``reference`` RMS already known (None: no other
    guitar's take to compare with), e.g. ``manifest.raw_level_reference``'s."""
    if reference is None:
        return None
    diff = rms_dbfs - reference
    if abs(diff) <= tolerance_db:
        return None
    return (
        f"this take is {diff:+.1f} dB RMS from the other guitars' {phrase} takes "
        f"({reference:.1f} dBFS, limit {tolerance_db} dB); its gain_db corrects it, or adjust the gain and record again"
    )
