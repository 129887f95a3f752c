"""Retraining on a grown corpus, compared honestly: what changed, both models' file
decisions on the same test clips, balanced accuracy, and the before/after report.

The workflow that renders, rebuilds and fine-tunes is ``guitarlab.workflow.retrain``;
this module is the comparison it reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from guitarlab.corpus.figures import pyplot, save_figure
from guitarlab.datasets.meta import DatasetMeta
from guitarlab.train.evaluate import clip_probabilities
from guitarlab.train.report import markdown_table


@dataclass
class CorpusChanges:
    """What a corpus holds now that a run's dataset did not (rows matched by id and sha256)."""

    new_rows: list[str] = field(default_factory=list)
    changed_rows: list[str] = field(default_factory=list)
    new_takes: list[str] = field(default_factory=list)
    new_labels: list[str] = field(default_factory=list)
    new_tones: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.new_rows or self.changed_rows)


def corpus_changes(manifest: pd.DataFrame, dataset_meta: DatasetMeta) -> CorpusChanges:
    """Compare a manifest with the rows a dataset was built from."""
    old_rows = {r["id"]: r for r in dataset_meta.rows}
    label = dataset_meta.label
    old_takes = {r["take"] for r in old_rows.values()}
    old_tones = {r["tone"] for r in old_rows.values()}
    old_labels = set(dataset_meta.label_names)
    changes = CorpusChanges()
    for _, row in manifest.iterrows():
        if row["id"] not in old_rows:
            changes.new_rows.append(row["id"])
        elif old_rows[row["id"]].get("sha256") != row["sha256"]:
            changes.changed_rows.append(row["id"])
    fresh = manifest[manifest["id"].isin(changes.new_rows)]
    changes.new_takes = sorted(set(fresh["take"]) - old_takes)
    changes.new_labels = sorted(set(fresh[label].astype(str)) - old_labels)
    changes.new_tones = sorted(set(fresh["tone"]) - old_tones)
    return changes


def file_decisions(model, clips: list, label_names: list[str]) -> list[str]:
    """The post's vote with any model: mean of window outputs per clip -> a label name."""

    if not clips:
        return []
    per_clip = clip_probabilities(model, clips, len(label_names))
    return [label_names[int(probs.mean(axis=0).argmax())] for probs in per_clip]


def retrain_balanced_accuracy(comparison: pd.DataFrame) -> dict[str, float]:
    """Balanced accuracy (mean per-label recall) of the old and the new model's decisions."""
    from sklearn.metrics import balanced_accuracy_score

    return {
        which: float(balanced_accuracy_score(comparison["label"], comparison[which]))
        for which in ("before", "after")
    }


def comparison_groups(comparison: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Before/after file accuracy per guitar, phrase, tone and old/new take."""
    tables = {}
    for column in ("guitar", "phrase", "tone", "new_take"):
        tables[column] = (
            comparison.groupby(column, sort=True)
            .agg(
                files=("id", "size"),
                before=("before_correct", "mean"),
                after=("after_correct", "mean"),
            )
            .reset_index()
            .round(3)
        )
    return tables


def write_retrain_report(
    out: Path, comparison: pd.DataFrame, *, from_run: Path, new_run: Path, changes: CorpusChanges
) -> Path:
    """``retrain.md`` with per-group tables, ``comparison.csv`` and a before/after PNG."""

    out.mkdir(parents=True, exist_ok=True)
    comparison.to_csv(out / "comparison.csv", index=False)
    tables = comparison_groups(comparison)
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.5), constrained_layout=True)
    for ax, column in zip(axes, ("guitar", "phrase", "tone"), strict=True):
        table = tables[column]
        x = np.arange(len(table))
        ax.bar(x - 0.2, table["before"], width=0.4, label="before (old run)")
        ax.bar(x + 0.2, table["after"], width=0.4, label="after (new run)")
        ax.set_xticks(x, table[column].astype(str), rotation=20)
        ax.set_ylim(0, 1.05)
        ax.set_title(f"file accuracy per {column}")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=2)
    save_figure(fig, out / "before_after.png", dpi=110, tight=False)
    before, after = comparison["before_correct"].mean(), comparison["after_correct"].mean()
    balanced = retrain_balanced_accuracy(comparison)
    counts = comparison["label"].value_counts()
    lines = [
        "# Retrain: before and after",
        "",
        f"Old run: `{from_run}`. New run: `{new_run}`. Both models voted on the same {len(comparison)} held-out test clips",
        "(the old dataset's test spans kept, new takes with spans of their own).",
        "",
        f"- New files: {len(changes.new_rows)}; new takes: {', '.join(changes.new_takes) or 'none'}; new labels: {', '.join(changes.new_labels) or 'none'}",
        f"- File accuracy before: **{before:.1%}**, after: **{after:.1%}**",
        f"- Balanced accuracy before: {balanced['before']:.1%}, after: {balanced['after']:.1%}; "
        f"always saying {counts.index[0]} would score {counts.iloc[0] / len(comparison):.0%}",
        "",
        "![before and after](before_after.png)",
        "",
    ]
    for column, title in (
        ("guitar", "Per guitar"),
        ("phrase", "Per phrase"),
        ("tone", "Per tone"),
        ("new_take", "Old takes vs new takes"),
    ):
        lines += [f"## {title}", "", markdown_table(tables[column]), ""]
    lines += [
        "## Per file",
        "",
        markdown_table(comparison[["id", "label", "before", "after", "new_take"]]),
        "",
    ]
    path = out / "retrain.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
