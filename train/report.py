"""A run's evaluation as pictures and markdown: ``report.md`` beside its PNGs in the run folder.

Pictures (matplotlib, Agg backend so no display is needed): the file-level confusion
matrix, the averaged probability of the true label per test file, and the training
curves from ``history.csv``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from guitarlab.corpus.figures import pyplot, save_figure
from guitarlab.train.evaluate import headline, natural_sorted

CONFUSION_PNG = "confusion.png"
FILES_PNG = "file_probabilities.png"
CURVES_PNG = "training_curves.png"
REPORT_MD = "report.md"


def markdown_table(frame: pd.DataFrame, *, floatfmt: str = ".3f") -> str:
    """A pandas frame as a GitHub markdown table (no tabulate dependency)."""

    def cell(value) -> str:
        if isinstance(value, bool | np.bool_):
            return "yes" if value else "**no**"
        if isinstance(value, float | np.floating):
            return format(float(value), floatfmt)
        return str(value).replace("|", "\\|")

    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def plot_confusion(matrix: np.ndarray, label_names: list[str], path: Path) -> Path:
    """File-level confusion matrix with counts in the cells."""
    plt = pyplot()
    size = 2.5 + 0.6 * len(label_names)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(label_names)), label_names, rotation=45, ha="right")
    ax.set_yticks(range(len(label_names)), label_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    top = matrix.max() if matrix.size else 0
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(
            j,
            i,
            str(count),
            ha="center",
            va="center",
            color="white" if count > top / 2 else "black",
        )
    ax.set_title("files: true vs predicted")
    return save_figure(fig, path)


def plot_file_probabilities(files: pd.DataFrame, n_classes: int, path: Path) -> Path:
    """One bar per test file: the averaged probability of its true label (chance line dashed)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(5.0, 0.35 * len(files) + 2), 4))
    colors = ["tab:green" if ok else "tab:red" for ok in files["correct"]]
    ax.bar(range(len(files)), files["mean_probability"], color=colors)
    ax.axhline(1.0 / n_classes, color="black", linestyle="--", linewidth=1)
    ax.set_xticks(range(len(files)), files["id"], rotation=90, fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_ylabel("mean P(true label)")
    ax.set_title("per-file vote (green right, red wrong)")
    return save_figure(fig, path)


def training_curves_figure(history: pd.DataFrame):
    """Loss and accuracy per epoch, training and validation, as a figure (not yet saved).

    Readable at any length: each epoch is a marker (large when there are few, so one
    epoch is a visible dot with its value written beside it, not an empty axis), the x
    axis spans whole epochs, and legends sit where they cover neither title nor curve.
    """
    from matplotlib.ticker import MaxNLocator

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), layout="constrained")
    epochs = history["epoch"] + 1 if "epoch" in history else np.arange(1, len(history) + 1)
    epochs = np.asarray(epochs, dtype=int)
    few = len(epochs) <= 5
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for key, style in ((metric, "-"), (f"val_{metric}", "--")):
            if key not in history:
                continue
            values = np.asarray(history[key], dtype=float)
            ax.plot(epochs, values, style, marker="o", markersize=7 if few else 3, label=key)
            if len(epochs) == 1 and np.isfinite(values[0]):
                ax.annotate(
                    f"{values[0]:.3g}",
                    (epochs[0], values[0]),
                    textcoords="offset points",
                    xytext=(8, -3 if key == metric else 6),
                    fontsize=8,
                )
        ax.set_xlabel("epoch")
        ax.set_xlim(epochs.min() - 0.5, epochs.max() + 0.5)
        if len(epochs) <= 12:
            ax.set_xticks(epochs)  # every epoch a tick: no 0.6, 0.8 around a single one
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if few:
            ax.margins(y=0.25)  # room for the markers and their values inside the frame
        ax.set_title(metric)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc="best")
    return fig


def plot_training_curves(history: pd.DataFrame, path: Path) -> Path:
    """Loss and accuracy per epoch, training and validation: ``training_curves.png``."""
    return save_figure(training_curves_figure(history), path, tight=False)


def auto_table(auto: dict) -> str:
    """run.json's ``auto`` as a table: each candidate's validation and test balanced
    accuracy (files, windows) and which was chosen (by validation only)."""
    rows = [
        {
            "candidate": row["name"],
            "validation (files)": row.get("val_file_balanced_accuracy"),
            "validation (windows)": row.get("val_window_balanced_accuracy"),
            "test (files)": row.get("test_file_balanced_accuracy"),
            "test (windows)": row.get("test_window_balanced_accuracy"),
            "chosen": bool(row.get("chosen")),
        }
        for row in auto["candidates"]
    ]
    return markdown_table(
        pd.DataFrame(rows).astype(object).where(pd.DataFrame(rows).notna(), "n/a")
    )


def write_report(run_dir: str | Path, evaluation) -> Path:
    """Write the PNGs and ``report.md`` for an :class:`~guitarlab.train.evaluate.Evaluation`."""
    run_dir = Path(run_dir)
    files = evaluation.files
    n_classes = len(evaluation.label_names)
    plot_confusion(evaluation.confusion, evaluation.label_names, run_dir / CONFUSION_PNG)
    plot_file_probabilities(files, n_classes, run_dir / FILES_PNG)
    pictures = [("Confusion matrix (files)", CONFUSION_PNG), ("Per-file probabilities", FILES_PNG)]
    history_path = run_dir / "history.csv"
    if history_path.is_file():
        history = pd.read_csv(history_path)
        if len(history):
            plot_training_curves(history, run_dir / CURVES_PNG)
            pictures.append(("Training curves", CURVES_PNG))

    right = int(files["correct"].sum())
    scores = evaluation.scores or {}
    lines = [
        f"# Evaluation of {run_dir.name}",
        "",
        f"Dataset: `{evaluation.dataset_dir}`; labels: {', '.join(evaluation.label_names)}.",
        "",
        f"- **Files (mean vote): {right} of {len(files)} right = {evaluation.file_accuracy:.2%}**",
    ]
    if scores:
        lines.append(f"- {headline(scores, what='Files')}")
    if evaluation.window_scores:
        lines.append(f"- {headline(evaluation.window_scores, what='Windows')}")
    else:
        lines.append(f"- Windows: {evaluation.window_accuracy:.2%} of {evaluation.n_windows}")
    lines.append(f"- Files (majority vote): {evaluation.majority_accuracy:.2%}")
    if evaluation.baseline:
        base = evaluation.baseline
        balanced = base.get("file_balanced_accuracy")
        if getattr(evaluation, "model_kind", "network") == "features":
            lines.append(
                f"- This run is the {base.get('name', 'features model')}: {base.get('classifier', '')}"
            )
        elif "file_accuracy" in base:
            lines.append(
                f"- Baseline ({base['name']}, same split): files {base['file_accuracy']:.2%}"
                + (f" (balanced {balanced:.2%})" if balanced is not None else "")
                + f", windows {base['window_accuracy']:.2%}; {base.get('classifier', '')}"
            )
        loses = getattr(evaluation, "loses_to_features", None)
        if loses:
            lines.append(f"- **{loses}.**")
        if "centroid_window_accuracy" in base:
            balanced = base.get("centroid_window_balanced_accuracy")
            lines.append(
                f"- Baseline (best spectral-centroid threshold): windows "
                f"{base['centroid_window_accuracy']:.2%}"
                + (f" (balanced {balanced:.2%})" if balanced is not None else "")
            )
    auto = getattr(evaluation, "auto", None) or {}
    if auto.get("candidates"):
        lines += [
            "",
            "## Candidates (--model auto)",
            "",
            auto_table(auto),
            "",
            f"Chosen: {auto.get('why', '')}.",
        ]
    if scores and "per_class" in scores:
        lines += ["", "## Per class (files)", "", markdown_table(scores["per_class"])]
    for column, table in evaluation.groups.items():
        lines += ["", f"## Per {column}", "", markdown_table(table)]
    lines += ["", "## Pictures", ""]
    lines += [f"![{title}]({name})" for title, name in pictures]
    lines += ["", "## Per file", "", markdown_table(natural_sorted(files, "id")), ""]
    path = run_dir / REPORT_MD
    path.write_text("\n".join(lines))
    return path
