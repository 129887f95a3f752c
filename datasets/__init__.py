"""The dataset stage: windowing, leak-free splits, dataset folders and tf.data pipelines.

Reads the corpus manifest (``guitarlab.corpus``) and builds dataset folders that the
train stage reads.
"""

from guitarlab.corpus import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "build": ("build_dataset",),
        "meta": ("DatasetMeta",),
        "plan": ("BuildConfig", "BuildPlan", "plan_build"),
        "folder": ("DatasetFolder", "check_dataset", "open_dataset", "read_meta"),
        "splits": ("plan_splits",),
        "windows": (
            "prepare",
            "standardize",
            "standardize_as",
            "to_mono",
            "window",
            "window_starts",
        ),
    },
)
