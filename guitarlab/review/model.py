"""``guitarlab review --run RUN``: the run's labels over time for a row, and the review queue.

Each file is labelled by ``train.predict`` exactly as ``guitarlab predict`` would, once per
file content (id and sha256), and the result is kept in memory for the session.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pandas as pd


class RunLabels:
    """A run folder's predictions for the rows of one corpus, computed on first use."""

    def __init__(self, run_dir: str | os.PathLike, corpus: str | os.PathLike) -> None:
        from guitarlab.train.rundir import load_run

        self.info = load_run(run_dir)  # TrainError (one line) when it is not a run folder
        self.corpus = Path(corpus)
        self.label_column = _label_column(self.info)
        self._model = None
        self._cache: dict[tuple[str, str], dict] = {}
        self._lock = threading.Lock()  # one Keras model, one prediction at a time

    def predict_row(self, row: pd.Series) -> dict:
        """The run's prediction for one manifest row, as a dict (``Prediction.as_dict``)."""
        from guitarlab.corpus.errors import GuitarlabError
        from guitarlab.review.files import open_inside, read_opened
        from guitarlab.train.predict import predict_array

        key = (str(row["id"]), str(row["sha256"]))
        with self._lock:
            if key not in self._cache:
                if self._model is None:
                    self._model = self.info.load_model()
                try:  # the app reads only what it would serve, from the fd it checked
                    rel = str(row["path"])
                    fd = open_inside(self.corpus, rel, row=str(row["id"]))
                    audio, rate = read_opened(fd, name=rel)
                    result = predict_array(self._model, audio, rate, self.info, path=rel)
                    self._cache[key] = result.as_dict()
                except GuitarlabError as exc:
                    self._cache[key] = {"error": str(exc), "label": "", "confidence": 0.0}
            return self._cache[key]

    def queue(self, manifest: pd.DataFrame) -> list[dict]:
        """Every row with the run's verdict, likely mistakes first (:func:`review_order`)."""
        items = []
        for _, row in manifest.iterrows():
            pred = self.predict_row(row)
            label = str(row.get(self.label_column, ""))
            items.append(
                {
                    "id": str(row["id"]),
                    "label": label,
                    "predicted": pred.get("label", ""),
                    "confidence": pred.get("confidence", 0.0),
                    "p_label": (pred.get("probabilities") or {}).get(label, 0.0),
                    "error": pred.get("error"),
                }
            )
        return review_order(items)


def review_order(items: list[dict]) -> list[dict]:
    """Rows where the model disagrees with the label first, then the least confident.

    Within each group the row whose own label the model finds least likely (``p_label``)
    comes first; rows the run could not label go last.

    Examples
    --------
    >>> order = review_order([
    ...     {"id": "a", "label": "x", "predicted": "x", "confidence": 0.6, "p_label": 0.6},
    ...     {"id": "b", "label": "x", "predicted": "y", "confidence": 0.9, "p_label": 0.1},
    ...     {"id": "c", "label": "x", "predicted": "x", "confidence": 0.99, "p_label": 0.99},
    ... ])
    >>> [item["id"] for item in order], order[0]["disagrees"]
    (['b', 'a', 'c'], True)
    """
    out = []
    for item in items:
        failed = bool(item.get("error")) or not item.get("predicted")
        out.append({**item, "disagrees": not failed and item["predicted"] != item["label"]})
    return sorted(
        out,
        key=lambda i: (bool(i.get("error")), not i["disagrees"], i["p_label"], i["confidence"]),
    )


def _label_column(info) -> str:
    """The manifest column the run learned: its dataset's ``label`` (``guitar`` if unknown)."""
    from guitarlab.corpus.errors import GuitarlabError
    from guitarlab.datasets.folder import read_meta

    if info.dataset_dir is not None:
        try:
            return str(read_meta(info.dataset_dir).label or "guitar")
        except (GuitarlabError, OSError, ValueError):
            pass
    return "guitar"


class QueueJob:
    """The review queue computed in a background thread, so the server keeps answering.

    Why: labelling every file with the run's model takes minutes on a grown corpus; done
    inside a request it held a connection (and SIGTERM's graceful shutdown) that long. The
    thread labels row by row (``labels.predict_row``, cached per file by :class:`RunLabels`),
    counting as it goes for ``/api/queue/status``, then orders them (``labels.queue``).
    One job at a time; a job for an older manifest version is redone on the next start.
    """

    def __init__(self, labels) -> None:
        self.labels = labels
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._state = {"state": "idle", "done": 0, "total": 0, "version": None, "error": None}
        self._rows: list[dict] | None = None

    def start(self, manifest: pd.DataFrame, version: str) -> dict:
        """Start labelling ``manifest`` unless a job for ``version`` runs or has finished."""
        with self._lock:
            running = self._thread is not None and self._thread.is_alive()
            if not running and self._state["version"] != version:
                self._state = {
                    "state": "running",
                    "done": 0,
                    "total": len(manifest),
                    "version": version,
                    "error": None,
                }
                self._rows = None
                self._done.clear()
                self._thread = threading.Thread(
                    target=self._work, args=(manifest,), name="review-queue", daemon=True
                )
                self._thread.start()
            return self.status()

    def _work(self, manifest: pd.DataFrame) -> None:
        try:
            for _, row in manifest.iterrows():
                self.labels.predict_row(row)
                with self._lock:
                    self._state["done"] += 1
            rows = self.labels.queue(manifest)
            with self._lock:
                self._rows = rows
                self._state["state"] = "done"
        except Exception as exc:  # noqa: BLE001 (shown on the page in one line, then retried)
            with self._lock:
                self._state.update(state="failed", error=" ".join(str(exc).split()), version=None)
        finally:
            self._done.set()

    def status(self) -> dict:
        """``{"state": idle|running|done|failed, "done": n, "total": N, ...}``."""
        return dict(self._state)

    def wait(self, timeout: float | None = None) -> list[dict] | None:
        """The ordered queue once the running job is done (None if it failed or timed out)."""
        self._done.wait(timeout)
        return self._rows
